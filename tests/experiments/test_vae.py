"""Tiny real runs of ``experiments.vae`` and ``experiments.autoencoder`` as subprocesses.

Each experiment runs once per module (``:tiny``, real MNIST / binarized MNIST
prepared offline from the ``raw_dir`` files into a temporary TFDS folder); the
tests then read its outputs.
"""

import json
import os
import pathlib
import subprocess
import sys

import pytest
from PIL import Image

from jaxgen import viz
from tests.conftest import REPO, xla_flags

VAE_PICTURES = (
    "prior_mean",
    "prior_samples",
    "manifold",
    "edit",
    "interpolation",
    "reconstructions",
)


def _run(name: str, workdir: pathlib.Path, env: dict, *overrides: str):
    return subprocess.run(
        [
            sys.executable,
            "-m",
            f"experiments.{name}",
            f"--workdir={workdir}",
            f"--config=experiments/configs/{name}.py:tiny",
            *overrides,
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )


def _rows(workdir: pathlib.Path) -> list[dict]:
    return [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def env(prepared_tfds, raw_dir) -> dict:
    return {  # one CPU device, as users run
        **os.environ,
        "XLA_FLAGS": xla_flags(),
        "TFDS_DATA_DIR": str(prepared_tfds),
        "JAXGEN_RAW_DIR": str(raw_dir),
    }


@pytest.fixture(scope="module")
def vae_run(tmp_path_factory, env) -> pathlib.Path:
    workdir = tmp_path_factory.mktemp("vae")
    result = _run("vae", workdir, env)
    assert result.returncode == 0, result.stderr[-3000:]
    return workdir


@pytest.fixture(scope="module")
def autoencoder_run(tmp_path_factory, env) -> pathlib.Path:
    workdir = tmp_path_factory.mktemp("autoencoder")
    result = _run("autoencoder", workdir, env)
    assert result.returncode == 0, result.stderr[-3000:]
    return workdir


def test_vae_logs_elbo_and_iwae(vae_run):
    rows = _rows(vae_run)
    train = [r for r in rows if r["split"] == "train"]
    assert {"loss", "elbo", "kl", "log_likelihood", "beta"} <= set(train[0])
    assert train[0]["beta"] < 1.0 == train[-1]["beta"]  # KL warm-up in the tiny config
    (test,) = [r for r in rows if r["split"] == "test" and "iwae" in r]
    assert test["num_examples"] == 256 and test["iwae_samples"] == 10  # tiny: 256 test images
    assert test["nll_nats"] == pytest.approx(-test["iwae"])
    assert test["bits_per_dim"] == pytest.approx(test["nll_nats"] / (784 * 0.6931471805599453))
    assert test["elbo"] == pytest.approx(test["log_likelihood"] - test["kl"], rel=1e-5)
    assert test["elbo"] < test["iwae"] < 0  # L_1 <= L_10 <= log p(x) <= 0 for a pmf
    assert any(r["split"] == "eval" and "iwae" in r for r in rows)


def test_vae_writes_every_picture(vae_run):
    names = sorted(p.name for p in (vae_run / "samples").glob("*.png"))
    assert names == sorted(f"step0000010_{n}.png" for n in VAE_PICTURES)
    manifold = Image.open(vae_run / "samples" / "step0000010_manifold.png")
    # A 4 x 4 grid of 28 x 28 images drawn at 112 x 112, under a title and a row of
    # z-percentile labels, with the row labels on the left.
    assert manifold.height == 4 * 114 + 2 + 2 * (viz.FONT_SIZE + 8)
    assert manifold.width > 4 * 114 + 2


@pytest.mark.parametrize("run", ["vae_run", "autoencoder_run"])
def test_transfer_accuracies_are_logged(run, request):
    rows = [r for r in _rows(request.getfixturevalue(run)) if "labels_per_class" in r]
    assert len(rows) == 1 and rows[0]["split"] == "test" and rows[0]["labels_per_class"] == 2
    for mode in ("frozen", "finetune", "scratch"):
        assert 0.0 <= rows[0][f"accuracy_{mode}"] <= 1.0
    assert rows[0]["num_test_examples"] == 64


def test_autoencoder_logs_reconstruction_error_and_pictures(autoencoder_run):
    rows = _rows(autoencoder_run)
    (test,) = [r for r in rows if r["split"] == "test" and "mse" in r]
    assert test["num_examples"] == 256  # the tiny config's test_max_examples
    assert test["loss"] == pytest.approx(784 * test["mse"], rel=1e-5)
    names = sorted(p.name for p in (autoencoder_run / "samples").glob("*.png"))
    assert names == ["step0000010_interpolation.png", "step0000010_reconstructions.png"]


def test_rerun_resumes_and_does_not_repeat_the_transfer(vae_run, env):
    before = _rows(vae_run)
    result = _run("vae", vae_run, env)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Nothing to do" in result.stdout
    assert _rows(vae_run) == before


@pytest.mark.parametrize(
    "overrides,message",
    [
        (["--config.model.likelihood=poisson"], "likelihood='poisson'"),
        (["--config.iwae_chunk_size=3"], "iwae_chunk_size=3"),
        (["--config.num_levels=256"], "num_levels=256"),  # a Bernoulli decoder of 8-bit data
        (["--config.elbo_sample=4"], "elbo_sample"),
    ],
)
def test_bad_vae_config_ends_with_a_message(overrides, message, tmp_path, env):
    result = _run("vae", tmp_path / "run", env, *overrides)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr and message in result.stderr
