"""Autoregressive sampling: determinism, the model's distribution, completion, first pixel.

Sampler tests run with and without an enclosing ``jax.jit`` (``chex.with_jit`` /
``chex.without_jit``): inside a trace the argument checks see tracers.
"""

import chex
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.stats

from jaxgen import models, sampling
from jaxgen.validation import ConfigError

LEVELS = 4
# A chi-square goodness-of-fit test at this p-value: a correct sampler fails it with
# probability 1e-6 (the keys are fixed, so a pass is reproducible, not luck per run).
P_VALUE = 1e-6


@pytest.fixture(scope="module")
def tiny():
    model = models.PixelCNN(num_levels=LEVELS, num_layers=1, features=8, head_features=8)
    params = model.init(jax.random.key(0), jnp.zeros((1, 4, 4, 3), jnp.int32))
    return model, params


def _constant_logits(model, shape, probs):
    """Params of ``model`` whose logits equal log(probs) at every sub-pixel, whatever the input.

    Zeroes every weight and sets the last layer's bias.
    """
    params = model.init(jax.random.key(0), jnp.zeros(shape, jnp.int32))
    zeroed = jax.tree.map(jnp.zeros_like, params)
    zeroed["params"]["logits"]["bias"] = jnp.tile(jnp.log(jnp.asarray(probs)), shape[-1])
    return zeroed


class SamplerVariantsTest(chex.TestCase):
    """The sampler's contract with and without an enclosing jit (``chex.variants``)."""

    def setUp(self):
        super().setUp()
        self.model = models.PixelCNN(num_levels=LEVELS, num_layers=1, features=8, head_features=8)
        self.params = self.model.init(jax.random.key(0), jnp.zeros((1, 4, 4, 3), jnp.int32))

    @chex.variants(with_jit=True, without_jit=True)
    def test_same_key_same_samples_other_key_other_samples(self):
        model = self.model
        sample = self.variant(
            lambda p, k: sampling.autoregressive_sample(model, p, k, (2, 4, 4, 3))
        )
        a, b = sample(self.params, jax.random.key(1)), sample(self.params, jax.random.key(1))
        c = sample(self.params, jax.random.key(2))
        chex.assert_shape(a, (2, 4, 4, 3))
        chex.assert_type(a, jnp.int32)
        assert (a >= 0).all() and (a < LEVELS).all()
        chex.assert_trees_all_equal(a, b)
        assert (a != c).any()

    @chex.variants(with_jit=True, without_jit=True)
    def test_samples_follow_the_model_distribution(self):
        model = self.model
        probs = np.array([0.1, 0.2, 0.3, 0.4])
        fixed = _constant_logits(model, (1, 4, 4, 3), probs)
        sample = self.variant(
            lambda p, k, t: sampling.autoregressive_sample(
                model, p, k, (64, 4, 4, 3), temperature=t
            )
        )
        x = np.asarray(sample(fixed, jax.random.key(3), 1.0))
        counts = np.bincount(x.ravel(), minlength=LEVELS)  # 3072 draws
        assert scipy.stats.chisquare(counts, probs * x.size).pvalue > P_VALUE
        cold = np.asarray(sample(fixed, jax.random.key(3), 0.05))
        assert (cold == 3).mean() > 0.99, "low temperature picks the mode"

    @chex.variants(with_jit=True, without_jit=True)
    def test_complete_keeps_known_pixels_and_samples_the_rest(self):
        model = self.model
        images = jax.random.randint(jax.random.key(4), (3, 4, 4, 3), 0, LEVELS)
        known = jnp.zeros((3, 4, 4), bool).at[:, :2].set(True)
        complete = self.variant(lambda p, k, x, m: sampling.complete(model, p, k, x, m))
        out = complete(self.params, jax.random.key(5), images, known)
        chex.assert_trees_all_equal(out[:, :2], images[:, :2])
        assert (out[:, 2:] != images[:, 2:]).any()
        full = complete(self.params, jax.random.key(5), images, jnp.ones((3, 4, 4), bool))
        chex.assert_trees_all_equal(full, images)


TRACES = []  # the input shapes of every trace of _CountingLogits.__call__


class _CountingLogits(nn.Module):
    """Logits = a bias, whatever the input; records every trace of its ``__call__``."""

    num_levels: int = LEVELS

    @nn.compact
    def __call__(self, x):
        TRACES.append(x.shape)  # Python runs only while JAX traces
        bias = self.param("bias", nn.initializers.zeros, (self.num_levels,))
        return jnp.broadcast_to(bias, (*x.shape, self.num_levels))


def test_one_compile_serves_every_temperature():
    model = _CountingLogits()
    params = model.init(jax.random.key(0), jnp.zeros((1, 2, 2, 1), jnp.int32))
    TRACES.clear()
    sampling.autoregressive_sample(model, params, jax.random.key(0), (3, 2, 2, 1), temperature=1.0)
    assert TRACES, "the first call traces the model"
    compiled = len(TRACES)
    for temperature in (0.5, 2.0, jnp.float32(0.7)):
        sampling.autoregressive_sample(
            model, params, jax.random.key(0), (3, 2, 2, 1), temperature=temperature
        )
    assert len(TRACES) == compiled, "a new temperature re-traced the sampler"
    sampling.autoregressive_sample(model, params, jax.random.key(0), (5, 2, 2, 1))
    assert len(TRACES) > compiled, "a new shape must compile a new program"


def test_the_default_method_is_the_fastest_exact_one(tiny):
    model, params = tiny
    assert sampling.default_method(model) == "cached"
    assert sampling.default_method(_CountingLogits()) == "naive"
    key, shape = jax.random.key(6), (2, 3, 3, 3)
    chex.assert_trees_all_equal(
        sampling.autoregressive_sample(model, params, key, shape),
        sampling.autoregressive_sample(model, params, key, shape, method="cached"),
    )


def _first_pixel_counts(method, first_pixel, temperature=1.0, n=2000):
    """Counts of the first sub-pixel's levels in n samples of a model whose every logit
    strongly prefers level 0, and the fraction of the other sub-pixels at level 0."""
    model = models.PixelCNN(num_levels=LEVELS, num_layers=1, features=4, head_features=4)
    shape = (n, 2, 2, 1)
    params = _constant_logits(model, shape, [0.97, 0.01, 0.01, 0.01])
    x = sampling.autoregressive_sample(
        model,
        params,
        jax.random.key(7),
        shape,
        method=method,
        temperature=temperature,
        first_pixel=first_pixel,
    )
    x = np.asarray(x).reshape(n, -1)
    return np.bincount(x[:, 0], minlength=LEVELS), (x[:, 1:] == 0).mean()


@pytest.mark.parametrize("method", sampling.METHODS)
@pytest.mark.parametrize(
    "first_pixel,expected",
    [("uniform", [0.25, 0.25, 0.25, 0.25]), (np.array([0.1, 0.0, 0.5, 0.4]), [0.1, 0.0, 0.5, 0.4])],
    ids=["uniform", "vector"],
)
def test_first_pixel_frequencies(method, first_pixel, expected):
    counts, rest_at_mode = _first_pixel_counts(method, first_pixel)
    expected = np.asarray(expected) * counts.sum()
    assert counts[expected == 0].sum() == 0, "a level of probability 0 was drawn"
    seen = expected > 0
    assert scipy.stats.chisquare(counts[seen], expected[seen]).pvalue > P_VALUE, counts
    assert rest_at_mode > 0.95, "the other sub-pixels still follow the model"
    # The same test rejects the model's own first pixel (97 % level 0): it has power.
    model_counts = _first_pixel_counts(method, "model")[0][seen]
    rescaled = expected[seen] * model_counts.sum() / expected[seen].sum()
    assert scipy.stats.chisquare(model_counts, rescaled).pvalue < P_VALUE


def test_temperature_leaves_a_given_first_pixel_distribution_alone():
    probs = np.array([0.1, 0.2, 0.3, 0.4])
    counts, _ = _first_pixel_counts("cached", probs, temperature=0.2)
    assert scipy.stats.chisquare(counts, probs * counts.sum()).pvalue > P_VALUE


def test_first_pixel_marginal_counts_the_first_sub_pixel():
    images = np.zeros((4, 2, 2, 3), np.int32)
    images[:, 0, 0, 0] = [0, 1, 1, 3]
    images[:, 1, 1, :] = 2  # other pixels and channels do not count
    np.testing.assert_array_equal(
        sampling.first_pixel_marginal(images, LEVELS), [0.25, 0.5, 0.0, 0.25]
    )
    batches = [
        {"image": images[:2], "mask": np.array([True, True])},
        {"image": images[2:], "mask": np.array([False, True])},  # padding is not counted
    ]
    np.testing.assert_allclose(
        sampling.first_pixel_marginal(batches, LEVELS), [1 / 3, 1 / 3, 0.0, 1 / 3]
    )
    with pytest.raises(ConfigError, match=r"\[0, 4\)"):
        sampling.first_pixel_marginal(images + 1, LEVELS)
    with pytest.raises(ConfigError, match="no images"):
        sampling.first_pixel_marginal([], LEVELS)


def test_bad_arguments_are_config_errors_naming_the_argument(tiny):
    model, params = tiny
    key, shape = jax.random.key(0), (1, 4, 4, 3)

    def sample(**kwargs):
        return sampling.autoregressive_sample(
            model, params, key, kwargs.pop("shape", shape), **kwargs
        )

    with pytest.raises(ConfigError, match="temperature"):
        sample(temperature=0)
    with pytest.raises(ConfigError, match="shape"):
        sample(shape=(4, 4, 3))
    with pytest.raises(ConfigError, match="method"):
        sample(method="x")
    with pytest.raises(ConfigError, match="first_pixel='zipf'"):
        sample(first_pixel="zipf")
    with pytest.raises(ConfigError, match=r"num_levels=4 levels, shape \(4,\)"):
        sample(first_pixel=np.ones(3) / 3)
    with pytest.raises(ConfigError, match="sum to 1"):
        sample(first_pixel=np.array([0.5, 0.5, 0.5, -0.5]))
    with pytest.raises(ConfigError, match="sum to 1"):
        sample(first_pixel=np.full(4, 0.3))
    with pytest.raises(ConfigError, match="known"):
        sampling.complete(
            model, params, key, jnp.zeros(shape, jnp.int32), jnp.ones((1, 4, 4), jnp.int32)
        )
