"""Gate-aligned masked convolutions and the gated activation (Gated PixelCNN, §2.1).

A layer that computes ``G`` gates for each of ``F`` hidden units (2 for the
gated activation, 4 for an LSTM) lays its outputs out gate-major,
``[gate 0 | gate 1 | ... ]``, each ``F`` wide. Unit ``k`` of every gate must
carry the colour group of hidden unit ``k``, so the mask of a gate convolution
is the mask of an ``F``-unit convolution repeated ``G`` times. (A plain
``MaskedConv2D`` with ``G * F`` outputs would give the gates different groups,
and the gated product of an R unit would read G or B information.)
"""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jaxgen.nn.masked import MaskType, conv_mask, masked_conv


def gate_mask(
    kernel_size: tuple[int, int],
    in_features: int,
    features: int,
    num_gates: int,
    num_channels: int,
    mask_type: MaskType,
) -> np.ndarray:
    """0/1 mask of a causal convolution with ``num_gates`` gates per hidden unit.

    Args:
      kernel_size: (kh, kw), both odd.
      in_features: input features F_in, in contiguous colour groups.
      features: hidden units F, in contiguous colour groups.
      num_gates: gates per hidden unit G.
      num_channels: colour channels C.
      mask_type: ``"A"`` or ``"B"``.

    Returns:
      float32 array [kh, kw, F_in, G * F], gate-major along the last axis.
    """
    mask = conv_mask(kernel_size, in_features, features, num_channels, mask_type)
    return np.tile(mask, num_gates)


def gated_activation(z: jax.Array) -> jax.Array:
    """tanh(f) * sigmoid(g) for z = [f | g]; float [..., 2F] -> [..., F]."""
    f, g = jnp.split(z, 2, axis=-1)
    return jnp.tanh(f) * nn.sigmoid(g)


class MaskedGateConv2D(nn.Module):
    """Masked 2-D convolution producing ``num_gates`` gate-major groups of ``features``.

    Attributes:
      features: hidden units F (the output has ``num_gates * features``).
      num_gates: gates per unit G.
      kernel_size: (kh, kw), odd.
      mask_type: ``"A"`` or ``"B"``.
      num_channels: colour channels C of the modelled image.
      dtype: dtype of the computation; the params stay float32.
    """

    features: int
    num_gates: int
    kernel_size: tuple[int, int]
    mask_type: MaskType
    num_channels: int = 1
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        """Applies the convolution.

        Args:
          x: float [B, H, W, F_in].

        Returns:
          float [B, H, W, G * F] in ``dtype`` ("SAME" padding).
        """
        mask = gate_mask(
            self.kernel_size,
            x.shape[-1],
            self.features,
            self.num_gates,
            self.num_channels,
            self.mask_type,
        )
        return masked_conv(self, x, mask, self.dtype)
