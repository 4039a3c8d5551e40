"""GAN on MNIST: DCGAN (or the fully connected GAN), FID and mode coverage while training.

    python -m experiments.gan --workdir DIR [--config=experiments/configs/gan.py:cpu]

``metrics.jsonl`` rows:
  train  ``d_loss``, ``g_loss``, ``d_real`` = D(x), ``d_fake`` = D(G(z)) of the
         train step (``loss`` = ``d_loss``).
  eval   two rows per evaluation: the same per example on the held-out split,
         with BatchNorm running averages; and a row with ``fid`` (generated
         samples vs the reference split, ``fid_num_samples`` of them),
         ``fid_real_test`` (the held-out test images vs the same reference: the
         floor a perfect generator would reach at that N), and the mode coverage
         of the samples: ``class_entropy`` (log 10 = 2.303 at best),
         ``min_class_share`` (0.1 at best), ``classes_covered``.
See ``jaxgen.metrics`` for the FID protocol and ``jaxgen.tasks.gan`` for the task.

Pictures in ``samples/``: ``stepNNNNNNN_samples.png`` from one fixed noise batch
(the same codes at every evaluation, so progress is visible) and
``stepNNNNNNN_interpolation.png``, rows of G(z) along straight lines between
pairs of fixed codes. ``checkpoints/`` holds the latest states (to resume);
``checkpoints_best/`` the variables with the lowest FID so far, with the FID in
its metadata (the loop's ``Task.best_metric``).
"""

import pathlib

import jax
from ml_collections import ConfigDict

from experiments import cli
from jaxgen import tasks, train

DEFAULT_CONFIG = pathlib.Path(__file__).parent / "configs" / "gan.py"


def run(config: ConfigDict, workdir: pathlib.Path) -> None:
    """Trains and evaluates the GAN in ``workdir`` and prints the best FID."""
    _, task = tasks.from_config("gan", config)
    train.train_and_evaluate(task, config, workdir)
    if jax.process_index() == 0:
        fid = train.best_metric_value(workdir, "fid")
        print(f"Best FID {fid:.3f} (checkpoint in {workdir / train.BEST_DIR}).")


if __name__ == "__main__":
    cli.main(run, DEFAULT_CONFIG)
