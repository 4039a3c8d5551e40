"""One task per model family: what ``train.train_and_evaluate`` trains.

    from jaxgen import models, tasks, train

    task = tasks.autoregressive(models.PixelCNN(num_levels=2))  # also GatedPixelCNN, PixelRNN
    task = tasks.vae(models.VAE(latent_dim=2))
    task = tasks.autoencoder(models.Autoencoder())
    task = tasks.gan(models.DCGANGenerator(...), models.DCGANDiscriminator(...))
    task = tasks.flow(models.RealNVP(num_levels=256))
    task = tasks.rbm(models.RBM(num_hidden=500), cd_steps=25)
    state = train.train_and_evaluate(task, config, workdir)

Each factory takes the Flax module(s) first; its other arguments (sampling,
pictures, loss weights, evaluation sizes) have defaults. ``from_config``
builds an experiment config's model and task: what ``experiments/*.py`` and
``experiments.compare`` run.
"""

from jaxgen.tasks.adversarial import SampleEvaluator, gan
from jaxgen.tasks.autoregressive import autoregressive
from jaxgen.tasks.boltzmann import rbm
from jaxgen.tasks.configured import FAMILIES, from_config
from jaxgen.tasks.flow import flow
from jaxgen.tasks.latent import autoencoder, kl_schedule, vae

__all__ = [
    "FAMILIES",
    "SampleEvaluator",
    "autoencoder",
    "autoregressive",
    "flow",
    "from_config",
    "gan",
    "kl_schedule",
    "rbm",
    "vae",
]
