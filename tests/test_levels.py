"""Levels <-> [-1, 1] and [0, 1]: exact values, inverses, the array type kept."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxgen import levels


@pytest.mark.parametrize("num_levels", [2, 4, 256])
def test_signed_scale_ends_and_round_trip(num_levels):
    x = np.arange(num_levels, dtype=np.int32)
    y = levels.to_signed(x, num_levels)
    assert y.dtype == np.float32 and isinstance(y, np.ndarray)
    assert (y[0], y[-1]) == (-1.0, 1.0)
    np.testing.assert_allclose(np.diff(y), 2.0 / (num_levels - 1), rtol=0, atol=1e-6)  # float32
    np.testing.assert_array_equal(levels.from_signed(y, num_levels), x)


def test_exact_values_by_hand():
    x = jnp.array([0, 1, 2, 3])
    chex.assert_trees_all_close(levels.to_signed(x, 4), jnp.array([-1.0, -1 / 3, 1 / 3, 1.0]))
    chex.assert_trees_all_close(levels.to_unit(x, 4), jnp.array([0.0, 1 / 3, 2 / 3, 1.0]))
    # from_signed rounds to the nearest level and clips outside [-1, 1].
    y = jnp.array([-3.0, -0.4, -0.3, 0.2, 0.4, 5.0])  # (y + 1) * 1.5 = -3, .9, 1.05, 1.8, 2.1, 9
    chex.assert_trees_all_equal(levels.from_signed(y, 4), jnp.array([0, 1, 1, 2, 2, 3], jnp.int32))


def test_jax_in_jax_out_and_traceable():
    x = jnp.array([[0, 255]])
    y = jax.jit(levels.to_signed, static_argnums=1)(x, 256)
    assert isinstance(y, jax.Array) and y.dtype == jnp.float32
    chex.assert_trees_all_equal(jax.jit(levels.from_signed, static_argnums=1)(y, 256), x)
