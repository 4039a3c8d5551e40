"""FVSBN, the fully visible sigmoid belief net: one logistic regression per sub-pixel.

    x int [B, H, W, C] -> v = x / (L - 1), float [B, D], D = H W C in raster-then-channel order
    logit_d = b_d + sum_{k < d} W[d, k] v_k          (W strictly lower-triangular)
    p(x_d = 1 | x_<d) = sigmoid(logit_d)              -> logits [0, logit_d], [B, H, W, C, 2]

The first sub-pixel sees only its bias. With L >= 3 levels every sub-pixel is a
softmax regression on the earlier ones: W [D, D, L], b [D, L]. The weights are a
D x D (x K) matrix masked to its strictly lower triangle, O(D^2) parameters
(614,656 for binarized MNIST; with 256 levels, D^2 * 256: only for small images).
The model is convex in its parameters, and they start at zero (p = 1/L everywhere).

pytorch-generative's ``fvbn.py`` is the same model (784 ``Linear(max(1, i), 1)``
layers; pixel 0 sees a constant 0), reported at 96.58 nats on dynamically
binarized MNIST (PAPERS.md §9; the original paper's number is UNCONFIRMED).

Cached sampling: ``step`` needs no cache. The logits of pixel (i, j) are the C
rows of W times the earlier sub-pixels, O(D) work per sub-pixel instead of the
full pass's O(D^2).
"""

import math

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxgen.levels import to_unit
from jaxgen.models.fully_visible import (
    check_dims,
    flat_inputs,
    image_logits,
    level_logits,
    num_outputs,
)
from jaxgen.validation import check_images, check_sizes


def _lower(num_dims: int, rows: jax.Array) -> jax.Array:
    """float [len(rows), D, 1]: 1 where input k comes before output row d (k < d)."""
    return (jnp.arange(num_dims)[None, :] < rows[:, None]).astype(jnp.float32)[..., None]


class FVSBN(nn.Module):
    """Fully visible sigmoid belief net (softmax regressions for L >= 3 levels).

    Attributes:
      num_levels: intensity levels L per sub-pixel (2: one logistic regression each).

    Params (for images of D sub-pixels, K = 1 if L = 2 else L): ``weights``
    [D, D, K] (only the strictly lower triangle is used), ``bias`` [D, K].
    """

    num_levels: int = 2

    def __post_init__(self):
        check_sizes(self, ("num_levels",))
        super().__post_init__()

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        """Computes the logits of every sub-pixel given the earlier ones.

        Args:
          x: int [B, H, W, C] levels in [0, num_levels).

        Returns:
          float32 [B, H, W, C, num_levels] logits.
        """
        check_images(x, self.num_levels)
        if self.has_variable("params", "bias"):
            check_dims(self, self.variables["params"]["bias"].shape[0], x)
        d, k = math.prod(x.shape[1:]), num_outputs(self.num_levels)
        weights = self.param("weights", nn.initializers.zeros, (d, d, k))
        bias = self.param("bias", nn.initializers.zeros, (d, k))
        masked = weights * _lower(d, jnp.arange(d))
        out = jnp.einsum("bj,djk->bdk", flat_inputs(x, self.num_levels), masked) + bias
        return image_logits(out, x.shape, self.num_levels)

    def init_cache(self, x: jax.Array) -> tuple[()]:
        """No cache: each step reads the earlier sub-pixels from ``x`` itself."""
        del x
        return ()

    def start_row(self, cache: tuple[()], x: jax.Array, i: jax.Array) -> tuple[()]:
        del x, i
        return cache

    def step(
        self, cache: tuple[()], x: jax.Array, i: jax.Array, j: jax.Array
    ) -> tuple[jax.Array, tuple[()]]:
        """The logits at pixel (i, j) given the sub-pixels of ``x`` before it: O(C D K) work.

        Args:
          cache: ``()``.
          x: int [B, H, W, C] levels; entries at or after the sub-pixel being drawn
            are ignored (their weights are masked).
          i, j: int scalars, the pixel.

        Returns:
          (float32 [B, C, L] logits at (i, j); the cache).
        """
        params = self.variables["params"]
        _, _, w, c = x.shape
        d = params["bias"].shape[0]
        rows = (i * w + j) * c + jnp.arange(c)
        weights = jnp.take(params["weights"], rows, axis=0) * _lower(d, rows)
        v = to_unit(x.reshape(x.shape[0], -1), self.num_levels)
        out = jnp.einsum("bj,cjk->bck", v, weights) + jnp.take(params["bias"], rows, axis=0)
        return level_logits(out, self.num_levels), cache
