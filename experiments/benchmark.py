"""Speed of training and sampling, measured in one run so ratios are comparable.

    python -m experiments.benchmark [--vs torch] [--only=train|sampling] [--cases=a,b]
        [--full] [--out=FILE.json] [--markdown=FILE.md]

Training (``TRAIN_CASES``): each model's real jitted train step (guard and
Adam included) on a random batch of 28x28 binary images: compile time (trace
and lower, XLA compile, first call), images/s (median of ``--windows`` timed
windows of about ``--window_s`` seconds each), XLA's FLOP count of one step and
the achieved GFLOP/s, beside the machine's float32 matmul peak measured in the
same run (a 2048 x 2048 ``jnp.dot``).

``--vs torch`` (needs ``pip install -e '.[bench]'``): for the PixelCNN and
Gated PixelCNN cases, the PyTorch eager twin (``experiments.torch_twin``) of
the same network, with the same batch, loss and Adam, on the same number of
threads. Before anything is timed the benchmark asserts that both have the same
number of parameters and, with jaxgen's initial params copied into the twin,
the same loss. Windows of jaxgen and PyTorch alternate; the ratio is jaxgen's
images/s over PyTorch's. The twin's GFLOP/s use XLA's count of jaxgen's step
(the same useful work; the twin's dense convolutions also multiply the masks' zeros).
PyTorch's OpenMP threads wait passively (``OMP_WAIT_POLICY=PASSIVE`` unless set;
see ``passive_openmp_or_restart``); XLA's CPU pool has one thread per core.

Sampling (``SAMPLING_CASES``): compile time and seconds per call of
``sampling.autoregressive_sample``, cached (fastest of 3 calls) and naive; the
naive sampler runs in full where it is marked so (or everywhere with
``--full``), where it checks that both drew identical samples, and is otherwise
estimated from 2 full passes (``timing.naive_seconds_estimate``).

Results go to stdout as one JSON line per case, then as Markdown tables; with
``--out`` to a JSON file and with ``--markdown`` to a Markdown file.
"""

import argparse
import json
import os
import pathlib
import platform
import statistics
import sys
import time
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
from ml_collections import ConfigDict

from experiments import speed
from experiments.configs import gan as gan_config
from experiments.configs import pixelcnn as pixelcnn_config
from experiments.configs import pixelrnn as pixelrnn_config
from experiments.configs import vae as vae_config
from jaxgen import timing
from jaxgen.models import registry


def _pixelcnn(variants: str = "", batch_size: int | None = None, **model) -> ConfigDict:
    """A ``pixelcnn`` experiment config with some model sizes (and the batch size) replaced."""
    config = pixelcnn_config.get_config(variants)
    config.model.update(model)
    if batch_size is not None:
        config.batch_size = batch_size
    return config


# Issue 11's networks, batch 32, which have a PyTorch twin: name -> the experiment config.
TWIN_CONFIGS: dict[str, Callable[[], ConfigDict]] = {
    "pixelcnn_15x16": lambda: _pixelcnn(num_layers=15, features=16, batch_size=32),
    "gated_10x128": lambda: _pixelcnn(
        "gated", num_layers=10, features=128, kernel_size=3, batch_size=32
    ),
    "pixelcnn_15x128": lambda: _pixelcnn(batch_size=32),
}
# name -> (description, function -> TrainCase).
TRAIN_CASES: dict[str, tuple[str, Callable[[], speed.TrainCase]]] = {
    "pixelcnn_15x16": (
        "PixelCNN, 15 blocks, h=16, head 32",
        lambda: speed.autoregressive_case(TWIN_CONFIGS["pixelcnn_15x16"]()),
    ),
    "gated_10x128": (
        "Gated PixelCNN, 10 layers x 128, kernel 3, head 32",
        lambda: speed.autoregressive_case(TWIN_CONFIGS["gated_10x128"]()),
    ),
    "pixelcnn_15x128": (
        "PixelCNN, 15 blocks, h=128, head 32 (paper trunk)",
        lambda: speed.autoregressive_case(TWIN_CONFIGS["pixelcnn_15x128"]()),
    ),
    "row_lstm_cpu": (
        "Row LSTM `pixelrnn.py:row_lstm,cpu`",
        lambda: speed.autoregressive_case(pixelrnn_config.get_config("row_lstm,cpu"), "row_lstm"),
    ),
    "diagonal_bilstm_cpu": (
        "Diagonal BiLSTM `pixelrnn.py:diagonal_bilstm,cpu`",
        lambda: speed.autoregressive_case(
            pixelrnn_config.get_config("diagonal_bilstm,cpu"), "diagonal_bilstm"
        ),
    ),
    "pixelsnail_cpu": (
        "PixelSNAIL `pixelcnn.py:pixelsnail,cpu`",
        lambda: speed.autoregressive_case(_pixelcnn("pixelsnail,cpu")),
    ),
    "imagegpt_cpu": (
        "ImageGPT `pixelcnn.py:imagegpt,cpu`",
        lambda: speed.autoregressive_case(_pixelcnn("imagegpt,cpu")),
    ),
    "vae": (
        "VAE `vae.py` (IWAE's MLP 784-200-200-50)",
        lambda: speed.vae_case(vae_config.get_config()),
    ),
    "dcgan_cpu": (
        "DCGAN `gan.py:cpu` (one D and one G update)",
        lambda: speed.gan_case(gan_config.get_config("cpu")),
    ),
}
# name -> (function -> config, sample shape, run naive in full by default).
SAMPLING_CASES: dict[str, tuple[Callable[[], ConfigDict], tuple[int, ...], bool]] = {
    "pixelcnn_cpu_b1": (lambda: _pixelcnn("cpu"), (1, 28, 28, 1), True),
    "pixelcnn_cpu_b16": (lambda: _pixelcnn("cpu"), (16, 28, 28, 1), True),
    "pixelcnn_15x16_b16": (TWIN_CONFIGS["pixelcnn_15x16"], (16, 28, 28, 1), False),
    "gated_10x128_b16": (TWIN_CONFIGS["gated_10x128"], (16, 28, 28, 1), False),
    "pixelcnn_15x128_b16": (TWIN_CONFIGS["pixelcnn_15x128"], (16, 28, 28, 1), False),
    "gated_cpu_b16": (lambda: _pixelcnn("gated,cpu"), (16, 28, 28, 1), False),
    "row_lstm_cpu_b16": (
        lambda: pixelrnn_config.get_config("row_lstm,cpu"),
        (16, 28, 28, 1),
        False,
    ),
    "diagonal_bilstm_cpu_b16": (
        lambda: pixelrnn_config.get_config("diagonal_bilstm,cpu"),
        (16, 28, 28, 1),
        False,
    ),
    "pixelsnail_cpu_b16": (lambda: _pixelcnn("pixelsnail,cpu"), (16, 28, 28, 1), False),
    "pixelsnail_cpu_b64": (lambda: _pixelcnn("pixelsnail,cpu"), (64, 28, 28, 1), False),
    "imagegpt_cpu_b16": (lambda: _pixelcnn("imagegpt,cpu"), (16, 28, 28, 1), False),
    "imagegpt_cpu_b64": (lambda: _pixelcnn("imagegpt,cpu"), (64, 28, 28, 1), False),
    "pixelcnn_tiny_32x32x3_b16": (lambda: _pixelcnn("tiny"), (16, 32, 32, 3), False),
}
NAIVE_ESTIMATE_PASSES = 2


def num_threads() -> int:
    """CPU cores this process may run on (the thread count of XLA's and PyTorch's pools)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


def steps_per_window(step_s: float, window_s: float) -> int:
    """Steps (at least 1) that fill a window of about ``window_s`` seconds at ``step_s`` each."""
    if not step_s > 0 or not window_s > 0:
        raise ValueError(f"step_s={step_s} and window_s={window_s} must be positive.")
    return max(1, round(window_s / step_s))


def train_row(run: speed.TrainRun, seconds: list[float], steps: int) -> dict:
    """The JSON row of one jaxgen train case from its timed windows."""
    step_s = statistics.median(seconds) / steps
    return {
        "model": run.case.model_config,
        "params": run.num_params,
        "batch_size": run.case.batch_size,
        "lower_s": round(run.lower_s, 2),
        "compile_s": round(run.compile_s, 2),
        "first_call_s": round(run.first_call_s, 2),
        "steps_per_window": steps,
        "train_images_per_s": round(run.case.batch_size / step_s, 2),
        "gflop_per_step": round(run.flops / 1e9, 3),
        "gflop_per_s": round(run.flops / step_s / 1e9, 2),
    }


def load_twins():
    """The ``experiments.torch_twin`` module, or a SystemExit naming the extra to install."""
    try:
        from experiments import torch_twin  # only with --vs torch: needs the bench extra
    except ImportError as error:
        raise SystemExit(
            f"--vs torch needs PyTorch ({error}): install the bench extra, "
            "pip install -e '.[bench]'."
        ) from None
    return torch_twin


def bench_train(name: str, windows: int, window_s: float, twins=None) -> dict:
    """Compiles and times one train case, and its PyTorch twin when ``twins`` is given.

    Args:
      name: a key of ``TRAIN_CASES``.
      windows: timed windows per model.
      window_s: seconds a window should last.
      twins: the ``experiments.torch_twin`` module, or None for jaxgen only.

    Returns:
      The case's JSON row.
    """
    run = speed.prepare_train(TRAIN_CASES[name][1]())
    twin = None
    first_step_s = run.first_call_s
    if twins is not None and name in TWIN_CONFIGS:
        twin = twins.TwinRun(TWIN_CONFIGS[name](), num_threads())
        if twin.num_params != run.num_params:
            raise ValueError(f"{name}: twin {twin.num_params} params, jaxgen {run.num_params}.")
        first_step_s = max(first_step_s, twin.first_step_s)
    steps = steps_per_window(first_step_s, window_s)
    seconds, twin_seconds = [], []
    # Interleaved, so the neighbours' load hits both alike. Each window follows one untimed
    # step: on these VMs a jaxgen step right after a pause (the twin's window, or a 5 s
    # sleep) measured 1.5-2.5x slower than the next one (PixelCNN 15x128: 4.7-7.8 s, 3.1 s).
    for _ in range(windows):
        run.window(1)
        seconds.append(run.window(steps))
        if twin is not None:
            twin.window(1)
            twin_seconds.append(twin.window(steps))
    row = train_row(run, seconds, steps)
    if twin is not None:
        twin_step_s = statistics.median(twin_seconds) / steps
        row["torch_first_step_s"] = round(twin.first_step_s, 2)
        row["torch_images_per_s"] = round(run.case.batch_size / twin_step_s, 2)
        row["torch_gflop_per_s"] = round(run.flops / twin_step_s / 1e9, 2)
        row["ratio"] = round(row["train_images_per_s"] / row["torch_images_per_s"], 2)
    return row


def bench_sampling(name: str, full: bool) -> dict:
    """Cached sampling of one case, and naive sampling run in full or estimated."""
    make_config, shape, naive_in_full = SAMPLING_CASES[name]
    config = make_config()
    num_levels = 256 if shape[-1] == 3 else config.num_levels
    model = registry.build_model(config.model.to_dict(), num_levels)
    params = jax.jit(model.init)(jax.random.key(0), jnp.zeros((1, *shape[1:]), jnp.int32))
    methods = ("naive", "cached") if full or naive_in_full else ("cached",)
    timings = timing.time_sampling(model, params, shape, methods, repeats={"cached": 3})
    row = {"model": config.model.to_dict(), "num_levels": num_levels, "shape": list(shape)}
    for method, t in timings.items():
        row[f"{method}_compile_s"] = round(t.compile_s, 2)
        row[f"{method}_s"] = round(t.sample_s, 4)
    if "naive" in timings:
        row["same_samples"] = bool(
            np.array_equal(timings["naive"].samples, timings["cached"].samples)
        )
    else:
        row["naive_s"] = round(
            timing.naive_seconds_estimate(model, params, shape, NAIVE_ESTIMATE_PASSES), 2
        )
        row["naive_estimated"] = True
    row["speedup"] = round(row["naive_s"] / row["cached_s"], 1)
    return row


def machine() -> dict:
    """What the numbers were measured on."""
    info = {
        "device": jax.devices()[0].device_kind,
        "num_devices": jax.device_count(),
        "threads": num_threads(),
        "python": platform.python_version(),
        "jax": jax.__version__,
        "jaxlib": jax.lib.__version__ if hasattr(jax.lib, "__version__") else None,
        "xla_flags": os.environ.get("XLA_FLAGS", ""),
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", ""),
        "load_average": list(os.getloadavg()),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }
    cpuinfo = pathlib.Path("/proc/cpuinfo")
    if cpuinfo.exists():
        text = cpuinfo.read_text()
        names = [
            line.split(":", 1)[1].strip() for line in text.splitlines() if "model name" in line
        ]
        info["cpu"] = names[0] if names else platform.processor()
        info["avx512"] = " avx512f" in text
    return info


def train_table(rows: dict[str, dict], peak: float) -> str:
    """Markdown table of the train rows."""
    twin = any("ratio" in row for row in rows.values())
    head = [
        "network",
        "params",
        "batch",
        "lower + compile (s)",
        "first call (s)",
        "jaxgen img/s",
        "GFLOP/step",
        "jaxgen GFLOP/s (% of peak)",
    ]
    if twin:
        head += ["PyTorch img/s", "PyTorch GFLOP/s", "ratio"]
    lines = ["| " + " | ".join(head) + " |", "| --- |" + " ---: |" * (len(head) - 1)]
    for name, row in rows.items():
        cells = [
            TRAIN_CASES[name][0],
            f"{row['params']:,}",
            str(row["batch_size"]),
            f"{row['lower_s']:.1f} + {row['compile_s']:.1f}",
            f"{row['first_call_s']:.2f}",
            f"{row['train_images_per_s']:.2f}",
            f"{row['gflop_per_step']:.2f}",
            f"{row['gflop_per_s']:.1f} ({100 * row['fraction_of_peak']:.1f}%)",
        ]
        if twin:
            cells += (
                [f"{row['torch_images_per_s']:.2f}", f"{row['torch_gflop_per_s']:.1f}"]
                + [f"**{row['ratio']:.2f}x**"]
                if "ratio" in row
                else ["—", "—", "—"]
            )
        lines.append("| " + " | ".join(cells) + " |")
    lines.append(f"\nfloat32 matmul peak (2048 x 2048 `jnp.dot`): {peak / 1e9:.1f} GFLOP/s")
    return "\n".join(lines)


def sampling_table(rows: dict[str, dict]) -> str:
    """Markdown table of the sampling rows."""
    lines = [
        "| case | shape, levels | cached compile (s) | cached (s) | naive (s) | speed-up "
        "| identical samples |",
        "| --- | --- | ---: | ---: | ---: | ---: | --- |",
    ]
    for name, row in rows.items():
        naive = (
            f"≈ {row['naive_s']:.1f} (est.)"
            if row.get("naive_estimated")
            else f"{row['naive_s']:.2f}"
        )
        same = {True: "yes", False: "**no**", None: "(estimate)"}[row.get("same_samples")]
        lines.append(
            f"| {name} | {tuple(row['shape'])}, {row['num_levels']} "
            f"| {row['cached_compile_s']:.1f} | {row['cached_s']:.4f} | {naive} "
            f"| {row['speedup']:.0f}x | {same} |"
        )
    return "\n".join(lines)


def select(names: str | None, cases: dict) -> list[str]:
    """The case names of ``--cases`` (comma-separated) that are in ``cases``; all if None."""
    if names is None:
        return list(cases)
    chosen = [n for n in names.split(",") if n]
    unknown = sorted(set(chosen) - set(TRAIN_CASES) - set(SAMPLING_CASES))
    if unknown:
        raise SystemExit(
            f"Unknown benchmark case {unknown[0]!r}; train cases: {', '.join(TRAIN_CASES)}; "
            f"sampling cases: {', '.join(SAMPLING_CASES)}."
        )
    return [n for n in chosen if n in cases]


def main(argv: list[str] | None = None) -> dict:
    """Runs the benchmark; returns the results dict (also printed and written)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vs", choices=("torch",), default=None, help="compare with the twin")
    parser.add_argument("--only", choices=("train", "sampling"), default=None)
    parser.add_argument("--cases", default=None, help="comma-separated case names (default all)")
    parser.add_argument("--windows", type=int, default=3, help="timed windows per train case")
    parser.add_argument("--window_s", type=float, default=10.0, help="seconds per window")
    parser.add_argument("--full", action="store_true", help="run every naive sampler in full")
    parser.add_argument("--out", default=None, help="write the results to this JSON file")
    parser.add_argument("--markdown", default=None, help="write the tables to this file")
    args = parser.parse_args(argv)
    if args.windows < 1 or not args.window_s > 0:
        parser.error(f"--windows={args.windows} and --window_s={args.window_s} must be positive.")
    twins = load_twins() if args.vs == "torch" else None

    results = {"machine": machine()}
    if twins is not None:
        results["machine"]["torch"] = twins.torch.__version__
    peak = speed.matmul_peak(repeats=10)
    print(json.dumps({**results, "matmul_peak_gflop_per_s": round(peak / 1e9, 1)}), flush=True)
    if args.only in (None, "train"):
        results["train"] = {}
        for name in select(args.cases, TRAIN_CASES):
            row = bench_train(name, args.windows, args.window_s, twins)
            results["train"][name] = row
            print(json.dumps({f"train/{name}": row}), flush=True)
    if args.only in (None, "sampling"):
        results["sampling"] = {}
        for name in select(args.cases, SAMPLING_CASES):
            results["sampling"][name] = bench_sampling(name, args.full)
            print(json.dumps({f"sampling/{name}": results["sampling"][name]}), flush=True)
    peak = max(peak, speed.matmul_peak(repeats=10))  # the faster of the start's and the end's
    results["matmul_peak_gflop_per_s"] = round(peak / 1e9, 1)
    tables = []
    if "train" in results:
        for row in results["train"].values():
            row["fraction_of_peak"] = round(row["gflop_per_s"] * 1e9 / peak, 4)
        tables.append(train_table(results["train"], peak))
    if "sampling" in results:
        tables.append(sampling_table(results["sampling"]))
    markdown = "\n\n".join(tables) + "\n"
    print(markdown, flush=True)
    if args.out:
        pathlib.Path(args.out).write_text(json.dumps(results, indent=2) + "\n")
    if args.markdown:
        pathlib.Path(args.markdown).write_text(markdown)
    return results


def passive_openmp_or_restart() -> None:
    """With ``--vs torch``, restarts this command with ``OMP_WAIT_POLICY=PASSIVE`` unless set.

    PyTorch's OpenMP threads busy-wait by default; beside XLA's threads in one
    process that made the twin's steps 17x slower here (PixelCNN 15x16: 1.4
    against 24.6 img/s). The policy is read when PyTorch loads, which happens at
    import time (``tensorboardX`` imports it when it is installed), hence the restart.
    """
    if "--vs" in " ".join(sys.argv) and "OMP_WAIT_POLICY" not in os.environ:
        os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
        os.execv(sys.executable, [sys.executable, "-m", "experiments.benchmark", *sys.argv[1:]])


if __name__ == "__main__":
    passive_openmp_or_restart()
    main()
