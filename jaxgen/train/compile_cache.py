"""JAX's persistent compilation cache, so a rerun or a resume does not compile again.

``enable_compilation_cache()`` points JAX at a cache folder and lowers the
thresholds so that CPU programs are cached too (by default JAX stores only
programs that took at least a second to compile). A process that compiles a
program already in the folder (same code, shapes, shardings, devices, flags and
versions) loads it instead: the experiments call it before they build anything.

The folder, first found:
  1. the ``path`` argument;
  2. ``$JAX_COMPILATION_CACHE_DIR``;
  3. ``$XDG_CACHE_HOME/jaxgen/jax``;
  4. ``~/.cache/jaxgen/jax``.
Delete the folder to clear the cache; JAX never evicts entries by default.
"""

import os
import pathlib

import jax

ENV_VAR = "JAX_COMPILATION_CACHE_DIR"


def cache_dir(path: str | os.PathLike | None = None) -> pathlib.Path:
    """The cache folder ``enable_compilation_cache(path)`` uses (see the module docstring)."""
    if path is not None:
        return pathlib.Path(path).expanduser()
    if os.environ.get(ENV_VAR):
        return pathlib.Path(os.environ[ENV_VAR]).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = pathlib.Path(xdg) if xdg else pathlib.Path.home() / ".cache"
    return base / "jaxgen" / "jax"


def enable_compilation_cache(path: str | os.PathLike | None = None) -> pathlib.Path:
    """Turns on JAX's persistent compilation cache in ``cache_dir(path)``, for every program.

    Call it before the first ``jax.jit`` compiles: JAX reads the setting once.

    Args:
      path: the cache folder; None for the standard place.

    Returns:
      The cache folder (created if missing).

    Raises:
      OSError: the folder cannot be created (the message names it).
    """
    folder = cache_dir(path)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise OSError(
            f"Cannot create the compilation cache folder {folder}: {e.strerror}. Set "
            f"{ENV_VAR} to a writable folder."
        ) from None
    jax.config.update("jax_compilation_cache_dir", str(folder))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    return folder
