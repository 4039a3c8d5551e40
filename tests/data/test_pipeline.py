"""grain pipelines: exact resume, epochs, process shards, padded evaluation."""

import itertools
import pathlib

import numpy as np
import pytest

from jaxgen import data

CIFAR_TRAIN = 40  # examples in the generated archive (see conftest.py)
CIFAR_TEST = 13


def _ids(images: np.ndarray) -> list[int]:
    """Indices written in row 0 of generated CIFAR images [B, 32, 32, 3] (any num_levels)."""
    bits = (images[:, 0].reshape(len(images), 32 * 3) > 0).astype(np.int64)
    return list((bits << np.arange(bits.shape[1])).sum(axis=1))


def _assert_batches_equal(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for key in a:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)


def _cifar_train(cifar_dir: pathlib.Path, **kwargs) -> data.TrainBatches:
    args = dict(batch_size=8, seed=0, num_levels=256, data_dir=cifar_dir)
    return data.train_batches("cifar10", **(args | dict(process_index=0, process_count=1) | kwargs))


def test_train_batch_shapes_and_values(mnist_dir: pathlib.Path) -> None:
    source = data.train_batches("mnist", batch_size=32, seed=0, num_levels=256, data_dir=mnist_dir)
    batch = source[0]
    assert batch["image"].shape == (32, 28, 28, 1) and batch["image"].dtype == np.int32
    assert batch["label"].shape == (32,) and batch["label"].dtype == np.int32
    assert batch["image"].max() < 256 and 0 <= batch["label"].min() <= batch["label"].max() < 10


def test_binarized_mnist_batches_are_binary_and_unlabelled(
    binarized_mnist_dir: pathlib.Path,
) -> None:
    batch = data.train_batches(
        "binarized_mnist", batch_size=64, seed=0, num_levels=2, data_dir=binarized_mnist_dir
    )[3]
    assert set(np.unique(batch["image"])) == {0, 1}
    assert np.all(batch["label"] == -1)


def test_same_seed_same_batches_other_seed_other_batches(cifar_dir: pathlib.Path) -> None:
    a, b, c = _cifar_train(cifar_dir), _cifar_train(cifar_dir), _cifar_train(cifar_dir, seed=1)
    for step in (0, 7):
        _assert_batches_equal(a[step], b[step])
    assert _ids(a[0]["image"]) != _ids(c[0]["image"])


def test_each_epoch_is_a_new_permutation(cifar_dir: pathlib.Path) -> None:
    source = _cifar_train(cifar_dir)
    assert source.steps_per_epoch == CIFAR_TRAIN // 8
    epochs = [
        [i for step in range(e * 5, (e + 1) * 5) for i in _ids(source[step]["image"])]
        for e in range(2)
    ]
    for epoch in epochs:
        assert sorted(epoch) == list(range(CIFAR_TRAIN))
    assert epochs[0] != epochs[1]


def test_drop_remainder_keeps_batches_within_an_epoch(cifar_dir: pathlib.Path) -> None:
    source = _cifar_train(cifar_dir, batch_size=16)  # 40 examples: 2 full batches per epoch
    assert source.steps_per_epoch == 2
    for epoch in range(2):
        batches = [source[2 * epoch], source[2 * epoch + 1]]
        assert all(b["image"].shape[0] == 16 for b in batches)
        assert len(set(_ids(batches[0]["image"]) + _ids(batches[1]["image"]))) == 32


def test_random_access_matches_iteration(cifar_dir: pathlib.Path) -> None:
    source = _cifar_train(cifar_dir)
    from_start = list(itertools.islice(source.iterate(0), 12))
    for step, batch in enumerate(from_start):
        _assert_batches_equal(batch, source[step])
    for batch, expected in zip(source.iterate(7), from_start[7:], strict=False):
        _assert_batches_equal(batch, expected)


@pytest.mark.parametrize("binarize", [{}, {"num_levels": 2, "binarize": "dynamic"}])
def test_process_shards_concatenate_to_the_global_batch(
    cifar_dir: pathlib.Path, binarize: dict
) -> None:
    # A dynamic draw is a function of the image's index, not of the process that reads it.
    whole = _cifar_train(cifar_dir, **binarize)
    shards = [
        _cifar_train(cifar_dir, process_index=p, process_count=2, **binarize) for p in range(2)
    ]
    for step in (0, 6):
        local = [s[step] for s in shards]
        assert local[0]["image"].shape[0] == 4
        _assert_batches_equal(
            {k: np.concatenate([b[k] for b in local]) for k in local[0]}, whole[step]
        )


def test_quantization_to_four_levels(cifar_dir: pathlib.Path) -> None:
    full, quantized = _cifar_train(cifar_dir)[2], _cifar_train(cifar_dir, num_levels=4)[2]
    np.testing.assert_array_equal(quantized["image"], full["image"] * 4 // 256)
    assert set(np.unique(quantized["image"])) == {0, 1, 2, 3}


def test_dynamic_binarization_is_fresh_each_epoch_and_deterministic(
    cifar_dir: pathlib.Path,
) -> None:
    source = _cifar_train(cifar_dir, num_levels=2, binarize="dynamic", batch_size=40)
    again = _cifar_train(cifar_dir, num_levels=2, binarize="dynamic", batch_size=40)
    draws = []
    for step in range(2):  # one batch is one epoch
        batch = source[step]
        _assert_batches_equal(batch, again[step])
        assert set(np.unique(batch["image"])) == {0, 1}
        order = np.argsort(_ids(batch["image"]))  # row 0 is 0/255, so it survives binarizing
        draws.append(batch["image"][order, 1])  # row 1 is 128: Bernoulli(128 / 255)
    assert 0.45 < draws[0].mean() < 0.56
    assert np.mean(draws[0] != draws[1]) > 0.3


def test_dynamic_binarization_of_mnist_keeps_the_mean(mnist_dir: pathlib.Path) -> None:
    kwargs = dict(batch_size=500, seed=3, data_dir=mnist_dir)
    binary = data.train_batches("mnist", num_levels=2, binarize="dynamic", **kwargs)[0]["image"]
    gray = data.train_batches("mnist", num_levels=256, **kwargs)[0]["image"]
    assert set(np.unique(binary)) == {0, 1}
    assert binary.mean() == pytest.approx(gray.mean() / 255, abs=0.01)


@pytest.mark.parametrize("process_count", [1, 2])
def test_eval_batches_cover_the_split_once(cifar_dir: pathlib.Path, process_count: int) -> None:
    per_process = [
        list(
            data.eval_batches(
                "cifar10",
                "test",
                batch_size=4,
                num_levels=256,
                data_dir=cifar_dir,
                process_index=p,
                process_count=process_count,
            )
        )
        for p in range(process_count)
    ]
    assert all(len(batches) == 4 for batches in per_process)  # ceil(13 / 4)
    ids = []
    for batch in itertools.chain(*per_process):
        assert batch["image"].shape == (4 // process_count, 32, 32, 3)
        assert batch["mask"].dtype == bool
        ids += _ids(batch["image"][batch["mask"]])
        assert np.all(batch["image"][~batch["mask"]] == 0)
    assert sorted(ids) == list(range(CIFAR_TEST))


def test_eval_dynamic_binarization_is_a_fixed_draw(cifar_dir: pathlib.Path) -> None:
    def draw(seed: int) -> np.ndarray:
        batches = data.eval_batches(
            "cifar10", "test", batch_size=16, num_levels=2, binarize="dynamic", seed=seed,
            data_dir=cifar_dir, process_count=1, process_index=0,
        )  # fmt: skip
        return np.concatenate([b["image"] for b in batches])

    np.testing.assert_array_equal(draw(0), draw(0))
    assert np.any(draw(0) != draw(1))


def test_unprepared_dataset_raises(tmp_path: pathlib.Path) -> None:
    with pytest.raises(data.DatasetError, match=r"prepare\('mnist'"):
        data.train_batches("mnist", batch_size=8, seed=0, num_levels=256, data_dir=tmp_path)
    with pytest.raises(data.DatasetError, match="not prepared"):
        data.eval_batches("mnist", "test", batch_size=8, num_levels=256, data_dir=tmp_path)


@pytest.mark.parametrize(
    ("kwargs", "argument"),
    [
        (dict(name="imagenet"), "name"),
        (dict(batch_size=6, process_count=4, process_index=0), "batch_size"),
        (dict(process_index=2, process_count=2), "process_index"),
        (dict(num_levels=1), "num_levels"),
        (dict(num_levels=257), "num_levels"),
        (dict(name="binarized_mnist", num_levels=4), "num_levels"),
        (dict(binarize="static"), "binarize"),
        (dict(binarize="dynamic"), "binarize"),  # needs num_levels=2
        (dict(name="binarized_mnist", num_levels=2, binarize="dynamic"), "binarize"),
        (dict(split="validation"), "split"),
        (dict(seed=-1), "seed"),
    ],
)
def test_invalid_arguments_name_the_argument(
    kwargs: dict, argument: str, tmp_path: pathlib.Path
) -> None:
    args = dict(name="mnist", batch_size=8, seed=0, num_levels=256, data_dir=tmp_path) | kwargs
    with pytest.raises(ValueError, match=f"{argument}=") as error:
        data.train_batches(args.pop("name"), **args)
    assert not isinstance(error.value, data.DatasetError)
