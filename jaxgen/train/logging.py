"""Metrics to ``metrics.jsonl`` and TensorBoard, progress to a tqdm bar.

Only process 0 writes; on other processes the writer is a no-op, so callers
need no ``if process_index == 0`` of their own.
"""

import json
import math
import pathlib
from collections.abc import Mapping

import jax
import numpy as np
import tensorboardX
import tqdm


class MetricsWriter:
    """Appends one JSON object per call to ``workdir/metrics.jsonl`` and mirrors it to TensorBoard.

    Args:
      workdir: the run's folder; TensorBoard event files go to ``workdir/tensorboard``.
      enabled: write anything at all (default: only on process 0).
    """

    def __init__(self, workdir: str | pathlib.Path, enabled: bool | None = None):
        self.enabled = jax.process_index() == 0 if enabled is None else enabled
        self.path = pathlib.Path(workdir) / "metrics.jsonl"
        self._tb = None
        if self.enabled:
            self._tb = tensorboardX.SummaryWriter(str(pathlib.Path(workdir) / "tensorboard"))

    def discard_after(self, step: int) -> None:
        """Drops rows past ``step`` (a resumed run writes them again) and lines cut short."""
        if self.enabled and self.path.exists():
            rows = self.path.read_text().splitlines(keepends=True)
            self.path.write_text("".join(r for r in rows if _step_of(r) <= step))

    def write(self, step: int, split: str, metrics: Mapping[str, float]) -> dict:
        """Logs scalar metrics of ``split`` ("train", "eval" or "test") at ``step``.

        Returns:
          The row written, ``{"step", "split", **metrics}`` with Python floats.
        """
        row = {"step": int(step), "split": split}
        row.update({k: _to_python(v) for k, v in metrics.items()})
        if self.enabled:
            with self.path.open("a") as f:
                f.write(json.dumps(row) + "\n")
            for name, value in row.items():
                if name not in ("step", "split") and math.isfinite(value):
                    self._tb.add_scalar(f"{split}/{name}", value, step)
            self._tb.flush()
        return row

    def close(self) -> None:
        """Flushes and closes the TensorBoard writer."""
        if self._tb is not None:
            self._tb.close()

    def __enter__(self) -> "MetricsWriter":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


def _step_of(line: str) -> float:
    """The step of a ``metrics.jsonl`` line; infinite for a line cut short."""
    try:
        return json.loads(line)["step"]
    except (ValueError, KeyError):
        return math.inf


def _to_python(value) -> float | int:
    """A numpy/JAX scalar as a JSON-friendly Python number."""
    return np.asarray(jax.device_get(value)).item()


def progress_bar(start_step: int, num_steps: int) -> tqdm.tqdm:
    """A tqdm bar over the steps, shown only on process 0.

    Steps are counted when dispatched, and the loop runs ahead of the device until the
    next log fetches the metrics, so the rate and the time left are averaged over the
    whole run (``smoothing=0``): tqdm's default (recent steps) swung between ~2 and ~14
    steps/s on ``make main``, whose true rate is ~6.
    """
    return tqdm.tqdm(
        total=num_steps,
        initial=start_step,
        desc="train",
        unit="step",
        smoothing=0,
        dynamic_ncols=True,
        disable=jax.process_index() != 0,
    )
