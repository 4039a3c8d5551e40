"""GAN training: both players in one train state, and the jitted k-step update.

The state is jaxgen's ``TrainState`` with

    params    = {"generator": {"params", "batch_stats"}, "discriminator": {...}}
    opt_state = {"generator": G's Optax state, "discriminator": D's Optax state}

so checkpoints, sharding and resumption work as for every other model. One call
of the train step is one iteration of Algorithm 1 of Goodfellow et al. (2014):
``k`` discriminator updates, each on a fresh real minibatch and fresh noise,
then one generator update on fresh noise. Step ``s`` draws from
``fold_in(key, s)`` and its sub-step ``j`` (``j = k`` for the generator) folds
in ``j`` again, so a resumed run draws what an uninterrupted run would.

BatchNorm statistics (``batch_stats``) are updated inside the step from batch
statistics over the whole global batch: under ``jax.jit`` with a batch-sharded
input XLA reduces over every device, so 1 and N devices compute the same update.
G's running averages follow all its k + 1 train-mode passes; D's follow its
passes on real and on generated batches in its own k updates (not the pass
inside the generator update). D sees real and generated images in separate
batches, as in the DCGAN code.
"""

import dataclasses
import functools
from collections.abc import Callable, Mapping
from typing import Any, Literal, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxgen import losses
from jaxgen.batching import apply_in_batches
from jaxgen.levels import from_signed, to_signed
from jaxgen.train.state import TrainState
from jaxgen.validation import ConfigError

PLAYERS = ("generator", "discriminator")
Variables = dict[str, Any]
Metrics = dict[str, jax.Array]
StepFn = Callable[[TrainState, Mapping[str, jax.Array], jax.Array], tuple[TrainState, Metrics]]


@dataclasses.dataclass(frozen=True)
class GAN:
    """A generator and a discriminator with the latent prior z ~ N(0, I).

    Attributes:
      generator: module ``(z float [B, latent_dim], train) -> float [B, H, W, C]`` in [-1, 1].
      discriminator: module ``(x float [B, H, W, C], train) -> logits float [B]``.
      image_shape: (H, W, C), the default of ``init``; None: ``init`` is given it.
      latent_dim: size of z.
    """

    generator: nn.Module
    discriminator: nn.Module
    image_shape: tuple[int, int, int] | None = None
    latent_dim: int = 100

    def init(self, key: jax.Array, image_shape: tuple[int, ...] | None = None) -> Variables:
        """Initial variables ``{"generator": {...}, "discriminator": {...}}``.

        Each player's entry holds ``params`` and ``batch_stats`` ({} for networks
        without BatchNorm).

        Args:
          key: PRNG key.
          image_shape: (H, W, C) of the images; None: ``self.image_shape``.
        """
        shape = self.image_shape if image_shape is None else tuple(image_shape)
        if shape is None:
            raise ConfigError("GAN.init needs the image_shape (H, W, C) of the images.")
        g_key, d_key = jax.random.split(key)
        g_vars = self.generator.init(g_key, jnp.zeros((2, self.latent_dim)), train=False)
        d_vars = self.discriminator.init(d_key, jnp.zeros((2, *shape)), train=False)
        return {
            name: {"params": v["params"], "batch_stats": v.get("batch_stats", {})}
            for name, v in zip(PLAYERS, (g_vars, d_vars), strict=True)
        }

    def sample_latent(self, key: jax.Array, num: int) -> jax.Array:
        """Draws ``num`` codes z ~ N(0, I): float [num, latent_dim]."""
        return jax.random.normal(key, (num, self.latent_dim))

    def generate(self, variables: Variables, z: jax.Array) -> jax.Array:
        """G(z) with BatchNorm running averages: float [B, latent_dim] -> [B, H, W, C], [-1, 1]."""
        return self.generator.apply(variables["generator"], z, train=False)

    def discriminate(self, variables: Variables, x: jax.Array) -> jax.Array:
        """D's logits with BatchNorm running averages: float [B, H, W, C] -> [B]."""
        return self.discriminator.apply(variables["discriminator"], x, train=False)


@functools.partial(jax.jit, static_argnums=(0, 3))
def _generate_batch(gan: GAN, variables: Variables, z: jax.Array, num_levels: int) -> jax.Array:
    return from_signed(gan.generate(variables, z), num_levels)


def generate_levels(
    gan: GAN, variables: Variables, z: jax.Array, num_levels: int, batch_size: int = 500
) -> np.ndarray:
    """G(z) as integer levels, in batches of at most ``batch_size`` codes.

    Args:
      gan: the networks.
      variables: their variables (on one device).
      z: float [N, latent_dim] codes.
      num_levels: L of the images.
      batch_size: codes per compiled call.

    Returns:
      int [N, H, W, C] levels in [0, L).
    """
    return apply_in_batches(
        lambda codes: _generate_batch(gan, variables, codes, num_levels), z, batch_size=batch_size
    )


def interpolation_codes(gan: GAN, key: jax.Array, rows: int, steps: int) -> jax.Array:
    """Codes on straight lines between random pairs: float [rows * steps, latent_dim].

    Row r holds ``steps`` evenly spaced points from its start code to its end code.
    """
    start_key, end_key = jax.random.split(key)
    start, end = gan.sample_latent(start_key, rows), gan.sample_latent(end_key, rows)
    t = jnp.linspace(0.0, 1.0, steps)[None, :, None]
    return ((1.0 - t) * start[:, None] + t * end[:, None]).reshape(rows * steps, -1)


class Optimizers(NamedTuple):
    """The two players' optimizers; ``state.step`` counts generator updates.

    Attributes:
      generator: G's Optax transformation.
      discriminator: D's Optax transformation (it updates k times per step).
    """

    generator: optax.GradientTransformation
    discriminator: optax.GradientTransformation


def init_state(
    variables: Variables, optimizers: Optimizers, ema_decay: float | None = None
) -> TrainState:
    """The step-0 train state of both players.

    Args:
      variables: ``GAN.init``'s ``{"generator": {...}, "discriminator": {...}}``.
      optimizers: the players' optimizers.
      ema_decay: decay of the EMA of all variables; None for no EMA.

    Returns:
      A TrainState whose ``opt_state`` is ``{"generator": G's Optax state,
      "discriminator": D's}`` over the players' ``params`` (not their ``batch_stats``).
    """
    return TrainState(
        step=jnp.zeros((), jnp.int32),
        params=variables,
        opt_state={
            name: tx.init(variables[name]["params"])
            for name, tx in zip(PLAYERS, optimizers, strict=True)
        },
        ema_params=None if ema_decay is None else variables,
    )


def _apply_train(module: nn.Module, variables: Variables, x: jax.Array) -> tuple[jax.Array, Any]:
    """Runs ``module`` in train mode; returns (output, updated batch_stats)."""
    out, updates = module.apply(variables, x, train=True, mutable=["batch_stats"])
    return out, updates.get("batch_stats", variables["batch_stats"])


def make_gan_step(
    gan: GAN,
    optimizers: Optimizers,
    *,
    k: int = 1,
    generator_loss: Literal["non_saturating", "minimax"] = "non_saturating",
    num_levels: int = 256,
    ema_decay: float | None = None,
) -> StepFn:
    """The pure two-player ``step(state, batch, key) -> (state, metrics)``, unjitted.

    Compile it with ``jaxgen.train.jit_train_step`` (sharding, donation and the
    non-finite guard), as ``tasks.gan`` does.

    Args:
      gan: the networks.
      optimizers: the optimizers ``init_state`` built the state with.
      k: discriminator updates per generator update.
      generator_loss: ``"non_saturating"`` or ``"minimax"`` (see ``jaxgen.losses``).
      num_levels: L of the integer images; they are mapped onto [-1, 1].
      ema_decay: decay of the EMA of all variables, None when the state has no EMA.

    Returns:
      The step. ``batch["image"]`` is int [k * m, H, W, C] in [0, L): rows
      ``j, j + k, j + 2k, ...`` are the m real images of discriminator update
      ``j`` (so every device's contiguous slice holds rows of every minibatch).
      ``key`` is the train key; the step folds in ``state.step``. ``state.step``
      counts generator updates; D's optimizer count advances by k. Metrics
      (float scalars): ``d_loss``, ``d_real`` = mean D(x), ``d_fake`` = mean
      D(G(z)), each averaged over the k discriminator updates; ``g_loss`` of the
      generator update; ``loss`` = ``d_loss`` (log 4 - 2 JSD at the optimal D).
    """
    if k < 1:
        raise ConfigError(f"k={k} discriminator steps per generator step must be >= 1.")
    if generator_loss not in ("non_saturating", "minimax"):
        raise ConfigError(
            f"generator_loss={generator_loss!r} must be 'non_saturating' or 'minimax'."
        )
    g_mod, d_mod = gan.generator, gan.discriminator
    g_tx, d_tx = optimizers

    def train_step(state: TrainState, batch: Mapping[str, jax.Array], key: jax.Array):
        images = batch["image"]
        if images.shape[0] % k:
            raise ConfigError(
                f"a batch of {images.shape[0]} images does not split into k={k} parts."
            )
        m = images.shape[0] // k
        real = to_signed(images, num_levels).reshape(m, k, *images.shape[1:])
        real = jnp.swapaxes(real, 0, 1)  # [k, m, H, W, C]
        step_key = jax.random.fold_in(key, state.step)
        g_vars, d_vars = state.params["generator"], state.params["discriminator"]

        def d_loss_fn(params, stats, real_j, fake):
            real_logits, stats = _apply_train(
                d_mod, {"params": params, "batch_stats": stats}, real_j
            )
            fake_logits, stats = _apply_train(d_mod, {"params": params, "batch_stats": stats}, fake)
            loss = losses.gan_discriminator_loss(real_logits, fake_logits)
            probs = jnp.stack([nn.sigmoid(real_logits).mean(), nn.sigmoid(fake_logits).mean()])
            return loss, (stats, probs)

        # A Python loop, unrolled at trace time: XLA's CPU backend runs convolutions
        # inside a compiled loop (lax.scan) about 15x slower.
        d_grad_fn = jax.value_and_grad(d_loss_fn, has_aux=True)
        d_opt, g_stats = state.opt_state["discriminator"], g_vars["batch_stats"]
        d_losses, d_probs = [], []
        for j in range(k):
            z = gan.sample_latent(jax.random.fold_in(step_key, j), m)
            fake, g_stats = _apply_train(g_mod, {**g_vars, "batch_stats": g_stats}, z)
            (loss, (stats, probs)), grads = d_grad_fn(
                d_vars["params"], d_vars["batch_stats"], real[j], fake
            )
            updates, d_opt = d_tx.update(grads, d_opt, d_vars["params"])
            d_vars = {
                "params": optax.apply_updates(d_vars["params"], updates),
                "batch_stats": stats,
            }
            d_losses.append(loss)
            d_probs.append(probs)
        d_real, d_fake = jnp.mean(jnp.stack(d_probs), axis=0)

        z = gan.sample_latent(jax.random.fold_in(step_key, k), m)

        def g_loss_fn(params):
            fake, stats = _apply_train(g_mod, {"params": params, "batch_stats": g_stats}, z)
            # D's statistics from this pass are dropped: the generator update changes only G.
            logits, _ = _apply_train(d_mod, d_vars, fake)
            return losses.gan_generator_loss(logits, generator_loss), stats

        (g_loss, g_stats), grads = jax.value_and_grad(g_loss_fn, has_aux=True)(g_vars["params"])
        updates, g_opt = g_tx.update(grads, state.opt_state["generator"], g_vars["params"])
        g_vars = {"params": optax.apply_updates(g_vars["params"], updates), "batch_stats": g_stats}

        params = {"generator": g_vars, "discriminator": d_vars}
        ema_params = None
        if ema_decay is not None:
            ema_params = optax.incremental_update(params, state.ema_params, 1.0 - ema_decay)
        new_state = state.replace(
            step=state.step + 1,
            params=params,
            opt_state={"generator": g_opt, "discriminator": d_opt},
            ema_params=ema_params,
        )
        metrics = {
            "d_loss": jnp.mean(jnp.stack(d_losses)),
            "g_loss": g_loss,
            "d_real": d_real,
            "d_fake": d_fake,
        }
        return new_state, {**metrics, "loss": metrics["d_loss"]}

    return train_step
