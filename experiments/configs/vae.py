"""VAE on binarized MNIST, evaluated with the IWAE bound (Burda et al., 2016).

Default: IWAE's one-stochastic-layer VAE (tanh MLP 784-200-200-50, Bernoulli
decoder) on ``binarized_mnist``, the fixed binarization of Larochelle & Murray
(TFDS ``binarized_mnist``: train 50k, validation 10k, test 10k). Test log p(x)
is the IWAE bound L_K with K = ``iwae_samples`` = 5000, as in the IWAE paper.
8-bit data: ``--config.dataset=mnist --config.num_levels=256
--config.model.likelihood=discretized_logistic`` (or ``categorical``,
``discretized_gaussian``).

Variants (combine with commas, e.g. ``vae.py:tiny``):
  tiny  trains in seconds (tests, smoke runs); 2-D z, K = 10, small evaluations.
  cpu   a meaningful model in about ten minutes on a 2-core CPU.
  hour  one core-hour (``taskset -c 0``, the other core busy): IWAE's VAE for 600 epochs with
        an EMA of the weights, test bound K = 1000, ten checkpoints kept for the test NLL
        against wall-clock minutes (``experiments.curve``).
  two_core_hour  ``hour`` on both cores of a 2-core CPU (one process, one device): 430,000
        steps, sized by the 12,500-13,000 images/s measured there with the dynamic binarization
        (an AMD EPYC without AVX-512). A 2-core Xeon with AVX-512 trained ~19,700 images/s:
        ``--config.num_steps=640000 --config.checkpoint_every=64000 --config.eval_every=128000``.
  dynamic  the IWAE paper's binarization (its Table 1): MNIST's 60k training images
        binarized afresh at every use, its 10k test images binarized once (a fixed draw);
        periodic evaluations are on that test split (MNIST has no validation split).
        Applied before ``hour`` and ``two_core_hour``, which then size the run for its input.
"""

from ml_collections import ConfigDict, config_dict

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
    c.model.latent_dim = 50
    c.model.likelihood = "bernoulli"  # categorical, discretized_logistic, discretized_gaussian
    c.model.architecture = "mlp"  # IWAE's tanh MLPs; or "conv"
    c.model.features = (200, 200)  # hidden widths (conv: channels per halving)
    c.model.hidden_features = 256  # conv only

    c.elbo_samples = 1  # Monte Carlo draws of z per image in the ELBO (Kingma & Welling: L=1)
    c.beta = 1.0  # weight of the KL term (1: the ELBO)
    c.kl_warmup_steps = 0  # KL weight rises linearly from 0 to beta over these steps
    c.iwae_samples = 5000  # K of the IWAE bound in evaluations
    c.iwae_chunk_size = 500  # draws of z held in memory at once; must divide iwae_samples

    train_config(
        c,
        batch_size=100,
        num_steps=500_000,  # 1000 epochs of 50k images
        learning_rate=1e-3,
        log_every=500,
        eval_every=25_000,
        num_samples=64,  # prior samples and test images in the pictures
        lr_schedule="warmup_cosine",
        warmup_steps=1000,
        eval_max_examples=1000,  # validation during training; the test split is full
    )
    c.manifold_size = 20  # n x n grid of the latent manifold (dimensions 0 and 1 of z)
    c.edit_dim = 0  # dimension of z varied in the latent-editing picture
    c.interpolation_steps = 10

    c.transfer = ConfigDict()
    c.transfer.dataset = "mnist"  # binarized_mnist has no labels
    c.transfer.labels_per_class = (10, 100)  # () skips the transfer comparison
    c.transfer.modes = ("frozen", "finetune", "scratch")
    c.transfer.num_steps = 1000
    c.transfer.batch_size = 64
    c.transfer.learning_rate = 1e-3
    c.transfer.test_max_examples = config_dict.placeholder(int)  # None: the full test split

    names = [v for v in (variants or "").split(",") if v]
    names = [v for v in names if v == "dynamic"] + [v for v in names if v != "dynamic"]
    return apply_variants(c, ",".join(names), _VARIANT_UPDATES)


def _tiny(c: ConfigDict) -> None:
    c.model.latent_dim = 2
    c.model.features = (16,)
    c.iwae_samples = 10
    c.iwae_chunk_size = 5
    c.batch_size = 16
    c.num_steps = 10
    c.warmup_steps = 2
    c.kl_warmup_steps = 5
    c.log_every = 5
    c.eval_every = 10
    c.eval_max_examples = 32
    c.test_max_examples = TINY_TEST_EXAMPLES
    c.checkpoint_every = 10
    c.num_samples = 4
    c.manifold_size = 4
    c.interpolation_steps = 4
    c.transfer.labels_per_class = (2,)
    c.transfer.num_steps = 5
    c.transfer.batch_size = 8
    c.transfer.test_max_examples = 64


def _cpu(c: ConfigDict) -> None:
    c.iwae_samples = 1000  # K = 5000 on the 10k test images takes ~15 min on 2 cores
    c.iwae_chunk_size = 100
    c.num_steps = 20_000
    c.warmup_steps = 500
    c.log_every = 100
    c.eval_every = 5000
    c.eval_max_examples = 500
    c.checkpoint_every = 5000
    c.transfer.num_steps = 500


def _dynamic(c: ConfigDict) -> None:
    c.dataset = "mnist"
    c.binarize = "dynamic"


def _hour(c: ConfigDict) -> None:
    _cpu(c)
    # Steps one core trains in an hour (a 2-core AMD EPYC, the other core busy); a Bernoulli
    # draw of every training image at every step makes a dynamic step slower.
    _size_the_hour(c, 300_000 if c.binarize != "dynamic" else 250_000)
    c.learning_rate = 1e-3
    c.warmup_steps = 1000
    c.ema_decay = 0.999
    c.log_every = 1000
    c.eval_max_examples = 1000
    c.keep_checkpoints = 10
    c.transfer.labels_per_class = ()  # the table's run: the density only


def _two_core_hour(c: ConfigDict) -> None:
    _hour(c)
    _size_the_hour(c, 430_000)  # 3,600 s at ~12,500 images/s, the five evaluations included


def _size_the_hour(c: ConfigDict, num_steps: int) -> None:
    """An hour's steps, with ten checkpoints (the curve's points) and five evaluations."""
    c.num_steps = num_steps
    c.checkpoint_every = num_steps // 10
    c.eval_every = 2 * c.checkpoint_every


_VARIANT_UPDATES = {
    "tiny": _tiny,
    "cpu": _cpu,
    "hour": _hour,
    "two_core_hour": _two_core_hour,
    "dynamic": _dynamic,
}
