"""The latent-variable family's tasks: the VAE (ELBO, IWAE) and the autoencoder (L2).

Both draw their pictures from a few test images after training (see
``jaxgen.latent``); both encoders can then be measured by few-label transfer
(``jaxgen.transfer.run_transfer``).
"""

import math
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.scipy.special import ndtri

from jaxgen import latent, losses, viz
from jaxgen.losses import reconstruction_loss
from jaxgen.models.autoencoder import Autoencoder
from jaxgen.models.vae import VAE
from jaxgen.train.loop import Inference, Task
from jaxgen.validation import ConfigError

EDIT_ROWS = 10  # test images in the VAE's latent-editing picture


def kl_schedule(beta: float = 1.0, warmup_steps: int = 0) -> optax.Schedule:
    """The KL term's weight after ``step`` updates: rises linearly from 0 to ``beta``.

    Args:
      beta: the final weight (1: the ELBO).
      warmup_steps: updates over which the weight rises; 0: ``beta`` from the start.

    Returns:
      An Optax schedule, step -> weight.

    Raises:
      ConfigError: a negative ``warmup_steps``.
    """
    if warmup_steps < 0:
        raise ConfigError(f"warmup_steps={warmup_steps} must be non-negative (0: no warm-up).")
    if warmup_steps == 0:
        return optax.constant_schedule(beta)
    return optax.linear_schedule(0.0, beta, transition_steps=warmup_steps)


def _check_picture_sizes(**sizes: int) -> None:
    """Raises a ConfigError naming the first size below 1 (the pictures come after training)."""
    for name, value in sizes.items():
        if value < 1:
            raise ConfigError(f"{name}={value} must be a positive integer.")


def _check_vae(
    model: VAE, beta, kl_warmup_steps, elbo_samples, iwae_samples, iwae_chunk_size, edit_dim
) -> None:
    """Raises a ConfigError naming the first bad VAE task argument."""
    sizes = dict(elbo_samples=elbo_samples, iwae_samples=iwae_samples)
    sizes["iwae_chunk_size"] = iwae_chunk_size
    for name, value in sizes.items():
        if value < 1:
            raise ConfigError(f"{name}={value} must be a positive integer.")
    if iwae_samples % min(iwae_chunk_size, iwae_samples):
        raise ConfigError(
            f"iwae_chunk_size={iwae_chunk_size} must divide iwae_samples={iwae_samples}."
        )
    if not beta >= 0:  # NaN too
        raise ConfigError(f"beta={beta} must be non-negative.")
    if kl_warmup_steps < 0:
        raise ConfigError(
            f"kl_warmup_steps={kl_warmup_steps} must be non-negative (0: no warm-up)."
        )
    if not 0 <= edit_dim < model.latent_dim or model.latent_dim < 2:
        raise ConfigError(
            f"edit_dim={edit_dim} must be in [0, model.latent_dim) and "
            f"model.latent_dim={model.latent_dim} at least 2 (for the latent manifold)."
        )


def vae(
    model: VAE,
    *,
    beta: float = 1.0,
    kl_warmup_steps: int = 0,
    elbo_samples: int = 1,
    iwae_samples: int = 100,
    iwae_chunk_size: int = 100,
    manifold_size: int = 20,
    edit_dim: int = 0,
    interpolation_steps: int = 10,
) -> Task:
    """The VAE's task: negative (beta-)ELBO loss, ELBO and IWAE evaluation, latent pictures.

    Train metrics: ``loss`` = ``beta`` * ``kl`` - ``log_likelihood``, with
    ``elbo``, ``kl``, ``log_likelihood`` (batch means) and ``beta``, the KL weight of the step. Eval
    metrics per image, in nats: ``elbo``, ``kl``, ``log_likelihood``, the IWAE
    bound ``iwae`` with K = ``iwae_samples``, ``nll_nats`` = -``iwae`` and its
    ``bits_per_dim``, ``elbo_bits_per_dim`` and ``iwae_samples`` (K). Pictures:
    prior samples (decoder mean and sampled x), the latent manifold over z[0],
    z[1], editing of z[edit_dim], interpolations, reconstructions.

    Args:
      model: the VAE.
      beta: the KL weight once warmed up (1: the ELBO).
      kl_warmup_steps: the KL weight rises linearly from 0 to ``beta`` over
        these steps (``kl_schedule``); 0: no warm-up.
      elbo_samples: Monte Carlo draws of z per image in the ELBO.
      iwae_samples: K of the IWAE bound in evaluations.
      iwae_chunk_size: draws of z held in memory at once; divides ``iwae_samples``.
      manifold_size: n of the n x n latent manifold.
      edit_dim: the dimension of z varied in the latent-editing picture.
      interpolation_steps: decoded points on each interpolation row.

    Returns:
      The Task.

    Raises:
      ConfigError: a bad argument, named.
    """
    _check_vae(model, beta, kl_warmup_steps, elbo_samples, iwae_samples, iwae_chunk_size, edit_dim)
    _check_picture_sizes(manifold_size=manifold_size, interpolation_steps=interpolation_steps)
    kl_weight = kl_schedule(beta, kl_warmup_steps)

    def init(key, batch):
        return model.init(key, batch["image"])

    def loss_fn(params, batch, key, step):
        terms = latent.elbo_terms(model, params, batch["image"], key, elbo_samples)
        terms = {name: value.mean() for name, value in terms.items()}
        weight = kl_weight(step)
        loss = weight * terms["kl"] - terms["log_likelihood"]
        return loss, {**terms, "beta": weight}

    def eval_fn(params, batch, key):
        x = batch["image"]
        num_dims = math.prod(x.shape[1:])
        elbo_key, iwae_key = jax.random.split(key)
        terms = latent.elbo_terms(model, params, x, elbo_key, elbo_samples)
        iwae = latent.iwae_log_px(model, params, x, iwae_key, iwae_samples, iwae_chunk_size)
        return {
            **terms,
            "iwae": iwae,
            "nll_nats": -iwae,
            "bits_per_dim": losses.bits_per_dim(-iwae, num_dims),
            "elbo_bits_per_dim": losses.bits_per_dim(-terms["elbo"], num_dims),
            "iwae_samples": jnp.full(x.shape[:1], iwae_samples, jnp.float32),
        }

    def write_samples(params, key, workdir, step, examples) -> list[pathlib.Path]:
        params = jax.device_get(params)
        images = examples["image"]
        means, samples = latent.prior_samples(model, params, key, len(images))
        manifold = latent.latent_manifold(model, params, manifold_size)
        values = ndtri((jnp.arange(manifold_size) + 0.5) / manifold_size)
        edits = latent.latent_edit(model, params, images[:EDIT_ROWS], edit_dim, values)
        recon = latent.reconstruct(model, params, images)
        interp = latent.interpolation_rows(
            model, params, images, model.num_levels, interpolation_steps
        )
        if jax.process_index() != 0:
            return []
        originals = viz.to_pixels(images, model.num_levels)[:, None]
        out = pathlib.Path(workdir) / "samples"
        prefix = f"step{step:07d}"
        return [
            viz.save_image_grid(out / f"{prefix}_prior_mean.png", viz.to_pixels(means), 256),
            viz.save_image_grid(out / f"{prefix}_prior_samples.png", samples, model.num_levels),
            viz.save_manifold(out / f"{prefix}_manifold.png", viz.to_pixels(manifold), 256),
            viz.save_rows(
                out / f"{prefix}_edit.png",  # first column: the encoded test image
                np.concatenate([originals[:EDIT_ROWS], viz.to_pixels(edits)], axis=1),
            ),
            viz.save_rows(out / f"{prefix}_interpolation.png", interp),
            viz.save_rows(
                out / f"{prefix}_reconstructions.png",  # top: test images, bottom: E[x|z=mean]
                np.stack([originals[:, 0], viz.to_pixels(recon)]),
            ),
        ]

    def log_likelihood(params, images, key, labels):
        del labels  # unconditional
        return latent.iwae_log_px(model, params, images, key, iwae_samples, iwae_chunk_size)

    def complete(params, key, images, known):
        return latent.complete(model, params, key, images, known)

    inference = Inference(
        sample=lambda params, key, shape: _prior_draws(model, params, key, shape),
        density="lower bound",
        density_note=f"IWAE bound L_K with K={iwae_samples} (Burda et al., 2016)",
        log_likelihood=log_likelihood,
        complete=complete,
        encode=_encoder(model),
        decode=_decoder(model),
    )
    return Task(
        init=init,
        loss_fn=loss_fn,
        loss_takes_step=True,
        eval_fn=eval_fn,
        write_samples=write_samples,
        family="vae",
        modules={"model": model},
        inference=inference,
    )


def _prior_draws(model: VAE, params, key: jax.Array, shape: tuple[int, ...]) -> jax.Array:
    """x ~ p(x|z), z ~ N(0, I): int [N, H, W, C] for ``shape`` (N, H, W, C)."""
    if tuple(shape[1:]) != tuple(model.image_shape):
        raise ConfigError(f"shape={shape}: the VAE draws images of shape {model.image_shape}.")
    return latent.prior_samples(model, params, key, shape[0])[1]


def _encoder(model: VAE | Autoencoder):
    """``(params, images) -> float [B, D]``: the code (a VAE's posterior mean)."""
    return jax.jit(lambda params, images: model.apply(params, images, method=model.encode_mean))


def _decoder(model: VAE | Autoencoder):
    """``(params, codes) -> float [B, H, W, C]``: the decoder's mean in [0, 1]."""
    return jax.jit(lambda params, codes: model.apply(params, codes, method=model.decode_mean))


def autoencoder(model: Autoencoder, *, interpolation_steps: int = 8) -> Task:
    """The autoencoder's task: summed squared error on the [0, 1] scale, pictures.

    Train metrics: ``loss`` (squared error per image) and ``mse`` (per
    dimension); eval metrics the same per image. Pictures: reconstructions
    (top: test images) and interpolations between pairs of test images.

    Args:
      model: the autoencoder.
      interpolation_steps: decoded points on each interpolation row.

    Returns:
      The Task.

    Raises:
      ConfigError: ``interpolation_steps`` < 1.
    """
    _check_picture_sizes(interpolation_steps=interpolation_steps)

    def sq_error(params, batch) -> jax.Array:
        """float [B] summed squared error on the [0, 1] scale."""
        x = batch["image"]
        return reconstruction_loss(model.apply(params, x), x, model.num_levels)

    def init(key, batch):
        return model.init(key, batch["image"])

    def loss_fn(params, batch, key):
        del key  # the model is deterministic
        loss = sq_error(params, batch).mean()
        return loss, {"mse": loss / math.prod(batch["image"].shape[1:])}

    def eval_fn(params, batch, key):
        del key
        per_image = sq_error(params, batch)
        return {"loss": per_image, "mse": per_image / math.prod(batch["image"].shape[1:])}

    def write_samples(params, key, workdir, step, examples) -> list[pathlib.Path]:
        del key  # the pictures are deterministic
        params = jax.device_get(params)
        images = examples["image"]
        recon = latent.reconstruct(model, params, images)
        recon = np.stack([viz.to_pixels(images, model.num_levels), viz.to_pixels(recon)])
        interp = latent.interpolation_rows(
            model, params, images, model.num_levels, interpolation_steps
        )
        if jax.process_index() != 0:
            return []
        out = pathlib.Path(workdir) / "samples"
        return [
            viz.save_rows(out / f"step{step:07d}_reconstructions.png", recon),  # top: originals
            viz.save_rows(out / f"step{step:07d}_interpolation.png", interp),
        ]

    inference = Inference(
        sample=None,
        density_note="an autoencoder has no prior and defines no density",
        encode=_encoder(model),
        decode=_decoder(model),
    )
    return Task(
        init=init,
        loss_fn=loss_fn,
        eval_fn=eval_fn,
        write_samples=write_samples,
        family="autoencoder",
        modules={"model": model},
        inference=inference,
    )
