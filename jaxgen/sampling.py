"""Samplers. Autoregressive sampling runs as one compiled program per shape.

The draw for sub-pixel number ``t`` in raster-then-channel order uses the key
``fold_in(key, t)``, whatever the method, so every method that computes the
same logits returns the same samples for the same key.

Methods:

* ``"naive"``: one full network pass per sub-pixel, O((H W C)^2) work; works
  for any model mapping int [B, H, W, C] to logits [B, H, W, C, L].
* ``"cached"`` (Ramachandran et al., 2017): the model replays its layers at one
  pixel per step from caches of what earlier steps computed, O(H W C) work. The
  model provides three methods, called through ``model.apply(..., method=...)``:

  - ``init_cache(x[, labels]) -> cache`` for images shaped like ``x``;
  - ``start_row(cache, x, i) -> cache``, once per row, when rows < i are final;
  - ``step(cache, x, i, j) -> (logits [B, C, L], cache)`` at pixel (i, j).

  ``PixelCNN``, ``GatedPixelCNN`` and ``PixelRNN`` implement them. The cached
  logits equal the full pass's up to float rounding (the same sums in another
  order), so samples agree exactly unless a draw falls within ~1e-6 of a
  category boundary.
"""

import functools
from collections.abc import Callable

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jaxgen.validation import ConfigError, check_images

LogitsFn = Callable[[jax.Array], jax.Array]
METHODS = ("naive", "cached")


def _draw(key: jax.Array, t: jax.Array, logits: jax.Array, temperature: float) -> jax.Array:
    """Draws one level per image for sub-pixel ``t``; logits float [B, L] -> int [B]."""
    return jax.random.categorical(jax.random.fold_in(key, t), logits / temperature, axis=-1)


def _fill(x, known, key, t, logits, temperature):
    """Sets sub-pixel ``t`` of every image to a draw from ``logits`` [B, L] unless known."""
    _, _, w, c = x.shape
    i, j, ch = t // (w * c), (t // c) % w, t % c
    draw = _draw(key, t, logits, temperature).astype(x.dtype)
    return x.at[:, i, j, ch].set(jnp.where(known[:, i, j], x[:, i, j, ch], draw))


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
        return _fill(x, known, key, t, logits_fn(x)[:, i, j, ch], temperature)

    return jax.lax.fori_loop(0, h * w * c, body, x)


def _cached_loop(
    model: nn.Module,
    params,
    key: jax.Array,
    x: jax.Array,
    known: jax.Array,
    labels: jax.Array | None,
    temperature: float,
) -> jax.Array:
    """Like ``_naive_loop``, with the model's incremental methods: rows, then sub-pixels."""
    _, h, w, c = x.shape
    extra = () if labels is None else (labels,)
    cache = model.apply(params, x, *extra, method="init_cache")

    def row(i, carry):
        x, cache = carry
        cache = model.apply(params, cache, x, i, method="start_row")

        def sub_pixel(k, carry):
            x, cache = carry
            logits, cache = model.apply(params, cache, x, i, k // c, method="step")
            t = i * w * c + k
            return _fill(x, known, key, t, logits[:, k % c], temperature), cache

        return jax.lax.fori_loop(0, w * c, sub_pixel, (x, cache))

    x, _ = jax.lax.fori_loop(0, h, row, (x, cache))
    return x


@functools.lru_cache(maxsize=32)
def _compiled_sampler(model: nn.Module, method: str, temperature: float) -> Callable:
    """A jitted (params, key, x, known, labels) -> samples for one model and method."""
    if method == "naive":

        def run(params, key, x, known, labels):
            extra = () if labels is None else (labels,)
            logits_fn = lambda y: model.apply(params, y, *extra)  # noqa: E731
            return _naive_loop(logits_fn, key, x, known, temperature)

        return jax.jit(run)
    if method == "cached":
        if not hasattr(model, "step"):
            raise ConfigError(
                f"method='cached' is not available for {type(model).__name__}: it has no "
                "init_cache/start_row/step methods; use method='naive'."
            )
        return jax.jit(functools.partial(_cached_loop, model, temperature=temperature))
    raise ConfigError(f"method={method!r} must be one of {', '.join(METHODS)}.")


def _check_temperature(temperature: float) -> None:
    if not temperature > 0:
        raise ConfigError(f"temperature={temperature} must be positive.")


def _check_labels(model: nn.Module, labels, batch: int) -> jax.Array | None:
    """Validates class labels against the model; returns them as int32 [B] or None."""
    num_classes = getattr(model, "num_classes", None)
    if labels is None:
        if num_classes is not None:
            raise ConfigError(
                f"{type(model).__name__} is class-conditional (num_classes={num_classes}): "
                f"pass labels=, int [B] with B={batch}."
            )
        return None
    if num_classes is None:
        raise ConfigError(
            f"labels were given but {type(model).__name__} is not class-conditional; "
            "drop labels= or use a model with num_classes set."
        )
    labels = jnp.asarray(labels)
    if labels.shape != (batch,) or not jnp.issubdtype(labels.dtype, jnp.integer):
        raise ConfigError(
            f"labels must be int [B] with B={batch}; got {labels.dtype} {labels.shape}."
        )
    if not isinstance(labels, jax.core.Tracer):
        values = np.asarray(labels)  # concrete: checked on the host, even inside a trace
        if values.min() < 0 or values.max() >= num_classes:
            raise ConfigError(f"labels must lie in [0, {num_classes}) (the model's num_classes).")
    return labels.astype(jnp.int32)


def autoregressive_sample(
    model: nn.Module,
    params,
    key: jax.Array,
    shape: tuple[int, int, int, int],
    method: str = "naive",
    temperature: float = 1.0,
    *,
    labels: jax.Array | None = None,
) -> jax.Array:
    """Samples images from an autoregressive model, sub-pixel by sub-pixel.

    Args:
      model: a model whose ``apply(params, x)`` maps int [B, H, W, C] to logits
        float [B, H, W, C, L] (PixelCNN and friends).
      params: the model's variables.
      key: PRNG key; the same key and params give the same samples for every method.
      shape: (B, H, W, C) of the samples.
      method: ``"naive"`` (one full network pass per sub-pixel) or ``"cached"``
        (one pixel's worth of every layer per sub-pixel; see the module docstring).
      temperature: softmax temperature (1 samples the model's distribution).
      labels: int [B] class labels for a class-conditional model, else None.

    Returns:
      int32 [B, H, W, C] samples in [0, L).
    """
    if len(shape) != 4 or min(shape) < 1:
        raise ConfigError(f"shape={shape} must be (B, H, W, C) with positive sizes.")
    _check_temperature(temperature)
    labels = _check_labels(model, labels, shape[0])
    x = jnp.zeros(shape, jnp.int32)
    known = jnp.zeros(shape[:3], bool)
    return _compiled_sampler(model, method, float(temperature))(params, key, x, known, labels)


def complete(
    model: nn.Module,
    params,
    key: jax.Array,
    images: jax.Array,
    known: jax.Array,
    method: str = "naive",
    temperature: float = 1.0,
    *,
    labels: jax.Array | None = None,
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
      labels: int [B] class labels for a class-conditional model, else None.

    Returns:
      int32 [B, H, W, C]: equal to ``images`` where ``known``.
    """
    check_images(images, getattr(model, "num_levels", 256), name="images")
    if known.shape != images.shape[:3] or known.dtype != jnp.bool_:
        raise ConfigError(
            f"known must be bool [B, H, W] = {images.shape[:3]}; got {known.dtype} {known.shape}."
        )
    _check_temperature(temperature)
    labels = _check_labels(model, labels, images.shape[0])
    sampler = _compiled_sampler(model, method, float(temperature))
    return sampler(params, key, jnp.asarray(images, jnp.int32), jnp.asarray(known), labels)
