"""The adversarial family's task: the k-step two-player update, pictures, FID and coverage."""

import pathlib
from collections.abc import Callable
from typing import Any, Literal

import flax.linen as nn
import jax
import optax
from ml_collections import ConfigDict

from jaxgen import gan as gan_lib
from jaxgen import keys, losses, metrics, viz
from jaxgen.levels import to_signed
from jaxgen.train.loop import Inference, Task
from jaxgen.train.optim import make_schedule
from jaxgen.train.step import jit_train_step
from jaxgen.validation import ConfigError

GENERATOR_LOSSES = ("non_saturating", "minimax")
PROGRESS_SAMPLES = 8  # fixed codes per row of progress.png


class SampleEvaluator:
    """``Task.evaluate_samples`` of a GAN: pictures, and FID and mode coverage if measured.

    Pictures in ``workdir/samples`` at every evaluation: ``stepNNNNNNN_samples.png``
    from one fixed noise batch (the same codes every time, so progress is
    visible) and ``stepNNNNNNN_interpolation.png``, rows of G(z) along straight
    lines between pairs of fixed codes; ``progress.png`` holds one row per evaluation
    of G on the first ``PROGRESS_SAMPLES`` fixed codes (``viz.save_progress``, kept
    across resumes). The fixed codes come from a fold of the
    run's sample stream (``keys.make_keys(seed).sample``) that the per-step keys
    ``fold_in(sample, step)`` never reach.

    Args:
      model: the GAN.
      num_levels: L of the images.
      seed: the run's seed (``config.seed``).
      num_samples: codes in the sample grid.
      interpolation_rows, interpolation_steps: the interpolation picture's size.
      quality: builds the FID / mode-coverage metric at the first evaluation
        (it may train a classifier); None: pictures only.
      quality_samples: N, the samples measured at every evaluation.
    """

    def __init__(
        self,
        model: gan_lib.GAN,
        num_levels: int,
        *,
        seed: int = 0,
        num_samples: int = 64,
        interpolation_rows: int = 8,
        interpolation_steps: int = 10,
        quality: Callable[[], metrics.SampleQuality] | None = None,
        quality_samples: int = 10_000,
    ):
        self.model, self.num_levels = model, num_levels
        self.interpolation_steps = interpolation_steps
        self._make_quality = quality
        self._quality: metrics.SampleQuality | None = None
        self.quality_samples = quality_samples
        fixed_key = jax.random.fold_in(keys.make_keys(seed).sample, 2**31 - 1)
        self.fixed_z = model.sample_latent(fixed_key, num_samples)
        self.interp_z = gan_lib.interpolation_codes(
            model, jax.random.fold_in(fixed_key, 1), interpolation_rows, interpolation_steps
        )

    def sample_metrics(self, params: Any, key: jax.Array) -> dict[str, float]:
        """FID and mode coverage of ``quality_samples`` fresh samples ({} without ``quality``)."""
        if self._make_quality is None:
            return {}
        if self._quality is None:
            self._quality = self._make_quality()
        z = self.model.sample_latent(key, self.quality_samples)
        return self._quality(gan_lib.generate_levels(self.model, params, z, self.num_levels))

    def __call__(
        self, params: Any, key: jax.Array, workdir: pathlib.Path, step: int
    ) -> dict[str, float]:
        """Writes the pictures of ``step`` (on process 0) and returns its sample metrics."""
        params = jax.device_get(params)
        row = self.sample_metrics(params, key)
        if jax.process_index() == 0:
            out = pathlib.Path(workdir) / "samples"
            grid = gan_lib.generate_levels(self.model, params, self.fixed_z, self.num_levels)
            viz.save_grid(
                out / f"step{step:07d}_samples.png",
                grid,
                self.num_levels,
                title=f"step {step}: G(z), fixed z",
            )
            viz.save_progress(
                out / "progress.png",
                grid[:PROGRESS_SAMPLES],
                step,
                self.num_levels,
                title="G(z) of fixed z; rows: evaluations",
            )
            strip = gan_lib.generate_levels(self.model, params, self.interp_z, self.num_levels)
            viz.save_grid(
                out / f"step{step:07d}_interpolation.png",
                strip,
                self.num_levels,
                num_cols=self.interpolation_steps,
                title=f"step {step}: rows: G(z) on lines between two codes",
            )
        return row


def gan(
    generator: nn.Module,
    discriminator: nn.Module,
    *,
    latent_dim: int = 100,
    num_levels: int = 256,
    k: int = 1,
    generator_loss: Literal["non_saturating", "minimax"] = "non_saturating",
    adam_b1: float = 0.5,
    adam_b2: float = 0.999,
    seed: int = 0,
    num_samples: int = 64,
    interpolation_rows: int = 8,
    interpolation_steps: int = 10,
    quality: Callable[[], metrics.SampleQuality] | None = None,
    quality_samples: int = 10_000,
) -> Task:
    """The GAN's task: Algorithm 1 of Goodfellow et al. (2014) with Adam for each player.

    Train metrics (``jaxgen.gan.make_gan_step``): ``d_loss``, ``g_loss``,
    ``d_real`` = D(x), ``d_fake`` = D(G(z)), ``loss`` = ``d_loss``. Eval rows:
    the same per example on the held-out split with BatchNorm running averages;
    with ``quality``, a second row with ``fid``, ``fid_num_samples``,
    ``fid_real_test`` (the real-data floor) and the mode coverage, and the loop
    keeps the variables of the lowest ``fid`` in ``checkpoints_best/``.
    Pictures at every evaluation: see ``SampleEvaluator``.

    Args:
      generator: ``(z float [B, latent_dim], train) -> float [B, H, W, C]`` in [-1, 1].
      discriminator: ``(x float [B, H, W, C], train) -> logits float [B]``.
      latent_dim: size of z ~ N(0, I).
      num_levels: L of the integer images (mapped onto [-1, 1]).
      k: discriminator updates per generator update; the batch splits into k parts.
      generator_loss: ``"non_saturating"`` or ``"minimax"``.
      adam_b1, adam_b2: Adam's betas for both players; the learning rate is the
        config's schedule, in generator steps for both.
      seed: the run's seed (``config.seed``), for the pictures' fixed codes.
      num_samples, interpolation_rows, interpolation_steps: picture sizes.
      quality: builds the FID / mode-coverage metric (e.g.
        ``lambda: metrics.SampleQuality.for_dataset(...)``), once, at the first
        evaluation; None: no sample metrics.
      quality_samples: N, the samples the metric measures at every evaluation.

    Returns:
      The Task; its state is built by ``jaxgen.gan.init_state``.

    Raises:
      ConfigError: a bad argument, named: ``k``, ``generator_loss``, a beta
        outside [0, 1), a size below 1, fewer than 2 interpolation steps.
    """
    if k < 1:
        raise ConfigError(f"k={k} discriminator steps per generator step must be >= 1.")
    if generator_loss not in GENERATOR_LOSSES:
        raise ConfigError(f"generator_loss={generator_loss!r} must be one of {GENERATOR_LOSSES}.")
    for name, beta in (("adam_b1", adam_b1), ("adam_b2", adam_b2)):
        if not 0 <= beta < 1:  # 1: the bias correction divides by 1 - beta**t = 0
            raise ConfigError(f"{name}={beta} (Adam's beta) must be in [0, 1).")
    sizes = dict(latent_dim=latent_dim, num_samples=num_samples, quality_samples=quality_samples)
    sizes["interpolation_rows"] = interpolation_rows
    for name, value in sizes.items():
        if value < 1:
            raise ConfigError(f"{name}={value} must be a positive integer.")
    if interpolation_steps < 2:
        raise ConfigError(f"interpolation_steps={interpolation_steps} must be at least 2.")
    model = gan_lib.GAN(generator, discriminator, latent_dim=latent_dim)

    def init(key, batch):
        return model.init(key, batch["image"].shape[1:])

    def make_optimizer(config: ConfigDict) -> tuple[gan_lib.Optimizers, optax.Schedule]:
        schedule = make_schedule(config)

        def adam(learning_rate) -> optax.GradientTransformation:
            return optax.adam(learning_rate, b1=adam_b1, b2=adam_b2)

        # D's optimizer counts its k updates per step; its schedule runs in generator steps.
        return gan_lib.Optimizers(adam(schedule), adam(lambda n: schedule(n // k))), schedule

    def make_train_step(optimizers, schedule, mesh):
        del schedule  # in the players' optimizers
        step = gan_lib.make_gan_step(
            model, optimizers, k=k, generator_loss=generator_loss, num_levels=num_levels
        )
        return jit_train_step(step, mesh)

    per_example_d = jax.vmap(lambda r, f: losses.gan_discriminator_loss(r[None], f[None]))
    per_example_g = jax.vmap(lambda f: losses.gan_generator_loss(f[None], generator_loss))

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

    evaluator = SampleEvaluator(
        model,
        num_levels,
        seed=seed,
        num_samples=num_samples,
        interpolation_rows=interpolation_rows,
        interpolation_steps=interpolation_steps,
        quality=quality,
        quality_samples=quality_samples,
    )

    def sample(params, key, shape):
        z = model.sample_latent(key, shape[0])
        images = gan_lib.generate_levels(model, jax.device_get(params), z, num_levels)
        if images.shape != tuple(shape):
            raise ConfigError(f"shape={shape}: the generator makes images of {images.shape[1:]}.")
        return images

    inference = Inference(
        sample=sample,
        density_note=(
            "a GAN's density is implicit: it can be sampled but not evaluated; FID and "
            "precision/recall of its samples measure it"
        ),
        sample_metrics=None if quality is None else evaluator.sample_metrics,
    )
    return Task(
        init=init,
        loss_fn=None,  # the two players have their own step
        eval_fn=eval_fn,
        make_optimizer=make_optimizer,
        init_state=gan_lib.init_state,
        make_train_step=make_train_step,
        evaluate_samples=evaluator,
        best_metric=None if quality is None else "fid",
        family="gan",
        modules={"generator": generator, "discriminator": discriminator},
        inference=inference,
    )
