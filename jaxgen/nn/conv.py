"""Fast formulations of the convolutions that autoregressive image models use.

A causal kernel [kh, kw, F_in, F_out] (see ``jaxgen.nn.masked``) is zero in
every row below its centre and, when it is one row tall, right of its centre.
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
  kernels over many features stay a convolution: there XLA's convolution was as
  fast as every product form tried (im2col, per-tap products, flattened shifts).

The results equal ``lax.conv_general_dilated`` with "SAME" padding on the full
kernel up to float rounding. On GPU/TPU every kernel taller than one tap stays a
convolution (cuDNN and the TPU convolution units are fast there); the 1x1 product
is what ``nn.Dense`` computes on every backend.
"""

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax import lax

from jaxgen.validation import ConfigError

# On CPU, kernels whose contraction (taps x F_in) is at most this are an im2col product.
IM2COL_MAX_CONTRACTION = 64

_DIMENSIONS = ("NHWC", "HWIO", "NHWC")


def causal_conv(x: jax.Array, kernel: jax.Array) -> jax.Array:
    """A "SAME" convolution with a causal kernel, computed on its non-zero taps only.

    Args:
      x: float [B, H, W, F_in].
      kernel: float [kh, kw, F_in, F_out], kh and kw odd, zero in the rows below
        the centre (and right of the centre when kh == 1); other taps are used.

    Returns:
      float [B, H, W, F_out] in the dtype of ``x`` and ``kernel``.
    """
    kh, kw, fin, _ = kernel.shape
    if kh == kw == 1:
        return feature_product(x, kernel[0, 0])
    if kh == 1:
        kernel, padding = kernel[:, : kw // 2 + 1], ((0, 0), (kw // 2, 0))
    else:
        kernel, padding = kernel[: kh // 2 + 1], ((kh // 2, 0), (kw // 2, kw // 2))
    if jax.default_backend() == "cpu" and _use_im2col(*kernel.shape[:3]):
        return _im2col_conv(x, kernel, padding)
    return lax.conv_general_dilated(x, kernel, (1, 1), padding, dimension_numbers=_DIMENSIONS)


def _use_im2col(rows: int, cols: int, fin: int) -> bool:
    """Whether a CPU convolution over ``rows`` x ``cols`` taps of ``fin`` features is im2col."""
    return rows == 1 or rows * cols * fin <= IM2COL_MAX_CONTRACTION


def _im2col_conv(
    x: jax.Array, kernel: jax.Array, padding: tuple[tuple[int, int], tuple[int, int]]
) -> jax.Array:
    """A "VALID" convolution of ``x`` padded by ``padding``, as one product of patches."""
    rows, cols, fin, fout = kernel.shape
    _, h, w, _ = x.shape
    padded = jnp.pad(x, ((0, 0), *padding, (0, 0)))
    patches = jnp.concatenate(
        [padded[:, r : r + h, c : c + w] for r in range(rows) for c in range(cols)], axis=-1
    )
    return feature_product(patches, kernel.reshape(rows * cols * fin, fout))


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
