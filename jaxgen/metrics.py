"""Sample-quality metrics on a feature network: FID, precision/recall, density/coverage,
mode coverage, and the nearest training images of samples (memorisation).

FID protocol (Heusel et al., 2017, with TTUR's numerics):

* Images: int [N, H, W, C] levels in [0, L) (``num_levels=L`` given; divided by
  L - 1) or float [N, H, W, C] in [0, 1] (``num_levels=None``; a [-1, 1] tanh
  output must be mapped with (y + 1) / 2 first). So GAN, VAE and PixelCNN
  samples are all measured the same way.
* Features: any ``FeatureFn``, float [B, H, W, C] in [0, 1] -> float [B, D].
  Inception does not fit 28 x 28 grey digits, so jaxgen trains its own
  ``Classifier`` on the labelled training split (``dataset_classifier``: Adam
  1e-3, 2000 steps of 128 images by default, deterministic from its seed,
  cached in the TFDS data folder; 1000 steps give 98.7% MNIST test accuracy).
  Its feature layer is the D = ``Classifier.features`` (128) units of the last
  hidden layer, before the ReLU.
* Statistics: mean and covariance of the features in float64 on the host;
  the reference statistics are the full training split unless stated.
* Distance: ||mu1 - mu2||^2 + Tr(S1 + S2 - 2 (S1 S2)^{1/2}) with SciPy's
  ``sqrtm``; if that is not finite, 1e-6 I is added to both covariances and it
  is retried; an imaginary part above 1e-3 on the diagonal is an error, else
  the real part is kept.
* Sample size: FID is biased for finite N, so numbers are comparable only at
  the same N (and N must exceed D). Always report N; experiments log it as
  ``fid_num_samples``.

Precision/recall (k = 3) and density/coverage (k = 5) compare the N samples'
features with those of the first N reference images (``jaxgen.neighbours``).
Mode coverage classifies the samples with the same classifier and reports the
entropy of the predicted-class histogram and the share of the rarest class.
Every number comes with its real-data floor: the same measure of N held-out
test images (``*_real_test``).

Memorisation (``nearest_training_neighbours``): the distance of each sample to
its nearest training image, in pixel space and in feature space, beside the
same distances of held-out test images; a model that copies its training data
sits below the test images' distances.
"""

import dataclasses
import functools
import os
import pathlib
from collections.abc import Callable, Mapping
from typing import Any

import flax.linen as nn
import flax.serialization
import jax
import jax.numpy as jnp
import numpy as np
import optax
import scipy.linalg

from jaxgen import data, levels
from jaxgen.batching import apply_in_batches
from jaxgen.neighbours import density_coverage, nearest_neighbours, precision_recall
from jaxgen.validation import ConfigError

FeatureFn = Callable[[jax.Array], jax.Array]
BatchFn = Callable[[int], Mapping[str, np.ndarray]]


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
    """
    features = np.asarray(features, np.float64)
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
      ValueError: shapes differ, or (sigma1 sigma2)^{1/2} has a diagonal
        imaginary part above 1e-3 (the covariances are not valid or too noisy).
    """
    mu1, mu2 = np.atleast_1d(np.float64(mu1)), np.atleast_1d(np.float64(mu2))
    sigma1, sigma2 = np.atleast_2d(np.float64(sigma1)), np.atleast_2d(np.float64(sigma2))
    if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape:
        raise ConfigError(
            f"Statistics differ in shape: mu {mu1.shape} vs {mu2.shape}, "
            f"sigma {sigma1.shape} vs {sigma2.shape}."
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
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * np.trace(covmean))


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


class Classifier(nn.Module):
    """Small CNN classifier whose last hidden layer serves as the FID feature layer.

    conv 5x5 stride 2 (32) -> conv 5x5 stride 2 (64), ReLUs, -> dense
    ``features`` (the feature layer, taken before its ReLU: no dead units, so the
    feature covariance has full rank) -> ReLU -> dense ``num_classes``. About 3M
    multiply-adds per 28 x 28 image, so it trains in a minute or two on a CPU.

    Attributes:
      num_classes: K.
      features: D, width of the feature layer.
    """

    num_classes: int = 10
    features: int = 128

    @nn.compact
    def __call__(self, x: jax.Array) -> tuple[jax.Array, jax.Array]:
        """Classifies images.

        Args:
          x: float [B, H, W, C] in [0, 1].

        Returns:
          (logits float [B, K], features float [B, D]).
        """
        y = nn.relu(nn.Conv(32, (5, 5), (2, 2))(x))
        y = nn.relu(nn.Conv(64, (5, 5), (2, 2))(y))
        h = nn.Dense(self.features)(y.reshape(y.shape[0], -1))
        return nn.Dense(self.num_classes)(nn.relu(h)), h


@functools.partial(jax.jit, static_argnums=0)
def _forward(module: Classifier, params: Any, x: jax.Array) -> tuple[jax.Array, jax.Array]:
    return module.apply(params, x)


@dataclasses.dataclass(frozen=True)
class FeatureNetwork:
    """A trained ``Classifier`` and its parameters.

    Attributes:
      module: the classifier.
      params: its variables.
    """

    module: Classifier
    params: Any

    def features(self, x: jax.Array) -> jax.Array:
        """The FID features: float [B, H, W, C] in [0, 1] -> float [B, D]."""
        return _forward(self.module, self.params, x)[1]

    def predict(self, x: jax.Array) -> jax.Array:
        """Predicted classes: float [B, H, W, C] in [0, 1] -> int [B]."""
        return self.classify(x)[0]

    def classify(self, x: jax.Array) -> tuple[jax.Array, jax.Array]:
        """Classes and features from one pass: float [B, H, W, C] -> (int [B], float [B, D])."""
        logits, features = _forward(self.module, self.params, x)
        return jnp.argmax(logits, axis=-1), features


def fit_classifier(
    logits_fn: Callable[[Any, jax.Array], jax.Array],
    params: Any,
    batch_fn: Callable[[int], tuple[Any, Any]],
    tx: optax.GradientTransformation,
    num_steps: int,
) -> Any:
    """Minimises the mean softmax cross-entropy of a classifier, one jitted update per step.

    The one training loop of jaxgen's classifiers: the FID feature network
    (``train_classifier``) and the few-label transfer heads (``jaxgen.transfer``).

    Args:
      logits_fn: (params, x [B, ...]) -> float [B, K] class logits.
      params: the initial parameters.
      batch_fn: step -> (x [B, ...], int [B] labels in [0, K)).
      tx: the Optax optimiser.
      num_steps: updates.

    Returns:
      The trained parameters; deterministic given the inputs.
    """

    @jax.jit
    def update(params, opt_state, x, y):
        def loss_fn(p):
            logits = logits_fn(p, x)
            return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()

        grads = jax.grad(loss_fn)(params)
        updates, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state

    opt_state = tx.init(params)
    for step in range(num_steps):
        params, opt_state = update(params, opt_state, *batch_fn(step))
    return params


def train_classifier(
    module: Classifier,
    batch_fn: BatchFn,
    *,
    num_levels: int,
    num_steps: int,
    seed: int,
    learning_rate: float = 1e-3,
) -> FeatureNetwork:
    """Trains the classifier with Adam on cross-entropy; deterministic given its inputs.

    Args:
      module: the classifier.
      batch_fn: step -> {"image": int [B, H, W, C] in [0, num_levels), "label": int [B]}.
      num_levels: L of the images.
      num_steps: Adam updates.
      seed: seed of the initial parameters.
      learning_rate: Adam's step size.

    Returns:
      The trained FeatureNetwork.
    """

    def batch(step: int) -> tuple[np.ndarray, np.ndarray]:
        b = batch_fn(step)
        return to_unit_range(b["image"], num_levels), b["label"]

    params = module.init(jax.random.key(seed), batch(0)[0])
    params = fit_classifier(
        lambda p, x: module.apply(p, x)[0], params, batch, optax.adam(learning_rate), num_steps
    )
    return FeatureNetwork(module, params)


def load_or_train_classifier(
    path: str | os.PathLike,
    module: Classifier,
    batch_fn: BatchFn,
    *,
    num_levels: int,
    num_steps: int,
    seed: int,
) -> FeatureNetwork:
    """Loads the classifier cached at ``path``, or trains it and writes it there.

    Args:
      path: the cache file (Flax msgpack); its name should encode every argument.
      module, batch_fn, num_levels, num_steps, seed: see ``train_classifier``.

    Returns:
      The FeatureNetwork.
    """
    path = pathlib.Path(path)
    if path.is_file():
        example = np.zeros((1, *batch_fn(0)["image"].shape[1:]), np.float32)
        template = jax.eval_shape(module.init, jax.random.key(seed), example)
        params = flax.serialization.from_bytes(template, path.read_bytes())
        return FeatureNetwork(module, jax.tree.map(jnp.asarray, params))
    net = train_classifier(module, batch_fn, num_levels=num_levels, num_steps=num_steps, seed=seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.tmp{os.getpid()}")
    tmp.write_bytes(flax.serialization.to_bytes(net.params))
    tmp.replace(path)  # atomic: concurrent runs never read a half-written file
    return net


def dataset_classifier(
    dataset: str,
    data_dir: str | os.PathLike,
    *,
    num_steps: int = 2000,
    batch_size: int = 128,
    features: int = 128,
    seed: int = 0,
) -> FeatureNetwork:
    """The feature network of a labelled dataset, trained once and cached.

    Trains on the dataset's training split at 8-bit levels; the cache lives in
    ``data_dir/jaxgen_classifiers/`` under a name that encodes every argument.

    Args:
      dataset: a prepared TFDS dataset with labels (``mnist``, ``fashion_mnist``,
        ``cifar10``).
      data_dir: its TFDS data folder (as returned by ``jaxgen.data.prepare``).
      num_steps, batch_size: Adam updates and their batch size.
      features: D, the width of the feature layer.
      seed: seed of the initial parameters and the batch order.

    Returns:
      The FeatureNetwork.
    """
    info = data.dataset_info(dataset)
    if info.num_classes == 0:
        raise ConfigError(
            f"Dataset {dataset!r} has no labels to train the FID feature network on; use the "
            "8-bit dataset it comes from (mnist for binarized_mnist)."
        )
    batches = data.train_batches(
        dataset,
        batch_size=batch_size,
        seed=seed,
        num_levels=info.num_levels,
        data_dir=data_dir,
        process_index=0,
        process_count=1,
    )
    name = f"{dataset}_classifier_d{features}_steps{num_steps}_bs{batch_size}_seed{seed}.msgpack"
    return load_or_train_classifier(
        pathlib.Path(data_dir) / "jaxgen_classifiers" / name,
        Classifier(num_classes=info.num_classes, features=features),
        batches.__getitem__,
        num_levels=info.num_levels,
        num_steps=num_steps,
        seed=seed,
    )


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
        **precision_recall(real_features, features, k=3),
        **density_coverage(real_features, features, k=5),
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
        """
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
    pixels = [to_unit_range(x, num_levels).reshape(len(x), -1) for x in (samples, test_images)]
    train_pixels = to_unit_range(train_images, num_levels).reshape(len(train_images), -1)
    (pixel_index, pixel_distance), (_, test_pixel) = (
        nearest_neighbours(x, train_pixels) for x in pixels
    )
    feature = (None, None, None)
    if feature_fn is not None:
        if train_features is None:
            train_features = compute_features(feature_fn, train_images, num_levels, batch_size)
        (feature_index, feature_distance), (_, test_feature) = (
            nearest_neighbours(
                compute_features(feature_fn, x, num_levels, batch_size), train_features
            )
            for x in (samples, test_images)
        )
        feature = (feature_index, feature_distance, test_feature)
    return TrainingNeighbours(pixel_index, pixel_distance, test_pixel, *feature, quantile=quantile)
