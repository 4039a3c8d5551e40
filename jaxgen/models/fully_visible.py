"""What FVSBN, NADE and MADE share: images as vectors of sub-pixels, and their output units.

These models see an image int [B, H, W, C] as a vector of D = H * W * C
sub-pixels in raster-then-channel order (``x.reshape(B, D)``), each read as a
float in [0, 1] (``levels.to_unit``: x / (L - 1)), and predict every sub-pixel
with K output units: K = 1 for binary data (one Bernoulli logit l, returned as
the two-level softmax logits [0, l]: softmax([0, l])[1] = sigmoid(l)), K = L
for L >= 3 levels (an L-way softmax). Their parameters are sized for one image
shape, the one ``init`` saw.
"""

from collections.abc import Sequence

import jax
import jax.numpy as jnp

from jaxgen.levels import to_unit
from jaxgen.validation import ConfigError


def num_outputs(num_levels: int) -> int:
    """K, the output units per sub-pixel: 1 (a Bernoulli logit) for L = 2, else L."""
    return 1 if num_levels == 2 else num_levels


def flat_inputs(x: jax.Array, num_levels: int) -> jax.Array:
    """int [B, H, W, C] levels -> float32 [B, D] in [0, 1], raster-then-channel order."""
    return to_unit(x.reshape(x.shape[0], -1), num_levels)


def level_logits(out: jax.Array, num_levels: int) -> jax.Array:
    """float [..., K] output units -> float32 [..., L] softmax logits ([0, l] for L = 2)."""
    out = out.astype(jnp.float32)
    if num_levels == 2:
        return jnp.concatenate([jnp.zeros_like(out), out], axis=-1)
    return out


def image_logits(out: jax.Array, shape: Sequence[int], num_levels: int) -> jax.Array:
    """float [B, D, K] -> the contract's logits float32 [B, H, W, C, L] for images ``shape``."""
    return level_logits(out, num_levels).reshape(*shape, num_levels)


def check_choice(model: object, name: str, choices: Sequence[str]) -> None:
    """Raises a ConfigError naming ``model.<name>`` unless it is one of ``choices``."""
    value = getattr(model, name)
    if value not in choices:
        raise ConfigError(
            f"{type(model).__name__} {name}={value!r} must be one of "
            f"{', '.join(map(repr, choices))}."
        )


def check_dims(model: object, num_dims: int, x: jax.Array) -> None:
    """Raises a ConfigError unless ``x`` has the ``num_dims`` sub-pixels the params are for."""
    if x.ndim == 4 and x.shape[1] * x.shape[2] * x.shape[3] != num_dims:
        raise ConfigError(
            f"{type(model).__name__}'s params were made for images of {num_dims} sub-pixels; "
            f"x has shape {tuple(x.shape)} ({x.shape[1] * x.shape[2] * x.shape[3]}). Its "
            "weights are per sub-pixel: init a model for this image shape."
        )
