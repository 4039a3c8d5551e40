"""Image grids as PNG files (Pillow)."""

import math
import pathlib

import numpy as np
from PIL import Image

from jaxgen.validation import ConfigError


def image_grid(images: np.ndarray, num_levels: int, num_cols: int | None = None) -> np.ndarray:
    """Tiles a batch of images into one picture with a 1-pixel gap.

    Args:
      images: int [B, H, W, C] levels in [0, num_levels); C is 1 or 3.
      num_levels: intensity levels L, mapped linearly onto [0, 255].
      num_cols: images per row; default the smallest square that fits B.

    Returns:
      uint8 [rows * (H + 1) + 1, cols * (W + 1) + 1, C], the gaps mid-grey.
    """
    images = np.asarray(images)
    if images.ndim != 4 or images.shape[-1] not in (1, 3):
        raise ConfigError(f"images must be [B, H, W, C] with C in (1, 3); got {images.shape}.")
    b, h, w, c = images.shape
    cols = num_cols or math.ceil(math.sqrt(b))
    rows = math.ceil(b / cols)
    pixels = np.round(images.astype(np.float64) * (255.0 / (num_levels - 1))).astype(np.uint8)
    grid = np.full((rows * (h + 1) + 1, cols * (w + 1) + 1, c), 128, np.uint8)
    for k in range(b):
        i, j = divmod(k, cols)
        grid[1 + i * (h + 1) : (i + 1) * (h + 1), 1 + j * (w + 1) : (j + 1) * (w + 1)] = pixels[k]
    return grid


def save_image_grid(
    path: str | pathlib.Path, images: np.ndarray, num_levels: int, num_cols: int | None = None
) -> pathlib.Path:
    """Writes ``image_grid(images, num_levels, num_cols)`` as a PNG, creating parent folders.

    Args:
      path: the PNG file to write.
      images: int [B, H, W, C] levels in [0, num_levels).
      num_levels: intensity levels L.
      num_cols: images per row (default: square grid).

    Returns:
      The path written.
    """
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    grid = image_grid(images, num_levels, num_cols)
    Image.fromarray(grid[..., 0] if grid.shape[-1] == 1 else grid).save(path)
    return path
