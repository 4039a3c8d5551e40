"""A tiny real run of ``experiments.flow`` (RealNVP on 8-bit MNIST) as a subprocess, loaded back."""

import json
import math
import os
import pathlib
import subprocess
import sys

import jax
import numpy as np
import pytest

import jaxgen
from jaxgen import train
from jaxgen.tasks.flow import flow_sample
from jaxgen.validation import ConfigError
from tests.conftest import REPO, xla_flags


@pytest.fixture(scope="module")
def flow_run(tmp_path_factory, prepared_tfds, raw_dir) -> pathlib.Path:
    workdir = tmp_path_factory.mktemp("flow")
    env = {**os.environ, "XLA_FLAGS": xla_flags()}  # one CPU device, as users run
    command = [sys.executable, "-m", "experiments.flow", f"--workdir={workdir}"]
    data = [f"--config.data_dir={prepared_tfds}", f"--config.raw_dir={raw_dir}"]  # saved
    result = subprocess.run(
        [*command, "--config=experiments/configs/flow.py:tiny", *data],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return workdir


def _test_row(workdir: pathlib.Path) -> dict:
    rows = [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]
    (row,) = [row for row in rows if row["split"] == "test"]
    return row


def test_the_run_logs_bits_per_dim_and_writes_samples_and_a_temperature_strip(flow_run):
    row = _test_row(flow_run)
    assert row["num_examples"] == 256  # the tiny config's test_max_examples
    assert row["bits_per_dim"] == pytest.approx(row["nll_nats"] / (784 * math.log(2)))
    assert 0 < row["bits_per_dim"] < 10  # an untrained flow of 8-bit images: ~6-8 bits/dim
    names = sorted(p.name for p in (flow_run / "samples").glob("*.png"))
    assert names == ["step0000010_samples.png", "step0000010_temperatures.png"]


def test_load_run_recomputes_the_test_row_and_samples(flow_run):
    run = jaxgen.load_run(flow_run)
    assert (run.family, run.step, run.image_shape, run.num_levels) == ("flow", 10, (28, 28, 1), 256)
    assert run.density == "lower bound" and "dequantized bound" in run.density_note
    row, expected = run.evaluate(), _test_row(flow_run)
    assert row["num_examples"] == 256 and row["likelihood"] == "lower bound"
    for name in ("nll_nats", "bits_per_dim"):
        np.testing.assert_allclose(row[name], expected[name], rtol=1e-5, err_msg=name)
    key = jax.random.key(3)
    images = run.sample(key, 3)
    assert images.shape == (3, 28, 28, 1) and images.dtype == np.int32
    assert images.min() >= 0 and images.max() < 256
    np.testing.assert_array_equal(images, flow_sample(run.model, run.params, key, images.shape))
    cold = run.sample(key, 3, temperature=0.0)  # the image of z = 0, three times
    np.testing.assert_array_equal(cold, np.broadcast_to(cold[:1], cold.shape))


def test_log_likelihood_is_a_keyed_bound(flow_run):
    run = jaxgen.load_run(flow_run)
    batches = train.split_batches(run.config, "test", 64)
    images = np.concatenate([b["image"][b["mask"]] for b in batches])
    with pytest.raises(ConfigError, match="pass a key"):
        run.log_likelihood(images)
    log_px = run.log_likelihood(images, jax.random.key(1))
    assert log_px.shape == (64,) and (log_px < 0).all()
    np.testing.assert_array_equal(log_px, run.log_likelihood(images, jax.random.key(1)))
    assert abs(-log_px.mean() - _test_row(flow_run)["nll_nats"]) < 0.05 * -log_px.mean()
