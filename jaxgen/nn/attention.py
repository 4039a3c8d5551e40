"""Causal dot-product attention over a flattened image, for full passes and cached steps.

Positions are numbered in the generation order (raster order of pixels, or of
sub-pixels). Position ``t`` attends to keys at positions ``s < t`` (``strict``:
PixelSNAIL, whose keys contain the raw pixel at ``s``) or ``s <= t`` (ImageGPT,
whose inputs are already shifted). A query with no allowed key (position 0 when
strict) returns zeros, as in PixelSNAIL's reference code.

The full pass and the cached sampler call the same ``attend``: the full pass with
every query against every key (``causal_mask``), a cached step with the queries
of the current positions against the whole key/value cache (``positions_mask``),
whose entries at and after the current position are masked out whatever they
hold. Masked keys get weight exactly 0, so an input at or after a position never
changes that position's output, not even by rounding.
"""

import jax
import jax.numpy as jnp
from jax import lax


def positions_mask(query_positions: jax.Array, num_keys: int, strict: bool) -> jax.Array:
    """Which keys each query may attend to: bool [Tq, num_keys].

    Args:
      query_positions: int [Tq], the queries' positions in the generation order.
      num_keys: keys at positions ``0 .. num_keys - 1``.
      strict: attend to earlier positions only (else also to the query's own).
    """
    keys = jnp.arange(num_keys)
    query = query_positions[:, None]
    return keys[None, :] < query if strict else keys[None, :] <= query


def causal_mask(num_positions: int, strict: bool) -> jax.Array:
    """``positions_mask`` of every position against every position: bool [T, T]."""
    return positions_mask(jnp.arange(num_positions), num_positions, strict)


def attend(q: jax.Array, k: jax.Array, v: jax.Array, mask: jax.Array) -> jax.Array:
    """Softmax(q k^T / sqrt(d_k)) v over the allowed keys, per head, in the dtype of ``v``.

    The logits and the softmax are computed in float32 (also under bfloat16).

    Args:
      q: float [B, Tq, heads, d_k].
      k: float [B, Tk, heads, d_k].
      v: float [B, Tk, heads, d_v].
      mask: bool [Tq, Tk], True where the query may attend to the key.

    Returns:
      float [B, Tq, heads, d_v]; zeros for a query with no allowed key.
    """
    scale = 1.0 / jnp.sqrt(jnp.asarray(q.shape[-1], jnp.float32))
    logits = jnp.einsum("bqhd,bkhd->bhqk", q, k, preferred_element_type=jnp.float32) * scale
    logits = jnp.where(mask, logits, jnp.finfo(jnp.float32).min)
    weights = jnp.where(mask, jax.nn.softmax(logits, axis=-1), 0.0)
    return jnp.einsum("bhqk,bkhd->bqhd", weights.astype(v.dtype), v)


def write_positions(cache: jax.Array, start: jax.Array | int, values: jax.Array) -> jax.Array:
    """The cache with ``values`` written at positions ``start .. start + T - 1``.

    Args:
      cache: float [B, T_max, ...], keys or values of every position.
      start: int scalar, the first position written (traced is fine).
      values: float [B, T, ...] with T <= T_max.

    Returns:
      float [B, T_max, ...].
    """
    start = jnp.asarray(start, jnp.int32)  # the other indices are int32 zeros, also under x64
    index = (jnp.int32(0), start) + (jnp.int32(0),) * (cache.ndim - 2)
    return lax.dynamic_update_slice(cache, values.astype(cache.dtype), index)
