"""The class-conditional Gated PixelCNN (``pixelcnn.py:conditional``) task on real MNIST."""

import json

import jax
import numpy as np

from experiments.configs.pixelcnn import get_config
from jaxgen import data, parallel, tasks
from jaxgen.train import loop


def _config(prepared_tfds):
    config = get_config("conditional,tiny")
    config.data_dir = str(prepared_tfds)
    return config


def make_task(config):
    return tasks.from_config("autoregressive", config)[1]


def test_the_label_changes_the_likelihood(prepared_tfds):
    config = _config(prepared_tfds)
    task = make_task(config)
    batch = data.train_batches(
        "mnist", batch_size=8, seed=0, num_levels=2, binarize="dynamic", data_dir=config.data_dir
    )[0]
    assert batch["image"].max() == 1 and (batch["label"] >= 0).all()
    params = task.init(jax.random.key(0), batch)
    key = jax.random.key(1)
    _, right = task.loss_fn(params, batch, key)
    _, wrong = task.loss_fn(params, {**batch, "label": (batch["label"] + 1) % 10}, key)
    assert abs(float(right["nll_nats"]) - float(wrong["nll_nats"])) > 1e-3


def test_tiny_conditional_run_trains_and_draws_labelled_samples(prepared_tfds, tmp_path):
    config = _config(prepared_tfds)
    state = loop.train_and_evaluate(make_task(config), config, tmp_path, mesh=parallel.make_mesh(1))
    assert int(state.step) == config.num_steps
    assert "v0_label" in state.params["params"]  # the label embeddings were trained
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    (test,) = [row for row in rows if row["split"] == "test"]
    assert test["num_examples"] == 256  # the tiny config's test_max_examples
    assert 0 < test["nll_nats"] < 784 * np.log(2)  # better than a fair coin per pixel
    names = sorted(p.name for p in (tmp_path / "samples").glob("*.png"))
    assert names == ["step0000020_completions.png", "step0000020_samples.png"]
