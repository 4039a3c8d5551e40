"""DCGAN on MNIST (Radford et al., 2016): Adam 2e-4, beta1 0.5, batch 128, k = 1.

Variants (combine with commas, e.g. ``gan.py:mlp,cpu``):
  tiny  trains in seconds (tests, smoke runs): tiny nets, FID on 128 samples, 256 test images.
  cpu   a recognisable DCGAN in about ten minutes on a 2-core CPU; FID on 2,000 samples.
  mlp   the fully connected GAN of Goodfellow et al. (2014) instead of the DCGAN nets.

``batch_size`` counts the real images of one step: the k discriminator updates
each use a fresh minibatch of ``batch_size // k`` images.
"""

from ml_collections import ConfigDict, config_dict

from experiments.configs.common import TINY_TEST_EXAMPLES, apply_variants, data_config, train_config


def get_config(variants: str | None = None) -> ConfigDict:
    """The default config, updated by the named variants in order.

    Args:
      variants: comma-separated variant names, or None/"" for the default.

    Returns:
      The experiment's ConfigDict.
    """
    c = data_config("mnist", num_levels=256)  # 8-bit images

    c.model = ConfigDict()
    c.model.name = "dcgan"  # or "mlp" (Goodfellow et al., 2014)
    c.model.features = 64  # DCGAN width: D's first layer, G's last hidden layer
    c.model.latent_dim = 100  # z ~ N(0, I)

    c.k = 1  # discriminator updates per generator update (Goodfellow et al.: k = 1)
    c.generator_loss = "non_saturating"  # or "minimax"

    train_config(  # schedules count generator steps; Adam's betas below
        c,
        batch_size=128,  # real images per step, k minibatches of batch_size // k
        num_steps=20_000,  # about 43 epochs of MNIST
        learning_rate=2e-4,
        log_every=100,
        eval_every=2000,
        num_samples=64,  # the grid of samples from one fixed noise batch
        optimizer=None,
    )
    c.adam_b1 = 0.5
    c.adam_b2 = 0.999
    c.interpolation_rows = 8  # latent interpolation strips between pairs of fixed codes
    c.interpolation_steps = 10

    c.fid = ConfigDict()  # see jaxgen.metrics for the protocol
    c.fid.dataset = config_dict.placeholder(str)  # labelled dataset of the features; None: dataset
    c.fid.num_samples = 10_000  # generated samples per FID (report N with the number)
    c.fid.reference_split = "train"
    c.fid.reference_examples = config_dict.placeholder(int)  # None: the whole split
    c.fid.classifier_steps = 2000
    c.fid.classifier_batch_size = 128
    c.fid.classifier_features = 128
    c.fid.classifier_seed = 0

    return apply_variants(c, variants, _VARIANT_UPDATES)


def _tiny(c: ConfigDict) -> None:
    c.model.features = 4
    c.model.latent_dim = 8
    c.batch_size = 16
    c.num_steps = 20
    c.log_every = 5
    c.eval_every = 10
    c.eval_max_examples = 64
    c.test_max_examples = TINY_TEST_EXAMPLES
    c.checkpoint_every = 10
    c.num_samples = 4
    c.interpolation_rows = 2
    c.interpolation_steps = 4
    c.fid.num_samples = 128
    c.fid.reference_examples = 256
    c.fid.classifier_steps = 20
    c.fid.classifier_batch_size = 32
    c.fid.classifier_features = 16


def _cpu(c: ConfigDict) -> None:
    c.model.features = 32
    c.batch_size = 64
    c.num_steps = 5000
    c.log_every = 50
    c.eval_every = 1000
    c.eval_max_examples = 2000
    c.checkpoint_every = 1000
    c.fid.num_samples = 2000
    c.fid.reference_examples = 10_000
    c.fid.classifier_steps = 1000


def _mlp(c: ConfigDict) -> None:
    c.model.name = "mlp"


_VARIANT_UPDATES = {"tiny": _tiny, "cpu": _cpu, "mlp": _mlp}
