"""PixelRNN (Row LSTM, Diagonal BiLSTM) on binarized MNIST: likelihood, samples, completions.

    python -m experiments.pixelrnn --workdir DIR \
        [--config=experiments/configs/pixelrnn.py:row_lstm,cpu]

The task is PixelCNN's (``jaxgen.tasks.autoregressive``): the same NLL in nats
per image and bits per dimension, the same samples and completions; only the
model, named by ``config.model.name``, differs.
"""

import pathlib

from ml_collections import ConfigDict

from experiments import cli
from jaxgen import tasks, train

DEFAULT_CONFIG = pathlib.Path(__file__).parent / "configs" / "pixelrnn.py"


def run(config: ConfigDict, workdir: pathlib.Path) -> None:
    """Trains and evaluates the PixelRNN ``config.model`` describes in ``workdir``."""
    _, task = tasks.from_config("autoregressive", config)
    train.train_and_evaluate(task, config, workdir)


if __name__ == "__main__":
    cli.main(run, DEFAULT_CONFIG)
