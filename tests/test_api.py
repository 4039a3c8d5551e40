"""The public API: one screen in ``jaxgen/__init__.py``, modules on first use, models only."""

import ast
import inspect
import subprocess
import sys

import flax.linen as nn
import pytest

import jaxgen
from jaxgen import losses, models, sampling
from tests.conftest import REPO


def test_the_package_docstring_lists_every_public_module_in_one_screen():
    doc = jaxgen.__doc__
    assert len(doc.splitlines()) <= 40, "the API screen must fit one terminal screen"
    for name in jaxgen.__all__:
        assert name in doc, f"{name} is public but not on the API screen"


@pytest.mark.parametrize("name", sorted(set(jaxgen.__all__) - {"ConfigError", "Run", "load_run"}))
def test_every_listed_module_resolves(name):
    module = getattr(jaxgen, name)
    assert module.__name__ == f"jaxgen.{name}"
    assert name in dir(jaxgen)


def test_load_run_and_run_come_from_jaxgen_runs():
    from jaxgen import runs

    assert jaxgen.load_run is runs.load_run and jaxgen.Run is runs.Run
    assert {"load_run", "Run"} <= set(dir(jaxgen))


def test_unknown_names_are_attribute_errors():
    with pytest.raises(AttributeError, match="no attribute 'sampler'"):
        jaxgen.sampler  # noqa: B018


def test_import_jaxgen_loads_modules_only_on_first_use():
    code = (
        "import sys, jaxgen; before = 'jaxgen.data' in sys.modules; jaxgen.data; "
        "print(before, 'jaxgen.data' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "True"]


def test_models_exports_flax_modules_only():
    for name in models.__all__:
        obj = getattr(models, name)
        assert isinstance(obj, type) and issubclass(obj, nn.Module), name
    for moved in ("reconstruction_loss", "reparameterize", "make_gan"):
        assert not hasattr(models, moved) or moved not in models.__all__
    assert callable(losses.reconstruction_loss)


def test_config_error_is_a_value_error():
    assert issubclass(jaxgen.ConfigError, ValueError)


def test_samplers_default_to_the_fastest_exact_method_and_the_models_first_pixel():
    for fn in (sampling.autoregressive_sample, sampling.complete):
        params = inspect.signature(fn).parameters
        assert params["method"].default is None
        assert params["first_pixel"].default == "model"
        assert params["temperature"].default == 1.0


def test_the_library_never_imports_experiments():
    for path in (REPO / "jaxgen").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            else:
                continue
            assert not any(n.split(".")[0] == "experiments" for n in names), path
