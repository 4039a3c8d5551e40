"""Canonical raw files: find them, check them against TFDS's registry, parse them.

Every file is checked for the size and sha256 that tensorflow-datasets
registers for it (the stock builder's ``url_infos``), so jaxgen never keeps its
own table of checksums. Parsing uses only ``gzip``, ``tarfile`` and NumPy.
"""

import gzip
import hashlib
import io
import pathlib
import tarfile
import zlib
from collections.abc import Mapping

import numpy as np
from tensorflow_datasets.core.download import checksums

from jaxgen.data.catalog import DatasetError

# Errors raised while decompressing a damaged file.
_CORRUPT_ERRORS = (gzip.BadGzipFile, zlib.error, EOFError, tarfile.TarError)


def registered_files(url_infos: Mapping[str, checksums.UrlInfo]) -> dict[str, str]:
    """Maps each registered file name to its URL.

    Args:
      url_infos: a stock TFDS builder's ``url_infos`` (URL -> size, sha256, name).

    Returns:
      file name (e.g. ``"train-images-idx3-ubyte.gz"``) -> URL.
    """
    return {info.filename or url.rsplit("/", 1)[-1]: url for url, info in url_infos.items()}


def locate(name: str, raw_dir: pathlib.Path, filename: str) -> pathlib.Path:
    """Returns the path of ``filename`` under ``raw_dir/name``, or its ``.gz`` copy.

    Args:
      name: TFDS dataset name; files live in the sub-folder of that name.
      raw_dir: folder of canonical raw files.
      filename: the registered file name.

    Raises:
      DatasetError: neither the file nor a gzipped copy exists.
    """
    folder = raw_dir / name
    for path in (folder / filename, folder / f"{filename}.gz"):
        if path.is_file():
            return path
    raise DatasetError(
        f"Raw file {folder / filename} of dataset {name!r} is missing. Put the canonical file "
        f"(as registered by tensorflow-datasets) there, or set JAXGEN_RAW_DIR / raw_dir to a "
        f"folder holding {name}/{filename}, or pass no raw folder on a machine with a network "
        "to download it."
    )


def read_bytes(name: str, path: pathlib.Path, registered_name: str) -> bytes:
    """Reads a raw file, gunzipping it when only a ``.gz`` copy of it was stored.

    Args:
      name: TFDS dataset name (for messages).
      path: the file returned by ``locate``.
      registered_name: the name TFDS registers; if ``path`` is ``registered_name``
        plus ``.gz`` the content is decompressed.

    Raises:
      DatasetError: the gzipped copy is damaged.
    """
    if path.name == registered_name:
        return path.read_bytes()
    try:
        return gzip.decompress(path.read_bytes())
    except _CORRUPT_ERRORS as e:
        raise _corrupt(name, path, f"it cannot be decompressed ({e})") from e


def verify(name: str, path: pathlib.Path, data: bytes, expected: checksums.UrlInfo) -> None:
    """Checks ``data`` (the content of ``path``) against TFDS's registered size and sha256.

    Raises:
      DatasetError: naming the file, the expected and the actual checksum.
    """
    digest = hashlib.sha256(data).hexdigest()
    if len(data) != int(expected.size) or digest != expected.checksum:
        raise _corrupt(
            name,
            path,
            f"its content has {len(data)} bytes and sha256 {digest}, but tensorflow-datasets "
            f"registers {int(expected.size)} bytes and sha256 {expected.checksum}",
        )


def parse_idx_images(name: str, path: pathlib.Path, data: bytes) -> np.ndarray:
    """Parses a gzipped IDX image file (MNIST format).

    Args:
      name: TFDS dataset name (for messages).
      path: where ``data`` came from (for messages).
      data: the gzipped file content.

    Returns:
      uint8 [N, H, W, 1].
    """
    raw = _gunzip(name, path, data)
    header = np.frombuffer(raw[:16], dtype=">u4")
    if len(header) != 4 or header[0] != 2051 or len(raw) != 16 + int(np.prod(header[1:])):
        raise _corrupt(name, path, "it is not an IDX image file")
    n, h, w = (int(v) for v in header[1:])
    return np.frombuffer(raw, dtype=np.uint8, offset=16).reshape(n, h, w, 1)


def parse_idx_labels(name: str, path: pathlib.Path, data: bytes) -> np.ndarray:
    """Parses a gzipped IDX label file (MNIST format).

    Returns:
      int64 [N].
    """
    raw = _gunzip(name, path, data)
    header = np.frombuffer(raw[:8], dtype=">u4")
    if len(header) != 2 or header[0] != 2049 or len(raw) != 8 + int(header[1]):
        raise _corrupt(name, path, "it is not an IDX label file")
    return np.frombuffer(raw, dtype=np.uint8, offset=8).astype(np.int64)


def parse_amat(name: str, path: pathlib.Path, data: bytes) -> np.ndarray:
    """Parses a binarized-MNIST ``.amat`` file (784 whitespace-separated 0/1 a line).

    Returns:
      uint8 [N, 28, 28, 1] with values 0 and 1.
    """
    chars = np.frombuffer(data, dtype=np.uint8)
    is_space = np.isin(chars, np.frombuffer(b" \t\r\n", dtype=np.uint8))
    digits = chars[~is_space] - ord("0")
    if digits.size % 784 or np.any(digits > 1):
        raise _corrupt(name, path, "it is not 0/1 text with 784 values a line")
    return digits.reshape(-1, 28, 28, 1)


def parse_cifar_tarball(
    name: str,
    path: pathlib.Path,
    data: bytes,
    prefix: str,
    members: Mapping[str, list[str]],
    meta: str,
) -> tuple[dict[str, tuple[np.ndarray, np.ndarray]], list[str]]:
    """Parses the CIFAR binary tarball (``cifar-10-binary.tar.gz``).

    Each ``.bin`` member holds records of one label byte followed by a
    3072-byte image in channel-major (3, 32, 32) order.

    Args:
      name: TFDS dataset name (for messages).
      path: where ``data`` came from (for messages).
      data: the content of the tarball.
      prefix: folder inside the archive, e.g. ``"cifar-10-batches-bin/"``.
      members: split name -> the ``.bin`` files of that split, in order.
      meta: the text member listing the label names, one a line.

    Returns:
      (split -> (uint8 images [N, 32, 32, 3], int64 labels [N]), label names).
    """
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
            files = {m.name: m for m in tar.getmembers() if m.isfile()}

            def read(member: str) -> bytes:
                if prefix + member not in files:
                    raise _corrupt(name, path, f"the archive has no member {prefix + member}")
                extracted = tar.extractfile(files[prefix + member])
                assert extracted is not None  # `files` holds regular files only, never None
                return extracted.read()

            names = [line for line in read(meta).decode().split("\n") if line.strip()]
            splits = {}
            for split, bins in members.items():
                records = np.frombuffer(b"".join(read(b) for b in bins), dtype=np.uint8)
                if records.size % 3073:
                    raise _corrupt(name, path, f"a {split} member is not a whole number of records")
                records = records.reshape(-1, 3073)
                images = records[:, 1:].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
                splits[split] = (np.ascontiguousarray(images), records[:, 0].astype(np.int64))
    except _CORRUPT_ERRORS as e:
        raise _corrupt(name, path, f"it cannot be read as a .tar.gz archive ({e})") from e
    return splits, names


def _gunzip(name: str, path: pathlib.Path, data: bytes) -> bytes:
    try:
        return gzip.decompress(data)
    except _CORRUPT_ERRORS as e:
        raise _corrupt(name, path, f"it cannot be decompressed ({e})") from e


def _corrupt(name: str, path: pathlib.Path, why: str) -> DatasetError:
    return DatasetError(
        f"Raw file {path} of dataset {name!r} is corrupt: {why}. Delete the corrupt file and "
        "replace it with the canonical file (as registered by tensorflow-datasets), or prepare "
        "on a machine with a network without a raw folder to download it."
    )
