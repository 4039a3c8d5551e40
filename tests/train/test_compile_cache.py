"""The persistent compilation cache: a second process loads the program the first compiled."""

import json
import os
import pathlib
import subprocess
import sys

import pytest

from jaxgen.train import compile_cache
from tests.conftest import REPO

# Compiles one jitted function in a fresh process; prints the cache events and the result.
_PROGRAM = """
import json, sys
import jax, jax.numpy as jnp
from jaxgen.train.compile_cache import enable_compilation_cache

events = []
jax.monitoring.register_event_listener(lambda name, **kw: events.append(name))
enable_compilation_cache(sys.argv[1])
f = jax.jit(lambda x: jnp.tanh(x @ x.T).sum(axis=0))
value = float(f(jnp.arange(12.0).reshape(3, 4) / 10).sum())
print(json.dumps({
    "hits": events.count("/jax/compilation_cache/cache_hits"),
    "misses": events.count("/jax/compilation_cache/cache_misses"),
    "value": value,
}))
"""


def _run(cache: pathlib.Path) -> dict:
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    env.pop(compile_cache.ENV_VAR, None)
    done = subprocess.run(
        [sys.executable, "-c", _PROGRAM, str(cache)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    return json.loads(done.stdout.splitlines()[-1])


def test_the_second_process_loads_the_first_ones_program(tmp_path):
    cache = tmp_path / "cache"
    first = _run(cache)
    assert first["hits"] == 0 and first["misses"] >= 1
    assert any(cache.iterdir())  # a CPU program well under a second was stored
    second = _run(cache)
    assert second["hits"] >= 1 and second["misses"] == 0
    assert second["value"] == first["value"]


def test_the_folder_comes_from_the_argument_then_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv(compile_cache.ENV_VAR, str(tmp_path / "env"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert compile_cache.cache_dir(tmp_path / "arg") == tmp_path / "arg"
    assert compile_cache.cache_dir() == tmp_path / "env"
    monkeypatch.delenv(compile_cache.ENV_VAR)
    assert compile_cache.cache_dir() == tmp_path / "xdg" / "jaxgen" / "jax"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert compile_cache.cache_dir() == tmp_path / "home" / ".cache" / "jaxgen" / "jax"


def test_an_uncreatable_folder_is_named(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(
        OSError, match=rf"compilation cache folder {blocker}/cache.*{compile_cache.ENV_VAR}"
    ):
        compile_cache.enable_compilation_cache(blocker / "cache")
