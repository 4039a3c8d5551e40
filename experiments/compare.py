"""The whole taxonomy on one page: every family trained on one dataset and compared.

    python -m experiments.compare --workdir DIR [--config=experiments/configs/compare.py:BUDGET]

BUDGET is ``tiny``, ``cpu`` (default) or ``paper``. Trains PixelCNN, Gated
PixelCNN, Row LSTM, Diagonal BiLSTM, VAE and DCGAN on one dataset (default
binarized MNIST), each in ``DIR/<model>/`` with its own experiment's code and
config, then evaluates all of them the same way and writes ``DIR/report.md``,
``DIR/results.json`` and the figures ``samples.png``, ``completions.png`` and
``curves.png``.

What is measured, per model:
  parameters     trainable parameters (both players for the GAN).
  train time     wall-clock seconds of the training run, compilation and the
                 periodic evaluations included (``elapsed_s`` of its last train row).
  test NLL       nats per image and bits/dim on the whole test split (on its first
                 ``eval.test_max_examples`` images, if set: the tiny budget): exact for
                 the autoregressive models; the IWAE bound with K =
                 ``eval.iwae_samples`` for the VAE (an upper bound on the NLL), its
                 negative ELBO beside it; none for the GAN, which has no density.
  FID, coverage  ``eval.num_samples`` samples of each model on one feature network
                 (``jaxgen.metrics.SampleQuality``), with precision/recall and
                 density/coverage on the same features; the first row holds the
                 same numbers for as many real test images: the floor.
  memorised      the share of samples nearer (in pixels) to a training image
                 than the nearest 1% of the test images are; the samples above
                 their nearest training images in ``memorisation.png``, the
                 distance distributions in ``distances.png``.
  sampling time  seconds for ``eval.timing_samples`` images once compiled:
                 cached (or the only method, for VAE and GAN) and naive, the
                 latter extrapolated from ``eval.naive_timing_passes`` network
                 passes unless that is None.

Resuming: each model's training resumes from its own checkpoints and a finished
model is not trained again; its evaluation is kept in ``DIR/<model>/compare.json``
(with the pictures in ``compare_images.npz``) and reused while the evaluation
config and the final step are unchanged.
"""

import dataclasses
import json
import math
import pathlib
from collections.abc import Callable
from typing import Any

import jax
import numpy as np
from ml_collections import ConfigDict

from experiments import cli, compare_report
from experiments.configs import flow as flow_config
from experiments.configs import gan as gan_config
from experiments.configs import pixelcnn as pixelcnn_config
from experiments.configs import pixelrnn as pixelrnn_config
from experiments.configs import rbm as rbm_config
from experiments.configs import vae as vae_config
from experiments.configs.compare import MODELS
from jaxgen import data, latent, metrics, sampling, tasks, timing
from jaxgen import gan as gan_lib
from jaxgen.train import Task, check_run, train_and_evaluate
from jaxgen.validation import ConfigError

DEFAULT_CONFIG = pathlib.Path(__file__).parent / "configs" / "compare.py"
BUDGETS = ("tiny", "cpu", "paper")
# Levels of each dataset and the labelled dataset its FID feature network learns.
DATASETS = {
    "binarized_mnist": (2, "mnist"),
    "mnist": (256, "mnist"),
    "fashion_mnist": (256, "fashion_mnist"),
}
RESULTS_FILE = "compare.json"
EVAL_VERSION = 2  # bumped when an evaluation gains numbers: older stored ones are redone
IMAGES_FILE = "compare_images.npz"
_SAMPLE_BATCH = 500

AUTOREGRESSIVE, LATENT, ADVERSARIAL = "autoregressive", "latent variable", "adversarial"
FLOW, BOLTZMANN = "flow", "Boltzmann machine"
# The ``tasks.from_config`` family of each member's family.
TASK_FAMILIES = {
    AUTOREGRESSIVE: "autoregressive",
    FLOW: "flow",
    LATENT: "vae",
    BOLTZMANN: "rbm",
    ADVERSARIAL: "gan",
}
# The branches of the lecture's taxonomy (Goodfellow, NIPS 2016 tutorial), in the report's order.
BRANCHES = {
    AUTOREGRESSIVE: "explicit density, tractable: fully visible belief nets",
    FLOW: "explicit density, tractable: change of variables",
    LATENT: "explicit density, approximate: variational",
    BOLTZMANN: "explicit density, approximate: Markov chain",
    ADVERSARIAL: "implicit density: direct",
}


@dataclasses.dataclass(frozen=True)
class Member:
    """One model of the comparison.

    Attributes:
      title: its name in the report.
      family: ``AUTOREGRESSIVE``, ``LATENT`` or ``ADVERSARIAL``.
      get_config: its experiment's ``get_config(variants)``.
      variants: budget -> the experiment's config variants.
      levels: the data levels it models: 2 (binary data), 256 (8-bit data).
    """

    title: str
    family: str
    get_config: Callable[[str], ConfigDict]
    variants: dict[str, str]
    levels: tuple[int, ...] = (2, 256)


MEMBERS = {
    **{
        name: Member(
            title,
            AUTOREGRESSIVE,
            pixelcnn_config.get_config,
            {"tiny": f"{name},tiny", "cpu": f"{name},cpu", "paper": name},
        )
        for name, title in (("fvsbn", "FVSBN"), ("nade", "NADE"), ("made", "MADE"))
    },
    "pixelcnn": Member(
        "PixelCNN",
        AUTOREGRESSIVE,
        pixelcnn_config.get_config,
        {"tiny": "tiny", "cpu": "cpu", "paper": ""},
    ),
    "gated_pixelcnn": Member(
        "Gated PixelCNN",
        AUTOREGRESSIVE,
        pixelcnn_config.get_config,
        {"tiny": "gated,tiny", "cpu": "gated,cpu", "paper": "gated"},
    ),
    "row_lstm": Member(
        "Row LSTM",
        AUTOREGRESSIVE,
        pixelrnn_config.get_config,
        {"tiny": "row_lstm,tiny", "cpu": "row_lstm,cpu", "paper": "row_lstm"},
    ),
    "diagonal_bilstm": Member(
        "Diagonal BiLSTM",
        AUTOREGRESSIVE,
        pixelrnn_config.get_config,
        {
            "tiny": "diagonal_bilstm,tiny",
            "cpu": "diagonal_bilstm,cpu",
            "paper": "diagonal_bilstm",
        },
    ),
    **{
        name: Member(
            title,
            AUTOREGRESSIVE,
            pixelcnn_config.get_config,
            {"tiny": f"{name},tiny", "cpu": f"{name},cpu", "paper": name},
        )
        for name, title in (("pixelsnail", "PixelSNAIL"), ("imagegpt", "ImageGPT"))
    },
    # The flow's, VAE's, RBM's and GAN's default configs are their paper set-ups.
    "realnvp": Member(
        "RealNVP", FLOW, flow_config.get_config, {"tiny": "tiny", "cpu": "cpu"}, (256,)
    ),
    "vae": Member("VAE", LATENT, vae_config.get_config, {"tiny": "tiny", "cpu": "cpu"}),
    "rbm": Member("RBM", BOLTZMANN, rbm_config.get_config, {"tiny": "tiny", "cpu": "cpu"}, (2,)),
    "dcgan": Member("DCGAN", ADVERSARIAL, gan_config.get_config, {"tiny": "tiny", "cpu": "cpu"}),
}


def model_names(config: ConfigDict) -> list[str]:
    """The models of ``config.models``, in order."""
    return [name.strip() for name in config.models.split(",") if name.strip()]


def check_config(config: ConfigDict) -> dict[str, tuple[ConfigDict, Any, Task]]:
    """Raises a ConfigError naming the first bad value, before any data or training.

    Checks compare's own keys first, every ``eval.*`` key included (they are
    used only once every model has trained), then builds every member's
    config, model and task and checks them as their training would
    (``train.check_run``: optimizer, input pipeline, model arguments, the GAN's
    FID keys), so that no bad value surfaces after the first model has trained.

    Returns:
      name -> (the member's experiment config, model, task), ready to train.
    """
    _check_keys(config)
    members = {}
    for name in model_names(config):
        c = member_config(config, name)
        if config.curve_points > c.num_steps:
            raise ConfigError(
                f"curve_points={config.curve_points} must be at most the training steps of "
                f"every model; {name} has {c.num_steps} (steps.{name})."
            )
        try:
            model, task = tasks.from_config(TASK_FAMILIES[MEMBERS[name].family], c)
            check_run(task, c)
        except ConfigError as e:  # a member key that compare sets from one of its own
            raise ConfigError(f"{MEMBERS[name].title} (models={name}): {e}") from e
        members[name] = (c, model, task)
    return members


def _check_keys(config: ConfigDict) -> None:
    """Raises a ConfigError naming the first bad value among compare's own keys."""
    if config.dataset not in DATASETS:
        raise ConfigError(f"dataset={config.dataset!r} must be one of {', '.join(DATASETS)}.")
    if config.budget not in BUDGETS:
        raise ConfigError(f"budget={config.budget!r} must be one of {', '.join(BUDGETS)}.")
    names = model_names(config)
    unknown = [name for name in names if name not in MEMBERS]
    if unknown or not names or len(set(names)) != len(names):
        raise ConfigError(
            f"models={config.models!r} must name distinct models among {', '.join(MODELS)}."
        )
    levels = DATASETS[config.dataset][0]
    for name in names:
        if levels not in MEMBERS[name].levels:
            raise ConfigError(
                f"{MEMBERS[name].title} (models={name}) models data of "
                f"{' or '.join(map(str, MEMBERS[name].levels))} levels, not the {levels} of "
                f"dataset={config.dataset!r}; drop it from models or choose another dataset."
            )
        steps = config.steps[name]
        if steps is not None and steps < 1:
            raise ConfigError(f"steps.{name}={steps} must be positive, or None (the budget's).")
    if config.curve_points < 1:
        raise ConfigError(f"curve_points={config.curve_points} must be positive.")
    if not 0 <= config.seed < 2**63:
        raise ConfigError(f"seed={config.seed} must be an integer in [0, 2**63).")
    e = config.eval
    metrics.check_quality_args(  # the shared FID, built once every model has trained
        config.dataset,
        num_samples=e.num_samples,
        feature_dataset=DATASETS[config.dataset][1],
        reference_examples=e.reference_examples,
        classifier_steps=e.classifier_steps,
        classifier_features=e.classifier_features,
        data_dir=config.data_dir,
        prefix="eval.",
    )
    for key in ("iwae_samples", "timing_samples", "completion_steps"):
        if e[key] < 1:
            raise ConfigError(f"eval.{key}={e[key]} must be positive.")
    for key in ("num_completions", "grid_samples"):  # pictures of the first test images/samples
        if not 1 <= e[key] <= e.num_samples:
            raise ConfigError(
                f"eval.{key}={e[key]} must be in [1, eval.num_samples={e.num_samples}]: the "
                "pictures show the first of the eval.num_samples test images and samples."
            )
    if e.naive_timing_passes is not None and e.naive_timing_passes < 1:
        raise ConfigError(
            f"eval.naive_timing_passes={e.naive_timing_passes} must be positive, or None."
        )
    if e.test_max_examples is not None and e.test_max_examples < 1:
        raise ConfigError(
            f"eval.test_max_examples={e.test_max_examples} must be positive, or None (the "
            "whole test split)."
        )


def member_config(config: ConfigDict, name: str) -> ConfigDict:
    """The experiment config of model ``name`` under the comparison's budget and dataset."""
    member = MEMBERS[name]
    c = member.get_config(member.variants.get(config.budget, ""))
    c.dataset, c.num_levels, c.binarize = config.dataset, DATASETS[config.dataset][0], "none"
    c.seed, c.raw_dir, c.data_dir = config.seed, config.raw_dir, config.data_dir
    if config.steps[name] is not None:
        c.num_steps = config.steps[name]
        c.warmup_steps = min(c.warmup_steps, c.num_steps // 10)
    c.eval_every = c.checkpoint_every = max(1, c.num_steps // config.curve_points)
    c.log_every = min(c.log_every, c.eval_every)
    c.test_max_examples = config.eval.test_max_examples
    if name == "vae":
        c.transfer.labels_per_class = ()  # the comparison needs no classifier transfer
        c.iwae_samples = config.eval.iwae_samples
        c.iwae_chunk_size = math.gcd(c.iwae_chunk_size, c.iwae_samples)
        if c.num_levels > 2:
            c.model.likelihood = "discretized_logistic"
    if name == "dcgan":
        feature_dataset = DATASETS[config.dataset][1]
        c.fid.dataset = None if feature_dataset == config.dataset else feature_dataset
        c.fid.num_samples = config.eval.num_samples
        c.fid.reference_examples = config.eval.reference_examples
        c.fid.classifier_steps = config.eval.classifier_steps
        c.fid.classifier_batch_size = 128
        c.fid.classifier_features = config.eval.classifier_features
    return c


@dataclasses.dataclass(frozen=True)
class TrainingSet:
    """The training images (and their features) for the memorisation check.

    Attributes:
      images: int [T, H, W, C] the models' training images.
      features: float [T, D] their features on the shared feature network.
      test_images: int [N, H, W, C] held-out images, the distances to reach.
    """

    images: np.ndarray
    features: np.ndarray
    test_images: np.ndarray

    def check(
        self, quality: metrics.SampleQuality, samples: np.ndarray, num_pictures: int
    ) -> tuple[dict[str, float], dict[str, np.ndarray]]:
        """(``TrainingNeighbours.summary``, pictures ``nearest`` and ``nearest_distance``)."""
        found = quality.training_neighbours(samples, self.images, self.test_images, self.features)
        return found.summary(), {
            "nearest": self.images[found.pixel_index[:num_pictures]],
            "nearest_distance": found.pixel_distance,
        }


@dataclasses.dataclass(frozen=True)
class Generator:
    """How to draw from a trained model.

    Attributes:
      sample: ``(params, key, n) -> int [n, H, W, C]`` samples (the fast method).
      complete: ``(params, key, images, known) -> images`` with the unknown
        pixels filled in; None for a model that cannot complete.
      autoregressive: the model, for the naive-sampling time; None otherwise.
    """

    sample: Callable[[Any, jax.Array, int], np.ndarray]
    complete: Callable[..., np.ndarray] | None
    autoregressive: Any = None


def make_generator(
    name: str, model: Any, task: Task, c: ConfigDict, config: ConfigDict
) -> Generator:
    """The samplers of member ``name``: ``model`` and ``task`` from ``tasks.from_config``."""
    family = MEMBERS[name].family
    shape = data.dataset_info(c.dataset, data_dir=c.data_dir).image_shape
    if family in (FLOW, BOLTZMANN):  # the family's own sampler and completion (Task.inference)
        inference = task.inference
        if inference is None or inference.sample is None:
            raise ConfigError(f"{MEMBERS[name].title} has no sampler to compare.")

        def sample_own(params, key, n):
            return inference.sample(params, key, (n, *shape))

        return Generator(_batched(sample_own), inference.complete)
    if family == AUTOREGRESSIVE:

        def sample_ar(params, key, n):
            return sampling.autoregressive_sample(model, params, key, (n, *shape))

        def complete_ar(params, key, images, known):
            return sampling.complete(model, params, key, images, known)

        return Generator(_batched(sample_ar), complete_ar, model)
    if family == LATENT:

        def sample_vae(params, key, n):
            return latent.prior_samples(model, params, key, n)[1]

        def complete_vae(params, key, images, known):
            return latent.complete(model, params, key, images, known, config.eval.completion_steps)

        return Generator(_batched(jax.jit(sample_vae, static_argnums=2)), complete_vae)

    def sample_gan(params, key, n):
        z = model.sample_latent(key, n)
        return gan_lib.generate_levels(model, params, z, c.num_levels)

    return Generator(sample_gan, None)


def _batched(sample: Callable) -> Callable:
    """``sample(params, key, n)`` in equal batches of at most ``_SAMPLE_BATCH`` (one compile)."""

    def run(params, key, n):
        batch = min(n, _SAMPLE_BATCH)
        parts = [
            np.asarray(sample(params, jax.random.fold_in(key, i), batch))
            for i in range(math.ceil(n / batch))
        ]
        return np.concatenate(parts)[:n]

    return run


def count_parameters(variables: Any) -> int:
    """Trainable parameters: every leaf except BatchNorm statistics."""
    leaves = jax.tree_util.tree_flatten_with_path(variables)[0]
    return int(
        sum(leaf.size for path, leaf in leaves if "batch_stats" not in jax.tree_util.keystr(path))
    )


def _metric_rows(workdir: pathlib.Path) -> list[dict]:
    return [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]


def training_summary(name: str, workdir: pathlib.Path) -> dict[str, Any]:
    """Training time, test likelihood and the training curve of a finished run."""
    rows = _metric_rows(workdir)
    train = [row for row in rows if row["split"] == "train"]
    (test,) = [row for row in rows if row["split"] == "test"][-1:]
    family = MEMBERS[name].family
    curve_metric = "fid" if family == ADVERSARIAL else "nll_nats"
    summary = {
        "train_steps": train[-1]["step"],
        "train_seconds": train[-1]["elapsed_s"],
        "curve_metric": curve_metric,
        "curve": [
            (row["elapsed_s"], row[curve_metric])
            for row in rows
            if row["split"] == "eval" and curve_metric in row
        ],
    }
    if family != ADVERSARIAL:
        summary.update(nll_nats=test["nll_nats"], bits_per_dim=test["bits_per_dim"])
    if family == LATENT:
        summary.update(
            elbo_nats=-test["elbo"],
            elbo_bits_per_dim=test["elbo_bits_per_dim"],
            iwae_samples=int(test["iwae_samples"]),
        )
    return summary


def evaluate_member(
    name: str,
    model: Any,
    task: Task,
    c: ConfigDict,
    params: Any,
    config: ConfigDict,
    quality: metrics.SampleQuality,
    examples: np.ndarray,
    training: TrainingSet,
) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """The comparison's numbers and pictures of one trained model.

    Args:
      name: the model's name.
      model: its module (``tasks.from_config``).
      task: its task.
      c: its experiment config.
      params: its trained (evaluation) variables.
      config: the compare config.
      quality: the shared FID / mode-coverage metric.
      examples: int [num_completions, H, W, C] test images to complete.
      training: the training set of the memorisation check.

    Returns:
      (results, pictures): the numbers, and ``grid`` (samples), ``nearest`` (their
      nearest training images), ``nearest_distance`` (float [N]) and, where the
      model can complete images, ``completions``.
    """
    generator = make_generator(name, model, task, c, config)
    params = jax.device_get(params)
    key = jax.random.key(config.seed)
    sample_key, timing_key, complete_key = jax.random.split(key, 3)
    samples = generator.sample(params, sample_key, config.eval.num_samples)
    results = {"parameters": count_parameters(params), **quality(samples)}
    n = config.eval.timing_samples
    results["sample_seconds"], _ = timing.fastest(lambda: generator.sample(params, timing_key, n))
    if generator.autoregressive is not None:
        shape = (n, *examples.shape[1:])
        passes = config.eval.naive_timing_passes
        if passes is None:
            naive = timing.time_sampling(generator.autoregressive, params, shape, ("naive",))
            results["naive_sample_seconds"] = naive["naive"].sample_s
        else:
            results["naive_sample_seconds"] = timing.naive_seconds_estimate(
                generator.autoregressive, params, shape, passes
            )
        results["naive_timing_passes"] = passes
    memorised, nearest = training.check(quality, samples, config.eval.grid_samples)
    results.update(memorised)
    pictures = {"grid": samples[: config.eval.grid_samples], **nearest}
    if generator.complete is not None:
        known = np.zeros(examples.shape[:3], bool)
        known[:, : examples.shape[1] // 2] = True  # the top half is given
        pictures["completions"] = np.asarray(
            generator.complete(params, complete_key, examples, known)
        )
    return results, pictures


def _cache_key(config: ConfigDict, c: ConfigDict) -> dict[str, Any]:
    """What a stored evaluation must match to be reused."""
    return json.loads(
        json.dumps(
            {
                "eval": config.eval.to_dict(),
                "seed": config.seed,
                "model": c.to_dict(),
                "version": EVAL_VERSION,
            }
        )
    )


def _load_cached(workdir: pathlib.Path, key: dict) -> tuple[dict, dict] | None:
    path = workdir / RESULTS_FILE
    if not path.is_file() or not (workdir / IMAGES_FILE).is_file():
        return None
    stored = json.loads(path.read_text())
    if stored.get("key") != key:
        return None
    with np.load(workdir / IMAGES_FILE) as pictures:
        return stored["results"], dict(pictures)


def _store(workdir: pathlib.Path, key: dict, results: dict, pictures: dict) -> None:
    tmp = workdir / f"{IMAGES_FILE}.tmp.npz"
    np.savez_compressed(tmp, **pictures)
    tmp.replace(workdir / IMAGES_FILE)
    tmp = workdir / f"{RESULTS_FILE}.tmp"
    tmp.write_text(json.dumps({"key": key, "results": results}, indent=2) + "\n")
    tmp.replace(workdir / RESULTS_FILE)  # written last: its presence means both are complete


def make_quality(config: ConfigDict, data_dir: pathlib.Path) -> metrics.SampleQuality:
    """The FID and mode-coverage metric shared by every model."""
    return metrics.SampleQuality.for_dataset(
        config.dataset,
        data_dir,
        num_samples=config.eval.num_samples,
        feature_dataset=DATASETS[config.dataset][1],
        reference_examples=config.eval.reference_examples,
        classifier_steps=config.eval.classifier_steps,
        classifier_features=config.eval.classifier_features,
    )


def _first_test_images(config: ConfigDict, data_dir: pathlib.Path, n: int) -> np.ndarray:
    """The first ``n`` test images: int [n, H, W, C]."""
    info = data.dataset_info(config.dataset, data_dir=data_dir)
    batches = data.eval_batches(
        config.dataset,
        info.test_split,
        batch_size=n,
        num_levels=DATASETS[config.dataset][0],
        data_dir=data_dir,
        process_index=0,
        process_count=1,
    )
    batch = next(iter(batches))
    return batch["image"][batch["mask"]]


def run(config: ConfigDict, workdir: pathlib.Path) -> dict[str, Any]:
    """Trains (or reuses) every model, evaluates them alike and writes the report.

    Returns:
      The contents of ``results.json``.
    """
    members = check_config(config)  # every key of every member, before any data or training
    workdir = pathlib.Path(workdir)
    feature_dataset = DATASETS[config.dataset][1]
    data_dir = data.prepare(config.dataset, data_dir=config.data_dir, raw_dir=config.raw_dir)
    data.prepare(feature_dataset, data_dir=config.data_dir, raw_dir=config.raw_dir)

    trained = {}
    for name, (c, model, task) in members.items():
        _log(f"== {MEMBERS[name].title}: training in {workdir / name} ({c.num_steps} steps)")
        state = train_and_evaluate(task, c, workdir / name)
        trained[name] = (c, model, task, state.eval_params)

    quality = make_quality(config, data_dir)
    real = _first_test_images(config, data_dir, config.eval.num_samples)
    examples = real[: config.eval.num_completions]
    train_images = metrics.dataset_images(
        config.dataset, data.dataset_info(config.dataset, data_dir=data_dir).train_split, data_dir
    )
    levels = DATASETS[config.dataset][0]
    training = TrainingSet(
        train_images,
        metrics.compute_features(quality.network.features, train_images, levels),
        real,
    )
    rows = [{"model": "test_images", "title": "Test images (the floor)", **quality(real)}]
    # The test images' own distances to the training set: the curve a model that does
    # not copy reaches (their memorised share is about 1% by construction, not shown).
    _, nearest = training.check(quality, real, config.eval.grid_samples)
    pictures = {"test_images": {"grid": real[: config.eval.grid_samples], **nearest}}
    for name, (c, model, task, params) in trained.items():
        key = _cache_key(config, c)
        cached = _load_cached(workdir / name, key)
        if cached is None:
            _log(f"== {MEMBERS[name].title}: evaluating")
            cached = evaluate_member(
                name, model, task, c, params, config, quality, examples, training
            )
            _store(workdir / name, key, *cached)
        else:
            _log(f"== {MEMBERS[name].title}: evaluation reused ({workdir / name / RESULTS_FILE})")
        results, pictures[name] = cached
        member = MEMBERS[name]
        rows.append(
            {
                "model": name,
                "title": member.title,
                "family": member.family,
                "branch": BRANCHES[member.family],
                "likelihood": None if task.inference is None else task.inference.density,
                **training_summary(name, workdir / name),
                **results,
            }
        )
    order = list(BRANCHES)  # the members grouped by branch, in the config's order within one
    rows = rows[:1] + sorted(rows[1:], key=lambda row: order.index(row["family"]))
    report = compare_report.write(
        workdir, config, rows, pictures, examples, DATASETS[config.dataset][0]
    )
    if jax.process_index() == 0:
        print(report)
    return {"config": config.to_dict(), "rows": rows}


def _log(message: str) -> None:
    if jax.process_index() == 0:
        print(message, flush=True)


if __name__ == "__main__":
    cli.main(run, DEFAULT_CONFIG)
