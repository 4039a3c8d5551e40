"""A trained workdir back as model, params and the family's samplers: ``load_run``.

    import jax, jaxgen

    run = jaxgen.load_run("runs/gated_pixelcnn_cpu")      # the latest checkpoint
    images = run.sample(jax.random.key(0), 64, temperature=0.8)   # int [64, 28, 28, 1]
    log_px = run.log_likelihood(images)                   # float [64], nats; run.density: "exact"
    filled = run.complete(jax.random.key(1), images, known)       # known: bool [64, 28, 28]
    row = run.evaluate("test")                            # the run's own test row, recomputed

A checkpoint records the run's family, its Flax modules (class and constructor
arguments) and its data's shape and levels (``jaxgen.train.record``), so a run
loads in any process on any machine, whatever wrote it (one process or many),
without its dataset at hand: only ``evaluate`` on a split reads the data.
Runs written before checkpoints recorded these are rebuilt from their config.
The params come back on one device; a run that kept an EMA of its weights
gives the EMA, as its evaluations did.
"""

import dataclasses
import inspect
import pathlib
from collections.abc import Iterator, Mapping
from typing import Any, Literal

import jax
import jax.numpy as jnp
import numpy as np
from ml_collections import ConfigDict

from jaxgen import keys, parallel, tasks
from jaxgen.models import registry
from jaxgen.train import BEST_DIR, Checkpointer, Task, TrainState, evaluate, split_batches
from jaxgen.train.loop import Inference, prepare_eval
from jaxgen.train.record import build_module
from jaxgen.train.step import make_eval_step
from jaxgen.validation import ConfigError, check_images

# Images per compiled call of ``log_likelihood``.
LOG_LIKELIHOOD_BATCH = 256


@dataclasses.dataclass(frozen=True)
class Run:
    """A trained run: its model, evaluation params and what its family can do with them.

    Attributes:
      workdir: the run's folder.
      step: the checkpoint's step.
      family: ``"autoregressive"``, ``"vae"``, ``"autoencoder"``, ``"gan"``, ``"rbm"``, ...
      model: the Flax module (a ``jaxgen.gan.GAN`` for a GAN).
      params: the evaluation params (the EMA where the run kept one), on one device.
      config: the run's config.
      image_shape: (H, W, C) of its images.
      num_levels: L, the images' levels.
      num_classes: classes of a class-conditional model's labels; 0 otherwise.
      density: what ``log_likelihood`` returns: ``"exact"``, ``"lower bound"``,
        ``"estimate"``, or None when the family defines no density.
      density_note: how it is computed (e.g. the IWAE bound's K), or why there is none.
      task: the family's task, rebuilt.
    """

    workdir: pathlib.Path
    step: int
    family: str
    model: Any
    params: Any
    config: ConfigDict
    image_shape: tuple[int, int, int]
    num_levels: int
    num_classes: int
    density: str | None
    density_note: str
    task: Task

    @property
    def _inference(self) -> Inference:
        if self.task.inference is None:
            raise ConfigError(f"The {self.family or 'custom'} task of {self.workdir} has no use.")
        return self.task.inference

    def sample(self, key: jax.Array, num: int, **options: Any) -> np.ndarray:
        """``num`` new images from the model.

        Args:
          key: PRNG key; the same key gives the same images.
          num: number of images.
          **options: the family sampler's options; autoregressive: ``temperature``
            (float), ``first_pixel`` (``"model"``, ``"uniform"`` or probabilities
            [L]), ``labels`` (int [num], class-conditional models), ``method``;
            RBM: ``num_steps`` (Gibbs sweeps), ``init`` (``"base"`` or
            ``"random"`` chain starts), ``mean_field``.

        Returns:
          int32 [num, H, W, C] in [0, num_levels) (an RBM's ``mean_field=True``:
          float32 p(v = 1 | h) of the last sweep).

        Raises:
          ConfigError: the family has no sampler (the autoencoder), or a bad option.
        """
        sample = self._inference.sample
        if sample is None:
            raise ConfigError(f"This {self.family} run cannot sample: {self.density_note}.")
        if not isinstance(num, int | np.integer) or num < 1:
            raise ConfigError(f"num={num!r} must be a positive number of images.")
        shape = (num, *self.image_shape)
        if options and not _accepts(sample, self.params, key, shape, **options):
            raise ConfigError(
                f"This {self.family} run's sampler takes no option "
                f"{', '.join(options)}; see its family's sample function."
            )
        return np.asarray(sample(self.params, key, shape, **options))

    def log_likelihood(
        self,
        images: np.ndarray | jax.Array,
        key: jax.Array | None = None,
        labels: np.ndarray | jax.Array | None = None,
    ) -> np.ndarray:
        """log p(x) in nats per image (<= 0): exact, a lower bound or an estimate (``density``).

        Args:
          images: int [B, H, W, C] in [0, num_levels), the run's shape.
          key: PRNG key of a stochastic bound or estimate (the VAE's IWAE draws);
            ignored for an exact density.
          labels: int [B] for a class-conditional model.

        Returns:
          float [B]; -log_likelihood is the NLL in nats (``losses.bits_per_dim`` for bits/dim).

        Raises:
          ConfigError: the family has no density (GAN, autoencoder), images of
            the wrong shape or levels, a missing key or labels.
        """
        fn = self._inference.log_likelihood
        if fn is None:
            raise ConfigError(f"This {self.family} run has no log-likelihood: {self.density_note}.")
        images = self._check_images(images)
        labels = self._check_labels(labels, len(images))
        if key is None:
            if self.density != "exact":
                raise ConfigError(
                    f"The {self.density} ({self.density_note}) is random: pass a key, e.g. "
                    "key=jax.random.key(0)."
                )
            key = jax.random.key(0)
        params, _ = prepare_eval(self.task, self.params, key, True)  # e.g. an RBM's log Z
        parts = []
        for i, start in enumerate(range(0, len(images), LOG_LIKELIHOOD_BATCH)):
            part = slice(start, start + LOG_LIKELIHOOD_BATCH)
            batch_labels = None if labels is None else labels[part]
            batch_key = jax.random.fold_in(key, i)
            parts.append(fn(params, images[part], batch_key, batch_labels))
        return np.concatenate(jax.device_get(parts))

    def complete(
        self, key: jax.Array, images: np.ndarray | jax.Array, known: np.ndarray, **options: Any
    ) -> np.ndarray:
        """Fills in the pixels of ``images`` where ``known`` is False.

        Args:
          key: PRNG key.
          images: int [B, H, W, C]; values at unknown pixels are ignored.
          known: bool [B, H, W] (or [H, W] for every image), the pixels to keep.
          **options: the autoregressive sampler's (``temperature``, ``labels``, ...).

        Returns:
          int32 [B, H, W, C]: exact draws of p(unknown | earlier known) for an
          autoregressive model (``jaxgen.sampling.complete``), a pseudo-Gibbs
          chain for a VAE (``jaxgen.latent.complete``), clamped block Gibbs
          sampling for an RBM (``jaxgen.models.rbm.complete``).

        Raises:
          ConfigError: the family cannot complete, or mismatched shapes.
        """
        fn = self._inference.complete
        if fn is None:
            raise ConfigError(f"This {self.family} run cannot complete images.")
        images = self._check_images(images)
        known = (
            np.broadcast_to(np.asarray(known, bool), images.shape[:3])
            if np.ndim(known) == 2
            else np.asarray(known, bool)
        )
        if known.shape != images.shape[:3]:
            raise ConfigError(
                f"known has shape {known.shape}; it must be [B, H, W] = {images.shape[:3]}."
            )
        return np.asarray(fn(self.params, key, images, known, **options))

    def encode(self, images: np.ndarray | jax.Array) -> np.ndarray:
        """The codes of images (a VAE's posterior means): float [B, D]."""
        fn = self._inference.encode
        if fn is None:
            raise ConfigError(f"This {self.family} run has no encoder.")
        return np.asarray(fn(self.params, self._check_images(images)))

    def decode(self, codes: np.ndarray | jax.Array) -> np.ndarray:
        """The decoder's mean of codes float [B, D]: float [B, H, W, C] in [0, 1]."""
        fn = self._inference.decode
        if fn is None:
            raise ConfigError(f"This {self.family} run has no decoder.")
        codes = np.asarray(codes, np.float32)
        if codes.ndim != 2:
            raise ConfigError(f"codes must be float [B, D]; got shape {codes.shape}.")
        return np.asarray(fn(self.params, codes))

    def evaluate(
        self,
        split: str | None = None,
        *,
        images: np.ndarray | None = None,
        labels: np.ndarray | None = None,
        max_examples: int | None | Literal["run"] = "run",
    ) -> dict[str, Any]:
        """The family's evaluation, as the training loop computes it.

        On a split of the run's dataset, with the run's evaluation key and
        batches: the test split gives the run's final test row again. A GAN adds
        its sample metrics (FID, precision/recall, ...) from the key of the
        run's evaluation at this step.

        Args:
          split: a split of the run's dataset; None: its test split. Ignored with ``images``.
          images: int [N, H, W, C] to evaluate instead of a split (not for a GAN).
          labels: int [N] with ``images``, for a class-conditional model.
          max_examples: the split's first examples; ``"run"``: as many as the
            run used for that split (``test_max_examples`` for its test split,
            ``eval_max_examples`` for its evaluation split, else all); None: all.

        Returns:
          ``{metric: mean}``, ``num_examples``, ``step``, ``split`` and ``likelihood``
          (what ``nll_nats`` is: ``"exact"``, ``"lower bound"``, ``"estimate"``, or None).
        """
        from jaxgen import data  # the data layer (TFDS, grain) only when a split is read

        mesh = parallel.make_mesh(1)
        eval_step = make_eval_step(self.task.eval_fn, mesh)
        eval_key = keys.make_keys(self.config.seed).eval
        if images is not None:
            if self.family == "gan":
                raise ConfigError("A GAN cannot evaluate given images: it has no density.")
            images = self._check_images(images)
            labels = self._check_labels(labels, len(images))
            params, extra = prepare_eval(self.task, self.params, eval_key, True)
            row = {**evaluate(eval_step, params, _batches(images, labels), eval_key, mesh), **extra}
            split = "images"
        else:
            info = data.dataset_info(self.config.dataset, data_dir=self.config.data_dir)
            split = info.test_split if split is None else split
            if max_examples == "run":
                limits = {info.eval_split: self.config.eval_max_examples}
                limits[info.test_split] = self.config.test_max_examples  # first if both
                max_examples = limits.get(split)
            data.prepare(
                self.config.dataset, data_dir=self.config.data_dir, raw_dir=self.config.raw_dir
            )
            batches = split_batches(self.config, split, max_examples)
            params, extra = prepare_eval(self.task, self.params, eval_key, True)
            row = {**evaluate(eval_step, params, batches, eval_key, mesh), **extra}
            metrics = self._inference.sample_metrics
            if metrics is not None:
                sample_key = jax.random.fold_in(keys.make_keys(self.config.seed).sample, self.step)
                row.update(metrics(jax.device_get(self.params), sample_key))
        return {**row, "step": self.step, "split": split, "likelihood": self.density}

    def _check_images(self, images: np.ndarray | jax.Array) -> np.ndarray:
        """int [B, H, W, C] images of the run's shape and levels, as numpy."""
        images = np.asarray(images)
        check_images(images, self.num_levels, "images")
        if images.shape[1:] != self.image_shape:
            raise ConfigError(
                f"images have shape {images.shape[1:]} (H, W, C) but the run's model was "
                f"trained on {self.image_shape}."
            )
        return images.astype(np.int32)

    def _check_labels(self, labels: Any, num: int) -> np.ndarray | None:
        """int32 [num] labels of a class-conditional model, None for another."""
        if not self.num_classes or getattr(self.model, "num_classes", None) is None:
            if labels is not None:
                raise ConfigError(f"This {self.family} model is not class-conditional: no labels.")
            return None
        if labels is None:
            raise ConfigError(
                f"The model is class-conditional: pass labels, int [{num}] in "
                f"[0, {self.num_classes})."
            )
        labels = np.asarray(labels)
        if labels.shape != (num,) or labels.min() < 0 or labels.max() >= self.num_classes:
            raise ConfigError(
                f"labels must be int [{num}] in [0, {self.num_classes}); got shape {labels.shape}."
            )
        return labels.astype(np.int32)


def load_run(
    workdir: str | pathlib.Path,
    step: int | None = None,
    best: bool = False,
    *,
    task: Task | None = None,
    config_updates: Mapping[str, Any] | None = None,
) -> Run:
    """The run in ``workdir`` at a checkpoint: model, evaluation params, samplers.

    Args:
      workdir: the folder an experiment or ``train.train_and_evaluate`` wrote.
      step: the checkpoint's step; None: the latest.
      best: the variables with the best ``Task.best_metric`` (a GAN's lowest
        FID, in ``checkpoints_best/``) instead of the latest.
      task: the task the run was trained with, for a run whose task cannot be
        rebuilt from what the checkpoint recorded (a notebook's own task).
      config_updates: top-level keys of the run's config to change before its
        task is rebuilt, for an evaluation other than the run's: e.g.
        ``{"iwae_samples": 5000}`` for a VAE's tighter IWAE bound. Not with ``task``.

    Returns:
      The Run.

    Raises:
      ConfigError: no checkpoint (or not that step), a checkpoint that does
        not match this version of the code, or a key of ``config_updates`` that
        the run's config lacks; the message says which.
    """
    if task is not None and config_updates:
        raise ConfigError("load_run takes task= or config_updates=, not both.")
    workdir = pathlib.Path(workdir)
    folder = workdir / (BEST_DIR if best else "checkpoints")
    if not folder.is_dir():
        raise ConfigError(
            f"{workdir} holds no {'best ' if best else ''}checkpoint ({folder} does not exist). "
            "Point --workdir at the folder a training run wrote (it has checkpoints/ and "
            "config.json), or train first."
        )
    with Checkpointer(folder, keep=1, read_only=True) as checkpointer:
        steps = checkpointer.all_steps()
        if not steps:
            raise ConfigError(f"{folder} holds no complete checkpoint yet; train first.")
        if step is None:
            step = max(steps)
        elif step not in steps:
            raise ConfigError(
                f"{folder} holds no checkpoint of step {step}; it has steps "
                f"{', '.join(map(str, sorted(steps)))}."
            )
        meta = checkpointer.restore_meta(step)
        config = _updated(ConfigDict(meta["config"]), config_updates or {}, workdir)
        family = meta.get("family") or infer_family(config)
        if task is None:
            model, task = _rebuild(family, config, meta)
        else:
            model = task.modules.get("model")
        image_shape, num_levels, num_classes = _data_facts(meta, config)
        target = _abstract_state(task, config, image_shape, best)
        try:
            state = checkpointer.restore(step, target)
        except (ValueError, KeyError, TypeError) as e:
            raise ConfigError(
                f"The checkpoint of step {step} in {folder} does not match the model this "
                f"code builds from its record ({type(e).__name__}: {_first_line(e)}). Load it "
                "with the jaxgen version that trained it, or pass the task it was trained with."
            ) from None
    inference = task.inference
    return Run(
        workdir=workdir,
        step=step,
        family=family,
        model=model,
        params=state.eval_params,
        config=config,
        image_shape=image_shape,
        num_levels=num_levels,
        num_classes=num_classes,
        density=None if inference is None else inference.density,
        density_note="" if inference is None else inference.density_note,
        task=task,
    )


def checkpoint_times(workdir: str | pathlib.Path) -> dict[int, float]:
    """The training wall-clock of every kept checkpoint of a run.

    Args:
      workdir: the folder a training run wrote.

    Returns:
      ``{step: elapsed_s}``, ascending by step: seconds since the run's step 0 when
      the checkpoint was saved (compilation and periodic evaluations included,
      summed over resumed parts), as the checkpoint's record holds them.

    Raises:
      ConfigError: ``workdir`` holds no checkpoint.
    """
    folder = pathlib.Path(workdir) / "checkpoints"
    if not folder.is_dir():
        raise ConfigError(f"{workdir} holds no checkpoint ({folder} does not exist).")
    with Checkpointer(folder, keep=1, read_only=True) as checkpointer:
        steps = checkpointer.all_steps()
        return {s: float(checkpointer.restore_meta(s)["elapsed_s"]) for s in steps}


def infer_family(config: ConfigDict) -> str:
    """The family of a config saved before checkpoints recorded it (by its family's keys)."""
    if "generator_loss" in config:
        return "gan"
    if "iwae_samples" in config:
        return "vae"
    if config.get("model", {}).get("name") in registry.MODELS:
        return "autoregressive"
    if "transfer" in config:
        return "autoencoder"
    raise ConfigError(
        "The checkpoint does not say which family trained it and its config is none of "
        "jaxgen's; pass the task it was trained with: load_run(workdir, task=...)."
    )


def _updated(config: ConfigDict, updates: Mapping[str, Any], workdir: pathlib.Path) -> ConfigDict:
    """``config`` with the top-level ``updates``; a key it lacks is a ConfigError."""
    unknown = sorted(set(updates) - set(config.keys()))
    if unknown:
        raise ConfigError(
            f"The config of the run in {workdir} has no key {', '.join(map(repr, unknown))}; "
            f"its keys: {', '.join(sorted(config.keys()))}."
        )
    config.update(updates)
    return config


def _rebuild(family: str, config: ConfigDict, meta: Mapping[str, Any]) -> tuple[Any, Task]:
    """The model and task of a run, with the modules the checkpoint recorded when it has them."""
    specs = meta.get("modules") or {}
    modules = {role: build_module(spec) for role, spec in specs.items() if spec is not None}
    if len(modules) < len(specs):
        modules = {}  # a module the record could not hold: all from the config
    try:
        return tasks.from_config(family, config, modules)
    except (KeyError, AttributeError) as e:
        raise ConfigError(
            f"The run's task ({family}) cannot be rebuilt from its config: it lacks the key "
            f"{e}. Pass the task it was trained with: load_run(workdir, task=...)."
        ) from None


def _data_facts(
    meta: Mapping[str, Any], config: ConfigDict
) -> tuple[tuple[int, int, int], int, int]:
    """(image_shape, num_levels, num_classes) from the record, else from the config's dataset."""
    if "image_shape" in meta:
        return tuple(meta["image_shape"]), meta["num_levels"], meta["num_classes"]
    from jaxgen import data

    info = data.dataset_info(config.dataset, data_dir=config.get("data_dir"))
    return info.image_shape, config.num_levels, info.num_classes


def _abstract_state(
    task: Task, config: ConfigDict, image_shape: tuple[int, ...], best: bool
) -> TrainState:
    """The saved state's shapes and dtypes, placed on this process's first device."""
    example = {
        "image": np.zeros((1, *image_shape), np.int32),
        "label": np.zeros((1,), np.int32),
    }
    tx, _ = task.make_optimizer(config)

    def init(key: jax.Array) -> TrainState:
        params = task.init(key, example)
        if best:  # checkpoints_best holds the evaluation params alone
            return TrainState(step=jnp.zeros((), jnp.int32), params=params, opt_state={})
        return task.init_state(params, tx, config.get("ema_decay"))

    abstract = jax.eval_shape(init, jax.random.key(0))
    device = jax.sharding.SingleDeviceSharding(jax.local_devices()[0])
    return jax.tree.map(lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=device), abstract)


def read_images(
    path: str | pathlib.Path, image_shape: tuple[int, int, int], num_levels: int
) -> np.ndarray:
    """Images from a file or folder, as a model of ``image_shape`` and ``num_levels`` takes them.

    Image files (PNG, JPEG, anything Pillow reads; one file, or every image of a
    folder in name order) are 8-bit: they are converted to the model's channels
    (grayscale or RGB) and quantised to ``x * num_levels // 256``. Arrays
    (``.npy``, or ``.npz`` with ``images``) of integers [N, H, W, C] or
    [N, H, W] are taken as levels when every value is below ``num_levels``,
    else as 8-bit values and quantised the same way.

    Args:
      path: the image file, folder, ``.npy`` or ``.npz``.
      image_shape: (H, W, C) the model takes.
      num_levels: its levels L.

    Returns:
      int32 [N, H, W, C] in [0, L).

    Raises:
      ConfigError: no such file, an unreadable one, no images, or images of
        another size, channel count or dtype than the model's.
    """
    path = pathlib.Path(path)
    if not path.exists():
        raise ConfigError(f"{path} does not exist: give an image file, a folder or an .npy/.npz.")
    if path.suffix in (".npy", ".npz"):
        array = _read_array(path)
        if array.ndim == 3:
            array = array[..., None]
        eight_bit = array.size and array.max() >= num_levels
    else:
        files = sorted(p for p in path.iterdir() if p.is_file()) if path.is_dir() else [path]
        if not files:
            raise ConfigError(f"The folder {path} holds no files.")
        array = np.stack([_read_picture(f, image_shape) for f in files])
        eight_bit = True
    if array.ndim != 4 or array.shape[1:] != tuple(image_shape):
        raise ConfigError(
            f"The images of {path} have shape {array.shape[1:]} (H, W, C) but the run's model "
            f"takes {tuple(image_shape)}; resize them (or give a [N, H, W, C] array)."
        )
    if eight_bit:
        if array.min() < 0 or array.max() > 255:
            raise ConfigError(
                f"The images of {path} hold values in [{array.min()}, {array.max()}]: give "
                f"levels in [0, {num_levels}) or 8-bit values in [0, 255]."
            )
        array = array.astype(np.int64) * num_levels // 256
    return array.astype(np.int32)


def _read_array(path: pathlib.Path) -> np.ndarray:
    """The integer array of an .npy, or the ``images`` of an .npz."""
    try:
        loaded = np.load(path, allow_pickle=False)
        array = loaded["images"] if path.suffix == ".npz" else loaded
    except KeyError:
        raise ConfigError(f"{path} holds no array named 'images'.") from None
    except (OSError, ValueError) as e:
        raise ConfigError(f"{path} is not a readable NumPy file ({e}).") from None
    if not np.issubdtype(array.dtype, np.integer):
        raise ConfigError(
            f"{path} holds {array.dtype} values; images must be integers (levels or 8-bit)."
        )
    return np.asarray(array)


def _read_picture(path: pathlib.Path, image_shape: tuple[int, int, int]) -> np.ndarray:
    """An image file as uint8 [H, W, C] with the model's channel count (its own size)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            if image.mode in ("I", "I;16", "I;16B", "F"):
                raise ConfigError(f"{path} is not an 8-bit image (mode {image.mode}).")
            picture = np.asarray(image.convert("L" if image_shape[-1] == 1 else "RGB"))
    except (UnidentifiedImageError, OSError) as e:
        raise ConfigError(f"{path} is not a readable image ({e}).") from None
    return picture.reshape(*picture.shape[:2], -1)


def _batches(images: np.ndarray, labels: np.ndarray | None) -> Iterator[dict[str, np.ndarray]]:
    """Padded batches of given images with a ``mask``, as ``train.evaluate`` takes them."""
    size = min(LOG_LIKELIHOOD_BATCH, len(images))
    for start in range(0, len(images), size):
        part = images[start : start + size]
        batch_labels = np.full(len(part), -1, np.int32) if labels is None else labels[start:][:size]
        pad = size - len(part)
        yield {
            "image": np.concatenate([part, np.zeros((pad, *part.shape[1:]), np.int32)]),
            "label": np.concatenate([batch_labels, np.full(pad, -1, np.int32)]),
            "mask": np.arange(size) < len(part),
        }


def _accepts(fn: Any, *args: Any, **kwargs: Any) -> bool:
    """Whether ``fn``'s signature takes these arguments."""
    try:
        inspect.signature(fn).bind(*args, **kwargs)
    except TypeError:
        return False
    return True


def _first_line(error: Exception) -> str:
    return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
