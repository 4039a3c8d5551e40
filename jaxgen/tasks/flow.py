"""The change-of-variables family's task: a normalizing flow (``models.RealNVP``) on integer images.

Training maximises ``log p_V(x + u)`` with fresh uniform dequantization noise u
every step; evaluation reports the same quantity with one draw of u per image,
an unbiased estimate of an upper bound on the NLL of the integer image (see
``jaxgen.models.realnvp``), and optionally the tighter importance-weighted
bound with K draws.
"""

import functools
import math
import pathlib
from collections.abc import Sequence
from typing import cast

import jax
import jax.numpy as jnp
import numpy as np

from jaxgen import losses, viz
from jaxgen.models.realnvp import RealNVP
from jaxgen.train.loop import Inference, Task
from jaxgen.validation import ConfigError

STRIP_COLUMNS = 10  # samples per temperature in the temperature strip


def dequantization_noise(key: jax.Array, shape: Sequence[int]) -> jax.Array:
    """u ~ U[0, 1)^shape, the noise added to integer images: ``jax.random.uniform(key, shape)``."""
    return jax.random.uniform(key, tuple(shape))


def _check_temperature(temperature) -> None:
    if not isinstance(temperature, int | float | np.number) or not 0 <= temperature < np.inf:
        raise ConfigError(
            f"temperature={temperature!r} must be a finite number >= 0 (1: the model; 0: the "
            "image of z = 0)."
        )


def flow_sample(
    model: RealNVP, params, key: jax.Array, shape: Sequence[int], temperature: float = 1.0
) -> jax.Array:
    """Images from the flow: z ~ N(0, T^2 I), inverse flow, undo the logit, floor to levels.

    Args:
      model: the flow.
      params: its params.
      key: PRNG key; the same key gives the same images at every temperature
        (z = T * eps with the same eps).
      shape: (N, H, W, C) of the images.
      temperature: T >= 0; 1 samples the model, 0 gives N copies of the image of z = 0.

    Returns:
      int32 [N, H, W, C] in [0, num_levels).

    Raises:
      ConfigError: a bad temperature or shape.
    """
    _check_temperature(temperature)
    shape = tuple(int(n) for n in shape)
    if len(shape) != 4 or min(shape) < 1:
        raise ConfigError(f"shape={shape} must be (N, H, W, C) of positive sizes.")
    return _sample(model, params, key, shape, jnp.float32(temperature))


@functools.partial(jax.jit, static_argnums=(0, 3))
def _sample(model: RealNVP, params, key: jax.Array, shape: tuple, temperature: jax.Array):
    return _generate(model, params, temperature * jax.random.normal(key, shape))


@functools.partial(jax.jit, static_argnums=0)
def _generate(model: RealNVP, params, z: jax.Array) -> jax.Array:
    """int32 [N, H, W, C]: the images of latents z float [N, H, W, C]."""
    return cast(jax.Array, model.apply(params, z, method=model.generate))


def flow(
    model: RealNVP,
    *,
    temperatures: Sequence[float] = (0.5, 0.7, 1.0),
    iw_samples: int = 0,
) -> Task:
    """The flow's task: maximum likelihood of dequantized images, bits/dim, samples.

    Train metrics (batch means): ``loss`` = ``bits_per_dim``, and ``nll_nats``.
    Eval metrics per image, with one draw u ~ U[0, 1)^D per image
    (``dequantization_noise`` of the eval key): ``nll_nats`` = -log p_V(x + u),
    every Jacobian term included (flow, logit transform, 1/L scaling), and its
    ``bits_per_dim``; E_u of ``nll_nats`` is an upper bound on -log P(x) of the
    integer image. With ``iw_samples`` = K >= 2 also ``iw_nll_nats`` = -log(1/K
    sum_k p_V(x + u_k)) (a bound at least as tight in expectation), its
    ``iw_bits_per_dim`` and ``iw_samples``. Pictures (``write_samples``, after
    training): ``stepNNNNNNN_samples.png``, as many samples at T = 1 as there
    are example images, and ``stepNNNNNNN_temperatures.png``, one row of
    ``STRIP_COLUMNS`` samples per temperature, the same noise scaled by T.

    Args:
      model: the flow.
      temperatures: the rows of the temperature strip, each >= 0.
      iw_samples: K of the importance-weighted bound in evaluations; 0 or 1: not computed.

    Returns:
      The Task.

    Raises:
      ConfigError: a bad argument, named.
    """
    if not isinstance(model, RealNVP):
        raise ConfigError(f"tasks.flow takes a models.RealNVP; got {type(model).__name__}.")
    temperatures = tuple(temperatures)
    if not temperatures:
        raise ConfigError("temperatures=() must name at least one temperature for the strip.")
    for temperature in temperatures:
        _check_temperature(temperature)
    if not isinstance(iw_samples, int | np.integer) or iw_samples < 0:
        raise ConfigError(f"iw_samples={iw_samples!r} must be an integer >= 0 (0: no IW bound).")

    def log_px(params, x, key) -> jax.Array:
        """float [B]: log p_V(x + u), one draw of u per image."""
        u = dequantization_noise(key, x.shape)
        return cast(jax.Array, model.apply(params, x, u, method=model.log_prob))

    def init(key, batch):
        x = batch["image"]
        params_key, noise_key = jax.random.split(key)
        return model.init(params_key, x, dequantization_noise(noise_key, x.shape))

    def loss_fn(params, batch, key):
        x = batch["image"]
        nll = -log_px(params, x, key).mean()
        bpd = losses.bits_per_dim(nll, math.prod(x.shape[1:]))
        return bpd, {"nll_nats": nll, "bits_per_dim": bpd}

    def eval_fn(params, batch, key):
        x = batch["image"]
        num_dims = math.prod(x.shape[1:])
        nll = -log_px(params, x, key)
        metrics = {"nll_nats": nll, "bits_per_dim": losses.bits_per_dim(nll, num_dims)}
        if iw_samples >= 2:
            keys = jax.random.split(jax.random.fold_in(key, 1), iw_samples)
            log_p = jax.lax.map(lambda k: log_px(params, x, k), keys)  # [K, B]
            iw_nll = -(jax.nn.logsumexp(log_p, axis=0) - math.log(iw_samples))
            metrics["iw_nll_nats"] = iw_nll
            metrics["iw_bits_per_dim"] = losses.bits_per_dim(iw_nll, num_dims)
            metrics["iw_samples"] = jnp.full(x.shape[:1], iw_samples, jnp.float32)
        return metrics

    def write_samples(params, key, workdir, step, examples) -> list[pathlib.Path]:
        params = jax.device_get(params)  # sample on one device
        images = examples["image"]
        num, shape = len(images), images.shape[1:]
        eps = np.asarray(jax.random.normal(key, (max(num, STRIP_COLUMNS), *shape)))
        strip = [t * eps[:STRIP_COLUMNS] for t in temperatures]
        z = jnp.asarray(np.concatenate([eps[:num], *strip]))
        drawn = np.asarray(_generate(model, params, z))
        if jax.process_index() != 0:
            return []
        rows = drawn[num:].reshape(len(temperatures), STRIP_COLUMNS, *shape)
        out = pathlib.Path(workdir) / "samples"
        return [
            viz.save_grid(out / f"step{step:07d}_samples.png", drawn[:num], model.num_levels),
            viz.save_grid(
                out / f"step{step:07d}_temperatures.png",
                rows,
                model.num_levels,
                title="rows: the same z ~ N(0, I) scaled by T",
                row_labels=[f"T={t:g}" for t in temperatures],
            ),
        ]

    def sample(params, key, shape, temperature: float = 1.0):
        return flow_sample(model, params, key, shape, temperature)

    @jax.jit
    def log_likelihood(params, images, key, labels):
        del labels  # unconditional
        return log_px(params, images, key)

    inference = Inference(
        sample=sample,
        density="lower bound",
        density_note=(
            "the dequantized bound: log p_V(x + u) with one draw u ~ U[0, 1)^D per image, "
            "every Jacobian term included (flow, logit, 1/L); E_u of it is a lower bound on "
            "log P(x) of the integer image, so -log P(x) is at most the reported NLL on average"
        ),
        log_likelihood=log_likelihood,
    )
    return Task(
        init=init,
        loss_fn=loss_fn,
        eval_fn=eval_fn,
        write_samples=write_samples,
        family="flow",
        modules={"model": model},
        inference=inference,
    )
