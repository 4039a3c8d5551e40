"""Samples (or completions) from a trained run, as a picture or raw levels.

    python -m experiments.sample --workdir DIR --num 64 --out samples.png
        [--temperature T] [--first_pixel model|uniform] [--label K] [--seed S]
        [--step N | --best]
    python -m experiments.sample --workdir DIR --complete drawing.png [--known top_half]
        [--num 8] --out completions.png

``--out`` ending in ``.png`` writes a grid like the training pictures; ``.npy``
writes the int levels [N, H, W, C]. ``--complete`` takes an image file, a folder
of them, or an ``.npy``/``.npz`` (see ``jaxgen.runs.read_images``); each image
gets ``--num`` completions of its unknown part (``--known``: ``top_half``,
``left_half`` or ``rows:N``, the first N rows), shown in a row after the given
part and before the original. ``--label`` is the class of a class-conditional
model (default: the samples cycle through the classes). The key is
``jax.random.key(seed)``: ``jaxgen.load_run(DIR).sample(jax.random.key(S), N)``
draws the same images in a notebook.
"""

import pathlib
import sys
from collections.abc import Sequence

import jax
import numpy as np
from absl import flags

from experiments import cli
from jaxgen import runs, viz
from jaxgen.validation import ConfigError

USAGE = (
    "python -m experiments.sample --workdir DIR --out FILE.png|FILE.npy [--num N] "
    "[--temperature T] [--first_pixel model|uniform] [--label K] [--seed S] [--step N | --best] "
    "[--complete IMAGES --known top_half|left_half|rows:N]"
)
SAMPLES, COMPLETIONS = 64, 8  # default --num without and with --complete


def define_flags(f: flags.FlagValues) -> None:
    """The command's flags."""
    flags.DEFINE_string("workdir", None, "The trained run's folder.", flag_values=f)
    flags.DEFINE_string("out", None, "Output file: .png (a grid) or .npy (levels).", flag_values=f)
    flags.DEFINE_integer("num", None, "Samples, or completions per image.", flag_values=f)
    flags.DEFINE_float(
        "temperature",
        1.0,
        "Softmax temperature (autoregressive); flow: z ~ N(0, T^2 I).",
        flag_values=f,
    )
    flags.DEFINE_string("first_pixel", "model", "model or uniform (autoregressive).", flag_values=f)
    flags.DEFINE_integer("label", None, "Class of a class-conditional model.", flag_values=f)
    flags.DEFINE_integer("seed", 0, "Seed of jax.random.key.", flag_values=f)
    flags.DEFINE_integer("step", None, "Checkpoint step (default: the latest).", flag_values=f)
    flags.DEFINE_bool("best", False, "The best checkpoint (a GAN's lowest FID).", flag_values=f)
    flags.DEFINE_string("complete", None, "Images to complete (file, folder, .npy).", flag_values=f)
    flags.DEFINE_string("known", "top_half", "top_half, left_half or rows:N.", flag_values=f)
    for name in ("workdir", "out"):
        flags.mark_flag_as_required(name, flag_values=f)


def known_mask(spec: str, image_shape: Sequence[int]) -> np.ndarray:
    """The known pixels bool [H, W] that ``--known`` names.

    Raises:
      ConfigError: an unknown name or a bad row count.
    """
    height, width = image_shape[:2]
    known = np.zeros((height, width), bool)
    if spec == "top_half":
        known[: height // 2] = True
    elif spec == "left_half":
        known[:, : width // 2] = True
    elif spec.startswith("rows:") and spec[5:].isdigit() and 0 < int(spec[5:]) < height:
        known[: int(spec[5:])] = True
    else:
        raise ConfigError(
            f"--known={spec!r} must be top_half, left_half or rows:N with 0 < N < {height}."
        )
    return known


def main(argv: Sequence[str]) -> None:
    """Parses ``argv``, loads the run and writes its samples or completions."""
    f = cli.parse_command_flags(argv, define_flags, USAGE)
    out = pathlib.Path(f.out)
    if out.suffix not in (".png", ".npy"):
        raise ConfigError(f"--out={f.out} must end in .png (a picture) or .npy (the levels).")
    num = f.num if f.num is not None else COMPLETIONS if f.complete else SAMPLES
    if num < 1:
        raise ConfigError(f"--num={num} must be a positive number of images.")
    run = runs.load_run(f.workdir, step=f.step, best=f.best)
    key = jax.random.key(f.seed)
    options = {}
    if run.family == "autoregressive":
        options = {"temperature": f.temperature, "first_pixel": f.first_pixel}
    elif run.family == "flow" and f.first_pixel == "model":
        options = {"temperature": f.temperature}  # z ~ N(0, T^2 I)
    elif f.temperature != 1.0 or f.first_pixel != "model":
        raise ConfigError(
            "--temperature is for autoregressive and flow runs and --first_pixel for "
            f"autoregressive runs, not a {run.family}."
        )
    if f.complete is None:
        labels = _labels(run, f.label, num)
        images = run.sample(key, num, **options, **labels)
        if out.suffix == ".npy":
            _save_npy(out, images)
        else:
            title = f"{run.family}, step {run.step}: {num} samples"
            viz.save_grid(out, images, run.num_levels, title=title)
    else:
        given = runs.read_images(f.complete, run.image_shape, run.num_levels)
        known = known_mask(f.known, run.image_shape)
        tiled = np.repeat(given, num, axis=0)
        labels = _labels(run, f.label, len(tiled))
        filled = run.complete(key, tiled, known, **options, **labels)
        filled = filled.reshape(len(given), num, *run.image_shape)
        if out.suffix == ".npy":
            _save_npy(out, filled)
        else:
            shown = np.where(known[..., None], given, 0)[:, None]
            rows = np.concatenate([shown, filled, given[:, None]], axis=1)
            title = f"{run.family}, step {run.step}: given part, {num} completions, original"
            viz.save_grid(out, rows, run.num_levels, title=title)
    print(f"Wrote {out}")


def _labels(run: runs.Run, label: int | None, num: int) -> dict[str, np.ndarray]:
    """``{"labels": int [num]}`` for a class-conditional model (``label``, else cycling)."""
    if getattr(run.model, "num_classes", None) is None:
        if label is not None:
            raise ConfigError(f"--label={label}: the run's model is not class-conditional.")
        return {}
    if label is not None and not 0 <= label < run.model.num_classes:
        raise ConfigError(f"--label={label} must be in [0, {run.model.num_classes}).")
    cycle = np.arange(num) % run.model.num_classes
    return {"labels": cycle if label is None else np.full(num, label)}


def _save_npy(path: pathlib.Path, images: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path, np.asarray(images))


if __name__ == "__main__":
    cli.guarded(lambda: main(sys.argv))
