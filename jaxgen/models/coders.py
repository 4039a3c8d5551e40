"""Encoder and decoder networks shared by the autoencoder, the VAE and the transfer classifier.

``"conv"``: stride-2 3x3 convolutions (ReLU) down to ``H / 2**n``, a dense layer,
a linear output; the decoder mirrors it with stride-2 transposed convolutions.
``"mlp"``: tanh MLPs on the flattened image, as in the VAE and IWAE papers
(IWAE, one stochastic layer: 784 -> 200 -> 200 -> 50 and back).

Encoders read integer images; decoders return a trailing parameter axis of
``out_features`` values per sub-pixel.
"""

import math
from collections.abc import Sequence

import flax.linen as nn
import jax

from jaxgen.levels import to_signed
from jaxgen.validation import ConfigError

ARCHITECTURES: tuple[str, ...] = ("conv", "mlp")


class ConvEncoder(nn.Module):
    """Images -> feature vector.

    Attributes:
      out_features: size of the output vector.
      num_levels: intensity levels L of the input images.
      features: channels of the stride-2 convolutions, one per halving.
      hidden_features: width of the dense layer after the convolutions.
    """

    out_features: int
    num_levels: int
    features: Sequence[int] = (32, 64)
    hidden_features: int = 256

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        """Encodes images.

        Args:
          x: int [B, H, W, C] levels in [0, num_levels).

        Returns:
          float [B, out_features].
        """
        y = to_signed(x, self.num_levels)
        for f in self.features:
            y = nn.relu(nn.Conv(f, (3, 3), strides=2, padding="SAME")(y))
        y = nn.relu(nn.Dense(self.hidden_features)(y.reshape(y.shape[0], -1)))
        return nn.Dense(self.out_features)(y)


class ConvDecoder(nn.Module):
    """Vector -> per-sub-pixel outputs, mirroring ``ConvEncoder``.

    Attributes:
      image_shape: (H, W, C) of the images; H and W divisible by 2**len(features).
      out_features: outputs per sub-pixel.
      features: the encoder's channels; used in reverse order.
      hidden_features: width of the first dense layer.
    """

    image_shape: tuple[int, int, int]
    out_features: int
    features: Sequence[int] = (32, 64)
    hidden_features: int = 256

    @nn.compact
    def __call__(self, z: jax.Array) -> jax.Array:
        """Decodes vectors.

        Args:
          z: float [B, D].

        Returns:
          float [B, H, W, C, out_features].
        """
        h, w, c = self.image_shape
        n = len(self.features)
        if h % 2**n or w % 2**n:
            raise ConfigError(
                f"image_shape={tuple(self.image_shape)}: H and W must be divisible by "
                f"2**{n} for {n} conv layers; use fewer entries in features."
            )
        channels = list(reversed(self.features))
        y = nn.relu(nn.Dense(self.hidden_features)(z))
        y = nn.relu(nn.Dense((h >> n) * (w >> n) * channels[0])(y))
        y = y.reshape(z.shape[0], h >> n, w >> n, channels[0])
        for f in [*channels[1:], channels[-1]]:
            y = nn.relu(nn.ConvTranspose(f, (3, 3), strides=(2, 2), padding="SAME")(y))
        y = nn.Conv(c * self.out_features, (3, 3), padding="SAME")(y)
        return y.reshape(z.shape[0], h, w, c, self.out_features)


class MLPEncoder(nn.Module):
    """Flattened images -> feature vector through tanh layers.

    Attributes:
      out_features: size of the output vector.
      num_levels: intensity levels L of the input images.
      features: widths of the hidden layers.
    """

    out_features: int
    num_levels: int
    features: Sequence[int] = (200, 200)

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        """Encodes images: int [B, H, W, C] -> float [B, out_features]."""
        y = to_signed(x, self.num_levels).reshape(x.shape[0], -1)
        for f in self.features:
            y = nn.tanh(nn.Dense(f)(y))
        return nn.Dense(self.out_features)(y)


class MLPDecoder(nn.Module):
    """Vector -> per-sub-pixel outputs through tanh layers.

    Attributes:
      image_shape: (H, W, C) of the images.
      out_features: outputs per sub-pixel.
      features: the encoder's hidden widths; used in reverse order.
    """

    image_shape: tuple[int, int, int]
    out_features: int
    features: Sequence[int] = (200, 200)

    @nn.compact
    def __call__(self, z: jax.Array) -> jax.Array:
        """Decodes vectors: float [B, D] -> float [B, H, W, C, out_features]."""
        y = z
        for f in reversed(self.features):
            y = nn.tanh(nn.Dense(f)(y))
        y = nn.Dense(self.out_features * math.prod(self.image_shape))(y)
        return y.reshape(z.shape[0], *self.image_shape, self.out_features)


def check_widths(architecture: str, features: Sequence[int], hidden_features: int) -> None:
    """Raises a ConfigError naming a bad layer width of ``make_encoder``/``make_decoder``.

    ``features`` must hold positive widths (the conv nets at least one: one per
    halving; an empty MLP tuple is a linear map) and a conv net's
    ``hidden_features`` must be positive; Flax would fail deep inside (a
    division by zero, a negative shape) or build a layer of no units.
    """
    conv = architecture == "conv"
    if any(not isinstance(f, int) or f < 1 for f in features) or (conv and not features):
        hint = " (at least one for the conv nets: one per halving)" if conv else ""
        raise ConfigError(f"features={tuple(features)} must hold positive layer widths{hint}.")
    if conv and hidden_features < 1:
        raise ConfigError(f"hidden_features={hidden_features} must be a positive integer.")


def make_encoder(
    architecture: str,
    out_features: int,
    num_levels: int,
    features: Sequence[int],
    hidden_features: int,
) -> nn.Module:
    """The encoder of ``architecture`` ("conv" or "mlp"); ``hidden_features`` is conv-only."""
    check_widths(architecture, features, hidden_features)
    if architecture == "conv":
        return ConvEncoder(out_features, num_levels, tuple(features), hidden_features)
    if architecture == "mlp":
        return MLPEncoder(out_features, num_levels, tuple(features))
    raise ConfigError(f"architecture={architecture!r} must be one of {', '.join(ARCHITECTURES)}.")


def make_decoder(
    architecture: str,
    image_shape: Sequence[int],
    out_features: int,
    features: Sequence[int],
    hidden_features: int,
) -> nn.Module:
    """The decoder of ``architecture`` ("conv" or "mlp") matching ``make_encoder``."""
    check_widths(architecture, features, hidden_features)
    h, w, c = (int(s) for s in image_shape)
    shape = (h, w, c)
    if architecture == "conv":
        return ConvDecoder(shape, out_features, tuple(features), hidden_features)
    if architecture == "mlp":
        return MLPDecoder(shape, out_features, tuple(features))
    raise ConfigError(f"architecture={architecture!r} must be one of {', '.join(ARCHITECTURES)}.")
