"""PixelCNN: masks, causality in raster-then-channel order, blind spot, bad input."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxgen import models
from jaxgen.nn import conv_mask

from .ar_checks import dependency_matrix, order
from .precision_checks import check_bfloat16_passes, check_bfloat16_trains_like_float32


@pytest.mark.parametrize("channels,levels", [(1, 2), (3, 256)])
def test_pixelcnn_is_causal(channels, levels, conv_formulation):
    h = w = 5
    model = models.PixelCNN(num_levels=levels, num_layers=2, features=16, head_features=32)
    x = jax.random.randint(jax.random.key(0), (1, h, w, channels), 0, levels)
    params = jax.jit(model.init)(jax.random.key(1), x)
    changed = dependency_matrix(model, params, x)
    n = h * w * channels
    # No logit at or before the changed sub-pixel may move ...
    assert not np.tril(changed).any()
    # ... and every sub-pixel but the last influences some later logit.
    assert changed[: n - 1].any(axis=1).all()


def test_rgb_channel_order_within_a_pixel():
    """At one pixel, R's logits ignore G and B; G reads R; B reads R and G."""
    model = models.PixelCNN(num_levels=256, num_layers=1, features=6, head_features=9)
    x = jax.random.randint(jax.random.key(0), (1, 3, 3, 3), 0, 256)
    params = jax.jit(model.init)(jax.random.key(1), x)
    changed = dependency_matrix(model, params, x)
    t = order(3, 3, 3)[1, 1]  # the three sub-pixels of the centre pixel
    assert changed[t[0], t[1]] and changed[t[0], t[2]] and changed[t[1], t[2]]
    assert not changed[t[1], t[0]] and not changed[t[2], t[0]] and not changed[t[2], t[1]]


def test_pixelcnn_has_a_blind_spot():
    """A pixel above and to the right never reaches the output: why Gated PixelCNN exists.

    The 7x7 mask-A layer sees 3 columns to the right in the row above; 3x3 mask-B
    layers never widen that row's reach, however deep the stack. So the pixel one
    row up and four columns right comes earlier in raster order but stays unseen.
    """
    model = models.PixelCNN(num_levels=2, num_layers=4, features=4, head_features=4)
    x = jax.random.randint(jax.random.key(0), (1, 9, 9, 1), 0, 2)
    params = jax.jit(model.init)(jax.random.key(1), x)
    changed = dependency_matrix(model, params, x)
    reach = changed[:, order(9, 9, 1)[4, 4, 0]].reshape(9, 9)
    assert reach[4, :4].all(), "the pixels left of the centre are seen"
    assert reach[3, 1:8].all(), "the row above is seen up to 3 columns right"
    assert not reach[3, 8], "one row up, four columns right: the blind spot"
    assert reach[2, 8], "two rows up the reach has widened past it"


def test_masks_match_the_paper():
    a = conv_mask((3, 3), 3, 3, 3, "A")
    b = conv_mask((3, 3), 3, 3, 3, "B")
    # Rows above: all taps; centre row: left taps only; below: none.
    assert a[0].all() and a[1, 0].all() and not a[1, 2].any() and not a[2].any()
    # Centre tap: A is strictly lower-triangular over (in, out) groups, B includes the diagonal.
    np.testing.assert_array_equal(a[1, 1], np.triu(np.ones((3, 3)), k=1))
    np.testing.assert_array_equal(b[1, 1], np.triu(np.ones((3, 3))))
    # Grayscale: mask A drops the centre, mask B keeps it.
    assert conv_mask((7, 7), 1, 4, 1, "A")[3, 3].sum() == 0
    assert conv_mask((3, 3), 4, 4, 1, "B")[1, 1].all()


@pytest.mark.parametrize(
    "x,match",
    [
        (jnp.zeros((4, 4, 1), jnp.int32), "rank 4"),
        (jnp.zeros((1, 4, 4, 1), jnp.float32), "integer"),
        (jnp.full((1, 4, 4, 1), 2, jnp.int32), r"num_levels=2"),
        (jnp.full((1, 4, 4, 1), -1, jnp.int32), r"\[0, 2\)"),
    ],
)
def test_bad_images_are_rejected_with_clear_errors(x, match):
    model = models.PixelCNN(num_levels=2, num_layers=1, features=4, head_features=4)
    with pytest.raises(ValueError, match=match):
        model.init(jax.random.key(0), x)


def test_bad_sizes_are_rejected():
    with pytest.raises(ValueError, match="num_layers"):
        models.PixelCNN(num_levels=2, num_layers=-1).init(
            jax.random.key(0), jnp.zeros((1, 4, 4, 1), jnp.int32)
        )


def _pixelcnn(dtype: str) -> models.PixelCNN:
    return models.PixelCNN(num_levels=2, num_layers=2, features=16, head_features=16, dtype=dtype)


def test_bfloat16_trains_like_float32():
    check_bfloat16_trains_like_float32(_pixelcnn)


def test_bfloat16_is_causal_and_cached_equals_full():
    check_bfloat16_passes(_pixelcnn("bfloat16"), (2, 4, 5, 1))
