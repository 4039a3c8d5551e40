"""What every experiment config shares: the data keys, the training keys, the variant suffix."""

from collections.abc import Callable, Mapping

from ml_collections import ConfigDict, config_dict

from jaxgen.validation import ConfigError

# test_max_examples of every ``tiny`` variant: smoke runs and tests, labelled in the test row.
TINY_TEST_EXAMPLES = 256


def data_config(dataset: str, num_levels: int, binarize: str = "none") -> ConfigDict:
    """A new config holding the data keys every experiment has.

    Args:
      dataset: ``binarized_mnist``, ``mnist``, ``fashion_mnist`` or ``cifar10`` (prepared
        offline from raw files); your own images: ``folder:/path/to/images`` (every image
        file PIL reads; ``train/``, ``validation/``, ``test/`` sub-folders are the splits,
        else a hash of each file's relative path splits them 80/10/10),
        ``folder:/path?resize=HxW`` (images of several sizes, resized with PIL's LANCZOS),
        ``npz:/path/file.npz`` (uint8 ``images`` [N, H, W(, C)], optional int ``labels``)
        or ``npz:/path/file.npy``, e.g. from ``jaxgen.data.from_array``; or any other TFDS
        image dataset already prepared in ``data_dir`` in array_record format
        (``tfds build NAME --file_format=array_record``). See ``jaxgen.data.own``.
      num_levels: intensity levels L the images are quantised to (8-bit data: ``x * L //
        256``; 2 turns 0/255 images into 0/1).
      binarize: ``none``, or ``dynamic`` (a fresh Bernoulli draw of 8-bit data every step).

    Returns:
      A ConfigDict with ``dataset``, ``num_levels``, ``binarize``, ``raw_dir``
      (canonical raw files; None: JAXGEN_RAW_DIR or a download) and ``data_dir``
      (the TFDS data folder; None: TFDS_DATA_DIR).
    """
    c = ConfigDict()
    c.dataset = dataset
    c.num_levels = num_levels
    c.binarize = binarize
    c.raw_dir = config_dict.placeholder(str)
    c.data_dir = config_dict.placeholder(str)
    return c


def train_config(
    c: ConfigDict,
    *,
    batch_size: int,
    num_steps: int,
    learning_rate: float,
    log_every: int,
    eval_every: int,
    num_samples: int,
    optimizer: str | None = "adam",
    lr_schedule: str = "constant",
    warmup_steps: int = 0,
    eval_max_examples: int | None = None,
) -> ConfigDict:
    """Adds the optimizer, logging and checkpoint keys every experiment has to ``c``.

    Args:
      c: the config (from ``data_config``), updated in place.
      batch_size: examples per step.
      num_steps: training steps.
      learning_rate: peak learning rate.
      log_every: steps between train rows in metrics.jsonl.
      eval_every: steps between evaluations; also ``checkpoint_every``.
      num_samples: images in the sample pictures.
      optimizer: ``optimizer`` (see ``jaxgen.train.optim``), with ``grad_clip_norm``
        (None: no clipping); None sets neither, for an experiment with its own optimizer keys.
      lr_schedule: ``constant``, ``warmup_cosine`` or ``warmup_cosine_restarts``
        (see ``jaxgen.train.optim.make_schedule``).
      warmup_steps: steps of linear warm-up of each cosine cycle.
      eval_max_examples: examples of each periodic evaluation; None: the full split.

    Returns:
      ``c``, with ``seed`` (0), ``batch_size``, ``num_steps``, ``optimizer``,
      ``learning_rate``, ``lr_schedule``, ``warmup_steps``, ``lr_cycle_steps`` (None)
      and ``lr_cycle_decay`` (1.0) of ``warmup_cosine_restarts``, ``grad_clip_norm``,
      ``ema_decay`` (None: no parameter EMA), ``log_every``, ``eval_every``,
      ``eval_max_examples``, ``test_max_examples`` (examples of the final test
      evaluation; None, for every reported number: the whole test split; the test row's
      ``num_examples`` says how many), ``checkpoint_every``, ``keep_checkpoints`` (3),
      ``max_nonfinite_steps`` (10 skipped non-finite updates in a row stop the
      run), ``num_samples`` and ``allow_schedule_change`` (False: resuming a
      checkpoint with a config whose learning-rate schedule differs for the
      steps already done is refused; see ``jaxgen.train.workdir``).
    """
    c.seed = 0
    c.batch_size = batch_size
    c.num_steps = num_steps
    if optimizer is not None:
        c.optimizer = optimizer
    c.learning_rate = learning_rate
    c.lr_schedule = lr_schedule
    c.warmup_steps = warmup_steps
    c.lr_cycle_steps = config_dict.placeholder(int)
    c.lr_cycle_decay = 1.0
    if optimizer is not None:
        c.grad_clip_norm = config_dict.placeholder(float)
    c.ema_decay = config_dict.placeholder(float)
    c.log_every = log_every
    c.eval_every = eval_every
    c.eval_max_examples = config_dict.placeholder(int)
    c.eval_max_examples = eval_max_examples
    c.test_max_examples = config_dict.placeholder(int)
    c.checkpoint_every = eval_every
    c.keep_checkpoints = 3
    c.max_nonfinite_steps = 10
    c.num_samples = num_samples
    c.allow_schedule_change = False
    return c


def apply_variants(
    c: ConfigDict, variants: str | None, updates: Mapping[str, Callable[[ConfigDict], None]]
) -> ConfigDict:
    """Applies the comma-separated ``variants`` to ``c`` in order.

    Args:
      c: the default config, updated in place.
      variants: e.g. ``"gated,tiny"``; None or "" for the default.
      updates: variant name -> function that updates a config.

    Returns:
      ``c``.

    Raises:
      ValueError: an unknown variant, naming the known ones.
    """
    for variant in filter(None, (variants or "").split(",")):
        if variant not in updates:
            raise ConfigError(
                f"Unknown config variant {variant!r}; choose from {', '.join(updates)} "
                "(combine with commas)."
            )
        updates[variant](c)
    return c
