"""RealNVP: invertibility, log-determinants against autodiff Jacobians, closed-form densities,
sampling at a temperature, the task's bits/dim, bad arguments."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from experiments.configs import flow as flow_config
from jaxgen import tasks, train
from jaxgen.models import RealNVP
from jaxgen.models.realnvp import ActNorm, AffineCoupling, squeeze, unsqueeze
from jaxgen.tasks.flow import dequantization_noise, flow_sample
from jaxgen.validation import ConfigError

KEY = jax.random.key(0)
SMALL = RealNVP(features=(4, 4), num_blocks=1)  # two scales: 4 x 4 -> 2 x 2
SHAPE = (2, 4, 4, 1)  # every small test's batch: one shape, compiled once


def _images(shape, num_levels=256, seed=0) -> jax.Array:
    return jnp.asarray(np.random.default_rng(seed).integers(0, num_levels, shape), jnp.int32)


def _perturbed(params, scale=0.05, seed=1):
    """Every param moved by scale * N(0, 1): couplings that are not the identity."""
    leaves, tree = jax.tree.flatten(params)
    keys = jax.random.split(jax.random.key(seed), len(leaves))
    moved = [p + scale * jax.random.normal(k, p.shape) for p, k in zip(leaves, keys, strict=True)]
    return jax.tree.unflatten(tree, moved)


def _init(model, shape, seed=0):
    x = _images(shape, model.num_levels, seed)
    return model.init(KEY, x, dequantization_noise(KEY, shape)), x


def _log_normal(z: np.ndarray) -> float:
    return float(np.sum(-0.5 * z**2 - 0.5 * math.log(2 * math.pi)))


def _logit_log_det(x: np.ndarray, u: np.ndarray, alpha: float, levels: int) -> tuple:
    """(y, sum log|dy/dv|) of the dequantization and logit transform, by hand in float64."""
    p = alpha + (1 - 2 * alpha) * (x + u) / levels
    y = np.log(p / (1 - p))
    return y, float(np.sum(np.log((1 - 2 * alpha) / (levels * p * (1 - p)))))


def test_inverse_of_forward_is_the_identity():
    model = RealNVP(features=(4, 4, 4), num_blocks=1)  # three scales: 4 -> 2 -> 1
    params, x = _init(model, SHAPE)
    params = _perturbed(params)
    y = jax.random.normal(jax.random.key(2), SHAPE) * 2
    # Compiled: op-by-op dispatch of the three-scale flow took ~15 s of the suite.
    flow = jax.jit(
        lambda p, v, inverse: model.apply(p, v, inverse, method=model.flow), static_argnums=2
    )
    z, log_det = flow(params, y, False)
    back, inverse_log_det = flow(params, z, True)
    assert float(jnp.abs(z - y).max()) > 0.1  # not the identity
    np.testing.assert_allclose(back, y, atol=2e-5)  # float32
    np.testing.assert_allclose(inverse_log_det, -log_det, atol=1e-4)
    # From integer images to latents and back: the same integers (u = 0.5: mid-bin).
    z, _ = jax.jit(model.apply)(params, x, jnp.full(x.shape, 0.5))
    generate = jax.jit(lambda p, v: model.apply(p, v, method=model.generate))
    np.testing.assert_array_equal(generate(params, z), x)


def _jacobian_log_det(fn, x: jax.Array) -> float:
    """log|det| of the Jacobian of fn (one example) by forward-mode autodiff."""
    flat = lambda v: fn(v.reshape(x.shape)).reshape(-1)  # noqa: E731
    jacobian = jax.jit(jax.jacfwd(flat))(x.reshape(-1))  # compiled: 4x faster than eager
    sign, log_det = jnp.linalg.slogdet(jacobian)
    assert sign != 0
    return float(log_det)


@pytest.mark.parametrize(
    "layer",
    [
        AffineCoupling("checkerboard", 0, 4, 1),
        AffineCoupling("checkerboard", 1, 4, 1),
        AffineCoupling("channel", 0, 4, 1),
        AffineCoupling("channel", 1, 4, 1),
        ActNorm(),
    ],
    ids=["checkerboard0", "checkerboard1", "channel0", "channel1", "actnorm"],
)
def test_layer_log_det_equals_the_jacobians(layer):
    x = jax.random.normal(jax.random.key(3), (1, 2, 2, 4))
    params = _perturbed(layer.init(KEY, x), scale=0.3)
    y, log_det = layer.apply(params, x)
    expected = _jacobian_log_det(lambda v: layer.apply(params, v)[0], x)
    assert abs(expected) > 0.01  # a map that changes volume
    np.testing.assert_allclose(float(log_det[0]), expected, rtol=1e-4, atol=1e-4)
    back, inverse_log_det = layer.apply(params, y, True)
    np.testing.assert_allclose(back, x, atol=1e-5)
    np.testing.assert_allclose(inverse_log_det, -log_det, rtol=1e-6)


def test_squeeze_is_a_permutation():
    x = jnp.arange(2 * 4 * 4 * 3, dtype=jnp.float32).reshape(2, 4, 4, 3)
    s = squeeze(x)
    assert s.shape == (2, 2, 2, 12)
    np.testing.assert_array_equal(s[0, 0, 0, :3], x[0, 0, 0])  # channels in (dy, dx, c) order
    np.testing.assert_array_equal(s[0, 0, 0, 3:6], x[0, 0, 1])
    np.testing.assert_array_equal(unsqueeze(s), x)


def test_whole_model_log_det_equals_the_jacobian():
    """The whole map v = x + u -> z: the flow (both scales), the logit transform, the 1/L."""
    model = SMALL
    params, x = _init(model, SHAPE)
    params = _perturbed(params, scale=0.1)
    x = x[:1]
    u = jnp.full(x.shape, 0.3)
    log_det = model.apply(params, x, u)[1]
    expected = _jacobian_log_det(lambda v: model.apply(params, x, v)[0], u)  # dz/du = dz/dv
    np.testing.assert_allclose(float(log_det[0]), expected, rtol=1e-4)
    logit_log_det = model.apply(params, x, u, method=model.dequantize)[1]
    assert abs(float(log_det[0] - logit_log_det[0])) > 0.1  # the flow's share is not 0


def test_an_identity_flow_has_the_hand_computed_density():
    """Zero-initialised couplings, no actnorm: z = y, and log p is worked out by hand."""
    model = RealNVP(features=(4, 4), num_blocks=1, normalization="none", alpha=0.05)
    params, _ = _init(model, SHAPE)
    x = np.array([0, 255, 128, 7, 1, 2, 3, 4, 250, 251, 0, 0, 9, 99, 199, 100]).reshape(1, 4, 4, 1)
    u = np.linspace(0.05, 0.95, 16).reshape(x.shape)
    y, logit_log_det = _logit_log_det(x.astype(np.float64), u, 0.05, 256)
    expected = _log_normal(y) + logit_log_det
    got = model.apply(params, jnp.asarray(x, jnp.int32), jnp.asarray(u), method=model.log_prob)
    np.testing.assert_allclose(float(got[0]), expected, rtol=1e-6)
    z, _ = model.apply(params, jnp.asarray(x, jnp.int32), jnp.asarray(u))
    np.testing.assert_allclose(z, y, rtol=1e-5, atol=1e-5)  # the identity


def test_a_known_affine_flow_has_the_closed_form_density():
    """Zero couplings and every actnorm (bias 0, log_scale c): z = y exp(k c), where k counts
    the actnorms each dimension passes (10 for the rows kept to the last scale, 6 for the
    rows factored out after the first)."""
    model = SMALL
    params, _ = _init(model, SHAPE)
    c = 0.1

    def set_actnorm(path, leaf):
        name = jax.tree_util.keystr(path)
        if "norms" not in name:  # the couplings' params stay as initialised: identities
            return leaf
        return jnp.full_like(leaf, c) if "log_scale" in name else jnp.zeros_like(leaf)

    params = jax.tree_util.tree_map_with_path(set_actnorm, params)
    y = np.random.default_rng(5).normal(size=(1, 4, 4, 1))
    z, log_det = model.apply(params, jnp.asarray(y, jnp.float32), method=model.flow)
    rows = np.arange(4).reshape(1, 4, 1, 1)
    k = np.broadcast_to(np.where(rows % 2 == 0, 10, 6), y.shape)  # kept: the even rows
    np.testing.assert_allclose(z, y * np.exp(k * c), rtol=1e-5)
    np.testing.assert_allclose(float(log_det[0]), float(np.sum(k * c)), rtol=1e-5)
    x = np.array(_images((1, 4, 4, 1), seed=6))
    u = np.full(x.shape, 0.25)
    y, logit_log_det = _logit_log_det(x.astype(np.float64), u, model.alpha, 256)
    expected = _log_normal(y * np.exp(k * c)) + np.sum(k * c) + logit_log_det
    got = model.apply(params, jnp.asarray(x), jnp.asarray(u, jnp.float32), method=model.log_prob)
    np.testing.assert_allclose(float(got[0]), expected, rtol=1e-5)


def test_the_tasks_bits_per_dim_of_the_identity_flow_is_the_hand_computed_one():
    model = RealNVP(features=(4, 4), num_blocks=1, normalization="none", num_levels=16)
    task = tasks.flow(model)
    batch = {"image": np.array(_images(SHAPE, num_levels=16))}
    params = task.init(KEY, batch)
    metrics = task.eval_fn(params, batch, jax.random.key(9))
    u = np.asarray(dequantization_noise(jax.random.key(9), SHAPE), np.float64)
    for i in range(2):
        y, log_det = _logit_log_det(batch["image"][i].astype(np.float64), u[i], 0.05, 16)
        nll = -(_log_normal(y) + log_det)
        np.testing.assert_allclose(metrics["nll_nats"][i], nll, rtol=1e-5)
        np.testing.assert_allclose(metrics["bits_per_dim"][i], nll / (16 * math.log(2)), rtol=1e-5)
    loss, train_metrics = task.loss_fn(params, batch, jax.random.key(9))
    np.testing.assert_allclose(loss, metrics["bits_per_dim"].mean(), rtol=1e-5)
    np.testing.assert_allclose(train_metrics["nll_nats"], metrics["nll_nats"].mean(), rtol=1e-5)


def test_the_importance_weighted_bound_lies_between_its_draws():
    model = SMALL
    task = tasks.flow(model, iw_samples=4)
    batch = {"image": np.array(_images(SHAPE))}
    params = _perturbed(task.init(KEY, batch))
    metrics = task.eval_fn(params, batch, KEY)
    keys = jax.random.split(jax.random.fold_in(KEY, 1), 4)
    draws = np.stack(
        [
            -model.apply(
                params,
                batch["image"],
                dequantization_noise(k, batch["image"].shape),
                method=model.log_prob,
            )
            for k in keys
        ]
    )
    expected = -(np.log(np.mean(np.exp(-(draws - draws.min(0))), axis=0)) - draws.min(0))
    np.testing.assert_allclose(metrics["iw_nll_nats"], expected, rtol=1e-5)
    assert np.all(draws.min(0) <= metrics["iw_nll_nats"] + 1e-3)
    assert np.all(metrics["iw_nll_nats"] <= draws.max(0) + 1e-3)
    assert np.all(metrics["iw_samples"] == 4)


def test_sampling_at_a_temperature():
    model = SMALL
    params, _ = _init(model, SHAPE)
    params = _perturbed(params, scale=0.1)
    key, shape = jax.random.key(5), SHAPE
    images = np.asarray(flow_sample(model, params, key, shape))
    assert images.shape == shape and images.dtype == np.int32
    assert images.min() >= 0 and images.max() < 256 and len(np.unique(images)) > 8
    cold = np.asarray(flow_sample(model, params, key, shape, temperature=0.0))
    at_zero = model.apply(params, jnp.zeros((1, 4, 4, 1)), method=model.generate)
    np.testing.assert_array_equal(cold, np.broadcast_to(at_zero, shape))  # T = 0: z = 0
    warm = flow_sample(model, params, key, shape, temperature=0.7)
    eps = jax.random.normal(key, shape)  # the same noise, scaled by T
    np.testing.assert_array_equal(warm, model.apply(params, 0.7 * eps, method=model.generate))
    for bad in (-0.1, float("nan"), float("inf"), "hot"):
        with pytest.raises(ConfigError, match="temperature"):
            flow_sample(model, params, key, shape, temperature=bad)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"features": ()}, "features=()"),
        ({"features": (4, 0)}, "features=(4, 0)"),
        ({"num_blocks": -1}, "num_blocks=-1"),
        ({"normalization": "batch"}, "normalization='batch'"),
        ({"alpha": 0.5}, "alpha=0.5"),
        ({"num_levels": 1}, "num_levels=1"),
        ({"features": (4, 4, 4, 4)}, "divisible by 8"),  # 28 x 28: 3 scales at most
    ],
)
def test_bad_model_arguments_are_config_errors(kwargs, message):
    model = RealNVP(**kwargs)
    x = jnp.zeros((1, 28, 28, 1), jnp.int32)
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        jax.eval_shape(lambda: model.init(KEY, x, jnp.zeros(x.shape)))


@pytest.mark.parametrize("variants", ["", "cpu", "tiny", "fashion_mnist,cpu"])
def test_every_config_variant_builds_its_model_for_28_by_28_images(variants):
    config = flow_config.get_config(variants)
    model, task = tasks.from_config("flow", config)
    assert isinstance(model, RealNVP) and task.family == "flow"
    assert model.num_levels == config.num_levels == 256
    batch = {"image": jax.ShapeDtypeStruct((2, 28, 28, 1), jnp.int32)}
    shapes = jax.eval_shape(task.init, KEY, batch)  # traces the model, computes nothing
    assert len(shapes["params"]) == 2 * len(model.features) - 1  # checker + channel sequences


def test_bad_task_arguments_and_config_values_are_config_errors():
    with pytest.raises(ConfigError, match=r"temperatures=\(\)"):
        tasks.flow(SMALL, temperatures=())
    with pytest.raises(ConfigError, match="temperature=-1"):
        tasks.flow(SMALL, temperatures=(-1,))
    with pytest.raises(ConfigError, match="iw_samples=-2"):
        tasks.flow(SMALL, iw_samples=-2)
    config = flow_config.get_config("tiny")
    config.model.num_blocks = -1
    _, task = tasks.from_config("flow", config)
    with pytest.raises(ConfigError, match="num_blocks=-1"):  # before any data is read
        train.check_run(task, config)
