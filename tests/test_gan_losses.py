"""GAN losses: values at D = 1/2, stability for extreme logits, saturation of the minimax loss."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxgen import losses

LOG2 = math.log(2.0)


def test_values_when_discriminator_is_undecided():
    zeros = jnp.zeros(7)
    np.testing.assert_allclose(losses.gan_discriminator_loss(zeros, zeros), 2 * LOG2, rtol=1e-6)
    np.testing.assert_allclose(losses.gan_generator_loss(zeros, "minimax"), -LOG2, rtol=1e-6)
    np.testing.assert_allclose(losses.gan_generator_loss(zeros, "non_saturating"), LOG2, rtol=1e-6)


def test_values_match_the_probability_formulas():
    real = jnp.array([-2.0, 0.5, 3.0])
    fake = jnp.array([1.0, -0.5, -4.0, 0.0])
    d = lambda logits: 1.0 / (1.0 + np.exp(-np.asarray(logits, np.float64)))  # noqa: E731
    expected_d = -np.mean(np.log(d(real))) - np.mean(np.log(1.0 - d(fake)))
    np.testing.assert_allclose(losses.gan_discriminator_loss(real, fake), expected_d, rtol=1e-5)
    np.testing.assert_allclose(
        losses.gan_generator_loss(fake, "minimax"), np.mean(np.log(1.0 - d(fake))), rtol=1e-5
    )
    np.testing.assert_allclose(
        losses.gan_generator_loss(fake, "non_saturating"), -np.mean(np.log(d(fake))), rtol=1e-5
    )


@pytest.mark.parametrize("value", [100.0, -100.0])
def test_finite_for_extreme_logits(value):
    logits = jnp.full(4, value)
    fns = {
        "discriminator": lambda x: losses.gan_discriminator_loss(x, x),
        "minimax": lambda x: losses.gan_generator_loss(x, "minimax"),
        "non_saturating": lambda x: losses.gan_generator_loss(x, "non_saturating"),
    }
    for name, fn in fns.items():
        loss, grad = jax.value_and_grad(fn)(logits)
        assert np.isfinite(loss), name
        assert np.isfinite(grad).all(), name
    # A confident, wrong discriminator pays |logit| per term; a right one about nothing.
    wrong = losses.gan_discriminator_loss(-jnp.abs(logits), jnp.abs(logits))
    np.testing.assert_allclose(wrong, 2 * abs(value), rtol=1e-6)
    assert losses.gan_discriminator_loss(jnp.abs(logits), -jnp.abs(logits)) < 1e-30


def _per_example_grads(kind: str, logits: jax.Array) -> np.ndarray:
    """d loss_i / d logit_i, the per-example generator loss before the batch mean."""
    return np.asarray(
        jax.vmap(jax.grad(lambda x: losses.gan_generator_loss(x[None], kind)))(logits)
    )


def test_minimax_saturates_and_non_saturating_does_not():
    rejected = jnp.array([-10.0, -20.0, -40.0])  # D is sure the samples are fake
    minimax = _per_example_grads("minimax", rejected)
    non_saturating = _per_example_grads("non_saturating", rejected)
    assert np.all(np.abs(minimax) < 1e-4)
    np.testing.assert_allclose(non_saturating, -1.0, atol=1e-4)
    # Where D is fooled the roles swap: the minimax gradient is strong there.
    accepted = jnp.array([10.0])
    np.testing.assert_allclose(_per_example_grads("minimax", accepted), -1.0, atol=1e-4)
    assert abs(_per_example_grads("non_saturating", accepted)[0]) < 1e-4


def test_unknown_generator_loss_is_rejected():
    with pytest.raises(ValueError, match="non_saturating"):
        losses.gan_generator_loss(jnp.zeros(2), "wasserstein")
