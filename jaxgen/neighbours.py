"""k-nearest-neighbour measures between feature sets: precision/recall, density/coverage.

Both pairs describe how generated features Y (M of them) sit against real
features X (N of them) with k-NN balls: B(x, NND_k(x)) is the closed ball
around x whose radius is the distance to x's k-th nearest neighbour in its own
set, the point itself excluded (a duplicate of it counts, at distance 0).

* Precision / recall (Kynkäänniemi et al., 2019): precision is the fraction of
  fakes inside the union of the real balls; recall the fraction of reals inside
  the union of the fake balls. Precision drops for samples off the data
  manifold (blur, noise), recall for data the generator never produces
  (dropped modes).
* Density / coverage (Naeem et al., 2020), balls of the real set only:
  density = (1 / (k M)) sum_j #{i : Y_j in B(X_i, NND_k(X_i))}, about 1 when Y
  is distributed like X and unbounded above; coverage = fraction of reals
  whose ball holds at least one fake.

Distances are Euclidean, computed in float32 (both sets shifted by the real
mean first) one block of ``block_size`` rows at a time, so memory grows as
block_size x (N + M), never as N x M: 10k x 10k features of width 128 fit in a
few hundred MB. The blocks run inside one jitted program (``lax.map``).
"""

import functools
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from jaxgen.validation import ConfigError

BLOCK_SIZE = 1024


def _squared_distances(a: jax.Array, b: jax.Array) -> jax.Array:
    """||a_i - b_j||^2: float [n, D], [m, D] -> [n, m], clipped at 0."""
    cross = jnp.dot(a, b.T, precision=jax.lax.Precision.HIGHEST)
    return jnp.maximum(jnp.sum(a * a, -1)[:, None] + jnp.sum(b * b, -1)[None, :] - 2.0 * cross, 0.0)


def _map_rows(fn: Callable, x: jax.Array, block_size: int):
    """``fn(rows [b, D], row_ids [b])`` over blocks of rows of x; outputs [N, ...]."""
    n = x.shape[0]
    block = min(block_size, n)
    pad = -n % block
    rows = jnp.pad(x, ((0, pad), (0, 0))).reshape(-1, block, x.shape[1])
    ids = jnp.arange(n + pad).reshape(-1, block)
    out = jax.lax.map(lambda args: fn(*args), (rows, ids))
    return jax.tree.map(lambda o: o.reshape(-1, *o.shape[2:])[:n], out)


@functools.partial(jax.jit, static_argnames=("k", "block_size"))
def _radii_sq(x: jax.Array, k: int, block_size: int) -> jax.Array:
    """Squared distance of each row of x to its k-th nearest other row: [N]."""

    def fn(rows, ids):
        d = _squared_distances(rows, x)
        d = jnp.where(ids[:, None] == jnp.arange(x.shape[0])[None, :], jnp.inf, d)
        # The k-th smallest by removing the smallest k - 1 times: much faster than
        # lax.top_k on CPUs for the small k of these metrics.
        for _ in range(k - 1):
            d = d.at[jnp.arange(len(d)), jnp.argmin(d, axis=1)].set(jnp.inf)
        return jnp.min(d, axis=1)

    return _map_rows(fn, x, block_size)


@functools.partial(jax.jit, static_argnames=("block_size",))
def _ball_counts(queries: jax.Array, centres: jax.Array, radii_sq: jax.Array, block_size: int):
    """Number of balls B(centres_i, radius_i) holding each query: int [M]."""

    def fn(rows, _):
        return jnp.sum(_squared_distances(rows, centres) <= radii_sq[None, :], axis=1)

    return _map_rows(fn, queries, block_size)


@functools.partial(jax.jit, static_argnames=("block_size",))
def _nearest(queries: jax.Array, references: jax.Array, block_size: int):
    """Index and squared distance of each query's nearest reference: (int [M], float [M])."""

    def fn(rows, _):
        d = _squared_distances(rows, references)
        return jnp.argmin(d, axis=1), jnp.min(d, axis=1)

    return _map_rows(fn, queries, block_size)


def _prepare(
    real: np.ndarray,
    fake: np.ndarray,
    k: int | None,
    block_size: int,
    names: tuple[str, str] = ("real_features", "fake_features"),
) -> tuple[jax.Array, jax.Array]:
    """Checked float32 copies of both sets, shifted by the mean of ``real``."""
    real, fake = np.asarray(real, np.float64), np.asarray(fake, np.float64)
    for name, x in zip(names, (real, fake), strict=True):
        if x.ndim != 2 or len(x) == 0:
            raise ConfigError(
                f"{name} must be a non-empty float array [N, D]; got shape {x.shape}."
            )
        if not np.isfinite(x).all():
            raise ConfigError(f"{name} holds NaN or infinite values.")
    if real.shape[1] != fake.shape[1]:
        raise ConfigError(
            f"{names[0]} and {names[1]} differ in width: {real.shape[1]} vs {fake.shape[1]}."
        )
    if block_size < 1:
        raise ConfigError(f"block_size={block_size} must be a positive number of rows.")
    if k is not None and not 1 <= k < min(len(real), len(fake)):
        raise ConfigError(
            f"k={k} must be at least 1 and below the size of each set ({len(real)} real, "
            f"{len(fake)} fake): the k-th neighbour excludes the point itself."
        )
    offset = real.mean(axis=0)
    return jnp.asarray(real - offset, jnp.float32), jnp.asarray(fake - offset, jnp.float32)


def precision_recall(
    real_features: np.ndarray, fake_features: np.ndarray, k: int = 3, block_size: int = BLOCK_SIZE
) -> dict[str, float]:
    """Improved precision and recall (Kynkäänniemi et al., 2019).

    Args:
      real_features: float [N, D] features of real images.
      fake_features: float [M, D] features of generated images.
      k: the neighbour whose distance is each ball's radius (the paper's k = 3).
      block_size: rows of distances computed at once.

    Returns:
      ``precision`` (fraction of fakes in a real ball) and ``recall`` (fraction
      of reals in a fake ball), both in [0, 1].

    Raises:
      ConfigError: sets that are not [N, D] of one width, non-finite values, or k
        not in [1, min(N, M)).
    """
    real, fake = _prepare(real_features, fake_features, k, block_size)
    real_radii, fake_radii = _radii_sq(real, k, block_size), _radii_sq(fake, k, block_size)
    precision = np.mean(np.asarray(_ball_counts(fake, real, real_radii, block_size)) > 0)
    recall = np.mean(np.asarray(_ball_counts(real, fake, fake_radii, block_size)) > 0)
    return {"precision": float(precision), "recall": float(recall)}


def density_coverage(
    real_features: np.ndarray, fake_features: np.ndarray, k: int = 5, block_size: int = BLOCK_SIZE
) -> dict[str, float]:
    """Density and coverage (Naeem et al., 2020), on the balls of the real set.

    Args:
      real_features: float [N, D] features of real images.
      fake_features: float [M, D] features of generated images.
      k: the neighbour whose distance is each real ball's radius (the paper's k = 5).
      block_size: rows of distances computed at once.

    Returns:
      ``density`` (mean number of real balls per fake, divided by k; >= 0) and
      ``coverage`` (fraction of real balls holding a fake, in [0, 1]).

    Raises:
      ConfigError: as ``precision_recall``.
    """
    real, fake = _prepare(real_features, fake_features, k, block_size)
    real_radii = _radii_sq(real, k, block_size)
    counts = np.asarray(_ball_counts(fake, real, real_radii, block_size), np.int64)
    covered = np.asarray(_nearest(real, fake, block_size)[1] <= real_radii)
    density, coverage = counts.sum() / (k * len(fake)), covered.mean()
    return {"density": float(density), "coverage": float(coverage)}


def nearest_neighbours(
    queries: np.ndarray, references: np.ndarray, block_size: int = BLOCK_SIZE
) -> tuple[np.ndarray, np.ndarray]:
    """The nearest reference row of each query row, by Euclidean distance.

    Args:
      queries: float [M, D].
      references: float [N, D].
      block_size: query rows whose distances are computed at once.

    Returns:
      (index int [M] into ``references``, distance float [M]).

    Raises:
      ConfigError: as ``precision_recall`` (without k).
    """
    centred_references, centred_queries = _prepare(
        references, queries, None, block_size, names=("references", "queries")
    )
    index, distance_sq = _nearest(centred_queries, centred_references, block_size)
    return np.asarray(index), np.sqrt(np.asarray(distance_sq, np.float64))
