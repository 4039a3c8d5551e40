"""FID numerics, input conventions, mode coverage and the cached feature classifier."""

import numpy as np
import pytest
import scipy.linalg

from jaxgen import metrics


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

    monkeypatch.setattr(metrics.scipy.linalg, "sqrtm", flaky_sqrtm)
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

    monkeypatch.setattr(metrics, "train_classifier", no_training)
    loaded = metrics.load_or_train_classifier(path, module, batch_fn, **args)
    np.testing.assert_array_equal(loaded.features(x), net.features(x))
