"""Masked convolutions for autoregressive image models (PixelRNN paper, §3.4).

The generation order is raster order over pixels and, within a pixel, the colour
channels in order (R, then G, then B). A masked convolution may read

* every tap in the rows above the centre,
* the taps left of the centre in the centre row,
* at the centre tap, only feature groups that come earlier in the channel order
  (mask ``"A"``, used by the first layer, which reads the image itself) or
  earlier-or-equal (mask ``"B"``, every later layer).

Features are split into ``num_channels`` contiguous groups: with 3 colours and
``F`` features, the first ``F/3`` belong to R, the next to G, the last to B.
"""

from typing import Literal

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jaxgen.nn.conv import causal_conv
from jaxgen.validation import ConfigError

MaskType = Literal["A", "B"]


def channel_groups(num_features: int, num_channels: int) -> np.ndarray:
    """Colour group of every feature, in contiguous blocks.

    Args:
      num_features: number of features F (at least ``num_channels``).
      num_channels: number of colour channels C of the image.

    Returns:
      int array [F] with values in [0, C), non-decreasing.
    """
    if num_features < num_channels:
        raise ConfigError(
            f"num_features={num_features} must be at least num_channels={num_channels} "
            "so that every colour channel has a feature group."
        )
    return np.arange(num_features) * num_channels // num_features


def conv_mask(
    kernel_size: tuple[int, int],
    in_features: int,
    out_features: int,
    num_channels: int,
    mask_type: MaskType,
) -> np.ndarray:
    """0/1 mask of a causal convolution kernel.

    Args:
      kernel_size: (kh, kw), both odd so the kernel has a centre tap.
      in_features: input features F_in.
      out_features: output features F_out.
      num_channels: colour channels C that the features are grouped by.
      mask_type: ``"A"`` (centre tap reads strictly earlier groups) or ``"B"``
        (centre tap reads earlier or the same group).

    Returns:
      float32 array [kh, kw, F_in, F_out].
    """
    kh, kw = kernel_size
    if kh % 2 == 0 or kw % 2 == 0:
        raise ConfigError(f"kernel_size={kernel_size} must be odd in both dimensions.")
    if mask_type not in ("A", "B"):
        raise ConfigError(f"mask_type={mask_type!r} must be 'A' or 'B'.")
    ci, cj = kh // 2, kw // 2
    mask = np.zeros((kh, kw, in_features, out_features), np.float32)
    mask[:ci] = 1.0
    mask[ci, :cj] = 1.0
    g_in = channel_groups(in_features, num_channels)[:, None]
    g_out = channel_groups(out_features, num_channels)[None, :]
    centre = g_in < g_out if mask_type == "A" else g_in <= g_out
    mask[ci, cj] = centre.astype(np.float32)
    return mask


class MaskedConv2D(nn.Module):
    """A 2-D convolution whose kernel is multiplied by a fixed causal mask.

    Attributes:
      features: output features F_out (a multiple of ``num_channels`` is not
        required; groups are contiguous blocks).
      kernel_size: (kh, kw), odd.
      mask_type: ``"A"`` or ``"B"``.
      num_channels: colour channels C of the modelled image (1 or 3).
      dtype: dtype of the computation (float32 or bfloat16); the params stay float32.
    """

    features: int
    kernel_size: tuple[int, int]
    mask_type: MaskType
    num_channels: int = 1
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
        """Applies the masked convolution.

        Args:
          x: float [B, H, W, F_in].

        Returns:
          float [B, H, W, F_out] in ``dtype``, same spatial size ("SAME" padding).
        """
        mask = conv_mask(
            self.kernel_size, x.shape[-1], self.features, self.num_channels, self.mask_type
        )
        return masked_conv(self, x, mask, self.dtype)


def masked_conv(
    module: nn.Module, x: jax.Array, mask: np.ndarray, dtype: jnp.dtype = jnp.float32
) -> jax.Array:
    """Creates ``kernel`` and ``bias`` params in ``module`` and applies the masked kernel.

    Call it from a ``@nn.compact`` method of ``module``. The params are float32;
    the input, the masked kernel and the bias are cast to ``dtype``. Only the
    kernel's non-zero taps are computed (``jaxgen.nn.conv.causal_conv``).

    Args:
      module: the Flax module that owns the params.
      x: float [B, H, W, F_in].
      mask: 0/1 [kh, kw, F_in, F_out], causal (zero below the centre row and, in a
        one-row kernel, right of the centre).
      dtype: dtype of the computation.

    Returns:
      float [B, H, W, F_out] in ``dtype`` ("SAME" padding).
    """
    kernel = module.param("kernel", nn.initializers.lecun_normal(), mask.shape)
    bias = module.param("bias", nn.initializers.zeros, (mask.shape[-1],))
    y = causal_conv(x.astype(dtype), (kernel * mask).astype(dtype))
    return y + bias.astype(dtype)
