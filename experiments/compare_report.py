"""The comparison's outputs: ``report.md``, ``results.json`` and three figures.

samples.png      sample grids side by side, real test images first;
completions.png  test images, their given top halves, and each model's completion;
curves.png       test-split NLL (nats) of the validation evaluations against
                 wall-clock minutes of training, and the GAN's FID likewise;
memorisation.png each model's samples above their nearest training images (pixels);
distances.png    the distributions of those distances, the test images' beside them.
"""

import datetime
import json
import math
import os
import pathlib
from collections.abc import Mapping, Sequence
from typing import Any

import jax
import matplotlib
import numpy as np
from ml_collections import ConfigDict

from jaxgen import viz

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

_PANEL_INCHES = 2.4
_NEIGHBOUR_PICTURES = 8  # samples per model in memorisation.png


def write(
    workdir: pathlib.Path,
    config: ConfigDict,
    rows: Sequence[Mapping[str, Any]],
    pictures: Mapping[str, Mapping[str, np.ndarray]],
    examples: np.ndarray,
    levels: int,
) -> str:
    """Writes the report and figures to ``workdir`` (on process 0) and returns the report.

    Args:
      workdir: the comparison's folder.
      config: the compare config.
      rows: one dict of results per model, the real test images first.
      pictures: model -> {"grid": int [N, H, W, C], "completions": int [M, H, W, C]}.
      examples: int [M, H, W, C], the test images the models completed.
      levels: intensity levels L of the images.

    Returns:
      The markdown of ``report.md``.
    """
    report = markdown(config, rows)
    if jax.process_index() != 0:
        return report
    titles = {row["model"]: row["title"] for row in rows}
    save_samples(workdir / "samples.png", pictures, titles, levels)
    save_completions(workdir / "completions.png", pictures, titles, examples, levels)
    save_curves(workdir / "curves.png", rows)
    save_memorisation(workdir / "memorisation.png", pictures, titles, levels)
    save_distances(workdir / "distances.png", pictures, titles)
    (workdir / "report.md").write_text(report)
    results = {"config": json.loads(config.to_json()), "rows": list(rows)}
    (workdir / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    return report


def markdown(config: ConfigDict, rows: Sequence[Mapping[str, Any]]) -> str:
    """The report: set-up, one table, notes and the figures."""
    device = jax.devices()[0]
    n = config.eval.num_samples
    timing_n = config.eval.timing_samples
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        f"# jaxgen compare: {config.dataset}, budget `{config.budget}`",
        "",
        f"{now}; jax {jax.__version__} on {jax.device_count()} {device.platform} device(s) "
        f"({device.device_kind}), {os.cpu_count()} CPU cores.",
        "",
        "| model | likelihood | parameters | steps | train time | test NLL (nats) | bits/dim "
        f"| -ELBO (nats) | FID (N={n}) | class entropy | smallest class "
        f"| sample {timing_n} (s) | naive sample {timing_n} (s) "
        "| precision | recall | density | coverage | memorised |",
        "| --- | --- |" + " ---: |" * 16,
    ]
    branch = None
    for row in rows:
        if row.get("branch", branch) != branch:  # a header row per branch of the taxonomy
            branch = row["branch"]
            lines.append(f"| **{branch}** |" + " |" * 17)
        naive = row.get("naive_sample_seconds")
        naive_text = _number(naive, 3)
        if naive is not None and row.get("naive_timing_passes") is not None:
            naive_text = f"≈ {naive_text}"
        cells = [
            row["title"],
            _likelihood(row),
            _count(row.get("parameters")),
            _count(row.get("train_steps")),
            _duration(row.get("train_seconds")),
            _number(row.get("nll_nats"), 2) + (" (IWAE)" if "iwae_samples" in row else ""),
            _number(row.get("bits_per_dim"), 4),
            _number(row.get("elbo_nats"), 2),
            _number(row.get("fid"), 2),
            _number(row.get("class_entropy"), 3),
            _percent(row.get("min_class_share")),
            _number(row.get("sample_seconds"), 3),
            naive_text,
            _number(row.get("precision"), 3),
            _number(row.get("recall"), 3),
            _number(row.get("density"), 3),
            _number(row.get("coverage"), 3),
            _percent(row.get("memorised_pixel")),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    iwae = next((row["iwae_samples"] for row in rows if "iwae_samples" in row), None)
    vae_note = f"; for the VAE the IWAE bound with K = {iwae}, an upper bound on its NLL"
    limit = config.eval.test_max_examples
    test_images = "the whole test split" if limit is None else f"the first {limit} test images"
    lines += [
        "",
        "Notes:",
        f"- Test NLL is on {test_images}: exact for the autoregressive models"
        + (vae_note if iwae else "")
        + ". The likelihood column says what each number is: exact, a bound on the NLL "
        "(VAE: IWAE; flow: the dequantised density) or an estimate (RBM: annealed importance "
        "sampling); the GAN defines no density. Rows are grouped by the branches of the "
        "taxonomy of generative models (Goodfellow, NIPS 2016 tutorial).",
        "- Train time is the wall clock of the training run, compilation and the periodic "
        "evaluations included.",
        f"- FID and mode coverage: {n} samples per model, features of a classifier trained on "
        "the labelled training split (jaxgen.metrics), reference statistics from "
        f"{config.eval.reference_examples or 'all'} training images; the first row measures "
        f"{n} real test images the same way (the floor). Class entropy is at most "
        f"{math.log(10):.3f} (10 classes) and the smallest class share at most 10%.",
        "- Precision / recall (k = 3, Kynkäänniemi et al. 2019) and density / coverage "
        f"(k = 5, Naeem et al. 2020) on the same features, against the first {n} training "
        "images: precision and density fall for samples off the data, recall and coverage "
        "for data a model never produces (dropped modes).",
        "- Memorised: the share of samples nearer (in pixels) to a training image than the "
        f"nearest 1% of the {n} test images are: about 1% or less for a model that makes new "
        "images, 100% for one that copies (memorisation.png, distances.png).",
        f"- Sampling time: seconds to draw {timing_n} images once compiled (the fastest of "
        "3 runs): cached sampling for the autoregressive models, one decoder or generator "
        "pass for VAE and GAN. Naive: one full network pass per pixel"
        + (
            f"; ≈ marks a time extrapolated from {config.eval.naive_timing_passes} timed "
            "passes to all of them."
            if config.eval.naive_timing_passes
            else "."
        ),
        "",
        "![samples](samples.png)",
        "",
        "![completions](completions.png)",
        "",
        "![training curves](curves.png)",
        "",
        "![samples and their nearest training images](memorisation.png)",
        "",
        "![distances to the nearest training image](distances.png)",
        "",
    ]
    return "\n".join(lines)


def save_samples(
    path: pathlib.Path,
    pictures: Mapping[str, Mapping[str, np.ndarray]],
    titles: Mapping[str, str],
    levels: int,
) -> None:
    """One panel of samples per model."""
    fig, axes = plt.subplots(
        1, len(pictures), figsize=(_PANEL_INCHES * len(pictures), _PANEL_INCHES + 0.4)
    )
    for ax, (name, images) in zip(np.atleast_1d(axes), pictures.items(), strict=True):
        _show(ax, viz.image_grid(images["grid"], levels))
        ax.set_title(titles[name], fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def save_completions(
    path: pathlib.Path,
    pictures: Mapping[str, Mapping[str, np.ndarray]],
    titles: Mapping[str, str],
    examples: np.ndarray,
    levels: int,
) -> None:
    """Rows: the test images, their given top halves, each model's completions."""
    given = np.round(examples * (255.0 / (levels - 1))).astype(np.int32)
    given[:, examples.shape[1] // 2 :] = 128  # the hidden half, grey
    strips = [("test images", examples, levels), ("given (top half)", given, 256)]
    strips += [
        (titles[name], images["completions"], levels)
        for name, images in pictures.items()
        if "completions" in images
    ]
    width = _PANEL_INCHES * max(2.0, len(examples) / 3)
    fig, axes = plt.subplots(len(strips), 1, figsize=(width, 0.9 * len(strips) + 0.3))
    for ax, (label, images, num_levels) in zip(axes, strips, strict=True):
        _show(ax, viz.image_grid(images, num_levels, num_cols=len(images)))
        ax.set_ylabel(label, rotation=0, ha="right", va="center", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def save_curves(path: pathlib.Path, rows: Sequence[Mapping[str, Any]]) -> None:
    """NLL against wall-clock minutes (likelihood models), and FID likewise (GANs)."""
    panels = [("nll_nats", "validation NLL (nats), IWAE for the VAE"), ("fid", "FID")]
    panels = [(m, label) for m, label in panels if any(r.get("curve_metric") == m for r in rows)]
    fig, axes = plt.subplots(1, len(panels), figsize=(5.5 * len(panels), 4), squeeze=False)
    for ax, (metric, label) in zip(axes[0], panels, strict=True):
        for row in rows:
            if row.get("curve_metric") == metric and row["curve"]:
                seconds, values = zip(*row["curve"], strict=True)
                ax.plot(np.array(seconds) / 60.0, values, marker="o", label=row["title"])
        ax.set_xlabel("training wall-clock (minutes)")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def save_memorisation(
    path: pathlib.Path,
    pictures: Mapping[str, Mapping[str, np.ndarray]],
    titles: Mapping[str, str],
    levels: int,
) -> None:
    """Rows: each model's first samples, then their nearest training images (pixels)."""
    members = [(name, images) for name, images in pictures.items() if name != "test_images"]
    n = min(_NEIGHBOUR_PICTURES, *(len(images["grid"]) for _, images in members))
    rows, labels = [], []
    for name, images in members:
        rows += [images["grid"][:n], images["nearest"][:n]]
        labels += [titles[name], "nearest training image"]
    viz.save_grid(
        path,
        np.stack(rows),
        levels,
        title="samples above their nearest training images (pixel distance)",
        row_labels=labels,
    )


def save_distances(
    path: pathlib.Path,
    pictures: Mapping[str, Mapping[str, np.ndarray]],
    titles: Mapping[str, str],
) -> None:
    """CDFs of the samples' and the test images' distances to their nearest training image."""
    viz.save_distance_curves(
        path,
        {titles[name]: images["nearest_distance"] for name, images in pictures.items()},
        "pixel distance to the nearest training image ([0, 1] intensities)",
        title="a model that copies its training data sits left of the test images",
    )


def _show(ax, grid: np.ndarray) -> None:
    ax.imshow(grid[..., 0] if grid.shape[-1] == 1 else grid, cmap="gray", vmin=0, vmax=255)
    ax.set_xticks([])
    ax.set_yticks([])


def _likelihood(row: Mapping[str, Any]) -> str:
    """What the row's NLL is: exact, a bound or an estimate; "none" for a model without one."""
    if "family" not in row:
        return "data"
    return row.get("likelihood") or "none"


def _number(value: float | None, digits: int) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def _count(value: int | None) -> str:
    return "—" if value is None else f"{value:,}"


def _percent(value: float | None) -> str:
    return "—" if value is None else f"{100 * value:.1f}%"


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.1f} min"
