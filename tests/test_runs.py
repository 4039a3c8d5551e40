"""load_run: a trained workdir back as model, params and samplers, for every family.

One tiny run per family is trained in this process; the loaded run must give
back the trained state's params, draw the samples the library's samplers draw
from that state with the same key, and recompute the run's own test row.
"""

import dataclasses
import json
import pathlib
import shutil
import subprocess
import sys

import chex
import jax
import numpy as np
import pytest
from PIL import Image

import jaxgen
from experiments.configs import autoencoder, gan, pixelcnn, vae
from jaxgen import gan as gan_lib
from jaxgen import latent, parallel, sampling, tasks, train
from jaxgen.runs import read_images
from jaxgen.train.record import build_module, module_spec
from jaxgen.validation import ConfigError
from tests.conftest import REPO, xla_flags
from tests.experiments.test_cli import assert_clean_error

CONFIGS = {"autoregressive": pixelcnn, "vae": vae, "autoencoder": autoencoder, "gan": gan}
STEPS = 4


@dataclasses.dataclass(frozen=True)
class Trained:
    family: str
    workdir: pathlib.Path
    state: train.TrainState
    model: object
    config: object


def _train(family: str, data_dir: pathlib.Path, raw_dir: pathlib.Path, workdir: pathlib.Path):
    config = CONFIGS[family].get_config("tiny")
    config.data_dir, config.raw_dir = str(data_dir), str(raw_dir)
    config.num_steps = config.eval_every = config.checkpoint_every = STEPS
    config.log_every = 2
    model, task = tasks.from_config(family, config)
    # No pictures and no FID here: the experiments' tests cover them.
    task = dataclasses.replace(task, write_samples=None, evaluate_samples=None, best_metric=None)
    # One device, as most users train (-15% of this file's time); loading and evaluating run on
    # the suite's eight. Runs on 1 and 8 devices agreeing is tests/train/test_determinism.py's.
    state = train.train_and_evaluate(task, config, workdir, mesh=parallel.make_mesh(1))
    return Trained(family, workdir, state, model, config)


@pytest.fixture(scope="module")
def trained(prepared_tfds, raw_dir, tmp_path_factory):
    """family -> Trained, each trained once on first use."""
    runs: dict[str, Trained] = {}

    def get(family: str) -> Trained:
        if family not in runs:
            workdir = tmp_path_factory.mktemp(family)
            runs[family] = _train(family, prepared_tfds, raw_dir, workdir)
        return runs[family]

    return get


def _test_row(workdir: pathlib.Path) -> dict:
    rows = [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]
    return [row for row in rows if row["split"] == "test"][-1]


def _test_images(config, max_examples: int) -> np.ndarray:
    batches = list(train.split_batches(config, "test", max_examples))
    return np.concatenate([b["image"][b["mask"]] for b in batches])


@pytest.mark.parametrize("family", list(CONFIGS))
def test_loaded_params_are_the_trained_evaluation_params(trained, family):
    t = trained(family)
    run = jaxgen.load_run(t.workdir)
    assert (run.family, run.step, run.image_shape) == (family, STEPS, (28, 28, 1))
    chex.assert_trees_all_equal(run.params, jax.device_get(t.state.eval_params))


@pytest.mark.parametrize("family", ["autoregressive", "vae", "gan"])
def test_loaded_samples_equal_the_samplers_on_the_trained_state(trained, family):
    t = trained(family)
    run = jaxgen.load_run(t.workdir)
    key, params = jax.random.key(7), t.state.eval_params
    shape = (3, *run.image_shape)
    if family == "autoregressive":
        expected = sampling.autoregressive_sample(t.model, params, key, shape, temperature=0.7)
        got = run.sample(key, 3, temperature=0.7)
    elif family == "vae":
        expected = latent.prior_samples(t.model, params, key, 3)[1]
        got = run.sample(key, 3)
    else:
        z = t.model.sample_latent(key, 3)
        expected = gan_lib.generate_levels(t.model, jax.device_get(params), z, run.num_levels)
        got = run.sample(key, 3)
    assert got.shape == shape and got.dtype == np.int32
    np.testing.assert_array_equal(got, np.asarray(expected))
    assert not np.array_equal(got, run.sample(jax.random.key(8), 3))  # the key matters


@pytest.mark.parametrize("family", list(CONFIGS))
def test_evaluate_recomputes_the_runs_test_row(trained, family):
    t = trained(family)
    row, expected = jaxgen.load_run(t.workdir).evaluate(), _test_row(t.workdir)
    assert row["num_examples"] == expected["num_examples"] == 256  # tiny: test_max_examples
    assert row["split"] == "test" and row["step"] == STEPS
    metrics = set(expected) - {"step", "split", "num_examples"}
    assert metrics and metrics <= set(row)
    for name in metrics:
        np.testing.assert_allclose(row[name], expected[name], rtol=1e-5, err_msg=name)


def test_exact_log_likelihood_equals_the_test_row(trained):
    t = trained("autoregressive")
    run = jaxgen.load_run(t.workdir)
    images = _test_images(t.config, 256)
    log_px = run.log_likelihood(images)
    assert run.density == "exact" and log_px.shape == (256,) and (log_px < 0).all()
    np.testing.assert_allclose(-log_px.mean(), _test_row(t.workdir)["nll_nats"], rtol=1e-5)
    # Per image, against the loss on the trained state (one image at a time: another batch size).
    logits = t.model.apply(t.state.eval_params, images[:2])
    np.testing.assert_allclose(
        log_px[:2], -jaxgen.losses.autoregressive_nll(logits, images[:2]), rtol=1e-5
    )


def test_vae_log_likelihood_is_a_keyed_iwae_bound(trained):
    t = trained("vae")
    run = jaxgen.load_run(t.workdir)
    images = _test_images(t.config, 64)
    assert run.density == "lower bound" and "K=10" in run.density_note
    with pytest.raises(ConfigError, match="pass a key"):
        run.log_likelihood(images)
    key = jax.random.key(1)
    log_px = run.log_likelihood(images, key)
    np.testing.assert_array_equal(log_px, run.log_likelihood(images, key))
    elbo = latent.elbo(t.model, t.state.eval_params, images, key)
    assert log_px.mean() > float(elbo.mean())  # the IWAE bound lies above the ELBO on average
    row = _test_row(t.workdir)
    assert abs(-log_px.mean() - row["nll_nats"]) < 0.05 * row["nll_nats"]


@pytest.mark.parametrize(("family", "why"), [("gan", "implicit"), ("autoencoder", "no density")])
def test_families_without_a_density_say_why(trained, family, why):
    run = jaxgen.load_run(trained(family).workdir)
    assert run.density is None and why in run.density_note
    with pytest.raises(ConfigError, match=why):
        run.log_likelihood(np.zeros((1, 28, 28, 1), np.int32))


def test_autoencoder_codes_and_no_sampler(trained):
    t = trained("autoencoder")
    run = jaxgen.load_run(t.workdir)
    images = _test_images(t.config, 5)
    codes = run.encode(images)
    assert codes.shape == (5, t.model.latent_dim)
    np.testing.assert_allclose(
        run.decode(codes), latent.reconstruct(t.model, t.state.eval_params, images), atol=1e-5
    )
    with pytest.raises(ConfigError, match="cannot sample"):
        run.sample(jax.random.key(0), 2)


def test_completion_keeps_the_known_pixels(trained):
    for family in ("autoregressive", "vae"):
        t = trained(family)
        run = jaxgen.load_run(t.workdir)
        images = _test_images(t.config, 2)
        known = np.zeros((28, 28), bool)
        known[:14] = True
        filled = run.complete(jax.random.key(3), images, known)
        np.testing.assert_array_equal(filled[:, :14], images[:, :14])
        if family == "autoregressive":
            expected = sampling.complete(
                t.model, t.state.eval_params, jax.random.key(3), images, np.stack([known] * 2)
            )
            np.testing.assert_array_equal(filled, expected)
    with pytest.raises(ConfigError, match="cannot complete"):
        jaxgen.load_run(trained("gan").workdir).complete(jax.random.key(0), images, known)


def test_bad_images_are_named(trained):
    run = jaxgen.load_run(trained("autoregressive").workdir)
    with pytest.raises(ConfigError, match=r"shape \(20, 20, 1\)"):
        run.log_likelihood(np.zeros((1, 20, 20, 1), np.int32))
    with pytest.raises(ConfigError, match="num_levels=2"):
        run.log_likelihood(np.full((1, 28, 28, 1), 5, np.int32))


def test_config_updates_set_the_vae_bounds_k(trained):
    t = trained("vae")
    run = jaxgen.load_run(t.workdir, config_updates={"iwae_samples": 20})
    assert run.config.iwae_samples == 20 and "K=20" in run.density_note
    row, run_row = run.evaluate(), _test_row(t.workdir)
    assert row["iwae_samples"] == 20 and run_row["iwae_samples"] == 10
    assert row["nll_nats"] != run_row["nll_nats"]  # other draws of z: the new K took effect
    assert row["nll_nats"] <= -row["elbo"]  # still a bound above the ELBO
    with pytest.raises(ConfigError, match="has no key 'iwae_sample'; its keys: .*iwae_samples"):
        jaxgen.load_run(t.workdir, config_updates={"iwae_sample": 20})
    with pytest.raises(ConfigError, match="task= or config_updates="):
        jaxgen.load_run(t.workdir, task=run.task, config_updates={"iwae_samples": 20})


def test_no_checkpoint_or_step_is_a_clear_error(trained, tmp_path):
    with pytest.raises(ConfigError, match="holds no checkpoint"):
        jaxgen.load_run(tmp_path)
    with pytest.raises(ConfigError, match="no checkpoint of step 3; it has steps 4"):
        jaxgen.load_run(trained("autoregressive").workdir, step=3)
    with pytest.raises(ConfigError, match="no best checkpoint"):
        jaxgen.load_run(trained("autoregressive").workdir, best=True)


def _meta_file(workdir: pathlib.Path) -> pathlib.Path:
    return workdir / "checkpoints" / str(STEPS) / "meta" / "metadata"  # Orbax's JSON item


def test_a_checkpoint_that_does_not_match_the_code_is_a_clear_error(trained, tmp_path):
    workdir = tmp_path / "copy"
    shutil.copytree(trained("autoregressive").workdir, workdir)
    meta_file = _meta_file(workdir)
    meta = json.loads(meta_file.read_text())
    meta["modules"]["model"]["args"]["features"] += 1  # a model of other shapes
    meta_file.write_text(json.dumps(meta))
    with pytest.raises(ConfigError, match="does not match"):
        jaxgen.load_run(workdir)


def test_a_run_saved_without_a_record_is_rebuilt_from_its_config(trained, tmp_path):
    t = trained("vae")
    workdir = tmp_path / "old"
    shutil.copytree(t.workdir, workdir)
    meta_file = _meta_file(workdir)
    meta = json.loads(meta_file.read_text())
    for key in ("family", "modules", "image_shape", "num_levels", "num_classes"):
        del meta[key]
    meta_file.write_text(json.dumps(meta))
    run = jaxgen.load_run(workdir)
    assert run.family == "vae" and run.image_shape == (28, 28, 1)
    chex.assert_trees_all_equal(run.params, jax.device_get(t.state.eval_params))


def test_loading_leaves_a_training_runs_checkpoint_in_progress_alone(trained):
    workdir = trained("autoregressive").workdir
    in_progress = workdir / "checkpoints" / "8.orbax-checkpoint-tmp-1234"
    in_progress.mkdir()
    try:
        jaxgen.load_run(workdir)
        assert in_progress.is_dir()
    finally:
        in_progress.rmdir()


def test_module_specs_rebuild_the_same_module():
    for module in (
        jaxgen.models.PixelCNN(num_levels=2, num_layers=3, features=8),
        jaxgen.models.GatedPixelCNN(num_levels=4, num_layers=2, features=8, num_classes=10),
        jaxgen.models.VAE(num_levels=2, image_shape=(28, 28, 1), latent_dim=3),
    ):
        spec = json.loads(json.dumps(module_spec(module)))  # through JSON, as saved
        assert build_module(spec) == module
    with pytest.raises(ConfigError, match="cannot be built"):
        build_module({"class": "jaxgen.models.pixelcnn.PixelCNN", "args": {"no_such_arg": 1}})


def test_read_images_quantises_8_bit_files_and_keeps_levels(tmp_path):
    picture = (np.arange(28 * 28).reshape(28, 28) % 256).astype(np.uint8)
    Image.fromarray(picture).save(tmp_path / "a.png")
    got = read_images(tmp_path / "a.png", (28, 28, 1), 2)
    np.testing.assert_array_equal(got[0, ..., 0], picture // 128)
    levels = np.random.default_rng(0).integers(0, 2, (3, 28, 28), dtype=np.uint8)
    np.save(tmp_path / "b.npy", levels)
    np.testing.assert_array_equal(
        read_images(tmp_path / "b.npy", (28, 28, 1), 2), levels[..., None]
    )
    np.save(tmp_path / "c.npy", levels.astype(np.float32))
    with pytest.raises(ConfigError, match="float32"):
        read_images(tmp_path / "c.npy", (28, 28, 1), 2)
    with pytest.raises(ConfigError, match="does not exist"):
        read_images(tmp_path / "none.png", (28, 28, 1), 2)


# The command line, in real subprocesses on one CPU device, on the run trained above.


def _command(name: str, data_dir: pathlib.Path, *args: str) -> subprocess.CompletedProcess:
    env = {"XLA_FLAGS": xla_flags(), "JAX_PLATFORMS": "cpu", "TFDS_DATA_DIR": str(data_dir)}
    return subprocess.run(
        [sys.executable, "-m", f"experiments.{name}", *args],
        cwd=REPO,
        env={**dict(__import__("os").environ), **env},
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_sample_command_draws_what_the_notebook_draws(trained, prepared_tfds, tmp_path):
    workdir = trained("autoregressive").workdir
    out = tmp_path / "s.npy"
    args = ("--workdir", str(workdir), "--num", "3", "--seed", "5", "--temperature", "0.8")
    result = _command("sample", prepared_tfds, *args, "--out", str(out))
    assert result.returncode == 0, result.stderr
    expected = jaxgen.load_run(workdir).sample(jax.random.key(5), 3, temperature=0.8)
    np.testing.assert_array_equal(np.load(out), expected)


def test_sample_command_completes_a_users_drawing(trained, prepared_tfds, tmp_path):
    drawing = (np.random.default_rng(0).random((28, 28)) > 0.5).astype(np.uint8) * 255
    Image.fromarray(drawing).save(tmp_path / "drawing.png")
    out = tmp_path / "c.png"
    args = ("--workdir", str(trained("autoregressive").workdir), "--complete")
    result = _command(
        "sample",
        prepared_tfds,
        *args,
        str(tmp_path / "drawing.png"),
        "--num",
        "2",
        "--out",
        str(out),
    )
    assert result.returncode == 0, result.stderr
    assert Image.open(out).size[0] > 4 * 28  # given part, 2 completions, original


def test_evaluate_command_prints_the_test_row(trained, prepared_tfds):
    workdir = trained("autoregressive").workdir
    result = _command("evaluate", prepared_tfds, "--workdir", str(workdir))
    assert result.returncode == 0, result.stderr
    row = json.loads(result.stdout.strip().splitlines()[-1])
    assert row["likelihood"] == "exact" and row["num_examples"] == 256
    np.testing.assert_allclose(row["nll_nats"], _test_row(workdir)["nll_nats"], rtol=1e-5)


@pytest.mark.parametrize(
    ("command", "args", "phrases"),
    [
        ("evaluate", ("--workdir", "{empty}"), ("holds no checkpoint",)),
        ("evaluate", ("--workdir", "{run}", "--iwae_samples", "20"), ("no key 'iwae_samples'",)),
        (
            "sample",
            ("--workdir", "{run}", "--complete", "{small}", "--out", "{out}"),
            ("shape (20, 20, 1)", "(28, 28, 1)"),
        ),
    ],
)
def test_commands_end_bad_input_with_one_paragraph(
    trained, prepared_tfds, tmp_path, command, args, phrases
):
    Image.fromarray(np.zeros((20, 20), np.uint8)).save(tmp_path / "small.png")
    names = {
        "empty": tmp_path / "empty",
        "run": trained("autoregressive").workdir,
        "small": tmp_path / "small.png",
        "out": tmp_path / "o.png",
    }
    result = _command(command, prepared_tfds, *(a.format(**names) for a in args))
    assert_clean_error(result, *phrases)
