"""FID numerics, input conventions, mode coverage, the cached feature classifier, SampleQuality
and memorisation (nearest training images)."""

import re

import numpy as np
import pytest
import scipy.linalg

from jaxgen import metrics
from jaxgen.validation import ConfigError


def _gaussian(n: int, dim: int, seed: int, scale: float = 1.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    mixing = np.random.default_rng(100).normal(size=(dim, dim)) / np.sqrt(dim)
    return scale * rng.normal(size=(n, dim)) @ mixing + 0.5


def test_frechet_distance_of_diagonal_gaussians_has_a_closed_form():
    mu1, mu2 = np.array([0.0, 1.0, 2.0]), np.array([1.0, 1.0, -1.0])
    s1, s2 = np.array([1.0, 2.0, 0.5]), np.array([3.0, 2.0, 1.0])
    fid = metrics.frechet_distance(mu1, np.diag(s1**2), mu2, np.diag(s2**2))
    expected = np.sum((mu1 - mu2) ** 2) + np.sum((s1 - s2) ** 2)
    np.testing.assert_allclose(fid, expected, rtol=1e-10)


def test_fid_matches_a_direct_scipy_computation():
    a, b = _gaussian(500, 6, 0), _gaussian(400, 6, 1, scale=1.5) + 0.3
    mu1, mu2 = a.mean(0), b.mean(0)
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    # Tr (S1 S2)^{1/2} = Tr (S1^{1/2} S2 S1^{1/2})^{1/2}, a symmetric PSD matrix.
    root1 = scipy.linalg.sqrtm(s1).real
    eigenvalues = np.linalg.eigvalsh(root1 @ s2 @ root1)
    expected = np.sum((mu1 - mu2) ** 2) + np.trace(s1 + s2) - 2 * np.sum(np.sqrt(eigenvalues))
    np.testing.assert_allclose(metrics.fid_from_features(a, b), expected, rtol=1e-8)
    np.testing.assert_allclose(metrics.fid_from_features(b, a), expected, rtol=1e-8)


def test_fid_is_near_zero_for_the_same_distribution_and_grows_with_noise():
    a, b = _gaussian(20_000, 8, 0), _gaussian(20_000, 8, 1)
    same = metrics.fid_from_features(a, b)
    assert same < 0.01
    noise = np.random.default_rng(2).normal(size=b.shape)
    fids = [metrics.fid_from_features(a, b + sigma * noise) for sigma in (0.3, 1.0, 3.0)]
    assert np.all(np.diff([same, *fids]) > 0), (same, fids)
    assert fids[0] > 10 * same


def test_invalid_covariances_raise_instead_of_returning_complex_numbers():
    eye = np.eye(3)
    with pytest.raises(ValueError, match="imaginary"):
        metrics.frechet_distance(np.zeros(3), eye, np.zeros(3), -eye)
    with pytest.raises(ValueError, match="shape"):
        metrics.frechet_distance(np.zeros(3), eye, np.zeros(2), np.eye(2))


@pytest.mark.filterwarnings("ignore::scipy.linalg.LinAlgWarning")
def test_rank_deficient_features_give_a_finite_distance():
    a = _gaussian(50, 4, 0) @ np.array([[1.0, 0, 0, 0]] * 4).T  # rank 1 covariance
    assert np.isfinite(metrics.fid_from_features(a, a + 0.1))


def test_a_non_finite_square_root_is_retried_with_a_regularised_diagonal(monkeypatch):
    calls, sqrtm = [], scipy.linalg.sqrtm

    def flaky_sqrtm(matrix):
        calls.append(matrix)
        return sqrtm(matrix) if len(calls) > 1 else np.full_like(matrix, np.nan)

    monkeypatch.setattr(scipy.linalg, "sqrtm", flaky_sqrtm)
    s1, s2 = np.diag([1.0, 4.0]), np.diag([9.0, 1.0])
    fid = metrics.frechet_distance(np.zeros(2), s1, np.zeros(2), s2, eps=0.5)
    np.testing.assert_allclose(calls[1], (s1 + 0.5 * np.eye(2)) @ (s2 + 0.5 * np.eye(2)))
    expected = np.trace(s1 + s2) - 2 * np.sum(np.sqrt(np.diag(calls[1])))
    np.testing.assert_allclose(fid, expected, rtol=1e-10)


def test_integer_and_float_images_are_the_same_input():
    rng = np.random.default_rng(0)
    x = rng.integers(0, 4, (5, 3, 3, 1))
    np.testing.assert_allclose(metrics.to_unit_range(x, 4), x / 3.0, rtol=1e-6)
    np.testing.assert_array_equal(metrics.to_unit_range(x / 3.0, None), metrics.to_unit_range(x, 4))
    with pytest.raises(ValueError, match="num_levels"):
        metrics.to_unit_range(x, None)
    with pytest.raises(ValueError, match="outside"):
        metrics.to_unit_range(x, 3)
    with pytest.raises(ValueError, match=r"\(y \+ 1\) / 2"):
        metrics.to_unit_range(2.0 * x / 3.0 - 1.0, None)


def test_compute_features_batches_and_pads():
    x = np.random.default_rng(0).integers(0, 256, (7, 2, 2, 1))
    calls = []

    def feature_fn(batch):
        calls.append(batch.shape[0])
        return batch.reshape(batch.shape[0], -1) * 2.0

    features = metrics.compute_features(feature_fn, x, num_levels=256, batch_size=3)
    assert calls == [3, 3, 3]
    assert features.dtype == np.float64 and features.shape == (7, 4)
    np.testing.assert_allclose(features, x.reshape(7, -1) / 255.0 * 2.0, rtol=1e-6)
    fid = metrics.fid(feature_fn, x, metrics.gaussian_stats(features), num_levels=256)
    assert abs(fid) < 1e-6


def test_mode_coverage():
    uniform = metrics.mode_coverage(np.arange(1000) % 10, 10)
    np.testing.assert_allclose(uniform["class_entropy"], np.log(10))
    assert uniform["min_class_share"] == 0.1 and uniform["classes_covered"] == 10
    collapsed = metrics.mode_coverage(np.full(50, 3), 10)
    assert collapsed == {"class_entropy": 0.0, "min_class_share": 0.0, "classes_covered": 1}
    with pytest.raises(ValueError, match="classes"):
        metrics.mode_coverage(np.array([10]), 10)


def _quadrant_batches(batch_size: int = 32):
    """Synthetic labelled data: class c is a bright quadrant c of a noisy 8 x 8 image."""

    def batch_fn(step: int) -> dict[str, np.ndarray]:
        rng = np.random.default_rng(step)
        labels = rng.integers(0, 4, batch_size)
        images = rng.integers(0, 100, (batch_size, 8, 8, 1))
        for i, c in enumerate(labels):
            r, q = divmod(int(c), 2)
            images[i, 4 * r : 4 * r + 4, 4 * q : 4 * q + 4] += 150
        return {"image": images.astype(np.int32), "label": labels.astype(np.int32)}

    return batch_fn


def test_classifier_learns_is_deterministic_and_is_cached(tmp_path, monkeypatch):
    module = metrics.Classifier(num_classes=4, features=16)
    batch_fn = _quadrant_batches()
    args = dict(num_levels=256, num_steps=40, seed=0)
    path = tmp_path / "clf.msgpack"
    net = metrics.load_or_train_classifier(path, module, batch_fn, **args)
    assert path.is_file()
    test = batch_fn(10_000)
    x = metrics.to_unit_range(test["image"], 256)
    assert np.mean(np.asarray(net.predict(x)) == test["label"]) > 0.9
    assert net.features(x).shape == (32, 16)

    retrained = metrics.train_classifier(module, batch_fn, **args)
    np.testing.assert_array_equal(retrained.features(x), net.features(x))

    def no_training(*args, **kwargs):
        raise AssertionError("the cached classifier should have been loaded")

    monkeypatch.setattr(metrics.classifier, "train_classifier", no_training)
    loaded = metrics.load_or_train_classifier(path, module, batch_fn, **args)
    np.testing.assert_array_equal(loaded.features(x), net.features(x))


def test_memorised_fraction_by_hand():
    test = np.arange(1.0, 101.0)  # its 1% quantile (linear interpolation) is 1.99
    assert metrics.memorised_fraction(np.array([0.0, 1.5, 2.0, 50.0]), test) == 0.5
    assert metrics.memorised_fraction(np.array([2.5, 3.0]), test, quantile=0.02) == 0.5  # 2.98
    with pytest.raises(ValueError, match="quantile=1.0 must lie strictly between 0 and 1"):
        metrics.memorised_fraction(test, test, quantile=1.0)


def _projection(x):
    """A fixed random projection of [B, 8, 8, 1] images to 6 features."""
    weights = np.random.default_rng(7).normal(size=(64, 6))
    return np.asarray(x).reshape(len(x), -1) @ weights


def test_copies_of_training_images_are_flagged_and_fresh_images_are_not():
    batch_fn = _quadrant_batches(batch_size=400)
    train, test, fresh = (batch_fn(seed)["image"] for seed in (1, 2, 3))
    copies = train[10:60]
    found = metrics.nearest_training_neighbours(
        copies, train, test, num_levels=256, feature_fn=_projection
    )
    np.testing.assert_array_equal(found.pixel_index, np.arange(10, 60))
    np.testing.assert_array_equal(found.feature_index, np.arange(10, 60))
    assert found.pixel_distance.max() < 1e-2 < found.test_pixel_distance.min()
    summary = found.summary()
    assert summary["memorised_pixel"] == 1.0 and summary["memorised_feature"] == 1.0
    assert summary["nn_pixel_median"] < 1e-2 < summary["nn_pixel_median_test"]

    new = metrics.nearest_training_neighbours(
        fresh, train, test, num_levels=256, feature_fn=_projection
    ).summary()
    # Fresh images are as far from the training set as the test images: about 1% of
    # them fall below the test images' 1% quantile.
    assert new["memorised_pixel"] <= 0.05 and new["memorised_feature"] <= 0.05, new
    assert new["nn_pixel_median"] == pytest.approx(new["nn_pixel_median_test"], rel=0.1)
    # Pixel distances are over [0, 1] intensities: a copy one level off in every pixel
    # is sqrt(64) / 255 away.
    nudged = metrics.nearest_training_neighbours(
        np.clip(train[:5] + 1, 0, 255), train, test, num_levels=256
    )
    assert nudged.feature_index is None and "memorised_feature" not in nudged.summary()
    # float32 distances by |a|^2 + |b|^2 - 2 a.b: 1.5e-3 relative off on a CPU without AVX-512.
    np.testing.assert_allclose(nudged.pixel_distance, 8 / 255, rtol=5e-3)


def test_training_neighbours_refuse_images_of_different_shapes():
    x = np.zeros((3, 8, 8, 1), np.int32)
    with pytest.raises(ValueError, match="one image shape"):
        metrics.nearest_training_neighbours(x, np.zeros((3, 4, 4, 1), np.int32), x, num_levels=2)
    with pytest.raises(ValueError, match="outside"):
        metrics.nearest_training_neighbours(x + 2, x, x, num_levels=2)


class _CountingNetwork:
    """A FeatureNetwork with only ``classify`` (features and classes), counting its calls."""

    def __init__(self, network):
        self.network, self.calls = network, []

    def classify(self, x):
        self.calls.append(len(x))
        return self.network.classify(x)


def test_sample_quality_reports_knn_measures_beside_fid_with_their_floors():
    module = metrics.Classifier(num_classes=4, features=16)
    batch_fn = _quadrant_batches(batch_size=300)
    net = metrics.train_classifier(
        module, _quadrant_batches(), num_levels=256, num_steps=40, seed=0
    )
    real, test = batch_fn(1), batch_fn(2)
    features = metrics.compute_features(net.features, real["image"], 256)
    reference = metrics.gaussian_stats(features)
    floor = metrics.feature_scores(
        metrics.compute_features(net.features, test["image"], 256), reference, features
    )
    counting = _CountingNetwork(net)
    quality = metrics.SampleQuality(counting, reference, features, floor, 4, 256)

    good = quality(batch_fn(3)["image"], batch_size=128)
    # One classifier pass per sample gives features and classes: 300 in 3 batches (the last
    # padded to 128 for one compile).
    assert counting.calls == [128, 128, 128]
    assert good["fid_num_samples"] == 300 and good["classes_covered"] == 4
    for name in ("fid", "precision", "recall", "density", "coverage"):
        assert good[f"{name}_real_test"] == floor[name]
    assert good["precision"] > 0.8 and good["recall"] > 0.8 and good["fid"] < 5, good

    # A "generator" that drops classes 2 and 3 keeps precision and loses recall.
    images = batch_fn(4)
    half = quality(images["image"][images["label"] < 2])
    assert half["classes_covered"] == 2
    assert half["precision"] > 0.8 and half["recall"] < 0.7 and half["coverage"] < 0.7, half
    assert half["fid"] > 10 * good["fid"]

    # Pixel noise and blur move the samples off the data manifold: precision drops.
    samples = batch_fn(3)["image"]
    noise = np.random.default_rng(0).normal(0, 60, samples.shape)
    noisy = quality(np.clip(samples + noise, 0, 255).astype(np.int32))
    blurred = quality(_box_blur(samples))
    assert noisy["precision"] < good["precision"] - 0.2, noisy
    assert blurred["precision"] < good["precision"] - 0.2, blurred


def _box_blur(images: np.ndarray) -> np.ndarray:
    """The mean of each pixel's 3 x 3 neighbourhood (edges repeated), rounded: int [B, H, W, 1]."""
    padded = np.pad(images.astype(np.float64), ((0, 0), (1, 1), (1, 1), (0, 0)), mode="edge")
    h, w = images.shape[1:3]
    total = sum(padded[:, i : i + h, j : j + w] for i in range(3) for j in range(3))
    return np.round(total / 9).astype(np.int32)


def test_statistics_of_fewer_than_two_images_raise_instead_of_a_nan_fid():
    with pytest.raises(ValueError, match="N >= 2 rows"):
        metrics.gaussian_stats(_gaussian(1, 3, 0))  # NumPy: a NaN covariance, with a warning
    with pytest.raises(ValueError, match="N >= 2 rows"):
        metrics.gaussian_stats(np.zeros((0, 3)))
    eye, nan = np.eye(3), np.full((3, 3), np.nan)
    with pytest.raises(ValueError, match="sigma2 holds NaN or infinite values"):
        metrics.frechet_distance(np.zeros(3), eye, np.zeros(3), nan)
    with pytest.raises(ValueError, match="mu1 holds NaN"):
        metrics.frechet_distance(np.array([np.inf, 0, 0]), eye, np.zeros(3), eye)


def test_a_square_root_that_stays_non_finite_is_an_error(monkeypatch):
    monkeypatch.setattr(scipy.linalg, "sqrtm", lambda matrix: np.full_like(matrix, np.nan))
    with pytest.raises(ValueError, match="not finite even with eps"):
        metrics.frechet_distance(np.zeros(2), np.eye(2), np.zeros(2), np.eye(2))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"reference_examples": 1}, "reference_examples=1 must be at least num_samples=200"),
        ({"reference_examples": 0}, "reference_examples=0 must be at least num_samples=200"),
        ({"classifier_steps": 0}, "classifier_steps=0 must be a positive integer"),
        ({"classifier_features": 0}, "classifier_features=0 must be a positive integer"),
        ({"classifier_seed": -1}, "classifier_seed=-1 must be non-negative"),
        ({"num_samples": 5, "classifier_features": 2}, "num_samples=5 must exceed"),
        ({"num_samples": 128}, "num_samples=128 must exceed classifier_features=128"),
        ({"num_samples": 10_001}, "num_samples=10001 is more than the 10000 test images"),
        ({"reference_split": "validation"}, "reference_split='validation' is not a split"),
    ],
)
def test_sample_quality_refuses_arguments_that_make_its_numbers_wrong_before_any_work(
    tmp_path, kwargs, message
):
    # tmp_path holds no data: the arguments are refused before the classifier or any image.
    arguments = {"num_samples": 200, "reference_examples": 1000, **kwargs}
    with pytest.raises(ConfigError, match=re.escape(message)):
        metrics.SampleQuality.for_dataset("mnist", tmp_path, **arguments)
    key_and_value = message.split(" ")[0]
    with pytest.raises(ConfigError, match=re.escape(f"fid.{key_and_value}")):  # a config's keys
        metrics.check_quality_args("mnist", prefix="fid.", **arguments)
