"""The causality check itself: it must catch a one-tap mask error, whatever the rounding."""

import sys

import jax
import numpy as np
import pytest

from jaxgen import models
from jaxgen.nn import masked

from .ar_checks import dependency_matrix


def _leaky_conv_mask(kernel_size: tuple[int, int], leak: str):
    """``conv_mask`` with one tap opened on ``kernel_size`` kernels: a classic port bug."""
    original = masked.conv_mask

    def conv_mask(size, in_features, out_features, num_channels, mask_type):
        mask = original(size, in_features, out_features, num_channels, mask_type).copy()
        if tuple(size) == kernel_size:
            ci, cj = size[0] // 2, size[1] // 2
            if leak == "right":  # the pixel right of the centre: a future pixel
                mask[ci, cj + 1] = 1.0
            else:  # "centre": mask A reading the pixel itself
                mask[ci, cj] = 1.0
        return mask

    return original, conv_mask


@pytest.fixture
def inject_leak(monkeypatch):
    """Replaces ``conv_mask`` everywhere jaxgen looks it up by a leaky one."""

    def inject(kernel_size, leak):
        original, leaky = _leaky_conv_mask(kernel_size, leak)
        for name, module in list(sys.modules.items()):
            if name.startswith("jaxgen") and getattr(module, "conv_mask", None) is original:
                monkeypatch.setattr(module, "conv_mask", leaky)

    return inject


def _pixelcnn_changed(channels=1):
    model = models.PixelCNN(num_levels=2, num_layers=2, features=6, head_features=8)
    x = jax.random.randint(jax.random.key(0), (1, 5, 5, channels), 0, 2)
    return dependency_matrix(model, jax.jit(model.init)(jax.random.key(1), x), x)


def _gated_changed():
    model = models.GatedPixelCNN(
        num_levels=2, num_layers=2, features=6, kernel_size=3, head_features=8
    )
    x = jax.random.randint(jax.random.key(0), (1, 5, 5, 1), 0, 2)
    return dependency_matrix(model, jax.jit(model.init)(jax.random.key(1), x), x)


def test_the_unmodified_models_pass():
    assert not np.tril(_pixelcnn_changed()).any()
    assert not np.tril(_gated_changed()).any()


@pytest.mark.parametrize("kernel_size,channels", [((3, 3), 3), ((7, 7), 1)])
def test_a_one_tap_leak_in_pixelcnn_is_caught(inject_leak, kernel_size, channels):
    # Opening the centre: mask A reading the pixel itself (7x7), or mask B letting a colour
    # channel read the later channels of its own pixel (3x3 over RGB).
    inject_leak(kernel_size, "centre")
    changed = _pixelcnn_changed(channels)
    assert np.tril(changed).any(), f"a leak at the centre of the {kernel_size} conv went unseen"


def test_a_mask_opened_right_of_the_centre_cannot_leak(inject_leak):
    # causal_conv ignores the taps right of the centre in the centre row, so this classic
    # mask error is harmless by construction (as below the centre and in one-row kernels).
    inject_leak((3, 3), "right")
    assert not np.tril(_pixelcnn_changed()).any()


def test_a_one_tap_leak_in_the_gated_horizontal_stack_is_caught(inject_leak):
    # One-row kernels are computed on the taps at and left of the centre only, so a
    # right-hand tap cannot leak by construction; mask A opening its centre can.
    inject_leak((1, 3), "centre")
    assert np.tril(_gated_changed()).any()


def test_rounding_between_batch_positions_is_not_a_dependency():
    """Logits that differ by rounding at other batch positions must not count.

    A model whose output at batch position b is shifted by b * 1e-7 (the size of
    the batch-position rounding seen on some CPUs) and that is otherwise causal
    gives no dependency at or before any sub-pixel.
    """
    model = models.PixelCNN(num_levels=2, num_layers=1, features=4, head_features=4)
    x = jax.random.randint(jax.random.key(0), (1, 4, 4, 1), 0, 2)
    params = jax.jit(model.init)(jax.random.key(1), x)

    class PositionRounding:
        num_levels = 2

        def apply(self, params, batch):
            logits = model.apply(params, batch)
            offset = jax.numpy.arange(batch.shape[0], dtype=logits.dtype) * 1e-7
            return logits + offset[:, None, None, None, None]

    assert not np.tril(dependency_matrix(PositionRounding(), params, x)).any()
