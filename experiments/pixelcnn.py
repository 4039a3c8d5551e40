"""PixelCNN on binarized MNIST: exact likelihood, samples and completions.

    python -m experiments.pixelcnn --workdir DIR [--config=experiments/configs/pixelcnn.py:cpu]

Reports test-split NLL in nats per image and bits per dimension. With
``model.num_classes`` set (the ``conditional`` variant: Gated PixelCNN on
dynamically binarized MNIST) the model learns p(x | label): training and
evaluation feed each image's label, and the sample grid cycles through the
classes. The task is ``jaxgen.tasks.autoregressive``.
"""

import pathlib

from ml_collections import ConfigDict

from experiments import cli
from jaxgen import tasks, train

DEFAULT_CONFIG = pathlib.Path(__file__).parent / "configs" / "pixelcnn.py"


def run(config: ConfigDict, workdir: pathlib.Path) -> None:
    """Trains and evaluates the autoregressive model ``config.model`` names in ``workdir``."""
    _, task = tasks.from_config("autoregressive", config)
    train.train_and_evaluate(task, config, workdir)


if __name__ == "__main__":
    cli.main(run, DEFAULT_CONFIG)
