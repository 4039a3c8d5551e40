"""ImageGPT (Chen, Radford, Child, Wu, Jun, Luan, Sutskever, ICML 2020), small.

A GPT-2 style decoder over the sequence of sub-pixels, as the official model
(openai/image-gpt, PAPERS.md §8) with the intensity level as the token:

    image int [B, H, W, C] -> tokens int [B, T], T = H W C, raster-then-channel order
      -> input at position t: wte[token t - 1] (the start vector at t = 0) + wpe[t]
      -> num_layers pre-norm blocks:
           x += attn(norm(x))     causal multi-head attention, position t attends to
                                  positions <= t (its input holds token t - 1 only)
           x += mlp(norm(x))      d -> 4d -> d, gelu2(x) = x sigmoid(1.702 x)
      -> norm -> untied d x L output matrix -> logits [B, H, W, C, L]

``norm`` is the official RMS norm: x / sqrt(mean(x^2) + 1e-5) times a learned
gain, no mean subtraction and no bias; no layer has a bias. Initialisation as the
official code: wte and the start vector N(0, 0.02), wpe N(0, 0.01), q/k/v
N(0, 1/d), the attention output N(0, 1/(d num_layers)), the MLP N(0, 0.02) and
the output matrix zero (the first logits are uniform). The official tokens are
512 colour clusters; here they are the L levels of each sub-pixel, so an RGB
pixel is three tokens and the sequence is 3x longer.

The position embeddings are per sub-pixel: params are for one image shape, the
one ``init`` saw.

Cached sampling: a key/value cache per layer, [B, T, heads, d / heads]. ``step``
at pixel (i, j) runs the C positions of its sub-pixels as one chunk: it writes
their keys and values into the caches, then their queries attend to the caches
through ``positions_mask``, so entries at later positions (stale or zero) get
weight 0. Position t's input is token t - 1, so the logits of channel k depend
only on the channels < k of (i, j) and earlier pixels; the sampler's repeated
calls at one pixel rewrite the same entries, and O(T d) work per step gives
O(T^2 d) per image instead of the naive O(T^3 d).
"""

import math

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxgen.models.fully_visible import check_dims
from jaxgen.nn.attention import attend, positions_mask, write_positions
from jaxgen.nn.conv import compute_dtype
from jaxgen.validation import ConfigError, check_images, check_sizes

KeyValues = tuple[jax.Array, jax.Array]
Cache = list[KeyValues]
NORM_EPSILON = 1e-5  # the official norm's


def gelu2(x: jax.Array) -> jax.Array:
    """The official GELU approximation, x sigmoid(1.702 x)."""
    return x * jax.nn.sigmoid(1.702 * x)


def _normal(stddev: float) -> nn.initializers.Initializer:
    return nn.initializers.normal(stddev=stddev)


class _Embedding(nn.Module):
    """The input of each position: the previous token's embedding plus the position's."""

    num_levels: int
    features: int

    @nn.compact
    def __call__(self, tokens: jax.Array, positions: jax.Array) -> jax.Array:
        """float32 [B, n, d]: wte[tokens[:, p - 1]] (``sos`` for p = 0) + wpe[p], p in positions.

        Args:
          tokens: int [B, T], every sub-pixel of the images (T sizes ``wpe``).
          positions: int [n] positions in [0, T).
        """
        wte = self.param("wte", _normal(0.02), (self.num_levels, self.features))
        sos = self.param("sos", _normal(0.02), (self.features,))
        wpe = self.param("wpe", _normal(0.01), (tokens.shape[1], self.features))
        previous = jnp.take(tokens, jnp.maximum(positions - 1, 0), axis=1)  # [B, n]
        h = jnp.where((positions > 0)[:, None], wte[previous], sos)
        return h + wpe[positions]


class _Block(nn.Module):
    """x += attn(norm(x)); x += mlp(norm(x)), the residual stream in float32."""

    features: int
    num_heads: int
    num_layers: int
    dtype: jnp.dtype

    def setup(self):
        d, heads = self.features, self.num_heads
        dense = dict(use_bias=False, dtype=self.dtype)
        self.attn_norm = nn.RMSNorm(epsilon=NORM_EPSILON)
        self.qkv = nn.DenseGeneral((3, heads, d // heads), kernel_init=_normal(d**-0.5), **dense)
        out_init = _normal((d * self.num_layers) ** -0.5)
        self.attn_out = nn.DenseGeneral(d, axis=(-2, -1), kernel_init=out_init, **dense)
        self.mlp_norm = nn.RMSNorm(epsilon=NORM_EPSILON)
        self.mlp_in = nn.Dense(4 * d, kernel_init=_normal(0.02), **dense)
        self.mlp_out = nn.Dense(d, kernel_init=_normal(0.02), **dense)

    def __call__(
        self, h: jax.Array, mask: jax.Array, cache: KeyValues | None, start: jax.Array
    ) -> tuple[jax.Array, KeyValues]:
        """The block at n consecutive positions from ``start``.

        Args:
          h: float32 [B, n, d], the residual stream at the positions.
          mask: bool [n, T_k], which keys each position attends to.
          cache: None (the keys are the n positions' own, T_k = n) or the keys and
            values of every position, [B, T_k, heads, d / heads] each.
          start: int scalar, the first position (where the cache is written).

        Returns:
          (float32 [B, n, d]; the keys and values attended to, with the n written).
        """
        q, k, v = jnp.moveaxis(self.qkv(self.attn_norm(h)), 2, 0)  # [B, n, heads, d_h] each
        if cache is not None:
            k, v = (
                write_positions(old, start, new) for old, new in zip(cache, (k, v), strict=True)
            )
        h = h + self.attn_out(attend(q, k, v, mask))
        h = h + self.mlp_out(gelu2(self.mlp_in(self.mlp_norm(h))))
        return h, (k, v)


class ImageGPT(nn.Module):
    """ImageGPT over sub-pixel tokens, with the official RMS norm (see the module docstring).

    Defaults are iGPT-S (d = 512, 8 heads, 24 layers); pytorch-generative's MNIST
    model, the config's default, is 8 layers, 2 heads, d = 64.

    Attributes:
      num_levels: intensity levels L per sub-pixel: the vocabulary.
      num_layers: transformer blocks.
      num_heads: attention heads; each has d / num_heads features.
      features: d, the width of the residual stream (the MLP has 4d).
      dtype: "float32" or "bfloat16", the dtype of the products (dense layers and
        attention); the params, norms, residual stream and logits are float32.

    Params (T = H W C): ``embed`` {``wte`` [L, d], ``sos`` [d], ``wpe`` [T, d]};
    ``blocks_k`` {``attn_norm``, ``qkv`` [d, 3, heads, d_h], ``attn_out`` [heads,
    d_h, d], ``mlp_norm``, ``mlp_in`` [d, 4d], ``mlp_out`` [4d, d]}; ``norm``;
    ``head`` [d, L].
    """

    num_levels: int = 256
    num_layers: int = 24
    num_heads: int = 8
    features: int = 512
    dtype: str = "float32"

    def setup(self):
        check_sizes(self, ("num_levels", "num_layers", "num_heads", "features"))
        if self.features % self.num_heads:
            raise ConfigError(
                f"ImageGPT features={self.features} must be divisible by "
                f"num_heads={self.num_heads}."
            )
        dtype = compute_dtype(self)
        self.embed = _Embedding(self.num_levels, self.features)
        self.blocks = [
            _Block(self.features, self.num_heads, self.num_layers, dtype)
            for _ in range(self.num_layers)
        ]
        self.norm = nn.RMSNorm(epsilon=NORM_EPSILON)
        self.head = nn.Dense(
            self.num_levels, use_bias=False, kernel_init=nn.initializers.zeros, dtype=dtype
        )

    def _run(
        self, x: jax.Array, positions: jax.Array, cache: Cache | None
    ) -> tuple[jax.Array, Cache]:
        """float32 logits [B, n, L] at consecutive ``positions`` int [n], and the new caches."""
        check_images(x, self.num_levels)
        params = self.variables.get("params", {})
        if "embed" in params:
            check_dims(self, params["embed"]["wpe"].shape[0], x)
        b, t = x.shape[0], math.prod(x.shape[1:])
        h = self.embed(x.reshape(b, t), positions)
        mask = positions_mask(positions, t, strict=False)
        layers = [None] * self.num_layers if cache is None else cache
        new_cache = []
        for block, layer in zip(self.blocks, layers, strict=True):
            h, layer = block(h, mask, layer, positions[0])
            new_cache.append(layer)
        return self.head(self.norm(h)).astype(jnp.float32), new_cache

    def __call__(self, x: jax.Array) -> jax.Array:
        """Computes the logits of every sub-pixel given the earlier ones.

        Args:
          x: int [B, H, W, C] levels in [0, num_levels).

        Returns:
          float32 [B, H, W, C, num_levels] logits.
        """
        logits, _ = self._run(x, jnp.arange(math.prod(x.shape[1:])), None)
        return logits.reshape(*x.shape, self.num_levels)

    def init_cache(self, x: jax.Array) -> Cache:
        """Zero keys and values, [B, T, heads, d / heads] per layer, for images like ``x``."""
        shape = (
            x.shape[0],
            math.prod(x.shape[1:]),
            self.num_heads,
            self.features // self.num_heads,
        )
        zeros = jnp.zeros(shape, compute_dtype(self))
        return [(zeros, zeros)] * self.num_layers

    def start_row(self, cache: Cache, x: jax.Array, i: jax.Array) -> Cache:
        del x, i
        return cache

    def step(
        self, cache: Cache, x: jax.Array, i: jax.Array, j: jax.Array
    ) -> tuple[jax.Array, Cache]:
        """The logits at pixel (i, j) given the sub-pixels of ``x`` before it: O(C T d) work.

        Pixels must be stepped in raster order, each one or more times (the sampler
        steps a pixel once per channel, after drawing the channels before).

        Args:
          cache: per-layer keys and values, written at every earlier pixel.
          x: int [B, H, W, C] levels, final before (i, j); entries at or after the
            sub-pixel being drawn are ignored.
          i, j: int scalars, the pixel.

        Returns:
          (float32 [B, C, L] logits at (i, j); the caches with (i, j)'s positions written).
        """
        _, _, w, c = x.shape
        return self._run(x, (i * w + j) * c + jnp.arange(c), cache)
