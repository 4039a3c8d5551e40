"""Fast formulations of the convolutions that autoregressive image models use.

A causal kernel [kh, kw, F_in, F_out] (see ``jaxgen.nn.masked``) is zero in
every row below its centre and right of its centre in the centre row.
``causal_conv`` computes the "SAME" convolution with only the non-zero part:

* 1x1 kernels: a matrix product over the feature axis. XLA's CPU backward of
  a 1x1 ``conv_general_dilated`` is 2-4x slower than the backward of the same
  product (measured: 1x1 256->128 on [32, 28, 28]: fwd+bwd 580 ms as a conv,
  120-270 ms as a product). Every product here is written on 2-D operands
  (``feature_product``): the backward of a product of a 4-D array is a
  ``dot_general`` contracting three axes, which XLA's CPU backend computes
  2.5x slower (1x1 128->256 on [32, 28, 28]: fwd+bwd 121 ms, 44 ms in 2-D).
* kernels taller than one row: a convolution over the top ``kh // 2 + 1`` rows
  with the padding all above (3x3: 6 taps instead of 9, fwd+bwd 800 ms instead
  of 1100 ms for 128->128 on [32, 28, 28]); one-row kernels keep the
  ``kw // 2 + 1`` columns at and left of the centre.
* on CPU, one-row kernels and kernels with a short contraction (the first
  layer, which reads the C <= 3 image channels): the taps gathered along the
  feature axis (im2col) and one 2-D product. XLA's CPU kernel gradient of these
  convolutions is slow (1x2 taps 128->256 on [32, 28, 28]: 64 ms, 30 ms as the
  im2col product; 7x7 mask A 1->256: fwd+bwd 170 ms instead of 300). Taller
  kernels over many features stay a convolution forward: there XLA's convolution
  was as fast as every product form tried (im2col, per-tap products, flattened
  shifts).
* on CPU, the kernel gradient of those convolutions (and of the Gated
  PixelCNN's vertical stack, ``PaddedConv2D``) over at least
  ``TAP_GRADIENT_MIN_FEATURES`` input features: one 2-D product per tap
  (``padded_conv``, a custom JVP). XLA computes it as a convolution with a
  28x28 window, which is slow on CPU (2x3 taps on [32, 28, 28], fwd+bwd:
  128->128 119 ms, 82 ms with per-tap products; 128->256 235 ms, 141 ms; 16->16
  3.7 ms, 3.9 ms, so small layers keep XLA's). ``causal_conv`` sets the centre
  row's taps right of the centre to zero, so the products skip them (5 of the
  2x3 taps of a 3x3 kernel).

The results equal ``lax.conv_general_dilated`` with "SAME" padding on the full
kernel up to float rounding. On GPU/TPU every kernel wider than 1x1 stays a
convolution with XLA's gradients (cuDNN and the TPU convolution units are fast
there); the 1x1 product is what ``nn.Dense`` computes on every backend.
``cpu_formulations`` makes the choice; the tests run the models with both choices
on the CPU (values, gradients, causality, cached passes).
"""

import functools

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax import lax
from jax.custom_derivatives import SymbolicZero

from jaxgen.validation import ConfigError

# On CPU, kernels whose contraction (taps x F_in) is at most this are an im2col product.
IM2COL_MAX_CONTRACTION = 64
# On CPU, convolutions over at least this many input features get their kernel gradient
# as one product per tap.
TAP_GRADIENT_MIN_FEATURES = 32

Padding = tuple[tuple[int, int], tuple[int, int]]

_DIMENSIONS = ("NHWC", "HWIO", "NHWC")


def causal_conv(x: jax.Array, kernel: jax.Array) -> jax.Array:
    """A "SAME" convolution with a causal kernel, computed on its non-zero taps only.

    Args:
      x: float [B, H, W, F_in].
      kernel: float [kh, kw, F_in, F_out], kh and kw odd, zero in the rows below
        the centre and right of the centre in the centre row (as every causal mask
        is); those taps are ignored (their gradient is zero), the others are used.

    Returns:
      float [B, H, W, F_out] in the dtype of ``x`` and ``kernel``.
    """
    kh, kw, fin, _ = kernel.shape
    if kh == kw == 1:
        return feature_product(x, kernel[0, 0])
    if kh == 1:
        kernel, padding = kernel[:, : kw // 2 + 1], ((0, 0), (kw // 2, 0))
        zero_taps = 0
    else:
        # The centre row right of the centre is zero in every causal mask; setting it here
        # makes that exact, so the kernel gradient may skip those kw // 2 taps.
        kernel = kernel[: kh // 2 + 1].at[-1, kw // 2 + 1 :].set(0)
        padding, zero_taps = ((kh // 2, 0), (kw // 2, kw // 2)), kw // 2
    if cpu_formulations() and _use_im2col(*kernel.shape[:3]):
        return _im2col_conv(x, kernel, padding)
    return padded_conv(x, kernel, padding, zero_taps)


def cpu_formulations() -> bool:
    """Whether the CPU formulations (im2col, per-tap kernel gradients) apply: whether JAX's
    default backend is the CPU. Elsewhere every convolution is XLA's, gradients included.

    Decided when a function is traced, so a jitted function keeps the choice of its trace.
    """
    return jax.default_backend() == "cpu"


def _use_im2col(rows: int, cols: int, fin: int) -> bool:
    """Whether a CPU convolution over ``rows`` x ``cols`` taps of ``fin`` features is im2col."""
    return rows == 1 or rows * cols * fin <= IM2COL_MAX_CONTRACTION


def _im2col_conv(x: jax.Array, kernel: jax.Array, padding: Padding) -> jax.Array:
    """A "VALID" convolution of ``x`` padded by ``padding``, as one product of patches."""
    rows, cols, fin, fout = kernel.shape
    patches = jnp.concatenate(_taps(x, rows, cols, padding), axis=-1)
    return feature_product(patches, kernel.reshape(rows * cols * fin, fout))


def _taps(x: jax.Array, rows: int, cols: int, padding: Padding) -> list[jax.Array]:
    """The input under each of ``rows`` x ``cols`` taps, row-major, for a "VALID"
    convolution of ``x`` padded by ``padding``: float [B, H', W', F_in] each."""
    _, h, w, _ = x.shape
    (top, bottom), (left, right) = padding
    h, w = h + top + bottom - rows + 1, w + left + right - cols + 1
    padded = jnp.pad(x, ((0, 0), *padding, (0, 0)))
    return [padded[:, r : r + h, c : c + w] for r in range(rows) for c in range(cols)]


def padded_conv(x: jax.Array, kernel: jax.Array, padding: Padding, zero_taps: int = 0) -> jax.Array:
    """A "VALID" convolution of ``x`` zero-padded by ``padding``.

    On CPU, over at least ``TAP_GRADIENT_MIN_FEATURES`` input features, its kernel
    gradient is one 2-D product per tap; elsewhere (and for the input gradient) it
    is XLA's.

    Args:
      x: float [B, H, W, F_in].
      kernel: float [kh, kw, F_in, F_out].
      padding: ((top, bottom), (left, right)) zeros added around ``x``.
      zero_taps: how many of the last taps in row-major order the caller keeps at zero
        (``kernel`` is a function of the params that sets them to 0): their kernel
        gradient is zero whatever is computed, so the per-tap products skip them.

    Returns:
      float [B, H + top + bottom - kh + 1, W + left + right - kw + 1, F_out].
    """
    if cpu_formulations() and kernel.shape[2] >= TAP_GRADIENT_MIN_FEATURES:
        return _conv_with_tap_gradient(x, kernel, padding, zero_taps)
    return _conv(x, kernel, padding)


def _conv(x: jax.Array, kernel: jax.Array, padding: Padding) -> jax.Array:
    return lax.conv_general_dilated(x, kernel, (1, 1), padding, dimension_numbers=_DIMENSIONS)


@functools.partial(jax.custom_jvp, nondiff_argnums=(2, 3))
def _conv_with_tap_gradient(
    x: jax.Array, kernel: jax.Array, padding: Padding, zero_taps: int
) -> jax.Array:
    """``_conv`` whose tangent in the kernel is a sum of per-tap products (the last
    ``zero_taps`` taps left out), so that its transpose (the kernel gradient) is one
    2-D product per tap."""
    return _conv(x, kernel, padding)


def _conv_with_tap_gradient_jvp(
    padding: Padding, zero_taps: int, primals: tuple[jax.Array, jax.Array], tangents: tuple
) -> tuple[jax.Array, jax.Array]:
    x, kernel = primals
    dx, dkernel = tangents
    y = _conv(x, kernel, padding)
    dy = jnp.zeros_like(y)
    if not isinstance(dx, SymbolicZero):
        dy = dy + _conv(dx, kernel, padding)
    if not isinstance(dkernel, SymbolicZero):
        rows, cols, fin, fout = kernel.shape
        live = rows * cols - zero_taps
        taps = zip(
            _taps(x, rows, cols, padding)[:live], dkernel.reshape(-1, fin, fout)[:live], strict=True
        )
        dy = dy + sum(feature_product(tap, k) for tap, k in taps)
    return y, dy


_conv_with_tap_gradient.defjvp(_conv_with_tap_gradient_jvp, symbolic_zeros=True)


def feature_product(x: jax.Array, kernel: jax.Array) -> jax.Array:
    """``x @ kernel`` over the last axis, computed as one 2-D matrix product.

    Args:
      x: float [..., F_in].
      kernel: float [F_in, F_out].

    Returns:
      float [..., F_out].
    """
    return (x.reshape(-1, x.shape[-1]) @ kernel).reshape(*x.shape[:-1], kernel.shape[-1])


class Conv1x1(nn.Module):
    """An unmasked 1x1 convolution as a product over features (params as ``nn.Conv``'s).

    Attributes:
      features: output features F_out.
      dtype: dtype of the computation; the params stay float32.
    """

    features: int
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        """float [..., F_in] -> [..., F_out] in ``dtype``."""
        shape = (1, 1, x.shape[-1], self.features)
        kernel = self.param("kernel", nn.initializers.lecun_normal(), shape)
        bias = self.param("bias", nn.initializers.zeros, (self.features,))
        x = x.astype(self.dtype)
        return feature_product(x, kernel[0, 0].astype(self.dtype)) + bias.astype(self.dtype)


class PaddedConv2D(nn.Module):
    """An unmasked convolution with explicit zero padding, through ``padded_conv``.

    Computes ``nn.Conv(features, kernel_size, padding=padding, dtype=dtype)`` with the
    same params (``kernel`` [kh, kw, F_in, F_out], ``bias`` [F_out]).

    Attributes:
      features: output features F_out.
      kernel_size: (kh, kw).
      padding: ((top, bottom), (left, right)).
      dtype: dtype of the computation; the params stay float32.
    """

    features: int
    kernel_size: tuple[int, int]
    padding: Padding
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        """float [B, H, W, F_in] -> [B, H', W', F_out] in ``dtype`` (see ``padded_conv``)."""
        shape = (*self.kernel_size, x.shape[-1], self.features)
        kernel = self.param("kernel", nn.initializers.lecun_normal(), shape)
        bias = self.param("bias", nn.initializers.zeros, (self.features,))
        y = padded_conv(x.astype(self.dtype), kernel.astype(self.dtype), self.padding)
        return y + bias.astype(self.dtype)


DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16}


def compute_dtype(model: object) -> jnp.dtype:
    """The computation dtype named by ``model.dtype`` ("float32" or "bfloat16").

    Raises:
      ConfigError: naming the model and the valid names.
    """
    name = model.dtype
    if name not in DTYPES:
        raise ConfigError(
            f"{type(model).__name__} dtype={name!r} must be one of {', '.join(DTYPES)}."
        )
    return DTYPES[name]
