"""experiments.benchmark: case selection, window sizing, tables, and a real (VAE) run.

PyTorch is not a test dependency: the twins themselves are checked by the
benchmark before it times them (equal parameter counts, equal loss with the
same params); here only the error without PyTorch is tested.
"""

import sys

import numpy as np
import pytest

from experiments import benchmark


def test_steps_per_window_fills_the_window():
    assert benchmark.steps_per_window(step_s=0.5, window_s=10.0) == 20
    assert benchmark.steps_per_window(step_s=3.0, window_s=10.0) == 3
    assert benchmark.steps_per_window(step_s=60.0, window_s=10.0) == 1
    with pytest.raises(ValueError, match="step_s=0"):
        benchmark.steps_per_window(step_s=0.0, window_s=10.0)


def test_select_keeps_the_named_cases_of_a_kind_and_rejects_unknown_ones():
    assert benchmark.select(None, benchmark.TRAIN_CASES) == list(benchmark.TRAIN_CASES)
    names = "vae,pixelcnn_cpu_b1"
    assert benchmark.select(names, benchmark.TRAIN_CASES) == ["vae"]
    assert benchmark.select(names, benchmark.SAMPLING_CASES) == ["pixelcnn_cpu_b1"]
    with pytest.raises(SystemExit, match="'pixelcnn_99'"):
        benchmark.select("vae,pixelcnn_99", benchmark.TRAIN_CASES)


def test_every_twin_case_is_a_train_case_of_a_model_with_a_twin():
    assert set(benchmark.TWIN_CONFIGS) <= set(benchmark.TRAIN_CASES)
    for make_config in benchmark.TWIN_CONFIGS.values():
        config = make_config()
        assert config.model.name in ("pixelcnn", "gated") and config.batch_size == 32


def _row(**extra) -> dict:
    return {
        "params": 53_634,
        "batch_size": 32,
        "lower_s": 1.25,
        "compile_s": 6.5,
        "first_call_s": 0.8,
        "train_images_per_s": 120.0,
        "gflop_per_step": 1.5,
        "gflop_per_s": 45.0,
        "fraction_of_peak": 0.25,
        **extra,
    }


def test_train_table_shows_the_ratio_only_for_twin_cases():
    rows = {
        "pixelcnn_15x16": _row(torch_images_per_s=60.0, torch_gflop_per_s=22.5, ratio=2.0),
        "vae": _row(),
    }
    table = benchmark.train_table(rows, peak=180e9).splitlines()
    assert table[0].count("|") == 12  # 11 columns
    assert "| 53,634 | 32 | 1.2 + 6.5 | 0.80 | 120.00 | 1.50 | 45.0 (25.0%) | 60.00 " in table[2]
    assert table[2].endswith("| 22.5 | **2.00x** |")
    assert table[3].endswith("| — | — | — |")
    assert table[-1] == "float32 matmul peak (2048 x 2048 `jnp.dot`): 180.0 GFLOP/s"


def test_sampling_table_marks_estimated_naive_times():
    rows = {
        "a": {
            "shape": [16, 28, 28, 1],
            "num_levels": 2,
            "cached_compile_s": 2.0,
            "cached_s": 0.1,
            "naive_s": 25.0,
            "same_samples": True,
            "speedup": 250.0,
        },
        "b": {
            "shape": [16, 28, 28, 1],
            "num_levels": 2,
            "cached_compile_s": 2.0,
            "cached_s": 0.5,
            "naive_s": 50.0,
            "naive_estimated": True,
            "speedup": 100.0,
        },
    }
    table = benchmark.sampling_table(rows).splitlines()
    assert table[2] == "| a | (16, 28, 28, 1), 2 | 2.0 | 0.1000 | 25.00 | 250x | yes |"
    assert (
        table[3] == "| b | (16, 28, 28, 1), 2 | 2.0 | 0.5000 | ≈ 50.0 (est.) | 100x | (estimate) |"
    )


def test_vs_torch_without_pytorch_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)  # import torch now raises ImportError
    monkeypatch.delitem(sys.modules, "experiments.torch_twin", raising=False)
    with pytest.raises(SystemExit, match=r"pip install -e '\.\[bench\]'"):
        benchmark.load_twins()


def test_bad_window_arguments_are_rejected(capsys):
    with pytest.raises(SystemExit):
        benchmark.main(["--windows", "0"])
    assert "--windows=0" in capsys.readouterr().err


def test_a_vae_train_row_is_measured(tmp_path):
    out, md = tmp_path / "bench.json", tmp_path / "bench.md"
    results = benchmark.main(
        [
            "--only",
            "train",
            "--cases",
            "vae",
            "--windows",
            "1",
            "--window_s",
            "0.2",
            "--out",
            str(out),
            "--markdown",
            str(md),
        ]
    )
    row = results["train"]["vae"]
    # IWAE's MLP 784-200-200-50: encoder 784*200+200, 200*200+200, 200*100+100 (mean, logvar);
    # decoder 50*200+200, 200*200+200, 200*784+784.
    assert row["params"] == 157_000 + 40_200 + 20_100 + 10_200 + 40_200 + 157_584
    for key in ("lower_s", "compile_s", "first_call_s", "train_images_per_s", "gflop_per_s"):
        assert np.isfinite(row[key]) and row[key] > 0, key
    assert 0 < row["fraction_of_peak"]
    assert results["matmul_peak_gflop_per_s"] > 0
    assert "VAE" in md.read_text() and out.exists()
