"""Optax optimizer from the config: optimizer, LR schedule, gradient clipping."""

import optax
from ml_collections import ConfigDict

from jaxgen.validation import ConfigError

OPTIMIZERS = {"adam": optax.adam, "rmsprop": optax.rmsprop}
SCHEDULES = ("constant", "warmup_cosine", "warmup_cosine_restarts")


def make_schedule(config: ConfigDict) -> optax.Schedule:
    """The learning rate as a function of the step.

    Args:
      config: with ``learning_rate``, ``lr_schedule``, ``warmup_steps`` and
        ``num_steps``. The schedules: "constant"; "warmup_cosine": linear warmup
        from 0 over ``warmup_steps``, then cosine decay to 0 at ``num_steps``;
        "warmup_cosine_restarts" (SGDR, Loshchilov & Hutter, 2017): cycles of
        ``lr_cycle_steps`` steps, each a warmup and a cosine decay to 0, the
        peak of each cycle ``lr_cycle_decay`` times the last's (the first cycle
        is "warmup_cosine" with ``num_steps = lr_cycle_steps``, so a finished
        one-cycle run resumes into more cycles).

    Returns:
      An Optax schedule, step -> learning rate.
    """
    lr = config.learning_rate
    if config.lr_schedule == "constant":
        return optax.constant_schedule(lr)
    if config.lr_schedule == "warmup_cosine_restarts":
        cycle_steps, decay = config.get("lr_cycle_steps"), config.get("lr_cycle_decay", 1.0)
        if cycle_steps is None or not 0 <= config.warmup_steps < cycle_steps:
            raise ConfigError(
                f"lr_schedule='warmup_cosine_restarts' needs lr_cycle_steps (now {cycle_steps}) "
                f"greater than warmup_steps={config.warmup_steps}."
            )
        if not decay > 0:
            raise ConfigError(f"lr_cycle_decay={decay} must be positive.")
        return optax.sgdr_schedule(
            [
                dict(
                    init_value=0.0,
                    peak_value=lr * decay**cycle,
                    warmup_steps=config.warmup_steps,
                    decay_steps=cycle_steps,
                )
                for cycle in range(-(-config.num_steps // cycle_steps))
            ]
        )
    if config.lr_schedule == "warmup_cosine":
        if not 0 <= config.warmup_steps < config.num_steps:
            raise ConfigError(
                f"warmup_steps={config.warmup_steps} must be in [0, num_steps={config.num_steps})."
            )
        return optax.warmup_cosine_decay_schedule(
            init_value=0.0,
            peak_value=lr,
            warmup_steps=config.warmup_steps,
            decay_steps=config.num_steps,
        )
    raise ConfigError(f"lr_schedule={config.lr_schedule!r} must be one of {SCHEDULES}.")


def make_optimizer(config: ConfigDict) -> tuple[optax.GradientTransformation, optax.Schedule]:
    """The optimizer named by the config, with clipping and the LR schedule.

    Args:
      config: with ``optimizer`` ("adam" or "rmsprop"), ``grad_clip_norm``
        (None: no clipping; else the maximum global gradient norm) and the keys
        of ``make_schedule``.

    Returns:
      (optimizer, schedule); the schedule is returned for logging the learning rate.
    """
    if config.optimizer not in OPTIMIZERS:
        raise ConfigError(f"optimizer={config.optimizer!r} must be one of {sorted(OPTIMIZERS)}.")
    if not config.learning_rate > 0:
        raise ConfigError(f"learning_rate={config.learning_rate} must be positive.")
    schedule = make_schedule(config)
    tx = OPTIMIZERS[config.optimizer](learning_rate=schedule)
    if config.grad_clip_norm is not None:
        if not config.grad_clip_norm > 0:
            raise ConfigError(f"grad_clip_norm={config.grad_clip_norm} must be positive or None.")
        tx = optax.chain(optax.clip_by_global_norm(config.grad_clip_norm), tx)
    return tx, schedule
