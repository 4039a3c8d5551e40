"""Train and eval steps: learning, sharding over devices, exact masked sums."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from experiments.pixelcnn import make_task
from jaxgen import data, parallel
from jaxgen.train import TrainState, make_eval_step, make_optimizer, make_train_step


def _run_steps(config, num_steps, mesh, batch):
    """Runs ``num_steps`` train steps on one fixed batch; returns (state, losses, step fn)."""
    task = make_task(config)
    tx, schedule = make_optimizer(config)
    params = task.init(jax.random.key(0), batch)
    state = parallel.replicate(TrainState.create(params, tx, config.ema_decay), mesh)
    train_step = make_train_step(task.loss_fn, tx, mesh, schedule=schedule)
    sharded = parallel.shard_batch(batch, mesh)
    losses = []
    for _ in range(num_steps):
        state, metrics = train_step(state, sharded, jax.random.key(1))
        losses.append(float(metrics["loss"]))
    return state, losses, train_step


@pytest.fixture
def real_batch(tiny_config):
    """16 real binarized MNIST training images."""
    batches = data.train_batches(
        "binarized_mnist", batch_size=16, seed=0, num_levels=2, data_dir=tiny_config.data_dir
    )
    return batches[0]


def test_loss_falls_on_a_real_batch(tiny_config, real_batch):
    assert set(np.unique(real_batch["image"])) == {0, 1}
    state, losses, train_step = _run_steps(tiny_config, 30, parallel.make_mesh(1), real_batch)
    assert losses[-1] < 0.6 * losses[0], losses
    assert int(state.step) == 30
    assert train_step._cache_size() == 1  # compiled once


def test_state_is_donated(tiny_config, real_batch):
    mesh = parallel.make_mesh(1)
    task = make_task(tiny_config)
    tx, _ = make_optimizer(tiny_config)
    state = parallel.replicate(
        TrainState.create(task.init(jax.random.key(0), real_batch), tx), mesh
    )
    train_step = make_train_step(task.loss_fn, tx, mesh)
    leaf = jax.tree.leaves(state.params)[0]
    train_step(state, parallel.shard_batch(real_batch, mesh), jax.random.key(1))
    assert leaf.is_deleted()


def test_one_device_equals_eight_devices(tiny_config, real_batch):
    assert jax.device_count() == 8
    one, losses_one, _ = _run_steps(tiny_config, 3, parallel.make_mesh(1), real_batch)
    eight, losses_eight, _ = _run_steps(tiny_config, 3, parallel.make_mesh(8), real_batch)
    leaf = jax.tree.leaves(eight.params)[0]
    assert leaf.sharding.num_devices == 8 and leaf.sharding.is_fully_replicated
    np.testing.assert_allclose(losses_one, losses_eight, rtol=1e-5)
    for a, b in zip(jax.tree.leaves(one.params), jax.tree.leaves(eight.params), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


def test_eval_step_ignores_padding():
    def eval_fn(params, batch, key):
        return {"value": batch["image"].sum(axis=(1, 2, 3)).astype(jnp.float32) * params}

    mesh = parallel.make_mesh(8)
    eval_step = make_eval_step(eval_fn, mesh)
    image = np.arange(16, dtype=np.int32).reshape(16, 1, 1, 1)
    mask = np.arange(16) < 11
    padded = {"image": np.where(mask[:, None, None, None], image, 1000), "mask": mask}
    sums = eval_step(2.0, parallel.shard_batch(padded, mesh), jax.random.key(0))
    assert int(sums["num_examples"]) == 11
    assert float(sums["value"]) == 2.0 * sum(range(11))
