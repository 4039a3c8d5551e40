"""Test NLL against training wall-clock minutes, from the checkpoints runs kept.

    python -m experiments.curve --run "Row LSTM=runs/hour_row_lstm" [--run LABEL=DIR ...]
        --out docs/images/nll_vs_minutes.png [--every N] [--max_examples all|N]
        [--reference "PixelCNN (paper)=81.30" ...] [--y_max NLL]

Every kept checkpoint of each run (every ``--every``-th, the last always) is
evaluated on the test split (the family's evaluation, as ``experiments.evaluate``:
exact NLL for autoregressive models, the IWAE bound for a VAE) and placed at the
training wall-clock its checkpoint recorded (``jaxgen.runs.checkpoint_times``:
compilation and periodic evaluations included). The values are kept in each
run's ``test_curve.json``: a second call evaluates only checkpoints it has not, and
draws every point the cache holds for a kept checkpoint. A ``--run`` may name such a
file instead of a workdir (e.g. a copy kept in ``docs/curves/`` after the workdir is
gone): its points for ``--max_examples`` are drawn, and nothing is evaluated.
Prints one JSON line per point and writes the figure. Run it on a quiet machine
after the training runs, never beside a run being timed.
"""

import json
import pathlib
import sys
from collections.abc import Sequence

from absl import flags

from experiments import cli
from jaxgen import runs, viz
from jaxgen.validation import ConfigError

USAGE = (
    'python -m experiments.curve --run "LABEL=DIR" [--run ...] --out PNG [--every N] '
    '[--max_examples all|N] [--reference "LABEL=NLL" ...] [--y_max NLL]'
)
CACHE = "test_curve.json"


def define_flags(f: flags.FlagValues) -> None:
    """The command's flags."""
    flags.DEFINE_multi_string("run", None, "LABEL=DIR of a trained run.", flag_values=f)
    flags.DEFINE_string("out", None, "The figure (PNG).", flag_values=f)
    flags.DEFINE_integer("every", 1, "Evaluate every N-th kept checkpoint.", flag_values=f)
    flags.DEFINE_string("max_examples", "all", "all, or the first N test images.", flag_values=f)
    flags.DEFINE_multi_string(
        "reference", [], "LABEL=NLL: a dashed line (a paper's number).", flag_values=f
    )
    flags.DEFINE_float(
        "y_max",
        None,
        "Top of the NLL axis: the first points of a run (an EMA of the weights still warming "
        "up) can sit 100 nats above the rest.",
        flag_values=f,
    )
    flags.mark_flags_as_required(["run", "out"], flag_values=f)


def split_pair(text: str, flag: str) -> tuple[str, str]:
    """``LABEL=VALUE`` -> ``(LABEL, VALUE)``, with an error naming the flag."""
    label, sep, value = text.rpartition("=")
    if not sep or not label or not value:
        raise ConfigError(f"--{flag}={text!r} must be LABEL=VALUE.")
    return label, value


def point_key(step: int, limit: int | None) -> str:
    """A point's key in ``test_curve.json``: one point per (step, test examples)."""
    return f"{step}:{limit}"


def saved_curve(path: pathlib.Path, limit: int | None) -> list[dict]:
    """The points of a saved ``test_curve.json`` on ``limit`` test examples, ascending by step."""
    try:
        cache = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise ConfigError(f"--run file {str(path)!r} is not a saved curve: {error}") from None
    points = [row for key, row in cache.items() if key == point_key(row["step"], limit)]
    if not points:
        raise ConfigError(
            f"--run file {str(path)!r} holds no point on {limit or 'all'} test examples "
            "(see --max_examples)."
        )
    return sorted(points, key=lambda row: row["step"])


def curve(workdir: pathlib.Path, every: int, limit: int | None) -> list[dict]:
    """The test rows of ``workdir``'s kept checkpoints: every ``every``-th (evaluated unless
    cached) and any other one already in the cache, ascending by step; or, when ``workdir``
    is a file, the points it saved (``saved_curve``)."""
    if every < 1:
        raise ConfigError(f"--every={every} must be at least 1.")
    if workdir.is_file():
        return saved_curve(workdir, limit)
    times = runs.checkpoint_times(workdir)
    steps = sorted(times)
    chosen = steps[::-1][::every][::-1]  # counted back from the last checkpoint
    cache_path = workdir / CACHE
    cache = json.loads(cache_path.read_text()) if cache_path.exists() else {}
    keys = {step: point_key(step, limit) for step in steps}
    for step in chosen:
        if keys[step] not in cache:
            row = runs.load_run(workdir, step=step).evaluate("test", max_examples=limit)
            cache[keys[step]] = {"step": step, "minutes": times[step] / 60.0, **row}
            cache_path.write_text(json.dumps(cache, indent=1))
    # Points an earlier call evaluated are drawn too: they cost nothing.
    return [cache[keys[step]] for step in steps if keys[step] in cache]


def main(argv: Sequence[str]) -> None:
    """Parses ``argv``, evaluates the runs' checkpoints, prints the points, writes the figure."""
    f = cli.parse_command_flags(argv, define_flags, USAGE)
    limit = cli.max_examples(f.max_examples)
    if limit == "run":
        raise ConfigError("--max_examples must be all or N here.")
    references = {}
    for text in f.reference:
        label, value = split_pair(text, "reference")
        try:
            references[label] = float(value)
        except ValueError:
            raise ConfigError(f"--reference={text!r}: {value!r} is not a number.") from None
    curves = {}
    for text in f.run:
        label, workdir = split_pair(text, "run")
        rows = curve(pathlib.Path(workdir), f.every, limit)
        for row in rows:
            print(json.dumps({"run": label, "workdir": workdir, **row}), flush=True)
        curves[label] = [(row["minutes"], row["nll_nats"]) for row in rows]
    if f.y_max is not None:
        lowest = min(nll for points in curves.values() for _, nll in points)
        if f.y_max <= lowest:
            raise ConfigError(
                f"--y_max={f.y_max} is at or below every point (lowest {lowest:.2f})."
            )
    path = viz.save_nll_curves(f.out, curves, references=references, y_max=f.y_max)
    print(f"Wrote {path}")


if __name__ == "__main__":
    cli.guarded(lambda: main(sys.argv))
