"""Preparation of TFDS datasets from canonical raw files, without TensorFlow."""

import json
import os
import pathlib
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable

import numpy as np
import pytest
import tensorflow_datasets as tfds

from jaxgen import data
from jaxgen.data import builders, raw
from tests.conftest import REPO


def _read_split(name: str, split: str, data_dir: pathlib.Path) -> tuple[np.ndarray, np.ndarray]:
    """All images uint8 [N, H, W, C] and labels [N] of a prepared split, via tfds.data_source."""
    source = tfds.data_source(name, split=split, data_dir=data_dir, download=False)
    records = source.__getitems__(list(range(len(source))))
    labels = np.array([r.get("label", -1) for r in records])
    return np.stack([r["image"] for r in records]), labels


def _raw_idx(raw_dir: pathlib.Path, name: str, prefix: str) -> tuple[np.ndarray, np.ndarray]:
    images = raw_dir / name / f"{prefix}-images-idx3-ubyte.gz"
    labels = raw_dir / name / f"{prefix}-labels-idx1-ubyte.gz"
    return (
        raw.parse_idx_images(name, images, images.read_bytes()),
        raw.parse_idx_labels(name, labels, labels.read_bytes()),
    )


def test_binarized_mnist_prepared_from_raw(binarized_mnist_dir: pathlib.Path) -> None:
    sources = tfds.data_source("binarized_mnist", data_dir=binarized_mnist_dir, download=False)
    assert {split: len(s) for split, s in sources.items()} == {
        "train": 50_000,
        "validation": 10_000,
        "test": 10_000,
    }
    images, _ = _read_split("binarized_mnist", "validation", binarized_mnist_dir)
    assert images.shape == (10_000, 28, 28, 1)
    assert set(np.unique(images)) == {0, 1}
    assert 0.10 < images.mean() < 0.16  # fraction of "on" pixels of binarized digits


@pytest.mark.parametrize(
    ("name", "test_mean"),
    [("mnist", 33.79), ("fashion_mnist", 73.15)],  # mean pixel of the test splits, 0..255
)
def test_mnist_likes_prepared_from_raw(
    name: str, test_mean: float, raw_dir: pathlib.Path, request: pytest.FixtureRequest
) -> None:
    data_dir = request.getfixturevalue(f"{name}_dir")
    sources = tfds.data_source(name, data_dir=data_dir, download=False)
    assert {split: len(s) for split, s in sources.items()} == {"train": 60_000, "test": 10_000}
    images, labels = _read_split(name, "test", data_dir)
    raw_images, raw_labels = _raw_idx(raw_dir, name, "t10k")
    assert images.shape == (10_000, 28, 28, 1)
    assert images.mean() == pytest.approx(test_mean, abs=0.01)  # MNIST 33.8, Fashion 73.1
    # TFDS stores examples in its own (hashed) order: compare order-free statistics.
    assert images.astype(np.int64).sum() == raw_images.astype(np.int64).sum()
    np.testing.assert_array_equal(np.sort(labels), np.sort(raw_labels))
    assert labels.min() == 0 and labels.max() == 9


def test_prepare_is_idempotent(mnist_dir: pathlib.Path) -> None:
    start = time.perf_counter()
    assert data.prepare("mnist", data_dir=mnist_dir, raw_dir="/nonexistent") == str(mnist_dir)
    assert time.perf_counter() - start < 2.0


def _copy_raw(raw_dir: pathlib.Path, name: str, tmp_path: pathlib.Path) -> pathlib.Path:
    copy = tmp_path / "raw"
    shutil.copytree(raw_dir / name, copy / name)
    return copy


@pytest.mark.parametrize(
    ("name", "filename"),
    [("mnist", "t10k-labels-idx1-ubyte.gz"), ("binarized_mnist", "binarized_mnist_valid.amat.gz")],
)
def test_corrupt_raw_file_raises(
    name: str, filename: str, raw_dir: pathlib.Path, tmp_path: pathlib.Path
) -> None:
    copy = _copy_raw(raw_dir, name, tmp_path)
    path = copy / name / filename
    content = bytearray(path.read_bytes())
    content[len(content) // 2] ^= 0xFF
    path.chmod(0o644)
    path.write_bytes(bytes(content))
    with pytest.raises(data.DatasetError, match="corrupt") as error:
        data.prepare(name, data_dir=tmp_path / "tfds", raw_dir=copy)
    assert str(path) in str(error.value)
    with pytest.raises(data.DatasetError, match="not prepared"):
        data.train_batches(name, batch_size=8, seed=0, num_levels=2, data_dir=tmp_path / "tfds")


def test_missing_raw_file_raises(raw_dir: pathlib.Path, tmp_path: pathlib.Path) -> None:
    copy = _copy_raw(raw_dir, "mnist", tmp_path)
    (copy / "mnist" / "train-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(
        data.DatasetError, match="train-labels-idx1-ubyte.gz of dataset 'mnist' is missing"
    ):
        data.prepare("mnist", data_dir=tmp_path / "tfds", raw_dir=copy)


def test_raw_folder_of_another_dataset_is_not_used(
    raw_dir: pathlib.Path, tmp_path: pathlib.Path
) -> None:
    # fashion_mnist has MNIST's file names; it must never read mnist/.
    copy = _copy_raw(raw_dir, "mnist", tmp_path)
    with pytest.raises(data.DatasetError, match="fashion_mnist"):
        data.prepare("fashion_mnist", data_dir=tmp_path / "tfds", raw_dir=copy)


def test_unprepared_and_offline_raises(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_network(*args, **kwargs):
        raise socket.gaierror(-2, "Name or service not known")

    monkeypatch.delenv(data.RAW_DIR_ENV, raising=False)
    monkeypatch.setattr(socket, "getaddrinfo", no_network)
    with pytest.raises(data.DatasetError, match=data.RAW_DIR_ENV) as error:
        data.prepare("mnist", data_dir=tmp_path)
    assert "mnist/train-images-idx3-ubyte.gz" in str(error.value)


def test_cifar10_from_generated_archive(cifar_dir: pathlib.Path, cifar_raw: tuple) -> None:
    _, splits = cifar_raw
    builder = tfds.builder("cifar10", data_dir=cifar_dir)
    assert builder.info.features["label"].names == [f"class_{i}" for i in range(10)]
    for split, (images, labels) in splits.items():
        source = tfds.data_source("cifar10", split=split, data_dir=cifar_dir, download=False)
        assert len(source) == len(images)
        for record in source.__getitems__(list(range(len(source)))):
            index = int(record["id"].decode().rsplit("_", 1)[1])
            assert record["image"].shape == (32, 32, 3)
            np.testing.assert_array_equal(record["image"], images[index])
            assert record["label"] == labels[index]


def test_cifar10_checksums_are_verified_by_default(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch, write_cifar: Callable
) -> None:
    write_cifar(tmp_path / "raw" / "cifar10" / "cifar-10-binary.tar.gz")
    monkeypatch.setenv(data.RAW_DIR_ENV, str(tmp_path / "raw"))
    with pytest.raises(data.DatasetError, match="cifar-10-binary.tar.gz of dataset 'cifar10'"):
        data.prepare("cifar10", data_dir=tmp_path / "tfds")


def test_online_preparation_uses_tfds_download_manager(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch, write_cifar: Callable
) -> None:
    archive = tmp_path / "downloaded" / "cifar-10-binary.tar.gz"
    splits = write_cifar(archive)
    requested = []

    def download(self, urls):
        requested.extend(urls.values())
        return {name: archive for name in urls}

    monkeypatch.delenv(data.RAW_DIR_ENV, raising=False)
    monkeypatch.setattr(socket, "getaddrinfo", lambda *args, **kwargs: [])
    monkeypatch.setattr(tfds.download.DownloadManager, "download", download)
    data.prepare("cifar10", data_dir=tmp_path / "tfds")
    assert requested == ["https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz"]
    source = tfds.data_source("cifar10", split="test", data_dir=tmp_path / "tfds", download=False)
    assert len(source) == len(splits["test"][0])


def _spy_on_builds(monkeypatch: pytest.MonkeyPatch, delay: float = 0.0) -> list[str]:
    """Records each CIFAR-10 build (its thread name), which takes ``delay`` s more."""
    builds = []
    cls = builders._BUILDERS["cifar10"]
    original = cls.download_and_prepare

    def download_and_prepare(self, *args, **kwargs):
        builds.append(threading.current_thread().name)
        time.sleep(delay)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(cls, "download_and_prepare", download_and_prepare)
    return builds


def test_preparations_of_one_folder_take_turns(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch, cifar_raw: tuple
) -> None:
    builds = _spy_on_builds(monkeypatch, delay=1.0)
    returned = {}

    def prepare(name: str) -> None:
        data.prepare("cifar10", data_dir=tmp_path, raw_dir=cifar_raw[0], verify_checksums=False)
        returned[name] = time.monotonic()

    first = threading.Thread(target=prepare, args=("first",), name="first")
    first.start()
    while not builds:  # the first is building (and holds the folder's lock)
        time.sleep(0.01)
    second = threading.Thread(target=prepare, args=("second",), name="second")
    second.start()
    first.join(120)
    second.join(120)
    assert builds == ["first"]  # the second waited, then found the dataset prepared
    assert returned.keys() == {"first", "second"}
    assert builders.is_prepared("cifar10", tmp_path)


# One process of a two-process run on loopback: prepares CIFAR-10 and reports what it did.
PROCESS = """
import json, sys, time
import jax
address, index, data_dir, raw_dir, out = sys.argv[1:]
jax.distributed.initialize(address, num_processes=2, process_id=int(index))
from jaxgen import data
from jaxgen.data import builders
cls = builders._BUILDERS["cifar10"]
original, builds = cls.download_and_prepare, []
def download_and_prepare(self, *args, **kwargs):
    builds.append(time.time())
    time.sleep(1.0)  # a slow preparation: process 1 must wait for it
    original(self, *args, **kwargs)
    builds.append(time.time())
cls.download_and_prepare = download_and_prepare
try:
    data.prepare("cifar10", data_dir=data_dir, raw_dir=raw_dir, verify_checksums=False)
    error = None
except data.DatasetError as e:
    error = str(e)
report = {"builds": builds, "returned": time.time(), "error": error}
report["prepared"] = builders.is_prepared("cifar10", data_dir)
open(out, "w").write(json.dumps(report))
"""


def _two_processes(tmp_path: pathlib.Path, raw_dir: pathlib.Path) -> list[dict]:
    """Runs PROCESS as processes 0 and 1 of one run; returns their reports."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        address = f"127.0.0.1:{s.getsockname()[1]}"
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    env.update(JAX_PLATFORMS="cpu", JAX_CPU_COLLECTIVES_IMPLEMENTATION="gloo")
    outs = [tmp_path / f"process{i}.json" for i in range(2)]
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", PROCESS, address, str(i), str(tmp_path / "tfds")]
            + [str(raw_dir), str(outs[i])],
            cwd=REPO,
            env=env,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(2)
    ]
    for process in processes:
        _, stderr = process.communicate(timeout=300)
        assert process.returncode == 0, stderr
    return [json.loads(out.read_text()) for out in outs]


def test_process_zero_prepares_and_the_others_wait(tmp_path: pathlib.Path, cifar_raw: tuple):
    zero, one = _two_processes(tmp_path, cifar_raw[0])
    assert zero["error"] is None and one["error"] is None
    assert len(zero["builds"]) == 2 and one["builds"] == []  # only process 0 wrote the folder
    assert one["returned"] >= zero["builds"][1]  # process 1 waited until it was written
    assert zero["prepared"] and one["prepared"]


def test_when_process_zero_fails_every_process_stops(tmp_path: pathlib.Path):
    (tmp_path / "raw" / "cifar10").mkdir(parents=True)  # no archive: process 0 fails
    zero, one = _two_processes(tmp_path, tmp_path / "raw")
    assert "cifar-10-binary.tar.gz" in zero["error"]
    assert one["error"].startswith("Process 0 could not prepare dataset 'cifar10'")
    assert len(zero["builds"]) == 1 and one["builds"] == []  # process 0's build raised
    assert not zero["prepared"] and not one["prepared"]
