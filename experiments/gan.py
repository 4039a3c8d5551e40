"""GAN on MNIST: DCGAN (or the fully connected GAN), FID and mode coverage while training.

    python -m experiments.gan --workdir DIR [--config=experiments/configs/gan.py:cpu]

``metrics.jsonl`` rows:
  train  ``d_loss``, ``g_loss``, ``d_real`` = D(x), ``d_fake`` = D(G(z)) of the
         train step (``loss`` = ``d_loss``).
  eval   two rows per evaluation: the same per example on the held-out split,
         with BatchNorm running averages; and a row with ``fid`` (generated
         samples vs the reference split, ``fid_num_samples`` of them),
         ``fid_real_test`` (the held-out test images vs the same reference: the
         floor a perfect generator would reach at that N), and the mode coverage
         of the samples: ``class_entropy`` (log 10 = 2.303 at best),
         ``min_class_share`` (0.1 at best), ``classes_covered``.
See ``jaxgen.metrics`` for the FID protocol.

Pictures in ``samples/``: ``stepNNNNNNN_samples.png`` from one fixed noise batch
(the same codes at every evaluation, so progress is visible) and
``stepNNNNNNN_interpolation.png``, rows of G(z) along straight lines between
pairs of fixed codes. ``checkpoints/`` holds the latest states (to resume);
``checkpoints_best/`` the variables with the lowest FID so far, with the FID in
its metadata (the loop's ``Task.best_metric``).
"""

import functools
import pathlib
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from ml_collections import ConfigDict

from experiments import cli
from jaxgen import data, gan, keys, losses, metrics, viz
from jaxgen.models.dcgan import make_gan, to_levels, to_signed
from jaxgen.train import Task, jit_train_step, make_schedule, train_and_evaluate
from jaxgen.train.loop import BEST_DIR, best_metric_value
from jaxgen.validation import ConfigError

DEFAULT_CONFIG = pathlib.Path(__file__).parent / "configs" / "gan.py"
_GENERATE_BATCH = 500


def check_config(config: ConfigDict) -> None:
    """Raises a ValueError naming the first bad GAN-specific value."""
    if config.k < 1:
        raise ConfigError(f"k={config.k} discriminator steps per generator step must be >= 1.")
    if config.batch_size % config.k:
        raise ConfigError(
            f"batch_size={config.batch_size} must be divisible by k={config.k}: each of the k "
            "discriminator updates takes batch_size // k real images."
        )
    if config.generator_loss not in ("non_saturating", "minimax"):
        raise ConfigError(
            f"generator_loss={config.generator_loss!r} must be 'non_saturating' or 'minimax'."
        )
    if not config.learning_rate > 0:
        raise ConfigError(f"learning_rate={config.learning_rate} must be positive.")
    if config.interpolation_rows < 1 or config.interpolation_steps < 2:
        raise ConfigError("interpolation_rows must be >= 1 and interpolation_steps >= 2.")
    fid = config.fid
    if fid.num_samples <= fid.classifier_features:
        raise ConfigError(
            f"fid.num_samples={fid.num_samples} must exceed fid.classifier_features="
            f"{fid.classifier_features}, or the feature covariance is singular."
        )
    info = data.dataset_info(fid.dataset or config.dataset)
    if info.num_classes == 0:
        raise ConfigError(
            f"FID needs a labelled dataset for its feature network, and {info.name!r} has no "
            "labels: set --config.fid.dataset=mnist (or the dataset yours derives from)."
        )
    if info.image_shape != data.dataset_info(config.dataset).image_shape:
        raise ConfigError(
            f"fid.dataset={info.name!r} has images of shape {info.image_shape}, unlike "
            f"dataset={config.dataset!r}; choose a feature dataset of the same shape."
        )
    splits = data.dataset_info(config.dataset).splits
    if fid.reference_split not in splits:
        raise ConfigError(
            f"fid.reference_split={fid.reference_split!r} is not a split of "
            f"{config.dataset!r}; use one of {list(splits)}."
        )


def make_model(config: ConfigDict) -> gan.GAN:
    """The generator and discriminator named by ``config.model.name``, for the dataset."""
    shape = data.dataset_info(config.dataset).image_shape
    generator, discriminator = make_gan(config.model.name, shape, config.model.features)
    return gan.GAN(generator, discriminator, shape, config.model.latent_dim)


def make_optimizers(
    config: ConfigDict,
) -> tuple[optax.GradientTransformation, optax.GradientTransformation, optax.Schedule]:
    """Adam for each player; D's schedule runs in generator steps although it updates k times.

    Returns:
      (g_tx, d_tx, schedule).
    """
    schedule = make_schedule(config)

    def adam(learning_rate) -> optax.GradientTransformation:
        return optax.adam(learning_rate, b1=config.adam_b1, b2=config.adam_b2)

    return adam(schedule), adam(lambda count: schedule(count // config.k)), schedule


@functools.partial(jax.jit, static_argnums=(0, 3))
def _generate_batch(model: gan.GAN, params: Any, z: jax.Array, num_levels: int) -> jax.Array:
    return to_levels(model.generate(params, z), num_levels)


def generate_levels(model: gan.GAN, params: Any, z: jax.Array, num_levels: int) -> np.ndarray:
    """G(z) as integer levels, in batches: z float [N, latent_dim] -> int [N, H, W, C]."""
    return np.concatenate(
        [
            np.asarray(_generate_batch(model, params, z[i : i + _GENERATE_BATCH], num_levels))
            for i in range(0, len(z), _GENERATE_BATCH)
        ]
    )


def interpolation_codes(model: gan.GAN, key: jax.Array, rows: int, steps: int) -> jax.Array:
    """Codes on straight lines between random pairs: float [rows * steps, latent_dim]."""
    start_key, end_key = jax.random.split(key)
    start, end = model.sample_latent(start_key, rows), model.sample_latent(end_key, rows)
    t = jnp.linspace(0.0, 1.0, steps)[None, :, None]
    return ((1.0 - t) * start[:, None] + t * end[:, None]).reshape(rows * steps, -1)


class SampleEvaluator:
    """Pictures, FID and mode coverage of a generator at every evaluation.

    The feature network and the reference statistics are set up at the first
    call (training the classifier once per data folder; see ``jaxgen.metrics``).

    Args:
      config: the experiment config.
      model: the GAN.
    """

    def __init__(self, config: ConfigDict, model: gan.GAN):
        self.config, self.model = config, model
        sample_key = keys.make_keys(config.seed).sample
        self.sample_key = sample_key
        # The pictures' fixed codes: a fold of the sample stream that the per-step
        # keys, fold_in(sample, step), never reach.
        fixed_key = jax.random.fold_in(sample_key, 2**31 - 1)
        self.fixed_z = model.sample_latent(fixed_key, config.num_samples)
        self.interp_z = interpolation_codes(
            model,
            jax.random.fold_in(fixed_key, 1),
            config.interpolation_rows,
            config.interpolation_steps,
        )

    @functools.cached_property
    def _quality(self) -> metrics.SampleQuality:
        """The FID and mode-coverage metric (the classifier learns ``fid.dataset``)."""
        fid, dataset = self.config.fid, self.config.dataset
        data_dir = data.prepare(dataset, data_dir=self.config.data_dir, raw_dir=self.config.raw_dir)
        if fid.dataset:
            data.prepare(fid.dataset, data_dir=self.config.data_dir, raw_dir=self.config.raw_dir)
        return metrics.SampleQuality.for_dataset(
            dataset,
            data_dir,
            num_samples=fid.num_samples,
            feature_dataset=fid.dataset,
            reference_split=fid.reference_split,
            reference_examples=fid.reference_examples,
            classifier_steps=fid.classifier_steps,
            classifier_batch_size=fid.classifier_batch_size,
            classifier_features=fid.classifier_features,
            classifier_seed=fid.classifier_seed,
        )

    def sample_metrics(self, params: Any, key: jax.Array) -> dict[str, float]:
        """FID and mode coverage of ``config.fid.num_samples`` fresh samples."""
        z = self.model.sample_latent(key, self.config.fid.num_samples)
        return self._quality(generate_levels(self.model, params, z, self.config.num_levels))

    def __call__(
        self, params: Any, key: jax.Array, workdir: pathlib.Path, step: int
    ) -> dict[str, float]:
        """Writes the pictures of ``step`` and returns its FID and mode coverage.

        Args:
          params: the GAN's variables (replicated or on one device).
          key: the key of this evaluation's FID samples.
          workdir: the run's folder; pictures go to ``workdir/samples``.
          step: generator updates done.

        Returns:
          The sample metrics (``Task.evaluate_samples``).
        """
        params = jax.device_get(params)
        num_levels = self.config.num_levels
        row = self.sample_metrics(params, key)
        if jax.process_index() == 0:
            out = pathlib.Path(workdir) / "samples"
            grid = generate_levels(self.model, params, self.fixed_z, num_levels)
            viz.save_image_grid(out / f"step{step:07d}_samples.png", grid, num_levels)
            strip = generate_levels(self.model, params, self.interp_z, num_levels)
            viz.save_image_grid(
                out / f"step{step:07d}_interpolation.png",
                strip,
                num_levels,
                num_cols=self.config.interpolation_steps,
            )
        return row


def make_task(config: ConfigDict) -> Task:
    """The GAN task: k-step adversarial update, FID and pictures at every evaluation."""
    check_config(config)
    model = make_model(config)
    g_tx, d_tx, schedule = make_optimizers(config)
    num_levels = config.num_levels
    per_example_d = jax.vmap(
        lambda real, fake: losses.gan_discriminator_loss(real[None], fake[None])
    )
    per_example_g = jax.vmap(
        lambda fake: losses.gan_generator_loss(fake[None], config.generator_loss)
    )

    def init(key, batch):
        del batch  # the shapes come from the dataset's info
        return model.init(key)

    def make_train_step(tx, schedule, mesh):
        del tx, schedule  # the players' own optimizers are g_tx and d_tx
        return jit_train_step(
            gan.make_train_step(
                model,
                g_tx,
                d_tx,
                k=config.k,
                generator_loss=config.generator_loss,
                num_levels=num_levels,
                ema_decay=config.ema_decay,
            ),
            mesh,
        )

    def eval_fn(params, batch, key):
        x = to_signed(batch["image"], num_levels)
        real = model.discriminate(params, x)
        fake = model.discriminate(params, model.generate(params, model.sample_latent(key, len(x))))
        return {
            "d_loss": per_example_d(real, fake),
            "g_loss": per_example_g(fake),
            "d_real": jax.nn.sigmoid(real),
            "d_fake": jax.nn.sigmoid(fake),
        }

    return Task(
        init=init,
        loss_fn=None,  # the GAN has its own train step
        eval_fn=eval_fn,
        make_optimizer=lambda config: (gan.optimizer(g_tx, d_tx), schedule),
        make_train_step=make_train_step,
        evaluate_samples=SampleEvaluator(config, model),
        best_metric="fid",
    )


def run(config: ConfigDict, workdir: pathlib.Path) -> None:
    """Trains and evaluates the GAN in ``workdir`` and prints the best FID."""
    train_and_evaluate(make_task(config), config, workdir)
    if jax.process_index() == 0:
        fid = best_metric_value(workdir, "fid")
        print(f"Best FID {fid:.3f} (checkpoint in {workdir / BEST_DIR}).")


if __name__ == "__main__":
    cli.main(run, DEFAULT_CONFIG)
