"""The whole taxonomy on one dataset: which models, under which budget, evaluated how.

The budget is a variant (default ``cpu``):
  tiny      every model's ``tiny`` config, a few steps: the test of the whole command.
  cpu       every model's ``cpu`` config, with step counts that give each model about
            5 minutes of training on an idle 2-core CPU (equal wall-clock budgets, set
            from measured step times); the twelve models of binarized MNIST and their
            evaluation took 92 min on 2026-12-07 (partly loaded), the three of
            ``eight_bit`` 26 min (its VAE then ran 12 min; now 5). FID on 2,000
            samples. (This budget was ``cpu_hour``, 8 minutes for each of six models,
            before the taxonomy grew.)
  paper     every model's default (paper-size) config and step count: for a GPU.
And a dataset variant:
  eight_bit 8-bit MNIST (256 levels): the flow beside PixelCNN with 256-way softmax
            outputs and the VAE with a discretized logistic likelihood, in bits/dim
            on the same test images (combine: ``compare.py:eight_bit,tiny``).

``models`` lists the members (binary data: every model but the flow; 8-bit data:
no RBM); ``steps.<model>`` overrides a model's training steps (None: the budget's);
``eval.*`` sets the shared evaluation. Each model's run lives in ``WORKDIR/<model>/``
and is that experiment's own workdir, so it can be inspected (and resumed) with
the experiment's own tools, or loaded with ``jaxgen.load_run``.
"""

from ml_collections import ConfigDict, config_dict

from experiments.configs.common import TINY_TEST_EXAMPLES, apply_variants

# Every member, in the report's order within each branch of the taxonomy.
MODELS = (
    "fvsbn",
    "nade",
    "made",
    "pixelcnn",
    "gated_pixelcnn",
    "row_lstm",
    "diagonal_bilstm",
    "pixelsnail",
    "imagegpt",
    "realnvp",
    "vae",
    "rbm",
    "dcgan",
)
STEPS_8BIT_PIXELCNN = 1400  # 190 ms a step with 256-way outputs (measured as above)
# The VAE's discretized logistic likelihood: 13 ms a step on 8-bit MNIST (77 steps/s in the
# 2026-12-07 make compare, which ran 57,000 steps there in 12.3 min instead of 5).
STEPS_8BIT_VAE = 21_000
BINARY_MODELS = tuple(name for name in MODELS if name != "realnvp")
EIGHT_BIT_MODELS = ("pixelcnn", "realnvp", "vae")


def get_config(variants: str | None = None) -> ConfigDict:
    """The ``cpu`` config, updated by the named variants in order.

    Args:
      variants: ``tiny``, ``cpu`` or ``paper``; None/"" for ``cpu``.

    Returns:
      The experiment's ConfigDict.
    """
    c = ConfigDict()
    c.dataset = "binarized_mnist"  # or "mnist", "fashion_mnist" (8-bit, 256 levels)
    c.raw_dir = config_dict.placeholder(str)  # canonical raw files; else JAXGEN_RAW_DIR/download
    c.data_dir = config_dict.placeholder(str)  # TFDS data folder; else TFDS_DATA_DIR
    c.models = ",".join(BINARY_MODELS)  # comma-separated subset
    c.seed = 0
    c.budget = "cpu"
    c.curve_points = 5  # evaluations per training run (the training curves' points)

    c.steps = ConfigDict({name: config_dict.placeholder(int) for name in MODELS})
    # About 5 min of training each on a 2-core CPU VM: 270 s over each config's train step,
    # the rest left for the periodic evaluations. Step times (ms) measured in the loop on
    # 2026-12-07 (AMD EPYC, load ~2.5): FVSBN 21, NADE 100, MADE 33, RBM 6.2, PixelCNN 86-147,
    # 8-bit PixelCNN 190, RealNVP 151; on 2026-12-02: Gated PixelCNN 147, Row LSTM 46,
    # Diagonal BiLSTM 175, VAE 4.7 (used for 8-bit data too, not measured there), DCGAN 36.
    c.steps.fvsbn = 12_000
    c.steps.nade = 2700
    c.steps.made = 8000
    c.steps.pixelcnn = 2700
    c.steps.gated_pixelcnn = 1800
    c.steps.row_lstm = 5800
    c.steps.diagonal_bilstm = 1500
    # PixelSNAIL and ImageGPT: their cpu configs' 600 and 700 steps (None), 3.5 and 2.3 min in
    # the 2026-12-07 run (300 ms a step at batch 16, 140 ms at batch 8, measured there).
    c.steps.realnvp = 1800
    c.steps.vae = 57_000
    c.steps.rbm = 40_000
    c.steps.dcgan = 7500

    c.eval = ConfigDict()
    c.eval.num_samples = 2000  # N of the FID and mode coverage, the same for every model
    c.eval.reference_examples = 10_000  # training images of the FID reference statistics
    c.eval.classifier_steps = 1000  # the feature network (see jaxgen.metrics)
    c.eval.classifier_features = 128
    c.eval.iwae_samples = 1000  # K of the VAE's IWAE bound on the test split
    c.eval.test_max_examples = config_dict.placeholder(int)  # None: the whole test split
    c.eval.timing_samples = 64  # images of the sampling-time columns
    c.eval.naive_timing_passes = 3  # naive time from this many network passes; None: a full run
    c.eval.num_completions = 8  # test images in the completions figure
    c.eval.completion_steps = 50  # pseudo-Gibbs iterations of the VAE's completions
    c.eval.grid_samples = 36  # samples per model in the samples figure

    return apply_variants(c, variants, _VARIANT_UPDATES)


def _tiny(c: ConfigDict) -> None:
    c.budget = "tiny"
    c.curve_points = 2
    for name in MODELS:
        c.steps[name] = 8
    c.eval.num_samples = 64
    c.eval.reference_examples = 256
    c.eval.classifier_steps = 20
    c.eval.classifier_features = 16
    c.eval.iwae_samples = 10
    c.eval.test_max_examples = TINY_TEST_EXAMPLES
    c.eval.timing_samples = 4
    c.eval.naive_timing_passes = 1
    c.eval.num_completions = 2
    c.eval.completion_steps = 2
    c.eval.grid_samples = 4


def _cpu(c: ConfigDict) -> None:
    c.budget = "cpu"


def _eight_bit(c: ConfigDict) -> None:
    c.dataset = "mnist"
    c.models = ",".join(EIGHT_BIT_MODELS)
    if c.budget == "cpu":  # 256-way outputs and a 256-level likelihood: slower steps
        c.steps.pixelcnn = STEPS_8BIT_PIXELCNN
        c.steps.vae = STEPS_8BIT_VAE


def _paper(c: ConfigDict) -> None:
    c.budget = "paper"
    for name in MODELS:
        c.steps[name] = None  # each experiment's own (paper) step count
    c.eval.num_samples = 10_000
    c.eval.reference_examples = None  # the whole training split
    c.eval.classifier_steps = 2000
    c.eval.iwae_samples = 5000
    c.eval.naive_timing_passes = None  # time the whole naive run


_VARIANT_UPDATES = {"tiny": _tiny, "cpu": _cpu, "paper": _paper, "eight_bit": _eight_bit}
