"""Test set-up: 8 simulated CPU devices, shared raw-data location, shared prepared data."""

import fcntl
import os
import pathlib

os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=8")
os.environ.setdefault("JAX_PLATFORMS", "cpu")

import pytest  # noqa: E402

REPO = pathlib.Path(__file__).resolve().parents[1]
DEFAULT_RAW_DIR = REPO.parent / "shared" / "data" / "raw"


@pytest.fixture(scope="session")
def raw_dir() -> pathlib.Path:
    """The folder of canonical raw dataset files (JAXGEN_RAW_DIR or ../shared/data/raw)."""
    path = pathlib.Path(os.environ.get("JAXGEN_RAW_DIR", DEFAULT_RAW_DIR))
    if not path.is_dir():
        raise FileNotFoundError(
            f"Raw data folder {path} not found: set JAXGEN_RAW_DIR to a folder holding "
            "mnist/, fashion_mnist/ and binarized_mnist/ raw files."
        )
    return path


@pytest.fixture(scope="session")
def prepared_tfds(
    tmp_path_factory: pytest.TempPathFactory, raw_dir: pathlib.Path, worker_id: str
) -> pathlib.Path:
    """A TFDS folder with binarized_mnist and mnist prepared from the raw files.

    Shared by every test and every xdist worker of one run: the first worker to
    get here prepares the data under a file lock, the others wait and reuse it.
    Tests of preparation itself (tests/data, the first-run CLI test) use fresh folders.
    """
    from jaxgen import data

    base = tmp_path_factory.getbasetemp()
    root = base if worker_id == "master" else base.parent  # the run's folder, over the workers
    path = root / "tfds_shared"
    with open(root / "tfds_shared.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        for name in ("binarized_mnist", "mnist"):
            data.prepare(name, data_dir=path, raw_dir=raw_dir)
    return path
