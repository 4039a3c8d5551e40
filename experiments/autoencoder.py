"""Conv autoencoder on MNIST: L2 reconstruction, then few-label transfer of its encoder.

    python -m experiments.autoencoder --workdir DIR
        [--config=experiments/configs/autoencoder.py:cpu]

Logs the test split's reconstruction error, then, for every
``transfer.labels_per_class``, one ``test`` row with the accuracy of a
classifier head on the frozen encoder, on the fine-tuned encoder and of the
same classifier trained from scratch on the same labelled images.
"""

import json
import math
import pathlib
from collections.abc import Mapping

import flax.linen as nn
import jax
import numpy as np
from ml_collections import ConfigDict

from experiments import cli
from jaxgen import data, keys, latent, transfer, viz
from jaxgen.models.autoencoder import Autoencoder, reconstruction_loss
from jaxgen.train import Task, train_and_evaluate
from jaxgen.train.logging import MetricsWriter
from jaxgen.validation import ConfigError

DEFAULT_CONFIG = pathlib.Path(__file__).parent / "configs" / "autoencoder.py"


def make_model(config: ConfigDict) -> Autoencoder:
    """The autoencoder with the config's sizes and the dataset's image shape."""
    return Autoencoder(
        num_levels=config.num_levels,
        image_shape=data.dataset_info(config.dataset).image_shape,
        **config.model.to_dict(),
    )


def to_pixels(images: jax.Array | np.ndarray, num_levels: int | None = None) -> np.ndarray:
    """Images as 8-bit levels for ``viz``: float in [0, 1] (``num_levels=None``) or int levels."""
    scale = 255.0 if num_levels is None else 255.0 / (num_levels - 1)
    return np.round(np.asarray(images, np.float64) * scale).astype(np.int32)


def save_rows(path: pathlib.Path, rows: np.ndarray) -> pathlib.Path:
    """Writes int [R, S, H, W, C] 8-bit images as a grid of R rows of S images."""
    return viz.save_image_grid(path, rows.reshape(-1, *rows.shape[2:]), 256, rows.shape[1])


def interpolation_rows(
    model: nn.Module, params, images: np.ndarray, num_levels: int, num_steps: int
) -> np.ndarray:
    """Rows from test image 2i to test image 2i+1, with the two images at the ends.

    Returns:
      int [B // 2, num_steps + 2, H, W, C] 8-bit levels.
    """
    start, end = images[0 : len(images) - 1 : 2], images[1::2]
    path = latent.interpolate(model, params, start, end, num_steps)
    return np.concatenate(
        [
            to_pixels(start[:, None], num_levels),
            to_pixels(path),
            to_pixels(end[:, None], num_levels),
        ],
        axis=1,
    )


def make_task(config: ConfigDict) -> Task:
    """The autoencoder task: L2 loss, per-example reconstruction error, pictures."""
    model = make_model(config)
    num_dims = math.prod(data.dataset_info(config.dataset).image_shape)

    def sq_error(params, batch) -> jax.Array:
        """float [B] summed squared error on the [0, 1] scale."""
        x = batch["image"]
        return reconstruction_loss(model.apply(params, x), x, config.num_levels)

    def init(key, batch):
        return model.init(key, batch["image"])

    def loss_fn(params, batch, key):
        del key  # the model is deterministic
        loss = sq_error(params, batch).mean()
        return loss, {"mse": loss / num_dims}

    def eval_fn(params, batch, key):
        del key
        per_image = sq_error(params, batch)
        return {"loss": per_image, "mse": per_image / num_dims}

    def write_samples(params, key, workdir, step, examples) -> list[pathlib.Path]:
        del key  # the pictures are deterministic
        params = jax.device_get(params)
        images = examples["image"]
        recon = latent.reconstruct(model, params, images)
        recon = np.stack([to_pixels(images, config.num_levels), to_pixels(recon)])
        interp = interpolation_rows(
            model, params, images, config.num_levels, config.interpolation_steps
        )
        if jax.process_index() != 0:
            return []
        out = pathlib.Path(workdir) / "samples"
        return [
            save_rows(out / f"step{step:07d}_reconstructions.png", recon),  # top: originals
            save_rows(out / f"step{step:07d}_interpolation.png", interp),
        ]

    return Task(init=init, loss_fn=loss_fn, eval_fn=eval_fn, write_samples=write_samples)


def labelled_arrays(
    config: ConfigDict, split: str, max_examples: int | None = None, per_class: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """The first images and labels of a split of the transfer dataset, read in order.

    Reading stops at the end of the split, or once ``max_examples`` are read (if
    not None), or once every class has ``per_class`` examples (if positive).

    Returns:
      (int [N, H, W, C] images with ``config.num_levels`` levels, int [N] labels).
    """
    name = config.transfer.dataset or config.dataset
    info = data.dataset_info(name)
    # A binary model reads 8-bit images through one fixed Bernoulli draw (as binarized MNIST).
    binary_of_8bit = config.num_levels == 2 and info.num_levels == 256
    images, labels = [], []
    for batch in data.eval_batches(
        name,
        split,
        batch_size=1000,
        num_levels=config.num_levels,
        binarize="dynamic" if binary_of_8bit else "none",
        data_dir=config.data_dir,
        process_index=0,  # every process reads the whole labelled set
        process_count=1,
    ):
        images.append(batch["image"][batch["mask"]])
        labels.append(batch["label"][batch["mask"]])
        read = np.concatenate(labels)
        if max_examples is not None and len(read) >= max_examples:
            break
        if per_class and np.bincount(read, minlength=info.num_classes).min() >= per_class:
            break
    return np.concatenate(images)[:max_examples], np.concatenate(labels)[:max_examples]


def _logged_transfers(workdir: pathlib.Path) -> set[int]:
    """The ``labels_per_class`` values whose transfer rows ``metrics.jsonl`` already holds."""
    path = workdir / "metrics.jsonl"
    if not path.exists():
        return set()
    rows = [json.loads(line) for line in path.read_text().splitlines() if line]
    return {int(r["labels_per_class"]) for r in rows if "labels_per_class" in r}


def run_transfer(
    model: nn.Module, params, config: ConfigDict, workdir: pathlib.Path
) -> list[Mapping[str, float]]:
    """Logs the few-label transfer accuracies as ``test`` rows of ``metrics.jsonl``.

    Skips the ``labels_per_class`` values already logged (a rerun of a finished run).

    Returns:
      The rows written.
    """
    todo = [n for n in config.transfer.labels_per_class if n not in _logged_transfers(workdir)]
    if not todo:
        return []
    name = config.transfer.dataset or config.dataset
    info = data.dataset_info(name)
    if not info.num_classes:
        raise ConfigError(
            f"transfer.dataset={name!r} has no labels; set --config.transfer.dataset to a "
            "labelled dataset (mnist or fashion_mnist), or transfer.labels_per_class=() to skip."
        )
    data.prepare(name, data_dir=config.data_dir, raw_dir=config.raw_dir)
    params = jax.device_get(params)
    train_images, train_labels = labelled_arrays(config, info.train_split, per_class=max(todo))
    test_images, test_labels = labelled_arrays(
        config, info.test_split, config.transfer.test_max_examples
    )
    key = jax.random.fold_in(keys.make_keys(config.seed).init, 1)  # a stream of its own
    writer = MetricsWriter(workdir)
    rows = []
    for n in todo:
        accuracies = transfer.compare(
            model,
            params,
            train_images,
            train_labels,
            test_images,
            test_labels,
            num_classes=info.num_classes,
            labels_per_class=n,
            key=key,
            num_steps=config.transfer.num_steps,
            batch_size=config.transfer.batch_size,
            learning_rate=config.transfer.learning_rate,
            modes=config.transfer.modes,
        )
        metrics = {f"accuracy_{mode}": acc for mode, acc in accuracies.items()}
        row = {"labels_per_class": n, **metrics, "num_test_examples": len(test_labels)}
        rows.append(writer.write(config.num_steps, "test", row))
        print(f"Transfer on {name!r} with {n} labels per class: {metrics}")
    writer.close()
    return rows


def run(config: ConfigDict, workdir: pathlib.Path) -> None:
    """Trains and evaluates the autoencoder in ``workdir``, then the few-label transfer."""
    state = train_and_evaluate(make_task(config), config, workdir)
    run_transfer(make_model(config), state.eval_params, config, workdir)


if __name__ == "__main__":
    cli.main(run, DEFAULT_CONFIG)
