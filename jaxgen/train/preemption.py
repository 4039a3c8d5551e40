"""Preemption: SIGTERM/SIGINT end a run cleanly with a checkpoint at the current step.

On one process, ``PreemptionWatcher`` replaces the SIGTERM and SIGINT handlers
while training and remembers the signal; the loop asks ``reached(step)`` after
every step, saves a checkpoint and raises ``Preempted``. On several processes
the processes must agree on the step to stop at, so the watcher asks JAX's
preemption service (started by ``jax.distributed.initialize``, which catches
SIGTERM itself) through ``multihost_utils.reached_preemption_sync_point``.
"""

import signal
import threading
import types

import jax
from jax.experimental import multihost_utils

_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class Preempted(Exception):
    """The run stopped on a signal after saving a checkpoint at ``step``.

    Attributes:
      step: the step of the checkpoint written before stopping.
      signum: the signal received (None when JAX's preemption service said so).
    """

    def __init__(self, step: int, signum: int | None):
        self.step, self.signum = step, signum
        name = signal.Signals(signum).name if signum is not None else "a preemption notice"
        super().__init__(
            f"Stopped by {name} at step {step}, after saving a checkpoint there. "
            "Run the same command again to resume from it."
        )


class PreemptionWatcher:
    """A context manager that notes SIGTERM/SIGINT (one process) while training."""

    def __init__(self):
        self.signum: int | None = None
        self._previous: dict[int, object] = {}

    def _handle(self, signum: int, frame: types.FrameType | None) -> None:
        del frame
        self.signum = signum

    def reached(self, step: int) -> bool:
        """Whether to save and stop after ``step`` (the same answer on every process)."""
        if jax.process_count() == 1:
            return self.signum is not None
        try:
            return multihost_utils.reached_preemption_sync_point(step)
        except RuntimeError:  # the preemption service is off
            return False

    def __enter__(self) -> "PreemptionWatcher":
        if jax.process_count() == 1 and threading.current_thread() is threading.main_thread():
            for signum in _SIGNALS:
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc_info) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()
