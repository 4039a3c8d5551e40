"""RealNVP on 8-bit MNIST with uniform dequantization: test bits/dim of the integer images.

Default: a paper-like RealNVP (Dinh et al., 2017) for 28 x 28 x 1 images: three
scales (28 -> 14 -> 7; 3 checkerboard + 3 channel couplings at each of the first
two, 4 checkerboard couplings at the last), coupling nets of 8 residual blocks
with 64, 128, 256 channels (the width doubles at every scale), actnorm after
every coupling, the logit transform with alpha = 0.05; Adam 1e-3, batch 64,
gradient norm clipped at 100 (the official code's settings, without its L2
penalty). Data: ``mnist`` with all 256 levels; every test number is -log p of
the integer image bounded through the dequantized density (``nll_nats``,
``bits_per_dim``; see ``jaxgen.tasks.flow``).

Variants (combine with commas, e.g. ``flow.py:fashion_mnist,cpu``):
  tiny           trains in seconds (tests, smoke runs).
  cpu            a meaningful model in about ten minutes on a 2-core CPU (measured on a
                 shared, loaded one: 2,000 steps in 14.9 min wall, 1.699 test bits/dim).
  fashion_mnist  the same model on Fashion-MNIST.
"""

from ml_collections import ConfigDict

from experiments.configs.common import TINY_TEST_EXAMPLES, apply_variants, data_config, train_config


def get_config(variants: str | None = None) -> ConfigDict:
    """The default (paper-like) config, updated by the named variants in order.

    Args:
      variants: comma-separated variant names, or None/"" for the default.

    Returns:
      The experiment's ConfigDict.
    """
    c = data_config("mnist", num_levels=256)

    c.model = ConfigDict()  # the arguments of models.RealNVP (num_levels is the config's)
    c.model.features = (64, 128, 256)  # coupling-net channels per scale; 3 scales: 28 -> 14 -> 7
    c.model.num_blocks = 8  # residual blocks per coupling net
    c.model.normalization = "actnorm"  # or "none" (the paper's batch norm is not used)
    c.model.alpha = 0.05  # logit transform: p = alpha + (1 - 2 alpha) x (RealNVP's code)

    c.temperatures = (0.5, 0.7, 1.0)  # rows of the temperature strip in samples/
    c.iw_samples = 0  # K >= 2: also the importance-weighted bound over K dequantizations

    train_config(
        c,
        batch_size=64,
        num_steps=200_000,  # ~213 epochs of 60k images
        learning_rate=1e-3,
        log_every=500,
        eval_every=10_000,
        num_samples=64,
        eval_max_examples=2000,  # periodic evaluation; the test split is full
    )
    c.grad_clip_norm = 100.0  # the official code's clipping
    return apply_variants(c, variants, _VARIANT_UPDATES)


def _tiny(c: ConfigDict) -> None:
    c.model.features = (4, 4)  # two scales (28 -> 14): a third costs ~10 s of compilation
    c.model.num_blocks = 0  # coupling nets of two convs (the unit tests cover the blocks)
    c.temperatures = (0.5, 1.0)
    c.batch_size = 16
    c.num_steps = 10
    c.log_every = 5
    c.eval_every = 10
    c.eval_max_examples = 32
    c.test_max_examples = TINY_TEST_EXAMPLES
    c.checkpoint_every = 10
    c.num_samples = 4


def _cpu(c: ConfigDict) -> None:
    c.model.features = (8, 16, 32)
    c.model.num_blocks = 1
    c.batch_size = 64
    c.num_steps = 2000
    c.log_every = 100
    c.eval_every = 1000
    c.eval_max_examples = 500
    c.checkpoint_every = 1000


def _fashion_mnist(c: ConfigDict) -> None:
    c.dataset = "fashion_mnist"


_VARIANT_UPDATES = {"tiny": _tiny, "cpu": _cpu, "fashion_mnist": _fashion_mnist}
