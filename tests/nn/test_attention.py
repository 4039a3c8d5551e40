"""Causal attention: the softmax over allowed keys, worked out in NumPy, and its masks."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxgen.nn.attention import attend, causal_mask, positions_mask, write_positions


def _reference(q, k, v, strict):
    """Loop over positions: softmax of q.k / sqrt(d) over keys s < t (or <= t)."""
    q, k, v = (np.asarray(a, np.float64) for a in (q, k, v))
    out = np.zeros(q.shape[:3] + v.shape[-1:])
    for t in range(q.shape[1]):
        allowed = t if strict else t + 1
        if allowed == 0:
            continue
        logits = np.einsum("bhd,bkhd->bhk", q[:, t], k[:, :allowed]) / np.sqrt(q.shape[-1])
        weights = np.exp(logits - logits.max(-1, keepdims=True))
        weights /= weights.sum(-1, keepdims=True)
        out[:, t] = np.einsum("bhk,bkhd->bhd", weights, v[:, :allowed])
    return out


@pytest.fixture
def qkv():
    k1, k2, k3 = jax.random.split(jax.random.key(0), 3)
    return (
        jax.random.normal(k1, (2, 6, 2, 3)),
        jax.random.normal(k2, (2, 6, 2, 3)),
        jax.random.normal(k3, (2, 6, 2, 4)),
    )


@pytest.mark.parametrize("strict", [True, False])
def test_attend_equals_the_softmax_over_allowed_keys(qkv, strict):
    q, k, v = qkv
    out = attend(q, k, v, causal_mask(6, strict))
    np.testing.assert_allclose(out, _reference(q, k, v, strict), atol=1e-5)


def test_the_first_position_of_strict_attention_is_zero(qkv):
    q, k, v = qkv
    assert np.all(np.asarray(attend(q, k, v, causal_mask(6, strict=True)))[:, 0] == 0)


@pytest.mark.parametrize("strict", [True, False])
def test_later_keys_and_values_change_nothing_not_even_by_rounding(qkv, strict):
    q, k, v = qkv
    t = 3
    later = slice(t + 1 if not strict else t, None)
    k2 = k.at[:, later].set(100.0)
    v2 = v.at[:, later].set(-7.0)
    a = attend(q, k, v, causal_mask(6, strict))[:, : t + 1]
    b = attend(q, k2, v2, causal_mask(6, strict))[:, : t + 1]
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("strict", [True, False])
def test_a_cached_step_equals_the_full_pass(qkv, strict):
    q, k, v = qkv
    full = attend(q, k, v, causal_mask(6, strict))
    queries = jnp.array([2, 3])
    step = attend(q[:, 2:4], k, v, positions_mask(queries, 6, strict))
    np.testing.assert_allclose(step, full[:, 2:4], atol=1e-6)


def test_write_positions_writes_a_traced_slice():
    cache = jnp.zeros((1, 5, 2))
    out = jax.jit(write_positions)(cache, jnp.int32(2), jnp.ones((1, 2, 2)))
    np.testing.assert_array_equal(out[0, :, 0], [0, 0, 1, 1, 0])


def test_write_positions_takes_an_int32_position_under_x64():
    with jax.enable_x64(True):
        cache = jnp.zeros((1, 4, 2))
        out = jax.jit(write_positions)(cache, jnp.int32(1), jnp.ones((1, 1, 2)))
    np.testing.assert_array_equal(out[0, :, 0], [0, 1, 0, 0])
