"""Autoregressive models by name, built from an experiment's model config.

    model = registry.build_model(config.model, num_levels=config.num_levels)

``config.model`` holds ``name`` (a key of ``MODELS``) and constructor arguments
of that class, e.g. ``{"name": "pixelrnn", "variant": "row_lstm", "num_layers": 7}``.
"""

import dataclasses
from collections.abc import Mapping
from typing import Any

import flax.linen as nn

from jaxgen.models.fvsbn import FVSBN
from jaxgen.models.gated_pixelcnn import GatedPixelCNN
from jaxgen.models.imagegpt import ImageGPT
from jaxgen.models.made import MADE
from jaxgen.models.nade import NADE
from jaxgen.models.pixelcnn import PixelCNN
from jaxgen.models.pixelrnn import PixelRNN
from jaxgen.models.pixelsnail import PixelSNAIL
from jaxgen.validation import ConfigError

MODELS: dict[str, type[nn.Module]] = {
    "pixelcnn": PixelCNN,
    "gated": GatedPixelCNN,
    "pixelrnn": PixelRNN,
    "fvsbn": FVSBN,
    "nade": NADE,
    "made": MADE,
    "imagegpt": ImageGPT,
    "pixelsnail": PixelSNAIL,
}


def build_model(model_config: Mapping[str, Any], num_levels: int) -> nn.Module:
    """The model named by ``model_config["name"]`` with the other entries as arguments.

    Args:
      model_config: ``name`` plus constructor arguments (a dict or ConfigDict).
      num_levels: intensity levels L of the data.

    Returns:
      The unbound Flax module.

    Raises:
      ValueError: unknown name or argument, naming the valid ones.
    """
    kwargs = dict(model_config)
    name = kwargs.pop("name", None)
    if name not in MODELS:
        raise ConfigError(f"model.name={name!r} must be one of {', '.join(MODELS)}.")
    cls = MODELS[name]
    fields = {f.name for f in dataclasses.fields(cls) if f.init} - {"parent", "name"}
    unknown = sorted(set(kwargs) - fields)
    if unknown:
        raise ConfigError(
            f"model.{unknown[0]} is not an argument of {cls.__name__} (model.name={name!r}); "
            f"its arguments are {', '.join(sorted(fields - {'num_levels'}))}."
        )
    return cls(num_levels=num_levels, **kwargs)
