"""A workdir holds one run: an exclusive lock, and the refusal to resume with a new LR schedule.

Two runs writing one workdir would interleave their ``metrics.jsonl`` rows and
overwrite each other's checkpoints. ``lock_workdir`` takes an exclusive
``fcntl.flock`` on ``WORKDIR/run.lock`` for the whole run and writes the
holder's pid, host, start time and command into it; a second run is refused
with ``WorkdirBusy`` naming them, before it touches anything. The kernel
releases the lock when the holder's process ends, however it ends (SIGKILL
included), so a killed run never blocks the next one. In a multi-process run
process 0 takes the lock and tells the others whether it got it. Nested
``lock_workdir`` calls on one workdir in one thread (the CLI around the
experiment, the loop inside it) take it once. ``flock`` works on local disks
and, on Linux, on NFS (emulated with POSIX locks).

``check_schedule`` refuses to resume a checkpoint when the config's learning-rate
schedule gives other rates for the steps already done (e.g. a new ``num_steps``
stretches a cosine decay), unless ``allow_schedule_change`` is True.
"""

import collections
import contextlib
import datetime
import fcntl
import json
import os
import pathlib
import shlex
import socket
import sys
import threading
from collections.abc import Iterator, Mapping
from typing import Any

import jax
import numpy as np
from jax.experimental import multihost_utils
from ml_collections import ConfigDict

from jaxgen.train import optim
from jaxgen.validation import ConfigError

LOCK_FILE = "run.lock"
MAX_COMMAND_CHARS = 300
# Keys of the config that define the learning-rate schedule (``optim.make_schedule``).
SCHEDULE_KEYS = (
    "learning_rate",
    "lr_schedule",
    "warmup_steps",
    "num_steps",
    "lr_cycle_steps",
    "lr_cycle_decay",
)
# (lock file, thread) -> depth of nested ``lock_workdir`` calls holding it.
_held: collections.Counter[tuple[pathlib.Path, int]] = collections.Counter()


class WorkdirBusy(Exception):
    """Another run holds the workdir's lock; the message names it."""


@contextlib.contextmanager
def lock_workdir(workdir: str | os.PathLike) -> Iterator[None]:
    """Holds ``workdir``'s lock for the body of the ``with`` statement.

    Call it on every process of a run (process 0 takes the lock).

    Args:
      workdir: an existing folder.

    Raises:
      WorkdirBusy: another run (a live process) holds it.
    """
    path = (pathlib.Path(workdir) / LOCK_FILE).resolve()
    held = (path, threading.get_ident())  # another thread's run is refused like a process's
    if _held[held]:
        _held[held] += 1
        try:
            yield
        finally:
            _held[held] -= 1
        return
    fd, holder = _acquire(path) if jax.process_index() == 0 else (None, None)
    got = fd is not None
    if jax.process_count() > 1:
        got = bool(multihost_utils.broadcast_one_to_all(np.int32(got)))
    if not got:
        raise WorkdirBusy(_busy_message(pathlib.Path(workdir), holder))
    _held[held] += 1
    try:
        yield
    finally:
        _held[held] -= 1
        if fd is not None:
            os.ftruncate(fd, 0)  # a finished run leaves an empty lock file
            os.close(fd)  # releases the lock


def _holder_info() -> dict[str, Any]:
    """What the lock file records about this process: pid, host, start time, command.

    The command is on one line, cut to ``MAX_COMMAND_CHARS``.
    """
    command = " ".join(shlex.join(sys.orig_argv).split())
    if len(command) > MAX_COMMAND_CHARS:
        command = command[: MAX_COMMAND_CHARS - 3] + "..."
    return {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "started": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "command": command,
    }


def _acquire(path: pathlib.Path) -> tuple[int | None, dict | None]:
    """(fd holding the lock, None), or (None, the holder's info) if another process holds it."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        try:
            holder = json.loads(os.pread(fd, 65536, 0))
        except ValueError:  # the holder has not written its info yet
            holder = None
        os.close(fd)
        return None, holder
    os.ftruncate(fd, 0)
    os.pwrite(fd, json.dumps(_holder_info()).encode() + b"\n", 0)
    return fd, None


def _busy_message(workdir: pathlib.Path, holder: Mapping[str, Any] | None) -> str:
    """One paragraph: who holds ``workdir`` and what to do."""
    if holder is None:
        who = (
            "another run (process 0 of this run names it)"
            if jax.process_index()
            else "another run that has not yet written who it is"
        )
        stop = "stop it"
    else:
        who = (
            f"another run: process {holder['pid']} on host {holder['host']}, started "
            f"{holder['started']} ({holder['command']})"
        )
        stop = f"stop it with kill {holder['pid']} on {holder['host']}"
    return (
        f"--workdir={workdir} is in use by {who}. Two runs in one workdir would mix their "
        "metrics.jsonl rows and checkpoints, so this run stops without touching it. Wait for "
        f"that run to finish, or {stop} (it saves a checkpoint that the same command resumes "
        "from), or choose another --workdir. A run that was killed outright holds no lock."
    )


def check_schedule(saved: Mapping[str, Any], config: ConfigDict, step: int) -> None:
    """Refuses to resume when the learning rates of the steps already done would change.

    Resuming continues the optimizer at ``step``; the result equals an
    uninterrupted run of ``config`` only if ``config``'s schedule gave the same
    rates to steps ``[0, step)`` as the saved run's. A longer constant-rate run
    passes; a new ``num_steps`` under a cosine decay does not.

    Args:
      saved: the config saved with the checkpoint (a dict).
      config: the config of the run that resumes.
      step: the checkpoint's step (updates done).

    Raises:
      ConfigError: the rates differ and ``config.allow_schedule_change`` is not True.
    """
    current = json.loads(config.to_json())
    changed = [name for name in SCHEDULE_KEYS if saved.get(name) != current.get(name)]
    if not changed or config.get("allow_schedule_change", False):
        return
    steps = np.arange(step)
    before = np.asarray(optim.make_schedule(ConfigDict(dict(saved)))(steps))
    after = np.asarray(optim.make_schedule(config)(steps))
    if np.allclose(before, after, rtol=1e-6, atol=0.0):
        return
    was = ", ".join(f"{name}={saved.get(name)!r}" for name in changed)
    now = ", ".join(f"{name}={current.get(name)!r}" for name in changed)
    flags = " ".join(f"--config.{name}={saved.get(name)}" for name in changed)
    first = int(np.flatnonzero(~np.isclose(before, after, rtol=1e-6, atol=0.0))[0])
    raise ConfigError(
        f"The workdir's checkpoint (step {step}) was trained with {was}; with {now} the "
        f"learning-rate schedule changes for steps already done (step {first}: "
        f"{before[first]:.6g} then, {after[first]:.6g} now), so resuming would not continue "
        "the run the config describes. To resume with the new schedule on purpose, add "
        "--config.allow_schedule_change=True; to train with it from the start, use a new "
        f"--workdir; to finish the saved run, pass {flags}."
    )
