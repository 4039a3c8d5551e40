"""What every experiment config shares: applying the ``:variant,variant`` suffix."""

from collections.abc import Callable, Mapping

from ml_collections import ConfigDict


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
            raise ValueError(
                f"Unknown config variant {variant!r}; choose from {', '.join(updates)} "
                "(combine with commas)."
            )
        updates[variant](c)
    return c
