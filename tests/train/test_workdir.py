"""One run per workdir (a lock that a killed run releases) and no silent LR-schedule change."""

import json
import os
import pathlib
import signal
import socket
import subprocess
import sys
import threading

import chex
import jax.numpy as jnp
import numpy as np
import pytest

from jaxgen.train import Task, loop, optim
from jaxgen.train.workdir import LOCK_FILE, WorkdirBusy, check_schedule, lock_workdir
from jaxgen.validation import ConfigError
from tests.conftest import REPO, xla_flags
from tests.experiments.test_cli import TINY, assert_clean_error

# Takes the lock of the workdir argv[1], says so, and sleeps (a run in progress).
HOLDER = """
import sys, time
from jaxgen.train import lock_workdir
with lock_workdir(sys.argv[1]):
    print("locked", flush=True)
    time.sleep(600)
"""


def _hold(workdir: pathlib.Path) -> subprocess.Popen:
    """A process that holds ``workdir``'s lock (returns once it does)."""
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(workdir)],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    line = holder.stdout.readline()
    assert line == "locked\n", holder.stderr.read()
    return holder


def _kill(process: subprocess.Popen) -> None:
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=60)


def test_a_second_run_is_refused_until_the_holder_is_killed(tmp_path):
    holder = _hold(tmp_path)
    try:
        with pytest.raises(WorkdirBusy) as refused:
            with lock_workdir(tmp_path):
                pytest.fail("took a lock that another process holds")
        message = str(refused.value)
        for phrase in (str(tmp_path), f"process {holder.pid} ", socket.gethostname(), "started"):
            assert phrase in message
        assert "\n" not in message
    finally:
        _kill(holder)  # SIGKILL: no chance to clean up; the kernel drops the lock
    assert json.loads((tmp_path / LOCK_FILE).read_text())["pid"] == holder.pid  # its stale info
    with lock_workdir(tmp_path):
        assert json.loads((tmp_path / LOCK_FILE).read_text())["pid"] == os.getpid()
        with lock_workdir(tmp_path):  # nested in one process: held once, not refused
            pass
        assert json.loads((tmp_path / LOCK_FILE).read_text())["pid"] == os.getpid()
    assert (tmp_path / LOCK_FILE).read_text() == ""  # released
    _kill(_hold(tmp_path))  # and another process takes it again


def test_a_run_in_another_thread_is_refused(tmp_path):
    refusals = []

    def second_run():
        try:
            with lock_workdir(tmp_path):
                pass
        except WorkdirBusy as e:
            refusals.append(str(e))

    with lock_workdir(tmp_path):
        thread = threading.Thread(target=second_run)
        thread.start()
        thread.join(60)
    assert len(refusals) == 1 and f"process {os.getpid()} on host" in refusals[0]
    second_run()  # once released, it takes it
    assert len(refusals) == 1


def test_the_cli_refuses_a_busy_workdir_and_touches_nothing(tmp_path):
    workdir = tmp_path / "w"
    half_written = workdir / "checkpoints" / "4.orbax-checkpoint-tmp-1700000000"
    half_written.mkdir(parents=True)  # what the running run is saving right now
    (half_written / "state").write_text("bytes being written")
    (workdir / "metrics.jsonl").write_text('{"step": 2, "split": "train", "loss": 1.5}\n')
    before = {p: p.read_bytes() for p in workdir.rglob("*") if p.is_file() and p.name != LOCK_FILE}
    env = {**os.environ, "XLA_FLAGS": xla_flags(), "JAX_PLATFORMS": "cpu"}
    env["TFDS_DATA_DIR"] = str(tmp_path / "tfds")
    holder = _hold(workdir)
    try:
        result = subprocess.run(
            [sys.executable, "-m", "experiments.pixelcnn", "--workdir", str(workdir), TINY],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
    finally:
        _kill(holder)
    assert_clean_error(result, f"--workdir={workdir} is in use", f"process {holder.pid} on host")
    after = {p: p.read_bytes() for p in workdir.rglob("*") if p.is_file() and p.name != LOCK_FILE}
    assert after == before
    assert not (tmp_path / "tfds").exists()  # refused before preparing any data


def _linear_task() -> Task:
    """A one-parameter task that trains in milliseconds: fit the mean pixel."""

    def loss_fn(params, batch, key):
        del key
        loss = jnp.mean((batch["image"].mean(axis=(1, 2, 3)) - params["w"]) ** 2)
        return loss, {}

    def eval_fn(params, batch, key):
        del key
        return {"loss": (batch["image"].mean(axis=(1, 2, 3)) - params["w"]) ** 2}

    return Task(init=lambda key, batch: {"w": jnp.zeros(())}, loss_fn=loss_fn, eval_fn=eval_fn)


@pytest.fixture
def cosine_config(tiny_config):
    tiny_config.num_steps = 4
    tiny_config.batch_size = 200  # fewer batches in the final evaluation of the test split
    tiny_config.lr_schedule = "warmup_cosine"
    tiny_config.warmup_steps = 1
    tiny_config.checkpoint_every = 2
    tiny_config.eval_every = 4
    tiny_config.eval_max_examples = 16
    tiny_config.log_every = 2
    return tiny_config


def test_resuming_with_a_new_num_steps_is_refused_unless_allowed(cosine_config, tmp_path):
    task = _linear_task()
    loop.train_and_evaluate(task, cosine_config, tmp_path)  # finished at step 4
    rows = (tmp_path / "metrics.jsonl").read_text()
    longer = cosine_config.copy_and_resolve_references()
    longer.num_steps = 8  # the cosine decay of steps 1-3 would be stretched
    with pytest.raises(ConfigError) as refused:
        loop.train_and_evaluate(task, longer, tmp_path)
    message = str(refused.value)
    for phrase in (
        "num_steps=4",
        "num_steps=8",
        "--config.allow_schedule_change=True",
        "new --workdir",
        "--config.num_steps=4",
    ):
        assert phrase in message
    assert (tmp_path / "metrics.jsonl").read_text() == rows  # nothing written

    longer.allow_schedule_change = True
    state = loop.train_and_evaluate(task, longer, tmp_path)
    assert int(state.step) == 8
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [(r["step"], r["split"]) for r in rows if r["step"] > 4] == [
        (6, "train"),
        (8, "train"),
        (8, "eval"),
        (8, "test"),
    ]


def test_a_longer_constant_schedule_resumes(cosine_config, tmp_path):
    cosine_config.lr_schedule = "constant"
    task = _linear_task()
    loop.train_and_evaluate(task, cosine_config, tmp_path)
    cosine_config.num_steps = 6  # the same rates for steps 0-3: an uninterrupted 6-step run
    assert int(loop.train_and_evaluate(task, cosine_config, tmp_path).step) == 6


def test_check_schedule_compares_the_rates_of_the_steps_done(cosine_config):
    saved = json.loads(cosine_config.to_json())
    check_schedule(saved, cosine_config, step=4)  # unchanged
    cosine_config.num_steps = 40
    check_schedule(saved, cosine_config, step=1)  # step 0 has rate 0 under either warmup
    # Warmup to 1e-3 at step 1, then 1e-3 * (1 + cos(pi * (s - 1) / (num_steps - 1))) / 2:
    # at step 2, 1e-3 * (1 + cos(pi / 3)) / 2 = 7.5e-4 then, 1e-3 * (1 + cos(pi / 39)) / 2 now.
    with pytest.raises(ConfigError, match=r"step 2: 0\.00075 then, 0\.000998379 now"):
        check_schedule(saved, cosine_config, step=4)
    cosine_config.num_steps, cosine_config.learning_rate = 4, 2e-3
    with pytest.raises(ConfigError, match="learning_rate=0.001.*learning_rate=0.002"):
        check_schedule(saved, cosine_config, step=2)


def test_warm_restarts_continue_a_finished_cosine_run(cosine_config, tmp_path):
    task = _linear_task()
    loop.train_and_evaluate(task, cosine_config, tmp_path / "resumed")  # one cycle, 4 steps
    cosine_config.update(
        {
            "num_steps": 8,
            "lr_schedule": "warmup_cosine_restarts",
            "lr_cycle_steps": 4,
            "lr_cycle_decay": 0.5,
        }
    )
    # Each cycle: 0 at its start, its peak a step later (warmup 1), then the peak times
    # (1 + cos(pi * (s - 1) / 3)) / 2 = 0.75, 0.25; the second cycle's peak is half the first's.
    rates = np.asarray(optim.make_schedule(cosine_config)(np.arange(8)))
    np.testing.assert_allclose(rates, 1e-3 * np.array([0, 1, 0.75, 0.25, 0, 0.5, 0.375, 0.125]))
    resumed = loop.train_and_evaluate(task, cosine_config, tmp_path / "resumed")
    uninterrupted = loop.train_and_evaluate(task, cosine_config, tmp_path / "uninterrupted")
    assert int(resumed.step) == int(uninterrupted.step) == 8
    chex.assert_trees_all_close(resumed.params, uninterrupted.params, rtol=1e-6)


def test_warm_restarts_need_a_cycle_longer_than_the_warmup(cosine_config):
    cosine_config.lr_schedule = "warmup_cosine_restarts"
    with pytest.raises(ConfigError, match=r"needs lr_cycle_steps \(now None\)"):
        optim.make_schedule(cosine_config)
    cosine_config.lr_cycle_steps, cosine_config.lr_cycle_decay = 4, 0.0
    with pytest.raises(ConfigError, match="lr_cycle_decay=0.0 must be positive"):
        optim.make_schedule(cosine_config)
