"""An experiment config's model and task, one builder per family.

The experiments (``experiments/<name>.py``, ``experiments.compare``) and a
notebook holding a config from ``experiments/configs`` call
``from_config(family, config)``; the keys each family reads are those of its
config file.
"""

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

import flax.linen as nn
from ml_collections import ConfigDict

from jaxgen import data, likelihoods, metrics, transfer
from jaxgen import gan as gan_lib
from jaxgen.models import registry
from jaxgen.models.autoencoder import Autoencoder
from jaxgen.models.dcgan import ARCHITECTURES as GAN_ARCHITECTURES
from jaxgen.models.dcgan import make_gan
from jaxgen.models.rbm import RBM
from jaxgen.models.realnvp import RealNVP
from jaxgen.models.vae import VAE
from jaxgen.tasks.adversarial import gan
from jaxgen.tasks.autoregressive import autoregressive
from jaxgen.tasks.boltzmann import rbm
from jaxgen.tasks.flow import flow
from jaxgen.tasks.latent import autoencoder, vae
from jaxgen.train.loop import Task
from jaxgen.validation import ConfigError

# Flax modules by role, as in ``Task.modules``.
Modules = Mapping[str, nn.Module]


def _autoregressive(config: ConfigDict, modules: Modules) -> tuple[nn.Module, Task]:
    model = modules.get("model") or registry.build_model(config.model.to_dict(), config.num_levels)
    return model, autoregressive(model, sample_method=config.sample_method)


def _vae(config: ConfigDict, modules: Modules) -> tuple[nn.Module, Task]:
    model = modules.get("model")
    if not isinstance(model, VAE):
        likelihoods.check_likelihood(config.model.likelihood, config.num_levels)
        shape = data.dataset_info(config.dataset, data_dir=config.data_dir).image_shape
        model = VAE(num_levels=config.num_levels, image_shape=shape, **config.model.to_dict())
    task = vae(
        model,
        beta=config.beta,
        kl_warmup_steps=config.kl_warmup_steps,
        elbo_samples=config.elbo_samples,
        iwae_samples=config.iwae_samples,
        iwae_chunk_size=config.iwae_chunk_size,
        manifold_size=config.manifold_size,
        edit_dim=config.edit_dim,
        interpolation_steps=config.interpolation_steps,
    )
    return model, dataclasses.replace(task, check_config=transfer.check_config)


def _autoencoder(config: ConfigDict, modules: Modules) -> tuple[nn.Module, Task]:
    model = modules.get("model")
    if not isinstance(model, Autoencoder):
        shape = data.dataset_info(config.dataset, data_dir=config.data_dir).image_shape
        model = Autoencoder(
            num_levels=config.num_levels, image_shape=shape, **config.model.to_dict()
        )
    task = autoencoder(model, interpolation_steps=config.interpolation_steps)
    return model, dataclasses.replace(task, check_config=transfer.check_config)


def check_gan_config(config: ConfigDict) -> None:
    """Raises a ConfigError naming the first bad GAN-specific value of an experiment config.

    The ``fid.*`` keys are used from the first evaluation on; they are checked
    here, before training, with ``metrics.check_quality_args``.
    """
    if config.model.name not in GAN_ARCHITECTURES:
        raise ConfigError(
            f"model.name={config.model.name!r} must be one of {', '.join(GAN_ARCHITECTURES)}."
        )
    for key in ("features", "latent_dim"):
        if config.model[key] < 1:
            raise ConfigError(f"model.{key}={config.model[key]} must be a positive integer.")
    if config.k < 1:
        raise ConfigError(f"k={config.k} discriminator steps per generator step must be >= 1.")
    if config.batch_size % config.k:
        raise ConfigError(
            f"batch_size={config.batch_size} must be divisible by k={config.k}: each of the k "
            "discriminator updates takes batch_size // k real images."
        )
    if not config.learning_rate > 0:
        raise ConfigError(f"learning_rate={config.learning_rate} must be positive.")
    if config.interpolation_rows < 1 or config.interpolation_steps < 2:
        raise ConfigError(
            f"interpolation_rows={config.interpolation_rows} must be >= 1 and "
            f"interpolation_steps={config.interpolation_steps} >= 2."
        )
    fid = config.fid
    metrics.check_quality_args(
        config.dataset,
        num_samples=fid.num_samples,
        feature_dataset=fid.dataset,
        reference_split=fid.reference_split,
        reference_examples=fid.reference_examples,
        classifier_steps=fid.classifier_steps,
        classifier_batch_size=fid.classifier_batch_size,
        classifier_features=fid.classifier_features,
        classifier_seed=fid.classifier_seed,
        data_dir=config.data_dir,
        prefix="fid.",
    )
    info = data.dataset_info(fid.dataset or config.dataset, data_dir=config.data_dir)
    if info.num_classes == 0:
        raise ConfigError(
            f"FID needs a labelled dataset for its feature network, and {info.name!r} has no "
            "labels: set --config.fid.dataset=mnist (or the dataset yours derives from)."
        )
    if info.image_shape != data.dataset_info(config.dataset, data_dir=config.data_dir).image_shape:
        raise ConfigError(
            f"fid.dataset={info.name!r} has images of shape {info.image_shape}, unlike "
            f"dataset={config.dataset!r}; choose a feature dataset of the same shape."
        )


def gan_quality(config: ConfigDict) -> metrics.SampleQuality:
    """The FID and mode-coverage metric of a GAN config (trains its classifier once per folder)."""
    fid = config.fid
    data_dir = data.prepare(config.dataset, data_dir=config.data_dir, raw_dir=config.raw_dir)
    if fid.dataset:
        data.prepare(fid.dataset, data_dir=config.data_dir, raw_dir=config.raw_dir)
    return metrics.SampleQuality.for_dataset(
        config.dataset,
        data_dir,
        num_samples=fid.num_samples,
        feature_dataset=fid.dataset,
        reference_split=fid.reference_split,
        reference_examples=fid.reference_examples,
        classifier_steps=fid.classifier_steps,
        classifier_batch_size=fid.classifier_batch_size,
        classifier_features=fid.classifier_features,
        classifier_seed=fid.classifier_seed,
    )


def _gan(config: ConfigDict, modules: Modules) -> tuple[gan_lib.GAN, Task]:
    if modules:  # a trained run's networks: its data's shape need not be at hand
        generator, discriminator = modules["generator"], modules["discriminator"]
        shape = None
    else:
        check_gan_config(config)
        shape = data.dataset_info(config.dataset, data_dir=config.data_dir).image_shape
        generator, discriminator = make_gan(config.model.name, shape, config.model.features)
    task = gan(
        generator,
        discriminator,
        latent_dim=config.model.latent_dim,
        num_levels=config.num_levels,
        k=config.k,
        generator_loss=config.generator_loss,
        adam_b1=config.adam_b1,
        adam_b2=config.adam_b2,
        seed=config.seed,
        num_samples=config.num_samples,
        interpolation_rows=config.interpolation_rows,
        interpolation_steps=config.interpolation_steps,
        quality=lambda: gan_quality(config),
        quality_samples=config.fid.num_samples,
    )
    return gan_lib.GAN(generator, discriminator, shape, config.model.latent_dim), task


def _flow(config: ConfigDict, modules: Modules) -> tuple[nn.Module, Task]:
    model = modules.get("model")
    if not isinstance(model, RealNVP):
        model = RealNVP(num_levels=config.num_levels, **config.model.to_dict())
    return model, flow(model, temperatures=config.temperatures, iw_samples=config.iw_samples)


def _rbm(config: ConfigDict, modules: Modules) -> tuple[nn.Module, Task]:
    model = modules.get("model")
    if not isinstance(model, RBM):
        shape = data.dataset_info(config.dataset, data_dir=config.data_dir).image_shape
        model = RBM(image_shape=shape, num_levels=config.num_levels, **config.model.to_dict())
    ais = config.ais
    task = rbm(
        model,
        cd_steps=config.cd_steps,
        persistent=config.persistent,
        num_chains=config.num_chains or config.batch_size,
        optimizer=config.optimizer,
        momentum=config.momentum,
        initial_momentum=config.initial_momentum,
        momentum_warmup_steps=config.momentum_warmup_steps,
        weight_decay=config.weight_decay,
        pseudo_count=ais.pseudo_count,
        ais_runs=ais.runs,
        ais_steps=ais.steps,
        eval_ais_runs=ais.eval_runs,
        eval_ais_steps=ais.eval_steps,
        num_gibbs_steps=config.num_gibbs_steps,
        sample_init=config.sample_init,
        num_filters=config.num_filters,
    )
    return model, task


FAMILIES: dict[str, Callable[[ConfigDict, Modules], tuple[Any, Task]]] = {
    "autoregressive": _autoregressive,
    "vae": _vae,
    "autoencoder": _autoencoder,
    "gan": _gan,
    "rbm": _rbm,
    "flow": _flow,
}


def from_config(
    family: str, config: ConfigDict, modules: Modules | None = None
) -> tuple[nn.Module | gan_lib.GAN, Task]:
    """The model and task an experiment config describes.

    Args:
      family: ``"autoregressive"`` (``experiments/configs/pixelcnn.py`` and
        ``pixelrnn.py``), ``"vae"``, ``"autoencoder"``, ``"gan"`` or ``"flow"`` (their
        config files).
      config: the experiment config.
      modules: the Flax modules by role (``Task.modules``) to use instead of
        building them from ``config.model``: how ``jaxgen.load_run`` rebuilds a
        run with the modules it trained.

    Returns:
      (model, task): the Flax module (a ``jaxgen.gan.GAN`` for ``"gan"``) and its Task.

    Raises:
      ConfigError: an unknown family, or a bad value of a key the family reads.
    """
    if family not in FAMILIES:
        raise ConfigError(f"family={family!r} must be one of {', '.join(FAMILIES)}.")
    return FAMILIES[family](config, dict(modules or {}))
