"""Speed of training and sampling, measured in one run so ratios are comparable.

    python -m experiments.benchmark [--only=train|sampling] [--out=FILE.json]

Training: for each model config below, on 28x28 binary images (the config's
batch size, random binary batches, the real ``make_train_step``), the compile
time of the jitted step and its throughput in images per second (median of 3
timed windows after a warm-up).

Sampling: for each case below, compile time and seconds per call of
``sampling.autoregressive_sample`` for the naive and the cached method with the
same key (the fastest of a few calls), the speed-up, and whether both methods
drew identical samples.

Results go to stdout as one JSON line per case and, with ``--out``, to a JSON file.
"""

import argparse
import json
import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np

from experiments import pixelcnn
from experiments.configs import pixelcnn as pixelcnn_config
from experiments.configs import pixelrnn as pixelrnn_config
from jaxgen import parallel, timing
from jaxgen.train import TrainState, make_optimizer, make_train_step

IMAGE_SHAPE = (28, 28, 1)
# name -> the experiment config whose model and batch size are measured.
TRAIN_CASES = {
    "pixelcnn_tiny": lambda: pixelcnn_config.get_config("tiny"),
    "pixelcnn_cpu": lambda: pixelcnn_config.get_config("cpu"),
    "pixelcnn_paper": lambda: pixelcnn_config.get_config(""),
    "gated_cpu": lambda: pixelcnn_config.get_config("gated,cpu"),
    "row_lstm_cpu": lambda: pixelrnn_config.get_config("row_lstm,cpu"),
    "diagonal_bilstm_cpu": lambda: pixelrnn_config.get_config("diagonal_bilstm,cpu"),
}
# name -> (config, num_levels, sample shape, methods).
SAMPLING_CASES = {
    "pixelcnn_cpu_28x28_b1": ("pixelcnn_cpu", 2, (1, 28, 28, 1), ("naive", "cached")),
    "pixelcnn_cpu_28x28_b16": ("pixelcnn_cpu", 2, (16, 28, 28, 1), ("naive", "cached")),
    "pixelcnn_tiny_32x32x3_b16": ("pixelcnn_tiny", 256, (16, 32, 32, 3), ("naive", "cached")),
    "gated_cpu_28x28_b16": ("gated_cpu", 2, (16, 28, 28, 1), ("naive", "cached")),
    "row_lstm_cpu_28x28_b16": ("row_lstm_cpu", 2, (16, 28, 28, 1), ("naive", "cached")),
    "diagonal_bilstm_cpu_28x28_b16": ("diagonal_bilstm_cpu", 2, (16, 28, 28, 1), ("cached",)),
}


def bench_train(config, steps: int) -> dict:
    """Compile time and images/s of the train step of one experiment config."""
    task = pixelcnn.make_task(config)
    mesh = parallel.make_mesh()
    tx, schedule = make_optimizer(config)
    train_step = make_train_step(task.loss_fn, tx, mesh, schedule=schedule)
    rng = np.random.default_rng(0)
    batch = {
        "image": rng.integers(0, 2, (config.batch_size, *IMAGE_SHAPE)).astype(np.int32),
        "label": np.zeros(config.batch_size, np.int32),
    }
    batch = parallel.shard_batch(batch, mesh)
    params = task.init(jax.random.key(0), batch)
    state = parallel.replicate(TrainState.create(params, tx), mesh)
    key = jax.random.key(1)

    start = time.perf_counter()
    compiled = train_step.lower(state, batch, key).compile()
    compile_s = time.perf_counter() - start

    def window() -> float:
        nonlocal state
        start = time.perf_counter()
        for _ in range(steps):
            state, metrics = compiled(state, batch, key)
        jax.block_until_ready(metrics["loss"])
        return time.perf_counter() - start

    window()  # warm-up
    seconds = statistics.median(window() for _ in range(3))
    return {
        "model": config.model.to_dict(),
        "params": int(sum(x.size for x in jax.tree.leaves(params))),
        "batch_size": config.batch_size,
        "compile_s": round(compile_s, 2),
        "train_images_per_s": round(steps * config.batch_size / seconds, 1),
    }


def bench_sampling(config, num_levels: int, shape, methods) -> dict:
    """Naive vs cached sampling of one model at one shape, with the same key."""
    config.num_levels = num_levels
    model = pixelcnn.make_model(config)
    params = model.init(jax.random.key(0), jnp.zeros((1, *shape[1:]), jnp.int32))
    timings = timing.time_sampling(model, params, shape, methods, repeats={"cached": 3})
    row = {"model": config.model.to_dict(), "num_levels": num_levels, "shape": shape}
    for method, t in timings.items():
        row[f"{method}_compile_s"] = round(t.compile_s, 2)
        row[f"{method}_s"] = round(t.sample_s, 4)
    if len(timings) == 2:
        row["speedup"] = round(timings["naive"].sample_s / timings["cached"].sample_s, 1)
        row["same_samples"] = bool(
            np.array_equal(timings["naive"].samples, timings["cached"].samples)
        )
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=("train", "sampling"), default=None)
    parser.add_argument("--train_steps", type=int, default=5, help="steps per timed window")
    parser.add_argument("--out", default=None, help="write the results to this JSON file")
    args = parser.parse_args()

    results = {"device": jax.devices()[0].device_kind, "num_devices": jax.device_count()}
    if args.only in (None, "train"):
        for name, make_config in TRAIN_CASES.items():
            results[f"train/{name}"] = bench_train(make_config(), args.train_steps)
            print(json.dumps({f"train/{name}": results[f"train/{name}"]}), flush=True)
    if args.only in (None, "sampling"):
        for name, (config_name, levels, shape, methods) in SAMPLING_CASES.items():
            row = bench_sampling(TRAIN_CASES[config_name](), levels, shape, methods)
            results[f"sampling/{name}"] = row
            print(json.dumps({f"sampling/{name}": row}), flush=True)
    if args.out:
        with open(args.out, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
