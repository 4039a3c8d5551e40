"""Fixtures of the training tests: binarized MNIST prepared once per session."""

import pathlib

import pytest
from ml_collections import ConfigDict

from experiments.configs.pixelcnn import get_config


@pytest.fixture(scope="session")
def bmnist_dir(prepared_tfds: pathlib.Path) -> pathlib.Path:
    """A TFDS folder with the real binarized MNIST prepared from the raw files."""
    return prepared_tfds


@pytest.fixture
def tiny_config(bmnist_dir: pathlib.Path) -> ConfigDict:
    """The PixelCNN ``tiny`` config reading the prepared data."""
    config = get_config("tiny")
    config.data_dir = str(bmnist_dir)
    return config
