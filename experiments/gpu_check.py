"""One command for an accelerator: training speed, sampling speed and a 4-minute run's NLL.

    python -m experiments.gpu_check --out DIR [--smoke] [--train_seconds=240]
        [--raw_dir=DIR] [--data_dir=DIR]

(``make gpu-check`` on a GPU machine.) Writes ``DIR/gpu_check.json`` and
``DIR/gpu_check.md``:

* ``matmul``: the float32 and bfloat16 peak of a large ``jnp.dot`` (TFLOP/s).
* ``train``: for the paper-size PixelCNN (``pixelcnn.py``) and Gated PixelCNN
  (``pixelcnn.py:gated``) in each dtype (``float32`` and, where the models
  have a ``dtype`` field, ``bfloat16``): compile times (lower, compile, first
  call), train images/s and achieved TFLOP/s (XLA's FLOP count of the step,
  see ``experiments.speed``), at the config's batch size.
* ``sampling``: cached sampling of 16 and 256 images of both models (float32):
  compile and seconds per call.
* ``nll``: a time-bounded training run of the paper-size PixelCNN on
  binarized_mnist through ``train.train_and_evaluate`` (see ``nll_row``): about
  ``--train_seconds`` of the run's wall clock, then the loop's full test-split
  evaluation (nats per image, bits/dim).

``--smoke`` runs the same code path with tiny models, 2 and 4 sampled images
and a few seconds of training, for a CPU (the test suite runs it).
"""

import argparse
import dataclasses
import json
import math
import pathlib
import shutil
import time

import jax
import numpy as np
from ml_collections import ConfigDict

from experiments import speed
from experiments.configs import pixelcnn as pixelcnn_config
from jaxgen import data, timing, train
from jaxgen.models import registry

MODELS = {"pixelcnn": "", "gated": "gated"}  # name -> variants of pixelcnn.py
DTYPES = ("float32", "bfloat16")
SAMPLE_SIZES = (16, 256)
SMOKE_SAMPLE_SIZES = (2, 4)


def model_config(name: str, smoke: bool, dtype: str = "float32") -> ConfigDict:
    """The ``pixelcnn.py`` config of model ``name`` (paper size; tiny and batch 8 with smoke)."""
    variants = ",".join(filter(None, (MODELS[name], "tiny" if smoke else "")))
    config = pixelcnn_config.get_config(variants)
    if smoke:
        config.model.update(num_layers=1, features=4, head_features=4)
        config.batch_size = 8
    if dtype != "float32":
        config.model.dtype = dtype
    return config


def available_dtypes() -> tuple[str, ...]:
    """``DTYPES`` if every measured model class has a ``dtype`` field, else float32 only."""
    classes = [registry.MODELS[name] for name in MODELS]
    has_dtype = all("dtype" in {f.name for f in dataclasses.fields(c)} for c in classes)
    return DTYPES if has_dtype else DTYPES[:1]


def train_rows(smoke: bool, windows: int, window_s: float) -> list[dict]:
    """Compile times, images/s and TFLOP/s of every model in every available dtype."""
    rows = []
    for name in MODELS:
        for dtype in available_dtypes():
            run = speed.prepare_train(speed.autoregressive_case(model_config(name, smoke, dtype)))
            steps = max(1, round(window_s / run.first_call_s))
            images_per_s = run.images_per_s(steps, windows)
            rows.append(
                {
                    "model": name,
                    "dtype": dtype,
                    "params": run.num_params,
                    "batch_size": run.case.batch_size,
                    "lower_s": run.lower_s,
                    "compile_s": run.compile_s,
                    "first_call_s": run.first_call_s,
                    "train_images_per_s": images_per_s,
                    "tflop_per_s": run.flops * images_per_s / run.case.batch_size / 1e12,
                }
            )
            print(json.dumps({"train": rows[-1]}), flush=True)
    return rows


def sampling_rows(smoke: bool) -> list[dict]:
    """Compile time and seconds of cached sampling of each model at each sample count."""
    rows = []
    for name in MODELS:
        config = model_config(name, smoke)
        model = registry.build_model(config.model.to_dict(), config.num_levels)
        example = np.zeros((1, *speed.IMAGE_SHAPE), np.int32)
        params = jax.jit(model.init)(jax.random.key(0), example)
        for num in SMOKE_SAMPLE_SIZES if smoke else SAMPLE_SIZES:
            shape = (num, *speed.IMAGE_SHAPE)
            t = timing.time_sampling(model, params, shape, ("cached",), repeats=2)["cached"]
            rows.append(
                {"model": name, "num_images": num, "compile_s": t.compile_s, "sample_s": t.sample_s}
            )
            print(json.dumps({"sampling": rows[-1]}), flush=True)
    return rows


def nll_row(args: argparse.Namespace, images_per_s: float, workdir: pathlib.Path) -> dict:
    """Trains the PixelCNN for about ``args.train_seconds`` of the run; its test-split NLL.

    The loop's wall clock (``elapsed_s``: compilation, data and evaluations
    included) is the budget. A first leg of a tenth of the steps that
    ``images_per_s`` predicts measures the loop's own speed and overhead (the
    time beyond its steps: compilation, data start-up, evaluation); the run then
    resumes for as many steps as fit in the rest of the budget less that overhead
    again (the resumed leg compiles and evaluates too).
    """
    config = model_config("pixelcnn", args.smoke)
    config.update(eval_max_examples=1000, raw_dir=args.raw_dir, data_dir=args.data_dir)
    model = registry.build_model(config.model.to_dict(), config.num_levels)
    task = speed.autoregressive_task(model)
    shutil.rmtree(workdir, ignore_errors=True)  # a fresh run, never a resume of an older one
    first = max(1, math.floor(0.1 * args.train_seconds * images_per_s / config.batch_size))
    rows = _train_to(task, config, workdir, first)
    train_rows = [row for row in rows if row["split"] == "train"]
    elapsed = train_rows[-1]["elapsed_s"]
    steps_per_s = train_rows[-1]["examples_per_sec"] / config.batch_size
    overhead = max(0.0, elapsed - first / steps_per_s)  # compilation, data start-up, evaluation
    more = math.floor((args.train_seconds - elapsed - overhead) * steps_per_s)
    if more > 0:
        rows = _train_to(task, config, workdir, first + more)
    test = [row for row in rows if row["split"] == "test"][-1]
    return {
        "model": "pixelcnn",
        "dataset": config.dataset,
        "batch_size": config.batch_size,
        "num_steps": test["step"],
        "train_seconds_budget": args.train_seconds,
        "run_elapsed_s": [row for row in rows if row["split"] == "train"][-1]["elapsed_s"],
        "test_examples": test["num_examples"],  # the whole split; 256 with --smoke (tiny)
        "test_nll_nats": test["nll_nats"],
        "test_bits_per_dim": test["bits_per_dim"],
    }


def _train_to(task, config: ConfigDict, workdir: pathlib.Path, num_steps: int) -> list[dict]:
    """Trains (or resumes) to ``num_steps`` with one evaluation at the end; the metrics rows."""
    config.update(
        num_steps=num_steps,
        log_every=min(100, num_steps),
        eval_every=num_steps,
        checkpoint_every=num_steps,
    )
    train.train_and_evaluate(task, config, workdir)
    return [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]


def markdown(results: dict) -> str:
    """The results as Markdown tables."""
    m = results["machine"]
    lines = [
        f"Device: {m['device']} x {m['num_devices']}, jax {m['jax']}, {m['date']}"
        + (" (smoke run)" if results["smoke"] else ""),
        "",
        "| matmul peak | TFLOP/s |",
        "| --- | ---: |",
    ]
    lines += [f"| {k} | {v:.3f} |" for k, v in results["matmul_tflop_per_s"].items()]
    lines += [
        "",
        "| model | dtype | params | batch | lower + compile (s) | first call (s) | train img/s "
        "| TFLOP/s |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in results["train"]:
        lines.append(
            f"| {r['model']} | {r['dtype']} | {r['params']:,} | {r['batch_size']} "
            f"| {r['lower_s']:.1f} + {r['compile_s']:.1f} | {r['first_call_s']:.2f} "
            f"| {r['train_images_per_s']:.1f} | {r['tflop_per_s']:.3f} |"
        )
    lines += [
        "",
        "| cached sampling | images | compile (s) | seconds |",
        "| --- | ---: | ---: | ---: |",
    ]
    for r in results["sampling"]:
        lines.append(
            f"| {r['model']} | {r['num_images']} | {r['compile_s']:.1f} | {r['sample_s']:.3f} |"
        )
    n = results["nll"]
    lines += [
        "",
        "| time-bounded run | dataset | steps x batch | run s (budget) | test images "
        "| test NLL (nats) | bits/dim |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: |",
        f"| {n['model']} | {n['dataset']} | {n['num_steps']} x {n['batch_size']} "
        f"| {n['run_elapsed_s']:.0f} ({n['train_seconds_budget']:.0f}) | {n['test_examples']} "
        f"| {n['test_nll_nats']:.2f} | {n['test_bits_per_dim']:.4f} |",
    ]
    if results["dtypes_missing"]:
        lines += ["", f"Not measured: {', '.join(results['dtypes_missing'])} (no model dtype)."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> dict:
    """Runs the check and writes ``gpu_check.json`` and ``gpu_check.md`` under ``--out``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--smoke", action="store_true", help="tiny models, seconds on a CPU")
    parser.add_argument("--train_seconds", type=float, default=None, help="default 240 (smoke 20)")
    parser.add_argument("--raw_dir", default=None, help="raw files (default $JAXGEN_RAW_DIR)")
    parser.add_argument("--data_dir", default=None, help="TFDS data folder")
    args = parser.parse_args(argv)
    if args.train_seconds is None:
        args.train_seconds = 20.0 if args.smoke else 240.0
    if not args.train_seconds > 0:
        parser.error(f"--train_seconds={args.train_seconds} must be positive.")
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    # First, so that missing data fails in seconds, not after the measurements.
    try:
        data.prepare("binarized_mnist", data_dir=args.data_dir, raw_dir=args.raw_dir)
    except data.DatasetError as error:
        parser.error(str(error))
    results = {
        "smoke": args.smoke,
        "machine": {
            "device": jax.devices()[0].device_kind,
            "num_devices": jax.device_count(),
            "jax": jax.__version__,
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        },
        "dtypes_missing": [d for d in DTYPES if d not in available_dtypes()],
    }
    n = 256 if args.smoke else 8192
    results["matmul_tflop_per_s"] = {
        f"{dtype} {n}x{n}": speed.matmul_peak(n, dtype=dtype) / 1e12 for dtype in DTYPES
    }
    windows, window_s = (1, 0.5) if args.smoke else (2, 3.0)
    results["train"] = train_rows(args.smoke, windows, window_s)
    results["sampling"] = sampling_rows(args.smoke)
    f32 = next(r for r in results["train"] if r["model"] == "pixelcnn" and r["dtype"] == "float32")
    results["nll"] = nll_row(args, f32["train_images_per_s"], out / "pixelcnn_run")
    print(json.dumps({"nll": results["nll"]}), flush=True)
    (out / "gpu_check.json").write_text(json.dumps(results, indent=2) + "\n")
    (out / "gpu_check.md").write_text(markdown(results))
    print(markdown(results), flush=True)
    return results


if __name__ == "__main__":
    main()
