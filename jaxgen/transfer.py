"""Few-label transfer: does an unsupervised encoder help a classifier that sees few labels?

A small classifier head (one hidden ReLU layer) sits on the code
``encode_mean(x)`` of a trained autoencoder or VAE. Trained on only
``labels_per_class`` labelled images per class, it is compared in three modes:

``"frozen"``    the trained encoder is kept fixed; only the head learns.
``"finetune"``  starts from the trained encoder and trains everything.
``"scratch"``   the same classifier, encoder included, from a random initialisation.

All modes use the same labelled examples, optimiser, steps and batches.
"""

from collections.abc import Mapping, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

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

    def loss_fn(p, x, y):
        logits = classifier.apply(p, x)
        return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()

    @jax.jit
    def train(params, images, labels):
        def step(carry, i):
            p, opt_state = carry
            idx = jax.random.randint(jax.random.fold_in(key, i), (batch_size,), 0, len(labels))
            grads = jax.grad(loss_fn)(p, images[idx], labels[idx])
            updates, opt_state = tx.update(grads, opt_state, p)
            return (optax.apply_updates(p, updates), opt_state), None

        (params, _), _ = jax.lax.scan(step, (params, tx.init(params)), jnp.arange(num_steps))
        return params

    return train(params, jnp.asarray(images), jnp.asarray(labels))


def accuracy(
    classifier: Classifier, params, images: np.ndarray, labels: np.ndarray, batch_size: int = 500
) -> float:
    """Fraction of ``images`` (int [N, H, W, C]) whose argmax class equals ``labels`` (int [N])."""
    predict = jax.jit(lambda p, x: jnp.argmax(classifier.apply(p, x), axis=-1))
    correct = 0
    for start in range(0, len(labels), batch_size):
        pred = predict(params, jnp.asarray(images[start : start + batch_size]))
        correct += int(jnp.sum(pred == jnp.asarray(labels[start : start + batch_size])))
    return correct / len(labels)


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
