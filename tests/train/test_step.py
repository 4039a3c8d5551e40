"""Train and eval steps: learning, sharding, exact masked sums, step-dependent losses."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxgen import data, parallel
from jaxgen.train import TrainState, make_eval_step, make_optimizer, make_train_step
from tests.train.helpers import pixelcnn_task


def _run_steps(config, num_steps, mesh, batch):
    """Runs ``num_steps`` train steps on one fixed batch; returns (state, losses, step fn)."""
    task = pixelcnn_task(config)
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
    task = pixelcnn_task(tiny_config)
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


def _quadratic(params, batch, key):
    del key
    return jnp.mean((params["w"] * batch["x"]) ** 2), {}


def test_without_a_mesh_the_steps_use_all_devices():
    """The notebook path: plain state and NumPy batches, no Mesh anywhere."""
    tx = optax.sgd(0.25)
    x = np.arange(16, dtype=np.float32).reshape(8, 2) / 8  # 8 rows: one per device
    state = TrainState.create({"w": jnp.ones(2)}, tx)
    state, metrics = make_train_step(_quadratic, tx)(state, {"x": x}, jax.random.key(0))
    assert state.params["w"].sharding.num_devices == jax.device_count() == 8
    assert state.params["w"].sharding.is_fully_replicated
    # loss = mean over the 8 x 2 entries, so d/dw_j = 2 w_j sum_i x_ij^2 / 16 = mean_i x_ij^2.
    expected = 1 - 0.25 * np.mean(x**2, axis=0)
    np.testing.assert_allclose(np.asarray(state.params["w"]), expected, rtol=1e-6)
    np.testing.assert_allclose(float(metrics["loss"]), np.mean(x**2), rtol=1e-6)

    eval_step = make_eval_step(lambda params, batch, key: {"sq": (batch["x"] ** 2).sum(1)})
    sums = eval_step(state.params, {"x": x, "mask": np.arange(8) < 5}, jax.random.key(0))
    assert float(sums["sq"]) == float((x[:5] ** 2).sum()) and int(sums["num_examples"]) == 5


def test_a_step_dependent_loss_gets_the_step():
    """KL warm-up style: loss = beta(step) * w^2 / 2 with beta an Optax linear schedule."""
    beta = optax.linear_schedule(0.0, 1.0, transition_steps=4)  # 0, 1/4, 1/2, 3/4, 1, 1, ...

    def loss_fn(params, batch, key, step):
        del batch, key
        return beta(step) * params["w"] ** 2 / 2, {"beta": beta(step)}

    tx = optax.sgd(0.5)
    train_step = make_train_step(loss_fn, tx, loss_takes_step=True, schedule=beta)
    state = TrainState.create({"w": jnp.float32(1.0)}, tx)
    batch = {"x": np.zeros((8, 1), np.float32)}
    betas, weights, programs = [], [], []
    for _ in range(6):
        state, metrics = train_step(state, batch, jax.random.key(0))
        betas.append(float(metrics["beta"]))
        weights.append(float(state.params["w"]))
        assert float(metrics["learning_rate"]) == betas[-1]  # both evaluated at state.step
        programs.append(train_step._cache_size())
    assert betas == [0.0, 0.25, 0.5, 0.75, 1.0, 1.0]
    # w <- w - 0.5 * beta * w, exactly representable: 1, 7/8, 7/8 * 3/4, ...
    assert weights == [1.0, 0.875, 0.65625, 0.41015625, 0.205078125, 0.1025390625]
    # The step is traced: no new program per step (the first call's uncommitted state aside).
    assert programs[1:] == [programs[1]] * 5


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
