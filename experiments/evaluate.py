"""Evaluates a trained run and prints one JSON object.

    python -m experiments.evaluate --workdir DIR [--split test] [--max_examples run|all|N]
        [--images PATH] [--step N | --best] [--iwae_samples K]

On a split of the run's dataset (default: its test split, with as many
examples as the run used there, so the test row of ``metrics.jsonl`` comes
back): the family's evaluation with the run's evaluation key. Autoregressive:
``nll_nats`` (exact) and ``bits_per_dim``; VAE: ``elbo``, the IWAE bound
``iwae`` (``nll_nats`` = -iwae) and ``iwae_samples`` (K); autoencoder: the
reconstruction error; GAN: its discriminator losses and, with the run's FID
settings, ``fid``, ``precision``, ``recall``, ``density``, ``coverage`` and mode
coverage. ``--images`` evaluates an image file, a folder or an ``.npy``/``.npz``
instead (see ``jaxgen.runs.read_images``). ``density`` says what the
likelihood is: ``exact``, ``lower bound`` or null. ``--iwae_samples`` sets a
VAE's K of the IWAE bound instead of the run's (the IWAE paper reports K = 5000).
"""

import json
import sys
from collections.abc import Sequence

from absl import flags

from experiments import cli
from jaxgen import runs

USAGE = (
    "python -m experiments.evaluate --workdir DIR [--split SPLIT] [--max_examples run|all|N] "
    "[--images PATH] [--step N | --best] [--iwae_samples K]"
)


def define_flags(f: flags.FlagValues) -> None:
    """The command's flags."""
    flags.DEFINE_string("workdir", None, "The trained run's folder.", flag_values=f)
    flags.DEFINE_string("split", None, "Split of the run's dataset (default: test).", flag_values=f)
    flags.DEFINE_string(
        "max_examples", "run", "run (as the run did), all, or N first examples.", flag_values=f
    )
    flags.DEFINE_string("images", None, "Images to evaluate instead of a split.", flag_values=f)
    flags.DEFINE_integer("step", None, "Checkpoint step (default: the latest).", flag_values=f)
    flags.DEFINE_bool("best", False, "The best checkpoint (a GAN's lowest FID).", flag_values=f)
    flags.DEFINE_integer(
        "iwae_samples", None, "A VAE's K of the IWAE bound (default: the run's).", flag_values=f
    )
    flags.mark_flag_as_required("workdir", flag_values=f)


def main(argv: Sequence[str]) -> None:
    """Parses ``argv``, loads the run, evaluates it and prints the JSON row."""
    f = cli.parse_command_flags(argv, define_flags, USAGE)
    limit = cli.max_examples(f.max_examples)
    updates = {} if f.iwae_samples is None else {"iwae_samples": f.iwae_samples}
    run = runs.load_run(f.workdir, step=f.step, best=f.best, config_updates=updates)
    if f.images is not None:
        images = runs.read_images(f.images, run.image_shape, run.num_levels)
        row = run.evaluate(images=images)
    else:
        row = run.evaluate(f.split, max_examples=limit)
    print(json.dumps({"workdir": str(run.workdir), **row}))


if __name__ == "__main__":
    cli.guarded(lambda: main(sys.argv))
