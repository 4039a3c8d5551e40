"""Own images as datasets: folders of image files, .npz/.npy arrays, prepared TFDS datasets."""

import hashlib
import io
import json
import math
import os
import pathlib

import numpy as np
import pytest
import tensorflow_datasets as tfds
from PIL import Image

from experiments.configs.pixelcnn import get_config
from jaxgen import data, parallel, tasks, train
from jaxgen.data import arrays, own
from jaxgen.validation import ConfigError
from tests.conftest import xla_flags
from tests.experiments.test_cli import TINY, assert_clean_error, run_experiment

RNG = np.random.default_rng(0)


def _save(path: pathlib.Path, image: np.ndarray, mode: str | None = None, **kwargs) -> np.ndarray:
    """Writes uint8 [H, W] or [H, W, 3] ``image`` (converted to ``mode``); returns it as read."""
    path.parent.mkdir(parents=True, exist_ok=True)
    im = Image.fromarray(image)
    if mode is not None:
        im = im.convert(mode)
    im.save(path, **kwargs)
    return image


def _gray(h: int = 6, w: int = 5) -> np.ndarray:
    return RNG.integers(0, 256, (h, w), dtype=np.uint8)


def _rgb(h: int = 6, w: int = 5) -> np.ndarray:
    return RNG.integers(0, 256, (h, w, 3), dtype=np.uint8)


def _hash_folder(root: pathlib.Path, names: list[str]) -> dict[str, np.ndarray]:
    """Writes a random grayscale PNG for each relative name; returns name -> image."""
    return {name: _save(root / name, _gray()) for name in names}


def _names_for(split: str, count: int, prefix: str = "") -> list[str]:
    """``count`` file names that the hash rule sends to ``split``."""
    names = (f"{prefix}img_{i}.png" for i in range(10_000))
    picked = [n for n in names if own.hash_split(n) == split]
    return picked[:count]


# Folders ----------------------------------------------------------------------------------------


def test_split_subfolders_mixed_gray_and_colour_become_rgb(tmp_path: pathlib.Path) -> None:
    files = {  # relative name -> (image, mode to save in)
        "train/b.png": (_gray(), None),
        "train/a.bmp": (_rgb(), None),
        "train/sub/c.gif": (_gray(), None),
        "train/d.png": (_rgb(), "RGBA"),  # alpha is dropped
        "validation/v.png": (_gray(), "LA"),
        "test/t1.bmp": (_rgb(), None),
        "test/t0.PNG": (_gray(), None),
    }
    written = {name: _save(tmp_path / name, image, mode) for name, (image, mode) in files.items()}
    (tmp_path / "train/notes.txt").write_text("not an image")  # skipped
    (tmp_path / "train/.hidden.png").write_bytes(b"skipped")
    _save(tmp_path / "extra/x.png", _gray(9, 9))  # not a split folder: ignored
    spec = f"folder:{tmp_path}"

    info = data.dataset_info(spec)
    assert info.name == spec and info.image_shape == (6, 5, 3)
    assert dict(info.splits) == {"train": 4, "validation": 1, "test": 2}
    assert (info.train_split, info.eval_split, info.test_split) == ("train", "validation", "test")
    assert (info.num_classes, info.num_levels) == (0, 256)
    order = {
        "train": ["train/a.bmp", "train/b.png", "train/d.png", "train/sub/c.gif"],
        "validation": ["validation/v.png"],
        "test": ["test/t0.PNG", "test/t1.bmp"],
    }
    for split, names in order.items():
        got = arrays.split_arrays(info, split, None)
        expected = [np.broadcast_to(written[n].reshape(6, 5, -1), (6, 5, 3)) for n in names]
        np.testing.assert_array_equal(got["image"], np.stack(expected))
        np.testing.assert_array_equal(got["label"], -1)


def test_grayscale_folder_has_one_channel_and_writes_nothing(tmp_path: pathlib.Path) -> None:
    root, tfds_dir = tmp_path / "images", tmp_path / "tfds"
    bits = RNG.integers(0, 2, (6, 5), dtype=np.uint8) * 255
    written = {
        "train/0.png": _save(root / "train/0.png", _gray()),
        "train/1.png": _save(root / "train/1.png", bits, "1"),  # bilevel: 0/255
        "train/2.png": _save(root / "train/2.png", _gray(), "P"),  # a palette of grays
        "test/0.png": _save(root / "test/0.png", _gray()),
    }
    spec = f"folder:{root}"
    assert data.prepare(spec, data_dir=tfds_dir) == str(tfds_dir)
    assert not tfds_dir.exists()  # decoded into memory, nothing written
    info = data.dataset_info(spec)
    assert info.image_shape == (6, 5, 1) and info.eval_split == "test"
    assert dict(info.splits) == {"train": 3, "test": 1}
    got = arrays.split_arrays(info, "train", None)["image"]
    np.testing.assert_array_equal(got[..., 0], np.stack([written[f"train/{i}.png"] for i in "012"]))
    batch = data.train_batches(spec, batch_size=3, seed=0, num_levels=2, process_count=1)[0]
    assert batch["image"].dtype == np.int32 and set(np.unique(batch["image"])) <= {0, 1}


def test_hash_split_is_deterministic_and_independent_of_the_seed(tmp_path: pathlib.Path) -> None:
    assert own.hash_split("sub/img_0.png") == own.hash_split("sub/img_0.png")
    for key in ("0", "1", "a.png", "sub/b.png"):  # the documented rule
        bucket = int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big") % 10
        assert own.hash_split(key) == {0: "test", 1: "validation"}.get(bucket, "train")
    names = [f"img_{i}.png" for i in range(40)] + [f"sub/img_{i}.png" for i in range(20)]
    written = _hash_folder(tmp_path, names)
    spec = f"folder:{tmp_path}"
    info = data.dataset_info(spec)
    for split in info.splits:
        members = sorted(n for n in names if own.hash_split(n) == split)
        assert info.splits[split] == len(members)
        got = arrays.split_arrays(info, split, None)["image"][..., 0]
        np.testing.assert_array_equal(got, np.stack([written[n] for n in members]))
    # The split does not move with the seed: every seed's epoch covers the same train images.
    for seed in (0, 1):
        batches = data.train_batches(
            spec,
            batch_size=info.splits["train"],
            seed=seed,
            num_levels=256,
            process_count=1,
            process_index=0,
        )
        images = batches[0]["image"][..., 0]
        assert sorted(map(bytes, images.astype(np.uint8))) == sorted(
            bytes(written[n]) for n in names if own.hash_split(n) == "train"
        )


def test_files_are_cached_until_they_change(tmp_path: pathlib.Path) -> None:
    _hash_folder(tmp_path, _names_for("train", 3) + _names_for("test", 1))
    spec = f"folder:{tmp_path}"
    first = own.load(spec)
    assert own.load(spec) is first
    name = _names_for("test", 1)[0]
    _save(tmp_path / name, np.zeros((6, 5), np.uint8))
    os.utime(tmp_path / name, ns=(0, 0))  # another mtime, whatever the clock's resolution
    second = own.load(spec)
    assert second is not first
    assert np.all(second.arrays["test"]["image"] == 0)


def test_resize_key_resizes_with_lanczos(tmp_path: pathlib.Path) -> None:
    big, small = _rgb(12, 10), _rgb(6, 5)
    train, test = _names_for("train", 2), _names_for("test", 1)
    _save(tmp_path / train[0], big)
    _save(tmp_path / train[1], small)
    _save(tmp_path / test[0], _rgb(7, 7))
    info = data.dataset_info(f"folder:{tmp_path}?resize=6x5")
    assert info.image_shape == (6, 5, 3)
    got = arrays.split_arrays(info, "train", None)["image"]
    expected = {
        train[0]: np.asarray(Image.fromarray(big).resize((5, 6), Image.Resampling.LANCZOS)),
        train[1]: small,  # already 6x5: unchanged
    }
    np.testing.assert_array_equal(got, np.stack([expected[n] for n in sorted(train)]))


# Arrays -----------------------------------------------------------------------------------------


def _by_split(n: int) -> dict[str, np.ndarray]:
    index = {s: np.array([i for i in range(n) if own.hash_split(str(i)) == s]) for s in own.SPLITS}
    return {s: i for s, i in index.items() if len(i)}


def test_npz_with_labels_and_npy(tmp_path: pathlib.Path) -> None:
    images = RNG.integers(0, 256, (50, 4, 3, 3), dtype=np.uint8)
    labels = RNG.integers(0, 4, 50)
    labels[0] = 6
    np.savez(tmp_path / "d.npz", images=images, labels=labels)
    info = data.dataset_info(f"npz:{tmp_path / 'd.npz'}")
    assert (info.image_shape, info.num_classes, info.num_levels) == ((4, 3, 3), 7, 256)
    for split, index in _by_split(50).items():
        got = arrays.split_arrays(info, split, None)
        np.testing.assert_array_equal(got["image"], images[index])
        np.testing.assert_array_equal(got["label"], labels[index])

    binary = RNG.integers(0, 2, (50, 4, 3), dtype=np.uint8)
    np.save(tmp_path / "b.npy", binary)
    spec = f"npz:{tmp_path / 'b.npy'}"
    info = data.dataset_info(spec)
    assert (info.image_shape, info.num_classes, info.num_levels) == ((4, 3, 1), 0, 2)
    test = _by_split(50)["test"]
    (batch,) = data.eval_batches(
        spec, "test", batch_size=len(test), num_levels=2, process_index=0, process_count=1
    )
    np.testing.assert_array_equal(batch["image"][..., 0], binary[test])  # kept, not quantised
    assert np.all(batch["label"] == -1)
    with pytest.raises(ConfigError, match="num_levels=256 must be in 2..2"):
        data.eval_batches(spec, "test", batch_size=8, num_levels=256)


def test_from_array_writes_a_content_addressed_npz(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path / "tfds"))
    images = RNG.integers(0, 256, (40, 5, 4), dtype=np.uint8)
    labels = np.arange(40) % 3
    spec = data.from_array(images, labels)
    path = pathlib.Path(spec.removeprefix("npz:"))
    assert path.parent == tmp_path / "tfds" / "jaxgen_own" and len(path.stem) == 16
    assert json.loads(json.dumps({"dataset": spec}))["dataset"] == spec
    os.utime(path, ns=(1, 1))
    assert data.from_array(images.copy(), labels) == spec and path.stat().st_mtime_ns == 1
    assert data.from_array(images[::-1].copy(), labels) != spec
    info = data.dataset_info(spec)
    assert (info.image_shape, info.num_classes) == ((5, 4, 1), 3)
    for split, index in _by_split(40).items():
        got = arrays.split_arrays(info, split, None)
        np.testing.assert_array_equal(got["image"][..., 0], images[index])
        np.testing.assert_array_equal(got["label"], labels[index])
    chosen = tmp_path / "mine" / "x.npz"
    assert data.from_array(images, path=chosen) == f"npz:{chosen}"
    assert [p.name for p in chosen.parent.iterdir()] == ["x.npz"]  # no temporary left
    with pytest.raises(data.DatasetError, match="dtype float32"):
        data.from_array(images.astype(np.float32))


# TFDS datasets outside the catalog --------------------------------------------------------------


def _tiny_builder_class():
    """A TFDS builder of 8x8 grayscale PNGs with 3 classes, never registered."""

    class JaxgenTinyImages(tfds.core.GeneratorBasedBuilder, skip_registration=True):
        VERSION = tfds.core.Version("1.0.0")

        def _info(self) -> tfds.core.DatasetInfo:
            return tfds.core.DatasetInfo(
                builder=self,
                features=tfds.features.FeaturesDict(
                    {
                        "image": tfds.features.Image(shape=(8, 8, 1)),
                        "label": tfds.features.ClassLabel(num_classes=3),
                    }
                ),
            )

        def _split_generators(self, dl_manager):
            return {"train": self._generate_examples(0, 12), "test": self._generate_examples(1, 5)}

        def _generate_examples(self, seed, n):
            rng = np.random.default_rng(seed)
            for i in range(n):
                image = rng.integers(0, 256, (8, 8), dtype=np.uint8)
                buffer = io.BytesIO()
                Image.fromarray(image).save(buffer, format="png")
                yield i, {"image": buffer.getvalue(), "label": i % 3}

    return JaxgenTinyImages


def test_a_prepared_tfds_dataset_is_read_by_name(tmp_path: pathlib.Path) -> None:
    cls = _tiny_builder_class()
    cls(data_dir=tmp_path, file_format="array_record").download_and_prepare(
        file_format="array_record"
    )
    name = cls.name
    assert name == "jaxgen_tiny_images"
    with pytest.raises(tfds.core.registered.DatasetNotFoundError):
        tfds.builder_cls(name)  # jaxgen reads the prepared files, not the class
    info = data.dataset_info(name, data_dir=tmp_path)
    assert (info.image_shape, info.num_classes, info.num_levels) == ((8, 8, 1), 3, 256)
    assert dict(info.splits) == {"train": 12, "test": 5} and info.eval_split == "test"
    assert data.prepare(name, data_dir=tmp_path) == str(tmp_path)
    test = arrays.split_arrays(info, "test", tmp_path)
    records = tfds.data_source(name, split="test", data_dir=tmp_path)
    expected = [records[i] for i in range(5)]
    np.testing.assert_array_equal(test["image"], np.stack([r["image"] for r in expected]))
    np.testing.assert_array_equal(test["label"], [r["label"] for r in expected])
    batch = data.train_batches(
        name,
        batch_size=4,
        seed=0,
        num_levels=16,
        data_dir=tmp_path,
        process_index=0,
        process_count=1,
    )[0]
    assert batch["image"].shape == (4, 8, 8, 1) and batch["image"].max() < 16

    with pytest.raises(data.DatasetError, match=f"not prepared in data_dir={tmp_path}") as e:
        data.dataset_info("kmnist", data_dir=tmp_path)
    assert "tfds build kmnist --file_format=array_record" in str(e.value)
    assert "binarized_mnist, mnist, fashion_mnist, cifar10" in str(e.value)
    with pytest.raises(ConfigError, match="Unknown dataset name='no_such_images'"):
        data.dataset_info("no_such_images", data_dir=tmp_path)


# Bad input --------------------------------------------------------------------------------------


def _folder_case(case: str, root: pathlib.Path) -> str:
    """Writes a bad folder for ``case``; returns its dataset spec."""
    train, test = _names_for("train", 3), _names_for("test", 1)
    if case == "mixed sizes":
        _save(root / train[0], _gray(6, 5))
        _save(root / train[1], _gray(7, 5))
        _save(root / test[0], _gray(6, 5))
    elif case in ("corrupt", "16-bit", "bad resize", "unknown option"):
        _hash_folder(root, train + test)
        if case == "corrupt":
            (root / train[1]).write_bytes((root / train[1]).read_bytes()[:30])
        if case == "16-bit":
            Image.fromarray(np.full((6, 5), 1000, np.uint16)).save(root / train[1])
    elif case == "empty folder":
        (root / "sub").mkdir(parents=True)
        (root / "sub" / "readme.txt").write_text("no images")
    elif case == "too few":
        _hash_folder(root, train)
    elif case == "no test folder":
        _hash_folder(root, ["train/a.png", "validation/b.png"])
    elif case == "empty split folder":
        _hash_folder(root, ["train/a.png"])
        (root / "test").mkdir()
    suffix = {"bad resize": "?resize=32", "unknown option": "?size=3x3"}.get(case, "")
    return f"folder:{root if case != 'missing' else root / 'nowhere'}{suffix}"


FOLDER_CASES = {
    "mixed sizes": ("differ in size", "6x5", "7x5", "?resize="),
    "corrupt": ("Cannot read image file", "Replace it"),
    "16-bit": ("mode 'I;16'", "8-bit"),
    "bad resize": ("resize='32'", "resize=HxW"),
    "unknown option": ("unknown option 'size=3x3'", "resize=HxW"),
    "empty folder": ("holds no image files",),
    "missing": ("nowhere does not exist",),
    "too few": ("split 'test' empty", "train 3, validation 0, test 0", "train/ and test/"),
    "no test folder": ("but no test/", "required"),
    "empty split folder": ("test/ holds no image files", "train/ 1, test/ 0"),
}


@pytest.mark.parametrize("case", FOLDER_CASES)
def test_bad_folders_are_clear_errors(tmp_path: pathlib.Path, case: str) -> None:
    spec = _folder_case(case, tmp_path)
    with pytest.raises((data.DatasetError, ConfigError)) as e:
        data.prepare(spec, data_dir=tmp_path / "tfds")
    for phrase in FOLDER_CASES[case]:
        assert phrase in str(e.value)
    if case in ("mixed sizes", "corrupt"):
        assert _names_for("train", 3)[1] in str(e.value)  # names the file
    if case == "mixed sizes":
        assert _names_for("train", 3)[0] in str(e.value)
    assert "\n" not in str(e.value)
    assert not (tmp_path / "tfds").exists()


def test_fewer_training_images_than_the_batch_is_a_clear_error(tmp_path: pathlib.Path) -> None:
    _hash_folder(tmp_path, _names_for("train", 3) + _names_for("test", 1))
    with pytest.raises(ConfigError, match=r"batch_size=16 is larger than the 3 examples") as e:
        data.train_batches(f"folder:{tmp_path}", batch_size=16, seed=0, num_levels=256)
    assert "at most 3" in str(e.value)


ARRAY_CASES = {
    "no images": (dict(pictures=np.zeros((30, 2, 2), np.uint8)), "no array 'images'", "pictures"),
    "float": (dict(images=np.zeros((30, 2, 2), np.float32)), "dtype float32", "astype(np.uint8)"),
    "rank": (dict(images=np.zeros((30, 4), np.uint8)), "shape (30, 4)", "[N, H, W]"),
    "channels": (dict(images=np.zeros((30, 2, 2, 4), np.uint8)), "shape (30, 2, 2, 4)", "C = 1"),
    "label length": (
        dict(images=np.zeros((30, 2, 2), np.uint8), labels=np.zeros(29, int)),
        "labels have shape (29,)",
        "one per image",
    ),
    "negative label": (
        dict(images=np.zeros((30, 2, 2), np.uint8), labels=-np.ones(30, int)),
        "negative value -1",
        ">= 0",
    ),
    "too few": (
        dict(images=np.zeros((1, 2, 2), np.uint8)),
        "left split 'train' empty",
        "train 0, validation 0, test 1",
    ),
}


@pytest.mark.parametrize("case", ARRAY_CASES)
def test_bad_arrays_are_clear_errors(tmp_path: pathlib.Path, case: str) -> None:
    arrays_, *phrases = ARRAY_CASES[case]
    np.savez(tmp_path / "d.npz", **arrays_)
    with pytest.raises(data.DatasetError) as e:
        data.dataset_info(f"npz:{tmp_path / 'd.npz'}")
    for phrase in phrases:
        assert phrase in str(e.value)
    if "images" in arrays_:  # from_array makes the same checks
        with pytest.raises(
            data.DatasetError, match=phrases[0].replace("(", r"\(").replace(")", r"\)")
        ):
            data.from_array(arrays_["images"], arrays_.get("labels"), path=tmp_path / "x.npz")


def test_bad_array_files_are_clear_errors(tmp_path: pathlib.Path) -> None:
    with pytest.raises(data.DatasetError, match="does not exist.*from_array"):
        data.dataset_info(f"npz:{tmp_path / 'missing.npz'}")
    (tmp_path / "broken.npz").write_bytes(b"PK\x03\x04 not a zip")
    with pytest.raises(data.DatasetError, match="Cannot read array file .*broken.npz"):
        data.dataset_info(f"npz:{tmp_path / 'broken.npz'}")
    (tmp_path / "d.txt").write_text("1 2 3")
    with pytest.raises(data.DatasetError, match="neither .npz nor .npy"):
        data.dataset_info(f"npz:{tmp_path / 'd.txt'}")


def test_bad_folder_ends_the_command_line_with_exit_code_2(tmp_path: pathlib.Path) -> None:
    env = {**os.environ, "XLA_FLAGS": xla_flags(), "JAX_PLATFORMS": "cpu"}
    env["TFDS_DATA_DIR"] = str(tmp_path / "tfds")
    spec = _folder_case("mixed sizes", tmp_path / "images")
    result = run_experiment(env, "--workdir", str(tmp_path / "w"), TINY, f"--config.dataset={spec}")
    assert_clean_error(result, "differ in size", "?resize=")
    assert not (tmp_path / "w" / "metrics.jsonl").exists()
    assert not (tmp_path / "tfds").exists()


# The real check: binarized MNIST from PNG files trains exactly as from TFDS ---------------------


@pytest.fixture(scope="module")
def mnist_png_folder(
    prepared_tfds: pathlib.Path, tmp_path_factory: pytest.TempPathFactory
) -> pathlib.Path:
    """All 70,000 binarized MNIST images as 0/255 PNGs in train/, validation/, test/."""
    root = tmp_path_factory.mktemp("bmnist_png")
    info = data.dataset_info("binarized_mnist")
    for split in info.splits:
        images = arrays.split_arrays(info, split, prepared_tfds)["image"]
        (root / split).mkdir()
        for i, image in enumerate(np.asarray(images[..., 0]) * np.uint8(255)):
            Image.fromarray(image).save(root / split / f"{i:05d}.png", compress_level=1)
    return root


def _rows(workdir: pathlib.Path) -> list[dict]:
    return [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]


def test_binarized_mnist_from_png_files_trains_exactly_as_from_tfds(
    mnist_png_folder: pathlib.Path,
    prepared_tfds: pathlib.Path,
    raw_dir: pathlib.Path,
    tmp_path: pathlib.Path,
) -> None:
    rows = {}
    for dataset in ("binarized_mnist", f"folder:{mnist_png_folder}"):
        c = get_config("tiny")
        c.dataset, c.num_levels = dataset, 2
        c.data_dir, c.raw_dir = str(prepared_tfds), str(raw_dir)
        workdir = tmp_path / dataset.partition(":")[0]
        train.train_and_evaluate(
            tasks.from_config("autoregressive", c)[1], c, workdir, mesh=parallel.make_mesh(1)
        )
        rows[dataset] = _rows(workdir)
    tfds_rows, png_rows = rows.values()
    assert [r["split"] for r in tfds_rows] == [r["split"] for r in png_rows]
    assert {r["split"] for r in tfds_rows} == {"train", "eval", "test"}
    for a, b in zip(tfds_rows, png_rows, strict=True):
        assert a["step"] == b["step"] and a.get("num_examples") == b.get("num_examples")
        for key in ("loss", "nll_nats", "bits_per_dim"):
            if key in a:
                assert math.isclose(a[key], b[key], rel_tol=1e-4), (key, a, b)
