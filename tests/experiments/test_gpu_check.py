"""experiments.gpu_check --smoke: the GPU machine's code path, tiny, on the CPU."""

import json
import math
import os
import subprocess
import sys

import pytest

from experiments import gpu_check
from tests.conftest import REPO, xla_flags


def _numbers(tree):
    """Every int or float leaf of a JSON tree (booleans aside)."""
    if isinstance(tree, dict):
        for value in tree.values():
            yield from _numbers(value)
    elif isinstance(tree, list):
        for value in tree:
            yield from _numbers(value)
    elif isinstance(tree, int | float) and not isinstance(tree, bool):
        yield tree


def test_smoke_run_writes_every_row(tmp_path, prepared_tfds):
    out = tmp_path / "check"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "experiments.gpu_check",
            "--smoke",
            "--train_seconds",  # the time-bounded run's budget (smoke default 20 s)
            "5",
            "--out",
            str(out),
            "--data_dir",
            str(prepared_tfds),
        ],
        cwd=REPO,
        # One device, as on the one-GPU machine it is for (the suite's 8 simulated CPU devices
        # once deadlocked in an all-reduce rendezvous here, on a loaded 2-core CPU).
        env={**os.environ, "PYTHONPATH": str(REPO), "XLA_FLAGS": xla_flags()},
        check=True,
        timeout=600,
    )
    results = json.loads((out / "gpu_check.json").read_text())
    dtypes = gpu_check.available_dtypes()
    assert [(r["model"], r["dtype"]) for r in results["train"]] == [
        (m, d) for m in gpu_check.MODELS for d in dtypes
    ]
    assert [(r["model"], r["num_images"]) for r in results["sampling"]] == [
        (m, n) for m in gpu_check.MODELS for n in gpu_check.SMOKE_SAMPLE_SIZES
    ]
    assert set(results["matmul_tflop_per_s"]) == {f"{d} 256x256" for d in gpu_check.DTYPES}
    nll = results["nll"]
    assert nll["dataset"] == "binarized_mnist" and nll["num_steps"] >= 1
    assert nll["test_examples"] == 256  # the tiny config's; the GPU run: the whole split
    # A barely trained binary model: below the uniform model's 784 log 2 nats, above 0.
    assert 0 < nll["test_nll_nats"] < 784 * math.log(2) + 1
    assert all(math.isfinite(x) and x > 0 for x in _numbers(results))
    table = (out / "gpu_check.md").read_text()
    for r in results["train"]:
        assert f"| {r['model']} | {r['dtype']} | {r['params']:,} |" in table
    assert (
        table.count("| pixelcnn | ") + table.count("| gated | ")
        == len(results["train"]) + len(results["sampling"]) + 1
    )  # + the time-bounded run's row


def test_nonpositive_train_seconds_are_rejected(tmp_path, capsys):
    with pytest.raises(SystemExit):
        gpu_check.main(["--out", str(tmp_path), "--train_seconds", "0"])
    assert "--train_seconds=0.0 must be positive" in capsys.readouterr().err


def test_missing_data_is_reported_before_any_measurement(tmp_path, capsys):
    with pytest.raises(SystemExit):
        gpu_check.main(
            [
                "--out",
                str(tmp_path / "out"),
                "--raw_dir",
                str(tmp_path / "no_raw"),
                "--data_dir",
                str(tmp_path / "tfds"),
            ]
        )
    assert "binarized_mnist" in capsys.readouterr().err
    assert not (tmp_path / "out" / "gpu_check.json").exists()
