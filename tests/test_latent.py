"""Bounds and pictures of ``jaxgen.latent`` on models whose answers are known exactly.

The bounds are checked on a linear-Gaussian VAE: z ~ N(0, I), x | z ~ N(W z + b,
s^2 I), whose marginal is log p(x) = log N(x; b, W W^T + s^2 I). With W's columns
orthogonal the exact posterior is a diagonal Gaussian, so q can be made exact.
"""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.scipy.stats import multivariate_normal
from scipy import stats

from jaxgen import latent, losses
from jaxgen.models import VAE
from jaxgen.validation import ConfigError

X_DIM, Z_DIM, NOISE = 5, 2, 0.5


class LinearGaussian(nn.Module):
    """Linear-Gaussian decoder with a linear diagonal-Gaussian encoder (continuous x)."""

    latent_dim: int = Z_DIM

    def setup(self):
        zeros = nn.initializers.zeros
        self.w = self.param("w", zeros, (X_DIM, Z_DIM))
        self.b = self.param("b", zeros, (X_DIM,))
        self.enc_a = self.param("enc_a", zeros, (Z_DIM, X_DIM))
        self.enc_logvar = self.param("enc_logvar", zeros, (Z_DIM,))

    def encode(self, x):
        mean = (x - self.b) @ self.enc_a.T
        return mean, jnp.broadcast_to(self.enc_logvar, mean.shape)

    def log_likelihood(self, x, z):
        return jax.scipy.stats.norm.logpdf(x, z @ self.w.T + self.b, NOISE).sum(-1)


def _problem(exact_posterior: bool, batch: int = 64):
    """Params, data x [batch, X_DIM] and the true log p(x) [batch]."""
    rng = np.random.default_rng(0)
    q, _ = np.linalg.qr(rng.normal(size=(X_DIM, Z_DIM)))
    w = q * np.array([2.0, 1.0])  # orthogonal columns: diagonal exact posterior
    b = rng.normal(size=X_DIM)
    post_var = 1.0 / (1.0 + (w**2).sum(0) / NOISE**2)
    enc_a = (post_var[:, None] * w.T) / NOISE**2  # exact posterior mean map
    enc_logvar = np.log(post_var)
    if not exact_posterior:
        enc_a, enc_logvar = 0.7 * enc_a, enc_logvar + 0.8
    params = {
        "params": {
            name: jnp.asarray(v, jnp.float32)
            for name, v in dict(w=w, b=b, enc_a=enc_a, enc_logvar=enc_logvar).items()
        }
    }
    cov = w @ w.T + NOISE**2 * np.eye(X_DIM)
    x = rng.multivariate_normal(b, cov, size=batch).astype(np.float32)
    log_px = multivariate_normal.logpdf(jnp.asarray(x), jnp.asarray(b), jnp.asarray(cov))
    return params, jnp.asarray(x), np.asarray(log_px, np.float64)


def _analytic_elbo(params, x):
    """E_q[log p(x|z)] - KL in closed form for the linear-Gaussian model: float [B]."""
    p = {k: np.asarray(v, np.float64) for k, v in params["params"].items()}
    x = np.asarray(x, np.float64)
    mean = (x - p["b"]) @ p["enc_a"].T
    var = np.exp(p["enc_logvar"])
    resid = x - mean @ p["w"].T - p["b"]
    trace = (var * (p["w"] ** 2).sum(0)).sum()
    expected = -0.5 * X_DIM * np.log(2 * np.pi * NOISE**2) - ((resid**2).sum(-1) + trace) / (
        2 * NOISE**2
    )
    kl = 0.5 * (var + mean**2 - 1 - p["enc_logvar"]).sum(-1)
    return expected - kl


def test_bounds_equal_log_px_when_q_is_the_exact_posterior():
    model = LinearGaussian()
    params, x, log_px = _problem(exact_posterior=True)
    key = jax.random.key(0)
    np.testing.assert_allclose(_analytic_elbo(params, x), log_px, rtol=1e-5)
    # Every importance weight p(x, z) / q(z|x) is then exactly p(x).
    lw = latent.log_weights(model, params, x, key, 10)
    np.testing.assert_allclose(lw, np.broadcast_to(log_px, lw.shape), rtol=1e-4)
    np.testing.assert_allclose(latent.iwae_log_px(model, params, x, key, 20, 5), log_px, rtol=1e-4)


def test_elbo_is_below_log_px_and_matches_its_closed_form():
    model = LinearGaussian()
    params, x, log_px = _problem(exact_posterior=False)
    exact = _analytic_elbo(params, x)
    assert (exact < log_px - 0.05).all(), "the test needs a real gap"
    k = 4000
    lw = np.asarray(latent.log_weights(model, params, x, jax.random.key(1), k), np.float64)
    terms = latent.elbo_terms(model, params, x, jax.random.key(1), k)
    tolerance = 5 * lw.std(0) / np.sqrt(k) + 1e-3
    assert (np.abs(np.asarray(terms["elbo"]) - exact) < tolerance).all()
    np.testing.assert_allclose(
        terms["kl"], losses.gaussian_kl(*model.apply(params, x, method=model.encode)), rtol=1e-6
    )
    assert (np.asarray(terms["elbo"]) < log_px).all()


def test_iwae_bound_rises_towards_log_px_as_k_grows():
    model = LinearGaussian()
    params, x, log_px = _problem(exact_posterior=False, batch=256)
    key = jax.random.key(2)
    gaps = []
    for k in (1, 10, 100, 1000):
        bound = np.asarray(latent.iwae_log_px(model, params, x, key, k, min(k, 100)), np.float64)
        gaps.append(float((log_px - bound).mean()))
    elbo_gap = float((log_px - _analytic_elbo(params, x)).mean())
    assert abs(gaps[0] - elbo_gap) < 0.1 * elbo_gap  # L_1 is the ELBO
    assert all(a > b for a, b in zip(gaps, gaps[1:], strict=False)), gaps
    assert gaps[-1] > -0.01, "a lower bound on average (up to Monte Carlo noise)"
    assert gaps[-1] < 0.1 * gaps[0], gaps


def test_iwae_does_not_depend_on_the_chunk_size():
    model = LinearGaussian()
    params, x, _ = _problem(exact_posterior=False, batch=8)
    key = jax.random.key(3)
    whole = latent.iwae_log_px(model, params, x, key, 60, 60)
    for chunk in (1, 6, 20):
        np.testing.assert_allclose(
            latent.iwae_log_px(model, params, x, key, 60, chunk), whole, rtol=1e-6
        )
    with pytest.raises(ValueError, match="chunk_size"):
        latent.iwae_log_px(model, params, x, key, 60, 7)


def test_iwae_memory_is_bounded_by_the_chunk_not_by_k():
    model = VAE(latent_dim=8, features=(32,))
    x = jnp.zeros((16, 28, 28, 1), jnp.int32)
    params = model.init(jax.random.key(0), x)

    def temp_bytes(k, chunk):
        fn = jax.jit(lambda p, x, key: latent.iwae_log_px(model, p, x, key, k, chunk))
        return fn.lower(params, x, jax.random.key(1)).compile().memory_analysis().temp_size_in_bytes

    small = temp_bytes(100, 50)
    assert temp_bytes(5000, 50) < 1.5 * small
    assert temp_bytes(1000, 1000) > 5 * small


class Toy(nn.Module):
    """z = the first three pixels; the decoded 'image' shows z itself as a 1 x 3 row."""

    latent_dim: int = 3

    def encode_mean(self, x):
        return x.reshape(x.shape[0], -1)[:, :3].astype(jnp.float32)

    def decode_mean(self, z):
        return z.reshape(z.shape[0], 1, 3, 1)


def test_latent_manifold_uses_evenly_spaced_prior_quantiles():
    grid = np.asarray(latent.latent_manifold(Toy(), {}, num_per_axis=4, dims=(2, 0)))
    assert grid.shape == (4, 4, 1, 3, 1)
    q = stats.norm.ppf((np.arange(4) + 0.5) / 4)
    np.testing.assert_allclose(grid[:, :, 0, 2, 0], np.broadcast_to(q[:, None], (4, 4)), atol=1e-5)
    np.testing.assert_allclose(grid[:, :, 0, 0, 0], np.broadcast_to(q[None, :], (4, 4)), atol=1e-5)
    np.testing.assert_array_equal(grid[:, :, 0, 1, 0], 0.0)
    with pytest.raises(ValueError, match="dims"):
        latent.latent_manifold(Toy(), {}, dims=(0, 3))


def test_latent_edit_sets_one_dimension_and_keeps_the_others():
    x = jnp.array([[1, 2, 3, 9], [4, 5, 6, 9]]).reshape(2, 2, 2, 1)
    out = np.asarray(latent.latent_edit(Toy(), {}, x, 1, jnp.array([-1.0, 0.0, 2.0])))
    assert out.shape == (2, 3, 1, 3, 1)
    np.testing.assert_array_equal(out[:, :, 0, 1, 0], [[-1, 0, 2], [-1, 0, 2]])
    np.testing.assert_array_equal(out[:, :, 0, 0, 0], [[1, 1, 1], [4, 4, 4]])
    np.testing.assert_array_equal(out[:, :, 0, 2, 0], [[3, 3, 3], [6, 6, 6]])


def test_interpolate_walks_the_straight_line_between_codes():
    a = jnp.array([0, 0, 0, 0]).reshape(1, 2, 2, 1)
    b = jnp.array([4, 8, 12, 0]).reshape(1, 2, 2, 1)
    out = np.asarray(latent.interpolate(Toy(), {}, a, b, num_steps=5))
    assert out.shape == (1, 5, 1, 3, 1)
    np.testing.assert_allclose(out[0, :, 0, :, 0], np.outer([0, 0.25, 0.5, 0.75, 1], [4, 8, 12]))


def test_prior_samples_decode_the_same_codes():
    model = VAE(latent_dim=2, features=(8,), image_shape=(4, 4, 1))
    params = model.init(jax.random.key(0), jnp.zeros((1, 4, 4, 1), jnp.int32))
    means, samples = latent.prior_samples(model, params, jax.random.key(1), 6)
    assert means.shape == samples.shape == (6, 4, 4, 1)
    assert samples.dtype == jnp.int32 and set(np.unique(samples)) <= {0, 1}
    z = jax.random.normal(jax.random.split(jax.random.key(1))[0], (6, 2))
    np.testing.assert_allclose(means, model.apply(params, z, method=model.decode_mean), rtol=1e-6)


def _vae_4x4():
    model = VAE(latent_dim=2, features=(8,), image_shape=(4, 4, 1))
    return model, model.init(jax.random.key(0), jnp.zeros((1, 4, 4, 1), jnp.int32))


def test_complete_keeps_the_known_pixels_and_fills_the_rest_with_levels():
    model, params = _vae_4x4()
    x = jax.random.bernoulli(jax.random.key(2), 0.5, (8, 4, 4, 1)).astype(jnp.int32)
    known = np.zeros((8, 4, 4), bool)
    known[:, :2] = True  # top half given
    out = latent.complete(model, params, jax.random.key(3), x, known, num_steps=5)
    assert out.shape == x.shape and out.dtype == jnp.int32
    np.testing.assert_array_equal(out[:, :2], x[:, :2])
    assert set(np.unique(out[:, 2:])) <= {0, 1}
    np.testing.assert_array_equal(
        latent.complete(model, params, jax.random.key(3), x, np.ones_like(known)), x
    )
    with pytest.raises(ConfigError, match="num_steps=0 iterations"):  # else: zeros, silently
        latent.complete(model, params, jax.random.key(3), x, known, num_steps=0)


def test_complete_draws_unknown_pixels_from_the_decoder():
    # With every decoder kernel zero, p(x|z) = Bernoulli(sigmoid(last bias)) whatever z is, so
    # the chain's unknown pixels are independent draws with the decoder's mean.
    model, params = _vae_4x4()
    leaves = jax.tree_util.tree_flatten_with_path(params)[0]
    key = jax.random.key(4)
    new = {}
    for path, leaf in leaves:
        names = jax.tree_util.keystr(path)
        if "decoder" in names:
            key, sub = jax.random.split(key)
            leaf = jnp.zeros_like(leaf) if "kernel" in names else jax.random.normal(sub, leaf.shape)
        new[path] = leaf
    params = jax.tree_util.tree_map_with_path(lambda path, _: new[path], params)
    n = 4000
    x = jnp.ones((n, 4, 4, 1), jnp.int32)
    known = np.zeros((n, 4, 4), bool)
    out = latent.complete(model, params, jax.random.key(5), x, known, num_steps=3)
    expected = model.apply(params, jnp.zeros((1, 2)), method=model.decode_mean)[0]
    tolerance = 4 * np.sqrt(0.25 / n)
    np.testing.assert_allclose(out.mean(0), expected, atol=tolerance)
    assert np.ptp(np.asarray(expected)) > 0.2  # the check distinguishes pixels
