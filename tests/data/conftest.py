"""Datasets prepared once per test session into temporary TFDS folders."""

import io
import pathlib
import tarfile
from collections.abc import Callable

import numpy as np
import pytest

from jaxgen import data

CIFAR_TRAIN_PER_BATCH = 8  # 5 canonical train batches -> 40 training examples
CIFAR_TEST = 13
CIFAR_LABEL_NAMES = [f"class_{i}" for i in range(10)]


def _write_cifar_archive(path: pathlib.Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Writes a small ``cifar-10-binary.tar.gz`` in the canonical layout.

    Image ``i`` of a split has its row 0 set to 0/255 pixels spelling ``i`` in
    binary (so dynamic binarization keeps it), row 1 set to 128 (binarized to
    Bernoulli(128/255)) and random pixels elsewhere.

    Returns:
      split -> (uint8 images [N, 32, 32, 3], int labels [N]).
    """
    rng = np.random.default_rng(0)
    splits = {}
    for split, n in (("train", 5 * CIFAR_TRAIN_PER_BATCH), ("test", CIFAR_TEST)):
        images = rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)
        bits = (np.arange(n)[:, None] >> np.arange(32 * 3)[None, :]) & 1
        images[:, 0] = (bits * 255).reshape(n, 32, 3)
        images[:, 1] = 128
        splits[split] = (images, rng.integers(0, 10, n))

    def records(images: np.ndarray, labels: np.ndarray) -> bytes:
        planes = images.transpose(0, 3, 1, 2).reshape(len(images), -1)
        return np.concatenate([labels[:, None].astype(np.uint8), planes], axis=1).tobytes()

    members = {"batches.meta.txt": "\n".join(CIFAR_LABEL_NAMES).encode() + b"\n\n"}
    train_images, train_labels = splits["train"]
    for b in range(5):
        part = slice(b * CIFAR_TRAIN_PER_BATCH, (b + 1) * CIFAR_TRAIN_PER_BATCH)
        members[f"data_batch_{b + 1}.bin"] = records(train_images[part], train_labels[part])
    members["test_batch.bin"] = records(*splits["test"])
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w:gz") as tar:
        for name, content in members.items():
            info = tarfile.TarInfo(f"cifar-10-batches-bin/{name}")
            info.size = len(content)
            tar.addfile(info, io.BytesIO(content))
    return splits


@pytest.fixture(scope="session")
def write_cifar() -> Callable[[pathlib.Path], dict[str, tuple[np.ndarray, np.ndarray]]]:
    """``_write_cifar_archive``: writes a generated ``cifar-10-binary.tar.gz``."""
    return _write_cifar_archive


@pytest.fixture(scope="session")
def tfds_dir(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    """A TFDS data folder shared by the session's real datasets."""
    return tmp_path_factory.mktemp("tfds")


@pytest.fixture(scope="session")
def mnist_dir(prepared_tfds: pathlib.Path) -> pathlib.Path:
    """The suite's shared folder, prepared from the raw files by ``data.prepare`` (conftest.py)."""
    return prepared_tfds


@pytest.fixture(scope="session")
def fashion_mnist_dir(tfds_dir: pathlib.Path, raw_dir: pathlib.Path) -> pathlib.Path:
    data.prepare("fashion_mnist", data_dir=tfds_dir, raw_dir=raw_dir)
    return tfds_dir


@pytest.fixture(scope="session")
def binarized_mnist_dir(prepared_tfds: pathlib.Path) -> pathlib.Path:
    """The suite's shared folder, prepared from the raw files by ``data.prepare`` (conftest.py)."""
    return prepared_tfds


@pytest.fixture(scope="session")
def cifar_raw(tmp_path_factory: pytest.TempPathFactory) -> tuple[pathlib.Path, dict]:
    """(raw folder holding cifar10/cifar-10-binary.tar.gz, the generated splits)."""
    raw = tmp_path_factory.mktemp("raw")
    return raw, _write_cifar_archive(raw / "cifar10" / "cifar-10-binary.tar.gz")


@pytest.fixture(scope="session")
def cifar_dir(tmp_path_factory: pytest.TempPathFactory, cifar_raw: tuple) -> pathlib.Path:
    """TFDS folder with ``cifar10`` prepared from the generated archive."""
    tfds_dir = tmp_path_factory.mktemp("tfds_cifar")
    data.prepare("cifar10", data_dir=tfds_dir, raw_dir=cifar_raw[0], verify_checksums=False)
    return tfds_dir
