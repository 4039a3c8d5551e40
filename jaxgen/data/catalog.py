"""The datasets jaxgen knows: shapes, splits and the error type of the data package.

A dataset name is one of

- the catalog (``DATASETS``): ``binarized_mnist``, ``mnist``, ``fashion_mnist``,
  ``cifar10``, which ``jaxgen.data.prepare`` prepares offline from raw files;
- your own images, ``folder:/path[?resize=HxW]`` or ``npz:/path/file.npz``
  (``jaxgen.data.own``);
- any other TFDS image dataset already prepared in ``array_record`` format in
  the data folder (``tfds build NAME --file_format=array_record``): its
  ``DatasetInfo`` gives the shape, splits and classes.
"""

import dataclasses
import os
from collections.abc import Mapping

import numpy as np
import tensorflow_datasets as tfds

from jaxgen.validation import ConfigError

FILE_FORMAT = "array_record"  # the format jaxgen reads TFDS datasets in (no TensorFlow)


class DatasetError(ValueError):
    """A dataset is missing, corrupt or not prepared; the message says what to do."""


@dataclasses.dataclass(frozen=True)
class DatasetInfo:
    """Static facts about one dataset.

    Attributes:
        name: the dataset's name as given: a TFDS name, e.g. ``"binarized_mnist"``,
            or an own-data spec, e.g. ``"folder:/data/faces?resize=32x32"``.
        image_shape: ``(H, W, C)`` of every image.
        num_classes: number of label classes; 0 when the dataset has no labels
            (``binarized_mnist``, whose batches carry ``label == -1``).
        num_levels: number of pixel values stored on disk: 2 for binary data,
            256 for 8-bit data.
        splits: split name -> number of examples.
        train_split: split used for training.
        eval_split: split used for evaluation during training.
        test_split: held-out split for final numbers.
    """

    name: str
    image_shape: tuple[int, int, int]
    num_classes: int
    num_levels: int
    splits: Mapping[str, int]
    train_split: str
    eval_split: str
    test_split: str


_CATALOG = {
    info.name: info
    for info in (
        DatasetInfo(
            name="binarized_mnist",
            image_shape=(28, 28, 1),
            num_classes=0,
            num_levels=2,
            splits={"train": 50_000, "validation": 10_000, "test": 10_000},
            train_split="train",
            eval_split="validation",
            test_split="test",
        ),
        DatasetInfo(
            name="mnist",
            image_shape=(28, 28, 1),
            num_classes=10,
            num_levels=256,
            splits={"train": 60_000, "test": 10_000},
            train_split="train",
            eval_split="test",
            test_split="test",
        ),
        DatasetInfo(
            name="fashion_mnist",
            image_shape=(28, 28, 1),
            num_classes=10,
            num_levels=256,
            splits={"train": 60_000, "test": 10_000},
            train_split="train",
            eval_split="test",
            test_split="test",
        ),
        DatasetInfo(
            name="cifar10",
            image_shape=(32, 32, 3),
            num_classes=10,
            num_levels=256,
            splits={"train": 50_000, "test": 10_000},
            train_split="train",
            eval_split="test",
            test_split="test",
        ),
    )
}

DATASETS: tuple[str, ...] = tuple(_CATALOG)


def dataset_info(name: str, data_dir: str | os.PathLike | None = None) -> DatasetInfo:
    """Returns the static facts about dataset ``name``.

    Args:
      name: a catalog name (``DATASETS``), an own-data spec (``folder:/path``,
        ``folder:/path?resize=HxW``, ``npz:/path/file.npz``; loaded and checked
        here, see ``jaxgen.data.own``), or the name of another TFDS image dataset
        prepared in ``data_dir``.
      data_dir: the TFDS data folder, read for TFDS datasets outside the catalog
        (None: TFDS's default, ``TFDS_DATA_DIR`` or ``~/tensorflow_datasets``).

    Raises:
      ConfigError: a malformed own-data spec, or a name that is neither in the
        catalog nor an own-data spec nor a TFDS dataset (registered, or prepared
        in ``data_dir``).
      DatasetError: own data that cannot be used (the message says why), or a
        TFDS dataset that is not prepared in ``data_dir`` in ``array_record``
        format.
    """
    if name in _CATALOG:
        return _CATALOG[name]
    from jaxgen.data import own  # own imports this module

    if own.is_own(name):
        return own.dataset_info(name)
    return _tfds_info(name, data_dir)


def _tfds_info(name: str, data_dir: str | os.PathLike | None) -> DatasetInfo:
    """The facts of a TFDS image dataset outside the catalog, from its prepared ``DatasetInfo``."""
    where = f"data_dir={os.fspath(data_dir or tfds.core.constants.get_default_data_dir())}"
    try:
        builder = tfds.builder(name, data_dir=data_dir)
    except (tfds.core.registered.DatasetNotFoundError, ValueError) as e:
        raise ConfigError(
            f"Unknown dataset name={name!r}: it is not one of jaxgen's {', '.join(DATASETS)}, not "
            "your own images (folder:/path/to/images or npz:/path/file.npz), and no TFDS "
            f"dataset of that name is prepared in {where} ({type(e).__name__}). Check the "
            "spelling; prepare another TFDS dataset with `tfds build NAME "
            f"--file_format={FILE_FORMAT} --data_dir=DIR` and pass --config.data_dir=DIR."
        ) from e
    if not builder.is_prepared():
        raise DatasetError(
            f"Dataset {name!r} is not prepared in {where}. jaxgen prepares offline only its "
            f"own catalog ({', '.join(DATASETS)}); prepare another TFDS dataset once with "
            f"`tfds build {name} --file_format={FILE_FORMAT} --data_dir=DIR` (which needs "
            "TensorFlow, on any machine; copy DIR over if need be) and pass "
            "--config.data_dir=DIR, or use your own images with folder:/path or npz:/path."
        )
    info = builder.info
    formats = {f.value for f in info.available_file_formats()}
    if FILE_FORMAT not in formats:
        raise DatasetError(
            f"Dataset {name!r} in {builder.data_dir} is prepared in format "
            f"{', '.join(sorted(formats))}, which jaxgen cannot read without TensorFlow. "
            f"Prepare it again with `tfds build {name} --file_format={FILE_FORMAT}`."
        )
    features = info.features
    image = features["image"] if "image" in features else None
    shape = tuple(getattr(image, "shape", ()) or ())
    if (
        not isinstance(image, tfds.features.Image)
        or len(shape) != 3
        or None in shape
        or shape[-1] not in (1, 3)
        or np.dtype(image.np_dtype) != np.uint8
    ):
        raise DatasetError(
            f"Dataset {name!r} has no feature 'image' of uint8 images of one size with 1 or 3 "
            f"channels (its features: {features}); jaxgen reads such images only. Export the "
            "images you want (e.g. as PNG files of one size) and use folder:/path instead."
        )
    label = features["label"] if "label" in features else None
    num_classes = label.num_classes if isinstance(label, tfds.features.ClassLabel) else 0
    splits = {split: int(split_info.num_examples) for split, split_info in info.splits.items()}
    missing = [split for split in ("train", "test") if split not in splits]
    if missing:
        raise DatasetError(
            f"Dataset {name!r} has no {missing[0]!r} split (its splits: {', '.join(splits)}); "
            "jaxgen trains on 'train' and reports on 'test'. Use a dataset with both, or "
            "export its images into train/ and test/ folders and use folder:/path."
        )
    return DatasetInfo(
        name=name,
        image_shape=(int(shape[0]), int(shape[1]), int(shape[2])),
        num_classes=int(num_classes),
        num_levels=256,
        splits=splits,
        train_split="train",
        eval_split="validation" if "validation" in splits else "test",
        test_split="test",
    )
