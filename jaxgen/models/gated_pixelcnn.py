"""Gated PixelCNN (van den Oord, Kalchbrenner, Vinyals, Espeholt, Graves, Kavukcuoglu, 2016).

    image int [B, H, W, C], optional labels int [B]
      -> scale to [-1, 1]; v = h = image
      -> num_layers gated layers (§2.2, Fig. 2), n = kernel_size:
           vertical:   v_pre = conv over rows i - n//2 .. i, all n columns    [2p]
           horizontal: h_pre = 1 x n masked conv over the row to the left     [2p]
                               + 1x1 conv of v_pre shifted down one row
           (+ label embeddings in both stacks when class-conditional)
           v = tanh * sigmoid (v_pre)
           h = h + 1x1 mask B (tanh * sigmoid (h_pre))   (no residual in layer 0)
      -> ReLU, 1x1 mask B (-> head_features), ReLU, 1x1 mask B (-> C * L)
      -> logits [B, H, W, C, L]

Causality. The vertical stack at row i sees rows <= i, all columns within reach;
the horizontal stack receives it only shifted down one row, so it sees rows < i.
The horizontal stack sees the current row left of the pixel and, at the pixel,
earlier colour groups (mask A in layer 0, mask B later, gate-aligned as in
``jaxgen.nn.gated``). Nothing flows from the horizontal into the vertical stack,
and only the horizontal stack feeds the output. Together the stacks see every
earlier pixel: no blind spot.

Cached sampling: ``init_cache``, ``start_row`` and ``step``. The vertical stack
runs once per image row, on the row just finished; the horizontal stack runs
once per sub-pixel (Ramachandran et al., 2017).
"""

import functools

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxgen.levels import to_signed
from jaxgen.nn import MaskedConv2D
from jaxgen.nn import cache as cache_lib
from jaxgen.nn.conv import Conv1x1, PaddedConv2D, compute_dtype
from jaxgen.nn.gated import MaskedGateConv2D, gated_activation
from jaxgen.validation import ConfigError, check_images, check_sizes

Cache = list[dict[str, jax.Array]]


class GatedPixelCNN(nn.Module):
    """Gated PixelCNN with vertical and horizontal stacks, optionally class-conditional.

    Defaults are the only size the paper states (ImageNet 32x32: 20 layers, 384
    units, 5x5 filters).

    Attributes:
      num_levels: intensity levels L per sub-pixel.
      num_layers: gated layers.
      features: p, the width of both stacks (each gate convolution has 2p outputs).
      kernel_size: n, odd: the vertical conv spans n//2 + 1 rows x n columns, the
        horizontal conv the n//2 pixels to the left and the pixel itself.
      head_features: width of the 1x1 output layer.
      num_classes: number of labels for class-conditional models, else None.
      dtype: "float32" or "bfloat16", the dtype of the activations and convolutions;
        the params and the returned logits are float32 (mixed precision).
    """

    num_levels: int = 256
    num_layers: int = 20
    features: int = 384
    kernel_size: int = 5
    head_features: int = 1024
    num_classes: int | None = None
    dtype: str = "float32"

    def setup(self):
        check_sizes(self, ("num_levels", "num_layers", "features", "head_features"))
        compute_dtype(self)
        if self.kernel_size < 3 or self.kernel_size % 2 == 0:
            raise ConfigError(f"GatedPixelCNN kernel_size={self.kernel_size} must be odd and >= 3.")
        if self.num_classes is not None and self.num_classes < 1:
            raise ConfigError(f"GatedPixelCNN num_classes={self.num_classes} must be positive.")

    def _check_labels(self, x: jax.Array, labels: jax.Array | None) -> None:
        if self.num_classes is None:
            if labels is not None:
                raise ConfigError(
                    "labels were given but this GatedPixelCNN is unconditional: "
                    "set num_classes to train a class-conditional model."
                )
            return
        if labels is None or labels.shape != x.shape[:1]:
            raise ConfigError(
                f"this GatedPixelCNN has num_classes={self.num_classes}: pass labels, "
                f"int [B] = {x.shape[:1]}; got {None if labels is None else labels.shape}."
            )

    @nn.compact
    def __call__(self, x: jax.Array, labels: jax.Array | None = None) -> jax.Array:
        """Computes the logits of every sub-pixel given the earlier ones.

        Args:
          x: int [B, H, W, C] levels in [0, num_levels); C is 1 or 3.
          labels: int [B] in [0, num_classes) when ``num_classes`` is set, else None.

        Returns:
          float32 [B, H, W, C, num_levels] logits.
        """
        check_images(x, self.num_levels)
        self._check_labels(x, labels)
        c, p, n = x.shape[-1], self.features, self.kernel_size
        rows, dtype = n // 2 + 1, compute_dtype(self)
        conv = functools.partial(MaskedConv2D, num_channels=c, dtype=dtype)
        v = h = to_signed(x, self.num_levels).astype(dtype)
        for k in range(self.num_layers):
            v_pre = PaddedConv2D(
                2 * p,
                (rows, n),
                padding=((rows - 1, 0), (n // 2, n // 2)),
                dtype=dtype,
                name=f"v{k}_conv",
            )(v)
            mask_type = "A" if k == 0 else "B"
            h_pre = MaskedGateConv2D(p, 2, (1, n), mask_type, c, dtype, name=f"h{k}_conv")(h)
            below = jnp.pad(v_pre[:, :-1], ((0, 0), (1, 0), (0, 0), (0, 0)))
            h_pre = h_pre + Conv1x1(2 * p, dtype, name=f"v{k}_to_h")(below)
            if labels is not None:
                v_label = nn.Embed(self.num_classes, 2 * p, name=f"v{k}_label")(labels)
                h_label = nn.Embed(self.num_classes, 2 * p, name=f"h{k}_label")(labels)
                v_pre = v_pre + v_label[:, None, None].astype(dtype)
                h_pre = h_pre + h_label[:, None, None].astype(dtype)
            v = gated_activation(v_pre)
            out = conv(p, (1, 1), "B", name=f"h{k}_out")(gated_activation(h_pre))
            h = out if k == 0 else h + out
        y = conv(self.head_features, (1, 1), "B", name="head")(nn.relu(h))
        y = conv(c * self.num_levels, (1, 1), "B", name="logits")(nn.relu(y))
        return y.astype(jnp.float32).reshape(*x.shape, self.num_levels)

    def init_cache(self, x: jax.Array, labels: jax.Array | None = None) -> Cache:
        """Empty per-layer caches for sampling images shaped like ``x`` [B, H, W, C].

        Layer k's cache holds ``link`` (float [B, W, 2p], the vertical stack's
        contribution to the current row), for k > 0 the row caches ``v_in`` and
        ``h_in`` of its inputs, and the label embeddings ``v_label``/``h_label``.
        """
        self._check_labels(x, labels)
        params = self.variables["params"]
        b, _, w, _ = x.shape
        p, n, dtype = self.features, self.kernel_size, compute_dtype(self)
        cache = []
        for k in range(self.num_layers):
            layer = {"link": jnp.zeros((b, w, 2 * p), dtype)}
            if k > 0:
                layer["v_in"] = cache_lib.row_cache(b, n // 2 + 1, w, n, p, dtype)
                layer["h_in"] = cache_lib.row_cache(b, 1, w, n, p, dtype)
            if labels is not None:
                for stack in ("v", "h"):
                    embedding = params[f"{stack}{k}_label"]["embedding"]
                    layer[f"{stack}_label"] = embedding[labels].astype(dtype)
            cache.append(layer)
        return cache

    def start_row(self, cache: Cache, x: jax.Array, i: jax.Array) -> Cache:
        """Runs the vertical stack on row i - 1 (now final) to give row i its links."""
        params = self.variables["params"]
        n, r = self.kernel_size, i - 1
        rows = cache_lib.image_rows(x, r, n // 2 + 1, n, self.num_levels)  # layer 0's input
        rows = rows.astype(compute_dtype(self))
        v = None  # the previous layer's vertical output on row r
        new_cache = []
        for k, layer in enumerate(cache):
            if k > 0:
                layer = layer | {
                    "v_in": cache_lib.push_row(layer["v_in"], v),
                    "h_in": cache_lib.next_row(layer["h_in"]),
                }
                rows = layer["v_in"]
            # Above row 0 there is only the zero padding of the shifted map.
            v_pre = jnp.where(i > 0, cache_lib.conv_row(params[f"v{k}_conv"], rows), 0.0)
            link_params = params[f"v{k}_to_h"]
            link = cache_lib.dense_at(link_params, link_params["kernel"], v_pre)
            if "v_label" in layer:
                v_pre = v_pre + layer["v_label"][:, None]
            v = jnp.where(i > 0, gated_activation(v_pre), 0.0)
            new_cache.append(layer | {"link": link})
        return new_cache

    def step(
        self, cache: Cache, x: jax.Array, i: jax.Array, j: jax.Array
    ) -> tuple[jax.Array, Cache]:
        """The logits at pixel (i, j) given the sub-pixels of ``x`` before it.

        Args:
          cache: per-layer caches, advanced to row ``i`` and to the pixels left of j.
          x: int [B, H, W, C] levels; entries at or after the sub-pixel being drawn
            are ignored.
          i, j: int scalars, the pixel.

        Returns:
          (float [B, C, L] logits at (i, j); the caches with (i, j) written).
        """
        params = self.variables["params"]
        c, n = x.shape[-1], self.kernel_size
        window = cache_lib.image_window(x, i, j, (1, n), self.num_levels)  # layer 0's input
        window = window.astype(compute_dtype(self))
        h = None  # the horizontal stack at (i, j)
        new_cache = []
        for k, layer in enumerate(cache):
            if k > 0:
                layer = layer | {"h_in": cache_lib.write_pixel(layer["h_in"], j, h, n)}
                window = cache_lib.read_window(layer["h_in"], j, n)
            p = params[f"h{k}_conv"]
            kernel = cache_lib.masked_kernel(p, c, "A" if k == 0 else "B", num_gates=2)
            h_pre = cache_lib.conv_at(p, kernel, window) + layer["link"][:, j]
            if "h_label" in layer:
                h_pre = h_pre + layer["h_label"]
            p = params[f"h{k}_out"]
            out = cache_lib.dense_at(p, cache_lib.masked_kernel(p, c, "B"), gated_activation(h_pre))
            h = out if h is None else h + out
            new_cache.append(layer)
        logits = cache_lib.head_at(params["head"], params["logits"], h, c, self.num_levels)
        return logits, new_cache
