"""The train state: a plain pytree that Orbax saves and ``jax.jit`` donates."""

from typing import Any

import flax.struct
import jax
import jax.numpy as jnp
import optax


@flax.struct.dataclass
class TrainState:
    """Everything a run needs to continue from a step.

    Attributes:
      step: int32 scalar, the number of updates applied so far.
      params: the model's variables.
      opt_state: the Optax optimizer state.
      ema_params: exponential moving average of ``params``, or None when EMA is off.
    """

    step: jax.Array
    params: Any
    opt_state: Any
    ema_params: Any = None

    @classmethod
    def create(
        cls, params: Any, tx: optax.GradientTransformation, ema_decay: float | None = None
    ) -> "TrainState":
        """The state at step 0; the EMA, if on, starts at a copy of ``params``.

        A copy, not the same arrays: the train step donates the state, and one
        buffer cannot be donated twice.
        """
        return cls(
            step=jnp.zeros((), jnp.int32),
            params=params,
            opt_state=tx.init(params),
            ema_params=None if ema_decay is None else jax.tree.map(jnp.copy, params),
        )

    def apply_gradients(
        self, grads: Any, tx: optax.GradientTransformation, ema_decay: float | None = None
    ) -> "TrainState":
        """One optimizer update (and EMA update), with ``step`` incremented.

        Args:
          grads: pytree like ``params``.
          tx: the optimizer the state was created with.
          ema_decay: the EMA decay the state was created with (None: no EMA).

        Returns:
          The next TrainState.
        """
        updates, opt_state = tx.update(grads, self.opt_state, self.params)
        params = optax.apply_updates(self.params, updates)
        ema_params = None
        if ema_decay is not None:
            ema_params = optax.incremental_update(params, self.ema_params, 1.0 - ema_decay)
        return self.replace(
            step=self.step + 1, params=params, opt_state=opt_state, ema_params=ema_params
        )

    @property
    def eval_params(self) -> Any:
        """The params to evaluate and sample with: the EMA when on, else ``params``."""
        return self.params if self.ema_params is None else self.ema_params
