"""DCGAN and fully connected GAN networks: shapes, ranges, BatchNorm placement, init."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxgen.models import dcgan


@pytest.mark.parametrize("k", [2, 3, 4, 5])
def test_conv_transpose_2x_equals_flax_conv_transpose(k):
    x = jax.random.normal(jax.random.key(0), (2, 5, 6, 3))
    ours = dcgan.ConvTranspose2x(4, k)
    variables = ours.init(jax.random.key(1), x)
    variables = jax.tree.map(
        lambda v: v + jax.random.uniform(jax.random.key(2), v.shape), variables
    )
    reference = nn.ConvTranspose(4, (k, k), (2, 2), padding="SAME").apply(variables, x)
    y = ours.apply(variables, x)
    assert y.shape == (2, 10, 12, 4)
    np.testing.assert_allclose(y, reference, atol=1e-5)


@pytest.mark.parametrize("size,expected", [(28, 2), (32, 3), (64, 4), (16, 2)])
def test_num_upsamplings(size, expected):
    assert dcgan.num_upsamplings(size) == expected
    assert size // 2**expected in (4, 7)


def test_odd_or_non_square_images_are_rejected():
    with pytest.raises(ValueError, match="even"):
        dcgan.num_upsamplings(7)
    gen = dcgan.DCGANGenerator(image_shape=(28, 32, 1), features=4)
    with pytest.raises(ValueError, match="square"):
        gen.init(jax.random.key(0), jnp.zeros((2, 8)))


@pytest.mark.parametrize(
    "architecture,shape", [("dcgan", (28, 28, 1)), ("dcgan", (32, 32, 3)), ("mlp", (28, 28, 1))]
)
def test_shapes_and_ranges(architecture, shape):
    gen, disc = dcgan.make_gan(architecture, shape, features=4)
    z = jax.random.normal(jax.random.key(0), (3, 10))
    g_vars = jax.jit(gen.init)(jax.random.key(1), z)
    x, _ = jax.jit(lambda v, z: gen.apply(v, z, mutable=["batch_stats"]))(g_vars, 5.0 * z)
    assert x.shape == (3, *shape)
    assert float(jnp.abs(x).max()) <= 1.0
    d_vars = jax.jit(disc.init)(jax.random.key(2), x)
    logits, _ = jax.jit(lambda v, x: disc.apply(v, x, mutable=["batch_stats"]))(d_vars, x)
    assert logits.shape == (3,)
    assert np.isfinite(logits).all()


def test_batch_norm_everywhere_but_generator_output_and_discriminator_input():
    gen, disc = dcgan.make_gan("dcgan", (32, 32, 3), features=4)
    # Names and shapes only: traced, never compiled.
    g_vars = jax.eval_shape(gen.init, jax.random.key(0), jnp.zeros((2, 8)))
    d_vars = jax.eval_shape(disc.init, jax.random.key(1), jnp.zeros((2, 32, 32, 3)))
    assert set(g_vars["params"]) == {
        "project",
        "project_bn",
        "up0",
        "up0_bn",
        "up1",
        "up1_bn",
        "output",
    }
    assert set(g_vars["batch_stats"]) == {"project_bn", "up0_bn", "up1_bn"}
    assert set(d_vars["params"]) == {
        "input_conv",
        "down0",
        "down0_bn",
        "down1",
        "down1_bn",
        "logit",
    }
    assert set(d_vars["batch_stats"]) == {"down0_bn", "down1_bn"}
    # Widths double from the output towards the projection, and mirror in D.
    assert g_vars["params"]["project"]["kernel"].shape == (8, 4 * 4 * 16)
    assert d_vars["params"]["down1"]["kernel"].shape[-1] == 16


def test_weights_follow_the_dcgan_initialisation():
    gen = dcgan.DCGANGenerator(image_shape=(28, 28, 1), features=32)
    params = jax.jit(gen.init)(jax.random.key(0), jnp.zeros((2, 100)))["params"]
    np.testing.assert_allclose(np.std(params["project"]["kernel"]), 0.02, rtol=0.05)
    np.testing.assert_allclose(np.std(params["output"]["kernel"]), 0.02, rtol=0.1)
    gains = np.asarray(params["project_bn"]["scale"])
    np.testing.assert_allclose(gains.mean(), 1.0, atol=0.01)
    assert 0.01 < gains.std() < 0.03


def test_train_mode_uses_batch_statistics_and_updates_running_averages():
    gen = dcgan.DCGANGenerator(image_shape=(16, 16, 1), features=4)
    z = jax.random.normal(jax.random.key(0), (8, 6))
    variables = jax.jit(gen.init)(jax.random.key(1), z)
    train = jax.jit(lambda v, z: gen.apply(v, z, train=True, mutable=["batch_stats"]))
    apply = jax.jit(lambda v, z: gen.apply(v, z, train=False))
    x, updates = train(variables, z)
    moved = jax.tree.map(
        lambda a, b: not np.allclose(a, b), variables["batch_stats"], updates["batch_stats"]
    )
    assert all(jax.tree.leaves(moved))
    # Train mode: an example's output depends on the rest of the batch; eval mode: it does not.
    x_half, _ = train(variables, z[:4])
    assert not np.allclose(x[:4], x_half, atol=1e-5)
    e_full = apply(variables, z)
    e_half = apply(variables, z[:4])
    np.testing.assert_allclose(e_full[:4], e_half, atol=1e-6)


def test_unknown_architecture_is_rejected():
    with pytest.raises(ValueError, match="dcgan"):
        dcgan.make_gan("stylegan", (28, 28, 1))


@pytest.mark.parametrize("levels", [2, 256])
def test_level_mapping_round_trips(levels):
    x = jnp.arange(levels)
    y = dcgan.to_signed(x, levels)
    assert float(y[0]) == -1.0 and float(y[-1]) == 1.0
    np.testing.assert_array_equal(dcgan.to_levels(y, levels), x)
    np.testing.assert_array_equal(dcgan.to_levels(jnp.array([-3.0, 3.0]), levels), [0, levels - 1])
