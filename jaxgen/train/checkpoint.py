"""Checkpoints with Orbax: atomic saves, keep the latest N, resume the latest.

Each checkpoint holds two items: ``state`` (the TrainState pytree) and
``meta`` (JSON: the config of the run that wrote it, to refuse resuming a
different model). A save is written to a temporary folder and renamed when
complete, so a process killed while saving leaves only a temporary folder,
which is ignored and removed when the checkpoints are opened again. All
processes of a multi-process run save and restore together (each writes its
own shards; the params are replicated, so process 0 writes them). The clean-up
of temporary folders is safe because one run at a time uses a workdir
(``jaxgen.train.workdir``): another run's save in progress would look half-written.
"""

import contextlib
import logging
import pathlib
import shutil
from collections.abc import Iterator
from typing import Any

import jax
import orbax.checkpoint as ocp
from jax.experimental import multihost_utils

from jaxgen.validation import ConfigError

# Orbax writes a checkpoint under ``<step>.orbax-checkpoint-tmp...`` and renames it when complete.
_TMP_MARK = ".orbax-checkpoint-tmp"


class Checkpointer:
    """Saves and restores TrainStates under ``directory``/<step>/.

    Args:
      directory: the checkpoints folder (created if missing, unless ``read_only``).
      keep: number of most recent checkpoints to keep.
      read_only: only read (``jaxgen.load_run``): creates and removes nothing,
        so a training run may be saving into ``directory`` meanwhile.
    """

    def __init__(self, directory: str | pathlib.Path, keep: int, *, read_only: bool = False):
        if keep < 1:
            raise ConfigError(f"keep_checkpoints={keep} must be at least 1.")
        directory = pathlib.Path(directory).absolute()
        if read_only:
            options = ocp.CheckpointManagerOptions(
                read_only=True, create=False, max_to_keep=None, save_interval_steps=0
            )
        else:
            _remove_half_written(directory)
            options = ocp.CheckpointManagerOptions(max_to_keep=keep, create=True)
        with _quiet_absl(read_only):  # Orbax warns that a read-only manager is read-only
            self._manager = ocp.CheckpointManager(
                directory, options=options, item_names=("state", "meta")
            )

    def latest_step(self) -> int | None:
        """The step of the newest complete checkpoint, or None."""
        return self._manager.latest_step()

    def all_steps(self) -> list[int]:
        """The steps of every complete checkpoint, in ascending order."""
        return sorted(self._manager.all_steps())

    def save(self, state: Any, meta: dict) -> None:
        """Saves ``state`` at step ``state.step`` (asynchronously; atomic on completion).

        Args:
          state: a TrainState (or any pytree with a scalar ``step``).
          meta: JSON-serialisable dict stored beside the state.
        """
        self._manager.save(
            int(jax.device_get(state.step)),
            args=ocp.args.Composite(
                state=ocp.args.StandardSave(state), meta=ocp.args.JsonSave(meta)
            ),
        )

    def restore_meta(self, step: int) -> dict:
        """The JSON ``meta`` saved with the checkpoint at ``step``."""
        restored = self._manager.restore(step, args=ocp.args.Composite(meta=ocp.args.JsonRestore()))
        return restored.meta

    def restore(self, step: int, target: Any) -> Any:
        """Restores the state at ``step`` with ``target``'s structure, shapes and shardings.

        Args:
          step: a step from ``latest_step``.
          target: a pytree of arrays (or ``jax.ShapeDtypeStruct`` with shardings)
            shaped like the saved state.

        Returns:
          The restored state, placed like ``target``.
        """
        abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, target)
        restored = self._manager.restore(
            step, args=ocp.args.Composite(state=ocp.args.StandardRestore(abstract))
        )
        return restored.state

    def close(self) -> None:
        """Waits for pending saves and releases resources."""
        self._manager.wait_until_finished()
        self._manager.close()

    def __enter__(self) -> "Checkpointer":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


@contextlib.contextmanager
def _quiet_absl(quiet: bool) -> Iterator[None]:
    """Hides absl's warnings (Orbax logs through absl) while ``quiet``."""
    logger = logging.getLogger("absl")
    level = logger.level
    if quiet:
        logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def _remove_half_written(directory: pathlib.Path) -> None:
    """Deletes checkpoints a killed run left half-written (process 0; the others wait)."""
    if jax.process_index() == 0 and directory.is_dir():
        for path in directory.iterdir():
            if _TMP_MARK in path.name:
                shutil.rmtree(path, ignore_errors=True)
    if jax.process_count() > 1:
        multihost_utils.sync_global_devices("jaxgen_checkpoint_cleanup")
