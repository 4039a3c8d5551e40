"""What a checkpoint records of its run, so that ``jaxgen.load_run`` can rebuild it.

Beside the config, every checkpoint's meta holds the task's family, the data's
shape and levels, and each Flax module as its class and constructor arguments::

    {"family": "autoregressive", "image_shape": [28, 28, 1], "num_levels": 2,
     "num_classes": 0, "modules": {"model": {"class": "jaxgen.models.pixelcnn.PixelCNN",
                                             "args": {"num_levels": 2, "num_layers": 8, ...}}}}

A module whose arguments are not all JSON values (a function, an array) is
recorded as None: such a run is rebuilt from its config instead.
"""

import dataclasses
import importlib
import json
from collections.abc import Mapping, Sequence
from typing import Any

import flax.linen as nn

from jaxgen.validation import ConfigError

# Fields every Flax module has that are not constructor arguments of the model.
_NOT_ARGUMENTS = frozenset({"parent", "name"})


def module_spec(module: nn.Module) -> dict[str, Any] | None:
    """The class and constructor arguments of a Flax module, or None if not JSON values.

    Args:
      module: an unbound Flax module.

    Returns:
      ``{"class": "package.module.Class", "args": {name: value}}``, or None.
    """
    cls = type(module)
    args = {
        f.name: getattr(module, f.name)
        for f in dataclasses.fields(module)
        if f.init and f.name not in _NOT_ARGUMENTS
    }
    try:
        args = json.loads(json.dumps(args))  # tuples become lists, as in any saved JSON
    except (TypeError, ValueError):
        return None
    return {"class": f"{cls.__module__}.{cls.__qualname__}", "args": args}


def build_module(spec: Mapping[str, Any]) -> nn.Module:
    """The module ``module_spec`` recorded (JSON lists become tuples again).

    Raises:
      ConfigError: the class no longer exists or does not take these arguments.
    """
    path = spec["class"]
    module_name, _, class_name = path.rpartition(".")
    try:
        cls = getattr(importlib.import_module(module_name), class_name)
        return cls(**{name: _as_tuple(value) for name, value in spec["args"].items()})
    except (ImportError, AttributeError, TypeError) as e:
        raise ConfigError(
            f"The checkpoint's model {path} with arguments {spec['args']} cannot be built by "
            f"this version of jaxgen ({type(e).__name__}: {e}). Load it with the jaxgen version "
            "that trained it."
        ) from None


def run_record(
    family: str,
    modules: Mapping[str, nn.Module],
    image_shape: Sequence[int],
    num_levels: int,
    num_classes: int,
) -> dict[str, Any]:
    """The meta entries that describe a run's model and data (see the module docstring)."""
    return {
        "family": family,
        "modules": {role: module_spec(module) for role, module in modules.items()},
        "image_shape": list(image_shape),
        "num_levels": num_levels,
        "num_classes": num_classes,
    }


def _as_tuple(value: Any) -> Any:
    """JSON lists as tuples, recursively (module fields must be hashable)."""
    return tuple(_as_tuple(v) for v in value) if isinstance(value, list) else value
