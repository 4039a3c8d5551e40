"""GAN train step: k discriminator updates, minibatch split, batch stats, sharding, EMA;
the two-player state, batched generation and interpolation codes."""

import jax
import numpy as np
import optax
import pytest

from jaxgen import gan, parallel
from jaxgen.models import dcgan
from jaxgen.train.step import jit_train_step

SHAPE = (16, 16, 1)
LEVELS = 256


def _setup(k: int, ema_decay: float | None = None, loss: str = "non_saturating", sgd: bool = False):
    """Model, step-0 state and pure step. Adam's first update is lr * sign(grad), which
    rounding can flip for tiny gradients, so comparisons of reordered inputs use SGD."""
    gen, disc = dcgan.make_gan("dcgan", SHAPE, features=4)
    model = gan.GAN(gen, disc, SHAPE, latent_dim=8)
    make_tx = (lambda: optax.sgd(0.1)) if sgd else (lambda: optax.adam(1e-3, b1=0.5))
    optimizers = gan.Optimizers(make_tx(), make_tx())
    state = gan.init_state(model.init(jax.random.key(0)), optimizers, ema_decay)
    step = gan.make_gan_step(
        model, optimizers, k=k, generator_loss=loss, num_levels=LEVELS, ema_decay=ema_decay
    )
    return model, state, step


def _images(n: int, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, LEVELS, (n, *SHAPE)).astype(np.int32)


def _count(opt_state) -> int:
    return int(optax.tree_utils.tree_get(opt_state, "count"))


@pytest.mark.parametrize("k", [1, 3])
def test_k_discriminator_updates_per_generator_update(k):
    _, state, step = _setup(k)
    step = jax.jit(step)
    batch = {"image": _images(4 * k)}
    for n in (1, 2):
        state, metrics = step(state, batch, jax.random.key(5))
        assert int(state.step) == n
        assert _count(state.opt_state["discriminator"]) == k * n
        assert _count(state.opt_state["generator"]) == n
    assert set(metrics) == {"d_loss", "g_loss", "d_real", "d_fake", "loss"}
    assert all(np.isfinite(float(v)) for v in metrics.values())
    assert 0.0 < float(metrics["d_real"]) < 1.0 and 0.0 < float(metrics["d_fake"]) < 1.0


def _leaves_close(a, b) -> bool:
    return all(jax.tree.leaves(jax.tree.map(lambda x, y: np.allclose(x, y, atol=1e-5), a, b)))


def test_minibatch_j_is_rows_j_mod_k():
    """Shuffling rows within one minibatch changes nothing; swapping minibatches does."""
    k = 2
    _, state, step = _setup(k, sgd=True)
    step = jax.jit(step)
    images = _images(8 * k)
    key = jax.random.key(3)
    base, _ = step(state, {"image": images}, key)
    within = images.copy()
    within[0::k] = images[0::k][::-1]  # reverse the order inside minibatch 0
    same, _ = step(state, {"image": within}, key)
    assert _leaves_close(base.params, same.params)
    swapped = images.copy()
    swapped[0::k], swapped[1::k] = images[1::k], images[0::k]
    other, _ = step(state, {"image": swapped}, key)
    assert not _leaves_close(base.params["discriminator"], other.params["discriminator"])


def test_step_updates_params_and_batch_stats_and_is_deterministic():
    _, state, step = _setup(1)
    step = jax.jit(step)
    batch = {"image": _images(8)}
    new, _ = step(state, batch, jax.random.key(7))
    for player in gan.PLAYERS:
        for collection in ("params", "batch_stats"):
            before = state.params[player][collection]
            assert not _leaves_close(before, new.params[player][collection]), (player, collection)
    again, _ = step(state, batch, jax.random.key(7))
    assert _leaves_close(new.params, again.params)
    other_key, _ = step(state, batch, jax.random.key(8))
    assert not _leaves_close(new.params, other_key.params)


@pytest.mark.parametrize("loss", ["minimax", "non_saturating"])
def test_one_device_and_eight_devices_agree(loss):
    """BatchNorm statistics and losses are over the global batch, whatever the sharding."""
    assert len(jax.devices()) >= 8
    _, state, step = _setup(2, loss=loss, sgd=True)
    batch = {"image": _images(32)}
    results = []
    for n in (1, 8):
        mesh = parallel.make_mesh(n)
        jitted = jit_train_step(step, mesh)
        s = parallel.replicate(jax.tree.map(np.array, state), mesh)
        new, metrics = jitted(s, parallel.shard_batch(batch, mesh), jax.random.key(2))
        results.append((jax.device_get(new.params), jax.device_get(metrics)))
    (p1, m1), (p8, m8) = results
    assert _leaves_close(p1, p8)
    for name in m1:
        np.testing.assert_allclose(m1[name], m8[name], rtol=1e-5, err_msg=name)


def test_ema_tracks_all_variables():
    _, state, step = _setup(1, ema_decay=0.5)
    new, _ = jax.jit(step)(state, {"image": _images(8)}, jax.random.key(0))
    expected = jax.tree.map(lambda a, b: 0.5 * a + 0.5 * b, state.params, new.params)
    assert _leaves_close(new.ema_params, expected)


def test_bad_arguments_are_rejected():
    model, state, _ = _setup(1)
    txs = gan.Optimizers(optax.adam(1e-3), optax.adam(1e-3))
    with pytest.raises(ValueError, match="k=0"):
        gan.make_gan_step(model, txs, k=0)
    with pytest.raises(ValueError, match="minimax"):
        gan.make_gan_step(model, txs, generator_loss="hinge")
    with pytest.raises(ValueError, match="k=3"):
        gan.make_gan_step(model, txs, k=3)(state, {"image": _images(4)}, jax.random.key(0))
    with pytest.raises(ValueError, match="image_shape"):
        gan.GAN(model.generator, model.discriminator).init(jax.random.key(0))


def test_init_state_holds_both_players_optimizer_states():
    model, state, _ = _setup(1, ema_decay=0.9)
    assert int(state.step) == 0
    assert set(state.opt_state) == set(gan.PLAYERS)
    for player in gan.PLAYERS:  # Adam's state covers the player's params, not its batch_stats
        mu = optax.tree_utils.tree_get(state.opt_state[player], "mu")
        assert jax.tree.structure(mu) == jax.tree.structure(state.params[player]["params"])
        assert _count(state.opt_state[player]) == 0
    assert _leaves_close(state.ema_params, state.params)
    # The image shape may come with init instead of the GAN.
    late = gan.GAN(model.generator, model.discriminator, latent_dim=8)
    assert _leaves_close(late.init(jax.random.key(0), SHAPE), state.params)


def test_generate_levels_in_batches_and_interpolation_codes():
    model, state, _ = _setup(1)
    z = model.sample_latent(jax.random.key(1), 7)
    levels = gan.generate_levels(model, state.params, z, LEVELS, batch_size=3)  # 3 + 3 + 1
    assert levels.shape == (7, *SHAPE) and levels.dtype.kind == "i"
    assert levels.min() >= 0 and levels.max() < LEVELS
    whole = gan.generate_levels(model, state.params, z, LEVELS)
    assert np.abs(levels.astype(int) - whole).max() <= 1  # batching changes rounding at most
    codes = gan.interpolation_codes(model, jax.random.key(2), rows=2, steps=5).reshape(2, 5, 8)
    np.testing.assert_allclose(codes[:, 2], (codes[:, 0] + codes[:, 4]) / 2, atol=1e-6)
    np.testing.assert_allclose(codes[:, 1] - codes[:, 0], codes[:, 4] - codes[:, 3], atol=1e-6)
    assert not np.allclose(codes[0, 0], codes[1, 0])  # each row its own pair


def test_generate_and_discriminate_in_eval_mode():
    model, state, _ = _setup(1)
    z = model.sample_latent(jax.random.key(0), 5)
    assert z.shape == (5, 8)
    x = model.generate(state.params, z)
    assert x.shape == (5, *SHAPE) and float(np.abs(x).max()) <= 1.0
    np.testing.assert_allclose(model.generate(state.params, z[:2]), x[:2], atol=1e-6)
    assert model.discriminate(state.params, x).shape == (5,)
