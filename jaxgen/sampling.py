"""Samplers. Autoregressive sampling runs as one compiled program per shape.

The draw for sub-pixel number ``t`` in raster-then-channel order uses the key
``fold_in(key, t)``, whatever the method, so every method that computes the
same logits returns the same samples for the same key.

Methods (``method=None`` picks ``default_method(model)``, the fastest exact one):

* ``"naive"``: one full network pass per sub-pixel, O((H W C)^2) work; works
  for any model mapping int [B, H, W, C] to logits [B, H, W, C, L].
* ``"cached"`` (Ramachandran et al., 2017): the model replays its layers at one
  pixel per step from caches of what earlier steps computed, O(H W C) work. The
  model provides three methods, called through ``model.apply(..., method=...)``:

  - ``init_cache(x[, labels]) -> cache`` for images shaped like ``x``;
  - ``start_row(cache, x, i) -> cache``, once per row, when rows < i are final;
  - ``step(cache, x, i, j) -> (logits [B, C, L], cache)`` at pixel (i, j).

  ``PixelCNN``, ``GatedPixelCNN``, ``PixelRNN``, ``FVSBN`` (no cache: a row of
  its weight matrix per sub-pixel) and ``NADE`` (the running pre-activation)
  implement them. The cached logits equal the full pass's up to float rounding
  (the same sums in another order), so samples agree exactly unless a draw falls
  within ~1e-6 of a category boundary.

A model with its own ``sample`` method is sampled by it, whatever the method
(after the same checks): ``model.apply(params, x, known, key, temperature,
first_logits[, labels], method="sample") -> int [B, H, W, C]`` fills the pixels
where ``known`` (bool [B, H, W]) is False, drawing step t of its own order with
``draw`` (``fold_in(key, t)``). ``MADE`` does so: its order is its mask's, not
necessarily raster order (with one mask in raster order it draws exactly what
the naive loop draws). Completion then keeps the known pixels and draws the
others in the model's order, each conditioned on everything before it in that
order (exact for that order; known pixels later in it are not conditioned on).

The first sub-pixel x_1 (pixel (0, 0), channel 0; the first in the model's own
order for a model with its own sampler) has no context; ``first_pixel``
chooses where it comes from: ``"model"`` (the learned p(x_1)), ``"uniform"``, or
a probability vector over the L levels, e.g. the training data's marginal from
``first_pixel_marginal``. Temperature does not change a given first-pixel
distribution. Temperature and the first-pixel vector are traced arguments: one
compiled program serves every value.
"""

import functools
from collections.abc import Callable, Iterable, Mapping

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jaxgen.validation import ConfigError, check_images

LogitsFn = Callable[[jax.Array], jax.Array]
METHODS = ("naive", "cached")
FIRST_PIXEL = ("model", "uniform")
CACHE_METHODS = ("init_cache", "start_row", "step")


def draw(
    key: jax.Array,
    t: jax.Array | int,
    logits: jax.Array,
    temperature: jax.Array,
    first_logits: jax.Array | None,
) -> jax.Array:
    """The draw of sub-pixel number ``t`` in the generation order: int32 [B].

    Every sampler draws with this function, so that the same key and the same
    logits give the same levels: ``categorical(fold_in(key, t), logits / temperature)``,
    with ``first_logits`` [L] (if not None) instead of the tempered logits at ``t == 0``.

    Args:
      key: the sampler's key.
      t: int scalar, the position in the model's generation order.
      logits: float [B, L].
      temperature: float [].
      first_logits: float [L] log-probabilities of the first sub-pixel, or None.
    """
    logits = logits / temperature
    if first_logits is not None:
        logits = jnp.where(t == 0, first_logits, logits)
    return jax.random.categorical(jax.random.fold_in(key, t), logits, axis=-1).astype(jnp.int32)


def _fill(x, known, key, t, logits, temperature, first_logits):
    """Sets sub-pixel ``t`` of every image to a draw from ``logits`` [B, L] unless known."""
    _, _, w, c = x.shape
    i, j, ch = t // (w * c), (t // c) % w, t % c
    level = draw(key, t, logits, temperature, first_logits).astype(x.dtype)
    return x.at[:, i, j, ch].set(jnp.where(known[:, i, j], x[:, i, j, ch], level))


def _naive_loop(logits_fn: LogitsFn, key, x, known, temperature, first_logits) -> jax.Array:
    """Fills the unknown sub-pixels of ``x`` in order, one full network pass each.

    Args:
      logits_fn: int [B, H, W, C] -> float [B, H, W, C, L].
      key: PRNG key.
      x: int [B, H, W, C] initial images (values at unknown pixels are ignored).
      known: bool [B, H, W], pixels to keep.
      temperature: float [] softmax temperature.
      first_logits: float [L] log-probabilities of the first sub-pixel, or None (the model's).

    Returns:
      int [B, H, W, C].
    """
    _, h, w, c = x.shape

    def body(t, x):
        i, j, ch = t // (w * c), (t // c) % w, t % c
        logits = logits_fn(x)[:, i, j, ch]
        return _fill(x, known, key, t, logits, temperature, first_logits)

    return jax.lax.fori_loop(0, h * w * c, body, x)


def _cached_loop(model, params, key, x, known, labels, temperature, first_logits) -> jax.Array:
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
            x = _fill(x, known, key, t, logits[:, k % c], temperature, first_logits)
            return x, cache

        return jax.lax.fori_loop(0, w * c, sub_pixel, (x, cache))

    x, _ = jax.lax.fori_loop(0, h, row, (x, cache))
    return x


@functools.partial(jax.jit, static_argnames=("model", "method"))
def _sample(params, key, x, known, labels, temperature, first_logits, *, model, method):
    """The compiled sampler: one program per (model, method, shapes), for every temperature."""
    extra = () if labels is None else (labels,)
    if has_own_sampler(model):
        return model.apply(
            params, x, known, key, temperature, first_logits, *extra, method="sample"
        )
    if method == "cached":
        return _cached_loop(model, params, key, x, known, labels, temperature, first_logits)
    logits_fn = lambda y: model.apply(params, y, *extra)  # noqa: E731
    return _naive_loop(logits_fn, key, x, known, temperature, first_logits)


def has_own_sampler(model: nn.Module) -> bool:
    """Whether ``model`` samples itself (a ``sample`` method, e.g. MADE in its mask's order)."""
    return callable(getattr(model, "sample", None))


def default_method(model: nn.Module) -> str:
    """``"cached"`` if ``model`` has the incremental methods (init_cache/start_row/step), else
    ``"naive"``: the fastest method that gives the exact samples."""
    return "cached" if all(hasattr(model, m) for m in CACHE_METHODS) else "naive"


def _check_method(model: nn.Module, method: str | None) -> str:
    if method is None:
        return default_method(model)
    if method not in METHODS:
        raise ConfigError(f"method={method!r} must be one of {', '.join(METHODS)}, or None.")
    if method == "cached" and default_method(model) != "cached":
        raise ConfigError(
            f"method='cached' is not available for {type(model).__name__}: it has no "
            "init_cache/start_row/step methods; use method='naive'."
        )
    return method


def _check_temperature(temperature) -> jax.Array:
    """Checks a concrete temperature on the host; returns it as float32 []."""
    if not isinstance(temperature, jax.core.Tracer) and not float(temperature) > 0:
        raise ConfigError(f"temperature={temperature} must be positive.")
    return jnp.asarray(temperature, jnp.float32)


def _first_logits(model: nn.Module, first_pixel) -> jax.Array | None:
    """float [L] log-probabilities of the first sub-pixel, or None for the model's own."""
    if isinstance(first_pixel, str):
        if first_pixel not in FIRST_PIXEL:
            raise ConfigError(
                f"first_pixel={first_pixel!r} must be 'model', 'uniform' or a probability "
                "vector over the levels [L]."
            )
        if first_pixel == "model":
            return None
    num_levels = getattr(model, "num_levels", None)
    if num_levels is None:
        raise ConfigError(
            f"first_pixel={first_pixel!r} needs the model's num_levels, and "
            f"{type(model).__name__} has none; use first_pixel='model'."
        )
    if isinstance(first_pixel, str):  # "uniform"
        return jnp.zeros((num_levels,), jnp.float32)
    probs = jnp.asarray(first_pixel, jnp.float32)
    if probs.shape != (num_levels,):
        raise ConfigError(
            f"first_pixel must be a probability vector over the model's num_levels="
            f"{num_levels} levels, shape ({num_levels},); got shape {probs.shape}."
        )
    if not isinstance(probs, jax.core.Tracer):
        values = np.asarray(probs, np.float64)
        if not np.isfinite(values).all() or values.min() < 0 or abs(values.sum() - 1) > 1e-3:
            raise ConfigError(
                f"first_pixel={values.tolist()} must be non-negative and sum to 1 "
                f"(it sums to {values.sum():.6g})."
            )
    return jnp.log(probs / probs.sum())


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
    method: str | None = None,
    temperature: float | jax.Array = 1.0,
    *,
    labels: jax.Array | None = None,
    first_pixel: str | jax.Array | np.ndarray = "model",
) -> jax.Array:
    """Samples images from an autoregressive model, sub-pixel by sub-pixel.

    Args:
      model: a model whose ``apply(params, x)`` maps int [B, H, W, C] to logits
        float [B, H, W, C, L] (PixelCNN and friends), or that has its own
        ``sample`` method (MADE; see the module docstring).
      params: the model's variables.
      key: PRNG key; the same key and params give the same samples for every method.
      shape: (B, H, W, C) of the samples.
      method: ``"naive"`` (one full network pass per sub-pixel), ``"cached"``
        (one pixel's worth of every layer per sub-pixel; see the module
        docstring), or None for ``default_method(model)``.
      temperature: softmax temperature (1 samples the model's distribution);
        traced, so changing it does not recompile.
      labels: int [B] class labels for a class-conditional model, else None.
      first_pixel: ``"model"``, ``"uniform"`` or float [L] probabilities of the
        first sub-pixel's levels (see the module docstring).

    Returns:
      int32 [B, H, W, C] samples in [0, L).
    """
    if len(shape) != 4 or min(shape) < 1:
        raise ConfigError(f"shape={shape} must be (B, H, W, C) with positive sizes.")
    method = _check_method(model, method)
    temperature = _check_temperature(temperature)
    first_logits = _first_logits(model, first_pixel)
    labels = _check_labels(model, labels, shape[0])
    x = jnp.zeros(shape, jnp.int32)
    known = jnp.zeros(shape[:3], bool)
    return _sample(
        params, key, x, known, labels, temperature, first_logits, model=model, method=method
    )


def complete(
    model: nn.Module,
    params,
    key: jax.Array,
    images: jax.Array,
    known: jax.Array,
    method: str | None = None,
    temperature: float | jax.Array = 1.0,
    *,
    labels: jax.Array | None = None,
    first_pixel: str | jax.Array | np.ndarray = "model",
) -> jax.Array:
    """Completes images: keeps the known pixels, samples the rest in order.

    The order is raster-then-channel, or the model's own for a model with its own
    ``sample`` (MADE): each unknown sub-pixel is drawn from its conditional on the
    sub-pixels before it in that order, known or drawn.

    Args:
      model: as in ``autoregressive_sample``.
      params: the model's variables.
      key: PRNG key.
      images: int [B, H, W, C] levels in [0, L).
      known: bool [B, H, W], True where the pixel is given (e.g. the top half).
      method: as in ``autoregressive_sample``.
      temperature: softmax temperature.
      labels: int [B] class labels for a class-conditional model, else None.
      first_pixel: as in ``autoregressive_sample``; used only where pixel (0, 0)
        is unknown.

    Returns:
      int32 [B, H, W, C]: equal to ``images`` where ``known``.
    """
    check_images(images, getattr(model, "num_levels", 256), name="images")
    if known.shape != images.shape[:3] or known.dtype != jnp.bool_:
        raise ConfigError(
            f"known must be bool [B, H, W] = {images.shape[:3]}; got {known.dtype} {known.shape}."
        )
    method = _check_method(model, method)
    temperature = _check_temperature(temperature)
    first_logits = _first_logits(model, first_pixel)
    labels = _check_labels(model, labels, images.shape[0])
    x = jnp.asarray(images, jnp.int32)
    return _sample(
        params,
        key,
        x,
        jnp.asarray(known),
        labels,
        temperature,
        first_logits,
        model=model,
        method=method,
    )


def first_pixel_marginal(
    images: jax.Array | np.ndarray | Iterable[Mapping[str, np.ndarray]], num_levels: int
) -> np.ndarray:
    """The training data's marginal of the first sub-pixel, for ``first_pixel=``.

    Counts the levels of pixel (0, 0), channel 0 (the first sub-pixel in the
    samplers' order) over all images; not the marginal of all pixels.

    Args:
      images: int [N, H, W, C] levels, or an iterable of batches (dicts with
        ``"image"`` int [B, H, W, C] and optionally ``"mask"`` bool [B] marking
        real examples, as ``jaxgen.data`` yields them).
      num_levels: L.

    Returns:
      float64 [L] frequencies summing to 1.

    Raises:
      ConfigError: images of the wrong rank or dtype, levels outside [0, L), or no images.
    """
    batches = [{"image": images}] if hasattr(images, "shape") else images
    counts = np.zeros(num_levels, np.int64)
    for batch in batches:
        x = np.asarray(batch["image"])
        check_images(x, num_levels, name="images")
        first = x[:, 0, 0, 0]
        if "mask" in batch:
            first = first[np.asarray(batch["mask"], bool)]
        counts += np.bincount(first, minlength=num_levels)
    if not counts.sum():
        raise ConfigError("first_pixel_marginal got no images to count.")
    return counts / counts.sum()
