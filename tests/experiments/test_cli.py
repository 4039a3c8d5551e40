"""The PixelCNN experiment from the command line, in real subprocesses."""

import json
import os
import pathlib
import subprocess
import sys

import pytest
from PIL import Image

from jaxgen import viz
from tests.conftest import REPO, xla_flags

TINY = "--config=experiments/configs/pixelcnn.py:tiny"


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The user's environment: one CPU device, a fresh TFDS folder."""
    env = {**os.environ, "XLA_FLAGS": xla_flags()}
    env["TFDS_DATA_DIR"] = str(tmp_path_factory.mktemp("tfds"))
    return env


def run_experiment(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "experiments.pixelcnn", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.fixture(scope="module")
def tiny_run(env, raw_dir, tmp_path_factory) -> tuple[pathlib.Path, subprocess.CompletedProcess]:
    """(workdir, finished process) of one tiny run on the real binarized MNIST."""
    workdir = tmp_path_factory.mktemp("run")
    result = run_experiment(env, "--workdir", str(workdir), TINY, f"--config.raw_dir={raw_dir}")
    return workdir, result


def assert_clean_error(result: subprocess.CompletedProcess, *phrases: str) -> None:
    """Exit code 2 and a final one-paragraph message naming the problem, no traceback."""
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    message = result.stderr.strip().splitlines()[-1]
    assert message.startswith("Error: "), result.stderr
    for phrase in phrases:
        assert phrase in message


def test_tiny_run_writes_metrics_checkpoint_and_pictures(tiny_run):
    workdir, result = tiny_run
    assert result.returncode == 0, result.stderr
    rows = [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]
    assert {row["split"] for row in rows} == {"train", "eval", "test"}
    (test,) = [row for row in rows if row["split"] == "test"]
    assert test["num_examples"] == 256  # --config.test_max_examples of the tiny config
    assert 0 < test["nll_nats"] < 784 * 0.7  # better than a fair coin per pixel
    # Both are float32 averages over the split: equal to float32 rounding.
    assert test["bits_per_dim"] == pytest.approx(
        test["nll_nats"] / (784 * 0.6931471805599453), rel=1e-5
    )
    assert all(row["examples_per_sec"] > 0 for row in rows if row["split"] == "train")
    assert json.loads((workdir / "config.json").read_text())["model"]["num_layers"] == 2
    assert (workdir / "checkpoints" / "20" / "state").is_dir()
    pictures = sorted((workdir / "samples").glob("*.png"))
    assert [p.name for p in pictures][-2:] == [
        "step0000020_completions.png",
        "step0000020_samples.png",
    ]
    with Image.open(pictures[-1]) as picture:
        side = 2 * (28 * viz.SCALE + viz.GAP) + viz.GAP  # 2 x 2 samples, upscaled, separators
        assert picture.size == (side, side) == (230, 230)
    assert list((workdir / "tensorboard").glob("events.out.tfevents.*"))
    assert str(workdir / "metrics.jsonl") in result.stdout


def test_unknown_config_key_is_a_clear_error(env, tmp_path):
    result = run_experiment(env, "--workdir", str(tmp_path), TINY, "--config.no_such_key=1")
    assert_clean_error(result, "no_such_key", "--config.")


def test_workdir_with_another_models_checkpoint_is_a_clear_error(env, raw_dir, tiny_run):
    workdir, _ = tiny_run
    result = run_experiment(
        env,
        "--workdir",
        str(workdir),
        TINY,
        f"--config.raw_dir={raw_dir}",
        "--config.model.features=8",
    )
    assert_clean_error(result, "different model", "features")
