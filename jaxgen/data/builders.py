"""TFDS builders that prepare jaxgen's datasets without TensorFlow, and ``prepare``.

The stock TFDS builders read their files with ``tf.io.gfile`` and encode PNGs
with ``tf.image``, so they need TensorFlow. Each builder here subclasses the
stock one (same name, version, features and registered checksums, so the
prepared folder is exactly what ``tfds.data_source`` expects) and only replaces
how the canonical files are obtained and parsed: from a folder of raw files
(offline, checked against TFDS's registered size and sha256) or through TFDS's
download manager (online), then parsed with NumPy and encoded with PIL.
``prepare`` writes a folder once, however many processes call it.
"""

import contextlib
import fcntl
import io
import os
import pathlib
import socket
import urllib.parse
from collections.abc import Iterator, Mapping
from typing import Any, NamedTuple

import jax
import numpy as np
import tensorflow_datasets as tfds
from etils import epath
from jax.experimental import multihost_utils
from PIL import Image
from tensorflow_datasets.core.download.download_manager import NonMatchingChecksumError

from jaxgen.data import own, raw
from jaxgen.data.catalog import DATASETS, FILE_FORMAT, DatasetError, dataset_info

RAW_DIR_ENV = "JAXGEN_RAW_DIR"


class _RawFile(NamedTuple):
    path: pathlib.Path  # where the content came from (for messages)
    data: bytes  # the content of the registered file (decompressed if stored as .gz)


class _RawFilesBuilder:
    """Mixin for a stock builder: gets the canonical files without TensorFlow.

    Must come before the stock builder among the bases. Subclasses implement
    ``_split_generators`` with ``self._fetch``.
    """

    def __init__(
        self, *, raw_dir: pathlib.Path | None, verify_checksums: bool = True, **kwargs: Any
    ) -> None:
        self._raw_dir = raw_dir
        self._verify_checksums = verify_checksums
        super().__init__(**kwargs)

    def _fetch(
        self, dl_manager: tfds.download.DownloadManager, filenames: list[str]
    ) -> dict[str, _RawFile]:
        """Returns registered file name -> ``_RawFile`` for each of ``filenames``."""
        urls = raw.registered_files(self.url_infos)
        if self._raw_dir is None:
            paths = self._download(dl_manager, {name: urls[name] for name in filenames})
            return {name: _RawFile(path, path.read_bytes()) for name, path in paths.items()}
        files = {}
        for filename in filenames:
            path = raw.locate(self.name, self._raw_dir, filename)
            data = raw.read_bytes(self.name, path, filename)
            if self._verify_checksums:
                raw.verify(self.name, path, data, self.url_infos[urls[filename]])
            files[filename] = _RawFile(path, data)
        return files

    def _download(
        self, dl_manager: tfds.download.DownloadManager, urls: Mapping[str, str]
    ) -> dict[str, pathlib.Path]:
        try:
            for url in urls.values():  # fail fast offline instead of minutes of retries
                socket.getaddrinfo(urllib.parse.urlsplit(url).hostname, None)
            paths = dl_manager.download(dict(urls))
        except (OSError, tfds.download.DownloadError, NonMatchingChecksumError) as e:
            raise DatasetError(
                f"Dataset {self.name!r} is not prepared and its files could not be downloaded "
                f"({type(e).__name__}: {e}). On a machine without a network, set "
                f"{RAW_DIR_ENV} (or pass raw_dir=) to a folder holding "
                f"{self.name}/{next(iter(urls))} and the other canonical files: "
                f"{', '.join(urls)}."
            ) from e
        return {name: pathlib.Path(path) for name, path in paths.items()}


class _IdxBuilder(_RawFilesBuilder):
    """MNIST-format datasets: four gzipped IDX files, train and test splits."""

    def _split_generators(self, dl_manager: tfds.download.DownloadManager) -> dict:
        kinds = ("images-idx3", "labels-idx1")
        files = self._fetch(
            dl_manager, [f"{p}-{k}-ubyte.gz" for p in ("train", "t10k") for k in kinds]
        )
        splits = {}
        for split, prefix in (("train", "train"), ("test", "t10k")):
            images = raw.parse_idx_images(self.name, *files[f"{prefix}-images-idx3-ubyte.gz"])
            labels = raw.parse_idx_labels(self.name, *files[f"{prefix}-labels-idx1-ubyte.gz"])
            if len(images) != len(labels):
                raise DatasetError(
                    f"Raw files of dataset {self.name!r} disagree: {len(images)} {split} images "
                    f"but {len(labels)} labels. Delete the corrupt files and replace them with "
                    "the canonical ones."
                )
            splits[split] = _examples(images, labels=labels)
        return splits


# Each builder reports the stock builder's module in ``__module__``: TFDS finds
# a builder's registered checksums and metadata (README, citations) next to
# the module that defines it. (So the classes cannot be pickled by reference.)


class MnistBuilder(_IdxBuilder, tfds.builder_cls("mnist"), skip_registration=True):
    """``mnist`` from ``{train,t10k}-{images-idx3,labels-idx1}-ubyte.gz``."""

    __module__ = tfds.builder_cls("mnist").__module__
    name = "mnist"


class FashionMnistBuilder(_IdxBuilder, tfds.builder_cls("fashion_mnist"), skip_registration=True):
    """``fashion_mnist`` from the same four file names as MNIST (its own folder)."""

    __module__ = tfds.builder_cls("fashion_mnist").__module__
    name = "fashion_mnist"


class BinarizedMnistBuilder(
    _RawFilesBuilder, tfds.builder_cls("binarized_mnist"), skip_registration=True
):
    """``binarized_mnist`` from ``binarized_mnist_{train,valid,test}.amat`` (or ``.amat.gz``)."""

    __module__ = tfds.builder_cls("binarized_mnist").__module__
    name = "binarized_mnist"

    def _split_generators(self, dl_manager: tfds.download.DownloadManager) -> dict:
        parts = {"train": "train", "validation": "valid", "test": "test"}
        files = self._fetch(dl_manager, [f"binarized_mnist_{p}.amat" for p in parts.values()])
        return {
            split: _examples(raw.parse_amat(self.name, *files[f"binarized_mnist_{part}.amat"]))
            for split, part in parts.items()
        }


class Cifar10Builder(_RawFilesBuilder, tfds.builder_cls("cifar10"), skip_registration=True):
    """``cifar10`` from ``cifar-10-binary.tar.gz`` (the binary version TFDS registers)."""

    __module__ = tfds.builder_cls("cifar10").__module__
    name = "cifar10"

    def _split_generators(self, dl_manager: tfds.download.DownloadManager) -> dict:
        archive = "cifar-10-binary.tar.gz"
        (path, data) = self._fetch(dl_manager, [archive])[archive]
        splits, label_names = raw.parse_cifar_tarball(
            self.name,
            path,
            data,
            prefix="cifar-10-batches-bin/",
            members={
                "train": [f"data_batch_{i}.bin" for i in range(1, 6)],
                "test": ["test_batch.bin"],
            },
            meta="batches.meta.txt",
        )
        self.info.features["label"].names = label_names
        return {
            split: _examples(images, labels=labels, id_prefix=f"{split}_")
            for split, (images, labels) in splits.items()
        }


_BUILDERS = {
    cls.name: cls
    for cls in (MnistBuilder, FashionMnistBuilder, BinarizedMnistBuilder, Cifar10Builder)
}


def _examples(
    images: np.ndarray, labels: np.ndarray | None = None, id_prefix: str | None = None
) -> Iterator[tuple[int, dict]]:
    """Yields TFDS ``(key, example)`` pairs with PNG-encoded images.

    Args:
      images: uint8 [N, H, W, C].
      labels: int [N], or None for unlabelled data.
      id_prefix: if given, each example gets ``id = f"{id_prefix}{index:05d}"``.
    """
    for index, image in enumerate(images):
        example: dict[str, Any] = {"image": _png(image)}
        if labels is not None:
            example["label"] = int(labels[index])
        if id_prefix is not None:
            example["id"] = f"{id_prefix}{index:05d}"
        yield index, example


def _png(image: np.ndarray) -> bytes:
    """PNG bytes of a uint8 [H, W, C] image (C = 1 or 3)."""
    buffer = io.BytesIO()
    Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image).save(buffer, format="png")
    return buffer.getvalue()


def is_prepared(name: str, data_dir: str | os.PathLike | None = None) -> bool:
    """Whether ``name`` is prepared in ``array_record`` format under ``data_dir``.

    Raises:
      DatasetError: the dataset is prepared, but in a format that cannot be read
        without TensorFlow.
    """
    builder = tfds.builder(name, data_dir=data_dir)
    if not builder.is_prepared():
        return False
    formats = {f.value for f in builder.info.available_file_formats()}
    if FILE_FORMAT not in formats:
        raise DatasetError(
            f"Dataset {name!r} in {builder.data_dir} is prepared in format "
            f"{', '.join(sorted(formats))}, which jaxgen cannot read without TensorFlow. Delete "
            f"that folder (or choose another data_dir) and run jaxgen.data.prepare({name!r}) "
            f"to write it as {FILE_FORMAT}."
        )
    return True


def prepare(
    name: str,
    *,
    data_dir: str | os.PathLike | None = None,
    raw_dir: str | os.PathLike | None = None,
    verify_checksums: bool = True,
) -> str:
    """Prepares TFDS dataset ``name`` in ``array_record`` format, without TensorFlow.

    Does nothing (quickly) if the dataset is already prepared. Own images
    (``folder:``, ``npz:``; see ``jaxgen.data.own``) are loaded and checked
    instead, in memory: nothing is written. A TFDS dataset outside the
    catalog is only checked: it must be prepared already (``dataset_info``
    says how). The canonical
    files come from ``raw_dir/<name>/`` if a raw folder is given (argument,
    else the ``JAXGEN_RAW_DIR`` environment variable), each checked against the
    size and sha256 that TFDS registers; otherwise TFDS's download manager
    downloads them (and checks them) into ``<data_dir>/downloads/<name>``.

    Every process of a multi-process run calls it: process 0 prepares, the
    others wait for it at a barrier (and then find the dataset prepared, or,
    in a folder of their own host's, prepare it there). Processes and runs that
    prepare into one local folder at once take turns (a file lock in it).

    Args:
      name: one of ``binarized_mnist``, ``mnist``, ``fashion_mnist``, ``cifar10``
        (prepared here), an own-data spec, or another prepared TFDS dataset.
      data_dir: TFDS data folder; default: TFDS's (``TFDS_DATA_DIR`` or
        ``~/tensorflow_datasets``).
      raw_dir: folder with one sub-folder of canonical files per dataset, e.g.
        ``mnist/train-images-idx3-ubyte.gz``; binarized MNIST's ``.amat`` files
        may be stored gzipped (``.amat.gz``).
      verify_checksums: for tests on generated data only: ``False`` skips the
        checksum check of files from ``raw_dir``. Never needed for real data.

    Returns:
      The TFDS data folder holding the prepared dataset (own images: ``data_dir``,
      or TFDS's default folder; nothing is written there).

    Raises:
      ConfigError: an unknown ``name`` or a malformed own-data spec.
      DatasetError: a raw file is missing or corrupt, the
        download failed, or the dataset is prepared in a format other than
        ``array_record``; in a multi-process run, on every process when process
        0 failed; own images that cannot be used; a TFDS dataset outside the
        catalog that is not prepared.
    """
    if own.is_own(name):
        own.load(name)  # each process decodes its own copy
        return os.fspath(data_dir or tfds.core.constants.get_default_data_dir())
    dataset_info(name, data_dir=data_dir)
    if name not in DATASETS:  # prepared (dataset_info checked it): nothing to write
        return os.fspath(data_dir or tfds.core.constants.get_default_data_dir())
    root = tfds.builder(name, data_dir=data_dir).data_dir_root
    if raw_dir is None:
        raw_dir = os.environ.get(RAW_DIR_ENV) or None
    raw_dir = None if raw_dir is None else pathlib.Path(raw_dir)
    if jax.process_count() == 1:
        return _prepare_here(name, root, raw_dir, verify_checksums)
    failure = None
    if jax.process_index() == 0:
        try:
            _prepare_here(name, root, raw_dir, verify_checksums)
        except Exception as e:  # the others must not wait at the barrier for ever
            failure = e
    prepared = bool(multihost_utils.broadcast_one_to_all(np.int32(failure is None)))  # barrier
    if failure is not None:
        raise failure
    if not prepared:
        raise DatasetError(
            f"Process 0 could not prepare dataset {name!r} in {root}; its message says why."
        )
    # A no-op where the folder is shared with process 0; a host-local folder is prepared here.
    return _prepare_here(name, root, raw_dir, verify_checksums)


def _prepare_here(
    name: str, root: epath.Path, raw_dir: pathlib.Path | None, verify_checksums: bool
) -> str:
    """Prepares ``name`` under ``root`` unless it is prepared; one process at a time per folder."""
    if is_prepared(name, root):
        return os.fspath(root)
    with _folder_lock(root, name):
        if is_prepared(name, root):  # another process prepared it while this one waited
            return os.fspath(root)
        builder = _BUILDERS[name](
            data_dir=root,
            raw_dir=raw_dir,
            verify_checksums=verify_checksums,
            file_format=FILE_FORMAT,
        )
        builder.download_and_prepare(
            download_dir=root / "downloads" / name,
            download_config=tfds.download.DownloadConfig(try_download_gcs=False),
            file_format=FILE_FORMAT,
        )
    return os.fspath(root)


@contextlib.contextmanager
def _folder_lock(root: epath.Path, name: str) -> Iterator[None]:
    """Holds an exclusive ``flock`` on ``root/.prepare_<name>.lock`` (local folders only).

    The kernel releases it when the holder dies. Remote folders (``gs://``...)
    have no file locks: there, only the multi-process barrier of ``prepare`` helps.
    """
    if "://" in os.fspath(root):
        yield
        return
    root.mkdir(parents=True, exist_ok=True)
    with open(os.fspath(root / f".prepare_{name}.lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield
