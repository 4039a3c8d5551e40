"""Intensity levels <-> real scales: the one place images change representation.

Images are int levels in [0, L). Networks read them on [-1, 1] (``to_signed``),
the DCGAN generator writes [-1, 1] (``from_signed`` rounds back to levels), and
squared-error losses and the FID protocol use [0, 1] (``to_unit``). Level 0
maps to the low end and L - 1 to the high end of each scale.

The functions keep the array type: numpy in, numpy out; jax in, jax out (and
they trace under ``jit``).
"""

from typing import TypeVar

import jax
import numpy as np

Array = TypeVar("Array", jax.Array, np.ndarray)  # the type in is the type out


def to_signed(x: Array, num_levels: int) -> Array:
    """Maps int levels linearly onto [-1, 1]: 0 -> -1, L - 1 -> 1.

    Args:
      x: int [...] levels in [0, L).
      num_levels: L (at least 2).

    Returns:
      float32 [...] in [-1, 1].
    """
    return x.astype(np.float32) * np.float32(2.0 / (num_levels - 1)) - np.float32(1.0)


def from_signed(y: Array, num_levels: int) -> Array:
    """Inverse of ``to_signed``: clips to [-1, 1] and rounds to the nearest level.

    Args:
      y: float [...] on the [-1, 1] scale (values outside are clipped).
      num_levels: L.

    Returns:
      int32 [...] in [0, L).
    """
    return ((y.clip(-1.0, 1.0) + 1.0) * ((num_levels - 1) / 2.0)).round().astype(np.int32)


def to_unit(x: Array, num_levels: int) -> Array:
    """Maps int levels linearly onto [0, 1]: 0 -> 0, L - 1 -> 1.

    Args:
      x: int [...] levels in [0, L).
      num_levels: L (at least 2).

    Returns:
      float32 [...] in [0, 1].
    """
    return x.astype(np.float32) / np.float32(num_levels - 1)
