"""Autoregressive NLL and bits/dim on hand-worked cases; properties of all losses."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from jaxgen import losses


def test_uniform_logits_give_log_levels_per_dimension():
    x = jnp.zeros((3, 4, 5, 3), jnp.int32)
    logits = jnp.zeros((*x.shape, 256))
    nll = losses.autoregressive_nll(logits, x)
    np.testing.assert_allclose(nll, 4 * 5 * 3 * math.log(256), rtol=1e-6)
    np.testing.assert_allclose(losses.bits_per_dim(nll, 4 * 5 * 3), 8.0, rtol=1e-6)


def test_nll_on_a_case_worked_by_hand():
    # Two binary sub-pixels: p(x1 = 1) = sigmoid(2), p(x2 = 0) = 1 - sigmoid(-1) = sigmoid(1).
    logits = jnp.array([[[[[0.0, 2.0]], [[0.0, -1.0]]]]])  # [1, 1, 2, 1, 2]
    x = jnp.array([[[[1], [0]]]])
    expected = -math.log(1 / (1 + math.exp(-2))) - math.log(1 / (1 + math.exp(-1)))
    np.testing.assert_allclose(losses.autoregressive_nll(logits, x), [expected], rtol=1e-6)


def test_nll_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="levels axis"):
        losses.autoregressive_nll(jnp.zeros((1, 2, 2, 1, 2)), jnp.zeros((1, 2, 2, 3), jnp.int32))


# A few fixed shapes (every size-1 axis, mixed sizes) and level counts: each new
# shape compiles anew, so random shapes spent most of the test compiling.
_NLL_SHAPES = [(1, 1, 1, 1), (2, 3, 1, 4), (4, 1, 4, 3), (3, 4, 2, 1)]
_autoregressive_nll = jax.jit(losses.autoregressive_nll)


@settings(max_examples=30, deadline=None)
@given(
    shape=st.sampled_from(_NLL_SHAPES),
    levels=st.sampled_from([2, 3, 7]),
    seed=st.integers(0, 2**16),
    scale=st.floats(0.0, 100.0),
)
def test_autoregressive_nll_is_finite_and_non_negative(shape, levels, seed, scale):
    rng = np.random.default_rng(seed)
    logits = jnp.asarray(scale * rng.standard_normal((*shape, levels)), jnp.float32)
    x = jnp.asarray(rng.integers(0, levels, shape))
    nll = _autoregressive_nll(logits, x)
    assert nll.shape == (shape[0],)
    assert np.isfinite(nll).all() and (np.asarray(nll) >= 0).all()


@settings(max_examples=30, deadline=None)
@given(
    real=arrays(np.float32, st.integers(1, 8), elements=st.floats(-100, 100, width=32)),
    fake=arrays(np.float32, st.integers(1, 8), elements=st.floats(-100, 100, width=32)),
)
def test_gan_losses_are_finite_scalars(real, fake):
    d = losses.gan_discriminator_loss(jnp.asarray(real), jnp.asarray(fake))
    ns = losses.gan_generator_loss(jnp.asarray(fake), kind="non_saturating")
    mm = losses.gan_generator_loss(jnp.asarray(fake), kind="minimax")
    assert d.shape == ns.shape == mm.shape == ()
    assert np.isfinite([d, ns, mm]).all()
    assert d >= 0 and ns >= 0 and mm <= 0


@settings(max_examples=30, deadline=None)
@given(
    mean=arrays(np.float32, (3, 4), elements=st.floats(-10, 10, width=32)),
    logvar=arrays(np.float32, (3, 4), elements=st.floats(-10, 10, width=32)),
)
def test_gaussian_kl_is_non_negative(mean, logvar):
    kl = losses.gaussian_kl(jnp.asarray(mean), jnp.asarray(logvar))
    assert kl.shape == (3,)
    assert np.isfinite(kl).all() and (np.asarray(kl) >= -1e-4).all()


@settings(max_examples=30, deadline=None)
@given(lw=arrays(np.float32, (5, 3), elements=st.floats(-1e3, 1e3, width=32)))
def test_iwae_bound_lies_between_mean_and_max(lw):
    bound = np.asarray(losses.iwae_bound(jnp.asarray(lw)))
    assert bound.shape == (3,)
    assert (bound >= lw.mean(0) - 1e-2).all() and (bound <= lw.max(0) + 1e-3).all()
