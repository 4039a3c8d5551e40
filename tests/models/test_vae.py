"""VAE: closed-form KL, reparameterization gradients, module shapes and checks."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxgen import latent, losses
from jaxgen.latent import reparameterize
from jaxgen.models import VAE


def test_gaussian_kl_is_exactly_zero_at_the_standard_normal():
    kl = losses.gaussian_kl(jnp.zeros((3, 7)), jnp.zeros((3, 7)))
    assert np.array_equal(np.asarray(kl), np.zeros(3))


def test_gaussian_kl_equals_a_monte_carlo_estimate():
    mean = jnp.array([[0.5, -1.0, 2.0], [0.0, 0.3, -0.2]])
    logvar = jnp.array([[0.0, -1.0, 0.7], [1.2, -2.0, 0.1]])
    n = 200_000
    z = reparameterize(jax.random.key(0), mean, logvar, n)  # [n, 2, 3]
    log_q = jax.scipy.stats.norm.logpdf(z, mean, jnp.exp(0.5 * logvar)).sum(-1)
    log_p = jax.scipy.stats.norm.logpdf(z).sum(-1)
    diff = np.asarray(log_q - log_p, np.float64)
    estimate, stderr = diff.mean(0), diff.std(0) / np.sqrt(n)
    kl = np.asarray(losses.gaussian_kl(mean, logvar))
    assert (np.abs(kl - estimate) < 4 * stderr).all(), (kl, estimate, stderr)
    assert (kl > 0.1).all()  # not trivially zero


def test_reparameterized_gradient_matches_the_analytic_gradient():
    # E_{z ~ N(mu, s^2)}[z^2 + 3 z] = mu^2 + s^2 + 3 mu with s^2 = exp(logvar):
    # d/dmu = 2 mu + 3 and d/dlogvar = exp(logvar).
    mu, logvar = jnp.array([[0.7, -1.5]]), jnp.array([[-0.4, 0.6]])
    n = 100_000

    def per_draw(mu, logvar):
        z = reparameterize(jax.random.key(3), mu, logvar, n)
        return z**2 + 3 * z  # [n, 1, 2]

    def objective(mu, logvar):
        return per_draw(mu, logvar).mean(0).sum()

    g_mu, g_logvar = jax.grad(objective, argnums=(0, 1))(mu, logvar)
    # Standard errors from the per-draw gradients (2z + 3) and (2z + 3) * s * eps / 2.
    z = np.asarray(reparameterize(jax.random.key(3), mu, logvar, n), np.float64)[:, 0]
    s = np.exp(0.5 * np.asarray(logvar[0], np.float64))
    eps = (z - np.asarray(mu[0])) / s
    se_mu = (2 * z + 3).std(0) / np.sqrt(n)
    se_logvar = ((2 * z + 3) * s * eps / 2).std(0) / np.sqrt(n)
    np.testing.assert_array_less(np.abs(g_mu - (2 * mu + 3))[0], 5 * se_mu)
    np.testing.assert_array_less(np.abs(g_logvar - jnp.exp(logvar))[0], 5 * se_logvar)


def test_reparameterize_draws_do_not_depend_on_chunking():
    mean, logvar = jnp.ones((2, 3)), jnp.zeros((2, 3))
    key = jax.random.key(5)
    whole = reparameterize(key, mean, logvar, 6)
    parts = [reparameterize(key, mean, logvar, 2, first) for first in (0, 2, 4)]
    np.testing.assert_array_equal(whole, jnp.concatenate(parts))
    assert not np.allclose(whole[0], whole[1])


@pytest.mark.parametrize(
    "likelihood,num_levels,architecture",
    [
        ("bernoulli", 2, "mlp"),
        ("categorical", 8, "conv"),
        ("discretized_logistic", 256, "mlp"),
        ("discretized_gaussian", 256, "conv"),
    ],
)
def test_vae_shapes_and_finite_bounds(likelihood, num_levels, architecture):
    model = VAE(
        latent_dim=3,
        num_levels=num_levels,
        likelihood=likelihood,
        image_shape=(8, 8, 1),
        architecture=architecture,
        features=(4, 8),
        hidden_features=8,
    )
    x = jax.random.randint(jax.random.key(0), (2, 8, 8, 1), 0, num_levels)
    params = model.init(jax.random.key(1), x)
    mean, logvar = model.apply(params, x, method=model.encode)
    assert mean.shape == logvar.shape == (2, 3)
    z = jnp.zeros((2, 3))
    assert model.apply(params, z, method=model.decode_mean).shape == (2, 8, 8, 1)
    draws = model.apply(params, z, jax.random.key(2), method=model.decode_sample)
    assert draws.shape == (2, 8, 8, 1) and int(draws.max()) < num_levels
    terms = latent.elbo_terms(model, params, x, jax.random.key(3), 2)
    assert {k: v.shape for k, v in terms.items()} == {k: (2,) for k in terms}
    assert np.isfinite(np.asarray(terms["elbo"])).all()
    # A pmf: log p(x|z) <= 0, so ELBO <= 0.
    assert (np.asarray(terms["log_likelihood"]) <= 0).all()


def test_vae_rejects_a_likelihood_that_does_not_fit_the_data():
    model = VAE(num_levels=256, likelihood="bernoulli")
    with pytest.raises(ValueError, match="bernoulli"):
        model.init(jax.random.key(0), jnp.zeros((1, 28, 28, 1), jnp.int32))
