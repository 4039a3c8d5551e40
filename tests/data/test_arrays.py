"""A split decoded once into .npy files beside the TFDS files, then memory-mapped."""

import pathlib
import shutil

import numpy as np
import pytest
import tensorflow_datasets as tfds

from jaxgen import data
from jaxgen.data import arrays


def _cifar_copy(cifar_dir: pathlib.Path, tmp_path: pathlib.Path) -> pathlib.Path:
    """A copy of the prepared cifar10 folder without decoded arrays."""
    copy = tmp_path / "tfds"
    shutil.copytree(cifar_dir, copy, ignore=shutil.ignore_patterns(arrays.ARRAYS_FOLDER))
    return copy


def _array_files(data_dir: pathlib.Path) -> list[str]:
    return sorted(p.name for p in data_dir.rglob(f"{arrays.ARRAYS_FOLDER}/*"))


@pytest.mark.parametrize("split", ["train", "test"])
def test_split_arrays_are_the_tfds_examples_in_order(
    cifar_dir: pathlib.Path, tmp_path: pathlib.Path, split: str
) -> None:
    data_dir = _cifar_copy(cifar_dir, tmp_path)
    source = tfds.data_source("cifar10", split=split, data_dir=data_dir, download=False)
    records = source.__getitems__(list(range(len(source))))
    got = arrays.split_arrays(data.dataset_info("cifar10"), split, data_dir)
    assert got["image"].dtype == np.uint8 and got["label"].dtype == np.int32
    np.testing.assert_array_equal(got["image"], np.stack([r["image"] for r in records]))
    np.testing.assert_array_equal(got["label"], [r["label"] for r in records])


def test_unlabelled_splits_get_label_minus_one(binarized_mnist_dir: pathlib.Path) -> None:
    got = arrays.split_arrays(data.dataset_info("binarized_mnist"), "test", binarized_mnist_dir)
    assert got["image"].shape == (10_000, 28, 28, 1) and set(np.unique(got["image"])) == {0, 1}
    assert np.all(got["label"] == -1)


def test_a_second_call_memory_maps_the_files_without_decoding(
    cifar_dir: pathlib.Path, tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    info, data_dir = data.dataset_info("cifar10"), _cifar_copy(cifar_dir, tmp_path)
    first = arrays.split_arrays(info, "train", data_dir)
    assert _array_files(data_dir) == ["train_image.npy", "train_label.npy"]

    def fail(*args):
        raise AssertionError("decoded again")

    monkeypatch.setattr(arrays, "_decode", fail)
    second = arrays.split_arrays(info, "train", data_dir)
    assert isinstance(second["image"], np.memmap) and isinstance(second["label"], np.memmap)
    np.testing.assert_array_equal(second["image"], first["image"])
    np.testing.assert_array_equal(second["label"], first["label"])


def test_arrays_of_another_length_are_decoded_again(
    cifar_dir: pathlib.Path, tmp_path: pathlib.Path
) -> None:
    info, data_dir = data.dataset_info("cifar10"), _cifar_copy(cifar_dir, tmp_path)
    labels = np.array(arrays.split_arrays(info, "test", data_dir)["label"])
    (label_file,) = data_dir.rglob(f"{arrays.ARRAYS_FOLDER}/test_label.npy")
    np.save(label_file, np.zeros(3, np.int32))  # stale: not the split's 13 examples
    got = arrays.split_arrays(info, "test", data_dir)
    np.testing.assert_array_equal(got["label"], labels)
    np.testing.assert_array_equal(np.load(label_file), labels)


def test_a_read_only_dataset_folder_keeps_the_arrays_in_memory(
    cifar_dir: pathlib.Path, tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data_dir = _cifar_copy(cifar_dir, tmp_path)

    def read_only(path: pathlib.Path, array: np.ndarray) -> None:
        raise PermissionError(f"[Errno 13] Permission denied: {path}")

    monkeypatch.setattr(arrays, "_save_atomically", read_only)
    got = arrays.split_arrays(data.dataset_info("cifar10"), "test", data_dir)
    assert got["image"].shape == (13, 32, 32, 3) and not isinstance(got["image"], np.memmap)
    assert _array_files(data_dir) == []


def test_batches_come_from_the_arrays(cifar_dir: pathlib.Path, tmp_path: pathlib.Path) -> None:
    data_dir = _cifar_copy(cifar_dir, tmp_path)
    args = dict(batch_size=8, seed=0, num_levels=256, data_dir=data_dir)
    data.train_batches("cifar10", **args, process_index=0, process_count=1)
    (image_file,) = data_dir.rglob(f"{arrays.ARRAYS_FOLDER}/train_image.npy")
    np.save(image_file, np.full_like(np.load(image_file), 7))
    batch = data.train_batches("cifar10", **args, process_index=0, process_count=1)[0]
    assert batch["image"].shape == (8, 32, 32, 3) and np.all(batch["image"] == 7)
