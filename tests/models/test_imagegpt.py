"""ImageGPT: causality over sub-pixels, normalisation, cached passes and samples, bfloat16,
bad arguments and its config."""

import itertools

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from experiments.configs import pixelcnn as pixelcnn_config
from jaxgen import losses, models
from jaxgen.models import registry
from jaxgen.validation import ConfigError

from . import precision_checks
from .ar_checks import cached_logits, check_cached_samples_equal_naive, dependency_matrix


def _model(levels: int, dtype: str = "float32", num_layers: int = 2) -> models.ImageGPT:
    return models.ImageGPT(levels, num_layers, num_heads=2, features=16, dtype=dtype)


def _params(model, shape, scale=0.3):
    """Params of N(0, scale^2) entries (the output matrix starts at zero: uniform logits).

    Drawn with NumPy: the compiled ``init`` (a random generator per leaf) costs more
    compile time than the tests' passes.
    """
    abstract = jax.eval_shape(model.init, jax.random.key(0), jnp.zeros(shape, jnp.int32))
    rng = np.random.default_rng(0)
    return jax.tree.map(
        lambda a: jnp.asarray(scale * rng.standard_normal(a.shape), a.dtype), abstract
    )


@pytest.mark.parametrize("channels,levels", [(1, 2), (3, 256)])
def test_logits_depend_on_every_earlier_sub_pixel_and_nothing_else(channels, levels):
    model = _model(levels)
    shape = (1, 3, 3, channels)
    x = jax.random.randint(jax.random.key(1), shape, 0, levels)
    changed = dependency_matrix(model, _params(model, shape), x)
    assert not np.tril(changed).any()  # nothing at or before the changed sub-pixel moves
    assert changed[np.triu_indices(len(changed), k=1)].all()  # no blind spot


def test_the_probabilities_of_all_binary_3x3_images_sum_to_1():
    model = _model(2)
    images = jnp.array(list(itertools.product([0, 1], repeat=9)), jnp.int32).reshape(512, 3, 3, 1)
    params = _params(model, (1, 3, 3, 1), scale=1.0)
    log_p = -losses.autoregressive_nll(jax.jit(model.apply)(params, images), images)
    np.testing.assert_allclose(np.exp(np.asarray(log_p, np.float64)).sum(), 1.0, rtol=1e-5)
    with pytest.raises(ConfigError, match="9 sub-pixels"):  # wpe is per sub-pixel
        model.apply(params, jnp.zeros((1, 4, 4, 1), jnp.int32))


@pytest.mark.parametrize("shape,levels", [((3, 4, 4, 1), 2), ((2, 3, 3, 3), 256)])
def test_cached_pass_and_samples_equal_the_naive_ones(shape, levels):
    model = _model(levels)
    params = _params(model, shape)
    x = jax.random.randint(jax.random.key(1), shape, 0, levels)
    full = jax.jit(model.apply)(params, x)
    chex.assert_trees_all_close(cached_logits(model, params, x), full, atol=1e-5)
    check_cached_samples_equal_naive(model, params, shape)


def test_bfloat16_passes_and_trains_like_float32():
    precision_checks.check_bfloat16_passes(_model(4, "bfloat16", num_layers=1), (2, 3, 3, 3))
    # The shared check's 20 steps on striped 8x8 images: 44.4 -> 5.0 nats (bf16: 4.7) with
    # one layer of 4 heads x 8 features; two layers (or 2 heads x 16) learn slower (> 7).
    precision_checks.check_bfloat16_trains_like_float32(
        lambda dtype: models.ImageGPT(2, num_layers=1, num_heads=4, features=32, dtype=dtype)
    )


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"features": 10, "num_heads": 4}, "features=10 must be divisible by num_heads=4"),
        ({"num_heads": 0}, "num_heads=0"),
        ({"dtype": "float16"}, "dtype='float16'"),
    ],
)
def test_bad_arguments_are_named(kwargs, match):
    model = models.ImageGPT(num_levels=2, num_layers=1, **{"features": 8, **kwargs})
    with pytest.raises(ConfigError, match=match):
        model.init(jax.random.key(0), jnp.zeros((1, 2, 2, 1), jnp.int32))


def test_configs_build_and_order_variants():
    config = pixelcnn_config.get_config("tiny,imagegpt")
    assert config.to_dict() == pixelcnn_config.get_config("imagegpt,tiny").to_dict()
    assert config.model.name == "imagegpt" and config.num_steps < 100
    model = registry.build_model(config.model, config.num_levels)
    x = jnp.zeros((1, 28, 28, 1), jnp.int32)
    logits, _ = jax.eval_shape(model.init_with_output, jax.random.key(0), x)
    assert logits.shape == (1, 28, 28, 1, 2)
    paper = pixelcnn_config.get_config("imagegpt")
    assert (paper.model.num_layers, paper.model.num_heads, paper.model.features) == (8, 2, 64)
    assert (paper.batch_size, paper.learning_rate) == (64, 5e-3)
    assert pixelcnn_config.get_config("imagegpt,cpu").model.name == "imagegpt"
