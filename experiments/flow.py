"""RealNVP on 8-bit MNIST: maximum likelihood of dequantized images, test bits/dim, samples.

    python -m experiments.flow --workdir DIR [--config=experiments/configs/flow.py:cpu]

Evaluation rows hold, per image, ``nll_nats`` = -log p_V(x + u) with one draw of
uniform dequantization noise u per image and every Jacobian term included (the
flow's, the logit transform's and the 1/256 scaling's), and its
``bits_per_dim``: an estimate of an upper bound on -log P(x) of the integer
image, comparable with PixelCNN's ``nll_nats`` on the same 8-bit data (both
are discrete likelihoods). Pictures in ``samples/``: samples at T = 1 and a
temperature strip (the same z scaled by each T in ``temperatures``)
(``jaxgen.tasks.flow``).
"""

import pathlib

from ml_collections import ConfigDict

from experiments import cli
from jaxgen import tasks, train

DEFAULT_CONFIG = pathlib.Path(__file__).parent / "configs" / "flow.py"


def run(config: ConfigDict, workdir: pathlib.Path) -> None:
    """Trains and evaluates the flow in ``workdir``."""
    _, task = tasks.from_config("flow", config)
    train.train_and_evaluate(task, config, workdir)


if __name__ == "__main__":
    cli.main(run, DEFAULT_CONFIG)
