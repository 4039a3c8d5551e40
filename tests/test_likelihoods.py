"""Decoder likelihoods: true probability mass functions over the levels, stable in the tails."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from jaxgen import likelihoods

CASES = [
    ("bernoulli", 2),
    ("categorical", 5),
    ("discretized_gaussian", 2),
    ("discretized_gaussian", 256),
    ("discretized_logistic", 256),
]


def _params(likelihood, num_levels, key, scale=3.0):
    p = likelihoods.num_params(likelihood, num_levels)
    return scale * jax.random.normal(key, (2, 3, 4, 1, p))


@pytest.mark.parametrize("likelihood,num_levels", CASES)
def test_probabilities_sum_to_one(likelihood, num_levels):
    params = _params(likelihood, num_levels, jax.random.key(0))
    probs = jnp.exp(likelihoods.level_log_probs(likelihood, params, num_levels))
    np.testing.assert_allclose(probs.sum(-1), 1.0, atol=2e-5)


@pytest.mark.parametrize("likelihood", ["discretized_gaussian", "discretized_logistic"])
def test_extreme_parameters_give_finite_values_and_gradients(likelihood):
    # Means far outside [-1, 1] and scales at both ends; every level observed.
    mean = jnp.array([-40.0, -3.0, 0.0, 0.3, 5.0, 60.0])[:, None]
    log_scale = jnp.array([-20.0, -7.0, -2.0, 0.0, 4.0])[None, :]
    mean, log_scale = jnp.broadcast_arrays(mean, log_scale)
    params = jnp.stack([mean, log_scale], -1).reshape(1, 6, 5, 1, 2)
    params = jnp.broadcast_to(params, (256, 6, 5, 1, 2))
    x = jnp.broadcast_to(jnp.arange(256)[:, None, None, None], (256, 6, 5, 1))

    def total(p):
        return likelihoods.log_prob(likelihood, p, x, 256).sum()

    value, grad = jax.value_and_grad(total)(params)
    assert np.isfinite(value)
    assert np.isfinite(np.asarray(grad)).all()


def test_discretized_gaussian_is_the_gaussian_mass_of_each_bin():
    mean, log_scale = 0.1, np.log(0.3)
    params = jnp.array([mean, log_scale]).reshape(1, 1, 1, 1, 2)
    got = np.exp(likelihoods.level_log_probs("discretized_gaussian", params, 4)).ravel()
    edges = np.array([-np.inf, -2 / 3, 0.0, 2 / 3, np.inf])  # bins of centres -1, -1/3, 1/3, 1
    want = np.diff(stats.norm.cdf(edges, loc=mean, scale=0.3))
    np.testing.assert_allclose(got, want, rtol=1e-5)


def test_discretized_logistic_is_the_logistic_mass_of_each_bin():
    mean, log_scale = -0.4, np.log(0.05)
    params = jnp.array([mean, log_scale]).reshape(1, 1, 1, 1, 2)
    x = jnp.array([0, 60, 76, 77, 200, 255]).reshape(6, 1, 1, 1)
    got = likelihoods.pixel_log_probs(
        "discretized_logistic", jnp.tile(params, (6, 1, 1, 1, 1)), x, 256
    )
    centre = np.asarray(x).ravel() / 127.5 - 1
    lo = np.where(centre == -1, -np.inf, centre - 1 / 255)
    hi = np.where(centre == 1, np.inf, centre + 1 / 255)
    want = np.log(stats.logistic.cdf(hi, mean, 0.05) - stats.logistic.cdf(lo, mean, 0.05))
    np.testing.assert_allclose(np.asarray(got).ravel(), want, rtol=1e-4)


def test_bernoulli_and_categorical_match_their_closed_forms():
    logits = jnp.array([-2.0, 0.5]).reshape(2, 1, 1, 1, 1)
    x = jnp.array([0, 1]).reshape(2, 1, 1, 1)
    got = likelihoods.log_prob("bernoulli", logits, x, 2)
    np.testing.assert_allclose(got, np.log([1 - 1 / (1 + np.exp(2.0)), 1 / (1 + np.exp(-0.5))]))

    cat = jnp.array([1.0, 2.0, 3.0]).reshape(1, 1, 1, 1, 3)
    got = likelihoods.log_prob("categorical", cat, jnp.full((1, 1, 1, 1), 2), 3)
    np.testing.assert_allclose(got, 3.0 - np.log(np.exp([1.0, 2.0, 3.0]).sum()), rtol=1e-6)


@pytest.mark.parametrize("likelihood,num_levels", CASES)
def test_mean_and_samples_follow_the_pmf(likelihood, num_levels):
    one = _params(likelihood, num_levels, jax.random.key(1), scale=1.0)[:1]
    probs = np.exp(np.asarray(likelihoods.level_log_probs(likelihood, one, num_levels)))
    want_mean = probs @ np.linspace(0, 1, num_levels)
    np.testing.assert_allclose(likelihoods.mean(likelihood, one, num_levels), want_mean, atol=1e-5)
    many = jnp.broadcast_to(one, (4000, *one.shape[1:]))
    sample = jax.jit(likelihoods.sample, static_argnums=(0, 3))
    draws = np.asarray(sample(likelihood, jax.random.key(2), many, num_levels))
    assert draws.dtype == np.int32 and draws.min() >= 0 and draws.max() < num_levels
    # Sample mean within 5 standard errors of the exact mean, for every sub-pixel.
    levels = np.arange(num_levels)
    var = probs @ levels**2 - (probs @ levels) ** 2
    err = np.abs(draws.mean(0) - probs[0] @ levels)
    assert (err <= 5 * np.sqrt(var[0] / 4000) + 1e-6).all()


def test_bad_likelihood_arguments_are_named():
    with pytest.raises(ValueError, match="bernoulli.*num_levels=256"):
        likelihoods.num_params("bernoulli", 256)
    with pytest.raises(ValueError, match="likelihood='poisson'"):
        likelihoods.num_params("poisson", 2)
    with pytest.raises(ValueError, match="shape"):
        likelihoods.log_prob(
            "bernoulli", jnp.zeros((1, 2, 2, 1, 2)), jnp.zeros((1, 2, 2, 1), int), 2
        )
