"""The non-finite guard: NaN steps are skipped in the compiled step; a NaN streak stops the run."""

import dataclasses
import json

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxgen import data, parallel
from jaxgen.train import Checkpointer, TrainingDiverged, TrainState, loop, make_train_step
from tests.train.helpers import pixelcnn_task

MESH = parallel.make_mesh(1)
POISON = -7  # a label that makes the loss NaN


def _nan_if_poisoned(loss_fn):
    """``loss_fn`` made NaN on batches whose first label is ``POISON``."""

    def poisoned(params, batch, key):
        loss, metrics = loss_fn(params, batch, key)
        return jnp.where(batch["label"][0] == POISON, jnp.nan, loss), metrics

    return poisoned


def _poison_steps(monkeypatch, steps):
    """Makes ``data.train_batches`` mark the batches of ``steps`` with ``POISON``."""
    train_batches = data.train_batches

    class Poisoned:
        def __init__(self, batches):
            self._batches = batches

        def __getitem__(self, step):
            batch = self._batches[step]
            if step in steps:
                batch = {**batch, "label": np.full_like(batch["label"], POISON)}
            return batch

        def iterate(self, start):
            step = start
            while True:
                yield self[step]
                step += 1

    monkeypatch.setattr(data, "train_batches", lambda *a, **k: Poisoned(train_batches(*a, **k)))


def _train_rows(workdir):
    rows = [json.loads(x) for x in (workdir / "metrics.jsonl").read_text().splitlines()]
    return [row for row in rows if row["split"] == "train"]


def test_step_skips_a_nan_update_but_advances():
    tx = optax.adam(0.1)

    def loss_fn(params, batch, key):
        loss = jnp.mean((params["w"] * batch["x"]) ** 2)
        return loss, {}

    step = make_train_step(loss_fn, tx, MESH)
    params = {"w": jnp.ones(3)}
    state = parallel.replicate(TrainState.create(params, tx), MESH)
    good = parallel.shard_batch({"x": np.ones((2, 3), np.float32)}, MESH)
    bad = parallel.shard_batch({"x": np.full((2, 3), np.nan, np.float32)}, MESH)

    state, metrics = step(state, good, jax.random.key(0))
    assert int(metrics["nonfinite_steps"]) == 0
    before = jax.device_get(state)
    state, metrics = step(state, bad, jax.random.key(0))
    assert int(metrics["nonfinite_steps"]) == 1
    assert np.isnan(float(metrics["loss"]))
    assert int(state.step) == 2
    after = jax.device_get(state)
    for a, b in zip(jax.tree.leaves(before.params), jax.tree.leaves(after.params), strict=True):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(
        jax.tree.leaves(before.opt_state), jax.tree.leaves(after.opt_state), strict=True
    ):
        np.testing.assert_array_equal(a, b)
    state, metrics = step(state, good, jax.random.key(0))
    assert int(metrics["nonfinite_steps"]) == 0
    assert not np.array_equal(jax.device_get(state.params["w"]), after.params["w"])


def _guarded_step(loss_fn, tx, ema_decay=None):
    """A jitted train step on the one-device mesh and its state at ``w = [1, 1, 1]``."""
    step = make_train_step(loss_fn, tx, MESH, ema_decay=ema_decay)
    state = parallel.replicate(TrainState.create({"w": jnp.ones(3)}, tx, ema_decay), MESH)
    return step, state


def _assert_unchanged(before, after):
    """Params, optimizer state and EMA of two states are equal; the step advanced by one."""
    assert int(after.step) == int(before.step) + 1
    for field in ("params", "opt_state", "ema_params"):
        old, new = jax.tree.leaves(getattr(before, field)), jax.tree.leaves(getattr(after, field))
        assert len(old) == len(new)
        for a, b in zip(old, new, strict=True):
            np.testing.assert_array_equal(a, b)


BATCH = {"x": np.ones((2, 3), np.float32)}


def test_an_infinite_gradient_of_a_finite_loss_is_skipped():
    def loss_fn(params, batch, key):  # sqrt at 0: the loss is 0, its gradient +inf
        return jnp.sum(jnp.sqrt(params["w"] - batch["x"][0])), {}

    step, state = _guarded_step(loss_fn, optax.adam(0.1), ema_decay=0.9)
    before = jax.device_get(state)
    state, metrics = step(state, parallel.shard_batch(BATCH, MESH), jax.random.key(0))
    assert float(metrics["loss"]) == 0.0 and float(metrics["grad_norm"]) == np.inf
    assert int(metrics["nonfinite_steps"]) == 1
    _assert_unchanged(before, jax.device_get(state))


def test_a_nonfinite_update_from_finite_gradients_is_skipped():
    def loss_fn(params, batch, key):
        return jnp.sum(params["w"] * batch["x"][0]), {}

    step, state = _guarded_step(loss_fn, optax.sgd(np.inf))  # an infinite learning rate
    before = jax.device_get(state)
    state, metrics = step(state, parallel.shard_batch(BATCH, MESH), jax.random.key(0))
    assert np.isfinite(float(metrics["loss"]))
    np.testing.assert_allclose(float(metrics["grad_norm"]), np.sqrt(3), rtol=1e-6)
    assert int(metrics["nonfinite_steps"]) == 1
    _assert_unchanged(before, jax.device_get(state))


def test_gradients_whose_square_overflows_are_skipped_before_adam_stores_inf():
    def loss_fn(params, batch, key):  # finite loss and gradient 1e20, but 1e20^2 = inf
        return jnp.sum(1e20 * params["w"] * batch["x"][0]), {}

    tx = optax.adam(0.1)
    grads = {"w": jnp.full(3, 1e20, jnp.float32)}
    _, unguarded = tx.update(grads, tx.init({"w": jnp.ones(3)}))
    assert not np.isfinite(np.asarray(unguarded[0].nu["w"])).all()  # what the guard prevents
    step, state = _guarded_step(loss_fn, tx, ema_decay=0.9)
    before = jax.device_get(state)
    state, metrics = step(state, parallel.shard_batch(BATCH, MESH), jax.random.key(0))
    assert np.isfinite(float(metrics["loss"])) and float(metrics["grad_norm"]) == np.inf
    assert int(metrics["nonfinite_steps"]) == 1
    _assert_unchanged(before, jax.device_get(state))


@pytest.mark.parametrize("tx", [optax.adam(1e-3), optax.rmsprop(1e-3)], ids=["adam", "rmsprop"])
def test_finite_gradient_norms_keep_the_optimizer_state_finite(tx):
    """Why the guard need not check the optimizer state: from every gradient scale whose
    squared norm is finite (1e-30 to 1e18), 40 updates leave the moments and updates finite."""
    params, update = {"w": jnp.ones(4)}, jax.jit(tx.update)
    for exponent in range(-30, 19, 4):
        state = tx.init(params)
        for i in range(40):  # alternating signs and magnitudes up to 10^exponent
            grads = {"w": jnp.float32(10.0**exponent) * jnp.array([1, -1, 0.5, -0.25]) * (-1) ** i}
            assert np.isfinite(float(optax.tree.norm(grads)))
            updates, state = update(grads, state, params)
            assert all(np.isfinite(np.asarray(x)).all() for x in jax.tree.leaves((updates, state)))


def test_the_ema_stays_on_a_skipped_step_and_moves_on_a_good_one():
    def loss_fn(params, batch, key):
        return jnp.mean((params["w"] * batch["x"]) ** 2), {}

    step, state = _guarded_step(loss_fn, optax.sgd(0.5), ema_decay=0.75)
    bad = parallel.shard_batch({"x": np.full((2, 3), np.nan, np.float32)}, MESH)
    before = jax.device_get(state)
    state, metrics = step(state, bad, jax.random.key(0))
    assert int(metrics["nonfinite_steps"]) == 1
    _assert_unchanged(before, jax.device_get(state))
    state, metrics = step(state, parallel.shard_batch(BATCH, MESH), jax.random.key(0))
    assert int(metrics["nonfinite_steps"]) == 0
    # w = 1 - 0.5 * 2/3 = 2/3 (d/dw_j mean((w x)^2) = 2 w_j / 3); ema = 0.75 * 1 + 0.25 * w.
    np.testing.assert_allclose(np.asarray(state.params["w"]), np.full(3, 2 / 3), rtol=1e-6)
    np.testing.assert_allclose(np.asarray(state.ema_params["w"]), np.full(3, 11 / 12), rtol=1e-6)


@pytest.fixture
def config(tiny_config):
    tiny_config.num_steps = 12
    tiny_config.log_every = 1
    tiny_config.eval_every = 100
    tiny_config.checkpoint_every = 4
    tiny_config.eval_max_examples = 16
    tiny_config.batch_size = 32
    tiny_config.max_nonfinite_steps = 3
    return tiny_config


@pytest.fixture
def task(config):
    task = pixelcnn_task(config)
    return dataclasses.replace(task, loss_fn=_nan_if_poisoned(task.loss_fn))


def test_a_short_nan_streak_is_skipped_and_counted(config, task, tmp_path, monkeypatch):
    config.num_steps = 6
    config.log_every = 3
    _poison_steps(monkeypatch, {2, 3})  # batches of steps 3 and 4 (0-based 2, 3)
    state = loop.train_and_evaluate(task, config, tmp_path, mesh=MESH)
    assert int(state.step) == 6
    assert [row["nonfinite_steps"] for row in _train_rows(tmp_path)] == [1, 1]
    assert all(np.isfinite(x).all() for x in jax.tree.leaves(jax.device_get(state.params)))


@pytest.mark.parametrize("log_every", [1, 100])  # detected when logging, or before a save
def test_a_long_nan_streak_stops_the_run_before_a_checkpoint(
    config, task, tmp_path, monkeypatch, log_every
):
    config.log_every = log_every
    _poison_steps(monkeypatch, set(range(4, 100)))  # steps 5, 6, 7, ... are NaN
    with pytest.raises(TrainingDiverged, match=r"stopped at step 7.*3 steps in a row"):
        loop.train_and_evaluate(task, config, tmp_path, mesh=MESH)
    with Checkpointer(tmp_path / "checkpoints", keep=3) as checkpointer:
        assert checkpointer.latest_step() == 4


def test_max_nonfinite_steps_must_be_positive(config, task, tmp_path):
    config.max_nonfinite_steps = 0
    with pytest.raises(ValueError, match="max_nonfinite_steps=0"):
        loop.train_and_evaluate(task, config, tmp_path, mesh=MESH)
