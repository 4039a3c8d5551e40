"""FVSBN, NADE and MADE: causality in their orders, normalisation, recurrences, masks,
samplers, exact values, bad arguments, the task's own likelihoods and load_run."""

import dataclasses
import functools
import itertools
import json
import math
import types

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxgen
from experiments.configs import pixelcnn as pixelcnn_config
from jaxgen import losses, models, sampling, tasks, train
from jaxgen.data import from_array
from jaxgen.models import made as made_lib
from jaxgen.models import registry
from jaxgen.validation import ConfigError

from .ar_checks import (
    cached_logits,
    check_cached_samples_equal_naive,
    dependency_matrix,
    with_noise,
)

BINARY_3X3 = jnp.array(list(itertools.product([0, 1], repeat=9)), jnp.int32).reshape(512, 3, 3, 1)


def _params(model, shape, scale=0.5, seed=0):
    """Params for images ``shape`` with noise on every leaf (FVSBN starts at zero)."""
    init = jax.jit(lambda key: with_noise(model.init(key, jnp.zeros(shape, jnp.int32)), scale))
    return init(jax.random.key(seed))


@functools.partial(jax.jit, static_argnums=0)
def _log_px(model, params, x, mask=None):
    """log p(x) [B]: the model's own log_likelihood where it has one (MADE: the ensemble,
    or mask ``mask``'s), else the chain rule."""
    if hasattr(model, "log_likelihood"):
        return model.apply(params, x, mask, method="log_likelihood")
    return -losses.autoregressive_nll(model.apply(params, x), x)


def _with_mask(model):
    """What ``dependency_matrix`` can use for MADE: the mask index passed as the "label"."""
    return types.SimpleNamespace(
        apply=lambda params, x, mask: model.apply(params, x, mask[0]), num_levels=model.num_levels
    )


RASTER_MODELS = {
    "fvsbn": lambda levels: models.FVSBN(num_levels=levels),
    "nade_sigmoid": lambda levels: models.NADE(num_levels=levels, hidden=8),
    "nade_relu": lambda levels: models.NADE(num_levels=levels, hidden=8, activation="relu"),
    "made_raster": lambda levels: models.MADE(
        num_levels=levels, hidden_sizes=(24, 24), order="raster", direct=True
    ),
}


@pytest.mark.parametrize(
    "name,channels,levels",
    [("fvsbn", 3, 4), ("nade_sigmoid", 1, 2), ("nade_relu", 3, 4), ("made_raster", 3, 4)],
)
def test_raster_models_are_causal(name, channels, levels):
    model = RASTER_MODELS[name](levels)
    shape = (1, 3, 4, channels)
    params = _params(model, shape)
    x = jax.random.randint(jax.random.key(1), shape, 0, levels)
    changed = dependency_matrix(model, params, x)
    assert not np.tril(changed).any()  # nothing at or before the changed sub-pixel moves
    if not name.startswith("made"):  # FVSBN and NADE: every earlier sub-pixel is seen
        assert changed[np.triu_indices(len(changed), k=1)].all()


@pytest.mark.parametrize("order,direct", [("random", True), ("raster", False)])
def test_made_is_causal_in_each_masks_order(order, direct):
    model = models.MADE(hidden_sizes=(16, 16), num_masks=3, order=order, direct=direct)
    shape = (1, 3, 3, 1)
    params, x = _params(model, shape), jax.random.randint(jax.random.key(1), shape, 0, 2)
    orderings, by_mask = model.orderings(9), _with_mask(model)  # one compiled pass
    assert len({tuple(o) for o in orderings}) == (3 if order == "random" else 1)
    for mask, ordering in enumerate(orderings):
        position = np.argsort(ordering)  # position[d]: the step at which d is drawn
        changed = dependency_matrix(by_mask, params, x, jnp.array([mask]))
        later = position[None, :] > position[:, None]  # [t_in, t_out]
        assert not (changed & ~later).any(), f"mask {mask}"
        assert changed[ordering[0]].any()  # the first sub-pixel in the order is used


def test_made_masks_are_strictly_lower_triangular_in_their_order():
    d, hidden = 12, (10, 7, 9)
    inputs, *layers = made_lib.degrees(d, hidden, 4, "random", 3)
    for i in range(4):
        degs = [inputs[i], *(layer[i] for layer in layers)]
        assert sorted(degs[0]) == list(range(d))  # a permutation
        for prev, deg in zip(degs[:-1], degs[1:], strict=True):
            assert deg.min() >= prev.min() and deg.max() <= d - 2
        masks = [(p[:, None] <= q[None, :]) for p, q in zip(degs[:-1], degs[1:], strict=True)]
        masks.append(degs[-1][:, None] < degs[0][None, :])  # the strict output mask
        paths = np.linalg.multi_dot([m.astype(np.int64) for m in masks])  # [in, out]
        ordering = np.argsort(degs[0])
        in_order = paths[np.ix_(ordering, ordering)].T  # [out, in], both in the mask's order
        assert not np.triu(in_order).any()
        direct = degs[0][:, None] < degs[0][None, :]
        assert not np.triu(direct[np.ix_(ordering, ordering)].T).any()


def test_one_mask_of_seed_0_is_pytorch_generatives():
    """pytorch-generative's _sample_masks with one hidden layer: RandomState(0), a
    permutation, then randint(0, D - 1) per hidden unit."""
    inputs, hidden = made_lib.degrees(784, (50,), 1, "random", 0)
    rng = np.random.RandomState(0)
    np.testing.assert_array_equal(inputs[0], rng.permutation(784))
    np.testing.assert_array_equal(hidden[0], rng.randint(0, 783, size=50))
    raster, raster_hidden = made_lib.degrees(784, (50,), 1, "raster", 0)
    np.testing.assert_array_equal(raster[0], np.arange(784))
    np.testing.assert_array_equal(raster_hidden, hidden)  # the same connectivity


@pytest.mark.parametrize(
    "model",
    [
        models.FVSBN(),
        models.NADE(hidden=6, activation="relu"),
        models.MADE(hidden_sizes=(12, 12), num_masks=3, direct=True),
    ],
    ids=["fvsbn", "nade", "made"],
)
def test_the_probabilities_of_all_binary_3x3_images_sum_to_1(model):
    params = _params(model, (1, 3, 3, 1), scale=1.0)
    np.testing.assert_allclose(jnp.exp(_log_px(model, params, BINARY_3X3)).sum(), 1.0, rtol=1e-5)
    if isinstance(model, models.MADE):
        per_mask = [_log_px(model, params, BINARY_3X3, m) for m in range(model.num_masks)]
        for log_p in per_mask:
            np.testing.assert_allclose(jnp.exp(log_p).sum(), 1.0, rtol=1e-5)
        ensemble = jax.nn.logsumexp(jnp.stack(per_mask), axis=0) - math.log(model.num_masks)
        np.testing.assert_allclose(_log_px(model, params, BINARY_3X3), ensemble, rtol=1e-6)


@pytest.mark.parametrize(
    "model", [models.FVSBN(num_levels=3), models.NADE(num_levels=3, hidden=5), models.MADE(3, (9,))]
)
def test_softmax_levels_sum_to_1_over_rgb_images(model):
    """L = 3 levels, all 3^6 = 729 RGB images of 2 x 1 pixels."""
    images = jnp.array(list(itertools.product(range(3), repeat=6)), jnp.int32)
    images = images.reshape(729, 2, 1, 3)
    params = _params(model, (1, 2, 1, 3), scale=1.0)
    np.testing.assert_allclose(jnp.exp(_log_px(model, params, images)).sum(), 1.0, rtol=1e-5)


def test_fvsbn_with_zero_weights_is_independent_bernoullis():
    """log p(x) = sum_d log sigmoid(+b_d if x_d = 1 else -b_d), worked by hand."""
    model = models.FVSBN()
    x = jnp.array([[[[1], [0]], [[0], [1]]]])  # 2 x 2
    params = jax.jit(model.init)(jax.random.key(0), x)
    b = jnp.array([0.5, -1.0, 2.0, 0.0])
    params = {"params": {**params["params"], "bias": b[:, None]}}
    signs = jnp.array([1.0, -1.0, -1.0, 1.0])
    expected = float(jnp.sum(jax.nn.log_sigmoid(signs * b)))
    assert expected == pytest.approx(-0.474077 - 0.313262 - 2.126928 - 0.693147, abs=1e-5)
    np.testing.assert_allclose(_log_px(model, params, x), [expected], rtol=1e-6)


def test_nade_recurrence_equals_a_pass_per_conditional(conv_formulation):
    """The running sum (a cumulative sum on accelerators, a scan over chunks on the CPU)
    gives each conditional's a_d = c + W[:d]^T v[:d], computed afresh."""
    model = models.NADE(num_levels=4, hidden=7)
    shape = (3, 2, 3, 2)
    params = _params(model, shape)
    x = jax.random.randint(jax.random.key(1), shape, 0, 4)
    p = params["params"]
    v = np.asarray(x.reshape(3, -1), np.float64) / 3
    expected = []
    for d in range(v.shape[1]):
        a = np.asarray(p["c"], np.float64) + v[:, :d] @ np.asarray(p["W"], np.float64)[:d]
        h = 1 / (1 + np.exp(-a))
        expected.append(h @ np.asarray(p["V"][d], np.float64) + np.asarray(p["b"][d]))
    expected = np.stack(expected, axis=1).reshape(*shape, 4)
    np.testing.assert_allclose(jax.jit(model.apply)(params, x), expected, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize(
    "name,shape", [("fvsbn", (2, 3, 4, 3)), ("nade", (3, 4, 5, 1)), ("nade", (2, 3, 4, 3))]
)
def test_cached_pass_and_samples_equal_the_naive_ones(name, shape):
    levels = 2 if shape[-1] == 1 else 4
    model = RASTER_MODELS["fvsbn" if name == "fvsbn" else "nade_relu"](levels)
    params = _params(model, shape)
    x = jax.random.randint(jax.random.key(1), shape, 0, levels)
    full = jax.jit(model.apply)(params, x)
    chex.assert_trees_all_close(cached_logits(model, params, x), full, atol=1e-5)
    check_cached_samples_equal_naive(model, params, shape)
    key = jax.random.key(2)
    known = np.zeros(shape[:3], bool)
    known[:, : shape[1] // 2] = True
    completed = [
        sampling.complete(model, params, key, x, known, method=m) for m in ("naive", "cached")
    ]
    chex.assert_trees_all_equal(*completed)
    np.testing.assert_array_equal(np.asarray(completed[0])[known], np.asarray(x)[known])


def test_made_in_raster_order_samples_what_the_naive_raster_loop_samples():
    model = models.MADE(num_levels=3, hidden_sizes=(20,), order="raster", direct=True)
    shape = (4, 3, 3, 3)
    params, key = _params(model, shape), jax.random.key(3)
    own = sampling.autoregressive_sample(model, params, key, shape, temperature=0.8)
    generic = jax.jit(sampling._naive_loop, static_argnums=0)(
        lambda y: model.apply(params, y),
        key,
        jnp.zeros(shape, jnp.int32),
        jnp.zeros(shape[:3], bool),
        jnp.float32(0.8),
        None,
    )
    chex.assert_trees_all_equal(own, generic)
    with pytest.raises(ConfigError, match="cached"):
        sampling.autoregressive_sample(model, params, key, shape, method="cached")


def test_made_ensemble_samples_follow_the_mixture():
    """40,000 samples of a 3-mask MADE: their frequencies over the 512 images are within
    sampling noise of the ensemble's probabilities (total variation ~0.04 expected), and
    far from any single mask's."""
    model = models.MADE(hidden_sizes=(16, 16), num_masks=3, direct=True)
    params = _params(model, (1, 3, 3, 1), scale=1.0)
    samples = sampling.autoregressive_sample(model, params, jax.random.key(3), (40_000, 3, 3, 1))
    index = np.asarray(samples).reshape(-1, 9) @ (2 ** np.arange(8, -1, -1))
    freq = np.bincount(index, minlength=512) / len(index)

    def total_variation(log_p):
        return 0.5 * np.abs(freq - np.exp(np.asarray(log_p))).sum()

    assert total_variation(_log_px(model, params, BINARY_3X3)) < 0.06
    for mask in range(3):
        assert total_variation(_log_px(model, params, BINARY_3X3, mask)) > 0.1


def test_made_completion_keeps_the_known_pixels_and_draws_in_its_order():
    model = models.MADE(num_levels=4, hidden_sizes=(16,), num_masks=2)
    shape = (3, 4, 4, 1)
    params = _params(model, shape)
    images = jax.random.randint(jax.random.key(1), shape, 0, 4)
    known = np.zeros(shape[:3], bool)
    known[:, :2] = True
    a, b, c = (
        sampling.complete(model, params, jax.random.key(k), images, known) for k in (5, 5, 6)
    )
    chex.assert_trees_all_equal(a, b)  # the key decides
    np.testing.assert_array_equal(np.asarray(a)[known], np.asarray(images)[known])
    assert not np.array_equal(np.asarray(a)[~known], np.asarray(c)[~known])


@pytest.mark.parametrize(
    "build,match",
    [
        (lambda: models.FVSBN(num_levels=1), "num_levels"),
        (lambda: models.NADE(hidden=0), "hidden"),
        (lambda: models.NADE(activation="tanh"), "activation"),
        (lambda: models.MADE(hidden_sizes=()), "hidden_sizes"),
        (lambda: models.MADE(hidden_sizes=(8, 0)), "hidden_sizes"),
        (lambda: models.MADE(num_masks=0), "num_masks"),
        (lambda: models.MADE(order="snake"), "order"),
        (lambda: models.MADE(activation="gelu"), "activation"),
        (lambda: models.MADE(mask_seed=-1), "mask_seed"),
        (lambda: registry.build_model({"name": "nade", "hiden": 5}, 2), r"model\.hiden"),
    ],
)
def test_bad_arguments_are_named(build, match):
    with pytest.raises(ConfigError, match=match):
        build()


def test_bad_inputs_are_named():
    model = models.MADE(hidden_sizes=(8,), num_masks=2)
    params = jax.jit(model.init)(jax.random.key(0), jnp.zeros((1, 3, 3, 1), jnp.int32))
    with pytest.raises(ConfigError, match=r"mask=2 .*num_masks=2"):
        model.apply(params, jnp.zeros((1, 3, 3, 1), jnp.int32), 2)
    with pytest.raises(ConfigError, match="9 sub-pixels"):
        model.apply(params, jnp.zeros((1, 4, 4, 1), jnp.int32))
    with pytest.raises(ConfigError, match="at least 2 sub-pixels"):
        model.init(jax.random.key(0), jnp.zeros((1, 1, 1, 1), jnp.int32))
    with pytest.raises(ConfigError, match="num_levels=2"):
        models.NADE(hidden=3).init(jax.random.key(0), jnp.full((1, 2, 2, 1), 2, jnp.int32))


def test_the_task_trains_made_on_one_mask_per_step_and_evaluates_the_ensemble():
    model = models.MADE(hidden_sizes=(16,), num_masks=4)
    task = tasks.autoregressive(model)
    batch = {"image": BINARY_3X3[::37], "label": jnp.zeros(14, jnp.int32)}
    params = task.init(jax.random.key(0), batch)
    loss_fn = jax.jit(lambda key: task.loss_fn(params, batch, key)[0])
    losses_by_key = np.array([loss_fn(jax.random.key(k)) for k in range(8)])
    per_mask = np.array([-_log_px(model, params, batch["image"], m).mean() for m in range(4)])
    gaps = np.abs(losses_by_key[:, None] - per_mask[None, :]).min(axis=1)
    assert (gaps < 1e-4 * per_mask.max()).all()  # each step's loss is one mask's NLL
    assert len(np.unique(losses_by_key)) > 1  # the key picks the mask
    evaluated = jax.jit(task.eval_fn)(params, batch, jax.random.key(0))["nll_nats"]
    np.testing.assert_allclose(evaluated, -_log_px(model, params, batch["image"]), rtol=1e-6)
    assert "mixture of 4 masks" in task.inference.density_note


@pytest.mark.parametrize("name", ["fvsbn", "nade", "made"])
def test_configs_build_and_order_variants(name):
    config = pixelcnn_config.get_config(f"tiny,{name}")
    assert config.to_dict() == pixelcnn_config.get_config(f"{name},tiny").to_dict()
    assert config.model.name == name and config.num_steps < 100
    model = registry.build_model(config.model, config.num_levels)
    x = jnp.zeros((1, 28, 28, 1), jnp.int32)
    logits, _ = jax.eval_shape(model.init_with_output, jax.random.key(0), x)
    assert logits.shape == (1, 28, 28, 1, 2)
    paper = pixelcnn_config.get_config(name)
    sizes = {"fvsbn": {}, "nade": {"hidden": 500}, "made": {"hidden_sizes": (8000,)}}[name]
    assert all(paper.model[k] == v for k, v in sizes.items())


@pytest.fixture(scope="module")
def tiny_dataset(tmp_path_factory):
    """Binary 6 x 6 images with structure (a random row repeated), as an npz dataset."""
    rng = np.random.default_rng(0)
    rows = rng.integers(0, 2, (400, 1, 6), dtype=np.uint8)
    return from_array(np.repeat(rows, 6, axis=1), path=tmp_path_factory.mktemp("d") / "d.npz")


def test_load_run_samples_scores_and_evaluates_a_tiny_made_run(tiny_dataset, tmp_path):
    """MADE with two masks: its own sampler, likelihood and training objective through the
    task, the checkpoint and load_run (FVSBN and NADE go the way of PixelCNN, test_runs.py)."""
    config = pixelcnn_config.get_config("made,tiny")
    config.dataset = tiny_dataset
    config.num_steps = config.eval_every = config.checkpoint_every = 2
    config.model.num_masks = 2
    model, task = tasks.from_config("autoregressive", config)
    task = dataclasses.replace(task, write_samples=None)
    state = train.train_and_evaluate(task, config, tmp_path)
    run = jaxgen.load_run(tmp_path)
    assert type(run.model) is type(model) and run.model == model and run.density == "exact"
    key = jax.random.key(7)
    expected = sampling.autoregressive_sample(model, state.eval_params, key, (3, 6, 6, 1))
    np.testing.assert_array_equal(run.sample(key, 3), expected)
    images = np.asarray(expected)
    np.testing.assert_allclose(
        run.log_likelihood(images), _log_px(model, state.eval_params, images), rtol=1e-6
    )
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    test_row = [row for row in rows if row["split"] == "test"][-1]
    np.testing.assert_allclose(run.evaluate()["nll_nats"], test_row["nll_nats"], rtol=1e-5)
    known = np.zeros((3, 6, 6), bool)
    known[:, :3] = True
    filled = run.complete(key, images, known)
    np.testing.assert_array_equal(filled[known], images[known])
