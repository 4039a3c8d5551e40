"""PixelSNAIL: causality with no blind spot, normalisation, cached pass and samples, bfloat16,
training, bad arguments."""

import itertools

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxgen import losses, models
from jaxgen.validation import ConfigError

from .ar_checks import (
    cached_logits,
    check_cached_samples_equal_naive,
    dependency_matrix,
    fit,
    striped_batch,
)
from .precision_checks import BF16_LOGIT_ATOL, conv_dtypes, leaks

# The scale of the random params. At 0.3 (with the initial kernels) the two-block net
# amplified rounding: full and cached logits differed by ~1e-4 (identical when computed in
# float64); at 0.2 by ~1e-6.
NOISE = 0.2


def _model(levels: int = 2, **kwargs) -> models.PixelSNAIL:
    """Two blocks, two heads, every channel group of width >= 2 for C = 3."""
    sizes = dict(
        num_blocks=2,
        features=6,
        num_residual=1,
        key_size=2,
        value_size=2,
        num_heads=2,
        head_features=6,
    )
    return models.PixelSNAIL(num_levels=levels, **sizes | kwargs)


def _params(model: models.PixelSNAIL, shape: tuple[int, ...]):
    """N(0, NOISE^2) params (non-zero biases) from the shapes alone, drawn by NumPy: no
    compiled init or random program, which would cost seconds per model."""
    shapes = jax.eval_shape(model.init, jax.random.key(0), jnp.zeros(shape, jnp.int32))
    rng = np.random.default_rng(0)
    return jax.tree.map(lambda s: jnp.asarray(NOISE * rng.normal(size=s.shape), s.dtype), shapes)


@pytest.mark.parametrize("channels,levels,size", [(1, 2, 4), (3, 256, 3)])
def test_pixelsnail_is_causal_and_sees_every_earlier_sub_pixel(
    channels, levels, size, conv_formulation
):
    """Logit t depends on exactly the sub-pixels before t: none at or after it (strict
    attention, masks A/B, grouped queries), all before it (the keys hold the image)."""
    model = _model(levels)
    x = jax.random.randint(jax.random.key(1), (1, size, size, channels), 0, levels)
    params = _params(model, x.shape)
    changed = dependency_matrix(model, params, x)
    n = changed.shape[0]
    np.testing.assert_array_equal(changed, np.triu(np.ones((n, n), bool), k=1))


def test_the_probabilities_of_all_binary_3x3_images_sum_to_1():
    images = jnp.array(list(itertools.product([0, 1], repeat=9)), jnp.int32).reshape(512, 3, 3, 1)
    model = _model()
    params = _params(model, (1, 3, 3, 1))
    log_p = -losses.autoregressive_nll(jax.jit(model.apply)(params, images), images)
    total = np.exp(np.asarray(log_p, np.float64)).sum()
    np.testing.assert_allclose(total, 1.0, atol=1e-5)


@pytest.mark.parametrize("shape", [(2, 4, 5, 1), (2, 3, 4, 3)])  # non-square: no swapped axes
def test_cached_logits_and_samples_equal_the_full_pass(shape):
    """Teacher-forced cached logits equal the full pass; sampling calls ``step`` once per
    channel, so with C = 3 it also checks that a pixel's repeated steps are harmless."""
    model = _model(levels=4)
    params = _params(model, shape)
    x = jax.random.randint(jax.random.key(1), shape, 0, 4)
    full = jax.jit(model.apply)(params, x)
    chex.assert_trees_all_close(cached_logits(model, params, x), full, atol=1e-5, rtol=1e-5)
    if shape[-1] == 1:
        return  # the samples: with C = 3 only (compiling the samplers costs seconds)
    check_cached_samples_equal_naive(model, params, shape)


def test_bfloat16_computes_in_bfloat16_is_causal_and_cached_equals_full():
    """``precision_checks.check_bfloat16_passes`` without its samples (they compile two
    more programs; the float32 test compares the samplers)."""
    model = _model(num_blocks=1, dtype="bfloat16")
    x = jax.random.randint(jax.random.key(1), (1, 3, 4, 1), 0, 2)
    params = _params(model, x.shape)
    assert conv_dtypes(model, params, x) == {"bfloat16"}
    full = jax.jit(model.apply)(params, x)
    assert full.dtype == jnp.float32
    assert not leaks(model, params, x).any()
    np.testing.assert_allclose(cached_logits(model, params, x), full, atol=BF16_LOGIT_ATOL)


def test_loss_falls():
    x = striped_batch(jax.random.key(0), 4, 5)
    curve = fit(_model(num_blocks=1, features=8), x, steps=12)
    assert curve[-1] < 0.5 * curve[0], curve


@pytest.mark.parametrize(
    "kwargs,match",
    [({"key_size": 0}, "key_size=0"), ({"dtype": "float16"}, "dtype='float16'")],
)
def test_bad_arguments_are_named(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        _model(**kwargs).init(jax.random.key(0), jnp.zeros((1, 3, 3, 1), jnp.int32))
