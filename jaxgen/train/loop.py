"""The generic train-and-evaluate loop that every experiment runs.

A model family plugs in through a ``Task``; the loop owns everything else:
data, keys, sharding, optimizer, checkpoints, evaluation, logging.

    for step in [start, num_steps):
        batch = train_batches[step]                      # pure function of (seed, step)
        state, metrics = train_step(state, batch, train_key)  # fold_in(train_key, step) inside
        log every log_every; evaluate every eval_every (and ``task.evaluate_samples``);
    checkpoint every checkpoint_every
    evaluate on the test split (all of it by default), write samples, save the final checkpoint

Resuming from the latest checkpoint therefore replays exactly the batches and
random numbers of an uninterrupted run. Every train and eval row carries
``elapsed_s``, the run's wall-clock seconds since step 0 (compilation and
periodic evaluation included), carried across resumes in the checkpoints' meta.

Failures: a step with a non-finite loss or gradient is skipped inside the
compiled step (``guard``); ``max_nonfinite_steps`` such steps in a row (checked
when metrics are logged and before every checkpoint) raise ``TrainingDiverged``.
SIGTERM or SIGINT saves a checkpoint at the current step and raises
``Preempted`` (``preemption``). A run killed outright resumes from the latest
complete checkpoint: Orbax commits a checkpoint atomically and removes
half-written ones. A second run on a workdir in use raises ``WorkdirBusy``
before touching it, and a resume whose learning-rate schedule differs for the
steps already done is refused (``workdir``).
"""

import dataclasses
import json
import pathlib
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import Mesh
from ml_collections import ConfigDict

from jaxgen import data, keys, parallel
from jaxgen.train import optim, step
from jaxgen.train.checkpoint import Checkpointer
from jaxgen.train.guard import METRIC as NONFINITE_METRIC
from jaxgen.train.guard import NonFiniteStreak
from jaxgen.train.logging import MetricsWriter, progress_bar
from jaxgen.train.preemption import Preempted, PreemptionWatcher
from jaxgen.train.record import run_record
from jaxgen.train.state import TrainState
from jaxgen.train.workdir import check_schedule, lock_workdir
from jaxgen.validation import ConfigError

# Config keys that must match a checkpoint for it to be resumed.
MODEL_KEYS = ("model", "dataset", "num_levels")
# The folder, beside ``checkpoints/``, of the variables with the best ``Task.best_metric``.
BEST_DIR = "checkpoints_best"
# Consecutive skipped (non-finite) steps tolerated when the config has no ``max_nonfinite_steps``.
DEFAULT_MAX_NONFINITE_STEPS = 10
# Train steps dispatched ahead of the last finished one. Unbounded, a fast step on simulated CPU
# devices queued hundreds of programs and XLA's all-reduce rendezvous aborted the run (a VAE on 2
# devices of 2 cores, after ~130 steps); two ahead keep the dispatch overlapped.
_MAX_STEPS_IN_FLIGHT = 2


@dataclasses.dataclass(frozen=True)
class Inference:
    """What a trained model of a family does for its users (``jaxgen.load_run``'s ``Run``).

    Every function takes the evaluation params first; images are int [B, H, W, C]
    in [0, num_levels).

    Attributes:
      sample: ``(params, key, shape, **options) -> int [N, H, W, C]`` for
        ``shape = (N, H, W, C)``; the options are the family's (the autoregressive
        sampler's ``temperature``, ``first_pixel``, ``labels``); None: the family
        has no sampler (the autoencoder).
      density: what ``log_likelihood`` returns: ``"exact"``, ``"lower bound"`` or
        ``"estimate"``; None: the family defines no density.
      density_note: how it is computed, e.g. ``"IWAE bound, K=100"``, or why
        there is none.
      log_likelihood: ``(params, images, key, labels) -> float [B]`` log p(x) in
        nats per image (``labels``: int [B] or None); None when ``density`` is None.
      complete: ``(params, key, images, known, **options) -> int [B, H, W, C]``
        keeping the pixels where ``known`` (bool [B, H, W]) is True; None: the
        family cannot complete.
      encode: ``(params, images) -> float [B, D]`` the code (the posterior mean
        of a VAE); None without an encoder.
      decode: ``(params, codes) -> float [B, H, W, C]`` the decoder's mean in
        [0, 1]; None without a decoder.
      sample_metrics: ``(params, key) -> {name: float}`` sample-quality metrics
        (a GAN's FID, precision/recall, density/coverage); None if not measured.
    """

    sample: Callable[..., Any] | None
    density: str | None = None
    density_note: str = ""
    log_likelihood: Callable[..., Any] | None = None
    complete: Callable[..., Any] | None = None
    encode: Callable[..., Any] | None = None
    decode: Callable[..., Any] | None = None
    sample_metrics: Callable[..., dict[str, float]] | None = None


@dataclasses.dataclass(frozen=True)
class Task:
    """What a model family provides to the loop.

    Attributes:
      init: ``(key, batch) -> params`` from an example batch (int images
        [B, H, W, C] under ``"image"``, int32 labels [B] under ``"label"``).
      loss_fn: ``(params, batch, key) -> (loss, metrics)``: the scalar loss
        averaged over the batch and a dict of scalar metrics; None when
        ``make_train_step`` is given.
      eval_fn: ``(params, batch, key) -> {name: float [B]}``, per-example
        metrics; the loop averages them exactly over a split.
      write_samples: ``(params, key, workdir, step, examples) -> [paths]``
        writes picture files under ``workdir/samples`` once training is done
        (sampling can cost more than training steps); ``examples`` is the first
        ``num_samples`` test examples (numpy, this process's share) for
        completions or reconstructions. Called on every process; write files
        on process 0 only.
      loss_takes_step: ``loss_fn`` is ``(params, batch, key, step) -> (loss,
        metrics)``, for a loss that changes during training (e.g. a KL weight
        from an Optax schedule); see ``step.make_train_step``.
      make_optimizer: ``config -> (optimizer, schedule)``; default: the config's.
        The optimizer is whatever ``init_state`` and the train step take (an
        Optax transformation unless the task builds its own state and step).
      init_state: ``(params, optimizer, ema_decay) -> TrainState`` at step 0;
        default ``TrainState.create``. A GAN builds both players' states here.
      make_train_step: ``(optimizer, schedule, mesh) -> train_step`` for models
        that need their own update (GANs); default ``step.make_train_step`` on
        ``loss_fn``. Build it with ``step.jit_train_step``.
      evaluate_samples: ``(params, key, workdir, step) -> {name: float}``,
        metrics of whole samples (FID, mode coverage) computed at every
        evaluation and logged as an "eval" row; it may also write pictures
        (on process 0 only). Called on every process.
      best_metric: a metric of ``evaluate_samples`` to minimise: the loop keeps
        the variables with its lowest value so far in ``workdir/checkpoints_best``
        (the value and step in the checkpoint's meta), besides the latest states.
      check_config: ``config -> None`` raises a ConfigError naming a bad value of
        a config key the task reads (e.g. a sampling method used only once
        training is done); the loop calls it before preparing data or training.
      family: the family's name in ``tasks.FAMILIES`` (``"autoregressive"``,
        ``"vae"``, ...), saved with every checkpoint so that ``jaxgen.load_run``
        rebuilds the task; "" for a task of no family.
      modules: the Flax modules by role (``{"model": ...}``, or ``{"generator":
        ..., "discriminator": ...}``), saved with every checkpoint by class and
        constructor arguments (``jaxgen.runs.module_spec``), so that a run loads
        with the modules it trained, whatever its config says.
      inference: what the trained model does: sampling, log-likelihood,
        completion, codes (see ``Inference``); None: ``load_run`` can restore
        the params but not use them.
      prepare_eval: ``(params, key, final) -> (eval_params, row)``, called once
        per evaluation before its batches, for what is computed once for a whole
        split (an RBM's log Z by annealed importance sampling): ``eval_fn`` then
        receives ``eval_params`` as its params, and ``row`` (``{name: float}``)
        joins the evaluation's row. ``key`` is the evaluation key; ``final`` is
        True for the test evaluation after training (and ``jaxgen.load_run``'s
        evaluations and log-likelihoods, which receive ``eval_params`` too),
        False for the periodic ones, which may be cheaper. None: ``eval_fn``
        receives the params.
    """

    init: Callable[[jax.Array, Mapping[str, np.ndarray]], Any]
    loss_fn: step.LossFn | None
    eval_fn: step.EvalFn
    write_samples: Callable[..., list[pathlib.Path]] | None = None
    loss_takes_step: bool = False
    make_optimizer: Callable[[ConfigDict], tuple[Any, optax.Schedule]] = optim.make_optimizer
    init_state: Callable[[Any, Any, float | None], TrainState] = TrainState.create
    make_train_step: Callable[[Any, optax.Schedule, Mesh], step.StepFn] | None = None
    evaluate_samples: Callable[[Any, jax.Array, pathlib.Path, int], dict[str, float]] | None = None
    best_metric: str | None = None
    check_config: Callable[[ConfigDict], None] | None = None
    family: str = ""
    modules: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    inference: Inference | None = None
    prepare_eval: Callable[[Any, jax.Array, bool], tuple[Any, dict[str, float]]] | None = None


def prepare_eval(task: Task, params: Any, key: jax.Array, final: bool) -> tuple[Any, dict]:
    """``task.prepare_eval(params, key, final)``, or ``(params, {})`` for a task without one."""
    if task.prepare_eval is None:
        return params, {}
    return task.prepare_eval(params, key, final)


def check_config(config: ConfigDict) -> None:
    """Raises a ConfigError naming the first bad value among the loop's keys (before training)."""
    if not isinstance(config.seed, int | np.integer) or not 0 <= config.seed < 2**63:
        raise ConfigError(f"seed={config.seed!r} must be an integer in [0, 2**63).")
    for name in (
        "batch_size",
        "eval_every",
        "checkpoint_every",
        "keep_checkpoints",
        "log_every",
        "num_samples",
    ):
        if config[name] < 1:
            raise ConfigError(f"{name}={config[name]} must be a positive integer.")
    if config.num_steps < 0:
        raise ConfigError(f"num_steps={config.num_steps} must be non-negative.")
    if _max_nonfinite_steps(config) < 1:
        raise ConfigError(
            f"max_nonfinite_steps={_max_nonfinite_steps(config)} must be a positive integer."
        )
    if config.ema_decay is not None and not 0.0 < config.ema_decay < 1.0:
        raise ConfigError(f"ema_decay={config.ema_decay} must be in (0, 1), or None for no EMA.")
    for name in ("eval_max_examples", "test_max_examples"):
        if config[name] is not None and config[name] < 1:
            raise ConfigError(f"{name}={config[name]} must be positive, or None (full split).")
    if config.num_samples % jax.process_count():  # each process shows its share of the examples
        raise ConfigError(
            f"num_samples={config.num_samples} must be divisible by the number of processes, "
            f"{jax.process_count()}."
        )


def evaluate(
    eval_step: Callable,
    params: Any,
    batches: Iterable[Mapping[str, np.ndarray]],
    key: jax.Array,
    mesh: Mesh | None = None,
) -> dict[str, float]:
    """Exact averages of a task's per-example metrics over any iterable of batches.

    Each batch's sums stay on the device (the loop does not wait for them)
    and are fetched all at once after the last batch: one host transfer per
    split, not one per batch. The totals are then added on the host in
    float64, in batch order; a float32 running sum on the device drifts by
    about 1e-6 (relative) over the 10k-image test split.

    Args:
      eval_step: from ``step.make_eval_step`` (with the same ``mesh``).
      params: the params to evaluate.
      batches: this process's batches (numpy or jax arrays of one size); a
        bool ``mask`` [B] marks the real examples (padding is False); a batch
        without ``mask`` counts all its examples.
      key: the eval key; batch ``i`` gets ``fold_in(key, i)``.
      mesh: the data mesh; default all devices.

    Returns:
      {name: mean over the examples} and ``num_examples``.

    Raises:
      ValueError: ``batches`` holds no examples.
    """
    mesh = parallel.make_mesh() if mesh is None else mesh
    on_device = []
    for i, batch in enumerate(batches):
        if "mask" not in batch:
            batch = {**batch, "mask": np.ones(len(next(iter(batch.values()))), bool)}
        sharded = parallel.shard_batch(batch, mesh)
        on_device.append(eval_step(params, sharded, jax.random.fold_in(key, i)))
    totals: dict[str, float] = {}
    for sums in jax.device_get(on_device):
        for name, value in sums.items():
            totals[name] = totals.get(name, 0.0) + float(value)
    count = int(totals.pop("num_examples", 0))
    if not count:
        raise ValueError("There are no examples to evaluate (no batch, or every mask False).")
    return {**{name: total / count for name, total in totals.items()}, "num_examples": count}


def split_batches(
    config: ConfigDict, split: str, max_examples: int | None = None
) -> Iterator[dict[str, np.ndarray]]:
    """This process's padded eval batches of ``split``, limited to its first examples.

    Args:
      config: the experiment config (dataset, batch size, levels, binarization).
      split: the split.
      max_examples: keep only the split's first ``max_examples`` examples (the
        ``mask`` of the rest is False, the batches past them are not read); None: all.

    Yields:
      Batches of ``config.batch_size // process_count`` with a bool ``mask``.
    """
    for i, batch in enumerate(_eval_batches(config, split, config.batch_size)):
        if max_examples is not None:
            first = i * config.batch_size
            if first >= max_examples:
                return
            local = len(batch["mask"])
            index = first + jax.process_index() * local + np.arange(local)
            batch = {**batch, "mask": batch["mask"] & (index < max_examples)}
        yield batch


def check_run(
    task: Task, config: ConfigDict, mesh: Mesh | None = None
) -> tuple[Any, optax.Schedule]:
    """Every check of a run that needs no data: what ``train_and_evaluate`` does first.

    In order: the loop's keys (``check_config``), the task itself, the task's
    own keys (``Task.check_config``), the batch size against the devices, the
    optimizer (``Task.make_optimizer``), the input pipeline's arguments
    (``data.check_train_args``: levels, binarization, seed, the batch size
    against the processes and the split) and the model's constructor
    arguments: the step-0 state is traced abstractly (``jax.eval_shape`` of
    ``Task.init`` and ``Task.init_state`` on an int32 batch of the dataset's
    image shape), so a bad model argument raises here, before the data is
    prepared (which may download). Nothing is prepared, compiled or written.
    ``experiments.compare`` calls it for every model before training the first.

    Args:
      task: the model family's functions.
      config: the experiment config.
      mesh: the data mesh; default all devices.

    Returns:
      ``task.make_optimizer(config)``: (optimizer, learning-rate schedule).

    Raises:
      ConfigError: a bad config value or task, named.
    """
    mesh = mesh or parallel.make_mesh()
    check_config(config)
    _check_task(task)
    if task.check_config is not None:
        task.check_config(config)
    parallel.check_batch_size(config.batch_size, mesh)
    tx, schedule = task.make_optimizer(config)
    rng = keys.make_keys(config.seed)
    info = data.check_train_args(config.dataset, **_pipeline_args(config, rng))
    local = config.batch_size // jax.process_count()
    example = {  # the shapes of train_batches[0]
        "image": jax.ShapeDtypeStruct((local, *info.image_shape), jnp.int32),
        "label": jax.ShapeDtypeStruct((local,), jnp.int32),
    }
    jax.eval_shape(_init_fn(task, tx, config), rng.init, example)  # traces, compiles nothing
    return tx, schedule


def train_and_evaluate(
    task: Task, config: ConfigDict, workdir: str | pathlib.Path, *, mesh: Mesh | None = None
) -> TrainState:
    """Trains ``task`` as ``config`` says, resuming from ``workdir``'s latest checkpoint.

    Args:
      task: the model family's functions.
      config: the experiment config (see ``experiments/configs``).
      workdir: output folder: ``metrics.jsonl``, ``tensorboard/``,
        ``checkpoints/``, ``samples/``, ``config.json``.
      mesh: the data mesh; default all devices.

    Returns:
      The final TrainState.

    Raises:
      ValueError: a bad config value, or ``workdir`` holds a checkpoint of a
        different model or of another learning-rate schedule (``check_schedule``).
      WorkdirBusy: another run is using ``workdir`` (``lock_workdir``).
      jaxgen.data.DatasetError: the dataset cannot be prepared.
      TrainingDiverged: ``max_nonfinite_steps`` steps in a row were non-finite.
      Preempted: SIGTERM/SIGINT arrived; a checkpoint at the current step was saved.
    """
    mesh = mesh or parallel.make_mesh()
    tx, schedule = check_run(task, config, mesh)  # before the data is prepared (downloaded)
    workdir = pathlib.Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    with (
        lock_workdir(workdir),
        Checkpointer(workdir / "checkpoints", config.keep_checkpoints) as checkpointer,
    ):
        _check_resumable(checkpointer, config)
        info = data.dataset_info(config.dataset, data_dir=config.data_dir)
        data.prepare(config.dataset, data_dir=config.data_dir, raw_dir=config.raw_dir)
        rng = keys.make_keys(config.seed)
        train_batches = data.train_batches(config.dataset, **_pipeline_args(config, rng))
        record = run_record(
            task.family, task.modules, info.image_shape, config.num_levels, info.num_classes
        )
        state = _init_state(task, tx, config, rng.init, train_batches[0], mesh)
        elapsed_before = 0.0  # wall-clock seconds of the run up to the restored checkpoint
        if checkpointer.latest_step() is not None:
            state = checkpointer.restore(checkpointer.latest_step(), state)
            elapsed_before = checkpointer.restore_meta(checkpointer.latest_step()).get(
                "elapsed_s", 0.0
            )
        if jax.process_index() == 0:
            (workdir / "config.json").write_text(config.to_json(indent=2) + "\n")
        if checkpointer.latest_step() == config.num_steps:
            _report(
                workdir, f"Nothing to do: the final checkpoint (step {config.num_steps}) exists."
            )
            return state
        if task.make_train_step is None:
            train_step = step.make_train_step(
                task.loss_fn,
                tx,
                mesh,
                schedule=schedule,
                ema_decay=config.ema_decay,
                loss_takes_step=task.loss_takes_step,
            )
        else:
            train_step = task.make_train_step(tx, schedule, mesh)
        eval_step = step.make_eval_step(task.eval_fn, mesh)
        with MetricsWriter(workdir) as writer, PreemptionWatcher() as watcher:
            start = int(jax.device_get(state.step))
            writer.discard_after(start)
            batches = train_batches.iterate(start)
            bar = progress_bar(start, config.num_steps)
            streak = NonFiniteStreak(_max_nonfinite_steps(config))
            pending: list[tuple[int, dict[str, jax.Array]]] = []
            tick = clock_start = time.perf_counter()

            def elapsed() -> float:
                return elapsed_before + time.perf_counter() - clock_start

            def meta() -> dict:
                return {"config": config.to_dict(), "elapsed_s": elapsed(), **record}

            for done in range(start + 1, config.num_steps + 1):
                batch = parallel.shard_batch(next(batches), mesh)
                state, metrics = train_step(state, batch, rng.train)
                pending.append((done, metrics))
                if len(pending) > _MAX_STEPS_IN_FLIGHT:
                    jax.block_until_ready(pending[-_MAX_STEPS_IN_FLIGHT - 1][1])
                bar.update()
                if done % config.log_every == 0 or done == config.num_steps:
                    pending = jax.device_get(pending)
                    streak.update(pending)
                    row = _mean([metrics for _, metrics in pending])
                    seconds = time.perf_counter() - tick
                    row["examples_per_sec"] = len(pending) * config.batch_size / seconds
                    row["elapsed_s"] = elapsed()
                    writer.write(done, "train", row)
                    bar.set_postfix(
                        loss=f"{row['loss']:.4g}", ex_s=f"{row['examples_per_sec']:.0f}"
                    )
                    pending = []
                if done % config.eval_every == 0 or done == config.num_steps:
                    split = split_batches(config, info.eval_split, config.eval_max_examples)
                    params, extra = prepare_eval(task, state.eval_params, rng.eval, False)
                    row = evaluate(eval_step, params, split, rng.eval, mesh)
                    writer.write(done, "eval", {**row, **extra, "elapsed_s": elapsed()})
                    if task.evaluate_samples is not None:
                        key = jax.random.fold_in(rng.sample, done)
                        row = task.evaluate_samples(state.eval_params, key, workdir, done)
                        if row:
                            writer.write(done, "eval", {**row, "elapsed_s": elapsed()})
                        if task.best_metric is not None:
                            best = (task.best_metric, row, state, done, config, record)
                            _keep_best(workdir, *best)
                preempted = watcher.reached(done)
                if (done % config.checkpoint_every == 0 or preempted) and done < config.num_steps:
                    streak.update(jax.device_get(pending))  # never save past a diverged run
                    checkpointer.save(state, meta=meta())
                if preempted and done < config.num_steps:
                    bar.close()
                    batches.close()
                    raise Preempted(done, watcher.signum)
                if done % config.log_every == 0:
                    tick = time.perf_counter()  # examples/s measures training only
            bar.close()
            batches.close()
            train_seconds = elapsed()
            split = split_batches(config, info.test_split, config.test_max_examples)
            params, extra = prepare_eval(task, state.eval_params, rng.eval, True)
            row = evaluate(eval_step, params, split, rng.eval, mesh)
            row = writer.write(config.num_steps, "test", {**row, **extra})
        if task.write_samples is not None:
            examples = next(iter(_eval_batches(config, info.test_split, config.num_samples)))
            key = jax.random.fold_in(rng.sample, config.num_steps)
            task.write_samples(state.eval_params, key, workdir, config.num_steps, examples)
        checkpointer.save(
            state, meta={"config": config.to_dict(), "elapsed_s": train_seconds, **record}
        )
    _report(workdir, f"Test split {info.test_split!r} of {config.dataset!r}: {json.dumps(row)}")
    return state


def _check_task(task: Task) -> None:
    """Raises a ValueError if ``task`` lacks a way to train or names a best metric it cannot log."""
    if task.loss_fn is None and task.make_train_step is None:
        raise ConfigError("The Task needs a loss_fn or a make_train_step.")
    if task.best_metric is not None and task.evaluate_samples is None:
        raise ConfigError(
            f"Task.best_metric={task.best_metric!r} needs an evaluate_samples that computes it."
        )


def best_metric_value(workdir: str | pathlib.Path, name: str) -> float:
    """The value of metric ``name`` saved with ``workdir``'s best checkpoint; inf if none."""
    with Checkpointer(pathlib.Path(workdir) / BEST_DIR, keep=1) as checkpointer:
        latest = checkpointer.latest_step()
        return np.inf if latest is None else checkpointer.restore_meta(latest)[name]


def _keep_best(
    workdir: pathlib.Path,
    name: str,
    row: Mapping[str, float],
    state: TrainState,
    step: int,
    config: ConfigDict,
    record: Mapping[str, Any],
) -> None:
    """Saves ``state.eval_params`` to ``BEST_DIR`` if ``row[name]`` beats the best so far."""
    if name not in row:
        raise ConfigError(f"evaluate_samples returned no {name!r} (Task.best_metric): {list(row)}.")
    value = float(row[name])
    if not value < best_metric_value(workdir, name):
        return
    best = TrainState(step=jnp.asarray(step, jnp.int32), params=state.eval_params, opt_state={})
    with Checkpointer(workdir / BEST_DIR, keep=1) as checkpointer:
        meta = {name: value, "step": step, "config": config.to_dict(), **record}
        checkpointer.save(best, meta=meta)


def _init_state(
    task: Task,
    tx: Any,
    config: ConfigDict,
    key: jax.Array,
    example: Mapping[str, np.ndarray],
    mesh: Mesh,
) -> TrainState:
    """The step-0 state, initialised from an example batch and replicated over ``mesh``."""
    init = _init_fn(task, tx, config)
    return jax.jit(init, out_shardings=parallel.replicated(mesh))(key, example)


def _init_fn(task: Task, tx: Any, config: ConfigDict) -> Callable[..., TrainState]:
    """``(key, example batch) -> TrainState`` at step 0 (``_init_state``, ``check_run``)."""

    def init(key, example):
        return task.init_state(task.init(key, example), tx, config.ema_decay)

    return init


def _pipeline_args(config: ConfigDict, rng: keys.Keys) -> dict[str, Any]:
    """The training pipeline's arguments (``data.train_batches``, ``data.check_train_args``)."""
    return {
        "batch_size": config.batch_size,
        "seed": keys.to_seed(rng.data),
        "num_levels": config.num_levels,
        "binarize": config.binarize,
        "data_dir": config.data_dir,
        "process_index": jax.process_index(),
        "process_count": jax.process_count(),
    }


def _check_resumable(checkpointer: Checkpointer, config: ConfigDict) -> None:
    """Raises a ValueError if the latest checkpoint cannot continue as ``config`` says."""
    latest = checkpointer.latest_step()
    if latest is None:
        return
    if latest > config.num_steps:
        raise ConfigError(
            f"The workdir holds a checkpoint at step {latest}, past num_steps={config.num_steps}. "
            f"Set --config.num_steps={latest} or more, or use a new --workdir."
        )
    saved = checkpointer.restore_meta(latest)["config"]
    current = json.loads(config.to_json())  # as saved: tuples become lists
    for name in MODEL_KEYS:
        if saved.get(name) != current.get(name):
            raise ConfigError(
                f"The workdir holds a checkpoint (step {latest}) of a different model: "
                f"{name}={saved.get(name)!r} there, {name}={current.get(name)!r} now. "
                "Use a new --workdir for a different model, or the saved config to resume."
            )
    check_schedule(saved, config, latest)


def _eval_batches(config: ConfigDict, split: str, batch_size: int) -> Iterator[dict]:
    """This process's padded batches of ``split`` (numpy, with a bool ``mask``)."""
    return data.eval_batches(
        config.dataset,
        split,
        batch_size=batch_size,
        num_levels=config.num_levels,
        binarize=config.binarize,
        data_dir=config.data_dir,
        process_index=jax.process_index(),
        process_count=jax.process_count(),
    )


def _max_nonfinite_steps(config: ConfigDict) -> int:
    """The config's ``max_nonfinite_steps``, or the default when it has none."""
    return config.get("max_nonfinite_steps", DEFAULT_MAX_NONFINITE_STEPS)


def _mean(rows: list[dict[str, jax.Array]]) -> dict[str, float]:
    """Averages a list of scalar-metric dicts (one device transfer); sums ``nonfinite_steps``."""
    rows = jax.device_get(rows)
    reduce = {NONFINITE_METRIC: np.sum}
    return {name: float(reduce.get(name, np.mean)([row[name] for row in rows])) for name in rows[0]}


def _report(workdir: pathlib.Path, message: str) -> None:
    """Prints ``message`` and where the run's outputs are (on process 0)."""
    if jax.process_index() != 0:
        return
    print(
        f"{message}\nMetrics: {workdir / 'metrics.jsonl'} (TensorBoard: tensorboard --logdir "
        f"{workdir / 'tensorboard'})\nSamples: {workdir / 'samples'}\n"
        f"Checkpoints: {workdir / 'checkpoints'}\n"
        f"Use it: python -m experiments.sample --workdir {workdir} --out samples.png, "
        f"python -m experiments.evaluate --workdir {workdir}, or jaxgen.load_run({str(workdir)!r})"
    )
