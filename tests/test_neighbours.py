"""Precision/recall and density/coverage: hand-computed cases, limiting behaviour, blocking."""

import numpy as np
import pytest

from jaxgen import neighbours

# Real points on a line (1-D features padded with a zero column), and fakes.
REAL = np.array([[0.0, 0.0], [1.0, 0.0], [3.0, 0.0], [6.0, 0.0]])
FAKE = np.array([[0.5, 0.0], [2.9, 0.0], [10.0, 0.0], [10.5, 0.0]])


def test_a_hand_computed_case_with_k_1():
    # Real radii (nearest other real): 1, 1, 2, 3. Fake radii: 2.4, 2.4, 0.5, 0.5.
    # Fakes in real balls: 0.5 in those of 0 and 1; 2.9 in that of 3; 10 and 10.5 in none.
    # Reals in fake balls: 0, 1 (ball of 0.5) and 3 (ball of 2.9); 6 is 3.1 from 2.9.
    assert neighbours.precision_recall(REAL, FAKE, k=1) == {"precision": 0.5, "recall": 0.75}
    # density = (2 + 1 + 0 + 0) / (1 * 4); the ball of 6 (radius 3) holds no fake.
    assert neighbours.density_coverage(REAL, FAKE, k=1) == {"density": 0.75, "coverage": 0.75}


def test_a_hand_computed_case_with_k_2_excludes_the_point_itself():
    # Real radii (2nd nearest other real): 3, 2, 3, 5; every fake lies in one of their balls,
    # in 3, 4, 1 and 1 of them. Fake radii 9.5, 7.1, 7.1, 7.6 cover every real.
    assert neighbours.precision_recall(REAL, FAKE, k=2) == {"precision": 1.0, "recall": 1.0}
    assert neighbours.density_coverage(REAL, FAKE, k=2) == {"density": 9 / 8, "coverage": 1.0}


_CENTRES = np.random.default_rng(0).normal(size=(10, 2)) * 6.0


def _mixture(n: int, classes, seed: int, noise: float = 0.0) -> np.ndarray:
    """n points of a 10-class 2-D Gaussian mixture restricted to ``classes``, plus extra noise."""
    rng = np.random.default_rng(seed)
    points = _CENTRES[rng.choice(np.asarray(classes), n)] + 0.5 * rng.normal(size=(n, 2))
    return points + noise * rng.normal(size=(n, 2))


REAL_MIXTURE = _mixture(2000, range(10), 1)


def test_the_same_distribution_scores_about_one():
    # N = M = 2000 in 2-D: a few percent of points fall outside the other set's k-NN balls
    # (the binomial noise is about 0.4%), so >= 0.95 allows for the finite sample.
    fake = _mixture(2000, range(10), 2)
    pr = neighbours.precision_recall(REAL_MIXTURE, fake)
    dc = neighbours.density_coverage(REAL_MIXTURE, fake)
    assert pr["precision"] >= 0.95 and pr["recall"] >= 0.95, pr
    assert 0.9 <= dc["density"] <= 1.1 and dc["coverage"] >= 0.93, dc


def test_disjoint_distributions_score_zero():
    fake = _mixture(500, range(10), 2) + 1000.0
    assert neighbours.precision_recall(REAL_MIXTURE, fake) == {"precision": 0.0, "recall": 0.0}
    assert neighbours.density_coverage(REAL_MIXTURE, fake) == {"density": 0.0, "coverage": 0.0}


def test_dropping_half_of_the_classes_keeps_precision_and_loses_recall():
    fake = _mixture(2000, range(5), 3)
    pr = neighbours.precision_recall(REAL_MIXTURE, fake)
    dc = neighbours.density_coverage(REAL_MIXTURE, fake)
    assert pr["precision"] >= 0.95, pr
    assert 0.4 <= pr["recall"] <= 0.6 and 0.4 <= dc["coverage"] <= 0.6, (pr, dc)


def test_noise_lowers_precision_and_density_but_not_recall():
    scores = []
    for sigma in (0.0, 1.0, 2.0):
        fake = _mixture(2000, range(10), 4, sigma)
        scores.append(
            {
                **neighbours.precision_recall(REAL_MIXTURE, fake),
                **neighbours.density_coverage(REAL_MIXTURE, fake),
            }
        )
    precision = [s["precision"] for s in scores]
    density = [s["density"] for s in scores]
    assert precision[0] > precision[1] + 0.15 > precision[2] + 0.3, precision
    assert density[0] > density[1] + 0.2 > density[2] + 0.4, density
    assert min(s["recall"] for s in scores) >= 0.95, scores  # noisy samples still cover the data


def test_blocks_give_the_result_of_one_block():
    rng = np.random.default_rng(5)
    real, fake = rng.normal(size=(300, 6)), rng.normal(size=(250, 6)) + 0.3
    one = {
        **neighbours.precision_recall(real, fake, block_size=1000),
        **neighbours.density_coverage(real, fake, block_size=1000),
    }
    blocked = {
        **neighbours.precision_recall(real, fake, block_size=7),
        **neighbours.density_coverage(real, fake, block_size=7),
    }
    assert 0.2 < one["precision"] < 0.95 and 0.2 < one["recall"] < 0.95, one
    for name, value in one.items():
        # Float rounding may differ between block shapes: allow one point crossing a radius.
        assert abs(blocked[name] - value) <= 1 / 250 + 1e-12, (name, blocked[name], value)


def test_nearest_neighbours_finds_the_closest_row():
    index, distance = neighbours.nearest_neighbours(FAKE, REAL)
    np.testing.assert_array_equal(index, [0, 2, 3, 3])  # 0.5 is as close to 1 as to 0: first
    np.testing.assert_allclose(distance, [0.5, 0.1, 4.0, 4.5], rtol=1e-5)


def test_bad_feature_sets_are_refused_with_the_problem_named():
    with pytest.raises(ValueError, match=r"differ in width: 2 vs 3"):
        neighbours.precision_recall(REAL, np.zeros((4, 3)))
    with pytest.raises(ValueError, match=r"k=4 must be at least 1 and below the size"):
        neighbours.density_coverage(REAL, FAKE, k=4)
    with pytest.raises(ValueError, match=r"fake_features must be a non-empty float array \[N, D\]"):
        neighbours.precision_recall(REAL, np.zeros(4))
    with pytest.raises(ValueError, match="real_features holds NaN"):
        neighbours.precision_recall(np.full((4, 2), np.nan), FAKE)
    with pytest.raises(ValueError, match="queries must be a non-empty"):
        neighbours.nearest_neighbours(np.zeros((0, 2)), REAL)
