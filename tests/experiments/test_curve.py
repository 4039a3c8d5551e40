"""experiments.curve: test NLL of every kept checkpoint against its training wall-clock."""

import json
import pathlib

import numpy as np
import pytest
from PIL import Image

from experiments import curve
from experiments.configs import pixelcnn
from jaxgen import parallel, runs, tasks, train
from jaxgen.validation import ConfigError

NUM_TEST = 64


@pytest.fixture(scope="module")
def workdir(prepared_tfds, raw_dir, tmp_path_factory) -> pathlib.Path:
    """A tiny PixelCNN run with checkpoints kept at steps 2, 4 and 6."""
    config = pixelcnn.get_config("tiny")
    config.data_dir, config.raw_dir = str(prepared_tfds), str(raw_dir)
    config.num_steps, config.eval_every, config.checkpoint_every = 6, 6, 2
    config.log_every, config.keep_checkpoints, config.test_max_examples = 2, 5, NUM_TEST
    _, task = tasks.from_config("autoregressive", config)
    workdir = tmp_path_factory.mktemp("curve_run")
    train.train_and_evaluate(task, config, workdir, mesh=parallel.make_mesh(1))  # as users do
    return workdir


def test_every_kept_checkpoint_is_a_point_at_its_recorded_minutes(workdir, tmp_path, capsys):
    out = tmp_path / "curve.png"
    argv = ["--run", f"tiny=={workdir}", "--out", str(out), "--max_examples", "64"]
    curve.main(["curve", *argv, "--y_max", "1e4"])
    lines = capsys.readouterr().out.splitlines()
    points = [json.loads(line) for line in lines if line.startswith("{")]
    times = runs.checkpoint_times(workdir)
    assert [p["step"] for p in points] == [2, 4, 6] == sorted(times)
    assert all(p["run"] == "tiny=" for p in points)  # the label is split at the last "="
    minutes = [p["minutes"] for p in points]
    np.testing.assert_allclose(minutes, [times[s] / 60 for s in (2, 4, 6)])
    assert minutes == sorted(minutes) and minutes[0] > 0
    rows = [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]
    (test_row,) = [row for row in rows if row["split"] == "test"]  # the run's own, at step 6
    assert points[-1]["num_examples"] == test_row["num_examples"] == NUM_TEST
    np.testing.assert_allclose(points[-1]["nll_nats"], test_row["nll_nats"], rtol=1e-5)
    assert len({round(p["nll_nats"], 3) for p in points}) == 3  # each checkpoint's own params
    assert Image.open(out).size[0] > 300


def test_a_second_call_reuses_the_points_it_has(workdir):
    (workdir / curve.CACHE).unlink(missing_ok=True)
    first = curve.curve(workdir, every=2, limit=NUM_TEST)
    assert [p["step"] for p in first] == [2, 6]  # every 2nd, counted back from the last
    cache_path = workdir / curve.CACHE
    cache = json.loads(cache_path.read_text())
    cache[f"6:{NUM_TEST}"]["nll_nats"] = 12345.0  # a value no evaluation gives
    cache_path.write_text(json.dumps(cache))
    every = curve.curve(workdir, every=1, limit=NUM_TEST)
    assert [p["step"] for p in every] == [2, 4, 6]  # step 4 evaluated now
    assert every[-1]["nll_nats"] == 12345.0 and every[0]["nll_nats"] == first[0]["nll_nats"]
    again = curve.curve(workdir, every=2, limit=NUM_TEST)
    assert [p["step"] for p in again] == [2, 4, 6]  # the cached step 4 is drawn too
    assert again[1]["nll_nats"] == every[1]["nll_nats"]


def test_a_saved_curve_file_is_drawn_without_its_workdir(workdir, tmp_path, capsys):
    evaluated = curve.curve(workdir, every=1, limit=NUM_TEST)
    saved = tmp_path / "saved.json"
    saved.write_bytes((workdir / curve.CACHE).read_bytes())
    out = tmp_path / "saved.png"
    argv = ["curve", "--run", f"kept={saved}", "--out", str(out), "--max_examples", "64"]
    curve.main(argv)
    points = [json.loads(line) for line in capsys.readouterr().out.splitlines() if "{" in line]
    assert [(p["step"], p["nll_nats"]) for p in points] == [
        (p["step"], p["nll_nats"]) for p in evaluated
    ]
    assert Image.open(out).size[0] > 300
    with pytest.raises(ConfigError, match="holds no point on all test examples"):
        curve.main([*argv[:-2], "--max_examples", "all"])


@pytest.mark.parametrize(
    ("args", "phrases"),
    [
        (("--run", "{workdir}"), ("--run=", "LABEL=VALUE")),
        (("--run", "a={workdir}", "--reference", "paper=eighty"), ("'eighty'", "not a number")),
        (("--run", "a={empty}"), ("holds no checkpoint",)),
        (("--run", "a={workdir}", "--every", "0"), ("--every=0",)),
        (("--run", "a={workdir}", "--max_examples", "run"), ("all or N",)),
        (("--run", "a={text}"), ("is not a saved curve",)),
        (("--run", "a={workdir}", "--max_examples", "64", "--y_max", "1"), ("below every point",)),
    ],
)
def test_bad_input_is_an_error_naming_it(workdir, tmp_path, args, phrases):
    names = {"workdir": workdir, "empty": tmp_path / "empty", "text": tmp_path / "notes.txt"}
    names["text"].write_text("not json")
    argv = ["curve", *(a.format(**names) for a in args), "--out", str(tmp_path / "c.png")]
    with pytest.raises(ConfigError) as error:
        curve.main(argv)
    for phrase in phrases:
        assert phrase in str(error.value)
