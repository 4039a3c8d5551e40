"""The loop: exact resume from a real Orbax checkpoint, exact eval averages, sample metrics."""

import dataclasses
import json
import re

import jax
import numpy as np
import orbax.checkpoint as ocp
import pytest

from experiments.configs.pixelcnn import get_config
from jaxgen import data, losses, parallel, tasks
from jaxgen.train import evaluate, loop, make_eval_step, split_batches
from jaxgen.validation import ConfigError
from tests.train.helpers import load_params, metric_rows

MESH = parallel.make_mesh(1)


def make_task(config):
    """The PixelCNN task of a pixelcnn config."""
    return tasks.from_config("autoregressive", config)[1]


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
    assert metric_rows(tmp_path / "resumed") == metric_rows(tmp_path / "full")
    # The wall clock continues across the resume from the checkpoint's meta.
    elapsed = [row["elapsed_s"] for row in _raw_rows(tmp_path / "resumed") if "elapsed_s" in row]
    assert len(elapsed) == 6 and np.all(np.diff(elapsed) > 0)
    splits = [(row["step"], row["split"]) for row in metric_rows(tmp_path / "full")]
    assert splits == [
        (2, "train"),
        (4, "train"),
        (4, "eval"),
        (6, "train"),
        (8, "train"),
        (8, "eval"),
        (8, "test"),
    ]


def _raw_rows(workdir):
    return [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]


def test_evaluate_samples_are_logged_and_the_best_variables_kept(config, tmp_path):
    config.num_steps, config.eval_every, config.checkpoint_every = 6, 2, 2
    config.keep_checkpoints = 5
    scores = {2: 3.0, 4: 1.0, 6: 2.0}
    calls = []

    def evaluate_samples(params, key, workdir, step):
        calls.append((step, workdir))
        return {"score": scores[step]}

    task = dataclasses.replace(
        make_task(config),
        write_samples=None,
        evaluate_samples=evaluate_samples,
        best_metric="score",
    )
    loop.train_and_evaluate(task, config, tmp_path, mesh=MESH)

    assert calls == [(2, tmp_path), (4, tmp_path), (6, tmp_path)]
    logged = [(r["step"], r["score"]) for r in _raw_rows(tmp_path) if "score" in r]
    assert logged == sorted(scores.items())
    assert loop.best_metric_value(tmp_path, "score") == 1.0
    best_dir = tmp_path / loop.BEST_DIR
    assert [p.name for p in best_dir.iterdir() if p.name.isdigit()] == ["4"]
    best = jax.tree.leaves(_restore_params(best_dir / "4" / "state"))
    at_4 = load_params(tmp_path, 4)  # the regular checkpoint of the same step
    for a, b in zip(best, at_4, strict=True):
        np.testing.assert_array_equal(a, b)


def _restore_params(path):
    with ocp.PyTreeCheckpointer() as checkpointer:
        return checkpointer.restore(path.absolute())["params"]


def test_a_task_without_a_way_to_train_or_a_best_metric_source_is_refused(config, tmp_path):
    task = make_task(config)
    with pytest.raises(ValueError, match="loss_fn or a make_train_step"):
        loop.train_and_evaluate(dataclasses.replace(task, loss_fn=None), config, tmp_path)
    with pytest.raises(ValueError, match="best_metric='fid' needs an evaluate_samples"):
        loop.train_and_evaluate(dataclasses.replace(task, best_metric="fid"), config, tmp_path)


def test_evaluate_averages_exactly_over_a_padded_last_batch(config):
    model, task = tasks.from_config("autoregressive", config)
    mesh = parallel.make_mesh(8)
    images = next(
        iter(
            data.eval_batches(
                "binarized_mnist", "test", batch_size=40, num_levels=2, data_dir=config.data_dir
            )
        )
    )["image"]
    params = task.init(jax.random.key(0), {"image": images})
    nll = losses.autoregressive_nll(model.apply(params, images), images)

    for batch_size in (16, 48):  # 40 = 16 + 16 + 8 of 16, or 40 of 48: last batch masked
        config.batch_size = batch_size
        eval_step = make_eval_step(task.eval_fn, mesh)
        batches = split_batches(config, "test", max_examples=40)
        result = evaluate(eval_step, params, batches, jax.random.key(1), mesh)
        assert result["num_examples"] == 40
        np.testing.assert_allclose(result["nll_nats"], np.mean(nll), rtol=1e-6)
        np.testing.assert_allclose(
            result["bits_per_dim"], np.mean(losses.bits_per_dim(nll, 28 * 28)), rtol=1e-6
        )


def test_the_test_split_is_whole_unless_test_max_examples_says_otherwise(config):
    counts = {}
    for limit in (None, 300):
        config.test_max_examples = limit
        batches = split_batches(config, "test", config.test_max_examples)
        counts[limit] = sum(int(batch["mask"].sum()) for batch in batches)
    assert counts == {None: 10_000, 300: 300}
    for variants in ("", "cpu", "gated", "conditional"):  # every reported number: the whole split
        assert get_config(variants).test_max_examples is None
    config.test_max_examples = 0
    with pytest.raises(ValueError, match="test_max_examples=0 must be positive, or None"):
        loop.check_config(config)


def test_evaluate_takes_any_batches_and_fetches_from_the_device_once(monkeypatch):
    def eval_fn(params, batch, key):
        del key
        return {"value": params["scale"] * batch["x"]}

    eval_step = make_eval_step(eval_fn, MESH)
    x = np.arange(12, dtype=np.float32)
    batches = [  # a plain list: two batches without a mask, one with two padding rows
        {"x": x[:4]},
        {"x": x[4:8]},
        {"x": x[8:12], "mask": np.array([True, True, False, False])},
    ]
    fetches = []
    device_get = jax.device_get
    monkeypatch.setattr(jax, "device_get", lambda tree: fetches.append(1) or device_get(tree))

    result = evaluate(eval_step, {"scale": np.float32(2.0)}, iter(batches), jax.random.key(0), MESH)

    assert len(fetches) == 1  # one transfer for the split, not one per batch
    assert result == {"value": 2.0 * np.mean(x[:10]), "num_examples": 10}
    with pytest.raises(ValueError, match="no examples"):
        evaluate(eval_step, {"scale": np.float32(2.0)}, [], jax.random.key(0), MESH)


def test_values_used_only_after_training_are_checked_before_it(config, monkeypatch):
    config.num_samples = 3  # the test examples of the pictures, shared out over the processes
    monkeypatch.setattr(jax, "process_count", lambda: 2)
    with pytest.raises(ValueError, match="num_samples=3 must be divisible by the number of proc"):
        loop.check_config(config)
    config.num_samples = 4
    loop.check_config(config)


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("lr_schedule", "cosine", "lr_schedule='cosine' must be one of"),  # the optimizer
        ("grad_clip_norm", -1.0, "grad_clip_norm=-1.0 must be positive"),
        ("num_levels", 3, "num_levels=3 must be in 2..2"),  # the input pipeline
        ("binarize", "dynamic", "binarize='dynamic' needs 8-bit data"),
        ("batch_size", 50_016, "batch_size=50016 is larger than the 50000 examples"),
        ("model.num_layers", 0, "PixelCNN num_layers=0 must be positive"),  # the model
        ("model.head_features", -2, "PixelCNN head_features=-2 must be positive"),
        ("keep_checkpoints", 0, "keep_checkpoints=0 must be a positive integer"),
        ("seed", -1, "seed=-1 must be an integer in [0, 2**63)"),
    ],
)
def test_bad_values_are_found_before_the_data_is_prepared(
    tmp_path, monkeypatch, key, value, message
):
    # Not prepared, no raw files: preparing would download (here: fail loudly).
    config = get_config("tiny")
    config.data_dir, config.raw_dir = str(tmp_path / "tfds"), None
    section, _, name = key.rpartition(".")
    (config[section] if section else config)[name] = value

    def prepare(*args, **kwargs):
        raise AssertionError("data.prepare was called before the checks")

    monkeypatch.setattr(data, "prepare", prepare)
    with pytest.raises(ConfigError, match=re.escape(message)):
        loop.train_and_evaluate(make_task(config), config, tmp_path / "w", mesh=MESH)
    assert not (tmp_path / "w").exists()  # nor was the workdir made
    assert not (tmp_path / "tfds").exists()


def test_a_good_config_gets_past_the_checks_to_the_data(tmp_path, monkeypatch):
    config = get_config("tiny")
    config.data_dir, config.raw_dir = str(tmp_path / "tfds"), None
    prepared = []

    def prepare(*args, **kwargs):
        prepared.append(args)
        raise data.DatasetError("not here")

    monkeypatch.setattr(data, "prepare", prepare)
    assert loop.check_run(make_task(config), config, MESH)[1](0) == config.learning_rate
    with pytest.raises(data.DatasetError, match="not here"):
        loop.train_and_evaluate(make_task(config), config, tmp_path / "w", mesh=MESH)
    assert prepared == [("binarized_mnist",)]
