"""The feature network of the metrics: a small classifier trained on a labelled split,
deterministic from its seed and cached in the TFDS data folder.
"""

import dataclasses
import functools
import os
import pathlib
from collections.abc import Callable, Mapping
from typing import Any

import flax.linen as nn
import flax.serialization
import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxgen import data
from jaxgen.metrics.frechet import to_unit_range
from jaxgen.validation import ConfigError

BatchFn = Callable[[int], Mapping[str, np.ndarray]]


class Classifier(nn.Module):
    """Small CNN classifier whose last hidden layer serves as the FID feature layer.

    conv 5x5 stride 2 (32) -> conv 5x5 stride 2 (64), ReLUs, -> dense
    ``features`` (the feature layer, taken before its ReLU: no dead units, so the
    feature covariance has full rank) -> ReLU -> dense ``num_classes``. About 3M
    multiply-adds per 28 x 28 image, so it trains in a minute or two on a CPU.

    Attributes:
      num_classes: K.
      features: D, width of the feature layer.
    """

    num_classes: int = 10
    features: int = 128

    @nn.compact
    def __call__(self, x: jax.Array) -> tuple[jax.Array, jax.Array]:
        """Classifies images.

        Args:
          x: float [B, H, W, C] in [0, 1].

        Returns:
          (logits float [B, K], features float [B, D]).
        """
        y = nn.relu(nn.Conv(32, (5, 5), (2, 2))(x))
        y = nn.relu(nn.Conv(64, (5, 5), (2, 2))(y))
        h = nn.Dense(self.features)(y.reshape(y.shape[0], -1))
        return nn.Dense(self.num_classes)(nn.relu(h)), h


@functools.partial(jax.jit, static_argnums=0)
def _forward(module: Classifier, params: Any, x: jax.Array) -> tuple[jax.Array, jax.Array]:
    return module.apply(params, x)


@dataclasses.dataclass(frozen=True)
class FeatureNetwork:
    """A trained ``Classifier`` and its parameters.

    Attributes:
      module: the classifier.
      params: its variables.
    """

    module: Classifier
    params: Any

    def features(self, x: jax.Array) -> jax.Array:
        """The FID features: float [B, H, W, C] in [0, 1] -> float [B, D]."""
        return _forward(self.module, self.params, x)[1]

    def predict(self, x: jax.Array) -> jax.Array:
        """Predicted classes: float [B, H, W, C] in [0, 1] -> int [B]."""
        return self.classify(x)[0]

    def classify(self, x: jax.Array) -> tuple[jax.Array, jax.Array]:
        """Classes and features from one pass: float [B, H, W, C] -> (int [B], float [B, D])."""
        logits, features = _forward(self.module, self.params, x)
        return jnp.argmax(logits, axis=-1), features


def fit_classifier(
    logits_fn: Callable[[Any, jax.Array], jax.Array],
    params: Any,
    batch_fn: Callable[[int], tuple[Any, Any]],
    tx: optax.GradientTransformation,
    num_steps: int,
) -> Any:
    """Minimises the mean softmax cross-entropy of a classifier, one jitted update per step.

    The one training loop of jaxgen's classifiers: the FID feature network
    (``train_classifier``) and the few-label transfer heads (``jaxgen.transfer``).

    Args:
      logits_fn: (params, x [B, ...]) -> float [B, K] class logits.
      params: the initial parameters.
      batch_fn: step -> (x [B, ...], int [B] labels in [0, K)).
      tx: the Optax optimiser.
      num_steps: updates.

    Returns:
      The trained parameters; deterministic given the inputs.
    """

    @jax.jit
    def update(params, opt_state, x, y):
        def loss_fn(p):
            logits = logits_fn(p, x)
            return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()

        grads = jax.grad(loss_fn)(params)
        updates, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state

    opt_state = tx.init(params)
    for step in range(num_steps):
        params, opt_state = update(params, opt_state, *batch_fn(step))
    return params


def train_classifier(
    module: Classifier,
    batch_fn: BatchFn,
    *,
    num_levels: int,
    num_steps: int,
    seed: int,
    learning_rate: float = 1e-3,
) -> FeatureNetwork:
    """Trains the classifier with Adam on cross-entropy; deterministic given its inputs.

    Args:
      module: the classifier.
      batch_fn: step -> {"image": int [B, H, W, C] in [0, num_levels), "label": int [B]}.
      num_levels: L of the images.
      num_steps: Adam updates.
      seed: seed of the initial parameters.
      learning_rate: Adam's step size.

    Returns:
      The trained FeatureNetwork.
    """

    def batch(step: int) -> tuple[np.ndarray, np.ndarray]:
        b = batch_fn(step)
        return to_unit_range(b["image"], num_levels), b["label"]

    params = module.init(jax.random.key(seed), batch(0)[0])
    params = fit_classifier(
        lambda p, x: module.apply(p, x)[0], params, batch, optax.adam(learning_rate), num_steps
    )
    return FeatureNetwork(module, params)


def load_or_train_classifier(
    path: str | os.PathLike,
    module: Classifier,
    batch_fn: BatchFn,
    *,
    num_levels: int,
    num_steps: int,
    seed: int,
) -> FeatureNetwork:
    """Loads the classifier cached at ``path``, or trains it and writes it there.

    Args:
      path: the cache file (Flax msgpack); its name should encode every argument.
      module, batch_fn, num_levels, num_steps, seed: see ``train_classifier``.

    Returns:
      The FeatureNetwork.
    """
    path = pathlib.Path(path)
    if path.is_file():
        example = np.zeros((1, *batch_fn(0)["image"].shape[1:]), np.float32)
        template = jax.eval_shape(module.init, jax.random.key(seed), example)
        params = flax.serialization.from_bytes(template, path.read_bytes())
        return FeatureNetwork(module, jax.tree.map(jnp.asarray, params))
    net = train_classifier(module, batch_fn, num_levels=num_levels, num_steps=num_steps, seed=seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.tmp{os.getpid()}")
    tmp.write_bytes(flax.serialization.to_bytes(net.params))
    tmp.replace(path)  # atomic: concurrent runs never read a half-written file
    return net


def dataset_classifier(
    dataset: str,
    data_dir: str | os.PathLike,
    *,
    num_steps: int = 2000,
    batch_size: int = 128,
    features: int = 128,
    seed: int = 0,
) -> FeatureNetwork:
    """The feature network of a labelled dataset, trained once and cached.

    Trains on the dataset's training split at 8-bit levels; the cache lives in
    ``data_dir/jaxgen_classifiers/`` under a name that encodes every argument.

    Args:
      dataset: a prepared TFDS dataset with labels (``mnist``, ``fashion_mnist``,
        ``cifar10``).
      data_dir: its TFDS data folder (as returned by ``jaxgen.data.prepare``).
      num_steps, batch_size: Adam updates and their batch size.
      features: D, the width of the feature layer.
      seed: seed of the initial parameters and the batch order.

    Returns:
      The FeatureNetwork.
    """
    info = data.dataset_info(dataset)
    if info.num_classes == 0:
        raise ConfigError(
            f"Dataset {dataset!r} has no labels to train the FID feature network on; use the "
            "8-bit dataset it comes from (mnist for binarized_mnist)."
        )
    batches = data.train_batches(
        dataset,
        batch_size=batch_size,
        seed=seed,
        num_levels=info.num_levels,
        data_dir=data_dir,
        process_index=0,
        process_count=1,
    )
    name = f"{dataset}_classifier_d{features}_steps{num_steps}_bs{batch_size}_seed{seed}.msgpack"
    return load_or_train_classifier(
        pathlib.Path(data_dir) / "jaxgen_classifiers" / name,
        Classifier(num_classes=info.num_classes, features=features),
        batches.__getitem__,
        num_levels=info.num_levels,
        num_steps=num_steps,
        seed=seed,
    )
