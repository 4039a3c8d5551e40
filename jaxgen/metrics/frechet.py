"""FID: images to the unit range, features, Gaussian statistics, the Frechet distance.

The protocol is in ``jaxgen.metrics``' docstring.
"""

import os
from collections.abc import Callable

import jax
import numpy as np
import scipy.linalg

from jaxgen import data, levels
from jaxgen.batching import apply_in_batches
from jaxgen.validation import ConfigError

FeatureFn = Callable[[jax.Array], jax.Array]


def to_unit_range(images: jax.Array | np.ndarray, num_levels: int | None) -> np.ndarray:
    """Images as float32 in [0, 1], following the FID protocol's input convention.

    Args:
      images: int [N, H, W, C] in [0, num_levels), or float [N, H, W, C] in [0, 1].
      num_levels: L for integer images; None for float images.

    Returns:
      float32 [N, H, W, C] in [0, 1].

    Raises:
      ValueError: integer images without ``num_levels``, float images with it,
        or values out of range.
    """
    images = np.asarray(images)
    if np.issubdtype(images.dtype, np.integer):
        if num_levels is None:
            raise ConfigError("Integer images need num_levels (their number of levels L).")
        lo, hi = images.min(initial=0), images.max(initial=0)
        if lo < 0 or hi >= num_levels:
            raise ConfigError(f"Images have levels in [{lo}, {hi}], outside [0, {num_levels}).")
        return levels.to_unit(images, num_levels)
    if num_levels is not None:
        raise ConfigError(
            f"Float images must lie in [0, 1] with num_levels=None; got num_levels={num_levels}."
        )
    lo, hi = images.min(initial=0.0), images.max(initial=0.0)
    if lo < 0.0 or hi > 1.0:
        raise ConfigError(
            f"Float images have values in [{lo:.3g}, {hi:.3g}] but must lie in [0, 1]; map "
            "tanh outputs in [-1, 1] with (y + 1) / 2."
        )
    return images.astype(np.float32)


def compute_features(
    feature_fn: FeatureFn,
    images: jax.Array | np.ndarray,
    num_levels: int | None = None,
    batch_size: int = 500,
) -> np.ndarray:
    """Features of many images, in fixed-size batches (``batching.apply_in_batches``).

    Args:
      feature_fn: float [B, H, W, C] in [0, 1] -> float [B, D].
      images: see ``to_unit_range``.
      num_levels: see ``to_unit_range``.
      batch_size: images per call of ``feature_fn``.

    Returns:
      float64 [N, D].
    """
    x = to_unit_range(images, num_levels)
    return apply_in_batches(feature_fn, x, batch_size=batch_size).astype(np.float64)


def gaussian_stats(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and (unbiased) covariance of features, in float64.

    Args:
      features: float [N, D] with N >= 2.

    Returns:
      (mu float64 [D], sigma float64 [D, D]).

    Raises:
      ConfigError: fewer than 2 feature vectors (NumPy would return a NaN
        covariance, and every FID from it would be NaN).
    """
    features = np.asarray(features, np.float64)
    if features.ndim != 2 or len(features) < 2:
        raise ConfigError(
            f"Feature statistics need a [N, D] array with N >= 2 rows for a covariance; got "
            f"shape {features.shape}. Measure at least 2 images (and more than D = features "
            "per image for a non-singular covariance)."
        )
    return features.mean(axis=0), np.cov(features, rowvar=False)


def frechet_distance(
    mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray, eps: float = 1e-6
) -> float:
    """Fréchet distance between N(mu1, sigma1) and N(mu2, sigma2), TTUR's numerics.

    Args:
      mu1, mu2: float [D] means.
      sigma1, sigma2: float [D, D] covariances.
      eps: added to the covariances' diagonals when the plain sqrtm is not finite.

    Returns:
      ||mu1 - mu2||^2 + Tr(sigma1 + sigma2 - 2 (sigma1 sigma2)^{1/2}), a float.

    Raises:
      ConfigError: shapes differ, a statistic holds NaN or infinite values, or
        (sigma1 sigma2)^{1/2} has a diagonal imaginary part above 1e-3 or is
        not finite even regularised (the covariances are not valid or too noisy):
        never a NaN distance.
    """
    mu1, mu2 = np.atleast_1d(np.float64(mu1)), np.atleast_1d(np.float64(mu2))
    sigma1, sigma2 = np.atleast_2d(np.float64(sigma1)), np.atleast_2d(np.float64(sigma2))
    if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape:
        raise ConfigError(
            f"Statistics differ in shape: mu {mu1.shape} vs {mu2.shape}, "
            f"sigma {sigma1.shape} vs {sigma2.shape}."
        )
    for name, value in (("mu1", mu1), ("sigma1", sigma1), ("mu2", mu2), ("sigma2", sigma2)):
        if not np.isfinite(value).all():
            raise ConfigError(
                f"{name} holds NaN or infinite values, so the Frechet distance would be NaN: "
                "its features were not finite, or it was computed from fewer than 2 of them."
            )
    diff = mu1 - mu2
    covmean = scipy.linalg.sqrtm(sigma1 @ sigma2)
    if not np.isfinite(covmean).all():
        offset = np.eye(len(sigma1)) * eps
        covmean = scipy.linalg.sqrtm((sigma1 + offset) @ (sigma2 + offset))
    if np.iscomplexobj(covmean):
        imag = np.max(np.abs(np.diagonal(covmean).imag))
        if imag > 1e-3:
            raise ConfigError(
                f"The matrix square root has an imaginary component {imag:.3g}: the covariances "
                "are singular or not positive semi-definite; use more samples than features."
            )
        covmean = covmean.real
    distance = float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * np.trace(covmean))
    if not np.isfinite(distance):
        raise ConfigError(
            "The matrix square root of sigma1 sigma2 is not finite even with eps on the "
            "diagonals: the covariances are singular or ill-conditioned; use more samples "
            "than features."
        )
    return distance


def fid_from_features(features1: np.ndarray, features2: np.ndarray) -> float:
    """FID between two feature sets, float [N1, D] and [N2, D]."""
    return frechet_distance(*gaussian_stats(features1), *gaussian_stats(features2))


def fid(
    feature_fn: FeatureFn,
    images: jax.Array | np.ndarray,
    reference: tuple[np.ndarray, np.ndarray],
    num_levels: int | None = None,
) -> float:
    """FID of images against reference statistics.

    Args:
      feature_fn: float [B, H, W, C] in [0, 1] -> float [B, D].
      images: int [N, H, W, C] in [0, num_levels) or float in [0, 1] (``num_levels=None``).
      reference: (mu [D], sigma [D, D]) from ``gaussian_stats`` or ``reference_stats``.
      num_levels: see ``to_unit_range``.

    Returns:
      The Fréchet distance; report N = len(images) with it.
    """
    features = compute_features(feature_fn, images, num_levels)
    return frechet_distance(*gaussian_stats(features), *reference)


def _split_images(dataset: str, split: str, data_dir: str | os.PathLike, batch_size: int):
    """The images of a split in order, at the dataset's levels: int [B, H, W, C] batches."""
    info = data.dataset_info(dataset)
    for batch in data.eval_batches(
        dataset,
        split,
        batch_size=batch_size,
        num_levels=info.num_levels,
        data_dir=data_dir,
        process_index=0,
        process_count=1,
    ):
        yield batch["image"][batch["mask"]]


def dataset_images(
    dataset: str,
    split: str,
    data_dir: str | os.PathLike,
    max_examples: int | None = None,
    batch_size: int = 1000,
) -> np.ndarray:
    """The first ``max_examples`` (default all) images of a split, at the dataset's levels.

    Returns:
      uint8 [N, H, W, C] levels in [0, L) (L <= 256 for every jaxgen dataset).
    """
    out, count = [], 0
    for images in _split_images(dataset, split, data_dir, batch_size):
        out.append(images.astype(np.uint8))
        count += len(images)
        if max_examples is not None and count >= max_examples:
            break
    return np.concatenate(out)[:max_examples]


def dataset_features(
    feature_fn: FeatureFn,
    dataset: str,
    split: str,
    data_dir: str | os.PathLike,
    max_examples: int | None = None,
    batch_size: int = 500,
) -> np.ndarray:
    """Features of the first ``max_examples`` (default all) images of a split, at 8-bit levels.

    Returns:
      float64 [N, D].
    """
    num_levels = data.dataset_info(dataset).num_levels
    out, count = [], 0
    for images in _split_images(dataset, split, data_dir, batch_size):
        out.append(compute_features(feature_fn, images, num_levels, batch_size))
        count += len(images)
        if max_examples is not None and count >= max_examples:
            break
    return np.concatenate(out)[:max_examples]
