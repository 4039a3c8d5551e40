"""VAE on binarized MNIST: ELBO training, IWAE test log-likelihood, latent pictures.

    python -m experiments.vae --workdir DIR [--config=experiments/configs/vae.py:cpu]

Evaluation rows hold, in nats per image, the ``elbo`` (with its ``kl`` and
``log_likelihood`` terms) and the IWAE bound ``iwae`` with K = ``iwae_samples``
draws; ``nll_nats = -iwae`` and ``bits_per_dim`` are the IWAE estimate of -log
p(x), an upper bound on the true NLL, comparable with PixelCNN's ``nll_nats``
(both are discrete likelihoods of the same images). Pictures in ``samples/``:
prior samples (decoder mean and sampled x), the latent manifold over z[0], z[1],
latent editing of z[edit_dim], interpolations between test images, reconstructions
(``jaxgen.tasks.vae``). Then the encoder's few-label transfer
(``jaxgen.transfer.run_transfer``).
"""

import pathlib

from ml_collections import ConfigDict

from experiments import cli
from jaxgen import tasks, train, transfer

DEFAULT_CONFIG = pathlib.Path(__file__).parent / "configs" / "vae.py"


def run(config: ConfigDict, workdir: pathlib.Path) -> None:
    """Trains and evaluates the VAE in ``workdir``, then the few-label transfer."""
    model, task = tasks.from_config("vae", config)
    state = train.train_and_evaluate(task, config, workdir)
    transfer.run_transfer(model, state.eval_params, config, workdir)


if __name__ == "__main__":
    cli.main(run, DEFAULT_CONFIG)
