"""Checks of user input that raise errors naming the argument and the fix.

``ConfigError`` is the type of every such error in jaxgen and the experiments:
a config value or an argument is wrong, and the message says which and how to
fix it. The command line (``experiments/cli.py``) reports it as one paragraph
and exits with code 2; any other exception is a bug and keeps its traceback.
"""

import jax
import jax.numpy as jnp
import numpy as np


class ConfigError(ValueError):
    """A user error: a config value or an argument is invalid; the message names it and the fix."""


def check_images(x: jax.Array | np.ndarray, num_levels: int, name: str = "x") -> None:
    """Checks that ``x`` is a batch of integer images with values in [0, num_levels).

    The value range is checked only when ``x`` holds concrete values (outside
    ``jit``); rank and dtype are always checked.

    Args:
      x: images, expected int [B, H, W, C].
      num_levels: number of intensity levels of the model.
      name: the argument's name, used in the messages.

    Raises:
      ConfigError: naming the argument and the expected value.
    """
    if x.ndim != 4:
        raise ConfigError(
            f"{name} must be a batch of images [B, H, W, C] (rank 4); got shape {x.shape}. "
            "Add a batch axis with x[None] or a channel axis with x[..., None]."
        )
    if not jnp.issubdtype(x.dtype, jnp.integer):
        raise ConfigError(
            f"{name} must hold integer intensity levels in [0, {num_levels}), got dtype "
            f"{x.dtype}. Quantize first, e.g. (x * {num_levels - 1}).round().astype(int)."
        )
    try:
        values = np.asarray(x)
    except (jax.errors.ConcretizationTypeError, jax.errors.TracerArrayConversionError):
        return  # traced under jit: no values to check
    if values.size:
        lo, hi = int(values.min()), int(values.max())
        if lo < 0 or hi >= num_levels:
            raise ConfigError(
                f"{name} has values in [{lo}, {hi}] but the model has num_levels={num_levels}: "
                f"values must lie in [0, {num_levels})."
            )


def check_sizes(model: object, names: tuple[str, ...]) -> None:
    """Checks that the named size attributes of ``model`` are positive (num_levels >= 2).

    Args:
      model: a model whose attributes ``names`` are integers.
      names: the attributes to check.

    Raises:
      ConfigError: naming the model, the attribute and its value.
    """
    for name in names:
        value = getattr(model, name)
        if value < (2 if name == "num_levels" else 1):
            raise ConfigError(
                f"{type(model).__name__} {name}={value} must be positive (num_levels >= 2)."
            )
