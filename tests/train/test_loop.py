"""The loop: exact resume from a real Orbax checkpoint, exact eval averages."""

import dataclasses
import json

import jax
import numpy as np
import pytest

from experiments.pixelcnn import make_model, make_task
from jaxgen import data, losses, parallel
from jaxgen.train import evaluate, loop, make_eval_step

MESH = parallel.make_mesh(1)


class Interrupted(Exception):
    """Stands for a run killed in the middle."""


class _InterruptAt:
    """Wraps ``TrainBatches``; its iterator raises Interrupted before yielding ``step``."""

    def __init__(self, batches, step):
        self._batches, self._step = batches, step

    def __getitem__(self, step):
        return self._batches[step]

    def iterate(self, start):
        for step in range(start, self._step):
            yield self._batches[step]
        raise Interrupted


def _rows(workdir):
    """metrics.jsonl without the timing column."""
    lines = (workdir / "metrics.jsonl").read_text().splitlines()
    return [{k: v for k, v in json.loads(x).items() if k != "examples_per_sec"} for x in lines]


@pytest.fixture
def config(tiny_config):
    tiny_config.num_steps = 8
    tiny_config.log_every = 2
    tiny_config.eval_every = 4
    tiny_config.checkpoint_every = 4
    tiny_config.eval_max_examples = 32
    return tiny_config


def test_resume_continues_exactly(config, tmp_path, monkeypatch):
    task = dataclasses.replace(make_task(config), write_samples=None)
    full = loop.train_and_evaluate(task, config, tmp_path / "full", mesh=MESH)

    train_batches = data.train_batches
    monkeypatch.setattr(
        data, "train_batches", lambda *a, **k: _InterruptAt(train_batches(*a, **k), step=6)
    )
    with pytest.raises(Interrupted):  # after 6 updates, 2 past the checkpoint at step 4
        loop.train_and_evaluate(task, config, tmp_path / "resumed", mesh=MESH)
    assert sorted(p.name for p in (tmp_path / "resumed" / "checkpoints").iterdir()) == ["4"]
    monkeypatch.undo()
    resumed = loop.train_and_evaluate(task, config, tmp_path / "resumed", mesh=MESH)

    assert int(resumed.step) == int(full.step) == 8
    for a, b in zip(jax.tree.leaves(full), jax.tree.leaves(resumed), strict=True):
        np.testing.assert_array_equal(a, b)  # bitwise equal on CPU
    assert _rows(tmp_path / "resumed") == _rows(tmp_path / "full")
    splits = [(row["step"], row["split"]) for row in _rows(tmp_path / "full")]
    assert splits == [
        (2, "train"),
        (4, "train"),
        (4, "eval"),
        (6, "train"),
        (8, "train"),
        (8, "eval"),
        (8, "test"),
    ]


def test_evaluate_averages_exactly_over_a_padded_last_batch(config):
    task = make_task(config)
    mesh = parallel.make_mesh(8)
    images = next(
        iter(
            data.eval_batches(
                "binarized_mnist", "test", batch_size=40, num_levels=2, data_dir=config.data_dir
            )
        )
    )["image"]
    params = task.init(jax.random.key(0), {"image": images})
    nll = losses.autoregressive_nll(make_model(config).apply(params, images), images)

    for batch_size in (16, 48):  # 40 = 16 + 16 + 8 of 16, or 40 of 48: last batch masked
        config.batch_size = batch_size
        eval_step = make_eval_step(task.eval_fn, mesh)
        result = evaluate(eval_step, params, config, "test", jax.random.key(1), mesh, 40)
        assert result["num_examples"] == 40
        np.testing.assert_allclose(result["nll_nats"], np.mean(nll), rtol=1e-6)
        np.testing.assert_allclose(
            result["bits_per_dim"], np.mean(losses.bits_per_dim(nll, 28 * 28)), rtol=1e-6
        )
