"""Conv autoencoder on MNIST: L2 reconstruction, then few-label transfer of its encoder.

    python -m experiments.autoencoder --workdir DIR
        [--config=experiments/configs/autoencoder.py:cpu]

Logs the test split's reconstruction error (``jaxgen.tasks.autoencoder``), then,
for every ``transfer.labels_per_class``, one ``test`` row with the accuracy of a
classifier head on the frozen encoder, on the fine-tuned encoder and of the
same classifier trained from scratch on the same labelled images
(``jaxgen.transfer.run_transfer``).
"""

import pathlib

from ml_collections import ConfigDict

from experiments import cli
from jaxgen import tasks, train, transfer

DEFAULT_CONFIG = pathlib.Path(__file__).parent / "configs" / "autoencoder.py"


def run(config: ConfigDict, workdir: pathlib.Path) -> None:
    """Trains and evaluates the autoencoder in ``workdir``, then the few-label transfer."""
    model, task = tasks.from_config("autoencoder", config)
    state = train.train_and_evaluate(task, config, workdir)
    transfer.run_transfer(model, state.eval_params, config, workdir)


if __name__ == "__main__":
    cli.main(run, DEFAULT_CONFIG)
