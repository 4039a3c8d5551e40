"""Checks shared by the autoregressive model tests: dependencies, cached passes, a short fit."""

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxgen import losses, sampling


def order(h: int, w: int, c: int) -> np.ndarray:
    """Position of every sub-pixel in the generation order, int [H, W, C]."""
    return np.arange(h * w * c).reshape(h, w, c)


def dependency_matrix(model, params, x: jax.Array, labels: jax.Array | None = None) -> np.ndarray:
    """changed[t_in, t_out]: does changing input sub-pixel t_in change logit t_out at all?

    Every sub-pixel of the single image ``x`` [1, H, W, C] is changed by half the
    level range in its own copy, and the N copies run as one batch. The reference
    is a second batch of N unchanged copies through the same compiled function,
    so the changed copy and its reference sit at the same batch position and go
    through the same kernels in the same order: a logit that does not depend on the
    changed input comes out bit-identical to its reference on any backend (masked
    weights contribute exact zeros), while the rounding that differs between batch
    positions (seen at ~6e-8 on some CPUs) never enters the comparison. Any
    difference is therefore a dependency, however small.

    Args:
      model: maps int [B, H, W, C] (and labels [B], if given) to logits [B, H, W, C, L].
      params: the model's variables.
      x: int [1, H, W, C].
      labels: int [1] class label, or None.

    Returns:
      bool [N, N] with N = H * W * C in raster-then-channel order.
    """
    _, h, w, c = x.shape
    n = h * w * c
    levels = model.num_levels
    reference = x.reshape(1, n).repeat(n, axis=0)
    changed_inputs = reference.at[jnp.arange(n), jnp.arange(n)].set(
        (reference[0] + levels // 2) % levels
    )
    extra = () if labels is None else (jnp.repeat(labels, n),)
    apply = jax.jit(model.apply)

    def logits(batch: jax.Array) -> np.ndarray:
        return np.asarray(apply(params, batch.reshape(n, h, w, c), *extra)).reshape(n, n, -1)

    return (logits(changed_inputs) != logits(reference)).any(axis=-1)


def striped_batch(key: jax.Array, batch: int, size: int) -> jax.Array:
    """Binary images whose rows all repeat a random first row: int [B, size, size, 1].

    Only the first row is unpredictable, so a model that learns to copy the
    pixel above can cut the NLL far below its starting value.
    """
    first_row = jax.random.bernoulli(key, 0.5, (batch, 1, size, 1)).astype(jnp.int32)
    return jnp.repeat(first_row, size, axis=1)


def fit(model, x: jax.Array, labels: jax.Array | None = None, steps: int = 30) -> list[float]:
    """Mean NLL (nats per image) over a few Adam steps on the fixed batch ``x``."""
    extra = () if labels is None else (labels,)
    params = jax.jit(model.init)(jax.random.key(0), x, *extra)
    optimizer = optax.adam(1e-2)

    def loss_fn(params, x, extra):
        return losses.autoregressive_nll(model.apply(params, x, *extra), x).mean()

    @jax.jit
    def step(params, opt_state, x, extra):
        loss, grads = jax.value_and_grad(loss_fn)(params, x, extra)
        updates, opt_state = optimizer.update(grads, opt_state)
        return optax.apply_updates(params, updates), opt_state, loss

    opt_state, curve = optimizer.init(params), []
    for _ in range(steps):
        params, opt_state, loss = step(params, opt_state, x, extra)
        curve.append(float(loss))
    return curve


def with_noise(params, scale: float = 0.3):
    """Params plus Gaussian noise on every leaf, so biases and initial states are non-zero.

    With their zero initialisation, a boundary bug (a missing zero padding, a wrong
    initial state) could produce zeros by luck and go unnoticed.
    """
    leaves, treedef = jax.tree.flatten(params)
    keys = jax.random.split(jax.random.key(42), len(leaves))
    noisy = [v + scale * jax.random.normal(k, v.shape) for v, k in zip(leaves, keys, strict=True)]
    return jax.tree.unflatten(treedef, noisy)


def cached_logits(model, params, x: jax.Array, labels: jax.Array | None = None) -> jax.Array:
    """Every pixel's logits float [B, H, W, C, L] from the cached pass, teacher-forced on x.

    Runs the model's ``init_cache`` / ``start_row`` / ``step`` methods over the given
    image int [B, H, W, C] (with labels int [B], if the model is conditional), as the
    cached sampler does, but feeding x instead of drawn values.
    """
    _, h, w, _ = x.shape
    extra = () if labels is None else (labels,)

    @jax.jit
    def run(params, x, extra):
        cache = model.apply(params, x, *extra, method="init_cache")
        out = jnp.zeros((*x.shape, model.num_levels))

        def row(i, carry):
            out, cache = carry
            cache = model.apply(params, cache, x, i, method="start_row")

            def pixel(j, carry):
                out, cache = carry
                logits, cache = model.apply(params, cache, x, i, j, method="step")
                return out.at[:, i, j].set(logits), cache

            return jax.lax.fori_loop(0, w, pixel, (out, cache))

        return jax.lax.fori_loop(0, h, row, (out, cache))[0]

    return run(params, x, extra)


def check_cached_samples_equal_naive(model, params, shape: tuple[int, ...]) -> np.ndarray:
    """Asserts that cached sampling (the model's default) draws exactly the naive samples.

    Both samplers run with one key on images of ``shape`` [B, H, W, C]; the samples
    must not all be one level. Returns the naive samples, int [B, H, W, C].
    """
    key = jax.random.key(2)
    naive, cached = (
        sampling.autoregressive_sample(model, params, key, shape, method=m)
        for m in ("naive", "cached")
    )
    np.testing.assert_array_equal(cached, naive)
    assert sampling.default_method(model) == "cached" and len(np.unique(naive)) > 1
    return np.asarray(naive)
