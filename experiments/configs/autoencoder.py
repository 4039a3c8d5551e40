"""Conv autoencoder on MNIST (L2 reconstruction) and few-label transfer of its encoder.

After training, a small classifier head on the encoder is trained on
``transfer.labels_per_class`` labelled images per class (frozen encoder,
fine-tuned encoder, and the same classifier from scratch) and its test accuracy
is logged. ``--config.dataset=fashion_mnist`` runs it on Fashion-MNIST.

Variants (combine with commas, e.g. ``autoencoder.py:tiny``):
  tiny  trains in seconds (tests, smoke runs); small evaluations and transfer.
  cpu   a useful encoder in a few minutes on a 2-core CPU; full test split.
"""

from ml_collections import ConfigDict, config_dict

from experiments.configs.common import TINY_TEST_EXAMPLES, apply_variants, data_config, train_config


def get_config(variants: str | None = None) -> ConfigDict:
    """The default (accelerator-size) config, updated by the named variants in order.

    Args:
      variants: comma-separated variant names, or None/"" for the default.

    Returns:
      The experiment's ConfigDict.
    """
    c = data_config("mnist", num_levels=256)  # 8-bit images

    c.model = ConfigDict()
    c.model.latent_dim = 32
    c.model.architecture = "conv"  # or "mlp"
    c.model.features = (32, 64)  # conv channels per halving (mlp: hidden widths)
    c.model.hidden_features = 256

    train_config(
        c,
        batch_size=128,
        num_steps=20_000,
        learning_rate=1e-3,
        log_every=100,
        eval_every=5000,
        num_samples=16,  # test images shown in the reconstruction/interpolation pictures
        lr_schedule="warmup_cosine",
        warmup_steps=500,
    )
    c.interpolation_steps = 8

    c.transfer = ConfigDict()
    c.transfer.dataset = config_dict.placeholder(str)  # labelled dataset; None: c.dataset
    c.transfer.labels_per_class = (10, 100)  # () skips the transfer comparison
    c.transfer.modes = ("frozen", "finetune", "scratch")
    c.transfer.num_steps = 1000
    c.transfer.batch_size = 64
    c.transfer.learning_rate = 1e-3
    c.transfer.test_max_examples = config_dict.placeholder(int)  # None: the full test split

    return apply_variants(c, variants, _VARIANT_UPDATES)


def _tiny(c: ConfigDict) -> None:
    c.model.latent_dim = 4
    c.model.features = (8, 8)
    c.model.hidden_features = 16
    c.batch_size = 16
    c.num_steps = 10
    c.warmup_steps = 2
    c.log_every = 5
    c.eval_every = 10
    c.eval_max_examples = 32
    c.test_max_examples = TINY_TEST_EXAMPLES
    c.checkpoint_every = 10
    c.num_samples = 4
    c.interpolation_steps = 4
    c.transfer.labels_per_class = (2,)
    c.transfer.num_steps = 5
    c.transfer.batch_size = 8
    c.transfer.test_max_examples = 64


def _cpu(c: ConfigDict) -> None:
    c.model.latent_dim = 16
    c.model.features = (16, 32)
    c.model.hidden_features = 128
    c.batch_size = 64
    c.num_steps = 3000
    c.warmup_steps = 100
    c.log_every = 50
    c.eval_every = 1000
    c.eval_max_examples = 2000  # the final test evaluation always uses the full split
    c.checkpoint_every = 1000
    c.transfer.num_steps = 500


_VARIANT_UPDATES = {"tiny": _tiny, "cpu": _cpu}
