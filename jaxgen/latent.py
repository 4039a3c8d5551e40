"""Bounds on log p(x) and pictures of latent-variable models, usable from a notebook.

The bounds take any Flax module with these methods (``models.VAE`` has them):
``encode(x) -> (mean, logvar)`` of a diagonal Gaussian q(z|x), float [B, D] each;
``log_likelihood(x, z) -> [B]`` log p(x|z) in nats; the prior is N(0, I).
The pictures need ``encode_mean(x) -> z`` and ``decode_mean(z) -> float
[B, H, W, C]`` on the [0, 1] scale (``models.VAE`` and ``models.Autoencoder``),
plus ``decode_sample(z, key)`` for ``prior_samples``. Every model has a
``latent_dim`` attribute.

All bounds are in nats per image; ``losses.bits_per_dim`` converts them.
"""

import functools
import math

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import ndtri

from jaxgen import losses, viz
from jaxgen.models.vae import reparameterize
from jaxgen.validation import ConfigError

_LOG_2PI = math.log(2.0 * math.pi)


def _standard_normal_log_prob(eps: jax.Array) -> jax.Array:
    """log N(eps; 0, I) summed over the last axis: [..., D] -> [...]."""
    return -0.5 * jnp.sum(jnp.square(eps) + _LOG_2PI, axis=-1)


def _log_likelihoods(model: nn.Module, params, x: jax.Array, z: jax.Array) -> jax.Array:
    """log p(x|z_k) for every draw: z float [K, B, D] -> float [K, B]."""
    return jax.vmap(lambda zk: model.apply(params, x, zk, method=model.log_likelihood))(z)


def _log_weights(
    model: nn.Module,
    params,
    x: jax.Array,
    mean: jax.Array,
    logvar: jax.Array,
    key: jax.Array,
    num_samples: int,
    first_sample: int | jax.Array = 0,
) -> jax.Array:
    """log p(x, z_k) - log q(z_k|x) for draws first_sample .. first_sample + K - 1: [K, B]."""
    z = reparameterize(key, mean, logvar, num_samples, first_sample)
    eps = (z - mean) * jnp.exp(-0.5 * logvar)
    log_q = _standard_normal_log_prob(eps) - 0.5 * jnp.sum(logvar, axis=-1)
    return _log_likelihoods(model, params, x, z) + _standard_normal_log_prob(z) - log_q


@functools.partial(jax.jit, static_argnames=("model", "num_samples"))
def log_weights(
    model: nn.Module, params, x: jax.Array, key: jax.Array, num_samples: int = 1
) -> jax.Array:
    """Importance log-weights log p(x, z_k) - log q(z_k|x), z_k ~ q(z|x).

    Args:
      model: a latent-variable model (see the module docstring).
      params: its variables.
      x: int [B, H, W, C] images.
      key: PRNG key of the draws.
      num_samples: K.

    Returns:
      float [K, B].
    """
    mean, logvar = model.apply(params, x, method=model.encode)
    return _log_weights(model, params, x, mean, logvar, key, num_samples)


@functools.partial(jax.jit, static_argnames=("model", "num_samples"))
def elbo_terms(
    model: nn.Module, params, x: jax.Array, key: jax.Array, num_samples: int = 1
) -> dict[str, jax.Array]:
    """The two terms of the ELBO, the expectation estimated with K reparameterized draws.

    ELBO = E_q[log p(x|z)] - KL(q(z|x) || N(0, I)); the KL is in closed form.

    Args:
      model: a latent-variable model (see the module docstring).
      params: its variables.
      x: int [B, H, W, C] images.
      key: PRNG key of the draws.
      num_samples: K, Monte Carlo draws of z per image.

    Returns:
      dict of float [B]: ``log_likelihood`` (the MC estimate of E_q[log p(x|z)]),
      ``kl`` and ``elbo``, in nats per image.
    """
    mean, logvar = model.apply(params, x, method=model.encode)
    z = reparameterize(key, mean, logvar, num_samples)
    log_likelihood = _log_likelihoods(model, params, x, z).mean(axis=0)
    kl = losses.gaussian_kl(mean, logvar)
    return {"log_likelihood": log_likelihood, "kl": kl, "elbo": log_likelihood - kl}


def elbo(model: nn.Module, params, x: jax.Array, key: jax.Array, num_samples: int = 1) -> jax.Array:
    """The evidence lower bound on log p(x): float [B] nats per image (see ``elbo_terms``)."""
    return elbo_terms(model, params, x, key, num_samples)["elbo"]


@functools.partial(jax.jit, static_argnames=("model", "num_samples", "chunk_size"))
def iwae_log_px(
    model: nn.Module,
    params,
    x: jax.Array,
    key: jax.Array,
    num_samples: int = 5000,
    chunk_size: int = 100,
) -> jax.Array:
    """The importance-weighted bound L_K on log p(x), computed ``chunk_size`` draws at a time.

    L_K = log (1/K) sum_k p(x, z_k) / q(z_k|x) rises towards log p(x) as K grows
    (Burda et al., 2016, Thm 1). Memory holds one chunk of draws, so K = 5000 fits.
    Draw k uses the same noise whatever ``chunk_size`` is.

    Args:
      model: a latent-variable model (see the module docstring).
      params: its variables.
      x: int [B, H, W, C] images.
      key: PRNG key of the draws.
      num_samples: K.
      chunk_size: draws per chunk; must divide K.

    Returns:
      float [B] the bound in nats per image.
    """
    if num_samples < 1 or chunk_size < 1 or num_samples % min(chunk_size, num_samples):
        raise ConfigError(
            f"num_samples={num_samples} must be a positive multiple of chunk_size={chunk_size} "
            "(or smaller than it); pick a chunk_size that divides num_samples."
        )
    chunk = min(chunk_size, num_samples)
    mean, logvar = model.apply(params, x, method=model.encode)

    def chunk_bound(c):
        lw = _log_weights(model, params, x, mean, logvar, key, chunk, c * chunk)
        return losses.iwae_bound(lw)

    # The mean of the chunks' (1/chunk) sum w equals (1/K) sum w over all K draws.
    bounds = jax.lax.map(chunk_bound, jnp.arange(num_samples // chunk))
    return losses.iwae_bound(bounds)


def prior_samples(
    model: nn.Module, params, key: jax.Array, num_samples: int
) -> tuple[jax.Array, jax.Array]:
    """Images decoded from z ~ N(0, I): the decoder's mean and a draw x ~ p(x|z).

    Args:
      model: a VAE (needs ``decode_mean`` and ``decode_sample``).
      params: its variables.
      key: PRNG key.
      num_samples: N.

    Returns:
      (mean float [N, H, W, C] in [0, 1], sample int32 [N, H, W, C] levels), from the same z.
    """
    z_key, x_key = jax.random.split(key)
    z = jax.random.normal(z_key, (num_samples, model.latent_dim))
    means = model.apply(params, z, method=model.decode_mean)
    samples = model.apply(params, z, x_key, method=model.decode_sample)
    return means, samples


def latent_manifold(
    model: nn.Module, params, num_per_axis: int = 20, dims: tuple[int, int] = (0, 1)
) -> jax.Array:
    """Decoder means over a grid of two latent dimensions (Kingma & Welling, Fig. 4).

    The grid's coordinates are the prior's quantiles at evenly spaced
    probabilities (i + 1/2) / n, through the inverse Gaussian CDF; the other
    dimensions of z are 0. Row i varies ``dims[0]``, column j varies ``dims[1]``.

    Args:
      model: a model with ``decode_mean`` and ``latent_dim`` >= 2.
      params: its variables.
      num_per_axis: n.
      dims: the two dimensions of z to vary.

    Returns:
      float [n, n, H, W, C] in [0, 1].
    """
    if model.latent_dim < 2 or not all(0 <= d < model.latent_dim for d in dims):
        raise ConfigError(
            f"dims={dims} must be two dimensions of z, in [0, latent_dim={model.latent_dim})."
        )
    coords = ndtri((jnp.arange(num_per_axis) + 0.5) / num_per_axis)
    rows, cols = jnp.meshgrid(coords, coords, indexing="ij")
    z = jnp.zeros((num_per_axis * num_per_axis, model.latent_dim))
    z = z.at[:, dims[0]].set(rows.ravel()).at[:, dims[1]].set(cols.ravel())
    images = model.apply(params, z, method=model.decode_mean)
    return images.reshape(num_per_axis, num_per_axis, *images.shape[1:])


def latent_edit(model: nn.Module, params, x: jax.Array, dim: int, values: jax.Array) -> jax.Array:
    """Encodes images, sets one latent dimension to each of ``values``, decodes.

    Args:
      model: a model with ``encode_mean`` and ``decode_mean``.
      params: its variables.
      x: int [B, H, W, C] images.
      dim: the dimension of z to vary, in [0, latent_dim).
      values: float [V] the values given to z[dim] (e.g. ``jnp.linspace(-3, 3, 9)``).

    Returns:
      float [B, V, H, W, C] in [0, 1]; row b edits image b.
    """
    if not 0 <= dim < model.latent_dim:
        raise ConfigError(f"dim={dim} must be in [0, latent_dim={model.latent_dim}).")
    z = model.apply(params, x, method=model.encode_mean)
    values = jnp.asarray(values, z.dtype)
    edited = jnp.repeat(z[:, None], values.shape[0], axis=1).at[:, :, dim].set(values)
    images = model.apply(params, edited.reshape(-1, z.shape[-1]), method=model.decode_mean)
    return images.reshape(*edited.shape[:2], *images.shape[1:])


def reconstruct(model: nn.Module, params, x: jax.Array) -> jax.Array:
    """Decoded codes of images: ``decode_mean(encode_mean(x))``.

    Args:
      model: a model with ``encode_mean`` and ``decode_mean``.
      params: its variables.
      x: int [B, H, W, C] images.

    Returns:
      float [B, H, W, C] in [0, 1].
    """
    z = model.apply(params, x, method=model.encode_mean)
    return model.apply(params, z, method=model.decode_mean)


def interpolate(
    model: nn.Module, params, x_start: jax.Array, x_end: jax.Array, num_steps: int = 10
) -> jax.Array:
    """Decodes codes on the straight line between the codes of two images.

    Args:
      model: a model with ``encode_mean`` and ``decode_mean``.
      params: its variables.
      x_start: int [B, H, W, C] images at t = 0.
      x_end: int [B, H, W, C] images at t = 1.
      num_steps: S points t = 0, 1/(S-1), ..., 1.

    Returns:
      float [B, S, H, W, C] in [0, 1]; row b goes from image b of x_start to that of x_end.
    """
    z0 = model.apply(params, x_start, method=model.encode_mean)
    z1 = model.apply(params, x_end, method=model.encode_mean)
    t = jnp.linspace(0.0, 1.0, num_steps)[None, :, None]
    z = (1.0 - t) * z0[:, None] + t * z1[:, None]
    images = model.apply(params, z.reshape(-1, z0.shape[-1]), method=model.decode_mean)
    return images.reshape(*z.shape[:2], *images.shape[1:])


def interpolation_rows(
    model: nn.Module, params, images: np.ndarray, num_levels: int, num_steps: int = 10
) -> np.ndarray:
    """Picture rows from image 2i to image 2i + 1 of ``images``, the two images at the ends.

    Args:
      model: a model with ``encode_mean`` and ``decode_mean``.
      params: its variables.
      images: int [B, H, W, C] levels in [0, num_levels).
      num_levels: L.
      num_steps: decoded points between (and including) the two codes.

    Returns:
      int [B // 2, num_steps + 2, H, W, C] 8-bit levels (``viz.save_rows`` draws them).
    """
    start, end = images[0 : len(images) - 1 : 2], images[1::2]
    path = interpolate(model, params, start, end, num_steps)
    return np.concatenate(
        [
            viz.to_pixels(start[:, None], num_levels),
            viz.to_pixels(path),
            viz.to_pixels(end[:, None], num_levels),
        ],
        axis=1,
    )


@functools.partial(jax.jit, static_argnames=("model", "num_steps"))
def complete(
    model: nn.Module, params, key: jax.Array, x: jax.Array, known: jax.Array, num_steps: int = 50
) -> jax.Array:
    """Fills in the unknown pixels of images by pseudo-Gibbs sampling.

    The Markov chain of Rezende et al. (2014, appendix F): starting from the
    unknown pixels set to 0, it repeats z ~ q(z|x), x' ~ p(x|z) and keeps x'
    at the unknown pixels only. Unlike autoregressive completion this is an
    approximation: the chain's stationary law is p(x_unknown | x_known) only
    when the encoder is the model's exact posterior.

    Args:
      model: a VAE (needs ``encode`` and ``decode_sample``).
      params: its variables.
      key: PRNG key.
      x: int [B, H, W, C] images; values at unknown pixels are ignored.
      known: bool [B, H, W], the pixels to keep.
      num_steps: iterations of the chain.

    Returns:
      int32 [B, H, W, C]: ``x`` at the known pixels, the chain's last draw elsewhere.

    Raises:
      ConfigError: ``num_steps`` < 1 (0 would return the unknown pixels as zeros).
    """
    if num_steps < 1:
        raise ConfigError(f"num_steps={num_steps} iterations of the chain must be at least 1.")
    keep = known[..., None]
    x = jnp.where(keep, x, 0).astype(jnp.int32)

    def step(x, key):
        z_key, x_key = jax.random.split(key)
        mean, logvar = model.apply(params, x, method=model.encode)
        z = reparameterize(z_key, mean, logvar, 1)[0]
        draw = model.apply(params, z, x_key, method=model.decode_sample)
        return jnp.where(keep, x, draw), None

    x, _ = jax.lax.scan(step, x, jax.random.split(key, num_steps))
    return x
