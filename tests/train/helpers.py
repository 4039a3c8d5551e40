"""Helpers of the training tests: a library-only PixelCNN task, the PixelCNN CLI, its outputs."""

import json
import os
import pathlib
import subprocess
import sys

import jax
import numpy as np
import orbax.checkpoint as ocp
from ml_collections import ConfigDict

from jaxgen import losses
from jaxgen.models import registry
from jaxgen.train import Task
from tests.conftest import REPO

TINY = "--config=experiments/configs/pixelcnn.py:tiny"


def pixelcnn_task(config: ConfigDict) -> Task:
    """``config.model`` trained on its mean NLL, from library code only; no pictures."""
    model = registry.build_model(config.model.to_dict(), config.num_levels)

    def nll(params, batch):
        return losses.autoregressive_nll(model.apply(params, batch["image"]), batch["image"])

    def loss_fn(params, batch, key):
        del key  # the model is deterministic
        loss = nll(params, batch).mean()
        return loss, {"nll_nats": loss}

    return Task(
        init=lambda key, batch: model.init(key, batch["image"]),
        loss_fn=loss_fn,
        eval_fn=lambda params, batch, key: {"nll_nats": nll(params, batch)},
    )


def cli_env(num_devices: int, data_dir: pathlib.Path, raw_dir: pathlib.Path) -> dict[str, str]:
    """The environment of a CLI run on ``num_devices`` CPU devices."""
    env = dict(os.environ)
    env["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={num_devices}"
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
