"""RBM on binarized MNIST: contrastive divergence (CD-k or PCD), log-likelihood by AIS.

    python -m experiments.rbm --workdir DIR [--config=experiments/configs/rbm.py:cpu]

``metrics.jsonl`` rows:
  train  ``loss`` = ``free_energy_gap`` = mean F(v_data) - mean F(v_model), the
         CD objective (not a likelihood); ``free_energy_data``,
         ``free_energy_model``, ``recon_error`` (squared error of the mean-field
         reconstruction per image), ``grad_norm``, ``learning_rate``, ``momentum``.
  eval   per image on the held-out split: ``nll_nats`` = F(v) + log Z with log Z
         estimated by AIS (``ais.eval_runs`` x ``ais.eval_steps``), ``bits_per_dim``,
         ``nll_nats_low`` / ``nll_nats_high`` (with the ends of log Z's ±3σ
         band), ``free_energy``, ``recon_error``; and ``log_z``, ``log_z_low``,
         ``log_z_high``, ``ais_runs``, ``ais_steps``.
  test   the same on the test split with the test AIS (``ais.runs`` x ``ais.steps``).
The NLL is an estimate, not a bound: AIS's Z is unbiased, so its log Z is low
on average and the NLL optimistic by about the spread of the runs. See
``jaxgen.ais`` and ``jaxgen.tasks.boltzmann``.

Pictures in ``samples/`` after training: ``stepNNNNNNN_samples.png`` (p(v|h)
after ``num_gibbs_steps`` Gibbs sweeps from the base model),
``stepNNNNNNN_filters.png`` (columns of W) and ``stepNNNNNNN_completions.png``
(bottom halves filled in by clamped Gibbs sampling, above the originals).
"""

import json
import pathlib

import jax
from ml_collections import ConfigDict

from experiments import cli
from jaxgen import tasks, train

DEFAULT_CONFIG = pathlib.Path(__file__).parent / "configs" / "rbm.py"


def run(config: ConfigDict, workdir: pathlib.Path) -> None:
    """Trains and evaluates the RBM in ``workdir`` and prints the test NLL with its band."""
    _, task = tasks.from_config("rbm", config)
    train.train_and_evaluate(task, config, workdir)
    if jax.process_index() == 0:
        lines = (workdir / "metrics.jsonl").read_text().splitlines()
        row = [r for r in map(json.loads, lines) if r["split"] == "test"][-1]
        print(
            f"Test NLL {row['nll_nats']:.2f} nats (AIS estimate, {row['ais_runs']} runs x "
            f"{row['ais_steps']} steps; log Z ±3σ band: NLL in [{row['nll_nats_low']:.2f}, "
            f"{row['nll_nats_high']:.2f}]) on {row['num_examples']} test images."
        )


if __name__ == "__main__":
    cli.main(run, DEFAULT_CONFIG)
