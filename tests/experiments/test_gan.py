"""The GAN experiment end to end, in a real subprocess on real MNIST (tiny variant)."""

import json
import math
import os
import pathlib
import subprocess
import sys

import numpy as np
from PIL import Image

from jaxgen import viz
from tests.conftest import REPO, xla_flags

CONFIG = "--config=experiments/configs/gan.py:tiny"


def _run(args: list[str], tfds_dir: pathlib.Path, raw_dir: pathlib.Path):
    env = {**os.environ, "TFDS_DATA_DIR": str(tfds_dir), "JAXGEN_RAW_DIR": str(raw_dir)}
    env["XLA_FLAGS"] = xla_flags()  # one CPU device, as users run (-33% against the suite's 8)
    return subprocess.run(
        [sys.executable, "-m", "experiments.gan", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )


def test_tiny_run_writes_grids_fid_and_best_checkpoint_then_resumes(
    tmp_path, prepared_tfds, raw_dir
):
    workdir = tmp_path / "run"
    result = _run(["--workdir", str(workdir), CONFIG, "--config.k=2"], prepared_tfds, raw_dir)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Best FID" in result.stdout

    title = viz.FONT_SIZE + 8  # the caption band above each picture
    for step in (10, 20):
        grid = Image.open(workdir / "samples" / f"step{step:07d}_samples.png")
        # 4 samples of 28 x 28 drawn 4x upscaled (112 x 112) with 2-pixel separators.
        assert grid.size == (2 * 114 + 2, 2 * 114 + 2 + title)
        strip = Image.open(workdir / "samples" / f"step{step:07d}_interpolation.png")
        assert strip.size == (4 * 114 + 2, 2 * 114 + 2 + title)  # 2 rows of 4 steps
    progress = Image.open(workdir / "samples" / "progress.png")
    assert progress.height == 2 * 114 + 2 + title  # one row per evaluation: steps 10 and 20
    assert progress.width > 4 * 114 + 2  # the 4 fixed codes, "step N" labels on the left
    with np.load(workdir / "samples" / "progress.png.npz") as saved:
        assert saved["steps"].tolist() == [10, 20] and saved["rows"].shape == (2, 4, 28, 28, 1)

    rows = [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]
    train = [r for r in rows if r["split"] == "train"]
    assert [r["step"] for r in train] == [5, 10, 15, 20]
    for r in train:
        for name in ("d_loss", "g_loss", "d_real", "d_fake"):
            assert math.isfinite(r[name]), (name, r)
    evals = [r for r in rows if r["split"] == "eval"]
    losses = [r for r in evals if "d_real" in r]
    fids = [r for r in evals if "fid" in r]
    assert [r["step"] for r in losses] == [r["step"] for r in fids] == [10, 20]
    for r in fids:
        assert r["fid_num_samples"] == 128
        assert 0.0 <= r["fid_real_test"] < r["fid"] < 1e4
        for name in ("precision", "recall", "coverage"):  # beside FID, with their floors
            assert 0.0 <= r[name] <= 1.0 and 0.0 <= r[f"{name}_real_test"] <= 1.0, r
        assert r["density"] >= 0.0 and r["density_real_test"] > 0.0, r
        assert 0.0 <= r["class_entropy"] <= math.log(10) + 1e-9
        assert 1 <= r["classes_covered"] <= 10
    assert [r["step"] for r in rows if r["split"] == "test"] == [20]

    best = [int(p.name) for p in (workdir / "checkpoints_best").iterdir() if p.name.isdigit()]
    assert best == [min(fids, key=lambda r: r["fid"])["step"]]
    assert (workdir / "checkpoints" / "20").is_dir()
    assert list((prepared_tfds / "jaxgen_classifiers").glob("mnist_classifier_d16_*.msgpack"))

    again = _run(["--workdir", str(workdir), CONFIG, "--config.k=2"], prepared_tfds, raw_dir)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "Nothing to do" in again.stdout


def test_bad_k_is_a_one_paragraph_error(tmp_path, raw_dir):
    args = ["--workdir", str(tmp_path / "run"), CONFIG, "--config.k=3"]
    result = _run(args, tmp_path / "tfds", raw_dir)
    assert result.returncode == 2
    assert "divisible by k=3" in result.stderr
    assert "Traceback" not in result.stderr
