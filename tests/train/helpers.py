"""Helpers of the training tests: the PixelCNN task, the PixelCNN CLI, its outputs."""

import dataclasses
import json
import os
import pathlib
import subprocess
import sys

import jax
import numpy as np
import orbax.checkpoint as ocp
from ml_collections import ConfigDict

from jaxgen import tasks
from jaxgen.train import Task
from tests.conftest import REPO, xla_flags

TINY = "--config=experiments/configs/pixelcnn.py:tiny"


def pixelcnn_task(config: ConfigDict) -> Task:
    """The experiment's task for ``config`` (``tasks.from_config``), without pictures."""
    _, task = tasks.from_config("autoregressive", config)
    return dataclasses.replace(task, write_samples=None)


def cli_env(num_devices: int, data_dir: pathlib.Path, raw_dir: pathlib.Path) -> dict[str, str]:
    """The environment of a CLI run on ``num_devices`` CPU devices."""
    env = dict(os.environ)
    env["XLA_FLAGS"] = xla_flags(num_devices)
    env["JAX_PLATFORMS"] = "cpu"
    env["JAX_CPU_COLLECTIVES_IMPLEMENTATION"] = "gloo"
    env["TFDS_DATA_DIR"] = str(data_dir)
    env["JAXGEN_RAW_DIR"] = str(raw_dir)
    return env


def start(env: dict[str, str], workdir: pathlib.Path, *args: str) -> subprocess.Popen:
    """Starts ``python -m experiments.pixelcnn`` on the tiny config, output piped."""
    return subprocess.Popen(
        [sys.executable, "-m", "experiments.pixelcnn", "--workdir", str(workdir), TINY, *args],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(process: subprocess.Popen, timeout: float = 300) -> tuple[int, str]:
    """Waits for ``process`` (killed after ``timeout`` s); returns (exit code, stderr)."""
    try:
        _, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        _, stderr = process.communicate()
    return process.returncode, stderr


def load_params(workdir: pathlib.Path, step: int) -> list[np.ndarray]:
    """The params leaves of the checkpoint at ``step``, as NumPy arrays."""
    path = (workdir / "checkpoints" / str(step) / "state").absolute()
    with ocp.PyTreeCheckpointer() as checkpointer:
        metadata = checkpointer.metadata(path).item_metadata.tree
        restore_args = jax.tree.map(lambda _: ocp.RestoreArgs(restore_type=np.ndarray), metadata)
        state = checkpointer.restore(path, restore_args=restore_args)
    return [np.asarray(x) for x in jax.tree.leaves(state["params"])]


TIMING_COLUMNS = ("examples_per_sec", "elapsed_s")


def metric_rows(workdir: pathlib.Path) -> list[dict]:
    """``metrics.jsonl`` without the timing columns."""
    lines = (workdir / "metrics.jsonl").read_text().splitlines()
    return [{k: v for k, v in json.loads(x).items() if k not in TIMING_COLUMNS} for x in lines]
