"""Timing of jaxgen train steps for ``experiments.benchmark`` and ``experiments.gpu_check``.

A support module (like ``experiments.cli``), not an experiment:

    run = speed.prepare_train(speed.autoregressive_case(config))  # compiles, times it
    seconds = run.window(steps=5)                                 # steps end to end
    run.flops / seconds                                           # achieved FLOP/s

Every case trains with the real jitted step of ``jaxgen.train`` (the guard
included) on a fixed random batch of 28x28 binary images, on one device
(``jax.devices()[0]``: a CPU's cores are one device). Compilation is timed
in parts: tracing and lowering (``lower``), XLA's compilation (``compile``) and
the first call of the compiled step (``first_call``). FLOPs per step are XLA's
count for the lowered program (``Lowered.cost_analysis()["flops"]``): every
convolution, matmul and elementwise op of forward, backward and Adam as the
program computes them (where jaxgen's masked convolutions skip masked-out taps,
those are not counted).
"""

import dataclasses
import math
import statistics
import time
from collections.abc import Callable
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
from ml_collections import ConfigDict

from jaxgen import gan, latent, losses, parallel
from jaxgen.models import registry
from jaxgen.models.dcgan import make_gan
from jaxgen.models.vae import VAE
from jaxgen.train import Task, TrainState, jit_train_step, make_optimizer, make_train_step

IMAGE_SHAPE = (28, 28, 1)


@dataclasses.dataclass(frozen=True)
class TrainCase:
    """What ``prepare_train`` needs to build, compile and time one model's step.

    Attributes:
      name: model name for tables.
      batch_size: images per step.
      init: ``key -> params`` (variables).
      make_step: ``(optimizer, mesh) -> jitted train_step(state, batch, key)``.
      optimizer: the Optax optimizer the state is created with.
      model_config: the model's config entries, for the record.
      init_state: ``(params, optimizer) -> TrainState`` (the GAN's has two players).
    """

    name: str
    batch_size: int
    init: Callable[[jax.Array], Any]
    make_step: Callable[[optax.GradientTransformation, Any], Callable]
    optimizer: Any
    model_config: dict
    init_state: Callable[..., TrainState] = TrainState.create


@dataclasses.dataclass
class TrainRun:
    """A compiled train step with its state, ready to be timed.

    Attributes:
      case: the case it was built from.
      num_params: parameters of the model.
      lower_s: seconds to trace and lower the step.
      compile_s: seconds of XLA's compilation of the lowered step.
      first_call_s: seconds of the first call of the compiled step.
      flops: XLA's FLOP count of one step.
    """

    case: TrainCase
    num_params: int
    lower_s: float
    compile_s: float
    first_call_s: float
    flops: float
    _step: Callable
    _state: TrainState
    _batch: dict
    _key: jax.Array

    def window(self, steps: int) -> float:
        """Runs ``steps`` train steps and returns their wall-clock seconds (to ready results)."""
        start = time.perf_counter()
        for _ in range(steps):
            self._state, metrics = self._step(self._state, self._batch, self._key)
        jax.block_until_ready(metrics["loss"])
        return time.perf_counter() - start

    def images_per_s(self, steps: int, windows: int) -> float:
        """Images per second: ``steps`` x batch over the median of ``windows`` windows."""
        return (
            steps
            * self.case.batch_size
            / statistics.median(self.window(steps) for _ in range(windows))
        )


def random_batch(batch_size: int, seed: int = 0) -> dict[str, np.ndarray]:
    """A batch of random binary images, int32 [B, 28, 28, 1], and zero labels int32 [B]."""
    rng = np.random.default_rng(seed)
    return {
        "image": rng.integers(0, 2, (batch_size, *IMAGE_SHAPE)).astype(np.int32),
        "label": np.zeros(batch_size, np.int32),
    }


def autoregressive_task(model: nn.Module) -> Task:
    """The loop's Task of an unconditional autoregressive model, without pictures.

    Loss: the NLL in nats per image (``losses.autoregressive_nll``) averaged over
    the batch. Evaluation: per-image ``nll_nats`` and ``bits_per_dim``.
    """

    def nll(params, batch) -> jax.Array:
        return losses.autoregressive_nll(model.apply(params, batch["image"]), batch["image"])

    def loss_fn(params, batch, key):
        del key  # the model is deterministic
        loss = nll(params, batch).mean()
        return loss, {"nll_nats": loss}

    def eval_fn(params, batch, key):
        del key
        per_image = nll(params, batch)
        num_dims = math.prod(batch["image"].shape[1:])
        return {"nll_nats": per_image, "bits_per_dim": losses.bits_per_dim(per_image, num_dims)}

    return Task(
        init=lambda key, batch: model.init(key, batch["image"]), loss_fn=loss_fn, eval_fn=eval_fn
    )


def autoregressive_case(config: ConfigDict, name: str | None = None) -> TrainCase:
    """PixelCNN, Gated PixelCNN or PixelRNN of a ``pixelcnn``/``pixelrnn`` config.

    The loss is ``autoregressive_task``'s; the optimizer is the config's.
    """
    model = registry.build_model(config.model.to_dict(), config.num_levels)
    task = autoregressive_task(model)
    tx, schedule = make_optimizer(config)
    example = {"image": jnp.zeros((1, *IMAGE_SHAPE), jnp.int32)}
    return TrainCase(
        name=name or config.model.name,
        batch_size=config.batch_size,
        init=lambda key: task.init(key, example),
        make_step=lambda tx, mesh: make_train_step(task.loss_fn, tx, mesh, schedule=schedule),
        optimizer=tx,
        model_config=config.model.to_dict(),
    )


def vae_case(config: ConfigDict) -> TrainCase:
    """The VAE of a ``vae`` config, trained on the negative ELBO (one draw of z per image)."""
    model = VAE(num_levels=config.num_levels, image_shape=IMAGE_SHAPE, **config.model.to_dict())
    tx, schedule = make_optimizer(config)

    def loss_fn(params, batch, key):
        terms = latent.elbo_terms(model, params, batch["image"], key, config.elbo_samples)
        return -terms["elbo"].mean(), {}

    return TrainCase(
        name="vae",
        batch_size=config.batch_size,
        init=lambda key: model.init(key, jnp.zeros((1, *IMAGE_SHAPE), jnp.int32)),
        make_step=lambda tx, mesh: make_train_step(loss_fn, tx, mesh, schedule=schedule),
        optimizer=tx,
        model_config=config.model.to_dict(),
    )


def gan_case(config: ConfigDict) -> TrainCase:
    """The DCGAN of a ``gan`` config: one step is k discriminator and one generator update."""
    generator, discriminator = make_gan(config.model.name, IMAGE_SHAPE, config.model.features)
    model = gan.GAN(generator, discriminator, IMAGE_SHAPE, config.model.latent_dim)
    g_tx = optax.adam(config.learning_rate, b1=config.adam_b1, b2=config.adam_b2)
    d_tx = optax.adam(config.learning_rate, b1=config.adam_b1, b2=config.adam_b2)
    optimizers = gan.Optimizers(g_tx, d_tx)
    step_fn = gan.make_gan_step(
        model, optimizers, k=config.k, generator_loss=config.generator_loss, num_levels=2
    )
    return TrainCase(
        name=config.model.name,
        batch_size=config.batch_size,
        init=model.init,
        make_step=lambda tx, mesh: jit_train_step(step_fn, mesh),
        optimizer=optimizers,
        model_config=config.model.to_dict(),
        init_state=gan.init_state,
    )


def prepare_train(case: TrainCase, seed: int = 0) -> TrainRun:
    """Builds the state and the jitted step of ``case``, compiles it and calls it once.

    Args:
      case: the model's case.
      seed: seed of the params and of the batch.

    Returns:
      The TrainRun, with the compile times and XLA's FLOP count.
    """
    mesh = parallel.make_mesh(1)  # one device: the numbers are per chip
    batch = parallel.shard_batch(random_batch(case.batch_size, seed), mesh)
    params = jax.jit(case.init)(jax.random.key(seed))
    create = jax.jit(case.init_state, static_argnums=1, out_shardings=parallel.replicated(mesh))
    state = create(params, case.optimizer)
    step = case.make_step(case.optimizer, mesh)
    key = jax.random.key(seed + 1)

    start = time.perf_counter()
    lowered = step.lower(state, batch, key)
    lower_s = time.perf_counter() - start
    compiled = lowered.compile()
    compile_s = time.perf_counter() - start - lower_s
    run = TrainRun(
        case=case,
        num_params=count_params(params),
        lower_s=lower_s,
        compile_s=compile_s,
        first_call_s=0.0,
        flops=step_flops(lowered),
        _step=compiled,
        _state=state,
        _batch=batch,
        _key=key,
    )
    run.first_call_s = run.window(1)
    return run


def count_params(variables: Any) -> int:
    """Number of parameters in ``variables["params"]`` (or in the whole tree if it has none)."""
    tree = variables.get("params", variables) if isinstance(variables, dict) else variables
    return int(sum(np.size(x) for x in jax.tree.leaves(tree)))


def step_flops(lowered: jax.stages.Lowered) -> float:
    """XLA's FLOP count of a lowered program.

    Raises:
      ValueError: XLA gave no positive count (the backend has no cost model).
    """
    analysis = lowered.cost_analysis()
    if isinstance(analysis, list | tuple):  # one entry per computation in older JAX versions
        analysis = analysis[0]
    flops = float((analysis or {}).get("flops", 0.0))
    if not flops > 0:
        raise ValueError(f"XLA's cost analysis gave no FLOP count for this program: {analysis}.")
    return flops


def matmul_peak(n: int = 2048, repeats: int = 5, dtype: Any = jnp.float32) -> float:
    """FLOP/s of the fastest of ``repeats`` jitted ``jnp.dot`` of two n x n matrices."""
    if n < 1 or repeats < 1:
        raise ValueError(f"n={n} and repeats={repeats} must be positive.")
    a = jax.random.normal(jax.random.key(0), (n, n), dtype)
    b = jax.random.normal(jax.random.key(1), (n, n), dtype)
    dot = jax.jit(jnp.dot)
    jax.block_until_ready(dot(a, b))
    fastest = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(dot(a, b))
        fastest = min(fastest, time.perf_counter() - start)
    return 2.0 * n**3 / fastest
