"""Few-label transfer: does an unsupervised encoder help a classifier that sees few labels?

A small classifier head (one hidden ReLU layer) sits on the code
``encode_mean(x)`` of a trained autoencoder or VAE. Trained on only
``labels_per_class`` labelled images per class, it is compared in three modes:

``"frozen"``    the trained encoder is kept fixed; only the head learns.
``"finetune"``  starts from the trained encoder and trains everything.
``"scratch"``   the same classifier, encoder included, from a random initialisation.

All modes use the same labelled examples, optimiser, steps and batches.
``run_transfer`` runs the comparison an experiment config describes
(``config.transfer``) and logs it as ``test`` rows of ``metrics.jsonl``.
"""

import json
import pathlib
from collections.abc import Mapping, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
from ml_collections import ConfigDict

from jaxgen import data, keys, metrics
from jaxgen.batching import apply_in_batches
from jaxgen.train.logging import MetricsWriter
from jaxgen.validation import ConfigError

MODES: tuple[str, ...] = ("frozen", "finetune", "scratch")


class Classifier(nn.Module):
    """Class logits from the code of a latent model.

    Attributes:
      backbone: an unbound ``Autoencoder`` or ``VAE`` (anything with ``encode_mean``);
        only its encoder is used, so its params hold only ``encoder``.
      num_classes: number of classes.
      hidden_features: width of the head's hidden layer.
    """

    backbone: nn.Module
    num_classes: int
    hidden_features: int = 128

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        """Classifies images: int [B, H, W, C] -> float [B, num_classes] logits."""
        z = self.backbone.encode_mean(x)
        h = nn.relu(nn.Dense(self.hidden_features, name="head_hidden")(z))
        return nn.Dense(self.num_classes, name="head_out")(h)


def first_per_class(labels: np.ndarray, labels_per_class: int, num_classes: int) -> np.ndarray:
    """Indices of the first ``labels_per_class`` examples of every class, in order.

    Args:
      labels: int [N] class labels.
      labels_per_class: examples kept per class.
      num_classes: classes 0 .. num_classes - 1.

    Returns:
      int [num_classes * labels_per_class] indices into ``labels``, sorted.

    Raises:
      ValueError: some class has fewer than ``labels_per_class`` examples.
    """
    labels = np.asarray(labels)
    picked = []
    for c in range(num_classes):
        idx = np.flatnonzero(labels == c)[:labels_per_class]
        if len(idx) < labels_per_class:
            raise ConfigError(
                f"Class {c} has {len(idx)} labelled examples, fewer than "
                f"labels_per_class={labels_per_class}; read more examples or lower it."
            )
        picked.append(idx)
    return np.sort(np.concatenate(picked))


def with_backbone(classifier_params, model_params):
    """Copies the trained model's encoder into the classifier's variables.

    Args:
      classifier_params: variables of a ``Classifier`` (``{"params": {"backbone": ...}}``).
      model_params: variables of the trained backbone model.

    Returns:
      ``classifier_params`` with every backbone sub-tree taken from ``model_params``.
    """
    backbone = classifier_params["params"]["backbone"]
    trained = {name: model_params["params"][name] for name in backbone}
    return {"params": {**classifier_params["params"], "backbone": trained}}


def _optimizer(mode: str, params, learning_rate: float) -> optax.GradientTransformation:
    """Adam on every parameter, or on the head only when ``mode == "frozen"``."""
    if mode not in MODES:
        raise ConfigError(f"mode={mode!r} must be one of {', '.join(MODES)}.")
    if mode != "frozen":
        return optax.adam(learning_rate)
    labels = {
        "params": {
            name: jax.tree.map(lambda _, n=name: "frozen" if n == "backbone" else "trained", sub)
            for name, sub in params["params"].items()
        }
    }
    return optax.multi_transform(
        {"trained": optax.adam(learning_rate), "frozen": optax.set_to_zero()}, labels
    )


def train_classifier(
    classifier: Classifier,
    params,
    images: np.ndarray,
    labels: np.ndarray,
    key: jax.Array,
    mode: str,
    num_steps: int,
    batch_size: int,
    learning_rate: float,
):
    """Trains a classifier by Adam on minibatches drawn with replacement.

    Args:
      classifier: the classifier module.
      params: its initial variables.
      images: int [N, H, W, C] labelled images.
      labels: int [N] their classes.
      key: PRNG key of the minibatch draws.
      mode: one of ``MODES``; ``"frozen"`` updates the head only.
      num_steps: optimiser steps.
      batch_size: images per step.
      learning_rate: Adam's step size.

    Returns:
      The trained variables.
    """
    tx = _optimizer(mode, params, learning_rate)
    images, labels = jnp.asarray(images), jnp.asarray(labels)

    def batch(step: int) -> tuple[jax.Array, jax.Array]:
        idx = jax.random.randint(jax.random.fold_in(key, step), (batch_size,), 0, len(labels))
        return images[idx], labels[idx]

    return metrics.fit_classifier(classifier.apply, params, batch, tx, num_steps)


def accuracy(
    classifier: Classifier, params, images: np.ndarray, labels: np.ndarray, batch_size: int = 500
) -> float:
    """Fraction of ``images`` (int [N, H, W, C]) whose argmax class equals ``labels`` (int [N])."""
    predict = jax.jit(lambda p, x: jnp.argmax(classifier.apply(p, x), axis=-1))
    pred = apply_in_batches(lambda x: predict(params, x), images, batch_size=batch_size)
    return float(np.mean(pred == np.asarray(labels)))


def compare(
    model: nn.Module,
    model_params,
    train_images: np.ndarray,
    train_labels: np.ndarray,
    test_images: np.ndarray,
    test_labels: np.ndarray,
    num_classes: int,
    labels_per_class: int,
    key: jax.Array,
    num_steps: int = 500,
    batch_size: int = 64,
    learning_rate: float = 1e-3,
    modes: Sequence[str] = MODES,
) -> Mapping[str, float]:
    """Test accuracy of the few-label classifier in each mode.

    Args:
      model: the trained latent model (unbound module).
      model_params: its trained variables.
      train_images: int [N, H, W, C] images with labels; the first
        ``labels_per_class`` of each class are used.
      train_labels: int [N].
      test_images: int [M, H, W, C].
      test_labels: int [M].
      num_classes: number of classes.
      labels_per_class: labelled examples per class.
      key: PRNG key; every mode uses the same initialisation and batches.
      num_steps: optimiser steps per mode.
      batch_size: images per step.
      learning_rate: Adam's step size.
      modes: subset of ``MODES``.

    Returns:
      mode -> test accuracy in [0, 1].
    """
    idx = first_per_class(train_labels, labels_per_class, num_classes)
    images, labels = np.asarray(train_images)[idx], np.asarray(train_labels)[idx]
    classifier = Classifier(model, num_classes)
    init_key, train_key = jax.random.split(key)
    init = classifier.init(init_key, jnp.asarray(images[:1]))
    results = {}
    for mode in modes:
        start = init if mode == "scratch" else with_backbone(init, model_params)
        params = train_classifier(
            classifier, start, images, labels, train_key, mode, num_steps, batch_size, learning_rate
        )
        results[mode] = accuracy(classifier, params, test_images, test_labels)
    return results


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
    info = data.dataset_info(name, data_dir=config.data_dir)
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


def check_config(config: ConfigDict) -> None:
    """Raises a ConfigError naming the first bad ``transfer.*`` value of an experiment config.

    ``run_transfer`` runs once training is done; experiments call this first
    (through ``Task.check_config``), so a bad value fails before training.
    """
    t = config.transfer
    if not t.labels_per_class:
        return  # no transfer: its other keys are unused
    name = t.dataset or config.dataset
    if not data.dataset_info(name, data_dir=config.data_dir).num_classes:
        raise ConfigError(
            f"transfer.dataset={name!r} has no labels; set --config.transfer.dataset to a "
            "labelled dataset (mnist or fashion_mnist), or transfer.labels_per_class=() to skip."
        )
    if any(not isinstance(n, int) or n < 1 for n in t.labels_per_class):
        raise ConfigError(
            f"transfer.labels_per_class={tuple(t.labels_per_class)} must hold positive integers."
        )
    if not t.modes or any(mode not in MODES for mode in t.modes):
        raise ConfigError(
            f"transfer.modes={tuple(t.modes)} must be a non-empty subset of {', '.join(MODES)}."
        )
    for key in ("num_steps", "batch_size"):
        if t[key] < 1:
            raise ConfigError(f"transfer.{key}={t[key]} must be a positive integer.")
    if not t.learning_rate > 0:
        raise ConfigError(f"transfer.learning_rate={t.learning_rate} must be positive.")
    if t.test_max_examples is not None and t.test_max_examples < 1:
        raise ConfigError(
            f"transfer.test_max_examples={t.test_max_examples} must be positive, or None (all)."
        )


def run_transfer(
    model: nn.Module, params, config: ConfigDict, workdir: pathlib.Path
) -> list[Mapping[str, float]]:
    """Logs the few-label transfer accuracies as ``test`` rows of ``metrics.jsonl``.

    Skips the ``labels_per_class`` values already logged (a rerun of a finished run).

    Args:
      model: the trained autoencoder or VAE (unbound module).
      params: its trained variables.
      config: the experiment config: ``transfer.*`` (dataset, labels_per_class,
        modes, num_steps, batch_size, learning_rate, test_max_examples) and the
        data keys, ``seed`` and ``num_steps`` (the rows' step).
      workdir: the run's folder.

    Returns:
      The rows written.

    Raises:
      ConfigError: a bad ``transfer.*`` value (``check_config``).
    """
    check_config(config)
    todo = [n for n in config.transfer.labels_per_class if n not in _logged_transfers(workdir)]
    if not todo:
        return []
    name = config.transfer.dataset or config.dataset
    info = data.dataset_info(name, data_dir=config.data_dir)
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
        accuracies = compare(
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
