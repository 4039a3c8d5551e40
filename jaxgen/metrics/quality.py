"""Sample quality beside its real-data floor: FID, precision/recall, density/coverage and
mode coverage of N samples (``SampleQuality``).
"""

import dataclasses
import os
from collections.abc import Mapping

import numpy as np

from jaxgen import data
from jaxgen.batching import apply_in_batches
from jaxgen.metrics.classifier import FeatureNetwork, dataset_classifier
from jaxgen.metrics.frechet import dataset_features, frechet_distance, gaussian_stats, to_unit_range
from jaxgen.metrics.memorisation import TrainingNeighbours, nearest_training_neighbours
from jaxgen.neighbours import density_coverage, precision_recall
from jaxgen.validation import ConfigError

# The neighbour of the k-NN measures: precision/recall (Kynkaanniemi et al., 2019) and
# density/coverage (Naeem et al., 2020); each set must hold more than k feature vectors.
PRECISION_K, DENSITY_K = 3, 5


def check_quality_args(
    dataset: str,
    *,
    num_samples: int,
    feature_dataset: str | None = None,
    reference_split: str = "train",
    reference_examples: int | None = None,
    classifier_steps: int = 2000,
    classifier_batch_size: int = 128,
    classifier_features: int = 128,
    classifier_seed: int = 0,
    data_dir: str | os.PathLike | None = None,
    prefix: str = "",
) -> None:
    """Raises a ConfigError naming the first ``SampleQuality.for_dataset`` argument that would
    make its numbers wrong or NaN; needs no data (the sizes come from ``data.dataset_info``).

    Args:
      dataset, num_samples, feature_dataset, reference_split, reference_examples,
        classifier_steps, classifier_batch_size, classifier_features,
        classifier_seed: as in ``SampleQuality.for_dataset``.
      data_dir: the TFDS folder, for a dataset outside the catalog (``data.dataset_info``).
      prefix: put before each argument's name in the messages, for a config's
        keys (``"fid."``, ``"eval."``).

    Raises:
      ConfigError: a classifier size below 1 (0 steps would measure with an
        untrained network) or a negative seed; ``num_samples`` not above
        ``classifier_features`` (singular covariance) or ``DENSITY_K``, or above
        the test split (the floor would be measured on fewer images);
        ``reference_split`` not a split; ``reference_examples`` below
        ``num_samples`` (fewer than 2 gives a NaN FID; fewer than N, a smaller
        real set for the k-NN measures and the floor); a classifier batch larger
        than the feature dataset's training split.
    """
    for name, value in (
        ("classifier_steps", classifier_steps),
        ("classifier_batch_size", classifier_batch_size),
        ("classifier_features", classifier_features),
    ):
        if value < 1:  # 0 steps: features of an untrained network
            raise ConfigError(f"{prefix}{name}={value} must be a positive integer.")
    if classifier_seed < 0:
        raise ConfigError(f"{prefix}classifier_seed={classifier_seed} must be non-negative.")
    if num_samples <= max(classifier_features, DENSITY_K):
        raise ConfigError(
            f"{prefix}num_samples={num_samples} must exceed {prefix}classifier_features="
            f"{classifier_features}, or the feature covariance is singular, and {DENSITY_K} "
            "(the neighbour of density/coverage)."
        )
    info = data.dataset_info(dataset, data_dir=data_dir)
    test_size = info.splits[info.test_split]
    if num_samples > test_size:
        raise ConfigError(
            f"{prefix}num_samples={num_samples} is more than the {test_size} test images of "
            f"{dataset!r} that measure the real-data floor; use at most {test_size}."
        )
    if reference_split not in info.splits:
        raise ConfigError(
            f"{prefix}reference_split={reference_split!r} is not a split of {dataset!r}; use one "
            f"of {list(info.splits)}."
        )
    if reference_examples is not None and reference_examples < num_samples:
        raise ConfigError(
            f"{prefix}reference_examples={reference_examples} must be at least {prefix}num_samples="
            f"{num_samples}, or None (the whole split): the FID reference statistics need more "
            "images than features (fewer than 2 make the FID NaN) and the k-NN measures compare "
            "the N samples with N reference images."
        )
    if info.splits[reference_split] < num_samples:
        raise ConfigError(
            f"{prefix}reference_split={reference_split!r} of {dataset!r} has "
            f"{info.splits[reference_split]} images, fewer than {prefix}num_samples={num_samples}."
        )
    features_info = data.dataset_info(feature_dataset or dataset, data_dir=data_dir)
    train_size = features_info.splits[features_info.train_split]
    if classifier_batch_size > train_size:
        raise ConfigError(
            f"{prefix}classifier_batch_size={classifier_batch_size} is larger than the "
            f"{train_size} training images of {features_info.name!r}."
        )


def mode_coverage(labels: np.ndarray, num_classes: int) -> dict[str, float]:
    """Summary of a predicted-class histogram.

    Args:
      labels: int [N] predicted classes in [0, num_classes).
      num_classes: K.

    Returns:
      ``class_entropy`` (nats; log K when every class is equally frequent, 0 for
      one class), ``min_class_share`` (share of the rarest class; 1 / K at best)
      and ``classes_covered`` (classes predicted at least once).
    """
    counts = np.bincount(np.asarray(labels).reshape(-1), minlength=num_classes)
    if len(counts) != num_classes or counts.sum() == 0:
        raise ConfigError(f"labels must be a non-empty array of classes in [0, {num_classes}).")
    p = counts / counts.sum()
    nz = p[p > 0]
    return {
        "class_entropy": float(np.sum(nz * np.log(1.0 / nz))),
        "min_class_share": float(p.min()),
        "classes_covered": int((counts > 0).sum()),
    }


def feature_scores(
    features: np.ndarray, reference: tuple[np.ndarray, np.ndarray], real_features: np.ndarray
) -> dict[str, float]:
    """FID, precision/recall (k = 3) and density/coverage (k = 5) of a feature set.

    Args:
      features: float [N, D] features of the images measured.
      reference: (mu [D], sigma [D, D]) of the FID reference.
      real_features: float [M, D] real features for the k-NN measures.

    Returns:
      ``fid``, ``precision``, ``recall``, ``density``, ``coverage``.
    """
    return {
        "fid": frechet_distance(*gaussian_stats(features), *reference),
        **precision_recall(real_features, features, k=PRECISION_K),
        **density_coverage(real_features, features, k=DENSITY_K),
    }


@dataclasses.dataclass(frozen=True)
class SampleQuality:
    """FID, precision/recall, density/coverage and mode coverage of generated images.

    Measured against one dataset per the protocol above. Build it with
    ``for_dataset``; call it on samples of any model.

    Attributes:
      network: the feature network (and classifier).
      reference: (mu [D], sigma [D, D]) of the reference images' features.
      real_features: float [N, D] features of the first N reference images, the
        real set of the k-NN measures.
      floor: ``feature_scores`` of N held-out test images: what a perfect
        generator would reach at this N.
      num_classes: K of the classifier.
      num_levels: L of the images measured.
    """

    network: FeatureNetwork
    reference: tuple[np.ndarray, np.ndarray]
    real_features: np.ndarray
    floor: Mapping[str, float]
    num_classes: int
    num_levels: int

    @classmethod
    def for_dataset(
        cls,
        dataset: str,
        data_dir: str | os.PathLike,
        *,
        num_samples: int,
        feature_dataset: str | None = None,
        reference_split: str = "train",
        reference_examples: int | None = None,
        classifier_steps: int = 2000,
        classifier_batch_size: int = 128,
        classifier_features: int = 128,
        classifier_seed: int = 0,
    ) -> "SampleQuality":
        """The metric for samples of ``dataset``'s images.

        Args:
          dataset: the images the models learn (e.g. ``binarized_mnist``); the
            reference and the test images come from it.
          data_dir: a TFDS folder holding ``dataset`` and ``feature_dataset``, prepared.
          num_samples: N, the number of samples the metric will be called on
            (the real-data floor is measured on as many test images, and the
            k-NN measures' real set holds as many reference images).
          feature_dataset: the labelled dataset the classifier learns
            (``mnist`` for ``binarized_mnist``); None: ``dataset``.
          reference_split: the split of the reference statistics.
          reference_examples: its first examples used; None: all.
          classifier_steps, classifier_batch_size, classifier_features,
            classifier_seed: see ``dataset_classifier``.

        Returns:
          The SampleQuality.

        Raises:
          ConfigError: a bad argument (``check_quality_args``), before any work.
        """
        check_quality_args(
            dataset,
            num_samples=num_samples,
            feature_dataset=feature_dataset,
            reference_split=reference_split,
            reference_examples=reference_examples,
            classifier_steps=classifier_steps,
            classifier_batch_size=classifier_batch_size,
            classifier_features=classifier_features,
            classifier_seed=classifier_seed,
            data_dir=data_dir,
        )
        net = dataset_classifier(
            feature_dataset or dataset,
            data_dir,
            num_steps=classifier_steps,
            batch_size=classifier_batch_size,
            features=classifier_features,
            seed=classifier_seed,
        )
        info = data.dataset_info(dataset)
        features = dataset_features(
            net.features, dataset, reference_split, data_dir, reference_examples
        )
        reference, real_features = gaussian_stats(features), features[:num_samples]
        test = dataset_features(net.features, dataset, info.test_split, data_dir, num_samples)
        floor = feature_scores(test, reference, real_features)
        num_classes = data.dataset_info(feature_dataset or dataset).num_classes
        return cls(net, reference, real_features, floor, num_classes, info.num_levels)

    def __call__(self, samples: np.ndarray, batch_size: int = 500) -> dict[str, float]:
        """FID, precision/recall, density/coverage and mode coverage of samples.

        One classifier pass per sample gives both the features and the class.

        Args:
          samples: int [N, H, W, C] levels in [0, num_levels).
          batch_size: images per feature-network call.

        Returns:
          ``fid``, ``fid_num_samples`` (N), ``precision``, ``recall``,
          ``density``, ``coverage``, their floors ``fid_real_test``,
          ``precision_real_test``, ... and the ``mode_coverage`` entries.
        """
        x = to_unit_range(samples, self.num_levels)
        labels, features = apply_in_batches(self.network.classify, x, batch_size=batch_size)
        scores = feature_scores(features.astype(np.float64), self.reference, self.real_features)
        return {
            **scores,
            "fid_num_samples": len(samples),
            **{f"{name}_real_test": value for name, value in self.floor.items()},
            **mode_coverage(labels, self.num_classes),
        }

    def training_neighbours(
        self,
        samples: np.ndarray,
        train_images: np.ndarray,
        test_images: np.ndarray,
        train_features: np.ndarray | None = None,
        quantile: float = 0.01,
    ) -> "TrainingNeighbours":
        """``nearest_training_neighbours`` with this metric's feature network and levels."""
        return nearest_training_neighbours(
            samples,
            train_images,
            test_images,
            num_levels=self.num_levels,
            feature_fn=self.network.features,
            train_features=train_features,
            quantile=quantile,
        )
