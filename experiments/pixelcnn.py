"""PixelCNN on binarized MNIST: exact likelihood, samples and completions.

    python -m experiments.pixelcnn --workdir DIR [--config=experiments/configs/pixelcnn.py:cpu]

Reports test-split NLL in nats per image and bits per dimension. With
``model.num_classes`` set (the ``conditional`` variant: Gated PixelCNN on
dynamically binarized MNIST) the model learns p(x | label): training and
evaluation feed each image's label, and the sample grid cycles through the classes.
"""

import math
import pathlib

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from ml_collections import ConfigDict

from experiments import cli
from jaxgen import data, losses, sampling, viz
from jaxgen.models import registry
from jaxgen.train import Task, train_and_evaluate

DEFAULT_CONFIG = pathlib.Path(__file__).parent / "configs" / "pixelcnn.py"


def make_model(config: ConfigDict) -> nn.Module:
    """The autoregressive model named by ``config.model.name``, with its sizes."""
    return registry.build_model(config.model.to_dict(), config.num_levels)


def make_task(config: ConfigDict) -> Task:
    """The PixelCNN task: NLL loss, per-example NLL and bits/dim, samples and completions."""
    model = make_model(config)
    image_shape = data.dataset_info(config.dataset).image_shape
    num_dims = math.prod(image_shape)

    num_classes = config.model.get("num_classes")

    def labels_of(batch) -> jax.Array | None:
        """int [B] labels for a class-conditional model (padding's -1 as 0), else None."""
        return None if num_classes is None else jnp.maximum(batch["label"], 0)

    def inputs(batch) -> tuple[jax.Array, ...]:
        """The model's arguments: the images, and the labels if it is class-conditional."""
        return (batch["image"],) if num_classes is None else (batch["image"], labels_of(batch))

    def nll(params, batch) -> jax.Array:
        """float [B] nats per image."""
        return losses.autoregressive_nll(model.apply(params, *inputs(batch)), batch["image"])

    def init(key, batch):
        return model.init(key, *inputs(batch))

    def loss_fn(params, batch, key):
        del key  # the model is deterministic
        loss = nll(params, batch).mean()
        return loss, {"nll_nats": loss, "bits_per_dim": losses.bits_per_dim(loss, num_dims)}

    def eval_fn(params, batch, key):
        del key
        per_image = nll(params, batch)
        return {"nll_nats": per_image, "bits_per_dim": losses.bits_per_dim(per_image, num_dims)}

    def write_samples(params, key, workdir, step, examples) -> list[pathlib.Path]:
        params = jax.device_get(params)  # sample on one device
        sample_key, complete_key = jax.random.split(key)
        shape = (config.num_samples, *image_shape)
        grid_labels = None if num_classes is None else np.arange(shape[0]) % num_classes
        samples = sampling.autoregressive_sample(
            model, params, sample_key, shape, method=config.sample_method, labels=grid_labels
        )
        images = examples["image"]
        known = np.zeros(images.shape[:3], bool)
        known[:, : image_shape[0] // 2] = True  # the top half is given
        completions = sampling.complete(
            model,
            params,
            complete_key,
            images,
            known,
            method=config.sample_method,
            labels=labels_of(examples),
        )
        if jax.process_index() != 0:
            return []
        out = pathlib.Path(workdir) / "samples"
        return [
            viz.save_image_grid(out / f"step{step:07d}_samples.png", samples, config.num_levels),
            viz.save_image_grid(
                out / f"step{step:07d}_completions.png",  # top row: completions, bottom: originals
                np.concatenate([np.asarray(completions), images]),
                config.num_levels,
                num_cols=len(images),
            ),
        ]

    return Task(init=init, loss_fn=loss_fn, eval_fn=eval_fn, write_samples=write_samples)


def run(config: ConfigDict, workdir: pathlib.Path) -> None:
    """Trains and evaluates the PixelCNN experiment in ``workdir``."""
    train_and_evaluate(make_task(config), config, workdir)


if __name__ == "__main__":
    cli.main(run, DEFAULT_CONFIG)
