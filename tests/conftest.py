"""Test set-up: 8 simulated CPU devices, shared raw-data location."""

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
