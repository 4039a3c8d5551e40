"""Gated PixelCNN: gate masks, causality, no blind spot, class conditioning, training."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxgen import models
from jaxgen.nn import channel_groups, gate_mask

from .ar_checks import dependency_matrix, fit, order, striped_batch
from .precision_checks import check_bfloat16_passes, check_bfloat16_trains_like_float32


def _model(levels=4, num_layers=2, features=24, head_features=48, num_classes=None, kernel_size=3):
    return models.GatedPixelCNN(
        num_levels=levels,
        num_layers=num_layers,
        features=features,
        kernel_size=kernel_size,
        head_features=head_features,
        num_classes=num_classes,
    )


def test_gate_mask_gives_every_gate_the_group_of_its_unit():
    mask = gate_mask((1, 3), 6, 6, 2, 3, "B")  # 2 gates x 6 units, 3 colour groups
    centre = mask[0, 1]  # [F_in, 2F]
    groups = channel_groups(6, 3)
    for gate in range(2):
        block = centre[:, gate * 6 : (gate + 1) * 6]
        np.testing.assert_array_equal(block, groups[:, None] <= groups[None, :])
    assert mask[0, 0].all() and not mask[0, 2].any()


@pytest.mark.parametrize(
    "channels,levels,kernel_size",
    [(1, 2, 3), (3, 256, 3), (1, 2, 5)],  # kernel 5: the cpu config's (3x5 and 1x3 taps)
)
def test_gated_pixelcnn_is_causal(channels, levels, kernel_size, conv_formulation):
    model = _model(levels, kernel_size=kernel_size)
    x = jax.random.randint(jax.random.key(0), (1, 5, 5, channels), 0, levels)
    params = jax.jit(model.init)(jax.random.key(1), x)
    assert jax.eval_shape(model.apply, params, x).shape == (1, 5, 5, channels, levels)
    changed = dependency_matrix(model, params, x)
    n = changed.shape[0]
    assert not np.tril(changed).any(), "a logit depends on its own or a later sub-pixel"
    assert changed[: n - 1].any(axis=1).all(), "every sub-pixel but the last is used"


def test_class_conditional_model_is_causal():
    model = _model(num_classes=3)
    x = jax.random.randint(jax.random.key(0), (1, 5, 5, 3), 0, 4)
    params = model.init(jax.random.key(1), x, jnp.array([1]))
    changed = dependency_matrix(model, params, x, jnp.array([2]))
    assert not np.tril(changed).any()


@pytest.mark.parametrize("channels", [1, 3])
def test_gated_pixelcnn_sees_every_earlier_sub_pixel(channels):
    """No blind spot: with enough layers to reach across a 6x6 image, all is seen."""
    model = _model(num_layers=5)
    x = jax.random.randint(jax.random.key(0), (1, 6, 6, channels), 0, 4)
    changed = dependency_matrix(model, jax.jit(model.init)(jax.random.key(1), x), x)
    n = changed.shape[0]
    np.testing.assert_array_equal(changed, np.triu(np.ones((n, n), bool), k=1))


def test_plain_pixelcnn_has_a_blind_spot_that_gated_fills():
    """One row up and four columns right: PixelCNN never sees it, Gated PixelCNN does."""
    x = jax.random.randint(jax.random.key(0), (1, 6, 6, 1), 0, 2)
    out, blind = order(6, 6, 1)[3, 1, 0], order(6, 6, 1)[2, 5, 0]
    plain = models.PixelCNN(num_levels=2, num_layers=5, features=16, head_features=32)
    gated = _model(levels=2, num_layers=5)
    for model, sees in [(plain, False), (gated, True)]:
        changed = dependency_matrix(model, jax.jit(model.init)(jax.random.key(1), x), x)
        assert changed[blind, out] == sees, type(model).__name__


def test_labels_change_the_logits_and_are_required():
    model = _model(num_classes=3)
    x = jax.random.randint(jax.random.key(0), (2, 4, 4, 1), 0, 4)
    params = model.init(jax.random.key(1), x, jnp.array([0, 0]))
    a = model.apply(params, x, jnp.array([0, 0]))
    b = model.apply(params, x, jnp.array([0, 2]))
    np.testing.assert_array_equal(a[0], b[0])
    assert not np.allclose(a[1], b[1])
    with pytest.raises(ValueError, match="labels"):
        model.apply(params, x)
    with pytest.raises(ValueError, match="unconditional"):
        _model().init(jax.random.key(1), x, jnp.array([0, 0]))


@pytest.mark.parametrize("num_classes", [None, 2])
def test_loss_falls(num_classes):
    x = striped_batch(jax.random.key(0), 4, 6)
    labels = None if num_classes is None else jnp.array([0, 1, 0, 1])
    model = _model(levels=2, features=8, head_features=16, num_classes=num_classes)
    curve = fit(model, x, labels, steps=12)
    assert curve[-1] < 0.5 * curve[0], curve


def test_bad_kernel_size_is_rejected():
    model = models.GatedPixelCNN(num_levels=2, num_layers=1, features=4, kernel_size=4)
    with pytest.raises(ValueError, match="kernel_size"):
        model.init(jax.random.key(0), jnp.zeros((1, 4, 4, 1), jnp.int32))


def _gated(dtype: str) -> models.GatedPixelCNN:
    return models.GatedPixelCNN(
        num_levels=2, num_layers=2, features=16, kernel_size=3, head_features=16, dtype=dtype
    )


def test_bfloat16_trains_like_float32():
    check_bfloat16_trains_like_float32(_gated)


def test_bfloat16_is_causal_and_cached_equals_full():
    check_bfloat16_passes(_gated("bfloat16"), (2, 4, 5, 1))
