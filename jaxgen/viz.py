"""Pictures as PNG files: upscaled image grids with separators and captions (Pillow).

Every grid is drawn at ``SCALE`` (4) output pixels per image pixel (nearest
neighbour, so a 28 x 28 digit becomes 112 x 112), with ``GAP``-pixel grey
separators between images; a title above, labels left of the rows and above
the columns are drawn on white margins when given.
"""

import math
import os
import pathlib
from collections.abc import Mapping, Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from jaxgen.validation import ConfigError

SCALE = 4  # output pixels per image pixel
GAP = 2  # separator width in output pixels
SEPARATOR = 128  # separator grey level
MARGIN = 255  # caption margins: white
INK = 0  # caption text: black
FONT_SIZE = 14
_PAD = 4  # pixels around caption text


def to_pixels(images: np.ndarray, num_levels: int | None = None) -> np.ndarray:
    """Images as 8-bit levels for the grids: float in [0, 1] (``num_levels=None``) or int levels.

    Args:
      images: float [..., H, W, C] in [0, 1], or int levels in [0, num_levels).
      num_levels: L of integer images; None for floats.

    Returns:
      int32 [..., H, W, C] in [0, 255].
    """
    scale = 255.0 if num_levels is None else 255.0 / (num_levels - 1)
    return np.round(np.asarray(images, np.float64) * scale).astype(np.int32)


def _as_rows(images: np.ndarray, num_cols: int | None) -> np.ndarray:
    """int [B, H, W, C] (in rows of ``num_cols``) or [R, S, H, W, C] -> [R, S, H, W, C].

    The last row of [B, H, W, C] images is padded with -1 (drawn as separator grey).
    """
    if images.ndim == 5:
        if num_cols is not None:
            raise ConfigError(
                "num_cols applies to [B, H, W, C] images; [R, S, ...] are rows already."
            )
        return images
    if images.ndim != 4 or len(images) == 0:
        raise ConfigError(
            f"images must be [B, H, W, C] or [R, S, H, W, C] with B >= 1; got {images.shape}."
        )
    b = len(images)
    cols = num_cols or math.ceil(math.sqrt(b))
    if cols < 1:
        raise ConfigError(f"num_cols={num_cols} must be a positive number of images per row.")
    rows = math.ceil(b / cols)
    blank = np.full((rows * cols - b, *images.shape[1:]), -1, images.dtype)
    return np.concatenate([images, blank]).reshape(rows, cols, *images.shape[1:])


def _pixels(images: np.ndarray, num_levels: int) -> np.ndarray:
    """Levels in [0, num_levels) -> uint8 in [0, 255]; the padding (-1) -> separator grey."""
    if num_levels < 2:
        raise ConfigError(f"num_levels={num_levels} must be at least 2.")
    real = images >= 0
    if np.any(images >= num_levels):
        raise ConfigError(f"images have levels up to {images.max()}, outside [0, {num_levels}).")
    pixels = np.round(images.astype(np.float64) * (255.0 / (num_levels - 1)))
    return np.where(real, pixels, SEPARATOR).astype(np.uint8)


def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    return ImageFont.load_default(size=size)


def _text_size(text: str, font) -> tuple[int, int]:
    left, top, right, bottom = font.getbbox(text)
    return right - left, bottom - top


def image_grid(
    images: np.ndarray,
    num_levels: int,
    num_cols: int | None = None,
    *,
    scale: int = SCALE,
    gap: int = GAP,
    title: str | None = None,
    row_labels: Sequence[str] | None = None,
    col_labels: Sequence[str] | None = None,
    font_size: int = FONT_SIZE,
) -> np.ndarray:
    """Tiles images into one upscaled picture with separators and optional captions.

    Args:
      images: int [B, H, W, C] levels in [0, num_levels), laid out in rows of
        ``num_cols`` (default: the smallest square that fits B), or int
        [R, S, H, W, C]: R rows of S images. C is 1 or 3.
      num_levels: intensity levels L, mapped linearly onto [0, 255].
      num_cols: images per row of [B, H, W, C] images.
      scale: output pixels per image pixel (nearest-neighbour upscaling), >= 1.
      gap: separator width in output pixels, >= 0.
      title: drawn above the grid.
      row_labels: one per row, drawn left of it.
      col_labels: one per column, drawn above it.
      font_size: caption text height in pixels.

    Returns:
      uint8 [height, width, C]: without captions height = R (H scale + gap) + gap
      and width = S (W scale + gap) + gap; captions add white margins (C becomes 3
      only if the images have 3 channels).

    Raises:
      ConfigError: bad shapes, levels, scale, gap or label counts.
    """
    images = np.asarray(images)
    if not np.issubdtype(images.dtype, np.integer) or (images.size and images.min() < 0):
        raise ConfigError(
            f"images must be integer levels in [0, {num_levels}); got dtype {images.dtype}."
        )
    rows = _as_rows(images.astype(np.int64), num_cols)
    r, s, h, w, c = rows.shape
    if c not in (1, 3):
        raise ConfigError(f"images must have 1 or 3 channels; got {c}.")
    if scale < 1 or gap < 0:
        raise ConfigError(f"scale={scale} must be >= 1 and gap={gap} >= 0.")
    for name, labels, n in (("row_labels", row_labels, r), ("col_labels", col_labels, s)):
        if labels is not None and len(labels) != n:
            raise ConfigError(f"{name} has {len(labels)} labels for {n} {name[:3]}s of images.")
    cells = _pixels(rows, num_levels).repeat(scale, axis=2).repeat(scale, axis=3)
    cell_h, cell_w = h * scale + gap, w * scale + gap
    grid = np.full((r * cell_h + gap, s * cell_w + gap, c), SEPARATOR, np.uint8)
    for i in range(r):
        for j in range(s):
            top, left = gap + i * cell_h, gap + j * cell_w
            grid[top : top + h * scale, left : left + w * scale] = cells[i, j]
    if title is None and row_labels is None and col_labels is None:
        return grid
    font = _font(font_size)
    line = font_size + 2 * _PAD
    left = 0 if row_labels is None else max(_text_size(t, font)[0] for t in row_labels) + 2 * _PAD
    title_h = 0 if title is None else line
    top = title_h + (0 if col_labels is None else line)
    width = left + grid.shape[1]
    if title is not None:
        width = max(width, _text_size(title, font)[0] + 2 * _PAD)
    canvas = Image.new("L" if c == 1 else "RGB", (width, top + grid.shape[0]), MARGIN)
    canvas.paste(Image.fromarray(grid[..., 0] if c == 1 else grid), (left, top))
    draw = ImageDraw.Draw(canvas)
    ink = INK if c == 1 else (INK,) * 3
    if title is not None:
        draw.text((_PAD, _PAD), title, fill=ink, font=font)
    for j, label in enumerate(col_labels or ()):
        x = left + gap + j * cell_w + (w * scale) // 2
        draw.text((x, title_h + line // 2), label, fill=ink, font=font, anchor="mm")
    for i, label in enumerate(row_labels or ()):
        y = top + gap + i * cell_h + (h * scale) // 2
        draw.text((left - _PAD, y), label, fill=ink, font=font, anchor="rm")
    out = np.asarray(canvas)
    return out[..., None] if c == 1 else out


def _write_png(path: str | os.PathLike, picture: np.ndarray) -> pathlib.Path:
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(picture[..., 0] if picture.shape[-1] == 1 else picture).save(path)
    return path


def save_grid(
    path: str | os.PathLike,
    images: np.ndarray,
    num_levels: int,
    num_cols: int | None = None,
    **captions,
) -> pathlib.Path:
    """Writes ``image_grid(images, num_levels, num_cols, **captions)`` as a PNG.

    Args:
      path: the PNG file; parent folders are created.
      images: int [B, H, W, C] or [R, S, H, W, C] levels in [0, num_levels).
      num_levels: intensity levels L.
      num_cols: images per row of [B, H, W, C] images (default: square grid).
      **captions: ``scale``, ``gap``, ``title``, ``row_labels``, ``col_labels``,
        ``font_size`` of ``image_grid``.

    Returns:
      The path written.
    """
    return _write_png(path, image_grid(images, num_levels, num_cols, **captions))


save_image_grid = save_grid  # the name the experiments used first


def save_rows(path: str | os.PathLike, rows: np.ndarray, **captions) -> pathlib.Path:
    """Writes int [R, S, H, W, C] 8-bit images (``to_pixels``) as R rows of S images.

    Args:
      path: the PNG file.
      rows: int [R, S, H, W, C] levels in [0, 256).
      **captions: as ``save_grid``.

    Returns:
      The path written.
    """
    return save_grid(path, rows, 256, **captions)


def manifold_labels(num_per_axis: int) -> list[str]:
    """Prior percentiles 100 (i + 1/2) / n of ``latent.latent_manifold``'s grid, as text."""
    return [f"{100 * (i + 0.5) / num_per_axis:.3g}%" for i in range(num_per_axis)]


def save_manifold(
    path: str | os.PathLike,
    images: np.ndarray,
    num_levels: int,
    dims: tuple[int, int] = (0, 1),
    title: str | None = None,
) -> pathlib.Path:
    """Writes a latent manifold with its rows and columns labelled by prior percentile.

    Args:
      path: the PNG file.
      images: int [n, n, H, W, C]: ``latent.latent_manifold``'s decoder means as
        levels; row i varies z[dims[0]], column j varies z[dims[1]].
      num_levels: intensity levels L of ``images``.
      dims: the two latent dimensions varied.
      title: default names the dimensions.

    Returns:
      The path written.
    """
    n = np.shape(images)[0]
    labels = manifold_labels(n)
    if title is None:
        title = (
            f"decoder means over prior percentiles: rows z[{dims[0]}], columns z[{dims[1]}], "
            "other z = 0"
        )
    return save_grid(path, images, num_levels, title=title, row_labels=labels, col_labels=labels)


def save_progress(
    path: str | os.PathLike,
    images: np.ndarray,
    step: int,
    num_levels: int,
    title: str | None = None,
) -> pathlib.Path:
    """Adds one evaluation's row to a progress picture: rows = evaluations, labelled by step.

    The rows so far are kept beside the PNG in ``<path>.npz`` (so a resumed run
    continues the picture); a row of a step already there replaces it. Use the
    same inputs (e.g. a GAN's fixed noise) at every step.

    Args:
      path: the PNG file.
      images: int [S, H, W, C] levels in [0, num_levels): this evaluation's row.
      step: the training step of the row.
      num_levels: intensity levels L.
      title: drawn above the rows.

    Returns:
      The path written.

    Raises:
      ConfigError: ``images`` differ in shape from the rows stored before.
    """
    path = pathlib.Path(path)
    store = path.with_name(path.name + ".npz")
    images = np.asarray(images)
    history: dict[int, np.ndarray] = {}
    if store.is_file():
        with np.load(store) as saved:
            history = dict(zip(saved["steps"].tolist(), saved["rows"], strict=True))
        shapes = {row.shape for row in history.values()}
        if shapes != {images.shape}:
            raise ConfigError(
                f"The progress rows in {store} have shape {shapes.pop()} but this row has "
                f"{images.shape}; delete {store} (and {path.name}) to start a new picture."
            )
    history[int(step)] = images
    steps = sorted(history)
    rows = np.stack([history[s] for s in steps])
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = store.with_name(f"{store.name}.tmp{os.getpid()}.npz")
    np.savez_compressed(tmp, steps=np.asarray(steps), rows=rows)
    tmp.replace(store)
    labels = [f"step {s}" for s in steps]
    return save_grid(path, rows, num_levels, title=title, row_labels=labels)


def save_neighbours(
    path: str | os.PathLike,
    samples: np.ndarray,
    nearest: Mapping[str, np.ndarray],
    num_levels: int,
    title: str | None = None,
) -> pathlib.Path:
    """Writes samples above their nearest training images, one labelled row each.

    Args:
      path: the PNG file.
      samples: int [S, H, W, C] levels in [0, num_levels).
      nearest: row label -> int [S, H, W, C], the training image nearest to each
        sample (e.g. in pixel space and in feature space).
      num_levels: intensity levels L.
      title: drawn above the rows.

    Returns:
      The path written.
    """
    rows = np.stack([np.asarray(samples), *(np.asarray(x) for x in nearest.values())])
    labels = ["samples", *(f"nearest train ({name})" for name in nearest)]
    return save_grid(path, rows, num_levels, title=title, row_labels=labels)


def save_distance_curves(
    path: str | os.PathLike,
    distances: Mapping[str, np.ndarray],
    xlabel: str,
    title: str | None = None,
) -> pathlib.Path:
    """Writes the empirical CDFs of distance sets (e.g. samples vs test images to the training set).

    Args:
      path: the PNG file.
      distances: curve label -> float [N] distances.
      xlabel: what the distances are.
      title: the figure's title.

    Returns:
      The path written.
    """
    from matplotlib.figure import Figure  # imported here: the grids do not need matplotlib

    fig = Figure(figsize=(5.5, 4))  # no pyplot: a notebook's backend is left alone
    ax = fig.subplots()
    for label, d in distances.items():
        d = np.sort(np.asarray(d, np.float64))
        ax.step(d, np.arange(1, len(d) + 1) / len(d), where="post", label=f"{label} (N={len(d)})")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("fraction at or below")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    if title:
        ax.set_title(title, fontsize=10)
    fig.tight_layout()
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    return path


def save_nll_curves(
    path: str | os.PathLike,
    curves: Mapping[str, Sequence[tuple[float, float]]],
    ylabel: str = "test NLL (nats)",
    references: Mapping[str, float] | None = None,
    y_max: float | None = None,
) -> pathlib.Path:
    """Writes NLL against training wall-clock minutes, one line per run.

    Args:
      path: the PNG file.
      curves: line label -> ``(minutes, nll)`` points.
      ylabel: what the NLL is.
      references: horizontal lines, label -> NLL (e.g. a paper's number).
      y_max: the top of the NLL axis (points above it leave the figure, their lines
        run off its top edge); None fits every point.

    Returns:
      The path written.
    """
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6.5, 4.5))
    ax = fig.subplots()
    for label, points in curves.items():
        minutes, values = zip(*sorted(points), strict=True)
        ax.plot(minutes, values, marker="o", markersize=3, label=label)
    for label, value in (references or {}).items():
        ax.axhline(value, color="grey", linestyle="--", linewidth=0.8)
        ax.annotate(label, (0.01, value), xycoords=ax.get_yaxis_transform(), fontsize=7)
    if y_max is not None:
        ax.set_ylim(top=y_max)
    ax.set_xlabel("training wall-clock (minutes)")
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    return path
