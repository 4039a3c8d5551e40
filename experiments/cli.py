"""Command-line plumbing shared by the experiments.

    python -m experiments.<name> --workdir DIR [--config=PATH[:VARIANT,...]] [--config.KEY=V ...]
        [--distributed | --coordinator_address=HOST:PORT --num_processes=N --process_id=I]

Known user errors (unknown or mistyped config keys, bad values, missing or
corrupt data, an unwritable workdir, a workdir holding another model's
checkpoint or in use by another run) end with a one-paragraph message on
stderr and exit code 2. They are the exceptions of a user-error type
(``USER_ERRORS``: ``ConfigError``, ``WorkdirBusy``,
``DatasetError``, ``OSError`` and this module's ``UsageError``), wherever they
are raised; any other exception, such as a ``ValueError`` or ``TypeError`` from
inside a library, is a bug and keeps its traceback. A diverged run
(``TrainingDiverged``) exits with code 1 and a message; SIGTERM/SIGINT save a
checkpoint and exit with 128 + the signal number (143, 130), so schedulers see
an unfinished run to requeue.
Set ``JAXGEN_TRACEBACK=1`` to get the full traceback instead.

Multi-process runs: ``--distributed`` joins a run whose processes JAX detects
(TPU pod slices, SLURM, Open MPI, Kubernetes); the three explicit flags name
them on any other cluster. See ``docs/scaling.md``.
"""

import os
import pathlib
import re
import sys
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

from absl import flags
from ml_collections import ConfigDict, config_flags

from jaxgen import parallel
from jaxgen.data import DatasetError
from jaxgen.train import Preempted, TrainingDiverged
from jaxgen.train.compile_cache import enable_compilation_cache
from jaxgen.train.workdir import WorkdirBusy, lock_workdir
from jaxgen.validation import ConfigError

EXIT_FAILURE = 1
EXIT_USAGE = 2


class UsageError(Exception):
    """A command-line error (a flag, a config key, the workdir) whose message says the fix."""


USER_ERRORS = (UsageError, ConfigError, DatasetError, OSError, TrainingDiverged, WorkdirBusy)


def main(
    run: Callable[[ConfigDict, pathlib.Path], Any],
    default_config: str | pathlib.Path,
    argv: Sequence[str] | None = None,
) -> None:
    """Parses the flags and calls ``run(config, workdir)``.

    Args:
      run: the experiment, called with the resolved config and the workdir.
      default_config: the config file used when ``--config`` is not given.
      argv: the command line, program name first; default ``sys.argv``.
    """
    argv = list(sys.argv if argv is None else argv)

    def experiment() -> None:
        config, workdir, distributed = parse_flags(argv, default_config)
        if distributed is not None:
            parallel.initialize_distributed(**distributed)
        enable_compilation_cache()  # a rerun or resume loads its compiled steps
        check_workdir(workdir)
        with lock_workdir(workdir):  # the whole experiment, not only its training loop
            run(config, workdir)

    guarded(experiment)


def guarded(command: Callable[[], Any]) -> None:
    """Calls ``command()``, turning user errors into a one-paragraph message and an exit code.

    User errors (``is_user_error``) exit with 2 (a diverged run with 1); a
    ``Preempted`` run exits with 128 + the signal number; any other exception
    keeps its traceback, as does every error when ``JAXGEN_TRACEBACK`` is set.
    """
    try:
        command()
    except Preempted as e:
        print(str(e), file=sys.stderr)
        sys.exit(128 + (e.signum or 15))  # 15: SIGTERM, what a preemption notice stands for
    except Exception as e:
        if os.environ.get("JAXGEN_TRACEBACK") or not is_user_error(e):
            raise
        _exit(str(e), EXIT_FAILURE if isinstance(e, TrainingDiverged) else EXIT_USAGE)


def parse_command_flags(
    argv: Sequence[str], define: Callable[[flags.FlagValues], None], usage: str
) -> flags.FlagValues:
    """Parses the flags of a command that takes no config (``experiments.sample``, ``evaluate``).

    Args:
      argv: the command line, program name first.
      define: defines the command's flags on the given ``FlagValues``.
      usage: one line on how to call the command, added to flag errors.

    Raises:
      UsageError: an unknown flag, a bad value or a missing required flag.
    """
    flag_values = flags.FlagValues()
    define(flag_values)
    try:
        flag_values(list(argv))
    except flags.Error as e:
        raise UsageError(f"{_last_error_line(str(e))}. Usage: {usage}") from None
    return flag_values


def is_user_error(error: Exception) -> bool:
    """Whether ``error`` is one whose message alone tells the user what to fix.

    Decided by type (``USER_ERRORS``), not by where it was raised: a
    ``ConfigError`` re-raised by a helper counts, a ``ValueError`` or a
    ``TypeError`` from a library does not.
    """
    return isinstance(error, USER_ERRORS)


def parse_flags(
    argv: Sequence[str], default_config: str | pathlib.Path
) -> tuple[ConfigDict, pathlib.Path, dict[str, Any] | None]:
    """The config, the workdir and the multi-process arguments from ``argv``.

    Returns:
      (config with variants and overrides applied, workdir, keyword arguments
      of ``parallel.initialize_distributed`` or None for a one-process run).

    Raises:
      UsageError: a flag, a config key or a value is wrong.
    """
    flag_values = flags.FlagValues()
    flags.DEFINE_string("workdir", None, "Output folder; rerun to resume.", flag_values=flag_values)
    flags.mark_flag_as_required("workdir", flag_values=flag_values)
    flags.DEFINE_bool(
        "distributed",
        False,
        "Join a multi-process run whose processes JAX detects (TPU pod, SLURM, MPI, Kubernetes).",
        flag_values=flag_values,
    )
    flags.DEFINE_string(
        "coordinator_address", None, "host:port of process 0.", flag_values=flag_values
    )
    flags.DEFINE_integer("num_processes", None, "Processes in the run.", flag_values=flag_values)
    flags.DEFINE_integer("process_id", None, "This process's index.", flag_values=flag_values)
    try:
        config_flags.DEFINE_config_file(
            "config",
            str(default_config),
            "Config file, optionally with variants: path.py:tiny,cpu.",
            flag_values=flag_values,
            sys_argv=list(argv),
        )
        flag_values(list(argv))
        config = flag_values.config
        config.to_dict()  # raises if the config file failed to load
    except (AttributeError, KeyError) as e:  # an override names a key the config lacks
        raise UsageError(_unknown_key_message(e, argv, default_config)) from None
    except flags.Error as e:
        raise UsageError(f"{_last_error_line(str(e))}. {_usage(default_config)}") from None
    distributed = {
        name: flag_values[name].value
        for name in ("coordinator_address", "num_processes", "process_id")
    }
    if not flag_values.distributed and set(distributed.values()) == {None}:
        distributed = None
    return config, pathlib.Path(flag_values.workdir), distributed


def check_workdir(workdir: pathlib.Path) -> None:
    """Creates ``workdir`` if needed; raises UsageError unless it is a writable folder."""
    try:
        workdir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UsageError(
            f"Cannot create --workdir={workdir}: {e.strerror}. Choose a folder you can write to."
        ) from None
    if not os.access(workdir, os.W_OK | os.X_OK):
        raise UsageError(
            f"Cannot write to --workdir={workdir}: permission denied. "
            "Choose a folder you can write to."
        )


def _unknown_key_message(
    error: Exception, argv: Sequence[str], default_config: str | pathlib.Path
) -> str:
    """Names the ``--config.KEY`` argument whose key does not exist (and a likely fix)."""
    text = f"{error} {error.__context__ or ''}"
    key = re.search(r"\w+", text).group(0)
    hint = re.search(r'Did you mean "\w+" instead of "\w+"\?', text)
    bad = [a for a in argv if a.startswith("--config.") and key in re.split(r"[.=]", a)]
    return (
        f"Unknown config key {key!r}"
        + (f" in {bad[0]}. " if bad else ". ")
        + (f"{hint.group(0)} " if hint else "")
        + f"The keys are those set in {_config_file(argv, default_config)}; "
        "override one with --config.KEY=VALUE."
    )


def _config_file(argv: Sequence[str], default_config: str | pathlib.Path) -> str:
    """The config file named by ``--config=PATH[:VARIANTS]``, else the default."""
    for arg in argv:
        if arg.startswith("--config="):
            return arg.split("=", 1)[1].split(":")[0]
    return str(default_config)


def _last_error_line(message: str) -> str:
    """The flag error's first line plus, if it quotes a traceback, its final error line."""
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    if any(line.startswith("Traceback") for line in lines):
        lines = [lines[0], lines[-1]]
    return " ".join(lines).rstrip(".")


def _usage(default_config: str | pathlib.Path) -> str:
    """One line on how to call an experiment."""
    return (
        "Usage: python -m experiments.<name> --workdir DIR [--config=PATH[:VARIANT,...]] "
        f"[--config.KEY=VALUE ...], with the keys of the config file (default {default_config})."
    )


def _exit(message: str, code: int) -> NoReturn:
    """Prints ``message`` as one paragraph on stderr and exits with ``code``."""
    paragraph = " ".join(message.split())
    print(f"Error: {paragraph}", file=sys.stderr)
    sys.exit(code)


def max_examples(value: str) -> int | None | str:
    """``--max_examples``: ``"run"``, None for ``all``, or a positive int."""
    if value in ("run", "all"):
        return None if value == "all" else value
    if not value.isdigit() or int(value) < 1:
        raise ConfigError(f"--max_examples={value} must be run, all or a positive integer.")
    return int(value)
