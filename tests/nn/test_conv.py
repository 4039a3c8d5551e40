"""Fast convolution formulations equal the plain "SAME" convolution, values and gradients."""

import flax.linen as nn
import jax
import jax.extend
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax

from jaxgen import models
from jaxgen.nn import conv_mask
from jaxgen.nn.conv import (
    IM2COL_MAX_CONTRACTION,
    TAP_GRADIENT_MIN_FEATURES,
    Conv1x1,
    PaddedConv2D,
    causal_conv,
    padded_conv,
)
from jaxgen.validation import ConfigError


def _reference(x, kernel):
    return lax.conv_general_dilated(
        x, kernel, (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC"), precision="highest"
    )


# (kh, kw, F_in, F_out, mask): 1x1 product, top-rows conv (with XLA's kernel gradient, then
# with per-tap products), one-row conv, im2col (small F_in).
CASES = [
    (1, 1, 8, 6, "B"),
    (3, 3, 12, 7, "B"),
    (5, 5, 20, 10, "B"),
    (3, 3, 32, 7, "B"),
    (5, 5, 48, 6, "B"),
    (1, 3, 6, 8, "A"),
    (1, 5, 30, 12, "B"),
    (7, 7, 1, 9, "A"),
    (7, 7, 3, 9, "A"),
]


@pytest.mark.parametrize("kh,kw,fin,fout,mask_type", CASES)
def test_causal_conv_equals_the_full_same_convolution(
    kh, kw, fin, fout, mask_type, conv_formulation
):
    x = jax.random.normal(jax.random.key(0), (2, 6, 7, fin))
    kernel = jax.random.normal(jax.random.key(1), (kh, kw, fin, fout))
    mask = conv_mask((kh, kw), fin, fout, 3 if fin % 3 == 0 else 1, mask_type)
    cotangent = jax.random.normal(jax.random.key(2), (2, 6, 7, fout))

    def loss(conv, x, kernel):
        return jnp.vdot(conv(x, kernel * mask), cotangent)

    fast = jax.value_and_grad(lambda x, k: loss(causal_conv, x, k), argnums=(0, 1))(x, kernel)
    slow = jax.value_and_grad(lambda x, k: loss(_reference, x, k), argnums=(0, 1))(x, kernel)
    for a, b in zip(jax.tree.leaves(fast), jax.tree.leaves(slow), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4 * float(jnp.abs(b).max()))


def test_im2col_is_used_for_one_row_kernels_and_short_contractions():
    """On CPU the first layer (7x7 over 1 channel: 4 x 7 taps) and a 1x3 over 16 are im2col;
    a 3x3 over 16 (2 x 3 taps x 16 > IM2COL_MAX_CONTRACTION) is a convolution."""
    assert 4 * 7 * 1 <= IM2COL_MAX_CONTRACTION < 2 * 3 * 16
    for x, kernel in [((1, 5, 5, 1), (7, 7, 1, 4)), ((1, 5, 5, 16), (1, 3, 16, 4))]:
        jaxpr = str(jax.make_jaxpr(causal_conv)(jnp.ones(x), jnp.ones(kernel)))
        assert "conv_general_dilated" not in jaxpr and "dot_general" in jaxpr
    jaxpr = str(jax.make_jaxpr(causal_conv)(jnp.ones((1, 5, 5, 16)), jnp.ones((3, 3, 16, 4))))
    assert "conv_general_dilated" in jaxpr


def _primitive_count(jaxpr, name: str) -> int:
    return sum(eqn.primitive.name == name for eqn in jaxpr.eqns)


@pytest.mark.parametrize("kh,kw,fin,fout,mask_type", CASES)
def test_accelerators_keep_xla_convolutions_and_their_gradients(
    kh, kw, fin, fout, mask_type, monkeypatch
):
    """Off the CPU no kernel is im2col or per-tap products: a kernel wider than 1x1 is one
    convolution forward and two backward (XLA's input and kernel gradients); a 1x1 is a
    product (what ``nn.Dense`` computes)."""
    monkeypatch.setattr("jaxgen.nn.conv.cpu_formulations", lambda: False)
    x, kernel = jnp.ones((2, 6, 7, fin)), jnp.ones((kh, kw, fin, fout))
    grads = jax.grad(lambda x, k: causal_conv(x, k).sum(), argnums=(0, 1))
    jaxpr = jax.make_jaxpr(grads)(x, kernel).jaxpr
    one_by_one = kh == kw == 1
    assert _primitive_count(jaxpr, "conv_general_dilated") == (0 if one_by_one else 3)
    assert _primitive_count(jaxpr, "dot_general") == (3 if one_by_one else 0)


def test_wide_convolutions_get_their_kernel_gradient_as_products():
    """On CPU the kernel gradient of a convolution over >= TAP_GRADIENT_MIN_FEATURES inputs is
    one 2-D product per tap: only the forward is a convolution. Narrower ones keep XLA's
    (a second convolution, with an H x W window)."""
    padding = ((1, 0), (1, 1))
    for fin, convolutions, products in [(TAP_GRADIENT_MIN_FEATURES, 1, 6), (16, 2, 0)]:
        x, kernel = jnp.ones((2, 6, 6, fin)), jnp.ones((2, 3, fin, 4))
        grad = jax.grad(lambda k, x=x: padded_conv(x, k, padding).sum())
        jaxpr = jax.make_jaxpr(grad)(kernel).jaxpr
        assert _primitive_count(jaxpr, "conv_general_dilated") == convolutions
        assert _primitive_count(jaxpr, "dot_general") == products


@pytest.mark.parametrize("fin", [16, TAP_GRADIENT_MIN_FEATURES])
def test_causal_conv_ignores_the_centre_row_right_of_the_centre(fin):
    """Tall kernels: the taps right of the centre in the centre row (zero in every causal
    mask) are set to zero, their kernel gradient is exactly zero, and on CPU over
    TAP_GRADIENT_MIN_FEATURES inputs the per-tap products skip them (5 of the 2 x 3 taps)."""
    x = jax.random.normal(jax.random.key(0), (2, 5, 6, fin))
    kernel = jax.random.normal(jax.random.key(1), (3, 3, fin, 4))
    causal = kernel * conv_mask((3, 3), fin, 4, 1, "B")
    np.testing.assert_array_equal(
        causal_conv(x, kernel), causal_conv(x, causal.at[2].set(9.0).at[1, 2].set(9.0))
    )
    grad = jax.grad(lambda k: jnp.sum(jnp.tanh(causal_conv(x, k))))(kernel)
    np.testing.assert_array_equal(grad[1, 2], 0.0)
    np.testing.assert_array_equal(grad[2], 0.0)
    live = jnp.concatenate([grad[0], grad[1, :2]])  # the 5 causal taps
    assert float(jnp.abs(live).max(axis=(1, 2)).min()) > 1e-3
    jaxpr = jax.make_jaxpr(jax.grad(lambda k: causal_conv(x, k).sum()))(kernel).jaxpr
    products = 5 if fin >= TAP_GRADIENT_MIN_FEATURES else 0
    assert _primitive_count(jaxpr, "dot_general") == products


def test_padded_conv_has_forward_and_reverse_derivatives_that_agree():
    """The custom derivative serves jacfwd (the causality Jacobians) as well as grad."""
    x = jax.random.normal(jax.random.key(0), (1, 3, 3, TAP_GRADIENT_MIN_FEATURES))
    kernel = jax.random.normal(jax.random.key(1), (2, 3, TAP_GRADIENT_MIN_FEATURES, 2))
    padding = ((1, 0), (1, 1))
    for argnum in (0, 1):
        f = lambda *a: padded_conv(*a, padding)  # noqa: E731
        forward = jax.jacfwd(f, argnums=argnum)(x, kernel)
        reverse = jax.jacrev(f, argnums=argnum)(x, kernel)
        np.testing.assert_allclose(forward, reverse, rtol=1e-5, atol=1e-5)
        assert float(jnp.abs(forward).max()) > 0.1


@pytest.mark.parametrize(
    "model",
    [
        models.PixelCNN(num_levels=2, num_layers=1, features=TAP_GRADIENT_MIN_FEATURES),
        models.GatedPixelCNN(num_levels=2, num_layers=2, features=TAP_GRADIENT_MIN_FEATURES),
    ],
    ids=["pixelcnn", "gated"],
)
def test_model_gradients_are_the_same_with_per_tap_kernel_gradients(model, monkeypatch):
    """Whole-model param gradients (PixelCNN's 3x3 and the Gated vertical stack over
    TAP_GRADIENT_MIN_FEATURES inputs) equal those of XLA's kernel gradient."""
    x = jax.random.bernoulli(jax.random.key(0), 0.5, (2, 6, 6, 1)).astype(jnp.int32)
    params = model.init(jax.random.key(1), x)
    loss = lambda p: jnp.sum(jnp.tanh(model.apply(p, x)))  # noqa: E731
    convolutions = lambda: str(jax.make_jaxpr(jax.grad(loss))(params)).count("conv_general")  # noqa: E731
    per_tap, per_tap_convolutions = jax.jit(jax.grad(loss))(params), convolutions()
    monkeypatch.setattr("jaxgen.nn.conv.TAP_GRADIENT_MIN_FEATURES", 10**9)
    xla, xla_convolutions = jax.jit(jax.grad(loss))(params), convolutions()
    assert per_tap_convolutions < xla_convolutions
    for a, b in zip(jax.tree.leaves(per_tap), jax.tree.leaves(xla), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4 * float(jnp.abs(b).max()) + 1e-7)


@pytest.mark.parametrize("fin", [4, TAP_GRADIENT_MIN_FEATURES + 8])
def test_padded_conv2d_matches_flax_conv_with_the_same_params(fin, conv_formulation):
    """The Gated PixelCNN's vertical convolution: values, input and param gradients."""
    x = jax.random.normal(jax.random.key(0), (2, 5, 6, fin))
    kwargs = dict(features=7, kernel_size=(2, 3), padding=((1, 0), (1, 1)))
    params = nn.Conv(**kwargs).init(jax.random.key(1), x)
    params = jax.tree.map(lambda v: v + 0.5, params)  # a non-zero bias
    shapes = jax.tree.map(jnp.shape, PaddedConv2D(**kwargs).init(jax.random.key(1), x))
    assert shapes == jax.tree.map(jnp.shape, params)

    def loss(module, p, x):
        return jnp.sum(jnp.tanh(module.apply(p, x)))

    fast = jax.value_and_grad(loss, argnums=(1, 2))(PaddedConv2D(**kwargs), params, x)
    slow = jax.value_and_grad(loss, argnums=(1, 2))(nn.Conv(**kwargs), params, x)
    for a, b in zip(jax.tree.leaves(fast), jax.tree.leaves(slow), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4 * float(jnp.abs(b).max()))


def _dot_operand_ranks(jaxpr) -> set[int]:
    """Ranks of the operands of every dot_general in ``jaxpr`` and its sub-jaxprs (scans)."""
    ranks = set()
    for eqn in jaxpr.eqns:
        if eqn.primitive.name == "dot_general":
            ranks.update(v.aval.ndim for v in eqn.invars)
        for sub in jax.extend.core.jaxprs_in_params(eqn.params):
            ranks |= _dot_operand_ranks(sub)
    return ranks


@pytest.mark.parametrize(
    "model",
    [
        models.PixelCNN(num_levels=2, num_layers=2, features=6, head_features=8),
        models.GatedPixelCNN(num_levels=2, num_layers=2, features=6, head_features=8),
        models.PixelRNN("row_lstm", num_levels=2, num_layers=1, features=6, head_features=8),
        models.PixelRNN("diagonal_bilstm", num_levels=2, num_layers=1, features=6, head_features=8),
    ],
    ids=["pixelcnn", "gated", "row_lstm", "diagonal_bilstm"],
)
def test_train_step_products_are_two_dimensional(model):
    """Forward and backward multiply 2-D matrices only: XLA's CPU backward of a product of a
    4-D activation (a dot_general over three axes) is 2.5x slower (``feature_product``)."""
    x = jnp.zeros((2, 5, 5, 1), jnp.int32)
    params = model.init(jax.random.key(0), x)
    grad = jax.grad(lambda p: model.apply(p, x).sum())
    assert _dot_operand_ranks(jax.make_jaxpr(grad)(params).jaxpr) == {2}


def test_conv1x1_matches_flax_conv_with_the_same_params():
    x = jax.random.normal(jax.random.key(0), (2, 3, 4, 5))
    params = nn.Conv(7, (1, 1)).init(jax.random.key(1), x)
    params = jax.tree.map(lambda v: v + 0.5, params)  # a non-zero bias
    np.testing.assert_allclose(
        Conv1x1(7).apply(params, x), nn.Conv(7, (1, 1)).apply(params, x), rtol=1e-5, atol=1e-5
    )
    same_shapes = jax.tree.map(jnp.shape, Conv1x1(7).init(jax.random.key(1), x))
    assert same_shapes == jax.tree.map(jnp.shape, params)


def test_a_bad_dtype_is_rejected_naming_the_choices():
    model = models.PixelCNN(num_levels=2, num_layers=1, features=4, head_features=4, dtype="f16")
    with pytest.raises(ConfigError, match="dtype='f16' must be one of float32, bfloat16"):
        model.init(jax.random.key(0), jnp.zeros((1, 4, 4, 1), jnp.int32))
