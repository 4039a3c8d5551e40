"""SIGKILL at arbitrary moments and SIGTERM, then the same command: the same final params."""

import pathlib
import random
import signal
import subprocess
import time

import numpy as np
import pytest

from jaxgen.train import Checkpointer
from tests.train import helpers

# Enough steps that the SIGTERM of step 3 (sent at the first checkpoint after the resume, which
# is at most ~9 after step 2's random kill) lands before the run ends, however fast steps are.
STEPS = 24
ARGS = (
    f"--config.num_steps={STEPS}",
    "--config.batch_size=64",
    "--config.checkpoint_every=2",
    "--config.keep_checkpoints=2",
    "--config.log_every=2",
    "--config.eval_every=6",
    "--config.eval_max_examples=32",
    "--config.num_samples=1",
)


def _entries(workdir: pathlib.Path) -> list[str]:
    folder = workdir / "checkpoints"
    return [p.name for p in folder.iterdir()] if folder.is_dir() else []


def _committed(workdir: pathlib.Path) -> list[int]:
    return [int(name) for name in _entries(workdir) if name.isdigit()]


def _signal_when(process: subprocess.Popen, ready, signum: int, delay: float = 0.0) -> list[str]:
    """Sends ``signum`` when ``ready(entries)`` holds, after ``delay`` s; returns entries seen."""
    seen: set[str] = set()
    while process.poll() is None:
        entries = _entries(process.workdir)
        seen.update(entries)
        if ready(entries):
            time.sleep(delay)
            process.send_signal(signum)
            break
        time.sleep(0.002)
    return sorted(seen)


def _start(env, workdir):
    process = helpers.start(env, workdir, *ARGS)
    process.workdir = workdir
    return process


@pytest.fixture(scope="module")
def env(bmnist_dir, raw_dir):
    return helpers.cli_env(1, bmnist_dir, raw_dir)


def test_killed_and_preempted_runs_end_like_an_uninterrupted_one(env, tmp_path):
    full = tmp_path / "full"
    code, stderr = helpers.finish(_start(env, full))
    assert code == 0, stderr

    workdir = tmp_path / "killed"
    rng = random.Random(0)
    # 1. SIGKILL at the first sign of a checkpoint: mid-write if Orbax's temporary folder shows.
    process = _start(env, workdir)
    seen = _signal_when(process, bool, signal.SIGKILL)
    code, _ = helpers.finish(process)
    print("first kill saw", seen)
    assert code == -signal.SIGKILL
    # 2. SIGKILL at a random moment after the checkpoint of step 6 or later.
    process = _start(env, workdir)
    _signal_when(
        process, lambda e: max(_committed_of(e), default=0) >= 6, signal.SIGKILL, rng.random() * 0.3
    )
    code, _ = helpers.finish(process)
    assert code == -signal.SIGKILL
    # 3. SIGTERM (preemption): a checkpoint at the current step, exit 143.
    start = max(_committed(workdir), default=0)
    process = _start(env, workdir)
    _signal_when(process, lambda e: max(_committed_of(e), default=0) > start, signal.SIGTERM)
    code, stderr = helpers.finish(process)
    assert code == 128 + signal.SIGTERM, stderr
    assert "Traceback" not in stderr
    stopped = int(stderr.split("Stopped by SIGTERM at step ")[1].split(",")[0])
    assert start < stopped < STEPS
    assert max(_committed(workdir)) == stopped
    # 4. The same command again finishes the run.
    code, stderr = helpers.finish(_start(env, workdir))
    assert code == 0, stderr
    assert not [name for name in _entries(workdir) if not name.isdigit()]  # no leftovers

    for a, b in zip(
        helpers.load_params(full, STEPS), helpers.load_params(workdir, STEPS), strict=True
    ):
        np.testing.assert_array_equal(a, b)  # bitwise, on the same CPU device count
    # A train row averages the steps since the last log or the resume: the row whose window
    # the SIGTERM cut (stopped at an odd step) covers fewer steps; all other rows are equal.
    cut = {(-(-stopped // 2) * 2, "train")} if stopped % 2 else set()
    rows, expected = helpers.metric_rows(workdir), helpers.metric_rows(full)
    assert [(r["step"], r["split"]) for r in rows] == [(r["step"], r["split"]) for r in expected]
    assert [r for r in rows if (r["step"], r["split"]) not in cut] == [
        r for r in expected if (r["step"], r["split"]) not in cut
    ]


def _committed_of(entries: list[str]) -> list[int]:
    return [int(name) for name in entries if name.isdigit()]


def test_a_half_written_checkpoint_is_ignored_and_removed(tmp_path):
    half = tmp_path / "8.orbax-checkpoint-tmp"  # as Orbax names it while writing
    (half / "state").mkdir(parents=True)
    (half / "state" / "manifest.ocdbt").write_bytes(b"\0" * 10)
    with Checkpointer(tmp_path, keep=2) as checkpointer:
        assert checkpointer.latest_step() is None
    assert not half.exists()
