"""RBM on binarized MNIST: 500 hidden units trained by CD-25, log-likelihood by AIS.

The default is the set-up of the reference number (Salakhutdinov & Murray, 2008:
a CD25(500) RBM, -86.34 nats on the test set, estimated by AIS with 100 runs
of 14,500 steps). Its optimizer settings are those of Hinton's ``rbm.m`` and
practical guide (SGD, momentum 0.5 for 5 epochs then 0.9, weight cost 2e-4,
initial weights N(0, 0.01^2), batches of 100); the reference's learning rate and
number of epochs were not confirmed (here 0.05 and 50 epochs).

Variants (combine with commas):
  tiny  trains in seconds (tests, smoke runs): 16 hidden units, CD-1, tiny AIS, 256 test images.
  cpu   a meaningful model in about ten minutes on a 2-core CPU: PCD-1 with 500
        hidden units, 50 epochs at a learning rate of 0.05 decayed to 0 (cosine); the
        full AIS (100 runs x 14,500 steps) on the whole test split, a rough one (2,000
        steps: log Z too low, the NLL optimistic) in the periodic evaluations.
  pcd   persistent CD (Tieleman, 2008) instead of CD: ``num_chains`` chains
        carried in the train state, ``cd_steps`` sweeps per step.
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
    c = data_config("binarized_mnist", num_levels=2)  # binary visible units need binary data

    c.model = ConfigDict()
    c.model.num_hidden = 500
    c.model.init_scale = 0.01  # std of the initial weights

    c.cd_steps = 25  # k: Gibbs sweeps of the negative phase per step
    c.persistent = False  # True: PCD, chains carried from step to step
    c.num_chains = config_dict.placeholder(int)  # PCD's chains; None: batch_size

    train_config(
        c,
        batch_size=100,
        num_steps=25_000,  # 50 epochs of the 50,000 training images
        learning_rate=0.05,
        log_every=100,
        eval_every=5000,
        num_samples=100,  # samples and completions in the pictures
        eval_max_examples=2000,
        optimizer=None,  # the RBM's own: below
    )
    c.optimizer = "sgd"  # or "adam"
    c.momentum = 0.9
    c.initial_momentum = 0.5
    c.momentum_warmup_steps = 2500  # 5 epochs at the initial momentum
    c.weight_decay = 2e-4  # L2 weight cost on W

    c.ais = ConfigDict()  # annealed importance sampling of log Z (jaxgen.ais)
    c.ais.runs = 100  # of the test evaluation (and load_run's)
    c.ais.steps = 14_500  # the reference schedule 0 -> 0.5 -> 0.9 -> 1
    c.ais.eval_runs = 100  # of the periodic evaluations (fewer steps: log Z biased low)
    c.ais.eval_steps = 14_500
    c.ais.pseudo_count = 5.0  # of the base model, per training batch

    c.num_gibbs_steps = 1000  # sweeps of the samples and completions
    c.sample_init = "base"  # chain starts: the base model's draws, or "random"
    c.num_filters = 100  # columns of W drawn in the filters picture

    return apply_variants(c, variants, _VARIANT_UPDATES)


def _tiny(c: ConfigDict) -> None:
    c.model.num_hidden = 16
    c.cd_steps = 1
    c.batch_size = 16
    c.num_steps = 20
    c.log_every = 5
    c.eval_every = 10
    c.checkpoint_every = 10
    c.eval_max_examples = 64
    c.test_max_examples = TINY_TEST_EXAMPLES
    c.momentum_warmup_steps = 5
    c.num_samples = 4
    c.ais.runs = 16
    c.ais.steps = 100
    c.ais.eval_runs = 8
    c.ais.eval_steps = 20
    c.num_gibbs_steps = 10
    c.num_filters = 16


def _cpu(c: ConfigDict) -> None:
    c.persistent = True  # PCD-1: one Gibbs sweep per step, the chains carried over
    c.cd_steps = 1
    c.lr_schedule = "warmup_cosine"  # 0.05 decayed to 0 (warmup_steps=0)
    c.num_steps = 25_000  # 50 epochs
    c.eval_every = 5000
    c.checkpoint_every = 5000
    c.ais.eval_steps = 2000  # periodic evaluations: rough (log Z low, NLL optimistic)


def _pcd(c: ConfigDict) -> None:
    c.persistent = True


_VARIANT_UPDATES = {"tiny": _tiny, "cpu": _cpu, "pcd": _pcd}
