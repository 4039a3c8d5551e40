"""Picture layout: upscaled grids, separators, captions, progress rows, manifold labels."""

import numpy as np
import pytest
from PIL import Image

from jaxgen import viz


def _digits(n: int, h: int = 3, w: int = 2) -> np.ndarray:
    """n distinct int [h, w, 1] images with 4 levels."""
    return (np.arange(n * h * w).reshape(n, h, w, 1) % 4).astype(np.int32)


def test_a_grid_is_upscaled_by_nearest_neighbour_with_separators():
    images = _digits(5)
    grid = viz.image_grid(images, 4, num_cols=3, scale=4, gap=2)
    # 2 rows x 3 columns of 3 x 2 images at 12 x 8 pixels, 2-pixel gaps around each.
    assert grid.shape == (2 * (12 + 2) + 2, 3 * (8 + 2) + 2, 1)
    cell = grid[2:14, 12:20, 0]  # row 0, column 1: image 1
    np.testing.assert_array_equal(cell, np.kron(images[1, ..., 0] * 85, np.ones((4, 4))))
    gaps = np.concatenate([grid[:2].ravel(), grid[14:16].ravel(), grid[:, 10:12].ravel()])
    assert (gaps == viz.SEPARATOR).all()
    assert (grid[16:28, 22:30] == viz.SEPARATOR).all()  # the empty sixth cell


def test_the_default_is_4x_upscaling_and_rows_may_be_given():
    rows = np.stack([_digits(3), _digits(3)[::-1]])  # [2, 3, 3, 2, 1]
    grid = viz.image_grid(rows, 4)
    assert grid.shape == (2 * (3 * 4 + viz.GAP) + viz.GAP, 3 * (2 * 4 + viz.GAP) + viz.GAP, 1)
    np.testing.assert_array_equal(grid, viz.image_grid(rows.reshape(6, 3, 2, 1), 4, num_cols=3))


def test_save_grid_writes_the_picture(tmp_path):
    images = np.random.default_rng(0).integers(0, 256, (16, 28, 28, 3))
    path = viz.save_grid(tmp_path / "a" / "grid.png", images, 256)
    picture = np.asarray(Image.open(path))
    assert picture.shape == (4 * 114 + 2, 4 * 114 + 2, 3)  # 16 28 x 28 images at 112 + 2
    np.testing.assert_array_equal(picture[2:114, 2:114], images[0].repeat(4, 0).repeat(4, 1))


def test_captions_are_drawn_on_white_margins():
    images = _digits(4)
    plain = viz.image_grid(images, 4, num_cols=2)
    titled = viz.image_grid(images, 4, num_cols=2, title="step 100: samples")
    band = viz.FONT_SIZE + 8
    assert titled.shape[0] == plain.shape[0] + band
    np.testing.assert_array_equal(titled[band:, : plain.shape[1]], plain)
    assert (titled[:band] < 100).any() and (titled[:band] == viz.MARGIN).mean() > 0.5
    other = viz.image_grid(images, 4, num_cols=2, title="step 200: samples")
    assert not np.array_equal(titled[:band], other[:band])

    labelled = viz.image_grid(images, 4, num_cols=2, row_labels=["real", "fake"])
    margin = labelled.shape[1] - plain.shape[1]
    assert margin > 10 and labelled.shape[0] == plain.shape[0]
    np.testing.assert_array_equal(labelled[:, margin:], plain)
    for row in range(2):  # ink left of each row of images
        top = viz.GAP + row * (12 + viz.GAP)
        assert (labelled[top : top + 12, :margin] < 100).any()


def test_a_long_title_widens_the_picture():
    title = "a title much wider than one small image " * 2
    picture = viz.image_grid(_digits(1), 4, title=title)
    assert picture.shape[1] > 200 > viz.image_grid(_digits(1), 4).shape[1]


def test_bad_pictures_are_refused():
    with pytest.raises(ValueError, match="integer levels"):
        viz.image_grid(np.zeros((2, 3, 3, 1)), 4)
    with pytest.raises(ValueError, match="outside \\[0, 4\\)"):
        viz.image_grid(np.full((2, 3, 3, 1), 4), 4)
    with pytest.raises(ValueError, match="1 or 3 channels"):
        viz.image_grid(np.zeros((2, 3, 3, 2), np.int32), 4)
    with pytest.raises(ValueError, match="row_labels has 1 labels for 2 rows"):
        viz.image_grid(_digits(4), 4, num_cols=2, row_labels=["x"])
    with pytest.raises(ValueError, match="scale=0"):
        viz.image_grid(_digits(4), 4, scale=0)


def test_progress_rows_accumulate_across_calls_and_replace_a_repeated_step(tmp_path):
    path = tmp_path / "progress.png"
    images = _digits(3)
    for step in (100, 300, 200):
        viz.save_progress(path, images, step, 4, title="samples from fixed noise")
    viz.save_progress(path, np.zeros_like(images), 300, 4)  # a resumed run redoes step 300
    with np.load(tmp_path / "progress.png.npz") as saved:
        np.testing.assert_array_equal(saved["steps"], [100, 200, 300])
        assert saved["rows"].shape == (3, 3, 3, 2, 1) and not saved["rows"][2].any()
    picture = np.asarray(Image.open(path))
    plain = viz.image_grid(np.stack([images, images, np.zeros_like(images)]), 4)
    assert picture.shape[0] == plain.shape[0]  # three rows (the last call had no title)
    np.testing.assert_array_equal(picture[:, -plain.shape[1] :], plain[..., 0])
    with pytest.raises(ValueError, match="delete .*progress.png.npz"):
        viz.save_progress(path, _digits(2), 400, 4)


def test_manifold_rows_and_columns_are_labelled_with_prior_percentiles(tmp_path):
    assert viz.manifold_labels(4) == ["12.5%", "37.5%", "62.5%", "87.5%"]
    images = np.stack([_digits(4)] * 4)  # [4, 4, 3, 2, 1]
    picture = np.asarray(Image.open(viz.save_manifold(tmp_path / "m.png", images, 4)))
    plain = viz.image_grid(images, 4)
    assert picture.shape[0] == plain.shape[0] + 2 * (viz.FONT_SIZE + 8)  # title + column labels
    assert picture.shape[1] > plain.shape[1]  # row labels on the left


def test_neighbour_rows_and_distance_curves_are_written(tmp_path):
    samples = _digits(3)
    nearest = {"pixels": samples[::-1], "features": samples}
    path = viz.save_neighbours(tmp_path / "n.png", samples, nearest, 4)
    picture = np.asarray(Image.open(path))
    assert picture.shape[0] == viz.image_grid(np.stack([samples] * 3), 4).shape[0]
    curves = viz.save_distance_curves(
        tmp_path / "d.png", {"samples": np.arange(5.0), "test": np.arange(3.0)}, "distance"
    )
    assert Image.open(curves).size == (550, 400)


def test_to_pixels_maps_levels_and_unit_floats_to_8_bits():
    np.testing.assert_array_equal(viz.to_pixels(np.array([0, 1, 3]), 4), [0, 85, 255])
    np.testing.assert_array_equal(viz.to_pixels(np.array([0.0, 0.5, 1.0])), [0, 128, 255])
