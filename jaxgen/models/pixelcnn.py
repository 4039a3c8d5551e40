"""PixelCNN (van den Oord, Kalchbrenner, Kavukcuoglu, 2016, §3.4 and Table 1).

    image int [B, H, W, C]
      -> scale to [-1, 1]
      -> 7x7 masked conv, mask A                        -> [B, H, W, 2h]
      -> num_layers residual blocks (Fig. 5):
           ReLU, 1x1 (2h->h), ReLU, 3x3 mask B, ReLU, 1x1 (h->2h), + input
      -> ReLU, 1x1 mask B (-> head_features), ReLU, 1x1 mask B (-> C * L)
      -> logits [B, H, W, C, L]

Every convolution, the 1x1s included, is masked with colour-channel groups, so
the logits of channel c at pixel (i, j) depend only on pixels before (i, j) in
raster order and on channels < c at (i, j). The stack of 3x3 mask-B convolutions
has the classic blind spot up and to the right of each pixel (see
``GatedPixelCNN`` for the fix).

Cached sampling: ``init_cache``, ``start_row`` and ``step`` replay the network
at one pixel per step (Ramachandran et al., 2017); each 3x3 convolution keeps a
row cache of its input two rows tall (see ``jaxgen.nn.cache``).
"""

import functools

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxgen.levels import to_signed
from jaxgen.nn import MaskedConv2D
from jaxgen.nn import cache as cache_lib
from jaxgen.nn.conv import compute_dtype
from jaxgen.validation import check_images, check_sizes


class PixelCNN(nn.Module):
    """PixelCNN with residual blocks and a softmax over intensity levels.

    Attributes:
      num_levels: intensity levels L per sub-pixel (2 for binarized data, 256 for 8-bit).
      num_layers: residual blocks, each with one 3x3 mask-B convolution
        (not counting the 7x7 first layer and the two-layer 1x1 head).
      features: h, the width of the masked convolutions; the residual stream has 2h.
      head_features: width of the 1x1 output layer (paper: 1024 for CIFAR-10, 32 for MNIST).
      dtype: "float32" or "bfloat16", the dtype of the activations and convolutions;
        the params and the returned logits are float32 (mixed precision).
    """

    num_levels: int = 256
    num_layers: int = 15
    features: int = 128
    head_features: int = 1024
    dtype: str = "float32"

    def setup(self):
        check_sizes(self, ("num_levels", "num_layers", "features", "head_features"))
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
        c = x.shape[-1]
        h = self.features
        conv = functools.partial(MaskedConv2D, num_channels=c, dtype=compute_dtype(self))
        y = to_signed(x, self.num_levels)
        y = conv(2 * h, (7, 7), "A", name="input_conv")(y)
        for i in range(self.num_layers):
            r = conv(h, (1, 1), "B", name=f"block{i}_in")(nn.relu(y))
            r = conv(h, (3, 3), "B", name=f"block{i}_conv")(nn.relu(r))
            r = conv(2 * h, (1, 1), "B", name=f"block{i}_out")(nn.relu(r))
            y = y + r
        y = conv(self.head_features, (1, 1), "B", name="head")(nn.relu(y))
        y = conv(c * self.num_levels, (1, 1), "B", name="logits")(nn.relu(y))
        return y.astype(jnp.float32).reshape(*x.shape, self.num_levels)

    def init_cache(self, x: jax.Array) -> list[jax.Array]:
        """Empty row caches of the 3x3 convolutions' inputs for images shaped like ``x``."""
        b, _, w, _ = x.shape
        dtype = compute_dtype(self)
        return [
            cache_lib.row_cache(b, 2, w, 3, self.features, dtype) for _ in range(self.num_layers)
        ]

    def start_row(self, cache: list[jax.Array], x: jax.Array, i: jax.Array) -> list[jax.Array]:
        """Moves every row cache on to row ``i``."""
        del x, i
        return [cache_lib.next_row(rows) for rows in cache]

    def step(
        self, cache: list[jax.Array], x: jax.Array, i: jax.Array, j: jax.Array
    ) -> tuple[jax.Array, list[jax.Array]]:
        """The logits at pixel (i, j) given the sub-pixels of ``x`` before it.

        Args:
          cache: row caches at row ``i`` with every pixel before (i, j) written.
          x: int [B, H, W, C] levels; entries at or after the sub-pixel being drawn
            are ignored.
          i, j: int scalars, the pixel.

        Returns:
          (float [B, C, L] logits at (i, j); the caches with (i, j) written).
        """
        params = self.variables["params"]
        c = x.shape[-1]

        def masked(name, window, mask_type="B"):
            p = params[name]
            return cache_lib.conv_at(p, cache_lib.masked_kernel(p, c, mask_type), window)

        window = cache_lib.image_window(x, i, j, (7, 7), self.num_levels)
        y = masked("input_conv", window.astype(compute_dtype(self)), "A")
        new_cache = []
        for k, rows in enumerate(cache):
            r = masked(f"block{k}_in", nn.relu(y)[:, None, None])
            rows = cache_lib.write_pixel(rows, j, nn.relu(r), 3)
            r = masked(f"block{k}_conv", cache_lib.read_window(rows, j, 3))
            y = y + masked(f"block{k}_out", nn.relu(r)[:, None, None])
            new_cache.append(rows)
        logits = cache_lib.head_at(params["head"], params["logits"], y, c, self.num_levels)
        return logits, new_cache
