"""The non-finite guard: a step whose loss or update is NaN/inf changes nothing but the step.

Inside the compiled step, ``skip_nonfinite`` keeps the old params, optimizer
state and EMA when the loss, the gradient norm or any value of the new state is
not finite, and reports ``nonfinite_steps`` (1 for a skipped update, else 0).
``state.step`` still advances: the offending batch is skipped, not retried
(retrying the same batch with the same key would fail the same way), so data
order, keys and the learning-rate schedule stay those of the step count.
Checkpoints therefore only ever hold finite params.

On the host, ``NonFiniteStreak`` counts skipped steps in a row and raises
``TrainingDiverged`` once there are ``max_nonfinite_steps`` of them.
"""

from collections.abc import Iterable, Mapping
from typing import Any

import jax
import jax.numpy as jnp

from jaxgen.train.state import TrainState

METRIC = "nonfinite_steps"
# Metrics whose non-finite values mean the update must not be applied.
_CHECKED_METRICS = ("loss", "grad_norm")


class TrainingDiverged(RuntimeError):
    """Too many consecutive steps had a non-finite loss or update; the message names them."""


def all_finite(tree: Any) -> jax.Array:
    """bool scalar: every floating-point value in ``tree`` is finite."""
    leaves = [x for x in jax.tree.leaves(tree) if jnp.issubdtype(jnp.result_type(x), jnp.inexact)]
    return jnp.all(jnp.stack([jnp.all(jnp.isfinite(x)) for x in leaves])) if leaves else True


def skip_nonfinite(step_fn):
    """Wraps a pure ``(state, batch, key) -> (state, metrics)`` step with the guard.

    Args:
      step_fn: the pure step (to be jitted).

    Returns:
      The guarded step: if the new state or the ``loss``/``grad_norm`` metrics
      hold a non-finite value, the returned state is the old one with ``step``
      advanced; metrics gain ``nonfinite_steps`` (int32, 1 if skipped).
    """

    def guarded(state: TrainState, batch: Mapping[str, jax.Array], key: jax.Array):
        new_state, metrics = step_fn(state, batch, key)
        checked = [v for k, v in metrics.items() if k in _CHECKED_METRICS]
        ok = all_finite((new_state.params, new_state.opt_state, new_state.ema_params, checked))
        kept = jax.tree.map(lambda new, old: jnp.where(ok, new, old), new_state, state)
        kept = kept.replace(step=new_state.step)
        return kept, {**metrics, METRIC: jnp.logical_not(ok).astype(jnp.int32)}

    return guarded


class NonFiniteStreak:
    """Counts consecutive skipped steps from the steps' metrics, on the host.

    Args:
      limit: raise ``TrainingDiverged`` when this many steps in a row were skipped.
    """

    def __init__(self, limit: int):
        self.limit = limit
        self.length = 0
        self._last_step = -1

    def update(self, rows: Iterable[tuple[int, Mapping[str, Any]]]) -> None:
        """Counts ``(step, fetched metrics)`` rows in step order; steps seen before are ignored.

        Raises:
          TrainingDiverged: naming the steps, when the streak reaches ``limit``.
        """
        for step, metrics in rows:
            if step <= self._last_step:
                continue
            self._last_step = step
            self.length = self.length + 1 if int(metrics.get(METRIC, 0)) else 0
            if self.length >= self.limit:
                raise TrainingDiverged(
                    f"Training stopped at step {step}: the loss or the gradients were NaN or "
                    f"infinite for {self.length} steps in a row (steps {step - self.length + 1} "
                    f"to {step}), whose updates were skipped, so the params and every checkpoint "
                    "stay finite. Lower learning_rate, set grad_clip_norm, or check the data "
                    "and the loss; max_nonfinite_steps sets how many skipped steps in a row "
                    "are tolerated."
                )
