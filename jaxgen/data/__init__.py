"""Datasets: offline-capable TFDS preparation and grain input pipelines (no TensorFlow).

Typical use::

  from jaxgen import data

  data.prepare("binarized_mnist")  # raw files from JAXGEN_RAW_DIR, else download
  info = data.dataset_info("binarized_mnist")
  train = data.train_batches("binarized_mnist", batch_size=64, seed=0, num_levels=2)
  batch = train[step]  # {"image": int32 [64, 28, 28, 1], "label": int32 [64]}
  for batch in data.eval_batches("binarized_mnist", info.eval_split, batch_size=100,
                                 num_levels=2):
    ...  # batch["mask"] marks real examples

Own images go where a dataset name goes: ``"folder:/path/to/images"`` (add
``?resize=HxW`` for images of several sizes), ``"npz:/path/file.npz"``, or
``from_array(images, labels)``, which saves an array and returns such a name
(see ``jaxgen.data.own``). Other TFDS image datasets work once prepared in
``array_record`` format in the data folder.
"""

from jaxgen.data.builders import RAW_DIR_ENV, prepare
from jaxgen.data.catalog import DATASETS, DatasetError, DatasetInfo, dataset_info
from jaxgen.data.own import from_array
from jaxgen.data.pipeline import (
    BINARIZE,
    EvalBatches,
    TrainBatches,
    check_train_args,
    eval_batches,
    train_batches,
)

__all__ = [
    "BINARIZE",
    "DATASETS",
    "RAW_DIR_ENV",
    "DatasetError",
    "DatasetInfo",
    "EvalBatches",
    "TrainBatches",
    "check_train_args",
    "dataset_info",
    "eval_batches",
    "from_array",
    "prepare",
    "train_batches",
]
