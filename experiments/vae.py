"""VAE on binarized MNIST: ELBO training, IWAE test log-likelihood, latent pictures.

    python -m experiments.vae --workdir DIR [--config=experiments/configs/vae.py:cpu]

Evaluation rows hold, in nats per image, the ``elbo`` (with its ``kl`` and
``log_likelihood`` terms) and the IWAE bound ``iwae`` with K = ``iwae_samples``
draws; ``nll_nats = -iwae`` and ``bits_per_dim`` are the IWAE estimate of -log
p(x), an upper bound on the true NLL, comparable with PixelCNN's ``nll_nats``
(both are discrete likelihoods of the same images). Pictures in ``samples/``:
prior samples (decoder mean and sampled x), the latent manifold over z[0], z[1],
latent editing of z[edit_dim], interpolations between test images, reconstructions.
Then the encoder's few-label transfer, as in ``experiments.autoencoder``.
"""

import math
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.scipy.special import ndtri
from ml_collections import ConfigDict

from experiments import cli
from experiments.autoencoder import interpolation_rows, run_transfer, save_rows, to_pixels
from jaxgen import data, latent, likelihoods, losses, viz
from jaxgen.models.vae import VAE
from jaxgen.train import Task, jit_train_step, train_and_evaluate
from jaxgen.validation import ConfigError

DEFAULT_CONFIG = pathlib.Path(__file__).parent / "configs" / "vae.py"
PICTURE_ROWS = 10  # test images in the latent-editing picture


def make_model(config: ConfigDict) -> VAE:
    """The VAE with the config's sizes and likelihood and the dataset's image shape."""
    return VAE(
        num_levels=config.num_levels,
        image_shape=data.dataset_info(config.dataset).image_shape,
        **config.model.to_dict(),
    )


def kl_weight(config: ConfigDict, step: jax.Array) -> jax.Array:
    """The KL term's weight after ``step`` updates: beta, reached linearly over kl_warmup_steps."""
    if config.kl_warmup_steps <= 0:
        return jnp.asarray(config.beta, jnp.float32)
    return config.beta * jnp.minimum(1.0, step / config.kl_warmup_steps)


def check_config(config: ConfigDict) -> None:
    """Raises a ValueError naming the first bad VAE-specific value."""
    for name in ("elbo_samples", "iwae_samples", "iwae_chunk_size"):
        if config[name] < 1:
            raise ConfigError(f"{name}={config[name]} must be a positive integer.")
    if config.iwae_samples % min(config.iwae_chunk_size, config.iwae_samples):
        raise ConfigError(
            f"iwae_chunk_size={config.iwae_chunk_size} must divide "
            f"iwae_samples={config.iwae_samples}."
        )
    if config.beta < 0:
        raise ConfigError(f"beta={config.beta} must be non-negative.")
    likelihoods.check_likelihood(config.model.likelihood, config.num_levels)
    if not 0 <= config.edit_dim < config.model.latent_dim or config.model.latent_dim < 2:
        raise ConfigError(
            f"edit_dim={config.edit_dim} must be in [0, model.latent_dim) and "
            f"model.latent_dim={config.model.latent_dim} at least 2 (for the latent manifold)."
        )


def make_task(config: ConfigDict) -> Task:
    """The VAE task: negative ELBO loss, ELBO and IWAE per example, latent pictures."""
    check_config(config)
    model = make_model(config)
    num_dims = math.prod(data.dataset_info(config.dataset).image_shape)

    def init(key, batch):
        return model.init(key, batch["image"])

    def loss_fn(params, batch, key, beta):
        terms = latent.elbo_terms(model, params, batch["image"], key, config.elbo_samples)
        terms = {name: value.mean() for name, value in terms.items()}
        loss = beta * terms["kl"] - terms["log_likelihood"]
        return loss, {**terms, "beta": beta}

    def make_train_step(tx, schedule, mesh):
        def train_step(state, batch, key):
            key = jax.random.fold_in(key, state.step)
            grad_fn = jax.value_and_grad(loss_fn, has_aux=True)
            (loss, metrics), grads = grad_fn(
                state.params, batch, key, kl_weight(config, state.step)
            )
            metrics = {**metrics, "loss": loss, "grad_norm": optax.global_norm(grads)}
            metrics["learning_rate"] = schedule(state.step)
            return state.apply_gradients(grads, tx, config.ema_decay), metrics

        return jit_train_step(train_step, mesh)

    def eval_fn(params, batch, key):
        x = batch["image"]
        elbo_key, iwae_key = jax.random.split(key)
        terms = latent.elbo_terms(model, params, x, elbo_key, config.elbo_samples)
        iwae = latent.iwae_log_px(
            model, params, x, iwae_key, config.iwae_samples, config.iwae_chunk_size
        )
        return {
            **terms,
            "iwae": iwae,
            "nll_nats": -iwae,
            "bits_per_dim": losses.bits_per_dim(-iwae, num_dims),
            "elbo_bits_per_dim": losses.bits_per_dim(-terms["elbo"], num_dims),
            "iwae_samples": jnp.full(x.shape[:1], config.iwae_samples, jnp.float32),
        }

    def write_samples(params, key, workdir, step, examples) -> list[pathlib.Path]:
        params = jax.device_get(params)
        images = examples["image"]
        means, samples = latent.prior_samples(model, params, key, config.num_samples)
        manifold = latent.latent_manifold(model, params, config.manifold_size)
        values = ndtri((jnp.arange(config.manifold_size) + 0.5) / config.manifold_size)
        edits = latent.latent_edit(model, params, images[:PICTURE_ROWS], config.edit_dim, values)
        recon = latent.reconstruct(model, params, images)
        interp = interpolation_rows(
            model, params, images, config.num_levels, config.interpolation_steps
        )
        if jax.process_index() != 0:
            return []
        originals = to_pixels(images, config.num_levels)[:, None]
        out = pathlib.Path(workdir) / "samples"
        prefix = f"step{step:07d}"
        return [
            viz.save_image_grid(out / f"{prefix}_prior_mean.png", to_pixels(means), 256),
            viz.save_image_grid(out / f"{prefix}_prior_samples.png", samples, config.num_levels),
            save_rows(out / f"{prefix}_manifold.png", to_pixels(manifold)),
            save_rows(
                out / f"{prefix}_edit.png",  # first column: the encoded test image
                np.concatenate([originals[:PICTURE_ROWS], to_pixels(edits)], axis=1),
            ),
            save_rows(out / f"{prefix}_interpolation.png", interp),
            save_rows(
                out / f"{prefix}_reconstructions.png",  # top: test images, bottom: E[x|z=mean]
                np.stack([originals[:, 0], to_pixels(recon)]),
            ),
        ]

    return Task(
        init=init,
        loss_fn=lambda params, batch, key: loss_fn(params, batch, key, config.beta),
        eval_fn=eval_fn,
        write_samples=write_samples,
        make_train_step=make_train_step,
    )


def run(config: ConfigDict, workdir: pathlib.Path) -> None:
    """Trains and evaluates the VAE in ``workdir``, then the few-label transfer."""
    state = train_and_evaluate(make_task(config), config, workdir)
    run_transfer(make_model(config), state.eval_params, config, workdir)


if __name__ == "__main__":
    cli.main(run, DEFAULT_CONFIG)
