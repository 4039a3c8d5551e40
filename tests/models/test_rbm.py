"""The RBM and its AIS: exact values on RBMs small enough to enumerate.

A 3x3 RBM with 6 hidden units has 512 visible and 64 hidden states: its exact
log Z (a logsumexp over either) is the reference the AIS estimate must fall
within its ±3σ band of, as in Salakhutdinov's demo (``calculate_true_partition``
against ``RBM_AIS``).
"""

import itertools
import pathlib

import chex
import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp
import pytest
from ml_collections import ConfigDict

from jaxgen import ais, parallel, tasks
from jaxgen.models import RBM
from jaxgen.models import rbm as rbm_lib
from jaxgen.train import Checkpointer
from jaxgen.validation import ConfigError

SHAPE = (3, 3, 1)
D, H = 9, 6
# All 512 binary 3x3 images as visibles [512, 9].
ALL_V = np.array(list(itertools.product([0, 1], repeat=D)), np.float32)
AIS_STEPS = 1000  # one schedule length: one compilation for every AIS test
# One device: hundreds of small steps on the suite's 8 simulated devices can stall in an
# all-reduce rendezvous on a loaded 2-core CPU (tests/experiments/test_gpu_check.py).
MESH = parallel.make_mesh(1)


def _weights(seed: int = 0, scale: float = 1.0, d: int = D, h: int = H) -> dict:
    kw, kb, kc = jax.random.split(jax.random.key(seed), 3)
    return {
        "W": scale * jax.random.normal(kw, (d, h)),
        "b": 0.5 * jax.random.normal(kb, (d,)),
        "c": 0.5 * jax.random.normal(kc, (h,)),
    }


def test_free_energy_equals_a_hand_worked_value():
    weights = {"W": jnp.array([[1.0], [-2.0]]), "b": jnp.array([0.5, -1.0]), "c": jnp.array([0.3])}
    v = jnp.array([[1.0, 1.0], [0.0, 0.0]])
    # v = (1, 1): -(0.5 - 1) - softplus(1 - 2 + 0.3) = 0.5 - log(1 + e^-0.7) = 0.5 - 0.403186
    # v = (0, 0): -softplus(0.3) = -log(1 + e^0.3) = -0.854355
    np.testing.assert_allclose(rbm_lib.free_energy(weights, v), [0.096814, -0.854355], atol=1e-6)


def test_the_module_is_the_free_energy_of_its_params():
    model = RBM(image_shape=SHAPE, num_hidden=H)
    images = ALL_V[:5].reshape(5, *SHAPE).astype(np.int32)
    variables = model.init(jax.random.key(0), images)
    assert set(variables) == {"params", "data_stats"}
    assert variables["params"]["W"].shape == (D, H)
    np.testing.assert_allclose(
        model.apply(variables, images),
        rbm_lib.free_energy(variables["params"], ALL_V[:5]),
        rtol=1e-6,
    )


def test_exact_log_z_over_hidden_states_equals_the_sum_over_all_images():
    weights = _weights()
    log_z = rbm_lib.exact_log_partition(weights)
    log_p = rbm_lib.log_prob(weights, ALL_V, log_z)  # every binary 3x3 image
    np.testing.assert_allclose(jax.nn.logsumexp(log_p), 0.0, atol=1e-5)  # sums to 1
    np.testing.assert_allclose(log_z, jax.nn.logsumexp(-rbm_lib.free_energy(weights, ALL_V)), 1e-6)


def test_at_zero_weights_log_z_is_the_sum_of_softplus_and_ais_is_exact():
    weights = {**_weights(), "W": jnp.zeros((D, H))}
    expected = float(
        jnp.sum(jax.nn.softplus(weights["b"])) + jnp.sum(jax.nn.softplus(weights["c"]))
    )
    np.testing.assert_allclose(rbm_lib.exact_log_partition(weights), expected, rtol=1e-6)
    # With the base model at the RBM's own visible biases every run's weight is the same.
    est = ais.log_partition(weights, weights["b"], jax.random.key(0), 10, AIS_STEPS)
    np.testing.assert_allclose([est.log_z, est.log_z_low, est.log_z_high], expected, atol=1e-4)
    # From the uniform base model it is random, and within its band.
    est = ais.log_partition(weights, jnp.zeros(D), jax.random.key(0), 100, AIS_STEPS)
    assert est.log_z_low <= expected <= est.log_z_high
    assert abs(est.log_z - expected) < 0.05


def test_ais_falls_within_its_band_around_the_exact_log_z():
    weights = _weights(scale=1.5)  # strong weights: a multimodal p(v)
    exact = float(rbm_lib.exact_log_partition(weights))
    stats = ais.image_stats(ALL_V[::7].reshape(-1, *SHAPE), batch_size=10)  # some "data"
    base = ais.base_visible_bias(stats)
    estimates = [
        ais.log_partition(weights, base, jax.random.key(k), 100, AIS_STEPS) for k in range(4)
    ]
    log_zs = np.array([e.log_z for e in estimates])
    print(f"exact log Z {exact:.4f}; AIS over 4 keys {np.round(log_zs, 4)}")
    for est in estimates:
        assert est.log_z_low <= exact <= est.log_z_high, est
        assert est.log_z_high - est.log_z_low < 0.5  # a useful band
    assert np.abs(log_zs - exact).max() < 0.1
    assert log_zs.std() < 0.05  # the spread over keys
    assert len(set(log_zs)) == 4  # the key matters
    again = ais.log_partition(weights, base, jax.random.key(0), 100, AIS_STEPS)
    assert again.log_z == estimates[0].log_z  # and determines it


def test_the_schedule_is_the_reference_codes():
    betas = ais.betas()
    assert betas.shape == (14_501,) and betas[0] == 0 and betas[-1] == 1
    steps = np.diff(betas)
    np.testing.assert_allclose(steps[:500], 1e-3, rtol=1e-6)
    np.testing.assert_allclose(steps[500:4500], 1e-4, rtol=1e-6)
    np.testing.assert_allclose(steps[4500:], 1e-5, rtol=1e-6)
    np.testing.assert_allclose(betas[[500, 4500]], [0.5, 0.9])
    short = ais.betas(29)
    assert short.shape == (30,) and (np.diff(short) > 0).all() and short[-1] == 1
    assert np.count_nonzero(short <= 0.5) == 2  # 0 and one step of 29 * 500 / 14,500 = 1


def test_base_model_biases_are_the_pixel_frequencies_with_pseudo_counts():
    images = np.zeros((20, 1, 2, 1), np.int32)
    images[:5, 0, 0] = 1  # pixel 0 on in 5 of 20 images, pixel 1 never
    stats = ais.image_stats(images, batch_size=10)  # 2 batches: 10 pseudo-counts
    p = np.array([(5 + 10) / (20 + 10), 10 / (20 + 10)])
    np.testing.assert_allclose(ais.base_visible_bias(stats), np.log(p / (1 - p)), rtol=1e-6)
    counted = rbm_lib.count_images(
        {"visible_sum": jnp.zeros(2, jnp.int32), "num_images": 0, "num_batches": 0},
        rbm_lib.flatten(images[:10]),
    )
    counted = rbm_lib.count_images(counted, rbm_lib.flatten(images[10:]))
    for name in stats:
        np.testing.assert_array_equal(counted[name], stats[name])
    empty = {"visible_sum": np.zeros(2), "num_images": 0, "num_batches": 0}
    np.testing.assert_array_equal(ais.base_visible_bias(empty), 0.0)  # uniform before any data


def test_gibbs_sampling_reaches_the_exact_distribution():
    d, h = 4, 3  # 16 visible states
    weights = _weights(seed=3, scale=1.5, d=d, h=h)
    states = np.array(list(itertools.product([0, 1], repeat=d)), np.float32)
    exact = np.exp(rbm_lib.log_prob(weights, states, rbm_lib.exact_log_partition(weights)))
    num = 20_000
    v = rbm_lib.sample(weights, jnp.zeros(d), jax.random.key(0), (num, 2, 2, 1), num_steps=50)
    index = np.asarray(v).reshape(num, d) @ (2 ** np.arange(d)[::-1])
    empirical = np.bincount(index, minlength=2**d) / num
    tv = 0.5 * np.abs(empirical - exact).sum()
    print(f"total variation to the exact p(v) over 16 states: {tv:.4f}")
    assert tv < 0.03  # sampling noise ~0.01 at 20,000 chains
    assert 0.5 * np.abs(np.full(2**d, 1 / 2**d) - exact).sum() > 0.2  # p(v) is far from uniform


def _train_config(**overrides) -> ConfigDict:
    config = ConfigDict(
        {"learning_rate": 0.05, "lr_schedule": "constant", "warmup_steps": 0, "num_steps": 100}
    )
    config.update(overrides)
    return config


def _bars() -> np.ndarray:
    """16 images of 3x3: the 3 horizontal and 3 vertical bars and a few of their pairs."""
    rows = [np.zeros((3, 3), np.int32) for _ in range(6)]
    for i in range(3):
        rows[i][i, :] = 1
        rows[3 + i][:, i] = 1
    pairs = [rows[0] | rows[3], rows[1] | rows[4], rows[2] | rows[5], rows[0] | rows[2]]
    images = np.stack(rows + pairs + rows)[:16]
    return images[..., None]


@pytest.mark.parametrize(("persistent", "learning_rate"), [(False, 0.5), (True, 0.2)])
def test_contrastive_divergence_raises_the_exact_log_likelihood(persistent, learning_rate):
    model = RBM(image_shape=SHAPE, num_hidden=H)
    task = tasks.rbm(model, cd_steps=1, persistent=persistent, num_chains=16, momentum=0.5)
    batch = {"image": _bars(), "label": np.zeros(16, np.int32)}
    tx, schedule = task.make_optimizer(_train_config(learning_rate=learning_rate))
    state = task.init_state(task.init(jax.random.key(0), batch), tx, None)
    train_step = task.make_train_step(tx, schedule, MESH)
    key = jax.random.key(1)

    def mean_log_p(state) -> float:
        weights = jax.device_get(state.params["params"])
        v = rbm_lib.flatten(batch["image"])
        return float(rbm_lib.log_prob(weights, v, rbm_lib.exact_log_partition(weights)).mean())

    before = mean_log_p(state)
    state, metrics = train_step(state, batch, key)
    assert set(metrics) >= {"loss", "free_energy_gap", "recon_error", "grad_norm", "momentum"}
    one_step = mean_log_p(state)
    for _ in range(299):
        state, metrics = train_step(state, batch, key)
    after = mean_log_p(state)
    print(f"exact mean log p(bars): {before:.3f} -> {one_step:.3f} (1 step) -> {after:.3f}")
    assert one_step > before  # the first step already goes uphill
    # From about the uniform distribution's -9 log 2 = -6.24 towards the data's -2.25 (entropy).
    assert after > before + (2.0 if not persistent else 1.0)
    assert int(state.params["data_stats"]["num_images"]) == 300 * 16
    if persistent:
        assert state.opt_state["chains"].shape == (16, D)


def test_pcd_resumed_from_a_checkpoint_continues_exactly(tmp_path: pathlib.Path):
    model = RBM(image_shape=SHAPE, num_hidden=H)
    task = tasks.rbm(model, cd_steps=2, persistent=True, num_chains=8)
    batches = [{"image": _bars()[i : i + 8], "label": np.zeros(8, np.int32)} for i in (0, 8)]
    tx, schedule = task.make_optimizer(_train_config())
    train_step = task.make_train_step(tx, schedule, MESH)  # donates the state
    key = jax.random.key(1)

    def run(steps, state=None):
        if state is None:
            state = task.init_state(task.init(jax.random.key(0), batches[0]), tx, None)
        for t in steps:
            state, _ = train_step(state, batches[t % 2], key)
        return state

    straight = jax.device_get(run(range(6)))
    halfway = run(range(3))
    with Checkpointer(tmp_path / "ckpt", keep=1) as checkpointer:
        checkpointer.save(halfway, meta={})
        target = jax.tree.map(ocp.utils.to_shape_dtype_struct, halfway)
        chains = jax.device_get(halfway.opt_state["chains"])
        restored = checkpointer.restore(3, target)
    resumed = jax.device_get(run(range(3, 6), restored))
    chex.assert_trees_all_equal(resumed, straight)
    assert int(resumed.step) == 6
    assert not np.array_equal(straight.opt_state["chains"], chains)  # the chains moved


def test_bad_arguments_are_named():
    images = np.zeros((2, *SHAPE), np.int32)
    with pytest.raises(ConfigError, match="num_levels=256"):
        RBM(image_shape=SHAPE, num_levels=256).init(jax.random.key(0), images)
    with pytest.raises(ConfigError, match="num_hidden=0"):
        tasks.rbm(RBM(num_hidden=0))
    model = RBM(image_shape=SHAPE, num_hidden=H)
    for args, name in [
        ({"cd_steps": 0}, "cd_steps"),
        ({"optimizer": "lbfgs"}, "optimizer"),
        ({"momentum": 1.0}, "momentum"),
        ({"ais_runs": 1}, "ais_runs"),
        ({"eval_ais_steps": 2}, "eval_ais_steps"),
        ({"sample_init": "data"}, "sample_init"),
    ]:
        with pytest.raises(ConfigError, match=name):
            tasks.rbm(model, **args)
    task = tasks.rbm(model)
    with pytest.raises(ConfigError, match="ema_decay"):
        task.check_config(ConfigDict({"ema_decay": 0.999}))
    with pytest.raises(ConfigError, match="learning_rate"):
        task.make_optimizer(_train_config(learning_rate=0.0))
    weights = _weights()
    with pytest.raises(ConfigError, match="num_runs"):
        ais.log_partition(weights, jnp.zeros(D), jax.random.key(0), num_runs=1)
    with pytest.raises(ConfigError, match="num_steps"):
        ais.betas(2)
    with pytest.raises(ConfigError, match="base_bias"):
        ais.log_partition(weights, jnp.zeros(D + 1), jax.random.key(0), 10, AIS_STEPS)
    with pytest.raises(ConfigError, match="H=30"):
        rbm_lib.exact_log_partition(_weights(h=30))
    with pytest.raises(ConfigError, match="shape"):
        rbm_lib.sample(weights, jnp.zeros(D), jax.random.key(0), (2, 4, 4, 1))
    with pytest.raises(ConfigError, match="init"):
        rbm_lib.sample(weights, jnp.zeros(D), jax.random.key(0), (2, *SHAPE), init="zeros")


def test_samples_and_completions():
    weights = _weights()
    base = jnp.zeros(D)
    key = jax.random.key(0)
    v = rbm_lib.sample(weights, base, key, (5, *SHAPE), num_steps=3)
    assert v.shape == (5, *SHAPE) and v.dtype == jnp.int32 and set(np.unique(v)) <= {0, 1}
    np.testing.assert_array_equal(v, rbm_lib.sample(weights, base, key, (5, *SHAPE), num_steps=3))
    means = rbm_lib.sample(weights, base, key, (5, *SHAPE), num_steps=3, mean_field=True)
    assert means.dtype == jnp.float32 and 0 < float(means.min()) and float(means.max()) < 1
    images = _bars()[:4]
    known = np.zeros((4, 3, 3), bool)
    known[:, 0] = True
    filled = rbm_lib.complete(weights, base, key, images, known, num_steps=5)
    np.testing.assert_array_equal(filled[:, 0], images[:, 0])
    assert rbm_lib.filters(weights, SHAPE, 4).shape == (4, *SHAPE)
