"""A prepared split as NumPy arrays, decoded once and kept beside the TFDS files.

Reading examples through ``tfds.data_source`` costs 70-200 us each (record
read, example parsing, PNG decoding), on the CPU that trains: 14 ms per batch
of 100 MNIST images, four times the VAE's whole train step (3.5 ms), measured
on a 2-core CPU. The images of a 28x28 split are tens of megabytes, so
``split_arrays`` decodes a split once (in order: 4.9 s for binarized MNIST's
50,000 training images, 6.3 s for MNIST's 60,000, on 2 cores), saves it as
``.npy`` files in ``<dataset folder>/jaxgen_arrays/`` and memory-maps them
afterwards; batches are then an indexing of an array.
The TFDS files stay the source: the arrays are rebuilt when their length does
not match the split's, and deleting the dataset folder deletes them too. A
read-only dataset folder keeps the decoded arrays in memory instead.
Own images (``folder:`` and ``npz:`` datasets) are decoded into memory by
``jaxgen.data.own`` instead and never written here.
"""

import os
import pathlib
import tempfile

import numpy as np
import tensorflow_datasets as tfds

from jaxgen.data import own
from jaxgen.data.catalog import DatasetInfo

ARRAYS_FOLDER = "jaxgen_arrays"
_CHUNK = 4096  # examples read from TFDS at a time while decoding


def split_arrays(
    info: DatasetInfo, split: str, data_dir: str | os.PathLike | None
) -> dict[str, np.ndarray]:
    """The images and labels of a prepared split, decoded once and then memory-mapped.

    Own images (``info.name`` a ``folder:`` or ``npz:`` spec) come from
    ``jaxgen.data.own``'s in-memory arrays instead (``data_dir`` is not used).

    Args:
      info: the dataset.
      split: one of ``info.splits``.
      data_dir: the TFDS data folder it is prepared in (None: TFDS's default).

    Returns:
      ``image``: uint8 [N, H, W, C]; ``label``: int32 [N] (-1 when ``info`` has
      no classes), in the split's order.
    """
    if own.is_own(info.name):
        return own.split_arrays(info, split)
    source = tfds.data_source(info.name, split=split, data_dir=data_dir, download=False)
    folder = pathlib.Path(tfds.builder(info.name, data_dir=data_dir).data_dir) / ARRAYS_FOLDER
    paths = {key: folder / f"{split}_{key}.npy" for key in ("image", "label")}
    if all(path.exists() for path in paths.values()):
        arrays = {key: np.load(path, mmap_mode="r") for key, path in paths.items()}
        if all(len(array) == len(source) for array in arrays.values()):
            return arrays
    arrays = _decode(source, info)
    try:
        folder.mkdir(exist_ok=True)
        for key, path in paths.items():
            _save_atomically(path, arrays[key])
    except OSError:
        return arrays  # a read-only dataset folder: decode again in the next process
    return {key: np.load(path, mmap_mode="r") for key, path in paths.items()}


def _decode(source, info: DatasetInfo) -> dict[str, np.ndarray]:
    """Every example of ``source`` in order, decoded by TFDS."""
    image = np.empty((len(source), *info.image_shape), np.uint8)
    label = np.full(len(source), -1, np.int32)
    for start in range(0, len(source), _CHUNK):
        records = source.__getitems__(list(range(start, min(start + _CHUNK, len(source)))))
        image[start : start + len(records)] = np.stack([r["image"] for r in records])
        if info.num_classes:
            label[start : start + len(records)] = [r["label"] for r in records]
    return {"image": image, "label": label}


def _save_atomically(path: pathlib.Path, array: np.ndarray) -> None:
    """Writes ``array`` to ``path`` so that readers see the whole file or none."""
    with tempfile.NamedTemporaryFile(dir=path.parent, suffix=".npy", delete=False) as f:
        try:
            np.save(f, array)
        except BaseException:
            os.unlink(f.name)
            raise
    os.chmod(f.name, 0o644)  # as readable as the TFDS files beside it
    os.replace(f.name, path)
