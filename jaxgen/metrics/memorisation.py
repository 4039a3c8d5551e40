"""Memorisation: the distances of samples and of held-out test images to their nearest
training images, in pixel and in feature space.
"""

import dataclasses

import numpy as np

from jaxgen.metrics.frechet import FeatureFn, compute_features, to_unit_range
from jaxgen.neighbours import nearest_neighbours
from jaxgen.validation import ConfigError


def memorised_fraction(
    sample_distance: np.ndarray, test_distance: np.ndarray, quantile: float = 0.01
) -> float:
    """Fraction of samples nearer to the training set than the nearest ``quantile`` of test images.

    Args:
      sample_distance: float [N], each sample's distance to its nearest training image.
      test_distance: float [M], the same for held-out test images.
      quantile: q in (0, 1): the threshold is the q-quantile of ``test_distance``,
        so about a fraction q of fresh test images fall below it.

    Returns:
      The fraction of samples strictly below the threshold: about q (or less)
      for a generator of new images, 1 for one that copies training images.
    """
    if not 0.0 < quantile < 1.0:
        raise ConfigError(f"quantile={quantile} must lie strictly between 0 and 1.")
    threshold = np.quantile(np.asarray(test_distance, np.float64), quantile)
    return float(np.mean(np.asarray(sample_distance) < threshold))


@dataclasses.dataclass(frozen=True)
class TrainingNeighbours:
    """The nearest training image of each sample and of each held-out test image.

    Pixel distances are Euclidean over [0, 1] intensities (sqrt(H W C) at most);
    feature distances over the feature network's features.

    Attributes:
      pixel_index: int [N], each sample's nearest training image in pixel space.
      pixel_distance: float [N], its distance.
      test_pixel_distance: float [M], the same distance of each test image.
      feature_index: int [N], the nearest training image in feature space (None
        without a feature function), and likewise the two distances below.
      feature_distance: float [N].
      test_feature_distance: float [M].
      quantile: q of ``summary``'s memorised fractions.
    """

    pixel_index: np.ndarray
    pixel_distance: np.ndarray
    test_pixel_distance: np.ndarray
    feature_index: np.ndarray | None
    feature_distance: np.ndarray | None
    test_feature_distance: np.ndarray | None
    quantile: float

    def summary(self) -> dict[str, float]:
        """The memorised fractions and the median nearest-training-image distances.

        Returns:
          ``memorised_pixel`` (see ``memorised_fraction``), ``nn_pixel_median`` and
          ``nn_pixel_median_test`` (median distances of samples and test images),
          and the same three for ``feature`` when feature neighbours were found.
        """
        out = {}
        spaces = [("pixel", self.pixel_distance, self.test_pixel_distance)]
        if self.feature_distance is not None:
            spaces.append(("feature", self.feature_distance, self.test_feature_distance))
        for space, samples, test in spaces:
            out[f"memorised_{space}"] = memorised_fraction(samples, test, self.quantile)
            out[f"nn_{space}_median"] = float(np.median(samples))
            out[f"nn_{space}_median_test"] = float(np.median(test))
        return out


def nearest_training_neighbours(
    samples: np.ndarray,
    train_images: np.ndarray,
    test_images: np.ndarray,
    *,
    num_levels: int,
    feature_fn: FeatureFn | None = None,
    train_features: np.ndarray | None = None,
    quantile: float = 0.01,
    batch_size: int = 500,
) -> TrainingNeighbours:
    """The nearest training image of generated samples, against held-out test images.

    Args:
      samples: int [N, H, W, C] generated images, levels in [0, num_levels).
      train_images: int [T, H, W, C] the model's training images.
      test_images: int [M, H, W, C] held-out images: their distances to the
        training set are what a model that does not copy reaches.
      num_levels: L of all three.
      feature_fn: float [B, H, W, C] in [0, 1] -> float [B, D] for feature-space
        neighbours (e.g. ``SampleQuality.network.features``); None: pixels only.
      train_features: float [T, D], the training images' features if already
        computed (saves a pass over the training set); None: computed.
      quantile: q of the summary's memorised fractions.
      batch_size: images per feature-network call.

    Returns:
      The TrainingNeighbours.

    Raises:
      ConfigError: image shapes that differ, levels out of range, or a bad quantile.
    """
    shapes = {np.shape(x)[1:] for x in (samples, train_images, test_images)}
    if len(shapes) != 1 or any(len(x) == 0 for x in (samples, train_images, test_images)):
        raise ConfigError(
            "samples, train_images and test_images must be non-empty [N, H, W, C] arrays of one "
            f"image shape; got {[np.shape(x) for x in (samples, train_images, test_images)]}."
        )
    memorised_fraction(np.zeros(1), np.zeros(1), quantile)  # checks the quantile up front
    queries = np.concatenate([samples, test_images])  # one pass over the training set for both
    n = len(samples)
    train_pixels = to_unit_range(train_images, num_levels).reshape(len(train_images), -1)
    pixel_index, pixel_distance = nearest_neighbours(
        to_unit_range(queries, num_levels).reshape(len(queries), -1), train_pixels
    )
    feature = (None, None, None)
    if feature_fn is not None:
        if train_features is None:
            train_features = compute_features(feature_fn, train_images, num_levels, batch_size)
        query_features = compute_features(feature_fn, queries, num_levels, batch_size)
        feature_index, feature_distance = nearest_neighbours(query_features, train_features)
        feature = (feature_index[:n], feature_distance[:n], feature_distance[n:])
    return TrainingNeighbours(
        pixel_index[:n], pixel_distance[:n], pixel_distance[n:], *feature, quantile=quantile
    )
