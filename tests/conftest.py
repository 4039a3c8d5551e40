"""Test set-up: 8 simulated CPU devices, shared raw-data location, shared prepared data."""

import fcntl
import os
import pathlib

# Compile fast: the suite's programs are tiny and compiling them is most of its time (77% of
# tests/models/test_pixelrnn.py + tests/tasks on one core, by JAX_LOG_COMPILES).
# - LLVM's optimisation off: -25% in compile-bound files, -9% in training-bound ones, -27% for
#   a tiny CLI run.
# - XLA:CPU's older loop emitters instead of its MLIR fusion emitters: -40% more (five test
#   files on both cores: 147.4 -> 89.1 s, 2026-12-08).
# The programs compute the same functions; their machine code is slower and may round
# differently (no test relies on bit-equal floats across such settings).
FAST_COMPILE = "--xla_backend_optimization_level=0 --xla_cpu_use_fusion_emitters=false"


def xla_flags(num_devices: int = 1) -> str:
    """XLA_FLAGS for a test process on ``num_devices`` simulated CPU devices."""
    return f"--xla_force_host_platform_device_count={num_devices} {FAST_COMPILE}"


# 8 simulated devices in the test processes.
os.environ.setdefault("XLA_FLAGS", xla_flags(8))
os.environ.setdefault("JAX_PLATFORMS", "cpu")

import pytest  # noqa: E402

REPO = pathlib.Path(__file__).resolve().parents[1]
DEFAULT_RAW_DIR = REPO.parent / "shared" / "data" / "raw"


def _run_folder(tmp_path_factory: pytest.TempPathFactory, worker_id: str) -> pathlib.Path:
    """The temporary folder of this run, shared by its xdist workers."""
    base = tmp_path_factory.getbasetemp()
    return base if worker_id == "master" else base.parent


# The files that take one xdist worker longest (seconds on a 2-core EPYC, 2026-12-08), handed out
# first: `--dist loadfile` gives the workers whole files in collection order, and a long file
# collected last (tests/train/ sorts last) left one worker running it alone at the end.
_LONGEST_FILES_FIRST = (
    "tests/experiments/test_compare.py",  # ~150: two whole tiny compare commands
    "tests/test_runs.py",  # ~120: four families trained, loaded and used
    "tests/experiments/test_notebook.py",  # ~60: the quickstart notebook
    "tests/data/test_own.py",  # ~60: own PNG folders prepared and trained on
    "tests/experiments/test_cli.py",  # ~55: tiny runs of every experiment
    "tests/train/test_kill_resume.py",  # ~45: runs killed and resumed in subprocesses
    "tests/train/test_multiprocess.py",  # ~40: two-process JAX runs
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Puts the tests of ``_LONGEST_FILES_FIRST`` first, in that order; the rest keep theirs."""
    rank = {path: i for i, path in enumerate(_LONGEST_FILES_FIRST)}
    items.sort(key=lambda item: rank.get(item.nodeid.split("::")[0], len(rank)))


@pytest.fixture(scope="session", autouse=True)
def compilation_cache_of_this_run(tmp_path_factory: pytest.TempPathFactory, worker_id: str):
    """Points the experiments' compilation cache (``$JAX_COMPILATION_CACHE_DIR``) at this run.

    The CLI subprocesses of the tests enable the persistent cache; without this they
    would read and fill the user's ``~/.cache/jaxgen/jax``, so that a second run of
    the suite would compile less than the first (or than CI, which starts empty).
    Within one run, the workers and subprocesses share it.
    """
    from jaxgen.train import compile_cache

    os.environ[compile_cache.ENV_VAR] = str(_run_folder(tmp_path_factory, worker_id) / "jax_cache")


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
    tests/data checks its contents against the raw files; the tests that prepare
    (tests/data/test_prepare.py, the first-run CLI test) use fresh folders.
    """
    from jaxgen import data

    root = _run_folder(tmp_path_factory, worker_id)
    path = root / "tfds_shared"
    with open(root / "tfds_shared.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        for name in ("binarized_mnist", "mnist"):
            data.prepare(name, data_dir=path, raw_dir=raw_dir)
    return path


@pytest.fixture(params=["cpu", "accelerator"])
def conv_formulation(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Runs a test with the CPU formulations of ``jaxgen.nn.conv`` (im2col, per-tap kernel
    gradients) and again with the accelerators' (XLA's convolutions and their gradients,
    what GPU and TPU run), so that both are checked on a CPU.

    JAX's caches are cleared around the accelerator run, so no function traced with one
    formulation is reused with the other.
    """
    import jax

    if request.param == "accelerator":
        monkeypatch.setattr("jaxgen.nn.conv.cpu_formulations", lambda: False)
        jax.clear_caches()
        request.addfinalizer(jax.clear_caches)
    return request.param
