"""Naive autoregressive sampling: determinism, the model's distribution, completion."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxgen import models, sampling


@pytest.fixture(scope="module")
def tiny():
    model = models.PixelCNN(num_levels=4, num_layers=1, features=8, head_features=8)
    params = model.init(jax.random.key(0), jnp.zeros((1, 4, 4, 3), jnp.int32))
    return model, params


def _constant_logits_params(params, bias):
    """Zeroes every weight and sets the last bias, so every logit equals ``bias``."""
    zeroed = jax.tree.map(jnp.zeros_like, params)
    zeroed["params"]["logits"]["bias"] = jnp.tile(bias, 3)
    return zeroed


def test_same_key_same_samples_other_key_other_samples(tiny):
    model, params = tiny
    a = sampling.autoregressive_sample(model, params, jax.random.key(1), (2, 4, 4, 3))
    b = sampling.autoregressive_sample(model, params, jax.random.key(1), (2, 4, 4, 3))
    c = sampling.autoregressive_sample(model, params, jax.random.key(2), (2, 4, 4, 3))
    assert a.dtype == jnp.int32 and a.shape == (2, 4, 4, 3)
    assert (a >= 0).all() and (a < 4).all()
    np.testing.assert_array_equal(a, b)
    assert (a != c).any()


def test_samples_follow_the_model_distribution(tiny):
    model, params = tiny
    probs = np.array([0.1, 0.2, 0.3, 0.4])
    fixed = _constant_logits_params(params, jnp.log(jnp.asarray(probs)))
    x = sampling.autoregressive_sample(model, fixed, jax.random.key(3), (64, 4, 4, 3))
    freq = np.bincount(np.asarray(x).ravel(), minlength=4) / x.size  # 3072 draws
    np.testing.assert_allclose(freq, probs, atol=0.03)
    cold = sampling.autoregressive_sample(
        model, fixed, jax.random.key(3), (64, 4, 4, 3), temperature=0.05
    )
    assert (np.asarray(cold) == 3).mean() > 0.99, "low temperature picks the mode"


def test_complete_keeps_known_pixels_and_samples_the_rest(tiny):
    model, params = tiny
    images = jax.random.randint(jax.random.key(4), (3, 4, 4, 3), 0, 4)
    known = jnp.zeros((3, 4, 4), bool).at[:, :2].set(True)
    out = sampling.complete(model, params, jax.random.key(5), images, known)
    np.testing.assert_array_equal(out[:, :2], images[:, :2])
    assert (out[:, 2:] != images[:, 2:]).any()
    full = sampling.complete(model, params, jax.random.key(5), images, jnp.ones((3, 4, 4), bool))
    np.testing.assert_array_equal(full, images)


def test_bad_arguments_are_named(tiny):
    model, params = tiny
    with pytest.raises(ValueError, match="temperature"):
        sampling.autoregressive_sample(
            model, params, jax.random.key(0), (1, 4, 4, 3), temperature=0
        )
    with pytest.raises(ValueError, match="shape"):
        sampling.autoregressive_sample(model, params, jax.random.key(0), (4, 4, 3))
    with pytest.raises(ValueError, match="known"):
        sampling.complete(
            model,
            params,
            jax.random.key(0),
            jnp.zeros((1, 4, 4, 3), jnp.int32),
            jnp.ones((1, 4, 4), jnp.int32),
        )
    with pytest.raises(ValueError, match="method"):
        sampling.autoregressive_sample(model, params, jax.random.key(0), (1, 4, 4, 3), method="x")
