"""NADE, the neural autoregressive distribution estimator (Larochelle & Murray, AISTATS 2011).

    x int [B, H, W, C] -> v = x / (L - 1), float [B, D], D = H W C in raster-then-channel order
    a_1 = c,  a_{d+1} = a_d + W[d] v_d              (W [D, H] shared by all conditionals)
    h_d = f(a_d)                                    (f: sigmoid in the paper, ReLU in
                                                     pytorch-generative)
    logit_d = b_d + V_d . h_d                       -> logits [0, logit_d], [B, H, W, C, 2]

Because W is shared, a_d is a running sum: all D conditionals of an image cost
O(D H), computed as one exclusive cumulative sum over d of W[d] v_d (a scan over
d on the CPU, see ``_outputs``), not D separate passes. With L >= 3 levels each
conditional is an L-way softmax: V [D, H, L], b [D, L].

Numbers on binarized MNIST (PAPERS.md §9): 88.86 nats quoted for the paper
(the paper's table was not read: UNCONFIRMED, and so is its nonlinearity);
pytorch-generative 85.65 (H = 500, ReLU, Adam 1e-3, 50 epochs, batch 512,
dynamically binarized data, so not comparable with the fixed binarization).

Cached sampling: the running pre-activation is the cache. ``step`` adds the
previous pixel's W[d] v_d once (the sampler calls it once per channel, so it
keeps the pixel it last moved to), O(C H) work per pixel and O(D H) per image.
"""

import math

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxgen.levels import to_unit
from jaxgen.models.fully_visible import (
    check_choice,
    check_dims,
    flat_inputs,
    image_logits,
    level_logits,
    num_outputs,
)
from jaxgen.nn import conv
from jaxgen.validation import check_images, check_sizes

ACTIVATIONS = {"sigmoid": nn.sigmoid, "relu": nn.relu}

NADECache = tuple[jax.Array, jax.Array]


def _exclusive_cumsum(terms: jax.Array, axis: int) -> jax.Array:
    """sum_{k < d} terms[..., k, ...] along ``axis``: zero first, then the running sums."""
    total = jnp.cumsum(terms, axis=axis)
    zero = jnp.zeros_like(jax.lax.slice_in_dim(terms, 0, 1, axis=axis))
    return jnp.concatenate([zero, jax.lax.slice_in_dim(total, 0, -1, axis=axis)], axis=axis)


def _outputs(w: jax.Array, c: jax.Array, v: jax.Array, x: jax.Array, f) -> jax.Array:
    """float [B, D, K]: V_d . f(a_d) for every d, with a_d = c + sum_{k < d} W[k] x_k.

    Args:
      w: W [D, H]; c: [H]; v: V [D, H, K]; x: inputs float [B, D]; f: the activation.

    On accelerators: one exclusive cumulative sum over D of W[d] x_d, [B, D, H]. On
    the CPU (``jaxgen.nn.conv.cpu_formulations``), where the passes over [B, D, H]
    arrays (the cumulative sum, a window reduction there, and its gradient) are
    memory-bound: the recurrence itself, a scan over d carrying a [B, H] (a train
    step for MNIST at H = 500, batch 64: 0.1 s of CPU time instead of 0.8 s; scans
    over chunks of 2-16 sub-pixels, or unrolled, measured slower). Both are O(D H)
    per image.
    """
    b, d = x.shape
    if not conv.cpu_formulations():  # decided at trace time
        terms = x[:, :, None] * w  # W[d] x_d: [B, D, H]
        a = c + _exclusive_cumsum(terms, axis=1)  # a_d = c + sum_{k < d} W[k] x_k
        return jnp.einsum("bdh,dhk->bdk", f(a), v)

    def step(a, inputs):
        x_d, w_d, v_d = inputs  # [B], [H], [H, K]
        return a + x_d[:, None] * w_d, f(a) @ v_d

    _, out = jax.lax.scan(step, jnp.broadcast_to(c, (b, c.shape[0])), (x.T, w, v))
    return jnp.moveaxis(out, 0, 1)


def _he_normal(fan_in: int):
    return nn.initializers.normal(stddev=math.sqrt(2.0 / fan_in))


class NADE(nn.Module):
    """NADE with a sigmoid (paper) or ReLU (pytorch-generative) hidden layer.

    Attributes:
      num_levels: intensity levels L per sub-pixel (2: a Bernoulli per sub-pixel).
      hidden: H, the hidden units shared by all conditionals (paper and
        pytorch-generative: 500).
      activation: ``"sigmoid"`` (the paper) or ``"relu"`` (pytorch-generative).

    Params (images of D sub-pixels, K = 1 if L = 2 else L): ``W`` [D, H], ``c``
    [H], ``V`` [D, H, K], ``b`` [D, K]; W and V start He-normal (as
    pytorch-generative's Kaiming init), the biases at zero.
    """

    num_levels: int = 2
    hidden: int = 500
    activation: str = "sigmoid"

    def __post_init__(self):
        check_sizes(self, ("num_levels", "hidden"))
        check_choice(self, "activation", tuple(ACTIVATIONS))
        super().__post_init__()

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        """Computes the logits of every sub-pixel given the earlier ones, O(D H) per image.

        Args:
          x: int [B, H, W, C] levels in [0, num_levels).

        Returns:
          float32 [B, H, W, C, num_levels] logits.
        """
        check_images(x, self.num_levels)
        if self.has_variable("params", "b"):
            check_dims(self, self.variables["params"]["b"].shape[0], x)
        d, k, h = math.prod(x.shape[1:]), num_outputs(self.num_levels), self.hidden
        w = self.param("W", _he_normal(d), (d, h))
        c = self.param("c", nn.initializers.zeros, (h,))
        v = self.param("V", _he_normal(h), (d, h, k))
        b = self.param("b", nn.initializers.zeros, (d, k))
        out = _outputs(w, c, v, flat_inputs(x, self.num_levels), ACTIVATIONS[self.activation])
        return image_logits(out + b, x.shape, self.num_levels)

    def init_cache(self, x: jax.Array) -> NADECache:
        """(a = c for every image [B, H], the pixel it is the pre-activation of: -1, none yet)."""
        c = self.variables["params"]["c"]
        return jnp.broadcast_to(c, (x.shape[0], c.shape[0])), jnp.array(-1, jnp.int32)

    def start_row(self, cache: NADECache, x: jax.Array, i: jax.Array) -> NADECache:
        del x, i
        return cache

    def step(
        self, cache: NADECache, x: jax.Array, i: jax.Array, j: jax.Array
    ) -> tuple[jax.Array, NADECache]:
        """The logits at pixel (i, j) given the sub-pixels of ``x`` before it: O(C H K) work.

        Pixels must be stepped in raster order, each one or more times (the
        sampler steps a pixel once per channel, after drawing the channels before).

        Args:
          cache: (a [B, H], p): the pre-activation of the first sub-pixel of pixel
            p (flat index i W + j; -1: none yet, a = c).
          x: int [B, H, W, C] levels, final before (i, j); entries at or after the
            sub-pixel being drawn are ignored.
          i, j: int scalars, the pixel.

        Returns:
          (float32 [B, C, L] logits at (i, j); the cache at pixel (i, j)).
        """
        params = self.variables["params"]
        w, v, b = params["W"], params["V"], params["b"]
        _, _, width, c = x.shape
        a, p = cache
        q = i * width + j
        # Moving on from pixel p: add its sub-pixels' W[d] v_d (p's values are final now).
        last = jnp.maximum(p, 0)
        v_last = to_unit(x[:, last // width, last % width], self.num_levels)  # [B, C]
        w_last = jax.lax.dynamic_slice_in_dim(w, last * c, c, axis=0)  # [C, H]
        a = jnp.where((q != p) & (p >= 0), a + v_last @ w_last, a)
        # The C conditionals at pixel q: a plus the W[d] v_d of the channels before.
        rows = jax.lax.dynamic_slice_in_dim(w, q * c, c, axis=0)
        terms = to_unit(x[:, i, j], self.num_levels)[:, :, None] * rows  # [B, C, H]
        a_q = a[:, None] + _exclusive_cumsum(terms, axis=1)
        v_q = jax.lax.dynamic_slice_in_dim(v, q * c, c, axis=0)
        b_q = jax.lax.dynamic_slice_in_dim(b, q * c, c, axis=0)
        out = jnp.einsum("bch,chk->bck", ACTIVATIONS[self.activation](a_q), v_q) + b_q
        return level_logits(out, self.num_levels), (a, q)
