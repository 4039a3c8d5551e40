"""Autoencoder and the shared encoder/decoder networks."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxgen.losses import reconstruction_loss
from jaxgen.models import Autoencoder
from jaxgen.models.coders import ConvDecoder


@pytest.mark.parametrize(
    "architecture,image_shape", [("conv", (28, 28, 1)), ("conv", (32, 32, 3)), ("mlp", (28, 28, 1))]
)
def test_shapes(architecture, image_shape):
    model = Autoencoder(
        latent_dim=5,
        image_shape=image_shape,
        architecture=architecture,
        features=(4, 8),
        hidden_features=8,
    )
    x = jax.random.randint(jax.random.key(0), (3, *image_shape), 0, 256)
    params = model.init(jax.random.key(1), x)
    assert model.apply(params, x, method=model.encode).shape == (3, 5)
    assert model.apply(params, x).shape == (3, *image_shape)
    shown = model.apply(params, jnp.full((3, 5), 100.0), method=model.decode_mean)
    assert float(shown.min()) >= 0.0 and float(shown.max()) <= 1.0


def test_reconstruction_loss_is_the_squared_error_on_the_unit_scale():
    x = jnp.array([0, 255, 51]).reshape(1, 1, 3, 1)
    recon = jnp.array([0.5, 1.0, 0.0]).reshape(1, 1, 3, 1)
    np.testing.assert_allclose(reconstruction_loss(recon, x, 256), [0.25 + 0.0 + 0.04], rtol=1e-6)
    assert float(reconstruction_loss(x / 255.0, x, 256)[0]) == 0.0


def test_decoder_rejects_sizes_it_cannot_reach():
    with pytest.raises(ValueError, match="divisible"):
        ConvDecoder((30, 30, 1), 1, (4, 8)).init(jax.random.key(0), jnp.zeros((1, 2)))


def test_training_reduces_the_reconstruction_loss():
    model = Autoencoder(latent_dim=8, image_shape=(8, 8, 1), features=(8, 8), hidden_features=32)
    x = jax.random.randint(jax.random.key(0), (8, 8, 8, 1), 0, 256)
    params = model.init(jax.random.key(1), x)
    tx = optax.adam(3e-3)

    def loss(p, x):
        return reconstruction_loss(model.apply(p, x), x, 256).mean()

    @jax.jit
    def train(params, x):
        def step(carry, _):
            p, s = carry
            g = jax.grad(loss)(p, x)
            u, s = tx.update(g, s, p)
            return (optax.apply_updates(p, u), s), None

        return jax.lax.scan(step, (params, tx.init(params)), None, length=200)[0][0]

    before, after = float(loss(params, x)), float(loss(train(params, x), x))
    assert after < 0.5 * before, (before, after)
