"""apply_in_batches: equal batches (one compile), order kept, pytrees, errors."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxgen.batching import apply_in_batches


def test_batches_are_equal_and_the_results_are_in_order():
    x, y = np.arange(7 * 2).reshape(7, 2), np.arange(7) * 10
    calls = []

    def fn(a, b):
        calls.append((a.shape, b.shape))
        return {"sum": a.sum(axis=1) + b, "first": a[:, :1]}

    out = apply_in_batches(fn, x, y, batch_size=3)
    assert calls == [((3, 2), (3,))] * 3  # 7 examples: the last batch padded to 3
    np.testing.assert_array_equal(out["sum"], x.sum(axis=1) + y)
    np.testing.assert_array_equal(out["first"], x[:, :1])
    assert isinstance(out["sum"], np.ndarray)


def test_a_jitted_function_compiles_once():
    traces = []

    @jax.jit
    def fn(a):
        traces.append(a.shape)
        return jnp.square(a)

    out = apply_in_batches(fn, np.arange(10.0), batch_size=4)
    np.testing.assert_array_equal(out, np.arange(10.0) ** 2)
    assert traces == [(4,)]


def test_fewer_examples_than_a_batch_are_one_call():
    calls = []
    apply_in_batches(lambda a: calls.append(len(a)) or a, np.ones(3), batch_size=500)
    assert calls == [3]


def test_bad_inputs_are_refused():
    with pytest.raises(
        ValueError, match="share one non-empty leading axis; got lengths \\[3, 2\\]"
    ):
        apply_in_batches(lambda a, b: a, np.ones(3), np.ones(2))
    with pytest.raises(ValueError, match="non-empty"):
        apply_in_batches(lambda a: a, np.ones(0))
    with pytest.raises(ValueError, match="batch_size=0"):
        apply_in_batches(lambda a: a, np.ones(3), batch_size=0)
    with pytest.raises(ValueError, match="at least one array"):
        apply_in_batches(lambda: 0)
