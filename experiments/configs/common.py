"""What every experiment config shares: the data keys and the ``:variant,variant`` suffix."""

from collections.abc import Callable, Mapping

from ml_collections import ConfigDict, config_dict

from jaxgen.validation import ConfigError


def data_config(dataset: str, num_levels: int, binarize: str = "none") -> ConfigDict:
    """A new config holding the data keys every experiment has.

    Args:
      dataset: ``binarized_mnist``, ``mnist``, ``fashion_mnist`` or ``cifar10``.
      num_levels: intensity levels L the images are quantised to.
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
