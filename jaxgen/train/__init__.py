"""Training: state, optimizer, step factories, checkpoints, logging and the loop."""

from jaxgen.train.checkpoint import Checkpointer
from jaxgen.train.guard import TrainingDiverged
from jaxgen.train.loop import Task, evaluate, train_and_evaluate
from jaxgen.train.optim import make_optimizer, make_schedule
from jaxgen.train.preemption import Preempted
from jaxgen.train.state import TrainState
from jaxgen.train.step import jit_train_step, make_eval_step, make_train_step

__all__ = [
    "Checkpointer",
    "Preempted",
    "Task",
    "TrainState",
    "TrainingDiverged",
    "evaluate",
    "jit_train_step",
    "make_eval_step",
    "make_optimizer",
    "make_schedule",
    "make_train_step",
    "train_and_evaluate",
]
