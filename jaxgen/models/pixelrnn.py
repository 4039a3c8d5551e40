"""PixelRNN: Row LSTM and Diagonal BiLSTM (van den Oord, Kalchbrenner, Kavukcuoglu, 2016).

    image int [B, H, W, C]
      -> scale to [-1, 1]
      -> 7x7 masked conv, mask A                                   -> [B, H, W, 2h]
      -> num_layers residual LSTM blocks (§3.3, Fig. 5):
           Row LSTM or Diagonal BiLSTM (2h -> h), 1x1 mask B (h -> 2h), + input
      -> ReLU, 1x1 mask B (-> head_features), ReLU, 1x1 mask B (-> C * L)
      -> logits [B, H, W, C, L]

The input/output contract is PixelCNN's: the logits of channel c at pixel (i, j)
depend only on pixels before (i, j) in raster order and on channels < c at
(i, j). See ``jaxgen.nn.lstm`` for how the LSTM layers keep the colour order.
The Row LSTM sees a triangle above each pixel; the Diagonal BiLSTM sees every
earlier pixel.

The virtual column. Mask A keeps a pixel's last channel out of every feature
at its own position, so the last pixel of a row, (r, W - 1), reaches the
features only at later positions: row r + 1, columns >= W - 4 (the 7x7 reach).
With the paper's layers, pixels (r + 1, c < W - 4) would never see it: the
backward LSTM covers row r only, and the forward one row r + 1 up to c. So the
Diagonal BiLSTM variant runs its layers on the image padded with one zero
column on the right, whose features read (r, W - 1); the backward direction
starts there and brings it to all of row r + 1. The virtual column's logits are
dropped. It comes after every real pixel of its row, so causality holds.

The paper's learnable layer-to-output skip connections are not
included (its Table 2: residual connections alone give most of the gain).

Cached sampling: ``init_cache``, ``start_row`` and ``step`` replay the network
at one pixel per step (see ``jaxgen.sampling``).
"""

import functools

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxgen.levels import to_signed
from jaxgen.nn import MaskedConv2D, lstm
from jaxgen.nn import cache as cache_lib
from jaxgen.nn.conv import compute_dtype
from jaxgen.validation import ConfigError, check_images, check_sizes

LAYERS = {"row_lstm": lstm.RowLSTM, "diagonal_bilstm": lstm.DiagonalBiLSTM}


class PixelRNN(nn.Module):
    """PixelRNN with residual LSTM blocks and a softmax over intensity levels.

    Defaults are the paper's CIFAR-10 size (12 layers, h = 128); its binarized
    MNIST model is ``PixelRNN("diagonal_bilstm", num_levels=2, num_layers=7,
    features=16, head_features=32)``.

    Attributes:
      variant: ``"row_lstm"`` or ``"diagonal_bilstm"``.
      num_levels: intensity levels L per sub-pixel.
      num_layers: LSTM blocks (not counting the 7x7 first layer and the head).
      features: h, the LSTM state size; the residual stream has 2h.
      head_features: width of the 1x1 output layer (paper: 1024 for CIFAR-10, 32 for MNIST).
      dtype: "float32" or "bfloat16", the dtype of the activations and convolutions;
        the params, the LSTM recurrences and the returned logits are float32.
    """

    variant: str = "diagonal_bilstm"
    num_levels: int = 256
    num_layers: int = 12
    features: int = 128
    head_features: int = 1024
    dtype: str = "float32"

    def setup(self):
        if self.variant not in LAYERS:
            raise ConfigError(
                f"PixelRNN variant={self.variant!r} must be one of {', '.join(LAYERS)}."
            )
        check_sizes(self, ("num_levels", "num_layers", "features", "head_features"))
        compute_dtype(self)

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        """Computes the logits of every sub-pixel given the earlier ones.

        Args:
          x: int [B, H, W, C] levels in [0, num_levels); C is 1 or 3.

        Returns:
          float [B, H, W, C, num_levels] logits.
        """
        check_images(x, self.num_levels)
        c = x.shape[-1]
        h = self.features
        y = to_signed(x, self.num_levels)
        if self.variant == "diagonal_bilstm":
            y = jnp.pad(y, ((0, 0), (0, 0), (0, 1), (0, 0)))  # the virtual column
        dtype = compute_dtype(self)
        conv = functools.partial(MaskedConv2D, num_channels=c, dtype=dtype)
        y = conv(2 * h, (7, 7), "A", name="input_conv")(y)
        for k in range(self.num_layers):
            r = LAYERS[self.variant](h, c, dtype, name=f"lstm{k}")(y)
            y = y + conv(2 * h, (1, 1), "B", name=f"lstm{k}_out")(r)
        y = y[:, :, : x.shape[2]]
        y = conv(self.head_features, (1, 1), "B", name="head")(nn.relu(y))
        y = conv(c * self.num_levels, (1, 1), "B", name="logits")(nn.relu(y))
        return y.astype(jnp.float32).reshape(*x.shape, self.num_levels)

    def init_cache(self, x: jax.Array) -> list[lstm.Cache]:
        """Empty per-layer LSTM caches for sampling images shaped like ``x`` [B, H, W, C]."""
        params = self.variables["params"]
        b, _, w, _ = x.shape
        if self.variant == "row_lstm":
            make = lstm.row_lstm_cache
        else:
            make, w = lstm.diagonal_bilstm_cache, w + 1  # with the virtual column
        dtype = compute_dtype(self)
        return [
            make(params[f"lstm{k}"], b, w, 2 * self.features, dtype) for k in range(self.num_layers)
        ]

    def start_row(self, cache: list[lstm.Cache], x: jax.Array, i: jax.Array) -> list[lstm.Cache]:
        """Advances every layer to row ``i``; rows above ``i`` of ``x`` are final."""
        params = self.variables["params"]
        c = x.shape[-1]
        if self.variant == "row_lstm":
            return [lstm.row_lstm_start_row(params[f"lstm{k}"], s) for k, s in enumerate(cache)]
        # Finish row i - 1 with its virtual column, then run its backward direction.
        _, finished = self._layers_at(cache, x, i - 1, x.shape[2])
        cache = jax.tree.map(lambda new, old: jnp.where(i > 0, new, old), finished, cache)
        return [
            lstm.diagonal_bilstm_start_row(params[f"lstm{k}"], s, i, c) for k, s in enumerate(cache)
        ]

    def step(
        self, cache: list[lstm.Cache], x: jax.Array, i: jax.Array, j: jax.Array
    ) -> tuple[jax.Array, list[lstm.Cache]]:
        """The logits at pixel (i, j) given the sub-pixels of ``x`` before it.

        Args:
          cache: per-layer caches, advanced to row ``i`` and to the pixels left of j.
          x: int [B, H, W, C] levels; entries at or after the sub-pixel being drawn
            are ignored.
          i, j: int scalars, the pixel.

        Returns:
          (float [B, C, L] logits at (i, j); the caches with (i, j) written).
        """
        y, cache = self._layers_at(cache, x, i, j)
        c = x.shape[-1]
        params = self.variables["params"]
        return cache_lib.head_at(params["head"], params["logits"], y, c, self.num_levels), cache

    def _layers_at(
        self, cache: list[lstm.Cache], x: jax.Array, i: jax.Array, j: jax.Array
    ) -> tuple[jax.Array, list[lstm.Cache]]:
        """The residual stream float [B, 2h] at pixel (i, j) (j = W: the virtual column)."""
        params = self.variables["params"]
        c = x.shape[-1]
        p = params["input_conv"]
        window = cache_lib.image_window(x, i, j, (7, 7), self.num_levels)
        window = window.astype(compute_dtype(self))
        y = cache_lib.conv_at(p, cache_lib.masked_kernel(p, c, "A"), window)
        new_cache = []
        for k, layer_cache in enumerate(cache):
            p = params[f"lstm{k}"]
            if self.variant == "row_lstm":
                r, layer_cache = lstm.row_lstm_step(p, layer_cache, j, y, c)
            else:
                r, layer_cache = lstm.diagonal_bilstm_step(p, layer_cache, j, y, c)
            new_cache.append(layer_cache)
            p = params[f"lstm{k}_out"]
            y = y + cache_lib.dense_at(p, cache_lib.masked_kernel(p, c, "B"), r.astype(y.dtype))
        return y, new_cache
