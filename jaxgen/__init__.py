"""jaxgen: classic deep generative models for images in JAX/Flax.

The public API, one module per job (``from jaxgen import models, losses, ...``):

  models     Flax modules: FVSBN, NADE, MADE, PixelCNN, GatedPixelCNN, PixelRNN,
             Autoencoder, VAE, DCGANGenerator/DCGANDiscriminator,
             MLPGenerator/MLPDiscriminator
  losses     autoregressive_nll, bits_per_dim, gaussian_kl, iwae_bound,
             reconstruction_loss, gan_discriminator_loss, gan_generator_loss
  sampling   autoregressive_sample, complete (method naive | cached, temperature,
             first_pixel), first_pixel_marginal
  latent     VAE/AE: elbo, iwae_log_px, prior_samples, latent_manifold, interpolate, complete
  tasks      one factory per family -> train.Task: autoregressive, vae, autoencoder, gan
  train      train_and_evaluate, Task, TrainState, make_train_step, Checkpointer
  data       prepare, dataset_info, train_batches, eval_batches, DatasetError
  metrics    fid, SampleQuality (FID, mode coverage, ...), nearest_training_neighbours
  viz        image grids, latent manifolds, interpolation strips
  levels     int levels <-> [-1, 1] and [0, 1]
  load_run   a trained workdir back as a Run: sample, log_likelihood, complete,
             encode/decode, evaluate (``jaxgen.runs``)
  ais        annealed importance sampling of an RBM's log Z (``models.RBM``)

Also: ``gan`` (the two-player step), ``likelihoods`` (decoder likelihoods),
``parallel`` (mesh, shardings, multi-host), ``timing``, ``transfer``, ``nn``
(layers). ``ConfigError`` is the type of every error about a user's input.
Modules are imported on first use, so ``import jaxgen`` stays light.
"""

import importlib
from typing import TYPE_CHECKING, Any

from jaxgen.validation import ConfigError

if TYPE_CHECKING:
    from jaxgen import (
        ais,
        data,
        gan,
        latent,
        levels,
        likelihoods,
        losses,
        metrics,
        models,
        nn,
        parallel,
        sampling,
        tasks,
        timing,
        train,
        transfer,
        viz,
    )
    from jaxgen.runs import Run, load_run

__all__ = [
    "ConfigError",
    "Run",
    "load_run",
    "models",
    "losses",
    "sampling",
    "latent",
    "tasks",
    "train",
    "data",
    "metrics",
    "viz",
    "levels",
    "gan",
    "likelihoods",
    "parallel",
    "timing",
    "transfer",
    "nn",
    "ais",
]
_MODULES = frozenset(__all__) - {"ConfigError", "Run", "load_run"}
_RUN_NAMES = frozenset({"Run", "load_run"})
__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    """Imports the public module ``jaxgen.<name>`` (or ``load_run``, ``Run``) on first access."""
    if name in _MODULES:
        return importlib.import_module(f"jaxgen.{name}")
    if name in _RUN_NAMES:
        return getattr(importlib.import_module("jaxgen.runs"), name)
    raise AttributeError(f"module 'jaxgen' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_MODULES, *_RUN_NAMES])
