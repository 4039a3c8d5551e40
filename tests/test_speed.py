"""experiments.speed: FLOP counts, parameter counts and the matmul peak."""

import math

import jax
import numpy as np
import pytest
from ml_collections import ConfigDict

from experiments import speed
from experiments.configs import pixelcnn as pixelcnn_config


def _tiny_pixelcnn() -> ConfigDict:
    config = pixelcnn_config.get_config("tiny")
    config.model.update(num_layers=1, features=4, head_features=4)
    config.batch_size = 2
    return config


def test_train_step_flops_are_about_three_forward_passes():
    """XLA's count of a train step lies between 2x and 3.5x the forward convolutions' FLOPs.

    The forward pass costs F = sum over kernels [kh, kw, F_in, F_out] of
    2 B H W kh kw F_in F_out; the backward pass adds the weight gradients (F) and
    the input gradients (F, less the first layer, whose input is the image).
    """
    config = _tiny_pixelcnn()
    run = speed.prepare_train(speed.autoregressive_case(config))
    params = jax.jit(run.case.init)(jax.random.key(0))
    kernels = [x for x in jax.tree.leaves(params) if x.ndim == 4]
    forward = sum(2 * 2 * 28 * 28 * math.prod(k.shape) for k in kernels)
    assert 2.0 * forward < run.flops < 3.5 * forward
    assert run.num_params == sum(x.size for x in jax.tree.leaves(params))
    assert run.compile_s > 0 and run.first_call_s > 0
    images_per_s = run.images_per_s(steps=2, windows=1)
    assert np.isfinite(images_per_s) and images_per_s > 0


def test_count_params_counts_the_params_collection():
    variables = {"params": {"a": np.zeros((2, 3)), "b": np.zeros(4)}, "batch_stats": np.zeros(7)}
    assert speed.count_params(variables) == 10
    assert speed.count_params({"a": np.zeros((5,))}) == 5


def test_matmul_peak_is_positive_and_checks_its_arguments():
    peak = speed.matmul_peak(n=64, repeats=2)
    assert np.isfinite(peak) and peak > 0
    with pytest.raises(ValueError, match="n=0"):
        speed.matmul_peak(n=0)


def test_random_batch_is_binary_and_seeded():
    a, b = speed.random_batch(3, seed=1), speed.random_batch(3, seed=1)
    assert a["image"].shape == (3, 28, 28, 1) and a["image"].dtype == np.int32
    assert set(np.unique(a["image"])) <= {0, 1}
    np.testing.assert_array_equal(a["image"], b["image"])
    assert not np.array_equal(a["image"], speed.random_batch(3, seed=2)["image"])
