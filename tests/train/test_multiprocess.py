"""Two real processes on loopback (2 CPU devices each) train like one process with 4 devices."""

import socket

import jax
import numpy as np
import pytest

import jaxgen
from tests.train import helpers
from tests.train.test_workdir import _hold, _kill

STEPS = 4
ARGS = (
    f"--config.num_steps={STEPS}",
    "--config.batch_size=32",
    "--config.log_every=1",
    "--config.eval_every=2",
    "--config.checkpoint_every=2",
    "--config.eval_max_examples=64",
    "--config.num_samples=2",
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def runs(bmnist_dir, raw_dir, tmp_path_factory):
    """(one-process workdir, two-process workdir, the two processes' stderr)."""
    single = tmp_path_factory.mktemp("single")
    code, stderr = helpers.finish(
        helpers.start(helpers.cli_env(4, bmnist_dir, raw_dir), single, *ARGS)
    )
    assert code == 0, stderr

    multi = tmp_path_factory.mktemp("multi")
    address = f"127.0.0.1:{_free_port()}"
    env = helpers.cli_env(2, bmnist_dir, raw_dir)
    processes = [
        helpers.start(
            env,
            multi,
            *ARGS,
            f"--coordinator_address={address}",
            "--num_processes=2",
            f"--process_id={i}",
        )
        for i in range(2)
    ]
    results = [helpers.finish(p) for p in processes]
    for code, stderr in results:
        assert code == 0, stderr
    return single, multi, [stderr for _, stderr in results]


def test_two_processes_match_one_process(runs):
    single, multi, _ = runs
    one, two = helpers.metric_rows(single), helpers.metric_rows(multi)
    assert [(r["step"], r["split"]) for r in two] == [(r["step"], r["split"]) for r in one]
    losses = [
        (r["loss"], s["loss"]) for r, s in zip(one, two, strict=True) if r["split"] == "train"
    ]
    print("train losses (1 process x 4 devices, 2 processes x 2 devices):", losses)
    assert len(losses) == STEPS
    np.testing.assert_allclose(*zip(*losses, strict=True), rtol=1e-5)
    for r, s in zip(one, two, strict=True):
        assert s.keys() == r.keys()
        for name in r.keys() - {"step", "split"}:  # loss, nll, bits/dim, grad norm, examples
            np.testing.assert_allclose(s[name], r[name], rtol=1e-5)
    for step in (2, STEPS):  # a periodic and the final checkpoint, written by both processes
        for a, b in zip(
            helpers.load_params(single, step), helpers.load_params(multi, step), strict=True
        ):
            np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-6)


def test_a_run_of_two_processes_loads_in_one(runs, bmnist_dir):
    single, multi, _ = runs
    run = jaxgen.load_run(multi)  # this process: 8 devices, none of the writers'
    assert run.step == STEPS and run.family == "autoregressive"
    for a, b in zip(helpers.load_params(multi, STEPS), jax.tree.leaves(run.params), strict=True):
        np.testing.assert_array_equal(np.asarray(b), a)
    run.config.data_dir = str(bmnist_dir)  # the processes read it through TFDS_DATA_DIR
    test = helpers.metric_rows(multi)[-1]
    row = run.evaluate()
    assert row["num_examples"] == test["num_examples"]
    np.testing.assert_allclose(row["nll_nats"], test["nll_nats"], rtol=1e-5)


def test_only_process_zero_writes_logs_and_pictures(runs):
    _, multi, stderrs = runs
    assert len(helpers.metric_rows(multi)) == STEPS + STEPS // 2 + 1  # train, eval, test: once
    assert sorted(p.name for p in (multi / "samples").iterdir()) == [
        f"step{STEPS:07d}_completions.png",
        f"step{STEPS:07d}_samples.png",
    ]
    assert "train:" in stderrs[0] and "train:" not in stderrs[1]  # the progress bar


def test_a_busy_workdir_stops_every_process_of_a_run(tmp_path):
    # Process 0 alone takes the lock (were process 1 to try too, it would find it taken
    # in the runs above) and tells process 1, so neither waits for the other.
    workdir = tmp_path / "w"
    workdir.mkdir()
    holder = _hold(workdir)
    try:
        address = f"127.0.0.1:{_free_port()}"
        env = helpers.cli_env(1, tmp_path / "tfds", tmp_path / "raw")
        processes = [
            helpers.start(
                env,
                workdir,
                f"--coordinator_address={address}",
                "--num_processes=2",
                f"--process_id={i}",
            )
            for i in range(2)
        ]
        (code0, stderr0), (code1, stderr1) = [helpers.finish(p) for p in processes]
    finally:
        _kill(holder)
    assert code0 == code1 == 2, stderr0 + stderr1
    assert f"is in use by another run: process {holder.pid} on host" in stderr0
    assert "is in use by another run (process 0 of this run names it)" in stderr1
    assert sorted(p.name for p in workdir.iterdir()) == ["run.lock"]
