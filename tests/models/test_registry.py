"""The model registry: names to autoregressive models, with clear errors."""

import pytest
from ml_collections import ConfigDict

from jaxgen import models
from jaxgen.models import registry


@pytest.mark.parametrize(
    "config,cls",
    [
        ({"name": "pixelcnn", "num_layers": 2}, models.PixelCNN),
        ({"name": "gated", "kernel_size": 3, "num_classes": 10}, models.GatedPixelCNN),
        ({"name": "pixelrnn", "variant": "row_lstm"}, models.PixelRNN),
    ],
)
def test_builds_the_named_model_with_its_arguments(config, cls):
    model = registry.build_model(ConfigDict(config), num_levels=2)
    assert type(model) is cls and model.num_levels == 2
    for key, value in config.items():
        if key != "name":
            assert getattr(model, key) == value


def test_unknown_name_and_argument_are_named():
    with pytest.raises(ValueError, match="pixelcnn, gated, pixelrnn"):
        registry.build_model({"name": "wavenet"}, num_levels=2)
    with pytest.raises(ValueError, match=r"model\.kernel .*kernel_size"):
        registry.build_model({"name": "gated", "kernel": 3}, num_levels=2)
