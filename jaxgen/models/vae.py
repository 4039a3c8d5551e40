"""Variational autoencoder (Kingma & Welling, 2014), evaluated as in IWAE (Burda et al., 2016).

    image int [B, H, W, C] -> encoder -> q(z|x) = N(mean, diag(exp(logvar))), z in R^D
    z = mean + exp(logvar / 2) * eps, eps ~ N(0, I)        (reparameterization)
    z -> decoder -> p(x|z): a discrete distribution over every sub-pixel's levels
    prior p(z) = N(0, I)

The decoder's likelihood is one of ``jaxgen.likelihoods.LIKELIHOODS``: Bernoulli
for binarized data; categorical, discretized logistic or discretized Gaussian
for 8-bit data. All are probability mass functions, so bounds on log p(x) are
comparable with PixelCNN's NLL. Bounds, samples and pictures are functions in
``jaxgen.latent``.
"""

from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxgen import likelihoods
from jaxgen.models.coders import make_decoder, make_encoder
from jaxgen.validation import ConfigError, check_images


class VAE(nn.Module):
    """Gaussian encoder q(z|x), standard normal prior, discrete decoder p(x|z).

    Attributes:
      latent_dim: D, the size of z.
      num_levels: intensity levels L of the images (2 for binarized data).
      likelihood: the decoder's distribution, one of ``jaxgen.likelihoods.LIKELIHOODS``.
      image_shape: (H, W, C) of the images.
      architecture: ``"mlp"`` (the papers' tanh MLPs) or ``"conv"``.
      features: hidden widths ("mlp"; IWAE: (200, 200)) or conv channels ("conv").
      hidden_features: width of the conv nets' dense layer.
    """

    latent_dim: int = 50
    num_levels: int = 2
    likelihood: str = "bernoulli"
    image_shape: Sequence[int] = (28, 28, 1)
    architecture: str = "mlp"
    features: Sequence[int] = (200, 200)
    hidden_features: int = 256

    def setup(self):
        if self.latent_dim < 1:
            raise ConfigError(f"VAE latent_dim={self.latent_dim} must be positive.")
        num_params = likelihoods.num_params(self.likelihood, self.num_levels)
        self.encoder = make_encoder(
            self.architecture,
            2 * self.latent_dim,
            self.num_levels,
            self.features,
            self.hidden_features,
        )
        self.decoder = make_decoder(
            self.architecture, self.image_shape, num_params, self.features, self.hidden_features
        )

    def encode(self, x: jax.Array) -> tuple[jax.Array, jax.Array]:
        """Parameters of q(z|x).

        Args:
          x: int [B, H, W, C] levels in [0, num_levels).

        Returns:
          (mean, logvar), each float [B, latent_dim].
        """
        check_images(x, self.num_levels)
        mean, logvar = jnp.split(self.encoder(x), 2, axis=-1)
        return mean, logvar

    def decode(self, z: jax.Array) -> jax.Array:
        """Parameters of p(x|z): float [B, latent_dim] -> float [B, H, W, C, P]."""
        return self.decoder(z)

    def log_likelihood(self, x: jax.Array, z: jax.Array) -> jax.Array:
        """log p(x|z) in nats per image.

        Args:
          x: int [B, H, W, C] levels in [0, num_levels).
          z: float [B, latent_dim].

        Returns:
          float [B].
        """
        return likelihoods.log_prob(self.likelihood, self.decode(z), x, self.num_levels)

    def encode_mean(self, x: jax.Array) -> jax.Array:
        """The posterior mean of z: int [B, H, W, C] -> float [B, latent_dim]."""
        return self.encode(x)[0]

    def decode_mean(self, z: jax.Array) -> jax.Array:
        """The decoder's mean E[x|z] on the [0, 1] scale: float [B, D] -> float [B, H, W, C]."""
        return likelihoods.mean(self.likelihood, self.decode(z), self.num_levels)

    def decode_sample(self, z: jax.Array, key: jax.Array) -> jax.Array:
        """Draws x ~ p(x|z): float [B, D] -> int32 [B, H, W, C] levels."""
        return likelihoods.sample(self.likelihood, key, self.decode(z), self.num_levels)

    def __call__(self, x: jax.Array) -> jax.Array:
        """Decoder outputs at the posterior mean: int [B, H, W, C] -> float [B, H, W, C, P]."""
        return self.decode(self.encode_mean(x))


def reparameterize(
    key: jax.Array,
    mean: jax.Array,
    logvar: jax.Array,
    num_samples: int = 1,
    first_sample: int | jax.Array = 0,
) -> jax.Array:
    """Draws z = mean + exp(logvar / 2) * eps, differentiable in mean and logvar.

    Draw number k uses the noise ``normal(fold_in(key, first_sample + k))``, so a
    run of draws split into chunks sees the same numbers as one long run.

    Args:
      key: PRNG key.
      mean: float [B, D].
      logvar: float [B, D].
      num_samples: K, draws per example.
      first_sample: index of the first draw (may be traced).

    Returns:
      float [K, B, D].
    """
    ids = first_sample + jnp.arange(num_samples)
    eps = jax.vmap(lambda i: jax.random.normal(jax.random.fold_in(key, i), mean.shape))(ids)
    return mean + jnp.exp(0.5 * logvar) * eps.astype(mean.dtype)
