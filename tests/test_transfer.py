"""Few-label transfer: label selection, weight transfer, frozen vs fine-tuned training."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxgen import transfer
from jaxgen.models import VAE, Autoencoder

MODEL = Autoencoder(latent_dim=4, image_shape=(8, 8, 1), features=(4, 8), hidden_features=16)


def _quadrant_data(n: int, seed: int):
    """Images whose class (0..3) is the bright quadrant, plus noise: int [n, 8, 8, 1], int [n]."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 4, n)
    images = rng.integers(0, 60, (n, 8, 8, 1))
    for c in range(4):
        r, s = divmod(c, 2)
        images[labels == c, 4 * r : 4 * r + 4, 4 * s : 4 * s + 4] += 190
    return images, labels


def test_first_per_class_takes_the_first_examples_of_each_class():
    labels = np.array([2, 0, 1, 0, 2, 1, 0, 1])
    np.testing.assert_array_equal(transfer.first_per_class(labels, 2, 3), [0, 1, 2, 3, 4, 5])
    with pytest.raises(ValueError, match="Class 2 has 2"):
        transfer.first_per_class(labels, 3, 3)


def test_frozen_training_changes_only_the_head_and_finetuning_changes_the_encoder():
    images, labels = _quadrant_data(40, 0)
    model_params = MODEL.init(jax.random.key(0), jnp.asarray(images[:1]))
    classifier = transfer.Classifier(MODEL, 4)
    start = transfer.with_backbone(
        classifier.init(jax.random.key(1), jnp.asarray(images[:1])), model_params
    )
    key = jax.random.key(2)
    frozen = transfer.train_classifier(classifier, start, images, labels, key, "frozen", 5, 8, 1e-2)
    tuned = transfer.train_classifier(
        classifier, start, images, labels, key, "finetune", 5, 8, 1e-2
    )

    def changed(a, b):
        return any(
            not np.array_equal(x, y)
            for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True)
        )

    assert not changed(frozen["params"]["backbone"], start["params"]["backbone"])
    assert changed(frozen["params"]["head_out"], start["params"]["head_out"])
    assert changed(tuned["params"]["backbone"], start["params"]["backbone"])


def test_with_backbone_copies_the_trained_encoder():
    model = VAE(latent_dim=2, image_shape=(8, 8, 1), features=(8,))
    x = jnp.zeros((1, 8, 8, 1), jnp.int32)
    model_params = model.init(jax.random.key(0), x)
    classifier = transfer.Classifier(model, 3)
    params = transfer.with_backbone(classifier.init(jax.random.key(1), x), model_params)
    assert set(params["params"]["backbone"]) == {"encoder"}  # the decoder is not part of it
    jax.tree.map(
        np.testing.assert_array_equal,
        params["params"]["backbone"]["encoder"],
        model_params["params"]["encoder"],
    )


def test_compare_runs_every_mode_end_to_end():
    train_images, train_labels = _quadrant_data(80, 1)
    test_images, test_labels = _quadrant_data(200, 2)
    model_params = MODEL.init(jax.random.key(0), jnp.asarray(train_images[:1]))
    accuracies = transfer.compare(
        MODEL,
        model_params,
        train_images,
        train_labels,
        test_images,
        test_labels,
        num_classes=4,
        labels_per_class=5,
        key=jax.random.key(3),
        num_steps=100,
        batch_size=16,
        learning_rate=3e-3,
    )
    assert set(accuracies) == set(transfer.MODES)
    assert all(0.0 <= a <= 1.0 for a in accuracies.values())
    assert accuracies["scratch"] > 0.8  # an easy task, learnt from 20 labels
