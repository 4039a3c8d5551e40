"""experiments.speed: FLOP counts, parameter counts and the matmul peak."""

import jax
import numpy as np
import pytest
from ml_collections import ConfigDict

from experiments import speed
from experiments.configs import pixelcnn as pixelcnn_config
from jaxgen.nn.masked import conv_mask


def _tiny_pixelcnn() -> ConfigDict:
    config = pixelcnn_config.get_config("tiny")
    config.model.update(num_layers=1, features=4, head_features=4)
    config.batch_size = 2
    return config


def test_train_step_flops_lie_between_the_masked_and_the_dense_convolutions():
    """XLA's count of a train step: at least forward + weight gradients of the masks' taps,
    at most 3.5x the forward FLOPs of the dense kernels.

    A convolution with kernel [kh, kw, F_in, F_out] on B x H x W costs
    2 B H W kh kw F_in F_out FLOPs dense; an implementation that skips the masked
    taps computes at least the mask's non-zero entries. The backward pass adds
    the weight gradients (as much again) and the input gradients.
    """
    config = _tiny_pixelcnn()
    run = speed.prepare_train(speed.autoregressive_case(config))
    params = jax.jit(run.case.init)(jax.random.key(0))["params"]
    dense = masked = 0
    for name, layer in params.items():
        kh, kw, fin, fout = layer["kernel"].shape
        mask = conv_mask((kh, kw), fin, fout, 1, "A" if name == "input_conv" else "B")
        dense += 2 * 2 * 28 * 28 * kh * kw * fin * fout
        masked += 2 * 2 * 28 * 28 * int(mask.sum())
    assert 2.0 * masked < run.flops < 3.5 * dense
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
