"""Restricted Boltzmann machine: binary visible units v, binary hidden units h.

    E(v, h) = -v.b - h.c - v W h           W [D, H], visible bias b [D], hidden bias c [H]
    p(v, h) = exp(-E(v, h)) / Z
    F(v)    = -v.b - sum_j softplus((v W + c)_j)       free energy: p(v) = exp(-F(v)) / Z
    p(h_j = 1 | v) = sigmoid((v W + c)_j)              p(v_i = 1 | h) = sigmoid((W h + b)_i)

Images int [B, H, W, C] with values in {0, 1} (``num_levels=2``) are flattened to
v float [B, D], D = H * W * C, in raster-then-channel order. Z is intractable
for a real model: ``jaxgen.ais`` estimates it by annealed importance sampling;
``exact_log_partition`` sums over the 2^H hidden states of a small one (the
reference the AIS tests check against).

The functions below are pure functions of the weights ``{"W", "b", "c"}`` (the
``"params"`` collection of ``RBM``'s variables); block Gibbs sampling
(``gibbs_chain``, ``sample``, ``complete``) runs inside one compiled
``lax.fori_loop``. ``RBM``'s variables also hold, in the ``"data_stats"``
collection, the counts of the training images it was trained on (``count_images``),
from which the AIS base model's visible biases are set (``jaxgen.ais.base_visible_bias``).
"""

import functools
import math
from collections.abc import Mapping, Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jaxgen.validation import ConfigError, check_images

Weights = Mapping[str, jax.Array]  # {"W": [D, H], "b": [D], "c": [H]}
# Hidden units up to which ``exact_log_partition`` enumerates the 2^H hidden states.
MAX_EXACT_HIDDEN = 24
SAMPLE_INITS = ("base", "random")


class RBM(nn.Module):
    """A binary-binary RBM over images of ``image_shape``.

    Variables: ``{"params": {"W": [D, H], "b": [D], "c": [H]}, "data_stats":
    {"visible_sum": int32 [D], "num_images": int32, "num_batches": int32}}``:
    W ~ N(0, init_scale^2), biases 0, counts 0 (``count_images`` adds a batch).

    ``model.apply(variables, images)`` is the free energy F(v), float [B].

    Attributes:
      image_shape: (H, W, C) of the images; D = H * W * C visible units.
      num_hidden: H, the hidden units.
      num_levels: must be 2 (binary images).
      init_scale: standard deviation of the initial weights.
    """

    image_shape: Sequence[int] = (28, 28, 1)
    num_hidden: int = 500
    num_levels: int = 2
    init_scale: float = 0.01

    def setup(self):
        check_rbm_args(self.image_shape, self.num_hidden, self.num_levels, self.init_scale)
        d, h = self.num_visible, self.num_hidden
        self.W = self.param("W", nn.initializers.normal(self.init_scale), (d, h))
        self.b = self.param("b", nn.initializers.zeros, (d,))
        self.c = self.param("c", nn.initializers.zeros, (h,))
        if self.is_initializing():  # the counts are read from the variables, never here
            self.variable("data_stats", "visible_sum", jnp.zeros, (d,), jnp.int32)
            self.variable("data_stats", "num_images", jnp.zeros, (), jnp.int32)
            self.variable("data_stats", "num_batches", jnp.zeros, (), jnp.int32)

    @property
    def num_visible(self) -> int:
        """D = H * W * C."""
        return math.prod(self.image_shape)

    def __call__(self, images: jax.Array) -> jax.Array:
        """The free energy F(v) of int images [B, H, W, C] in {0, 1}: float [B]."""
        check_images(images, self.num_levels, "images")
        if tuple(images.shape[1:]) != tuple(self.image_shape):
            raise ConfigError(
                f"images have shape {images.shape[1:]}; this RBM takes {tuple(self.image_shape)}."
            )
        return free_energy({"W": self.W, "b": self.b, "c": self.c}, flatten(images))


def check_rbm_args(
    image_shape: Sequence[int], num_hidden: int, num_levels: int, init_scale: float
) -> None:
    """Raises a ConfigError naming the first bad constructor argument of ``RBM``."""
    if num_levels != 2:
        raise ConfigError(
            f"RBM num_levels={num_levels}: the RBM has binary visible units, so it needs "
            "binary images (num_levels=2), e.g. dataset=binarized_mnist or "
            "--config.num_levels=2 for MNIST."
        )
    if len(image_shape) != 3 or min(image_shape) < 1:
        raise ConfigError(f"RBM image_shape={tuple(image_shape)} must be (H, W, C), all >= 1.")
    if num_hidden < 1:
        raise ConfigError(f"RBM num_hidden={num_hidden} must be a positive integer.")
    if not init_scale >= 0:
        raise ConfigError(f"RBM init_scale={init_scale} must be non-negative.")


def flatten(images: jax.Array) -> jax.Array:
    """int [B, H, W, C] in {0, 1} -> float32 v [B, D] (raster-then-channel order)."""
    return jnp.reshape(images, (images.shape[0], -1)).astype(jnp.float32)


def unflatten(v: jax.Array, image_shape: Sequence[int]) -> jax.Array:
    """v [B, D] -> [B, H, W, C], the inverse of ``flatten`` (dtype kept)."""
    return jnp.reshape(v, (v.shape[0], *image_shape))


def free_energy(weights: Weights, v: jax.Array) -> jax.Array:
    """F(v) = -v.b - sum_j softplus((v W + c)_j): float [B] for v float [B, D]."""
    return -v @ weights["b"] - jnp.sum(jax.nn.softplus(v @ weights["W"] + weights["c"]), -1)


def hidden_probs(weights: Weights, v: jax.Array) -> jax.Array:
    """p(h = 1 | v) = sigmoid(v W + c): float [B, H]."""
    return jax.nn.sigmoid(v @ weights["W"] + weights["c"])


def visible_probs(weights: Weights, h: jax.Array) -> jax.Array:
    """p(v = 1 | h) = sigmoid(h W^T + b): float [B, D]."""
    return jax.nn.sigmoid(h @ weights["W"].T + weights["b"])


def _bernoulli(key: jax.Array, probs: jax.Array) -> jax.Array:
    """Binary float draws with P(1) = probs."""
    return (jax.random.uniform(key, probs.shape) < probs).astype(probs.dtype)


def gibbs_sweep(weights: Weights, key: jax.Array, v: jax.Array) -> tuple[jax.Array, jax.Array]:
    """One block Gibbs sweep: h ~ p(h | v), then v' ~ p(v | h).

    Args:
      weights: ``{"W", "b", "c"}``.
      key: PRNG key.
      v: float [B, D] binary visibles.

    Returns:
      (v' float [B, D] binary, p(v = 1 | h) float [B, D], the mean-field visibles).
    """
    h_key, v_key = jax.random.split(key)
    h = _bernoulli(h_key, hidden_probs(weights, v))
    mean = visible_probs(weights, h)
    return _bernoulli(v_key, mean), mean


def gibbs_chain(
    weights: Weights,
    key: jax.Array,
    v: jax.Array,
    num_steps: int | jax.Array,
    clamp: tuple[jax.Array, jax.Array] | None = None,
) -> tuple[jax.Array, jax.Array]:
    """``num_steps`` block Gibbs sweeps from ``v`` in one ``lax.fori_loop``.

    Sweep ``t`` draws from ``fold_in(key, t)``.

    Args:
      weights: ``{"W", "b", "c"}``.
      key: PRNG key.
      v: float [B, D] binary start.
      num_steps: sweeps (>= 1; may be traced).
      clamp: (known bool [B, D], values float [B, D]): after every sweep the
        known visibles are set back to their values (sampling p(unknown | known)).

    Returns:
      (v float [B, D] binary after the last sweep, p(v = 1 | h) float [B, D] of
      the last sweep; its known entries are the clamped values).
    """

    def keep(x):
        return x if clamp is None else jnp.where(clamp[0], clamp[1], x)

    def body(t, carry):
        v, _ = carry
        v, mean = gibbs_sweep(weights, jax.random.fold_in(key, t), v)
        return keep(v), keep(mean)

    v = keep(v)
    return jax.lax.fori_loop(0, num_steps, body, (v, v))


def reconstruction_error(weights: Weights, v: jax.Array) -> jax.Array:
    """Squared error of the mean-field reconstruction p(v | p(h | v)): float [B], summed over D."""
    return jnp.sum((v - visible_probs(weights, hidden_probs(weights, v))) ** 2, -1)


def count_images(stats: Mapping[str, jax.Array], v: jax.Array) -> dict[str, jax.Array]:
    """The ``"data_stats"`` counts after one more training batch v float [B, D] in {0, 1}."""
    return {
        "visible_sum": stats["visible_sum"] + jnp.sum(v, 0).astype(jnp.int32),
        "num_images": stats["num_images"] + v.shape[0],
        "num_batches": stats["num_batches"] + 1,
    }


def exact_log_partition(weights: Weights) -> jax.Array:
    """log Z by enumerating the 2^H hidden states (the visibles summed out), float32 scalar.

    log Z = logsumexp_h [h.c + sum_i softplus(b_i + (W h)_i)] (Salakhutdinov's
    ``calculate_true_partition``).

    Raises:
      ConfigError: more than ``MAX_EXACT_HIDDEN`` hidden units.
    """
    num_hidden = weights["W"].shape[1]
    if num_hidden > MAX_EXACT_HIDDEN:
        raise ConfigError(
            f"Exact log Z enumerates 2^H hidden states; H={num_hidden} > {MAX_EXACT_HIDDEN}: "
            "estimate it with jaxgen.ais.log_partition instead."
        )
    return _exact_log_partition(weights)


@jax.jit
def _exact_log_partition(weights: Weights) -> jax.Array:
    num_hidden = weights["W"].shape[1]
    h = ((np.arange(2**num_hidden)[:, None] >> np.arange(num_hidden)) & 1).astype(np.float32)
    terms = h @ weights["c"] + jnp.sum(jax.nn.softplus(h @ weights["W"].T + weights["b"]), -1)
    return jax.nn.logsumexp(terms)


def log_prob(weights: Weights, v: jax.Array, log_z: jax.Array | float) -> jax.Array:
    """log p(v) = -F(v) - log Z: float [B] for v float [B, D]."""
    return -free_energy(weights, v) - log_z


def initial_visibles(
    key: jax.Array, num: int, base_bias: jax.Array, init: str = "base"
) -> jax.Array:
    """Chain starts float [num, D]: the base model's Bernoulli(sigmoid(base_bias)), or uniform.

    Args:
      key: PRNG key.
      num: chains.
      base_bias: float [D], the AIS base model's visible biases (``jaxgen.ais.base_visible_bias``).
      init: ``"base"`` (draws of the base model: the training data's pixel
        frequencies) or ``"random"`` (each pixel 0 or 1 with probability 1/2).
    """
    if init not in SAMPLE_INITS:
        raise ConfigError(f"init={init!r} must be one of {', '.join(SAMPLE_INITS)}.")
    logits = base_bias if init == "base" else jnp.zeros_like(base_bias)
    return _bernoulli(key, jnp.broadcast_to(jax.nn.sigmoid(logits), (num, base_bias.shape[0])))


@functools.partial(jax.jit, static_argnames=("num", "num_steps", "init"))
def _sample(weights, base_bias, key, num, num_steps, init):
    start_key, chain_key = jax.random.split(key)
    v = initial_visibles(start_key, num, base_bias, init)
    return gibbs_chain(weights, chain_key, v, num_steps)


def sample(
    weights: Weights,
    base_bias: jax.Array,
    key: jax.Array,
    shape: Sequence[int],
    num_steps: int = 1000,
    init: str = "base",
    mean_field: bool = False,
) -> jax.Array:
    """Images from ``num_steps`` block Gibbs sweeps per chain, one chain per image.

    Args:
      weights: ``{"W", "b", "c"}``.
      base_bias: float [D], the base model's visible biases (chain starts of ``init="base"``).
      key: PRNG key; the same key gives the same images.
      shape: (N, H, W, C) with H * W * C = D.
      num_steps: Gibbs sweeps (>= 1).
      init: ``"base"`` or ``"random"`` chain starts (``initial_visibles``).
      mean_field: return p(v = 1 | h) of the last sweep (float in [0, 1]) instead
        of the binary draw, the smooth pictures of the papers.

    Returns:
      int32 [N, H, W, C] in {0, 1}, or float32 [N, H, W, C] with ``mean_field``.

    Raises:
      ConfigError: a shape that is not the model's, ``num_steps`` < 1, an unknown ``init``.
    """
    num = _check_shape(weights, shape)
    if not isinstance(num_steps, int | np.integer) or num_steps < 1:
        raise ConfigError(f"num_steps={num_steps!r} Gibbs sweeps must be a positive integer.")
    if init not in SAMPLE_INITS:
        raise ConfigError(f"init={init!r} must be one of {', '.join(SAMPLE_INITS)}.")
    v, mean = _sample(weights, jnp.asarray(base_bias), key, num, int(num_steps), init)
    out = mean if mean_field else v.astype(jnp.int32)
    return unflatten(out, shape[1:])


@functools.partial(jax.jit, static_argnames=("num_steps",))
def _complete(weights, base_bias, key, v, known, num_steps):
    start_key, chain_key = jax.random.split(key)
    start = jnp.where(known, v, initial_visibles(start_key, v.shape[0], base_bias))
    return gibbs_chain(weights, chain_key, start, num_steps, clamp=(known, v))[0]


def complete(
    weights: Weights,
    base_bias: jax.Array,
    key: jax.Array,
    images: jax.Array,
    known: jax.Array,
    num_steps: int = 1000,
) -> jax.Array:
    """Fills in the unknown pixels by clamped block Gibbs sampling of p(unknown | known).

    The unknown pixels start from the base model; every sweep draws h ~ p(h | v)
    and v ~ p(v | h) and sets the known pixels back.

    Args:
      weights: ``{"W", "b", "c"}``.
      base_bias: float [D], the base model's visible biases.
      key: PRNG key.
      images: int [B, H, W, C] in {0, 1}; values at unknown pixels are ignored.
      known: bool [B, H, W], the pixels to keep (all channels of a pixel).
      num_steps: Gibbs sweeps.

    Returns:
      int32 [B, H, W, C], equal to ``images`` where ``known``.
    """
    _check_shape(weights, images.shape)
    if not isinstance(num_steps, int | np.integer) or num_steps < 1:
        raise ConfigError(f"num_steps={num_steps!r} Gibbs sweeps must be a positive integer.")
    images = jnp.asarray(images)
    known = jnp.broadcast_to(jnp.asarray(known, bool)[..., None], images.shape)
    v = _complete(
        weights, jnp.asarray(base_bias), key, flatten(images), flatten(known) > 0, int(num_steps)
    )
    return unflatten(v.astype(jnp.int32), images.shape[1:])


def filters(weights: Weights, image_shape: Sequence[int], num: int = 100) -> np.ndarray:
    """The first ``num`` columns of W as images, each scaled to [0, 255]: uint8 [n, H, W, C]."""
    w = np.asarray(weights["W"])[:, :num].T.reshape(-1, *image_shape)
    lo = w.min(axis=(1, 2, 3), keepdims=True)
    hi = w.max(axis=(1, 2, 3), keepdims=True)
    return np.round(255 * (w - lo) / np.maximum(hi - lo, 1e-12)).astype(np.uint8)


def _check_shape(weights: Weights, shape: Sequence[int]) -> int:
    """N of an (N, H, W, C) shape whose images have the model's D visibles."""
    shape = tuple(shape)
    d = weights["W"].shape[0]
    if len(shape) != 4 or shape[0] < 1 or math.prod(shape[1:]) != d:
        raise ConfigError(
            f"shape={shape} must be (N, H, W, C) with N >= 1 and H * W * C = {d}, the RBM's "
            "visible units."
        )
    return int(shape[0])


def as_weights(variables: Mapping[str, Any]) -> Weights:
    """``{"W", "b", "c"}`` of an RBM's variables (or of the weights themselves)."""
    return variables["params"] if "params" in variables else variables
