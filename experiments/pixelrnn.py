"""PixelRNN (Row LSTM, Diagonal BiLSTM) on binarized MNIST: likelihood, samples, completions.

    python -m experiments.pixelrnn --workdir DIR \
        [--config=experiments/configs/pixelrnn.py:row_lstm,cpu]

The task is PixelCNN's (``experiments.pixelcnn``): the same NLL in nats per
image and bits per dimension, the same samples and completions; only the
model, named by ``config.model.name``, differs.
"""

import pathlib

from experiments import cli, pixelcnn

DEFAULT_CONFIG = pathlib.Path(__file__).parent / "configs" / "pixelrnn.py"

run = pixelcnn.run

if __name__ == "__main__":
    cli.main(run, DEFAULT_CONFIG)
