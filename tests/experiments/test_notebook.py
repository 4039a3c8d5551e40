"""The quickstart notebook trains one model of each family through jaxgen.tasks, top to bottom."""

import os
import pathlib
import re
import sys

import nbformat
from nbclient import NotebookClient

from tests.conftest import xla_flags

NOTEBOOK = pathlib.Path(__file__).resolve().parents[2] / "experiments" / "quickstart.ipynb"


def test_quickstart_notebook_executes(raw_dir, prepared_tfds, monkeypatch):
    monkeypatch.setenv("JAXGEN_RAW_DIR", str(raw_dir))
    monkeypatch.setenv("TFDS_DATA_DIR", str(prepared_tfds))
    monkeypatch.setenv("XLA_FLAGS", xla_flags())  # one CPU device, like a laptop
    # The kernel spec runs `python`: make it this interpreter.
    monkeypatch.setenv(
        "PATH", f"{pathlib.Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
    )
    nb = nbformat.read(NOTEBOOK, as_version=4)
    client = NotebookClient(
        nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": NOTEBOOK.parent}}
    )
    client.execute(env=dict(os.environ))
    text = "\n".join(
        out.get("text", "") for cell in nb.cells if cell.cell_type == "code" for out in cell.outputs
    )
    first, last = map(
        float, re.search(r"first step ([\d.]+) nats, last 20 steps ([\d.]+)", text).groups()
    )
    assert last < first / 2
    nll, bpd = map(
        float, re.search(r"test NLL on 10000 images: ([\d.]+) nats, ([\d.]+) bits", text).groups()
    )
    assert 0 < nll < 250 and abs(bpd - nll / 784 / 0.6931471805599453) < 1e-3
    elbo, iwae = map(
        float, re.search(r"test ELBO (-[\d.]+) nats <= IWAE \(K=10\) (-[\d.]+) nats", text).groups()
    )
    assert -784 * 0.6931471805599453 < elbo <= iwae < 0  # better than coin flips; L_10 >= ELBO
    found = re.search(r"D\(x\) = ([\d.]+), D\(G\(z\)\) = ([\d.]+)", text)
    d_real, d_fake = map(float, found.groups())
    assert 0 < d_fake < 1 and 0 < d_real < 1
