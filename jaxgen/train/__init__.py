"""Training: state, optimizer, step factories, checkpoints, logging and the loop."""

from jaxgen.train.checkpoint import Checkpointer
from jaxgen.train.guard import TrainingDiverged
from jaxgen.train.loop import (
    BEST_DIR,
    Task,
    best_metric_value,
    check_run,
    evaluate,
    split_batches,
    train_and_evaluate,
)
from jaxgen.train.optim import make_optimizer, make_schedule
from jaxgen.train.preemption import Preempted
from jaxgen.train.state import TrainState
from jaxgen.train.step import jit_train_step, make_eval_step, make_train_step
from jaxgen.train.workdir import WorkdirBusy, lock_workdir

__all__ = [
    "BEST_DIR",
    "Checkpointer",
    "Preempted",
    "Task",
    "TrainState",
    "TrainingDiverged",
    "WorkdirBusy",
    "best_metric_value",
    "check_run",
    "evaluate",
    "jit_train_step",
    "lock_workdir",
    "make_eval_step",
    "make_optimizer",
    "make_schedule",
    "make_train_step",
    "split_batches",
    "train_and_evaluate",
]
