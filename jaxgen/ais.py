"""Annealed importance sampling of an RBM's partition function (Salakhutdinov & Murray, 2008).

The intermediate distributions (the hidden units summed out), for 0 = beta_0 < ... < beta_K = 1:

    p*_k(v) = exp((1 - beta_k) v.b_A + beta_k v.b) * prod_j (1 + exp(beta_k (v W + c)_j))

p_0 is the base model A: no weights, visible biases b_A (``base_visible_bias``:
the logits of the training data's pixel frequencies with pseudo-counts), so
log Z_A = sum_i softplus(b_A,i) + H log 2. Each of the ``num_runs`` runs draws
v_0 ~ p_0 and, for k = 1..K,

    log w += log p*_k(v_{k-1}) - log p*_{k-1}(v_{k-1});   v_k ~ T_k(v_{k-1})

where T_k is one block Gibbs sweep at beta_k: h ~ sigmoid(beta_k (v W + c)), then
v ~ sigmoid((1 - beta_k) b_A + beta_k (W h + b)). (Salakhutdinov's ``RBM_AIS.m``
adds and subtracts the same terms in another order.) Then

    log Z ~ log mean(w) + log Z_A

with the band log(mean(w) +- 3 std(w) / sqrt(num_runs)) + log Z_A (std with
n - 1), computed in log space; its lower end is -inf when 3 std(w) / sqrt(n)
exceeds mean(w). The estimate of Z is unbiased, so log Z is on average
underestimated (Jensen): log p(v) = -F(v) - log Z then tends to be optimistic.

The schedule (``betas``) is the reference code's, [0:1e-3:0.5, 0.5:1e-4:0.9,
0.9:1e-5:1]: 500 + 4,000 + 10,000 = 14,500 steps; other step counts keep the
three segments' shares. The whole loop over the betas is one ``lax.scan``; the
increments are computed in a cancellation-free form and summed with Kahan
compensation, so float32 loses nothing measurable over 14,500 steps.
"""

import dataclasses
import functools
import math
from collections.abc import Mapping

import jax
import jax.numpy as jnp
import numpy as np

from jaxgen.models.rbm import Weights
from jaxgen.validation import ConfigError

DEFAULT_STEPS = 14_500
DEFAULT_RUNS = 100
PSEUDO_COUNT = 5.0  # pseudo-counts per training batch of the base model (``base_rate.m``)
# The reference schedule's segments: (end beta, steps of 14,500).
_SEGMENTS = ((0.5, 500), (0.9, 4000), (1.0, 10_000))
_MIN_P = 1e-6  # base-model pixel probabilities are kept in [_MIN_P, 1 - _MIN_P]


def betas(num_steps: int = DEFAULT_STEPS) -> np.ndarray:
    """The inverse temperatures 0 = beta_0 < ... < beta_K = 1: float64 [K + 1], K = ``num_steps``.

    ``num_steps=14500`` gives the reference code's schedule without its two
    repeated values (0.5 and 0.9); another K splits its steps between [0, 0.5],
    [0.5, 0.9] and [0.9, 1] in the same shares (500 : 4,000 : 10,000), each at
    least one step.

    Raises:
      ConfigError: ``num_steps`` < 3.
    """
    if not isinstance(num_steps, int | np.integer) or num_steps < 3:
        raise ConfigError(f"AIS num_steps={num_steps!r} must be an integer >= 3.")
    first = max(1, round(num_steps * 500 / DEFAULT_STEPS))
    second = max(1, round(num_steps * 4000 / DEFAULT_STEPS))
    second = min(second, num_steps - first - 1)
    counts = (first, second, num_steps - first - second)
    parts, start = [np.zeros(1)], 0.0
    for (end, _), count in zip(_SEGMENTS, counts, strict=True):
        parts.append(np.linspace(start, end, count + 1)[1:])
        start = end
    return np.concatenate(parts)


def base_visible_bias(
    stats: Mapping[str, jax.Array], pseudo_count: float = PSEUDO_COUNT
) -> jax.Array:
    """The base model's visible biases b_A from the training images' counts: float32 [D].

    b_A = logit(p), p = (visible_sum + pseudo_count * num_batches) / (num_images
    + pseudo_count * num_batches) (``base_rate.m``: 5 pseudo-counts per batch),
    kept within [1e-6, 1 - 1e-6]; p = 1/2 before any image was counted.

    Args:
      stats: an RBM's ``"data_stats"`` (``jaxgen.models.rbm.count_images``):
        ``visible_sum`` [D], ``num_images``, ``num_batches``.
      pseudo_count: pseudo-counts per batch.
    """
    extra = pseudo_count * jnp.asarray(stats["num_batches"], jnp.float32)
    num = jnp.asarray(stats["num_images"], jnp.float32) + extra
    p = (jnp.asarray(stats["visible_sum"], jnp.float32) + extra) / jnp.maximum(num, 1.0)
    p = jnp.where(num > 0, jnp.clip(p, _MIN_P, 1 - _MIN_P), 0.5)
    return jnp.log(p) - jnp.log1p(-p)


def image_stats(images: np.ndarray, batch_size: int = 100) -> dict[str, np.ndarray]:
    """The ``"data_stats"`` of a set of binary images, counted as batches of ``batch_size``.

    For a model trained elsewhere: ``base_visible_bias(image_stats(train_images))``.

    Args:
      images: int [N, H, W, C] in {0, 1}.
      batch_size: the batches ``num_batches`` counts (the pseudo-counts are per batch).
    """
    images = np.asarray(images)
    return {
        "visible_sum": images.reshape(len(images), -1).sum(0).astype(np.int32),
        "num_images": np.int32(len(images)),
        "num_batches": np.int32(math.ceil(len(images) / batch_size)),
    }


def base_log_partition(base_bias: jax.Array, num_hidden: int) -> jax.Array:
    """log Z_A = sum_i softplus(b_A,i) + H log 2, the base model's exact log partition function."""
    return jnp.sum(jax.nn.softplus(base_bias)) + num_hidden * math.log(2.0)


def _softplus_step(x: jax.Array, d: jax.Array) -> jax.Array:
    """softplus(x + d) - softplus(x), without cancellation when d is small.

    softplus(x + d) - softplus(x) = log1p(expm1(d) * sigmoid(x)), exact for |d| < 1;
    a step of a coarse schedule with a larger |d| anywhere takes the plain
    difference there (``lax.cond``: the common case computes only the first form).
    """

    def close(d):
        return jnp.log1p(jnp.expm1(d) * jax.nn.sigmoid(x))

    def mixed(d):
        near = jnp.abs(d) < 1.0
        far = jax.nn.softplus(x + d) - jax.nn.softplus(x)
        return jnp.where(near, close(jnp.where(near, d, 0.0)), far)

    return jax.lax.cond(jnp.all(jnp.abs(d) < 1.0), close, mixed, d)


@functools.partial(jax.jit, static_argnames=("num_runs",))
def log_weights(
    weights: Weights, base_bias: jax.Array, key: jax.Array, betas: jax.Array, num_runs: int
) -> jax.Array:
    """The log importance weights of ``num_runs`` AIS runs: float32 [num_runs].

    One compiled program: a ``lax.scan`` over the steps (step k draws from
    ``fold_in(key, k)``); the schedule is an argument, so schedules of one
    length share the compilation.

    Args:
      weights: ``{"W" [D, H], "b" [D], "c" [H]}``.
      base_bias: float [D], b_A.
      key: PRNG key.
      betas: float [K + 1] from 0 to 1 (``betas``).
      num_runs: independent runs.

    Returns:
      log w: log Z ~ logmeanexp(log w) + ``base_log_partition(base_bias, H)``.
    """
    w, b, c = weights["W"], weights["b"], weights["c"]
    betas = jnp.asarray(betas, jnp.float32)
    start_key, key = jax.random.split(key)
    v = jax.random.bernoulli(start_key, jax.nn.sigmoid(base_bias), (num_runs, w.shape[0]))
    v = v.astype(jnp.float32)
    bias_gap = b - base_bias

    def step(carry, inputs):
        v, total, compensation = carry
        k, previous, beta = inputs
        x = v @ w + c  # [R, H]
        increment = (beta - previous) * (v @ bias_gap)
        increment += jnp.sum(_softplus_step(previous * x, (beta - previous) * x), -1)
        # Kahan summation of the increments.
        y = increment - compensation
        new_total = total + y
        compensation = (new_total - total) - y
        # One Gibbs sweep at beta, which leaves p_k invariant.
        h_key, v_key = jax.random.split(jax.random.fold_in(key, k))
        h = (jax.random.uniform(h_key, x.shape) < jax.nn.sigmoid(beta * x)).astype(jnp.float32)
        logits = (1.0 - beta) * base_bias + beta * (h @ w.T + b)
        v = (jax.random.uniform(v_key, v.shape) < jax.nn.sigmoid(logits)).astype(jnp.float32)
        return (v, new_total, compensation), None

    zeros = jnp.zeros((num_runs,), jnp.float32)
    steps = (jnp.arange(1, betas.shape[0]), betas[:-1], betas[1:])
    (_, total, _), _ = jax.lax.scan(step, (v, zeros, zeros), steps)
    return total


@dataclasses.dataclass(frozen=True)
class LogPartition:
    """An AIS estimate of log Z with its +-3 sigma band (floats, nats).

    Attributes:
      log_z: logmeanexp(log w) + log Z_A.
      log_z_low: log(mean(w) - 3 std(w) / sqrt(n)) + log Z_A; -inf when that is <= 0.
      log_z_high: log(mean(w) + 3 std(w) / sqrt(n)) + log Z_A.
      log_z_base: log Z_A.
      num_runs: n.
      num_steps: K, the steps of the schedule.
      log_weights: float64 [n], the runs' log w.
    """

    log_z: float
    log_z_low: float
    log_z_high: float
    log_z_base: float
    num_runs: int
    num_steps: int
    log_weights: np.ndarray


def estimate(log_w: np.ndarray, log_z_base: float, num_steps: int = 0) -> LogPartition:
    """log Z and its +-3 sigma band from the runs' log weights, in float64 in log space.

    Args:
      log_w: [n] log importance weights (n >= 2 for a band).
      log_z_base: log Z_A.
      num_steps: K, recorded in the result.
    """
    log_w = np.asarray(log_w, np.float64)
    n = len(log_w)
    top = log_w.max()
    w = np.exp(log_w - top)
    mean = w.mean()
    spread = 3.0 * (w.std(ddof=1) if n > 1 else 0.0) / math.sqrt(n)
    shift = top + float(log_z_base)
    low = math.log(mean - spread) + shift if mean > spread else -math.inf
    return LogPartition(
        log_z=math.log(mean) + shift,
        log_z_low=low,
        log_z_high=math.log(mean + spread) + shift,
        log_z_base=float(log_z_base),
        num_runs=n,
        num_steps=num_steps,
        log_weights=log_w,
    )


def log_partition(
    weights: Weights,
    base_bias: jax.Array,
    key: jax.Array,
    num_runs: int = DEFAULT_RUNS,
    num_steps: int = DEFAULT_STEPS,
) -> LogPartition:
    """The AIS estimate of an RBM's log Z (Salakhutdinov & Murray, 2008).

    Args:
      weights: ``{"W" [D, H], "b" [D], "c" [H]}``; put them on one device
        (``jax.device_get``) to run the estimate there.
      base_bias: float [D], the base model's visible biases (``base_visible_bias``;
        zeros: the uniform base model).
      key: PRNG key; the same key gives the same estimate.
      num_runs: independent AIS runs (>= 2).
      num_steps: K, the steps from beta = 0 to 1 (``betas``).

    Returns:
      The estimate, its band and the runs' log weights.

    Raises:
      ConfigError: ``num_runs`` < 2, ``num_steps`` < 3, or a ``base_bias`` of the wrong size.
    """
    if not isinstance(num_runs, int | np.integer) or num_runs < 2:
        raise ConfigError(f"AIS num_runs={num_runs!r} must be an integer >= 2 (for the band).")
    schedule = betas(num_steps)
    base_bias = jnp.asarray(base_bias, jnp.float32)
    if base_bias.shape != (weights["W"].shape[0],):
        raise ConfigError(
            f"base_bias has shape {base_bias.shape}; it needs one bias per visible unit, "
            f"({weights['W'].shape[0]},)."
        )
    log_w = log_weights(weights, base_bias, key, schedule, int(num_runs))
    log_z_base = base_log_partition(base_bias, weights["W"].shape[1])
    return estimate(np.asarray(log_w), float(log_z_base), int(num_steps))
