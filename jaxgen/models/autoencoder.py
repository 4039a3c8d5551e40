"""Deterministic autoencoder with an L2 reconstruction loss (no density model).

    image int [B, H, W, C] -> encoder -> z float [B, latent_dim]
      -> decoder -> reconstruction float [B, H, W, C] on the [0, 1] scale
    loss: sum over H, W, C of (reconstruction - x / (L - 1))**2

The encoder and decoder are those of ``jaxgen.models.coders`` (conv by
default); the trained encoder can be reused under a classifier
(``jaxgen.transfer``).
"""

from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxgen import losses
from jaxgen.models.coders import make_decoder, make_encoder
from jaxgen.validation import ConfigError, check_images


class Autoencoder(nn.Module):
    """Encoder to a low-dimensional code and decoder back to the image.

    Attributes:
      latent_dim: size of the code z.
      num_levels: intensity levels L of the images.
      image_shape: (H, W, C) of the images.
      architecture: ``"conv"`` or ``"mlp"`` (see ``jaxgen.models.coders``).
      features: conv channels per halving ("conv") or hidden widths ("mlp").
      hidden_features: width of the conv nets' dense layer.
    """

    latent_dim: int = 32
    num_levels: int = 256
    image_shape: Sequence[int] = (28, 28, 1)
    architecture: str = "conv"
    features: Sequence[int] = (32, 64)
    hidden_features: int = 256

    def setup(self):
        if self.latent_dim < 1:
            raise ConfigError(f"Autoencoder latent_dim={self.latent_dim} must be positive.")
        self.encoder = make_encoder(
            self.architecture, self.latent_dim, self.num_levels, self.features, self.hidden_features
        )
        self.decoder = make_decoder(
            self.architecture, self.image_shape, 1, self.features, self.hidden_features
        )

    def encode(self, x: jax.Array) -> jax.Array:
        """Codes of images: int [B, H, W, C] -> float [B, latent_dim]."""
        check_images(x, self.num_levels)
        return self.encoder(x)

    def decode(self, z: jax.Array) -> jax.Array:
        """Reconstructions: float [B, latent_dim] -> float [B, H, W, C] on the [0, 1] scale."""
        return self.decoder(z)[..., 0]

    def encode_mean(self, x: jax.Array) -> jax.Array:
        """The code used for pictures and transfer; equal to ``encode``."""
        return self.encode(x)

    def decode_mean(self, z: jax.Array) -> jax.Array:
        """The image shown for a code: ``decode`` clipped to [0, 1]."""
        return jnp.clip(self.decode(z), 0.0, 1.0)

    def __call__(self, x: jax.Array) -> jax.Array:
        """Reconstructs images: int [B, H, W, C] -> float [B, H, W, C] on the [0, 1] scale."""
        return self.decode(self.encode(x))


# Moved to jaxgen.losses; importable from here only until every caller imports it there.
reconstruction_loss = losses.reconstruction_loss
