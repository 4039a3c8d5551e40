"""PixelRNN: skew, causality in both colour layouts, receptive fields, training."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxgen import models
from jaxgen.nn import skew, unskew

from .ar_checks import dependency_matrix, fit, order, striped_batch
from .precision_checks import check_bfloat16_passes, check_bfloat16_trains_like_float32


def _model(variant, levels=4, features=12, head_features=48, num_layers=2):
    return models.PixelRNN(
        variant,
        num_levels=levels,
        num_layers=num_layers,
        features=features,
        head_features=head_features,
    )


def test_skew_shifts_row_r_right_by_r_and_unskew_inverts_it():
    x = jax.random.normal(jax.random.key(0), (2, 3, 5, 4))
    s = skew(x)
    assert s.shape == (2, 3, 7, 4)
    expected = np.zeros(s.shape, np.float32)
    for r in range(3):
        expected[:, r, r : r + 5] = x[:, r]
    np.testing.assert_array_equal(s, expected)
    np.testing.assert_array_equal(unskew(s, 5), x)


def test_defaults_are_the_papers_cifar_sizes():
    m = models.PixelRNN()
    assert (m.num_layers, m.features, m.num_levels) == (12, 128, 256)


@pytest.mark.parametrize("variant", ["row_lstm", "diagonal_bilstm"])
@pytest.mark.parametrize("channels,levels", [(1, 2), (3, 256)])
def test_pixelrnn_is_causal(variant, channels, levels):
    model = _model(variant, levels)
    x = jax.random.randint(jax.random.key(0), (1, 5, 5, channels), 0, levels)
    params = jax.jit(model.init)(jax.random.key(1), x)
    assert jax.eval_shape(model.apply, params, x).shape == (1, 5, 5, channels, levels)
    changed = dependency_matrix(model, params, x)
    n = changed.shape[0]
    assert not np.tril(changed).any(), "a logit depends on its own or a later sub-pixel"
    assert changed[: n - 1].any(axis=1).all(), "every sub-pixel but the last is used"


@pytest.mark.parametrize("channels", [1, 3])
def test_diagonal_bilstm_sees_every_earlier_sub_pixel(channels):
    model = _model("diagonal_bilstm", num_layers=1)
    x = jax.random.randint(jax.random.key(0), (1, 6, 6, channels), 0, 4)
    changed = dependency_matrix(model, jax.jit(model.init)(jax.random.key(1), x), x)
    n = changed.shape[0]
    np.testing.assert_array_equal(changed, np.triu(np.ones((n, n), bool), k=1))


def test_diagonal_bilstm_sees_the_last_pixel_of_the_row_above():
    """The case the virtual column fixes: (r, W-1) reaches the start of row r + 1."""
    model = _model("diagonal_bilstm", levels=2, num_layers=1)
    x = jax.random.randint(jax.random.key(0), (1, 3, 9, 1), 0, 2)
    changed = dependency_matrix(model, jax.jit(model.init)(jax.random.key(1), x), x)
    t = order(3, 9, 1)
    assert changed[t[0, 8, 0], t[1, :, 0]].all()


def test_row_lstm_sees_a_triangle():
    """Each row up widens the field by one column each side; nothing is unbounded.

    Right edge: the 7x7 first layer reaches 3 columns right in the row above, and
    every further row up adds one (state-to-state conv). Left edge: the first
    layer reaches 3 columns left and each layer's 1x3 input-to-state conv one
    more, plus one per row up.
    """
    h = w = 7
    num_layers = 2
    model = _model("row_lstm", levels=2, num_layers=num_layers)
    x = jax.random.randint(jax.random.key(0), (1, h, w, 1), 0, 2)
    changed = dependency_matrix(model, jax.jit(model.init)(jax.random.key(1), x), x)
    rows, cols = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
    for i, j in [(6, 0), (6, 3), (4, 2), (3, 6), (6, 6)]:
        seen = changed[:, order(h, w, 1)[i, j, 0]].reshape(h, w)
        up = i - rows
        left_edge = cols >= j - up - 3 - num_layers
        above = (rows < i) & left_edge & (cols <= j + up + 2)
        expected = above | ((rows == i) & left_edge & (cols < j))
        np.testing.assert_array_equal(seen, expected, err_msg=f"output pixel {(i, j)}")


@pytest.mark.parametrize("variant", ["row_lstm", "diagonal_bilstm"])
def test_loss_falls(variant):
    x = striped_batch(jax.random.key(0), 4, 6)
    curve = fit(_model(variant, levels=2, features=8, head_features=16), x, steps=12)
    assert curve[-1] < 0.5 * curve[0], curve


def test_bad_variant_is_rejected():
    with pytest.raises(ValueError, match="variant"):
        models.PixelRNN("column_lstm").init(jax.random.key(0), jnp.zeros((1, 4, 4, 1), jnp.int32))


def _pixelrnn(variant: str, dtype: str) -> models.PixelRNN:
    return models.PixelRNN(
        variant, num_levels=2, num_layers=2, features=8, head_features=16, dtype=dtype
    )


def test_bfloat16_trains_like_float32():
    # One variant: the Diagonal BiLSTM (skews, two directions, the most machinery). The
    # Row LSTM's bf16 layer is checked by test_bfloat16_is_causal_and_cached_equals_full.
    check_bfloat16_trains_like_float32(functools.partial(_pixelrnn, "diagonal_bilstm"))


@pytest.mark.parametrize("variant", ["row_lstm", "diagonal_bilstm"])
def test_bfloat16_is_causal_and_cached_equals_full(variant):
    check_bfloat16_passes(_pixelrnn(variant, "bfloat16"), (2, 4, 5, 1), recurrence_in_float32=True)
