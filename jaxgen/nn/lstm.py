"""Row LSTM and Diagonal BiLSTM layers (PixelRNN, van den Oord et al. 2016, §3.1-3.2).

Both layers map features float [B, H, W, F] to hidden states float [B, H, W, h].

Colour causality. Hidden units are split into colour groups like every masked
layer (contiguous blocks of h). The input-to-state convolution is mask B with
gate-aligned groups (``MaskedGateConv2D``), so the gates of a unit in group g at
pixel (r, c) read input features of groups <= g at (r, c). The LSTM cell is
elementwise per unit, so the unit's state keeps that property. The
state-to-state convolutions are unmasked: they read only states of pixels
strictly before (r, c) in raster order, which may depend on every channel of
those pixels.

Gates are gate-major, ``[o | f | i | g]``, each h wide. Recurrent states outside
the image start from a learned (h0, c0); the zero padding of the convolutions
stays zero.

Besides the Flax modules, each layer has pure functions on its parameter dict
that advance the recurrence by one pixel or one row, for cached sampling; they
compute the same recurrences as ``__call__`` in the same order.
"""

import functools

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax import lax

from jaxgen.nn import cache as cache_lib
from jaxgen.nn.conv import feature_product
from jaxgen.nn.gated import MaskedGateConv2D

Params = dict
Cache = dict[str, jax.Array]


def lstm_cell(gates: jax.Array, c_prev: jax.Array) -> tuple[jax.Array, jax.Array]:
    """One LSTM update; gates float [..., 4h] as [o | f | i | g], c_prev [..., h] -> (h, c)."""
    o, f, i, g = jnp.split(gates, 4, axis=-1)
    c = nn.sigmoid(f) * c_prev + nn.sigmoid(i) * jnp.tanh(g)
    return nn.sigmoid(o) * jnp.tanh(c), c


def _initial_state(module: nn.Module, features: int) -> tuple[jax.Array, jax.Array]:
    return (
        module.param("h0", nn.initializers.zeros, (features,)),
        module.param("c0", nn.initializers.zeros, (features,)),
    )


# ----------------------------------------------------------------------------- Row LSTM


def row_state_to_state(h_prev: jax.Array, kernel: jax.Array) -> jax.Array:
    """Unmasked 1-D convolution over the previous row's states ("SAME", no bias).

    Args:
      h_prev: float [B, W, h], the states of row r - 1.
      kernel: float [k, h, 4h], k odd (3 in the paper).

    Returns:
      float [B, W, 4h], the state-to-state gate inputs of row r.
    """
    k, width, features = kernel.shape[0], h_prev.shape[1], kernel.shape[1]
    padded = jnp.pad(h_prev, ((0, 0), (k // 2, k // 2), (0, 0)))
    windows = jnp.concatenate([padded[:, t : t + width] for t in range(k)], axis=-1)
    return feature_product(windows, kernel.reshape(k * features, -1))


class RowLSTM(nn.Module):
    """Row LSTM (§3.1): rows are processed top to bottom, a whole row per step.

    Input-to-state: a 1x3 mask-B convolution along the row, computed for the whole
    map at once. State-to-state: an unmasked width-3 convolution over the previous
    row's states. The receptive field is a triangle above the pixel.

    Attributes:
      features: hidden units h.
      num_channels: colour channels C of the modelled image.
      dtype: dtype of the input-to-state convolution; the recurrence and the
        states are float32 (params too).
    """

    features: int
    num_channels: int = 1
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        """Runs the LSTM over the rows.

        Args:
          x: float [B, H, W, F].

        Returns:
          float [B, H, W, h].
        """
        h = self.features
        input_gates = MaskedGateConv2D(
            h, 4, (1, 3), "B", self.num_channels, self.dtype, name="input_to_state"
        )(x)
        kernel = self.param(
            "state_to_state",
            nn.initializers.lecun_normal(in_axis=(0, 1), out_axis=2),
            (3, h, 4 * h),
        )
        h0, c0 = _initial_state(self, h)
        b, _, w, _ = x.shape

        def row(carry, gates):
            h_prev, c_prev = carry
            state = lstm_cell(gates + row_state_to_state(h_prev, kernel), c_prev)
            return state, state[0]

        carry = (jnp.broadcast_to(h0, (b, w, h)), jnp.broadcast_to(c0, (b, w, h)))
        _, states = lax.scan(row, carry, jnp.moveaxis(input_gates, 1, 0))
        return jnp.moveaxis(states, 0, 1)


def row_lstm_cache(
    params: Params, batch: int, width: int, in_features: int, dtype: jnp.dtype = jnp.float32
) -> Cache:
    """Empty cache of a Row LSTM for sampling images ``width`` wide.

    ``inputs`` (in ``dtype``, the layer's computation dtype) holds the layer
    inputs of the current row; ``h`` the states of the row being generated
    (until ``start_row``: the row above); ``c_above`` the cells of the row above,
    ``c`` those of the current row; ``gates_above`` the state-to-state gate inputs
    of the current row.
    """
    h0, c0 = params["h0"], params["c0"]
    features = h0.shape[0]
    return {
        "inputs": cache_lib.row_cache(batch, 1, width, 3, in_features, dtype),
        "h": jnp.broadcast_to(h0, (batch, width, features)),
        "c": jnp.broadcast_to(c0, (batch, width, features)),
        "c_above": jnp.zeros((batch, width, features)),
        "gates_above": jnp.zeros((batch, width, 4 * features)),
    }


def row_lstm_start_row(params: Params, cache: Cache) -> Cache:
    """Moves to the next row: its state-to-state inputs come from the finished row."""
    gates_above = row_state_to_state(cache["h"], params["state_to_state"])
    return cache | {
        "inputs": cache_lib.next_row(cache["inputs"]),
        "c_above": cache["c"],
        "gates_above": gates_above,
    }


def row_lstm_step(
    params: Params, cache: Cache, j: jax.Array, x: jax.Array, num_channels: int
) -> tuple[jax.Array, Cache]:
    """The Row LSTM state at pixel (i, j) of the current row.

    Args:
      params: the layer's parameters.
      cache: from ``row_lstm_cache`` / ``row_lstm_start_row``.
      j: int scalar, the column.
      x: float [B, F], the layer input at (i, j).
      num_channels: colour channels C.

    Returns:
      (h float [B, h], the updated cache).
    """
    p = params["input_to_state"]
    inputs = cache_lib.write_pixel(cache["inputs"], j, x, 3)
    window = cache_lib.read_window(inputs, j, 3)
    kernel = cache_lib.masked_kernel(p, num_channels, "B", num_gates=4)
    gates = cache_lib.conv_at(p, kernel, window) + cache["gates_above"][:, j]
    h, c = lstm_cell(gates, cache["c_above"][:, j])
    return h, cache | {
        "inputs": inputs,
        "h": cache["h"].at[:, j].set(h),
        "c": cache["c"].at[:, j].set(c),
    }


# ----------------------------------------------------------------------- Diagonal BiLSTM


def skew(x: jax.Array) -> jax.Array:
    """Shifts row r right by r: float [B, H, W, F] -> [B, H, W + H - 1, F], zeros elsewhere.

    Column s of the result is the diagonal r + c = s of the input. Implemented
    without a gather: pad each row to W + H, flatten, and re-cut rows of W + H - 1.
    """
    b, h, w, f = x.shape
    flat = jnp.pad(x, ((0, 0), (0, 0), (0, h), (0, 0))).reshape(b, h * (w + h), f)
    return flat[:, : h * (w + h - 1)].reshape(b, h, w + h - 1, f)


def unskew(x: jax.Array, width: int) -> jax.Array:
    """Inverse of ``skew``: float [B, H, W + H - 1, F] -> [B, H, W, F]."""
    b, h, s, f = x.shape
    flat = jnp.pad(x, ((0, 0), (0, 0), (0, 1), (0, 0))).reshape(b, h * (s + 1), f)
    flat = jnp.pad(flat, ((0, 0), (0, h), (0, 0)))
    return flat.reshape(b, h, s + 2, f)[:, :, :width]


class DiagonalLSTM(nn.Module):
    """One direction of the Diagonal BiLSTM, scanning left to right along diagonals.

    The state at pixel (r, c) reads the input at (r, c) through a 1x1 mask-B
    convolution and the states of the left pixel (r, c - 1) and the pixel above
    (r - 1, c) through an unmasked 2-tap column convolution over the previous
    column of the skewed map. The cell carries along the row, from (r, c - 1).

    Attributes:
      features: hidden units h.
      num_channels: colour channels C.
      dtype: dtype of the input-to-state convolution; the recurrence is float32.
    """

    features: int
    num_channels: int = 1
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        """Runs the LSTM over the diagonals.

        Args:
          x: float [B, H, W, F].

        Returns:
          float [B, H, W, h]; (r, c) depends on inputs at (r', c') with r' <= r, c' <= c.
        """
        h = self.features
        input_gates = MaskedGateConv2D(
            h, 4, (1, 1), "B", self.num_channels, self.dtype, name="input_to_state"
        )(x)
        init = nn.initializers.lecun_normal()
        left = self.param("left", init, (h, 4 * h))
        above = self.param("above", init, (h, 4 * h))
        h0, c0 = _initial_state(self, h)
        b, height, width, _ = x.shape
        rows = jnp.arange(height)[None, :, None]
        left_and_above = jnp.concatenate([left, above])  # [2h, 4h]: one product per step

        def diagonal(carry, inputs):
            s, gates = inputs
            h_left, c_left = carry
            h_above = jnp.pad(h_left[:, :-1], ((0, 0), (1, 0), (0, 0)))
            neighbours = jnp.concatenate([h_left, h_above], axis=-1)
            h_new, c_new = lstm_cell(gates + feature_product(neighbours, left_and_above), c_left)
            started = rows <= s  # row r starts at column s = r of the skewed map
            return (jnp.where(started, h_new, h0), jnp.where(started, c_new, c0)), h_new

        carry = (jnp.broadcast_to(h0, (b, height, h)), jnp.broadcast_to(c0, (b, height, h)))
        skewed = jnp.moveaxis(skew(input_gates), 2, 0)
        _, states = lax.scan(diagonal, carry, (jnp.arange(skewed.shape[0]), skewed))
        return unskew(jnp.moveaxis(states, 0, 2), width)


class DiagonalBiLSTM(nn.Module):
    """Diagonal BiLSTM (§3.2): two diagonal LSTMs, one scanning the mirrored image.

    The right-to-left map at (r, c) covers row r to the right of c, which is the
    future, so it is shifted down one row (row 0 gets zeros) before the two maps
    are added. Together the two cover every pixel before (r, c).

    Attributes:
      features: hidden units h.
      num_channels: colour channels C.
      dtype: dtype of the input-to-state convolutions; the recurrences are float32.
    """

    features: int
    num_channels: int = 1
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        """float [B, H, W, F] -> [B, H, W, h]."""
        layer = functools.partial(DiagonalLSTM, self.features, self.num_channels, self.dtype)
        forward = layer(name="forward")(x)
        mirrored = layer(name="backward")(x[:, :, ::-1])
        backward = mirrored[:, :, ::-1]
        return forward + jnp.pad(backward[:, :-1], ((0, 0), (1, 0), (0, 0), (0, 0)))


def diagonal_bilstm_cache(
    params: Params, batch: int, width: int, in_features: int, dtype: jnp.dtype = jnp.float32
) -> Cache:
    """Empty cache of a Diagonal BiLSTM for sampling images ``width`` wide.

    ``inputs``: the layer inputs of the current row, in ``dtype``; ``h``/``c``: forward states
    of the current row (until ``start_row``: of the row above); ``h_above``:
    forward states of the row above; ``backward``: right-to-left states of the row
    above, i.e. the shifted-down map that the current row adds.
    """
    features = params["forward"]["h0"].shape[0]
    zeros = jnp.zeros((batch, width, features))
    return {
        "inputs": jnp.zeros((batch, width, in_features), dtype),
        "h": zeros,
        "c": zeros,
        "h_above": zeros,
        "backward": zeros,
    }


def _backward_row(
    params: Params, inputs: jax.Array, h_above: jax.Array, num_channels: int
) -> jax.Array:
    """Right-to-left states of one finished row.

    Args:
      params: the backward direction's parameters.
      inputs: float [B, W, F], the row's layer inputs.
      h_above: float [B, W, h], the backward states of the row above (zeros above row 0).
      num_channels: colour channels C.

    Returns:
      float [B, W, h].
    """
    p = params["input_to_state"]
    kernel = cache_lib.masked_kernel(p, num_channels, "B", num_gates=4)
    input_gates = cache_lib.dense_at(p, kernel, inputs)

    def column(carry, xs):
        gates, above = xs
        h_left, c_left = carry
        state = lstm_cell(gates + h_left @ params["left"] + above @ params["above"], c_left)
        return state, state[0]

    b, features = h_above.shape[0], h_above.shape[-1]
    carry = (
        jnp.broadcast_to(params["h0"], (b, features)),
        jnp.broadcast_to(params["c0"], (b, features)),
    )
    xs = (jnp.moveaxis(input_gates, 1, 0), jnp.moveaxis(h_above, 1, 0))
    _, states = lax.scan(column, carry, xs, reverse=True)
    return jnp.moveaxis(states, 0, 1)


def diagonal_bilstm_start_row(
    params: Params, cache: Cache, i: jax.Array, num_channels: int
) -> Cache:
    """Moves to row ``i``: the row above is finished, so its backward states are computed.

    The right-to-left direction at (i - 1, c) depends on the whole of row i - 1
    right of c, so it cannot advance pixel by pixel; but row i only reads it
    shifted down, so one right-to-left pass per finished row is exact.
    """
    backward = _backward_row(params["backward"], cache["inputs"], cache["backward"], num_channels)
    return cache | {"h_above": cache["h"], "backward": jnp.where(i > 0, backward, 0.0)}


def diagonal_bilstm_step(
    params: Params, cache: Cache, j: jax.Array, x: jax.Array, num_channels: int
) -> tuple[jax.Array, Cache]:
    """The Diagonal BiLSTM output at pixel (i, j) of the current row.

    Args:
      params: the layer's parameters.
      cache: from ``diagonal_bilstm_cache`` / ``diagonal_bilstm_start_row``.
      j: int scalar, the column.
      x: float [B, F], the layer input at the pixel.
      num_channels: colour channels C.

    Returns:
      (forward state + shifted backward state, float [B, h]; the updated cache).
    """
    p = params["forward"]
    kernel = cache_lib.masked_kernel(p["input_to_state"], num_channels, "B", num_gates=4)
    left = jnp.maximum(j - 1, 0)
    h_left = jnp.where(j > 0, cache["h"][:, left], p["h0"])
    c_left = jnp.where(j > 0, cache["c"][:, left], p["c0"])
    gates = cache_lib.dense_at(p["input_to_state"], kernel, x)
    h, c = lstm_cell(gates + h_left @ p["left"] + cache["h_above"][:, j] @ p["above"], c_left)
    out = h + cache["backward"][:, j]
    return out, cache | {
        "inputs": cache["inputs"].at[:, j].set(x),
        "h": cache["h"].at[:, j].set(h),
        "c": cache["c"].at[:, j].set(c),
    }
