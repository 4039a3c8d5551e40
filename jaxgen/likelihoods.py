"""Decoder distributions p(x | z) over discrete images, one factor per sub-pixel.

Every likelihood here is a probability mass function over the integer levels
``[0, L)`` of each sub-pixel, so its log-likelihoods are in the same units as
PixelCNN's (nats of a discrete distribution) and can be compared with them.

``"bernoulli"``
  One logit per sub-pixel; binary data only (L = 2).
``"categorical"``
  L logits per sub-pixel: a softmax over the levels.
``"discretized_gaussian"``
  Mean and log-scale per sub-pixel. The levels k are the bin centres
  ``y_k = 2k/(L-1) - 1`` of L equal bins tiling [-1, 1]; P(k) is the Gaussian's
  mass on bin k, ``Phi((y_k + d - mu)/s) - Phi((y_k - d - mu)/s)`` with half-width
  ``d = 1/(L-1)``, and the outer bins extend to -inf and +inf. It is a Gaussian
  with diagonal covariance made discrete by integrating it over the bins (not
  a density), as PixelCNN++ does with the logistic.
``"discretized_logistic"``
  The same construction with the logistic CDF (Salimans et al., 2017).

Decoder outputs carry the distribution's parameters on a trailing axis:
float ``[B, H, W, C, P]`` with ``P = num_params(likelihood, num_levels)``.
"""

from collections.abc import Callable

import jax
import jax.numpy as jnp
from jax.scipy.special import log_ndtr

from jaxgen.validation import ConfigError

LIKELIHOODS: tuple[str, ...] = (
    "bernoulli",
    "categorical",
    "discretized_gaussian",
    "discretized_logistic",
)

# Lower bound of the log-scale of the discretized likelihoods (as in PixelCNN++).
MIN_LOG_SCALE = -7.0


def check_likelihood(likelihood: str, num_levels: int) -> None:
    """Raises a ValueError unless ``likelihood`` exists and fits ``num_levels``."""
    if likelihood not in LIKELIHOODS:
        raise ConfigError(f"likelihood={likelihood!r} must be one of {', '.join(LIKELIHOODS)}.")
    if num_levels < 2:
        raise ConfigError(f"num_levels={num_levels} must be at least 2.")
    if likelihood == "bernoulli" and num_levels != 2:
        raise ConfigError(
            f"likelihood='bernoulli' models binary data but num_levels={num_levels}; use "
            "'categorical', 'discretized_logistic' or 'discretized_gaussian' for 8-bit data."
        )


def num_params(likelihood: str, num_levels: int) -> int:
    """Parameters per sub-pixel: 1 (Bernoulli), L (categorical) or 2 (mean, log-scale)."""
    check_likelihood(likelihood, num_levels)
    return {"bernoulli": 1, "categorical": num_levels}.get(likelihood, 2)


def _log_diff_exp(log_a: jax.Array, log_b: jax.Array) -> jax.Array:
    """log(exp(log_a) - exp(log_b)) for log_a > log_b, finite (and with finite gradients)."""
    return log_a + jnp.log(-jnp.expm1(jnp.minimum(log_b - log_a, -1e-20)))


def _discretized_log_prob(
    log_cdf: Callable[[jax.Array], jax.Array],
    params: jax.Array,
    x: jax.Array,
    num_levels: int,
) -> jax.Array:
    """log P(x) of a symmetric location-scale CDF integrated over the level bins.

    Args:
      log_cdf: log CDF of the standard distribution, symmetric about 0.
      params: float [..., 2] mean and log-scale (on the [-1, 1] scale of the bins).
      x: int [...] levels in [0, L).
      num_levels: L.

    Returns:
      float [...] log-probabilities.
    """
    mean = params[..., 0]
    inv_scale = jnp.exp(-jnp.maximum(params[..., 1], MIN_LOG_SCALE))
    half = 1.0 / (num_levels - 1)
    centre = x.astype(jnp.float32) * (2.0 * half) - 1.0
    lower = (centre - half - mean) * inv_scale
    upper = (centre + half - mean) * inv_scale
    # Work in the tail nearer to the bin, where the CDF values are small and precise:
    # for a bin above the mean, P = S(lower) - S(upper) with S(t) = CDF(-t).
    above = centre > mean
    hi = jnp.where(above, -lower, upper)
    lo = jnp.where(above, -upper, lower)
    interior = _log_diff_exp(log_cdf(hi), log_cdf(lo))
    first = log_cdf(upper)
    last = log_cdf(-lower)
    return jnp.where(x == 0, first, jnp.where(x == num_levels - 1, last, interior))


def pixel_log_probs(likelihood: str, params: jax.Array, x: jax.Array, num_levels: int) -> jax.Array:
    """log p(x) of every sub-pixel.

    Args:
      likelihood: one of ``LIKELIHOODS``.
      params: float [B, H, W, C, P] decoder outputs.
      x: int [B, H, W, C] levels in [0, num_levels).
      num_levels: L.

    Returns:
      float [B, H, W, C] log-probabilities in nats.
    """
    check_likelihood(likelihood, num_levels)
    p = num_params(likelihood, num_levels)
    if params.shape != (*x.shape, p):
        raise ConfigError(
            f"{likelihood} decoder outputs must have shape {(*x.shape, p)} for images of shape "
            f"{x.shape}; got {params.shape}."
        )
    params = params.astype(jnp.float32)
    if likelihood == "bernoulli":
        logits = params[..., 0]
        return jnp.where(x == 1, jax.nn.log_sigmoid(logits), jax.nn.log_sigmoid(-logits))
    if likelihood == "categorical":
        log_p = jax.nn.log_softmax(params, axis=-1)
        return jnp.take_along_axis(log_p, x[..., None].astype(jnp.int32), axis=-1)[..., 0]
    log_cdf = log_ndtr if likelihood == "discretized_gaussian" else jax.nn.log_sigmoid
    return _discretized_log_prob(log_cdf, params, x, num_levels)


def log_prob(likelihood: str, params: jax.Array, x: jax.Array, num_levels: int) -> jax.Array:
    """log p(x | z) of whole images.

    Args:
      likelihood: one of ``LIKELIHOODS``.
      params: float [B, H, W, C, P] decoder outputs.
      x: int [B, H, W, C] levels in [0, num_levels).
      num_levels: L.

    Returns:
      float [B] log-likelihood in nats per image (sum over H, W, C).
    """
    lp = pixel_log_probs(likelihood, params, x, num_levels)
    return lp.reshape(lp.shape[0], -1).sum(axis=-1)


def level_log_probs(likelihood: str, params: jax.Array, num_levels: int) -> jax.Array:
    """log P(k) of every level k of every sub-pixel.

    Args:
      likelihood: one of ``LIKELIHOODS``.
      params: float [B, H, W, C, P] decoder outputs.
      num_levels: L.

    Returns:
      float [B, H, W, C, L]; exp sums to 1 over the last axis.
    """
    levels = jnp.arange(num_levels, dtype=jnp.int32)
    shape = params.shape[:-1]
    per_level = jax.vmap(
        lambda k: pixel_log_probs(likelihood, params, jnp.full(shape, k), num_levels)
    )(levels)
    return jnp.moveaxis(per_level, 0, -1)


def mean(likelihood: str, params: jax.Array, num_levels: int) -> jax.Array:
    """The expected image E[x | z], scaled to [0, 1].

    Args:
      likelihood: one of ``LIKELIHOODS``.
      params: float [B, H, W, C, P] decoder outputs.
      num_levels: L.

    Returns:
      float [B, H, W, C] in [0, 1]: E[k] / (L - 1).
    """
    probs = jnp.exp(level_log_probs(likelihood, params, num_levels))
    return probs @ jnp.linspace(0.0, 1.0, num_levels)


def sample(likelihood: str, key: jax.Array, params: jax.Array, num_levels: int) -> jax.Array:
    """Draws x ~ p(x | z), independently for every sub-pixel.

    Args:
      likelihood: one of ``LIKELIHOODS``.
      key: PRNG key.
      params: float [B, H, W, C, P] decoder outputs.
      num_levels: L.

    Returns:
      int32 [B, H, W, C] levels in [0, L).
    """
    return jax.random.categorical(key, level_log_probs(likelihood, params, num_levels), axis=-1)
