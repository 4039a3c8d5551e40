"""A tiny real run of ``experiments.rbm`` in this process, loaded back with ``jaxgen.load_run``."""

import json
import pathlib

import jax
import numpy as np
import pytest
from PIL import Image

import jaxgen
from experiments import rbm as rbm_experiment
from experiments.configs import rbm as rbm_config
from jaxgen import keys, train
from jaxgen.validation import ConfigError

STEPS = 4


@pytest.fixture(scope="module")
def workdir(prepared_tfds, raw_dir, tmp_path_factory) -> pathlib.Path:
    """The workdir of ``experiments/configs/rbm.py:tiny,pcd`` trained for STEPS steps."""
    config = rbm_config.get_config("tiny,pcd")
    config.data_dir, config.raw_dir = str(prepared_tfds), str(raw_dir)
    config.num_steps = config.eval_every = config.checkpoint_every = STEPS
    config.log_every = 2
    workdir = tmp_path_factory.mktemp("rbm")
    rbm_experiment.run(config, workdir)
    return workdir


def _rows(workdir: pathlib.Path) -> list[dict]:
    return [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]


def test_the_test_row_carries_the_ais_estimate_and_its_band(workdir, capsys):
    rows = _rows(workdir)
    train_row = next(r for r in rows if r["split"] == "train")
    assert {"loss", "free_energy_gap", "recon_error", "momentum"} <= set(train_row)
    test = rows[-1]
    assert test["split"] == "test" and test["num_examples"] == 256
    assert (test["ais_runs"], test["ais_steps"]) == (16, 100)  # tiny's test AIS
    assert test["log_z_low"] <= test["log_z"] <= test["log_z_high"]
    np.testing.assert_allclose(test["nll_nats"], test["free_energy"] + test["log_z"], rtol=1e-5)
    np.testing.assert_allclose(test["bits_per_dim"], test["nll_nats"] / 784 / np.log(2), 1e-5)
    eval_row = next(r for r in rows if r["split"] == "eval")
    assert (eval_row["ais_runs"], eval_row["ais_steps"]) == (8, 20)  # the cheaper periodic AIS
    for name in ("samples", "filters", "completions"):
        assert Image.open(workdir / "samples" / f"step{STEPS:07d}_{name}.png").size[0] > 28


def test_load_run_recomputes_the_test_row_and_samples(workdir):
    run = jaxgen.load_run(workdir)
    assert (run.family, run.step, run.density) == ("rbm", STEPS, "estimate")
    assert "16 runs of 100 steps" in run.density_note
    row, expected = run.evaluate(), _rows(workdir)[-1]
    for name in set(expected) - {"step", "split"}:
        np.testing.assert_allclose(row[name], expected[name], rtol=1e-5, err_msg=name)
    samples = run.sample(jax.random.key(0), 3)
    assert samples.shape == (3, 28, 28, 1) and samples.dtype == np.int32
    np.testing.assert_array_equal(samples, run.sample(jax.random.key(0), 3))
    means = run.sample(jax.random.key(0), 2, num_steps=5, init="random", mean_field=True)
    assert means.dtype == np.float32 and 0 < means.min() and means.max() < 1
    with pytest.raises(ConfigError, match="temperature"):
        run.sample(jax.random.key(0), 2, temperature=0.5)


def test_log_likelihood_with_the_eval_key_is_the_test_rows(workdir):
    run = jaxgen.load_run(workdir)
    batches = list(train.split_batches(run.config, "test", 256))
    images = np.concatenate([b["image"][b["mask"]] for b in batches])
    with pytest.raises(ConfigError, match="pass a key"):
        run.log_likelihood(images[:2])
    log_px = run.log_likelihood(images, keys.make_keys(run.config.seed).eval)
    np.testing.assert_allclose(-log_px.mean(), _rows(workdir)[-1]["nll_nats"], rtol=1e-5)
    known = np.zeros((28, 28), bool)
    known[:14] = True
    filled = run.complete(jax.random.key(1), images[:2], known, num_steps=3)
    np.testing.assert_array_equal(filled[:, :14], images[:2, :14])
