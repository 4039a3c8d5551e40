"""Speed of training and sampling, measured in one run so ratios are comparable.

    python -m experiments.benchmark [--sizes=tiny,cpu,paper] [--out=FILE.json]

For every PixelCNN size of ``experiments/configs/pixelcnn.py`` (``tiny``, ``cpu``
and the paper's default) it reports, on 28x28 binary images:

* compile time of the jitted train step (lowering + XLA compile, seconds);
* train-step throughput in images per second (the real ``make_train_step``, the
  config's batch size, random binary batches; the median of several timed
  windows after a warm-up);
* sampling time per image for every sampling method the model supports, at
  batch 1 and 16.

Results go to stdout as one JSON line per size and, with ``--out``, to a JSON file.
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
from jaxgen import parallel, sampling
from jaxgen.train import TrainState, make_optimizer, make_train_step

IMAGE_SHAPE = (28, 28, 1)
SIZES = {"tiny": "tiny", "cpu": "cpu", "paper": ""}
METHODS = ("naive", "cached")


def _time(fn, repeats: int) -> float:
    """Median wall-clock seconds of ``fn()`` (which must block until done)."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def bench_train(config, steps: int) -> dict:
    """Compile time and images/s of the PixelCNN train step for one config."""
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

    def run_steps():
        nonlocal state
        for _ in range(steps):
            state, metrics = compiled(state, batch, key)
        jax.block_until_ready(metrics["loss"])

    run_steps()  # warm-up
    seconds = _time(run_steps, repeats=3)
    num_params = sum(x.size for x in jax.tree.leaves(params))
    return {
        "params": int(num_params),
        "batch_size": config.batch_size,
        "compile_s": compile_s,
        "train_images_per_s": steps * config.batch_size / seconds,
    }


def bench_sampling(config, batch_size: int) -> dict:
    """Seconds per image of every available sampling method (compile excluded)."""
    model = pixelcnn.make_model(config)
    params = model.init(jax.random.key(0), jnp.zeros((1, *IMAGE_SHAPE), jnp.int32))
    shape = (batch_size, *IMAGE_SHAPE)
    out = {}
    for method in METHODS:
        try:
            sample = lambda m=method: jax.block_until_ready(  # noqa: E731
                sampling.autoregressive_sample(model, params, jax.random.key(2), shape, method=m)
            )
            sample()  # compile
        except ValueError as e:
            out[method] = f"n/a ({e})"
            continue
        out[f"{method}_s_per_image"] = _time(sample, repeats=2) / batch_size
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="tiny,cpu,paper", help="comma-separated sizes")
    parser.add_argument("--train_steps", type=int, default=10, help="steps per timed window")
    parser.add_argument("--sample_batches", default="1,16", help="comma-separated batch sizes")
    parser.add_argument("--out", default=None, help="write the results to this JSON file")
    args = parser.parse_args()

    results = {"device": str(jax.devices()[0].device_kind), "num_devices": jax.device_count()}
    for size in args.sizes.split(","):
        if size not in SIZES:
            parser.error(f"--sizes: unknown size {size!r}; choose from {', '.join(SIZES)}.")
        config = pixelcnn_config.get_config(SIZES[size])
        row = {"model": config.model.to_dict(), **bench_train(config, args.train_steps)}
        for b in map(int, args.sample_batches.split(",")):
            row[f"sampling_batch{b}"] = bench_sampling(config, b)
        results[size] = row
        print(json.dumps({size: row}), flush=True)

    if args.out:
        with open(args.out, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
