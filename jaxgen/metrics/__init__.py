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
Modules: ``frechet`` (images to [0, 1], features, FID), ``classifier`` (the feature
network), ``quality`` (``SampleQuality``: every measure with its floor, mode coverage) and
``memorisation`` (nearest training images). Their public names are all here.
"""

from jaxgen.metrics.classifier import (
    BatchFn,
    Classifier,
    FeatureNetwork,
    dataset_classifier,
    fit_classifier,
    load_or_train_classifier,
    train_classifier,
)
from jaxgen.metrics.frechet import (
    FeatureFn,
    compute_features,
    dataset_features,
    dataset_images,
    fid,
    fid_from_features,
    frechet_distance,
    gaussian_stats,
    to_unit_range,
)
from jaxgen.metrics.memorisation import (
    TrainingNeighbours,
    memorised_fraction,
    nearest_training_neighbours,
)
from jaxgen.metrics.quality import (
    SampleQuality,
    check_quality_args,
    feature_scores,
    mode_coverage,
)

__all__ = [
    "BatchFn",
    "Classifier",
    "FeatureFn",
    "FeatureNetwork",
    "SampleQuality",
    "TrainingNeighbours",
    "check_quality_args",
    "compute_features",
    "dataset_classifier",
    "dataset_features",
    "dataset_images",
    "feature_scores",
    "fid",
    "fid_from_features",
    "fit_classifier",
    "frechet_distance",
    "gaussian_stats",
    "load_or_train_classifier",
    "memorised_fraction",
    "mode_coverage",
    "nearest_training_neighbours",
    "to_unit_range",
    "train_classifier",
]
