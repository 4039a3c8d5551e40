"""experiments.compare: the members' configs, and the whole command on the tiny budget."""

import dataclasses
import json
import os
import re
import subprocess
import sys
import time

import jax
import numpy as np
import pytest
from PIL import Image

from experiments import compare
from experiments.configs import gan as gan_config
from experiments.configs.compare import BINARY_MODELS, MODELS, get_config
from jaxgen import data, tasks, timing
from jaxgen.models import registry
from jaxgen.validation import ConfigError
from tests.conftest import REPO, xla_flags
from tests.experiments.test_cli import assert_clean_error

TINY = "--config=experiments/configs/compare.py:tiny"
AR, GAN = compare.AUTOREGRESSIVE, compare.ADVERSARIAL
# The tiny command's second pass: one model of every branch of binary data (the suite's time
# limit: each member adds ~12 s). Every member's config, model and task are built and checked
# by test_every_member_is_built_and_checked_before_the_first_trains.
SECOND_PASS = ("pixelcnn", "vae", "rbm", "dcgan")


def _run(workdir, tfds_dir, raw_dir, *args, config=TINY):
    # One device, as users run; the suite's fast compilation (-20% here: 256 test images).
    env = {**os.environ, "XLA_FLAGS": xla_flags(1)}
    env.update(TFDS_DATA_DIR=str(tfds_dir), JAXGEN_RAW_DIR=str(raw_dir))
    return subprocess.run(
        [sys.executable, "-m", "experiments.compare", "--workdir", str(workdir), config, *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )


def _table(report: str) -> list[list[str]]:
    """The report table's model rows (without the taxonomy's branch rows)."""
    rows = [line for line in report.splitlines() if line.startswith("| ")]
    cells = [[cell.strip() for cell in row.strip("|").split("|")] for row in rows[2:]]
    return [row for row in cells if not row[0].startswith("**")]


def _branches(report: str) -> list[str]:
    """The branch rows of the report table, in order."""
    return re.findall(r"^\| \*\*(.+?)\*\* \|", report, flags=re.MULTILINE)


def test_tiny_compare_reports_every_family_and_reuses_finished_models(
    tmp_path, prepared_tfds, raw_dir
):
    workdir, tfds = tmp_path / "compare", prepared_tfds
    first = _run(workdir, tfds, raw_dir, "--config.models=vae")
    assert first.returncode == 0, first.stderr[-3000:]
    kept = {"vae": (workdir / "vae" / "metrics.jsonl").read_bytes()}
    before = json.loads((workdir / "results.json").read_text())["rows"]

    second = _run(workdir, tfds, raw_dir, f"--config.models={','.join(SECOND_PASS)}")
    assert second.returncode == 0, second.stderr[-3000:]
    assert second.stdout.count("Nothing to do") == 1
    assert second.stdout.count("evaluation reused") == 1
    for name, content in kept.items():  # not trained again
        assert (workdir / name / "metrics.jsonl").read_bytes() == content

    results = json.loads((workdir / "results.json").read_text())["rows"]
    assert [row["model"] for row in results] == ["test_images", *SECOND_PASS]
    by_name = {row["model"]: row for row in results}
    for name in ("test_images", "vae"):
        assert by_name[name] == next(row for row in before if row["model"] == name)
    floor = by_name["test_images"]["fid"]
    for name in SECOND_PASS:
        row = by_name[name]
        assert row["train_steps"] == 8 and row["train_seconds"] > 0
        assert row["parameters"] > 0 and row["sample_seconds"] > 0
        assert row["fid_num_samples"] == 64 and row["fid"] > floor >= 0
        assert 0 <= row["class_entropy"] <= np.log(10) + 1e-9
        for metric in ("precision", "recall", "coverage", "memorised_pixel", "memorised_feature"):
            assert 0 <= row[metric] <= 1, (name, metric, row[metric])
        assert row["density"] >= 0 and row["nn_pixel_median_test"] > 0
        assert [point[0] for point in row["curve"]] == sorted(p[0] for p in row["curve"])
        assert len(row["curve"]) == 2
        if name != "dcgan":  # 784 binary pixels: a fair coin is 543.4 nats
            assert 0 < row["nll_nats"] < 784 * np.log(2) * 1.5
    vae = by_name["vae"]
    assert vae["iwae_samples"] == 10
    assert vae["nll_nats"] <= vae["elbo_nats"]  # the IWAE bound is tighter than the ELBO
    assert "nll_nats" not in by_name["dcgan"]
    for name in ("pixelcnn",):
        assert by_name[name]["naive_sample_seconds"] > by_name[name]["sample_seconds"]

    report = (workdir / "report.md").read_text()
    assert "- Test NLL is on the first 256 test images: exact" in report  # the tiny budget
    table = _table(report)
    titles = [compare.MEMBERS[name].title for name in SECOND_PASS]
    assert [row[0] for row in table] == ["Test images (the floor)", *titles]
    branches = (AR, compare.LATENT, compare.BOLTZMANN, GAN)  # no flow on binary data
    assert _branches(report) == [compare.BRANCHES[f] for f in branches]
    kinds = ["exact", "lower bound", "estimate", "none"]
    assert [row[1] for row in table] == ["data", *kinds]
    assert table[-1][5] == "—" and table[-3][5].endswith("(IWAE)")
    assert table[1][12].startswith("≈ ")  # PixelCNN's naive time, extrapolated (tiny budget)
    assert all(len(row) == 18 for row in table)  # precision .. memorised after the timings
    floor_row = by_name["test_images"]
    assert table[0][13] == f"{floor_row['precision']:.3f}" and table[0][17] == "—"
    assert table[-1][17] == f"{100 * by_name['dcgan']['memorised_pixel']:.1f}%"
    memorisation = Image.open(workdir / "memorisation.png")
    assert memorisation.height > memorisation.width  # 2 rows (samples, nearest) per model
    assert Image.open(workdir / "distances.png").size == (550, 400)
    samples = Image.open(workdir / "samples.png")
    completions = Image.open(workdir / "completions.png")
    curves = Image.open(workdir / "curves.png")
    assert samples.width >= 4 * samples.height  # five square-ish panels side by side
    # 0.9 in a strip at 100 dpi: the test images, the given halves and at least the PixelCNN's
    # and the VAE's completions (the GAN has none).
    assert completions.height >= 390
    assert curves.width > curves.height  # the NLL panel and the FID panel


def test_tiny_eight_bit_compare_puts_the_flow_beside_256_level_models(
    tmp_path, prepared_tfds, raw_dir
):
    workdir = tmp_path / "compare8"
    eight_bit = "--config=experiments/configs/compare.py:eight_bit,tiny"
    result = _run(
        workdir, prepared_tfds, raw_dir, "--config.models=pixelcnn,realnvp", config=eight_bit
    )
    assert result.returncode == 0, result.stderr[-3000:]
    by_name = {r["model"]: r for r in json.loads((workdir / "results.json").read_text())["rows"]}
    for name, kind in (("pixelcnn", "exact"), ("realnvp", "lower bound")):
        row = by_name[name]
        assert row["likelihood"] == kind and row["fid"] > 0
        assert 0 < row["bits_per_dim"] < 8  # 256 levels: 8 bits/dim is a uniform model
    report = (workdir / "report.md").read_text()
    assert _branches(report) == [compare.BRANCHES[AR], compare.BRANCHES[compare.FLOW]]


def test_models_that_do_not_fit_the_data_are_refused():
    config = get_config("tiny")
    config.models = "pixelcnn,realnvp"
    with pytest.raises(ConfigError, match="RealNVP .* 256 levels, not the 2"):
        compare.check_config(config)
    config = get_config("eight_bit,tiny")
    config.models = "rbm"
    with pytest.raises(ConfigError, match="RBM .* 2 levels, not the 256"):
        compare.check_config(config)


def test_bad_compare_configs_are_refused_with_the_key_named():
    config = get_config("tiny")
    config.models = "pixelcnn,wavenet"
    with pytest.raises(ValueError, match="models='pixelcnn,wavenet' must name distinct models"):
        compare.check_config(config)
    config = get_config("tiny")
    config.dataset = "cifar10"
    with pytest.raises(ValueError, match="dataset='cifar10' must be one of"):
        compare.check_config(config)
    config = get_config("tiny")
    config.eval.num_samples = 16
    with pytest.raises(ValueError, match="eval.num_samples=16 must exceed"):
        compare.check_config(config)


@pytest.mark.parametrize("models", ["pixelcnn,vae,dcgan", "pixelcnn,vae"])  # with the GAN or not
@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("classifier_steps", 0, "eval.classifier_steps=0 must be a positive integer"),
        ("classifier_features", 0, "eval.classifier_features=0 must be a positive integer"),
        ("reference_examples", 1, "eval.reference_examples=1 must be at least eval.num_samples"),
        ("num_samples", 10_001, "eval.num_samples=10001 is more than the 10000 test images"),
        ("completion_steps", 0, "eval.completion_steps=0 must be positive"),
        ("test_max_examples", 0, "eval.test_max_examples=0 must be positive, or None"),
        ("grid_samples", 65, "eval.grid_samples=65 must be in [1, eval.num_samples=64]"),
        ("num_completions", 0, "eval.num_completions=0 must be in [1, eval.num_samples=64]"),
    ],
)
def test_evaluation_keys_are_checked_before_anything_trains(models, key, value, message):
    # Used only once every model has trained (the FID's, on every member's samples).
    config = get_config("tiny")
    config.models = models
    config.eval[key] = value
    with pytest.raises(ConfigError, match=re.escape(message)):
        compare.check_config(config)


def test_curve_points_and_seed_are_checked_against_every_member():
    config = get_config("tiny")
    config.curve_points = 9
    message = r"curve_points=9 must be at most .* fvsbn has 8 \(steps.fvsbn\)"
    with pytest.raises(ConfigError, match=message):
        compare.check_config(config)
    config = get_config("tiny")
    config.seed = -1
    with pytest.raises(ConfigError, match=re.escape("seed=-1 must be an integer in [0, 2**63)")):
        compare.check_config(config)


def test_every_member_is_built_and_checked_before_the_first_trains(tmp_path, monkeypatch):
    def bad_gan_config(variants):
        c = gan_config.get_config(variants)
        c.adam_b1 = 1.0  # a member value compare does not set: a bug in a member's config
        return c

    monkeypatch.setitem(
        compare.MEMBERS,
        "dcgan",
        dataclasses.replace(compare.MEMBERS["dcgan"], get_config=bad_gan_config),
    )

    def fail(*args, **kwargs):
        raise AssertionError("prepared or trained before every member was checked")

    monkeypatch.setattr(data, "prepare", fail)
    monkeypatch.setattr(compare, "train_and_evaluate", fail)
    with pytest.raises(ConfigError, match=re.escape("DCGAN (models=dcgan): adam_b1=1.0")):
        compare.run(get_config("tiny"), tmp_path)
    monkeypatch.undo()
    members = compare.check_config(get_config("tiny"))  # the good config: all ten, ready
    assert list(members) == list(BINARY_MODELS)
    assert all(callable(task.eval_fn) for _, _, task in members.values())


def test_a_bad_evaluation_key_exits_before_any_data_or_training(tmp_path):
    # Offline with no data and no raw files: a check after preparing would not get here.
    env = {k: v for k, v in os.environ.items() if k != "JAXGEN_RAW_DIR"}
    env.update(XLA_FLAGS=xla_flags(1), TFDS_DATA_DIR=str(tmp_path / "tfds"), JAX_PLATFORMS="cpu")
    workdir = tmp_path / "compare"
    start = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-m", "experiments.compare", "--workdir", str(workdir), TINY]
        + ["--config.eval.classifier_steps=0"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    seconds = time.perf_counter() - start
    assert_clean_error(result, "eval.classifier_steps=0", "positive")
    assert [p.name for p in workdir.iterdir()] == ["run.lock"]  # no member trained or created
    assert not (tmp_path / "tfds").exists()  # nor any data prepared
    assert seconds < 60, seconds  # interpreter and imports; no compilation, no training


@pytest.mark.parametrize("budget", ["tiny", "cpu", "paper"])
def test_member_configs_share_the_dataset_seed_and_evaluation(budget):
    config = get_config(f"{budget}")
    config.dataset, config.seed = "fashion_mnist", 3
    for name in (n for n in MODELS if 256 in compare.MEMBERS[n].levels):
        c = compare.member_config(config, name)
        assert (c.dataset, c.num_levels, c.seed) == ("fashion_mnist", 256, 3)
        steps = config.steps[name]
        assert c.num_steps == (steps if steps is not None else c.num_steps)
        assert c.num_steps // c.eval_every == config.curve_points
        assert c.test_max_examples == (256 if budget == "tiny" else None)  # None: whole split
    vae = compare.member_config(config, "vae")
    assert vae.transfer.labels_per_class == ()
    assert vae.model.likelihood == "discretized_logistic"  # 256 levels
    assert vae.iwae_samples == config.eval.iwae_samples
    assert vae.iwae_samples % vae.iwae_chunk_size == 0
    gan = compare.member_config(config, "dcgan")
    assert gan.fid.num_samples == config.eval.num_samples
    assert gan.fid.classifier_steps == config.eval.classifier_steps
    pixelcnn = compare.member_config(config, "pixelcnn")
    if budget == "paper":
        assert (pixelcnn.model.num_layers, pixelcnn.model.features) == (15, 128)
        assert pixelcnn.num_steps == 200_000


def test_parameter_count_leaves_out_batch_norm_statistics():
    config = compare.member_config(get_config("tiny"), "dcgan")
    variables = tasks.from_config("gan", config)[0].init(jax.random.key(0))
    params_only = sum(
        leaf.size
        for player in ("generator", "discriminator")
        for leaf in jax.tree.leaves(variables[player]["params"])
    )
    assert jax.tree.leaves(variables["generator"]["batch_stats"])
    assert compare.count_parameters(variables) == params_only


def test_naive_time_estimate_is_close_to_a_real_naive_run():
    model = registry.build_model({"name": "pixelcnn", "num_layers": 2, "features": 8}, 2)
    shape = (4, 8, 8, 1)
    params = model.init(jax.random.key(0), np.zeros(shape, np.int32))
    real = timing.time_sampling(model, params, shape, ("naive",), repeats=3)["naive"].sample_s
    estimate = timing.naive_seconds_estimate(model, params, shape, num_passes=10)
    assert real / 3 < estimate < real * 3, (estimate, real)
