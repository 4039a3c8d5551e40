"""Same config and seed: the same metrics and params, run after run (CPU)."""

import dataclasses

import jax
import numpy as np

from jaxgen import parallel, tasks
from jaxgen.train import loop
from tests.train.helpers import metric_rows


def test_two_runs_with_one_seed_are_identical(tiny_config, tmp_path):
    tiny_config.num_steps = 4
    tiny_config.log_every = 1
    tiny_config.eval_every = 2
    tiny_config.eval_max_examples = 32
    tiny_config.batch_size = 32
    mesh = parallel.make_mesh(2)
    _, task = tasks.from_config("autoregressive", tiny_config)
    task = dataclasses.replace(task, write_samples=None)
    first = loop.train_and_evaluate(task, tiny_config, tmp_path / "a", mesh=mesh)
    second = loop.train_and_evaluate(task, tiny_config, tmp_path / "b", mesh=mesh)
    for a, b in zip(jax.tree.leaves(first), jax.tree.leaves(second), strict=True):
        np.testing.assert_array_equal(a, b)
    assert metric_rows(tmp_path / "a") == metric_rows(tmp_path / "b")
    assert len(metric_rows(tmp_path / "a")) == 4 + 2 + 1

    tiny_config.seed = 1  # and the seed matters
    third = loop.train_and_evaluate(task, tiny_config, tmp_path / "c", mesh=mesh)
    assert not np.array_equal(jax.tree.leaves(first.params)[0], jax.tree.leaves(third.params)[0])
