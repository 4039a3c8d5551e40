"""Fixtures of the training tests: binarized MNIST prepared once per session."""

import pathlib

import pytest
from ml_collections import ConfigDict

from experiments.configs.pixelcnn import get_config
from jaxgen import data


@pytest.fixture(scope="session")
def bmnist_dir(tmp_path_factory: pytest.TempPathFactory, raw_dir: pathlib.Path) -> pathlib.Path:
    """A TFDS folder with the real binarized MNIST prepared from the raw files."""
    data_dir = tmp_path_factory.mktemp("tfds")
    data.prepare("binarized_mnist", data_dir=data_dir, raw_dir=raw_dir)
    return data_dir


@pytest.fixture
def tiny_config(bmnist_dir: pathlib.Path) -> ConfigDict:
    """The PixelCNN ``tiny`` config reading the prepared data."""
    config = get_config("tiny")
    config.data_dir = str(bmnist_dir)
    return config
