"""Cached sampling: the incremental pass reproduces the full pass, and its samples."""

import chex
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxgen import models, sampling, timing
from jaxgen.validation import ConfigError

from .models.ar_checks import cached_logits, with_noise

LEVELS = 4
MODELS = {
    "pixelcnn": models.PixelCNN(num_levels=LEVELS, num_layers=2, features=6, head_features=6),
    "row_lstm": models.PixelRNN(
        "row_lstm", num_levels=LEVELS, num_layers=2, features=6, head_features=6
    ),
    "diagonal_bilstm": models.PixelRNN(
        "diagonal_bilstm", num_levels=LEVELS, num_layers=2, features=6, head_features=6
    ),
    "gated": models.GatedPixelCNN(
        num_levels=LEVELS, num_layers=2, features=6, kernel_size=3, head_features=6
    ),
    "gated_conditional": models.GatedPixelCNN(
        num_levels=LEVELS, num_layers=2, features=6, kernel_size=3, head_features=6, num_classes=3
    ),
}
SHAPES = {"gray": (2, 5, 6, 1), "rgb": (2, 4, 5, 3)}  # non-square, to catch swapped axes


def _labels(model):
    return None if getattr(model, "num_classes", None) is None else jnp.array([0, 2])


@pytest.fixture(scope="module", params=[(m, s) for m in MODELS for s in SHAPES], ids=str)
def setup(request):
    name, layout = request.param
    model, shape = MODELS[name], SHAPES[layout]
    labels = _labels(model)
    extra = () if labels is None else (labels,)

    # One compiled program: run op by op, the init and the noise compiled every
    # operation separately (17-28 s of set-up for some models).
    @jax.jit
    def init(key, x, extra):
        return with_noise(model.init(key, x, *extra))

    params = init(jax.random.key(0), jnp.zeros(shape, jnp.int32), extra)
    return model, params, shape, labels


def test_cached_logits_equal_the_full_pass(setup, conv_formulation):
    """The full pass with either formulation of the convolutions (the cached pass has its
    own) gives the cached logits."""
    model, params, shape, labels = setup
    x = jax.random.randint(jax.random.key(1), shape, 0, LEVELS)
    extra = () if labels is None else (labels,)
    full = model.apply(params, x, *extra)
    cached = cached_logits(model, params, x, labels)
    chex.assert_trees_all_close(cached, full, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("first_pixel", ["model", "uniform", "vector"])
def test_cached_samples_equal_naive_samples(setup, first_pixel):
    model, params, shape, labels = setup
    key = jax.random.key(2)
    if first_pixel == "vector":
        first_pixel = np.array([0.0, 0.0, 0.0, 1.0])  # level 3 surely: visible in the samples
    naive, cached, default = (
        sampling.autoregressive_sample(
            model, params, key, shape, method=method, labels=labels, first_pixel=first_pixel
        )
        for method in ("naive", "cached", None)
    )
    chex.assert_trees_all_equal(cached, naive)
    chex.assert_trees_all_equal(default, cached)  # the default method is the cached one
    assert len(np.unique(naive)) > 1
    if isinstance(first_pixel, np.ndarray):
        assert (naive[:, 0, 0, 0] == 3).all()


def test_cached_completion_equals_naive_completion(setup):
    model, params, shape, labels = setup
    images = jax.random.randint(jax.random.key(3), shape, 0, LEVELS)
    known = jax.random.bernoulli(jax.random.key(4), 0.5, shape[:3]).at[:, 0].set(True)
    key = jax.random.key(5)
    naive = sampling.complete(model, params, key, images, known, method="naive", labels=labels)
    cached = sampling.complete(model, params, key, images, known, method="cached", labels=labels)
    chex.assert_trees_all_equal(cached, naive)
    np.testing.assert_array_equal(np.asarray(cached)[known], np.asarray(images)[known])


def test_class_conditional_samples_depend_on_the_label():
    model = MODELS["gated_conditional"]
    shape = SHAPES["gray"]
    params = model.init(jax.random.key(0), jnp.zeros(shape, jnp.int32), jnp.array([0, 0]))
    # Strong label embeddings, so that the tiny model's samples visibly follow the label.
    params = jax.tree_util.tree_map_with_path(
        lambda path, v: 10 * v if "label" in jax.tree_util.keystr(path) else v, params
    )
    key = jax.random.key(6)

    def sample(labels):
        return sampling.autoregressive_sample(
            model, params, key, shape, method="cached", labels=jnp.array(labels)
        )

    same, other = sample([0, 1]), sample([0, 2])
    np.testing.assert_array_equal(same[0], other[0])
    assert (same[1] != other[1]).any()


def test_labels_are_checked():
    model = MODELS["gated_conditional"]
    params = model.init(jax.random.key(0), jnp.zeros((1, 3, 3, 1), jnp.int32), jnp.array([0]))
    key, shape = jax.random.key(0), (1, 3, 3, 1)
    with pytest.raises(ConfigError, match="labels="):
        sampling.autoregressive_sample(model, params, key, shape)
    with pytest.raises(ConfigError, match=r"\[0, 3\)"):
        sampling.autoregressive_sample(model, params, key, shape, labels=jnp.array([3]))
    with pytest.raises(ConfigError, match="int \\[B\\]"):
        sampling.autoregressive_sample(model, params, key, shape, labels=jnp.array([0, 1]))
    plain = MODELS["pixelcnn"]
    plain_params = plain.init(key, jnp.zeros(shape, jnp.int32))
    with pytest.raises(ConfigError, match="not class-conditional"):
        sampling.autoregressive_sample(plain, plain_params, key, shape, labels=jnp.array([0]))


class _NoCache(nn.Module):
    num_levels: int = 2

    @nn.compact
    def __call__(self, x):
        return jnp.zeros((*x.shape, self.num_levels)) + self.param("b", nn.initializers.zeros, ())


def test_cached_needs_the_incremental_methods():
    model = _NoCache()
    params = model.init(jax.random.key(0), jnp.zeros((1, 2, 2, 1), jnp.int32))
    with pytest.raises(ConfigError, match="naive"):
        sampling.autoregressive_sample(
            model, params, jax.random.key(0), (1, 2, 2, 1), method="cached"
        )


def test_timing_helper_times_both_methods_with_the_same_key():
    model = MODELS["pixelcnn"]
    shape = (1, 3, 3, 1)
    params = model.init(jax.random.key(0), jnp.zeros(shape, jnp.int32))
    timings = timing.time_sampling(model, params, shape, repeats={"cached": 2})
    assert set(timings) == {"naive", "cached"}
    for t in timings.values():
        assert t.compile_s > 0 and t.sample_s > 0 and t.images_per_s == 1 / t.sample_s
    np.testing.assert_array_equal(timings["naive"].samples, timings["cached"].samples)
