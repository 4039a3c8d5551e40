"""Step factories: one ``jax.jit`` program per step, batch sharded, state replicated.

``train_step(state, batch, key) -> (state, metrics)`` folds the step number
into ``key`` inside the compiled program, so step ``t`` draws the same random
numbers whether the run was interrupted or not. Every jitted train step skips
updates with a non-finite loss, gradient or update (see ``jaxgen.train.guard``).

Without a ``mesh`` the factories use one over all devices
(``parallel.make_mesh()``), so a notebook needs none:

    train_step = make_train_step(loss_fn, optax.adam(1e-3))
    state, metrics = train_step(TrainState.create(params, tx), batch, key)
"""

from collections.abc import Callable, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import optax
from jax.sharding import Mesh

from jaxgen import parallel
from jaxgen.train import guard
from jaxgen.train.state import TrainState

Batch = Mapping[str, jax.Array]
Metrics = dict[str, jax.Array]
LossFn = Callable[..., tuple[jax.Array, Metrics]]
EvalFn = Callable[[Any, Batch, jax.Array], Metrics]
StepFn = Callable[[TrainState, Batch, jax.Array], tuple[TrainState, Metrics]]


def _compile(step_fn: StepFn, mesh: Mesh | None) -> StepFn:
    """``jax.jit`` of a step: state replicated and donated, batch split over ``data``."""
    mesh = parallel.make_mesh() if mesh is None else mesh
    rep, split = parallel.replicated(mesh), parallel.batch_sharded(mesh)
    return jax.jit(
        step_fn, in_shardings=(rep, split, rep), out_shardings=(rep, rep), donate_argnums=0
    )


def jit_train_step(step_fn: StepFn, mesh: Mesh | None = None) -> StepFn:
    """Compiles a pure step: state replicated and donated, batch split over ``data``.

    The step is guarded by ``guard.skip_nonfinite``: an update with a non-finite
    loss, gradient norm or new state is dropped (``step`` still advances) and
    the metrics gain ``nonfinite_steps`` (1 for a dropped update, else 0).

    Args:
      step_fn: pure ``(state, batch, key) -> (state, metrics)``.
      mesh: the data mesh; None for one over all devices.

    Returns:
      The jitted step; its metrics come back replicated.
    """
    return _compile(guard.skip_nonfinite(step_fn), mesh)


def make_train_step(
    loss_fn: LossFn,
    tx: optax.GradientTransformation,
    mesh: Mesh | None = None,
    *,
    schedule: optax.Schedule | None = None,
    ema_decay: float | None = None,
    loss_takes_step: bool = False,
) -> StepFn:
    """The standard gradient step for models trained on one loss.

    A loss that changes during training (a KL warm-up, an annealed weight) gets
    the step with ``loss_takes_step=True`` and computes its weight from it,
    e.g. with an Optax schedule:

        beta = optax.linear_schedule(0.0, 1.0, transition_steps=10_000)

        def loss_fn(params, batch, key, step):
            terms = ...
            return terms["nll"] + beta(step) * terms["kl"], {"beta": beta(step)}

        train_step = make_train_step(loss_fn, tx, loss_takes_step=True)

    Args:
      loss_fn: ``(params, batch, key) -> (scalar loss, metrics)``, the loss
        averaged over the global batch; metrics are float scalars. With
        ``loss_takes_step``: ``(params, batch, key, step) -> (loss, metrics)``,
        where ``step`` is the int32 scalar ``state.step`` before this update
        (0 at the first step, the value ``schedule`` is evaluated at; traced,
        so one compiled program serves every step). ``key`` is already
        ``fold_in(key, step)``.
      tx: the optimizer.
      mesh: the data mesh; None (the default) for one over all devices.
      schedule: the learning-rate schedule, logged as ``learning_rate`` if given.
      ema_decay: decay of the parameter EMA, None for no EMA.
      loss_takes_step: pass the step to ``loss_fn`` as a fourth argument.

    Returns:
      Jitted ``train_step(state, batch, key) -> (state, metrics)`` with metrics
      ``loss``, ``grad_norm`` (before clipping), ``learning_rate`` (with a
      ``schedule``), ``nonfinite_steps`` and the loss's own. A step whose loss,
      gradient norm or update is not finite is skipped
      (``guard.apply_gradients_if_finite``).
    """

    def train_step(state: TrainState, batch: Batch, key: jax.Array):
        key = jax.random.fold_in(key, state.step)
        args = (batch, key, state.step) if loss_takes_step else (batch, key)
        grad_fn = jax.value_and_grad(loss_fn, has_aux=True)
        (loss, metrics), grads = grad_fn(state.params, *args)
        grad_norm = optax.tree.norm(grads)
        metrics = {**metrics, "loss": loss, "grad_norm": grad_norm}
        if schedule is not None:
            metrics["learning_rate"] = schedule(state.step)
        next_state, skipped = guard.apply_gradients_if_finite(
            state, grads, tx, loss, grad_norm, ema_decay
        )
        return next_state, {**metrics, guard.METRIC: skipped}

    return _compile(train_step, mesh)


def make_eval_step(
    eval_fn: EvalFn, mesh: Mesh | None = None
) -> Callable[[Any, Batch, jax.Array], dict[str, jax.Array]]:
    """Jitted ``eval_step(params, batch, key) -> sums`` for exact averages over a split.

    Args:
      eval_fn: ``(params, batch, key) -> {name: float [B]}`` per-example metrics.
      mesh: the data mesh; None (the default) for one over all devices.

    Returns:
      A function of (params, batch with a bool ``mask`` [B], key) returning,
      for every metric, the sum over the examples where ``mask`` is True, and
      ``num_examples``, the number of such examples. Padding never counts.
    """

    def eval_step(params: Any, batch: Batch, key: jax.Array) -> dict[str, jax.Array]:
        mask = batch["mask"]
        per_example = eval_fn(params, batch, key)
        sums = {k: jnp.sum(jnp.where(mask, v, 0.0)) for k, v in per_example.items()}
        sums["num_examples"] = jnp.sum(mask, dtype=jnp.int32)
        return sums

    mesh = parallel.make_mesh() if mesh is None else mesh
    rep, split = parallel.replicated(mesh), parallel.batch_sharded(mesh)
    return jax.jit(eval_step, in_shardings=(rep, split, rep), out_shardings=rep)
