"""Samplers. Autoregressive sampling runs as one compiled program per shape.

The draw for sub-pixel number ``t`` in raster-then-channel order uses the key
``fold_in(key, t)``, whatever the method, so every method that computes the
same logits returns the same samples for the same key.
"""

import functools
from collections.abc import Callable

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxgen.validation import check_images

LogitsFn = Callable[[jax.Array], jax.Array]


def _draw(key: jax.Array, t: jax.Array, logits: jax.Array, temperature: float) -> jax.Array:
    """Draws one level per image for sub-pixel ``t``; logits float [B, L] -> int [B]."""
    return jax.random.categorical(jax.random.fold_in(key, t), logits / temperature, axis=-1)


def _naive_loop(
    logits_fn: LogitsFn, key: jax.Array, x: jax.Array, known: jax.Array, temperature: float
) -> jax.Array:
    """Fills the unknown sub-pixels of ``x`` in order, one full network pass each.

    Args:
      logits_fn: int [B, H, W, C] -> float [B, H, W, C, L].
      key: PRNG key.
      x: int [B, H, W, C] initial images (values at unknown pixels are ignored).
      known: bool [B, H, W], pixels to keep.
      temperature: softmax temperature.

    Returns:
      int [B, H, W, C].
    """
    _, h, w, c = x.shape

    def body(t, x):
        i, j, ch = t // (w * c), (t // c) % w, t % c
        logits = logits_fn(x)[:, i, j, ch]
        draw = _draw(key, t, logits, temperature).astype(x.dtype)
        value = jnp.where(known[:, i, j], x[:, i, j, ch], draw)
        return x.at[:, i, j, ch].set(value)

    return jax.lax.fori_loop(0, h * w * c, body, x)


@functools.lru_cache(maxsize=32)
def _compiled_sampler(model: nn.Module, method: str, temperature: float) -> Callable:
    """A jitted (params, key, x, known) -> samples for one model and method."""
    if method == "naive":

        def run(params, key, x, known):
            return _naive_loop(lambda y: model.apply(params, y), key, x, known, temperature)

        return jax.jit(run)
    raise ValueError(f"method={method!r} is not available for {type(model).__name__}; use 'naive'.")


def _check_temperature(temperature: float) -> None:
    if not temperature > 0:
        raise ValueError(f"temperature={temperature} must be positive.")


def autoregressive_sample(
    model: nn.Module,
    params,
    key: jax.Array,
    shape: tuple[int, int, int, int],
    method: str = "naive",
    temperature: float = 1.0,
) -> jax.Array:
    """Samples images from an autoregressive model, sub-pixel by sub-pixel.

    Args:
      model: a model whose ``apply(params, x)`` maps int [B, H, W, C] to logits
        float [B, H, W, C, L] (PixelCNN and friends).
      params: the model's variables.
      key: PRNG key; the same key and params give the same samples for every method.
      shape: (B, H, W, C) of the samples.
      method: ``"naive"`` (one full network pass per sub-pixel).
      temperature: softmax temperature (1 samples the model's distribution).

    Returns:
      int32 [B, H, W, C] samples in [0, L).
    """
    if len(shape) != 4 or min(shape) < 1:
        raise ValueError(f"shape={shape} must be (B, H, W, C) with positive sizes.")
    _check_temperature(temperature)
    x = jnp.zeros(shape, jnp.int32)
    known = jnp.zeros(shape[:3], bool)
    return _compiled_sampler(model, method, float(temperature))(params, key, x, known)


def complete(
    model: nn.Module,
    params,
    key: jax.Array,
    images: jax.Array,
    known: jax.Array,
    method: str = "naive",
    temperature: float = 1.0,
) -> jax.Array:
    """Completes images: keeps the known pixels, samples the rest in order.

    Args:
      model: as in ``autoregressive_sample``.
      params: the model's variables.
      key: PRNG key.
      images: int [B, H, W, C] levels in [0, L).
      known: bool [B, H, W], True where the pixel is given (e.g. the top half).
      method: as in ``autoregressive_sample``.
      temperature: softmax temperature.

    Returns:
      int32 [B, H, W, C]: equal to ``images`` where ``known``.
    """
    check_images(images, getattr(model, "num_levels", 256), name="images")
    if known.shape != images.shape[:3] or known.dtype != jnp.bool_:
        raise ValueError(
            f"known must be bool [B, H, W] = {images.shape[:3]}; got {known.dtype} {known.shape}."
        )
    _check_temperature(temperature)
    sampler = _compiled_sampler(model, method, float(temperature))
    return sampler(params, key, jnp.asarray(images, jnp.int32), jnp.asarray(known))
