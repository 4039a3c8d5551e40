"""Layers evaluated one pixel at a time, for cached sampling (Ramachandran et al., 2017).

A cached sampler runs every layer at a single pixel per step. A layer whose
kernel spans several rows keeps a *row cache* of its input: the last ``R`` rows
(``R`` = kernel rows at and above the centre; rows below are masked out), oldest
first, each padded with ``kw // 2`` zeros left and right, float
[B, R, W + kw - 1, F]. The last row is the current one: a step writes its
pixel there and reads the window around it. When a row is finished,
``next_row`` drops the oldest row and appends a row of zeros. Rows above the
image are zeros, the convolution's zero padding.

Functions here take a layer's parameter dict (``{"kernel", "bias"}`` as created
by ``MaskedConv2D``, ``MaskedGateConv2D`` or ``PaddedConv2D``) so a model can replay
its forward pass at one pixel from its own parameters.
"""

import jax
import jax.numpy as jnp
from jax import lax

from jaxgen.levels import to_signed
from jaxgen.nn.gated import gate_mask
from jaxgen.nn.masked import MaskType

Params = dict[str, jax.Array]


def masked_kernel(
    params: Params, num_channels: int, mask_type: MaskType, num_gates: int = 1
) -> jax.Array:
    """The kernel of a masked (gate) convolution times its mask, float [kh, kw, F_in, F_out]."""
    kernel = params["kernel"]
    kh, kw, fin, fout = kernel.shape
    mask = gate_mask((kh, kw), fin, fout // num_gates, num_gates, num_channels, mask_type)
    return kernel * mask


def conv_at(params: Params, kernel: jax.Array, window: jax.Array) -> jax.Array:
    """A convolution's output at one pixel from the window of input above and around it.

    Computed in the dtype of ``window`` (the params are cast to it).

    Args:
      params: the layer's ``{"kernel", "bias"}``; only the bias is read.
      kernel: float [kh, kw, F_in, F_out], already masked.
      window: float [B, R, kw, F_in], the input rows ``i - R + 1 .. i`` and columns
        ``j - kw // 2 .. j + kw // 2``; R <= kh, the kernel's top R rows are used.

    Returns:
      float [B, F_out].
    """
    rows, dtype = window.shape[1], window.dtype
    y = jnp.einsum("brwi,rwio->bo", window, kernel[:rows].astype(dtype))
    return y + params["bias"].astype(dtype)


def dense_at(params: Params, kernel: jax.Array, x: jax.Array) -> jax.Array:
    """A 1x1 convolution at given pixels, in the dtype of ``x``.

    Args:
      params: the layer's ``{"kernel", "bias"}``; only the bias is read.
      kernel: float [1, 1, F_in, F_out], masked where the layer is.
      x: float [..., F_in].

    Returns:
      float [..., F_out].
    """
    return x @ kernel[0, 0].astype(x.dtype) + params["bias"].astype(x.dtype)


def image_window(
    x: jax.Array, i: jax.Array, j: jax.Array, kernel_size: tuple[int, int], num_levels: int
) -> jax.Array:
    """The scaled image under a causal kernel centred at (i, j), zero outside the image.

    Args:
      x: int [B, H, W, C] levels.
      i, j: int scalars, the pixel.
      kernel_size: (kh, kw), odd.
      num_levels: levels L of the image.

    Returns:
      float [B, kh // 2 + 1, kw, C]: rows ``i - kh // 2 .. i``, columns
      ``j - kw // 2 .. j + kw // 2``. ``j`` may be W, one virtual pixel right of
      the image (see ``PixelRNN``).
    """
    kh, kw = kernel_size
    pad = ((0, 0), (kh // 2, 0), (kw // 2, kw // 2 + 1), (0, 0))
    y = jnp.pad(to_signed(x, num_levels), pad)
    b, c = x.shape[0], x.shape[-1]
    return lax.dynamic_slice(y, (0, i, j, 0), (b, kh // 2 + 1, kw, c))


def image_rows(
    x: jax.Array, r: jax.Array, num_rows: int, kernel_width: int, num_levels: int
) -> jax.Array:
    """Full-width scaled image rows ``r - num_rows + 1 .. r``, zero-padded by ``kw // 2``.

    Args:
      x: int [B, H, W, C] levels.
      r: int scalar, the last row (rows above the image are zeros).
      num_rows: R.
      kernel_width: kw, odd.
      num_levels: levels L.

    Returns:
      float [B, R, W + kw - 1, C].
    """
    pad = kernel_width // 2
    y = jnp.pad(to_signed(x, num_levels), ((0, 0), (num_rows - 1, 0), (pad, pad), (0, 0)))
    return lax.dynamic_slice_in_dim(y, r, num_rows, axis=1)


def row_cache(
    batch: int,
    num_rows: int,
    width: int,
    kernel_width: int,
    features: int,
    dtype: jnp.dtype = jnp.float32,
) -> jax.Array:
    """An empty row cache, [B, R, W + kw - 1, F] zeros of ``dtype``."""
    return jnp.zeros((batch, num_rows, width + kernel_width - 1, features), dtype)


def next_row(cache: jax.Array) -> jax.Array:
    """Drops the oldest row of a row cache and appends an empty current row."""
    return jnp.concatenate([cache[:, 1:], jnp.zeros_like(cache[:, :1])], axis=1)


def push_row(cache: jax.Array, value: jax.Array) -> jax.Array:
    """Drops the oldest row and appends a whole finished row float [B, W, F]."""
    pad = (cache.shape[2] - value.shape[1]) // 2
    row = jnp.pad(value, ((0, 0), (pad, pad), (0, 0)))
    return jnp.concatenate([cache[:, 1:], row[:, None]], axis=1)


def write_pixel(cache: jax.Array, j: jax.Array, value: jax.Array, kernel_width: int) -> jax.Array:
    """Stores a layer input float [B, F] at column ``j`` of the current row."""
    return cache.at[:, -1, j + kernel_width // 2].set(value)


def read_window(cache: jax.Array, j: jax.Array, kernel_width: int) -> jax.Array:
    """The cache under a kernel of width kw centred at column ``j``: float [B, R, kw, F]."""
    return lax.dynamic_slice_in_dim(cache, j, kernel_width, axis=2)


def head_at(
    head: Params, logits: Params, y: jax.Array, num_channels: int, num_levels: int
) -> jax.Array:
    """The models' output head at one pixel: ReLU, 1x1 mask B, ReLU, 1x1 mask B.

    Args:
      head: the hidden 1x1 layer's parameters.
      logits: the output 1x1 layer's parameters (C * L outputs).
      y: float [B, F], the residual stream at the pixel; the head computes in its dtype.
      num_channels: colour channels C.
      num_levels: levels L.

    Returns:
      float32 [B, C, L] logits.
    """
    for p in (head, logits):
        y = dense_at(p, masked_kernel(p, num_channels, "B"), jax.nn.relu(y))
    return y.astype(jnp.float32).reshape(y.shape[0], num_channels, num_levels)


def conv_row(params: Params, rows: jax.Array) -> jax.Array:
    """An unmasked convolution's output along one row from the rows above it, in rows' dtype.

    Args:
      params: ``{"kernel": [R, kw, F_in, F_out], "bias": [F_out]}``.
      rows: float [B, R, W + kw - 1, F_in], rows ``r - R + 1 .. r`` zero-padded left and right.

    Returns:
      float [B, W, F_out], the output at row r.
    """
    y = lax.conv_general_dilated(
        rows,
        params["kernel"].astype(rows.dtype),
        window_strides=(1, 1),
        padding="VALID",
        dimension_numbers=("NHWC", "HWIO", "NHWC"),
    )
    return y[:, 0] + params["bias"].astype(rows.dtype)
