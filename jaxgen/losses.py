"""Losses of the families: autoregressive NLL, ELBO terms, reconstruction, GAN objectives.

All functions are pure and return per-example values where a batch axis exists,
so callers choose how to average (and can weight padded examples by zero).
"""

import math
from typing import Literal

import jax
import jax.numpy as jnp
import optax

from jaxgen.levels import to_unit
from jaxgen.validation import ConfigError


def autoregressive_nll(logits: jax.Array, x: jax.Array) -> jax.Array:
    """Negative log-likelihood of images under per-subpixel categorical outputs.

    Args:
      logits: float [B, H, W, C, L] unnormalised log-probabilities of the L levels.
      x: int [B, H, W, C] observed levels in [0, L).

    Returns:
      float [B]: -log p(x) in nats per image (sum over H, W, C).
    """
    if logits.shape[:-1] != x.shape:
        raise ConfigError(
            f"logits shape {logits.shape} must be x's shape {x.shape} plus a levels axis."
        )
    nll = optax.softmax_cross_entropy_with_integer_labels(logits.astype(jnp.float32), x)
    return nll.reshape(nll.shape[0], -1).sum(axis=-1)


def bits_per_dim(nll: jax.Array, num_dims: int) -> jax.Array:
    """Converts nats per image to bits per dimension.

    Args:
      nll: float [...] negative log-likelihood in nats per image.
      num_dims: dimensions per image, H * W * C.

    Returns:
      float [...] bits per dimension.
    """
    return nll / (num_dims * math.log(2.0))


def gaussian_kl(mean: jax.Array, logvar: jax.Array) -> jax.Array:
    """KL(N(mean, diag(exp(logvar))) || N(0, I)) in closed form.

    Args:
      mean: float [B, D].
      logvar: float [B, D] log-variances.

    Returns:
      float [B] KL divergence in nats.
    """
    return 0.5 * jnp.sum(jnp.exp(logvar) + jnp.square(mean) - 1.0 - logvar, axis=-1)


def iwae_bound(log_weights: jax.Array) -> jax.Array:
    """Importance-weighted lower bound log (1/K) sum_k w_k (Burda et al., 2016).

    Args:
      log_weights: float [K, B] with log w_k = log p(x, z_k) - log q(z_k | x).

    Returns:
      float [B] the bound on log p(x); K = 1 gives the ELBO.
    """
    k = log_weights.shape[0]
    return jax.nn.logsumexp(log_weights, axis=0) - math.log(k)


def reconstruction_loss(reconstruction: jax.Array, x: jax.Array, num_levels: int) -> jax.Array:
    """Squared error between reconstructions and images scaled to [0, 1] (the autoencoder's).

    Args:
      reconstruction: float [B, H, W, C] on the [0, 1] scale.
      x: int [B, H, W, C] levels in [0, num_levels).
      num_levels: L.

    Returns:
      float [B] sum of squared errors per image.
    """
    err = jnp.square(reconstruction.astype(jnp.float32) - to_unit(x, num_levels))
    return err.reshape(err.shape[0], -1).sum(axis=-1)


def gan_discriminator_loss(real_logits: jax.Array, fake_logits: jax.Array) -> jax.Array:
    """-E[log D(x)] - E[log(1 - D(G(z)))], computed stably from logits.

    Args:
      real_logits: float [B] discriminator logits on data.
      fake_logits: float [B'] discriminator logits on generated samples.

    Returns:
      float scalar.
    """
    real = optax.sigmoid_binary_cross_entropy(real_logits, jnp.ones_like(real_logits))
    fake = optax.sigmoid_binary_cross_entropy(fake_logits, jnp.zeros_like(fake_logits))
    return jnp.mean(real) + jnp.mean(fake)


def gan_generator_loss(
    fake_logits: jax.Array, kind: Literal["non_saturating", "minimax"] = "non_saturating"
) -> jax.Array:
    """Generator objective, minimised.

    Args:
      fake_logits: float [B] discriminator logits on generated samples.
      kind: ``"minimax"`` minimises E[log(1 - D(G(z)))] (gradient vanishes where
        D rejects the samples); ``"non_saturating"`` minimises -E[log D(G(z))].

    Returns:
      float scalar.
    """
    if kind == "minimax":
        return jnp.mean(jax.nn.log_sigmoid(-fake_logits))
    if kind == "non_saturating":
        return -jnp.mean(jax.nn.log_sigmoid(fake_logits))
    raise ConfigError(f"kind={kind!r} must be 'non_saturating' or 'minimax'.")
