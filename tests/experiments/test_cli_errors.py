"""Bad input at the command line: one-paragraph messages, non-zero exits, no tracebacks."""

import os
import pathlib
import shutil
import subprocess
import sys

import numpy as np
import pytest

from experiments import cli
from jaxgen import parallel
from jaxgen.validation import ConfigError
from tests.conftest import REPO, xla_flags
from tests.experiments.test_cli import TINY, assert_clean_error, run_experiment

CONFIG = str(REPO / "experiments" / "configs" / "pixelcnn.py")


@pytest.fixture
def offline_env(tmp_path: pathlib.Path) -> dict[str, str]:
    """One CPU device, a fresh empty TFDS folder, no raw folder (tests set one)."""
    env = {k: v for k, v in os.environ.items() if k != "JAXGEN_RAW_DIR"}
    env["XLA_FLAGS"] = xla_flags()
    env["TFDS_DATA_DIR"] = str(tmp_path / "tfds")
    env["JAX_PLATFORMS"] = "cpu"
    return env


@pytest.mark.parametrize(
    ("override", "phrases"),
    [
        ("--config.batch_size=abc", ("batch_size", "abc")),
        ("--config.batch_size=-4", ("batch_size=-4", "positive")),
    ],
)
def test_bad_values_are_clear_errors(offline_env, tmp_path, override, phrases):
    result = run_experiment(offline_env, "--workdir", str(tmp_path / "w"), TINY, override)
    assert_clean_error(result, *phrases)


def test_batch_not_divisible_by_devices_is_a_clear_error(offline_env, tmp_path):
    offline_env["XLA_FLAGS"] = xla_flags(2)
    result = run_experiment(
        offline_env, "--workdir", str(tmp_path / "w"), TINY, "--config.batch_size=3"
    )
    assert_clean_error(result, "batch_size=3", "divisible", "(2)")


def test_missing_data_offline_is_a_clear_error(offline_env, tmp_path):
    empty = tmp_path / "raw"
    (empty / "binarized_mnist").mkdir(parents=True)
    offline_env["JAXGEN_RAW_DIR"] = str(empty)
    result = run_experiment(offline_env, "--workdir", str(tmp_path / "w"), TINY)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert "binarized_mnist" in result.stderr.strip().splitlines()[-1]


def test_corrupt_raw_file_is_a_clear_error(offline_env, raw_dir, tmp_path):
    raw = tmp_path / "raw"
    shutil.copytree(raw_dir / "binarized_mnist", raw / "binarized_mnist")
    for path in (raw / "binarized_mnist").iterdir():
        path.chmod(0o644)
    damaged = raw / "binarized_mnist" / "binarized_mnist_test.amat.gz"
    damaged.write_bytes(damaged.read_bytes()[:1000])
    offline_env["JAXGEN_RAW_DIR"] = str(raw)
    result = run_experiment(offline_env, "--workdir", str(tmp_path / "w"), TINY)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert "binarized_mnist_test.amat" in result.stderr.strip().splitlines()[-1]


def test_unwritable_workdir_is_a_clear_error(offline_env, tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    result = run_experiment(offline_env, "--workdir", str(blocker / "w"), TINY)
    assert_clean_error(result, "--workdir", "Choose a folder you can write to")


def test_bad_process_id_is_a_clear_error(offline_env, tmp_path):
    result = run_experiment(
        offline_env,
        "--workdir",
        str(tmp_path / "w"),
        TINY,
        "--coordinator_address=127.0.0.1:1",
        "--num_processes=2",
        "--process_id=2",
    )
    assert_clean_error(result, "--process_id=2", "[0, --num_processes=2)")


def _exit_code_of(run, capsys) -> tuple[int, str]:
    """Runs ``cli.main`` with ``run``; returns (exit code, stderr)."""
    with pytest.raises(SystemExit) as exit_info:
        cli.main(run, CONFIG, ["prog", "--workdir", "w"])
    return exit_info.value.code, capsys.readouterr().err


def test_our_validation_errors_become_messages(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("JAXGEN_TRACEBACK", raising=False)
    code, err = _exit_code_of(lambda config, workdir: parallel.make_mesh(10_000), capsys)
    assert code == 2
    assert err.startswith("Error: num_devices=10000")


def test_a_value_error_from_inside_a_library_keeps_its_traceback(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("JAXGEN_TRACEBACK", raising=False)

    def buggy(config, workdir):
        return np.zeros(3).reshape(2)  # a bug: numpy raises, not our validation

    with pytest.raises(ValueError, match="cannot reshape"):
        cli.main(buggy, CONFIG, ["prog", "--workdir", "w"])


def test_a_user_error_re_raised_by_a_helper_outside_jaxgen_is_a_message(
    capsys, tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("JAXGEN_TRACEBACK", raising=False)

    def check_steps(steps):  # a user's helper, in a file outside jaxgen/ and experiments/
        if steps < 1:
            raise ConfigError(f"num_steps={steps} must be positive.")

    def run(config, workdir):
        try:
            check_steps(0)
        except ConfigError as e:
            raise e  # a re-raise: the last frame is not a `raise ConfigError(...)` line

    code, err = _exit_code_of(run, capsys)
    assert code == 2
    assert err == "Error: num_steps=0 must be positive.\n"


def test_a_type_error_from_inside_the_library_keeps_its_traceback(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("JAXGEN_TRACEBACK", raising=False)

    def buggy(config, workdir):
        return parallel.make_mesh("2")  # a bug in the caller: jaxgen compares str with int

    with pytest.raises(TypeError, match="not supported"):
        cli.main(buggy, CONFIG, ["prog", "--workdir", "w"])


@pytest.mark.parametrize(
    ("experiment", "override", "phrases"),
    [
        (
            "pixelcnn",
            "--config.sample_method=fastest",
            ("sample_method='fastest'", "naive", "cached"),
        ),
        (
            "autoencoder",
            "--config.transfer.dataset=binarized_mnist",
            ("transfer.dataset='binarized_mnist'", "no labels"),
        ),
        (
            "vae",
            "--config.transfer.modes=('frozen','finetuned')",
            ("transfer.modes=('frozen', 'finetuned')", "frozen, finetune, scratch"),
        ),
        ("autoencoder", "--config.interpolation_steps=0", ("interpolation_steps=0", "positive")),
        ("gan", "--config.fid.classifier_steps=0", ("fid.classifier_steps=0", "positive")),
        (  # a model argument: raised inside jax.eval_shape of the model's init
            "autoencoder",
            "--config.model.features=(8,0)",
            ("features=(8, 0) must hold positive layer widths",),
        ),
    ],
)
def test_keys_used_after_training_are_checked_before_it(
    offline_env, tmp_path, experiment, override, phrases
):
    # Offline with no data: a check that came after data preparation would not get here.
    workdir = tmp_path / "w"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            f"experiments.{experiment}",
            f"--workdir={workdir}",
            f"--config=experiments/configs/{experiment}.py:tiny",
            override,
        ],
        cwd=REPO,
        env=offline_env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert_clean_error(result, *phrases)
    assert [p.name for p in workdir.iterdir()] == ["run.lock"]  # no config, metrics, checkpoint
    assert not pathlib.Path(offline_env["TFDS_DATA_DIR"]).exists()  # nor any data prepared
