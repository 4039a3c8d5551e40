"""Applying a device function to many examples on the host, in equal batches."""

from collections.abc import Callable
from typing import Any

import jax
import numpy as np

from jaxgen.validation import ConfigError


def apply_in_batches(fn: Callable[..., Any], *arrays: Any, batch_size: int = 500) -> Any:
    """``fn`` over the leading axis of ``arrays`` in batches, the results gathered on the host.

    Every call sees exactly ``batch_size`` examples (the last batch is padded
    with copies of the last example and its outputs dropped), so a jitted ``fn``
    compiles once. Batches smaller than ``batch_size`` are used as they are when
    all examples fit in one batch.

    Args:
      fn: arrays of [B, ...] -> a pytree of arrays [B, ...], one row per example.
      *arrays: arrays [N, ...] with the same N >= 1.
      batch_size: B, examples per call.

    Returns:
      ``fn``'s pytree with numpy leaves [N, ...].

    Raises:
      ConfigError: no arrays, N = 0, arrays of different N, or batch_size < 1.
    """
    if not arrays:
        raise ConfigError("apply_in_batches needs at least one array to split into batches.")
    if batch_size < 1:
        raise ConfigError(f"batch_size={batch_size} must be a positive number of examples.")
    arrays = tuple(np.asarray(a) for a in arrays)
    sizes = {len(a) for a in arrays}
    if len(sizes) != 1 or 0 in sizes:
        raise ConfigError(
            "The arrays must share one non-empty leading axis; got lengths "
            f"{[len(a) for a in arrays]}."
        )
    (n,) = sizes
    batch = min(batch_size, n)
    pad = -n % batch
    if pad:
        arrays = tuple(np.concatenate([a, np.repeat(a[-1:], pad, axis=0)]) for a in arrays)
    outputs = [
        jax.device_get(fn(*(a[i : i + batch] for a in arrays))) for i in range(0, n + pad, batch)
    ]
    return jax.tree.map(lambda *parts: np.concatenate(parts)[:n], *outputs)
