"""The datasets jaxgen knows: shapes, splits and the error type of the data package."""

import dataclasses
from collections.abc import Mapping

from jaxgen.validation import ConfigError


class DatasetError(ValueError):
    """A dataset is missing, corrupt or not prepared; the message says what to do."""


@dataclasses.dataclass(frozen=True)
class DatasetInfo:
    """Static facts about one TFDS dataset.

    Attributes:
        name: TFDS name, e.g. ``"binarized_mnist"``.
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


def dataset_info(name: str) -> DatasetInfo:
    """Returns the static facts about dataset ``name``.

    Raises:
        ValueError: ``name`` is not one of ``DATASETS``.
    """
    if name not in _CATALOG:
        raise ConfigError(f"Unknown dataset name={name!r}; jaxgen supports {', '.join(DATASETS)}.")
    return _CATALOG[name]
