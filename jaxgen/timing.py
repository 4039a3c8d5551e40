"""Wall-clock timing of the autoregressive samplers (for experiments/benchmark.py).

    timings = timing.time_sampling(model, params, (16, 28, 28, 1))
    timings["cached"].sample_s, timings["naive"].sample_s

Compilation is timed apart from sampling (ahead-of-time ``lower().compile()``).
Every measurement here is ``fastest``: the fastest of several timed calls, to
ready results; on a shared machine, slower runs measure the neighbours.
"""

import dataclasses
import functools
import math
import time
from collections.abc import Callable
from typing import Any

import flax.linen as nn
import jax

from jaxgen import sampling
from jaxgen.validation import ConfigError


def fastest(fn: Callable[[], Any], repeats: int = 3, *, warmup: bool = True) -> tuple[float, Any]:
    """The seconds of the fastest of ``repeats`` calls of ``fn`` and its last result.

    Args:
      fn: a function of no arguments returning arrays (waited for with
        ``jax.block_until_ready``).
      repeats: timed calls (at least 1).
      warmup: make one untimed call first (the one that compiles).

    Returns:
      (seconds of the fastest timed call, the last call's result).
    """
    if repeats < 1:
        raise ConfigError(f"repeats={repeats} must be at least 1.")
    if warmup:
        jax.block_until_ready(fn())
    seconds = math.inf
    for _ in range(repeats):
        start = time.perf_counter()
        result = jax.block_until_ready(fn())
        seconds = min(seconds, time.perf_counter() - start)
    return seconds, result


@dataclasses.dataclass(frozen=True)
class SamplerTiming:
    """One method's timing.

    Attributes:
      method: ``"naive"`` or ``"cached"``.
      compile_s: seconds to compile the sampling program.
      sample_s: seconds for one call of the compiled program (to ready results).
      images_per_s: batch size / sample_s.
      samples: int [B, H, W, C], the samples drawn (to compare methods).
    """

    method: str
    compile_s: float
    sample_s: float
    images_per_s: float
    samples: jax.Array


def time_sampling(
    model: nn.Module,
    params,
    shape: tuple[int, int, int, int],
    methods: tuple[str, ...] = ("naive", "cached"),
    seed: int = 0,
    labels: jax.Array | None = None,
    repeats: int | dict[str, int] = 1,
) -> dict[str, SamplerTiming]:
    """Times ``sampling.autoregressive_sample`` for each method with the same key.

    Args:
      model: an autoregressive model (``cached`` needs its incremental methods).
      params: the model's variables.
      shape: (B, H, W, C) of the samples.
      methods: the sampling methods to time.
      seed: seed of the sampling key, shared by all methods.
      labels: int [B] labels for a class-conditional model, else None.
      repeats: runs per method (the fastest counts), or a dict method -> runs, e.g.
        ``{"naive": 1, "cached": 5}``.

    Returns:
      method -> SamplerTiming.
    """
    key = jax.random.key(seed)
    results = {}
    for method in methods:

        def sample(params, key, labels, method=method):
            return sampling.autoregressive_sample(
                model, params, key, shape, method=method, labels=labels
            )

        start = time.perf_counter()
        compiled = jax.jit(sample).lower(params, key, labels).compile()
        compile_s = time.perf_counter() - start
        runs = repeats.get(method, 1) if isinstance(repeats, dict) else repeats
        run = functools.partial(compiled, params, key, labels)
        sample_s, samples = fastest(run, runs, warmup=False)
        results[method] = SamplerTiming(
            method=method,
            compile_s=compile_s,
            sample_s=sample_s,
            images_per_s=shape[0] / sample_s,
            samples=samples,
        )
    return results


def naive_seconds_estimate(
    model: nn.Module, params, shape: tuple[int, int, int, int], num_passes: int
) -> float:
    """Seconds of naive sampling of ``shape``, extrapolated from ``num_passes`` of its steps.

    Each of the H W C steps of the naive sampler is one full network pass on the
    batch (plus B categorical draws, negligible next to it), so this times
    ``num_passes`` compiled passes, after one that compiles, and scales the
    fastest by H W C. For models whose naive run takes too long to wait for.

    Args:
      model: an autoregressive model, int [B, H, W, C] -> logits.
      params: its variables.
      shape: (B, H, W, C) of the samples.
      num_passes: passes timed (at least 1).

    Returns:
      The estimated seconds of one ``autoregressive_sample(..., method="naive")`` call.
    """
    if num_passes < 1:
        raise ConfigError(f"num_passes={num_passes} must be at least 1.")
    apply = jax.jit(model.apply)
    x = jax.numpy.zeros(shape, jax.numpy.int32)
    one_pass, _ = fastest(lambda: apply(params, x), num_passes)
    _, h, w, c = shape
    return one_pass * h * w * c
