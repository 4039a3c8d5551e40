"""jaxgen.tasks: each family's loss, evaluation, state and pictures, and the config builders."""

import pathlib
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from optax.tree_utils import tree_get_all_with_path

from experiments.configs import autoencoder as autoencoder_config
from experiments.configs import gan as gan_config
from experiments.configs import pixelcnn as pixelcnn_config
from experiments.configs import vae as vae_config
from jaxgen import gan as gan_lib
from jaxgen import latent, losses, tasks, train, viz
from jaxgen.models import VAE, Autoencoder, GatedPixelCNN, PixelCNN
from jaxgen.models.dcgan import DCGANDiscriminator, DCGANGenerator, make_gan
from jaxgen.validation import ConfigError

SHAPE = (8, 8, 1)
KEY = jax.random.key(0)


def _binary(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 2, (n, *SHAPE)).astype(np.int32)


def test_autoregressive_loss_and_eval_are_the_nll_in_nats_and_bits():
    model = PixelCNN(num_levels=2, num_layers=2, features=8, head_features=8)
    task = tasks.autoregressive(model)
    batch = {"image": _binary(4)}
    params = task.init(KEY, batch)
    nll = losses.autoregressive_nll(model.apply(params, batch["image"]), batch["image"])
    loss, metrics = task.loss_fn(params, batch, KEY)
    np.testing.assert_allclose(loss, nll.mean(), rtol=1e-6)
    np.testing.assert_allclose(metrics["bits_per_dim"], nll.mean() / 64 / np.log(2), rtol=1e-6)
    per_image = task.eval_fn(params, batch, KEY)
    np.testing.assert_allclose(per_image["nll_nats"], nll, rtol=1e-6)
    assert per_image["bits_per_dim"].shape == (4,)


def test_a_class_conditional_model_gets_the_labels():
    model = GatedPixelCNN(
        num_levels=2, num_layers=2, features=8, kernel_size=3, head_features=8, num_classes=3
    )
    task = tasks.autoregressive(model)
    batch = {"image": _binary(4), "label": np.array([0, 1, 2, -1])}  # -1: padding, read as 0
    params = task.init(KEY, batch)
    per_image = task.eval_fn(params, batch, KEY)["nll_nats"]
    relabelled = task.eval_fn(params, {**batch, "label": np.array([1, 2, 0, 0])}, KEY)["nll_nats"]
    assert np.all(np.abs(per_image[:3] - relabelled[:3]) > 1e-4)
    np.testing.assert_allclose(per_image[3], relabelled[3], rtol=1e-6)  # -1 and 0 alike


@pytest.fixture
def grids(monkeypatch):
    """The images written as picture grids: file name -> (images [B, H, W, C], levels, columns).

    Rows [R, S, H, W, C] are flattened to R * S images in S columns.
    """
    written = {}
    save = viz.save_grid

    def capture(path, images, num_levels, num_cols=None, **captions):
        images = np.asarray(images)
        if images.ndim == 5:
            images, num_cols = images.reshape(-1, *images.shape[2:]), images.shape[1]
        written[pathlib.Path(path).name] = (images, num_levels, num_cols)
        return save(path, images, num_levels, num_cols, **captions)

    monkeypatch.setattr(viz, "save_grid", capture)
    monkeypatch.setattr(viz, "save_image_grid", capture)
    return written


def test_autoregressive_pictures(tmp_path, grids):
    model = PixelCNN(num_levels=2, num_layers=2, features=8, head_features=8)
    task = tasks.autoregressive(model, sample_method="cached")
    examples = {"image": _binary(3)}
    params = task.init(KEY, examples)
    paths = task.write_samples(params, KEY, tmp_path, 7, examples)
    names = ["step0000007_samples.png", "step0000007_completions.png"]
    assert [p.name for p in paths] == names and all(p.is_file() for p in paths)
    samples, levels, _ = grids[names[0]]
    assert samples.shape == (3, *SHAPE) and levels == 2 and set(np.unique(samples)) <= {0, 1}
    rows, _, cols = grids[names[1]]
    completions, originals = rows[:3], rows[3:]
    assert cols == 3
    np.testing.assert_array_equal(originals, examples["image"])
    np.testing.assert_array_equal(completions[:, :4], examples["image"][:, :4])  # top half kept


def test_autoregressive_rejects_a_bad_sample_method():
    model = PixelCNN(num_levels=2, num_layers=2, features=8)
    with pytest.raises(ConfigError, match="sample_method='fast'"):
        tasks.autoregressive(model, sample_method="fast")


def test_kl_schedule_rises_linearly_to_beta():
    schedule = tasks.kl_schedule(beta=2.0, warmup_steps=4)
    np.testing.assert_allclose([schedule(s) for s in (0, 1, 2, 4, 9)], [0, 0.5, 1, 2, 2])
    np.testing.assert_allclose(tasks.kl_schedule(0.5)(0), 0.5)  # no warm-up


def test_vae_loss_weights_the_kl_by_the_step():
    model = VAE(latent_dim=2, num_levels=2, image_shape=SHAPE, features=(8,))
    task = tasks.vae(model, beta=1.0, kl_warmup_steps=4, iwae_samples=4, iwae_chunk_size=2)
    assert task.loss_takes_step
    batch = {"image": _binary(4)}
    params = task.init(KEY, batch)
    terms = latent.elbo_terms(model, params, batch["image"], KEY, 1)
    for step, weight in ((0, 0.0), (2, 0.5), (4, 1.0), (100, 1.0)):
        loss, metrics = task.loss_fn(params, batch, KEY, jnp.int32(step))
        expected = weight * terms["kl"].mean() - terms["log_likelihood"].mean()
        np.testing.assert_allclose(loss, expected, rtol=1e-5)
        np.testing.assert_allclose(metrics["beta"], weight)
    per_image = task.eval_fn(params, batch, KEY)
    np.testing.assert_allclose(per_image["nll_nats"], -per_image["iwae"])
    assert np.all(per_image["iwae"] >= per_image["elbo"] - 1e-3)  # IWAE bound >= ELBO (K=4)
    np.testing.assert_array_equal(per_image["iwae_samples"], 4)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"iwae_samples": 10, "iwae_chunk_size": 3}, "iwae_chunk_size=3 must divide"),
        ({"beta": -1.0}, "beta=-1.0"),
        ({"beta": float("nan")}, "beta=nan"),
        ({"kl_warmup_steps": -1}, "kl_warmup_steps=-1 must be non-negative"),
        ({"elbo_samples": 0}, "elbo_samples=0"),
        ({"edit_dim": 2}, "edit_dim=2"),
    ],
)
def test_vae_rejects_bad_arguments(kwargs, message):
    model = VAE(latent_dim=2, num_levels=2, image_shape=SHAPE, features=(8,))
    with pytest.raises(ConfigError, match=message):
        tasks.vae(model, **kwargs)


def test_vae_and_autoencoder_pictures(tmp_path, grids):
    vae = VAE(latent_dim=2, num_levels=2, image_shape=SHAPE, features=(8,))
    task = tasks.vae(vae, manifold_size=3, interpolation_steps=4, iwae_samples=2)
    examples = {"image": _binary(4)}
    paths = task.write_samples(task.init(KEY, examples), KEY, tmp_path, 1, examples)
    names = ["prior_mean", "prior_samples", "manifold", "edit", "interpolation", "reconstructions"]
    assert [p.name for p in paths] == [f"step0000001_{n}.png" for n in names]
    manifold, levels, cols = grids["step0000001_manifold.png"]
    assert manifold.shape == (9, *SHAPE) and (levels, cols) == (256, 3)  # 3 x 3, 8-bit
    interp, _, cols = grids["step0000001_interpolation.png"]
    assert interp.shape == (2 * 6, *SHAPE) and cols == 6  # 2 pairs: 2 ends + 4 points each
    ends = interp.reshape(2, 6, *SHAPE)[:, [0, -1]]
    np.testing.assert_array_equal(ends, 255 * examples["image"].reshape(2, 2, *SHAPE))

    ae = Autoencoder(
        latent_dim=2, num_levels=2, image_shape=SHAPE, features=(4,), hidden_features=8
    )
    task = tasks.autoencoder(ae, interpolation_steps=3)
    task.write_samples(task.init(KEY, examples), KEY, tmp_path, 1, examples)
    recon, _, cols = grids["step0000001_reconstructions.png"]
    assert cols == 4  # originals over reconstructions
    np.testing.assert_array_equal(recon[:4], 255 * examples["image"])


def test_autoencoder_loss_is_the_summed_squared_error():
    model = Autoencoder(latent_dim=2, num_levels=2, image_shape=SHAPE, features=(4,))
    task = tasks.autoencoder(model)
    batch = {"image": _binary(3)}
    params = task.init(KEY, batch)
    error = losses.reconstruction_loss(model.apply(params, batch["image"]), batch["image"], 2)
    loss, metrics = task.loss_fn(params, batch, KEY)
    np.testing.assert_allclose(loss, error.mean(), rtol=1e-6)
    np.testing.assert_allclose(metrics["mse"], error.mean() / 64, rtol=1e-6)
    np.testing.assert_allclose(task.eval_fn(params, batch, KEY)["loss"], error, rtol=1e-6)


def test_gan_task_builds_both_players_state_and_steps(tmp_path, grids):
    config = gan_config.get_config("tiny")
    config.k = 2
    generator, discriminator = make_gan("dcgan", (16, 16, 1), features=4)
    task = tasks.gan(generator, discriminator, latent_dim=8, k=2, num_samples=4)
    assert task.loss_fn is None and task.best_metric is None  # no quality metric given
    optimizers, schedule = task.make_optimizer(config)
    assert isinstance(optimizers, gan_lib.Optimizers)
    batch = {"image": np.random.default_rng(0).integers(0, 256, (8, 16, 16, 1)).astype(np.int32)}
    state = task.init_state(jax.jit(task.init)(KEY, batch), optimizers, None)  # one compile
    train_step = task.make_train_step(optimizers, schedule, None)
    state, metrics = train_step(state, batch, KEY)
    assert int(state.step) == 1 and np.isfinite(float(metrics["d_loss"]))
    counts = [int(c) for _, c in tree_get_all_with_path(state.opt_state["discriminator"], "count")]
    assert counts == [2, 2]  # k discriminator updates per step (Adam's and the schedule's count)
    row = task.evaluate_samples(state.params, KEY, tmp_path, 1)
    assert row == {}  # pictures only
    samples, levels, _ = grids["step0000001_samples.png"]
    assert samples.shape == (4, 16, 16, 1) and levels == 256
    strip, _, cols = grids["step0000001_interpolation.png"]
    assert strip.shape == (8 * 10, 16, 16, 1) and cols == 10  # the default 8 rows of 10
    per_example = jax.jit(task.eval_fn)(state.params, batch, KEY)
    assert all(v.shape == (8,) for v in per_example.values())
    with pytest.raises(ConfigError, match="k=0"):
        tasks.gan(generator, discriminator, k=0)
    with pytest.raises(ConfigError, match="generator_loss='hinge'"):
        tasks.gan(generator, discriminator, generator_loss="hinge")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"adam_b1": 1.0}, "adam_b1=1.0 (Adam's beta) must be in [0, 1)"),
        ({"adam_b1": -0.1}, "adam_b1=-0.1"),
        ({"adam_b2": 1.5}, "adam_b2=1.5"),
        ({"adam_b2": float("nan")}, "adam_b2=nan"),
        ({"latent_dim": 0}, "latent_dim=0 must be a positive integer"),
        ({"num_samples": -1}, "num_samples=-1 must be a positive integer"),
        ({"interpolation_steps": 1}, "interpolation_steps=1 must be at least 2"),
    ],
)
def test_gan_rejects_bad_arguments(kwargs, message):
    generator, discriminator = make_gan("mlp", (8, 8, 1))
    with pytest.raises(ConfigError, match=re.escape(message)):
        tasks.gan(generator, discriminator, **kwargs)


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("model.name", "wgan", "model.name='wgan' must be one of dcgan, mlp"),
        ("model.features", 0, "model.features=0 must be a positive integer"),
        ("model.latent_dim", -1, "model.latent_dim=-1 must be a positive integer"),
        ("adam_b2", 1.0, "adam_b2=1.0 (Adam's beta) must be in [0, 1)"),
        ("fid.classifier_seed", -1, "fid.classifier_seed=-1 must be non-negative"),
        ("fid.reference_examples", 1, "fid.reference_examples=1 must be at least fid.num_samp"),
        ("fid.reference_examples", 100, "fid.reference_examples=100 must be at least fid.num_s"),
        ("fid.num_samples", 5, "fid.num_samples=5 must exceed fid.classifier_features=4"),
        ("fid.num_samples", 10_001, "fid.num_samples=10001 is more than the 10000 test images"),
        ("fid.classifier_batch_size", 60_001, "fid.classifier_batch_size=60001 is larger than"),
    ],
)
def test_gan_config_checks_every_fid_key_before_training(key, value, message):
    config = gan_config.get_config("tiny")
    config.fid.classifier_features = 4
    section, _, name = key.rpartition(".")
    (config[section] if section else config)[name] = value
    with pytest.raises(ConfigError, match=re.escape(message)):
        tasks.from_config("gan", config)


@pytest.mark.parametrize(
    ("family", "get_config", "key", "value", "message"),
    [
        ("autoregressive", pixelcnn_config.get_config, "model.features", 0, "features=0"),
        ("vae", vae_config.get_config, "model.features", (16, 0), "features=(16, 0) must hold"),
        ("autoencoder", autoencoder_config.get_config, "model.features", (), "at least one"),
        ("autoencoder", autoencoder_config.get_config, "model.hidden_features", 0, "hidden_f"),
    ],
)
def test_bad_model_arguments_are_config_errors_before_any_data(
    family, get_config, key, value, message
):
    # The modules check their arguments when set up: train.check_run traces their
    # init abstractly (jax.eval_shape), with no data at hand.
    config = get_config("tiny")
    config.model[key.split(".")[1]] = value
    _, task = tasks.from_config(family, config)
    with pytest.raises(ConfigError, match=re.escape(message)):
        train.check_run(task, config)


def test_dcgan_networks_check_their_width_before_any_data():
    config = gan_config.get_config("tiny")
    for features in ((0, 4), (4, -1)):
        generator, discriminator = (
            DCGANGenerator(features=features[0]),
            DCGANDiscriminator(features=features[1]),
        )
        task = tasks.gan(generator, discriminator, latent_dim=8)
        with pytest.raises(ConfigError, match=r"DCGAN\w+ features=(0|-1) must be positive"):
            train.check_run(task, config)


def test_gan_fixed_codes_follow_the_seed():
    generator, discriminator = make_gan("mlp", (8, 8, 1))
    a = tasks.SampleEvaluator(gan_lib.GAN(generator, discriminator, latent_dim=4), 256, seed=0)
    b = tasks.SampleEvaluator(gan_lib.GAN(generator, discriminator, latent_dim=4), 256, seed=0)
    c = tasks.SampleEvaluator(gan_lib.GAN(generator, discriminator, latent_dim=4), 256, seed=1)
    np.testing.assert_array_equal(a.fixed_z, b.fixed_z)
    assert not np.allclose(a.fixed_z, c.fixed_z)


@pytest.mark.parametrize(
    ("family", "get_config", "variants", "model_type"),
    [
        ("autoregressive", pixelcnn_config.get_config, "gated,tiny", GatedPixelCNN),
        ("vae", vae_config.get_config, "tiny", VAE),
        ("autoencoder", autoencoder_config.get_config, "tiny", Autoencoder),
        ("gan", gan_config.get_config, "tiny", gan_lib.GAN),
    ],
)
def test_from_config_builds_the_family_model_and_task(family, get_config, variants, model_type):
    config = get_config(variants)
    model, task = tasks.from_config(family, config)
    assert isinstance(model, model_type)
    assert callable(task.eval_fn)


def test_from_config_names_a_bad_family_or_value():
    with pytest.raises(ConfigError, match="family='wavenet'"):
        tasks.from_config("wavenet", pixelcnn_config.get_config("tiny"))
    config = gan_config.get_config("tiny")
    config.batch_size = 15
    config.k = 2
    with pytest.raises(ConfigError, match="batch_size=15 must be divisible by k=2"):
        tasks.from_config("gan", config)
    config = vae_config.get_config("tiny")
    config.model.likelihood = "poisson"
    with pytest.raises(ConfigError, match="poisson"):
        tasks.from_config("vae", config)
