"""PixelSNAIL (Chen, Mishra, Rohaninejad, Abbeel, 2018), sized as pytorch-generative's MNIST model.

    image int [B, H, W, C]
      -> scale to [-1, 1]; pos = (row / H - 1/2, col / W - 1/2)       [B, H, W, 2]
      -> 3x3 masked conv, mask A                                       -> y [B, H, W, F]
      -> num_blocks blocks, each y = y + block(y):
           r = y; num_residual gated residual layers:
               r = r + a * sigmoid(b),  [a | b] = 3x3 mask B (ELU (3x3 mask B (ELU r)))  [2F]
           q = 1x1 mask B (r) + pos W_pos              (C groups of heads x key_size)
           k, v = 1x1 (concat[pos, r, image])          (heads x key_size, heads x value_size)
           a = 1x1 mask B (causal attention of q over the keys of strictly earlier pixels)
           block = g(g(r) + g(a)),  g = ELU, 1x1 mask B, ELU
      -> ELU, 1x1 mask B (-> head_features), ELU, 1x1 mask B (-> C * L)
      -> logits [B, H, W, C, L]

Differences from pytorch-generative (PAPERS.md §7): the residual convolutions
are 3x3 mask-B kernels (the taps above-left, above, above-right, left and the
pixel itself) instead of 2x2 down-right-shifted ones, and the head has an ELU
before each of its 1x1 layers, as the official model's.

Causality. The convolutions are masked with colour-channel groups (see
``jaxgen.nn.masked``), so feature group c of the stream at a pixel depends on
earlier pixels and on the pixel's channels < c. Keys and values contain the raw
image, so a pixel attends only to strictly earlier pixels
(``jaxgen.nn.attention``, ``strict=True``); pixel 0 gets zeros. Its query, from
the stream at the pixel, comes in C groups, group c read from stream groups
<= c only, and the attention output of query group c feeds feature group c: the
logits of channel c see the pixel's channels < c and nothing later. Through the
keys every logit sees every earlier pixel: no blind spot.

Cached sampling: ``init_cache``, ``start_row`` and ``step``. The 3x3
convolutions keep row caches of their inputs (``jaxgen.nn.cache``); each
block's attention keeps the keys and values of every pixel. The keys of a pixel
contain all its channels, so they are written in the first step of the next
pixel, from the stream the last step at the pixel saved (``pending``).
"""

import functools
from typing import TypedDict

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxgen.levels import to_signed
from jaxgen.nn import MaskedConv2D, MaskedGateConv2D
from jaxgen.nn import cache as cache_lib
from jaxgen.nn.attention import attend, positions_mask, write_positions
from jaxgen.nn.conv import Conv1x1, compute_dtype
from jaxgen.validation import check_images, check_sizes


class BlockCache(TypedDict):
    """A block's cache: see ``PixelSNAIL.init_cache``."""

    rows: list[jax.Array]
    keys: jax.Array
    values: jax.Array
    stream: jax.Array


class Cache(TypedDict):
    """The cached sampler's state: see ``PixelSNAIL.init_cache``."""

    pending: jax.Array
    blocks: list[BlockCache]


def positions(i: jax.Array, j: jax.Array, height: int, width: int) -> jax.Array:
    """The positional input (i / H - 1/2, j / W - 1/2) of pixels (i, j): float32 [..., 2]."""
    i, j = jnp.broadcast_arrays(i, j)
    return jnp.stack([i / height - 0.5, j / width - 0.5], axis=-1).astype(jnp.float32)


def gate(z: jax.Array) -> jax.Array:
    """a * sigmoid(b) for z = [a | b]; float [..., 2F] -> [..., F]."""
    a, b = jnp.split(z, 2, axis=-1)
    return a * nn.sigmoid(b)


class PixelSNAIL(nn.Module):
    """PixelSNAIL: gated residual causal convolutions and causal self-attention.

    Defaults are pytorch-generative's MNIST model (78.61 nats on dynamically
    binarized MNIST; PAPERS.md §7); the official CIFAR-10 model has 12 blocks of
    4 residual layers, 256 features, key size 16 and value size 128.

    Attributes:
      num_levels: intensity levels L per sub-pixel.
      num_blocks: blocks, each residual layers then attention.
      features: F, the width of the stream.
      num_residual: gated residual layers per block.
      key_size: query and key size per head.
      value_size: value size per head.
      num_heads: attention heads.
      head_features: width of the 1x1 output layer.
      dtype: "float32" or "bfloat16", the dtype of the activations, convolutions and
        attention products (the softmax is float32); params and logits are float32.
    """

    num_levels: int = 256
    num_blocks: int = 8
    features: int = 64
    num_residual: int = 2
    key_size: int = 4
    value_size: int = 32
    num_heads: int = 1
    head_features: int = 32
    dtype: str = "float32"

    def setup(self):
        check_sizes(
            self,
            (
                "num_levels",
                "num_blocks",
                "features",
                "num_residual",
                "key_size",
                "value_size",
                "num_heads",
                "head_features",
            ),
        )
        compute_dtype(self)

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        """Computes the logits of every sub-pixel given the earlier ones.

        Args:
          x: int [B, H, W, C] levels in [0, num_levels); C is 1 or 3.

        Returns:
          float32 [B, H, W, C, num_levels] logits.
        """
        check_images(x, self.num_levels)
        b, h, w, c = x.shape
        f, heads, dk, dv = self.features, self.num_heads, self.key_size, self.value_size
        dtype = compute_dtype(self)
        conv = functools.partial(MaskedConv2D, num_channels=c, dtype=dtype)
        image = to_signed(x, self.num_levels).astype(dtype)
        grid = positions(jnp.arange(h)[:, None], jnp.arange(w)[None, :], h, w)
        pos = jnp.broadcast_to(grid.astype(dtype), (b, h, w, 2))
        mask = positions_mask(jnp.repeat(jnp.arange(h * w), c), h * w, strict=True)

        def g(name: str, z: jax.Array) -> jax.Array:
            return nn.elu(conv(f, (1, 1), "B", name=name)(nn.elu(z)))

        y = conv(f, (3, 3), "A", name="input_conv")(image)
        for k in range(self.num_blocks):
            r = y
            for n in range(self.num_residual):
                z = conv(f, (3, 3), "B", name=f"block{k}_res{n}_in")(nn.elu(r))
                z = MaskedGateConv2D(f, 2, (3, 3), "B", c, dtype, name=f"block{k}_res{n}_out")(
                    nn.elu(z)
                )
                r = r + gate(z)
            q = conv(c * heads * dk, (1, 1), "B", name=f"block{k}_query")(r)
            w_pos = self.param(
                f"block{k}_query_pos", nn.initializers.lecun_normal(), (2, c * heads * dk)
            )
            q = (q + pos @ w_pos.astype(dtype)).reshape(b, h * w * c, heads, dk)
            kv = Conv1x1(heads * (dk + dv), dtype, name=f"block{k}_key_value")(
                jnp.concatenate([pos, r, image], axis=-1)
            )
            keys = kv[..., : heads * dk].reshape(b, h * w, heads, dk)
            values = kv[..., heads * dk :].reshape(b, h * w, heads, dv)
            a = attend(q, keys, values, mask).reshape(b, h, w, c * heads * dv)
            a = conv(c * heads * dv, (1, 1), "B", name=f"block{k}_attention_out")(a)
            y = y + g(f"block{k}_out", g(f"block{k}_res_merge", r) + g(f"block{k}_att_merge", a))
        y = conv(self.head_features, (1, 1), "B", name="head")(nn.elu(y))
        y = conv(c * self.num_levels, (1, 1), "B", name="logits")(nn.elu(y))
        return y.astype(jnp.float32).reshape(*x.shape, self.num_levels)

    def init_cache(self, x: jax.Array) -> Cache:
        """Empty caches for sampling images shaped like ``x`` [B, H, W, C].

        Returns:
          ``pending`` (int32 [], the pixel whose streams are saved, in raster order)
          and per block: ``rows`` (row caches of the 3x3 convolutions' inputs, two per
          residual layer), ``keys`` float [B, H * W, heads, key_size], ``values``
          float [B, H * W, heads, value_size] and ``stream`` float [B, F] (the
          residual layers' output at the pending pixel).
        """
        b, h, w, _ = x.shape
        f, heads, dtype = self.features, self.num_heads, compute_dtype(self)
        block = BlockCache(
            rows=[cache_lib.row_cache(b, 2, w, 3, f, dtype)] * (2 * self.num_residual),
            keys=jnp.zeros((b, h * w, heads, self.key_size), dtype),
            values=jnp.zeros((b, h * w, heads, self.value_size), dtype),
            stream=jnp.zeros((b, f), dtype),
        )
        return {"pending": jnp.zeros((), jnp.int32), "blocks": [block] * self.num_blocks}

    def start_row(self, cache: Cache, x: jax.Array, i: jax.Array) -> Cache:
        """Moves every row cache on to row ``i``."""
        del x, i
        blocks = [
            block | {"rows": [cache_lib.next_row(rows) for rows in block["rows"]]}
            for block in cache["blocks"]
        ]
        return {"pending": cache["pending"], "blocks": blocks}

    def step(
        self, cache: Cache, x: jax.Array, i: jax.Array, j: jax.Array
    ) -> tuple[jax.Array, Cache]:
        """The logits at pixel (i, j) given the sub-pixels of ``x`` before it.

        Called once per channel of the pixel (with ``x`` updated), it first writes the
        keys and values of the pending pixel: the previous pixel, whose channels are
        all known, on the first call; the pixel itself on later calls, where the
        queries of (i, j) do not read them and the next pixel's first call rewrites them.

        Args:
          cache: caches at row ``i`` with every pixel before (i, j) written.
          x: int [B, H, W, C] levels; entries at or after the sub-pixel being drawn
            are ignored.
          i, j: int scalars, the pixel.

        Returns:
          (float32 [B, C, L] logits at (i, j); the caches with (i, j) written).
        """
        params = self.variables["params"]
        b, h, w, c = x.shape
        heads, dk, dv = self.num_heads, self.key_size, self.value_size
        dtype = compute_dtype(self)
        t, p = i * w + j, cache["pending"]
        pos_t = jnp.broadcast_to(positions(i, j, h, w).astype(dtype), (b, 2))
        pos_p = jnp.broadcast_to(positions(p // w, p % w, h, w).astype(dtype), (b, 2))
        image_p = to_signed(x[:, p // w, p % w], self.num_levels).astype(dtype)
        mask = positions_mask(jnp.full((c,), t), h * w, strict=True)

        def masked(name: str, z: jax.Array, num_gates: int = 1) -> jax.Array:
            layer = params[name]
            return cache_lib.dense_at(layer, cache_lib.masked_kernel(layer, c, "B", num_gates), z)

        def conv3x3(name: str, rows: jax.Array, num_gates: int = 1) -> jax.Array:
            layer = params[name]
            kernel = cache_lib.masked_kernel(layer, c, "B", num_gates)
            return cache_lib.conv_at(layer, kernel, cache_lib.read_window(rows, j, 3))

        def g(name: str, z: jax.Array) -> jax.Array:
            return nn.elu(masked(name, nn.elu(z)))

        window = cache_lib.image_window(x, i, j, (3, 3), self.num_levels).astype(dtype)
        layer = params["input_conv"]
        y = cache_lib.conv_at(layer, cache_lib.masked_kernel(layer, c, "A"), window)
        blocks: list[BlockCache] = []
        for k, block in enumerate(cache["blocks"]):
            layer = params[f"block{k}_key_value"]
            kv = cache_lib.dense_at(
                layer, layer["kernel"], jnp.concatenate([pos_p, block["stream"], image_p], -1)
            )
            keys = write_positions(
                block["keys"], p, kv[:, None, : heads * dk].reshape(b, 1, heads, dk)
            )
            values = write_positions(
                block["values"], p, kv[:, None, heads * dk :].reshape(b, 1, heads, dv)
            )
            r, rows = y, []
            for n in range(self.num_residual):
                rows_in = cache_lib.write_pixel(block["rows"][2 * n], j, nn.elu(r), 3)
                z = conv3x3(f"block{k}_res{n}_in", rows_in)
                rows_out = cache_lib.write_pixel(block["rows"][2 * n + 1], j, nn.elu(z), 3)
                r = r + gate(conv3x3(f"block{k}_res{n}_out", rows_out, num_gates=2))
                rows += [rows_in, rows_out]
            q = masked(f"block{k}_query", r) + pos_t @ params[f"block{k}_query_pos"].astype(dtype)
            a = attend(q.reshape(b, c, heads, dk), keys, values, mask)
            a = masked(f"block{k}_attention_out", a.reshape(b, c * heads * dv))
            y = y + g(f"block{k}_out", g(f"block{k}_res_merge", r) + g(f"block{k}_att_merge", a))
            blocks.append({"rows": rows, "keys": keys, "values": values, "stream": r})
        for name in ("head", "logits"):
            y = masked(name, nn.elu(y))
        logits = y.astype(jnp.float32).reshape(b, c, self.num_levels)
        return logits, {"pending": t, "blocks": blocks}
