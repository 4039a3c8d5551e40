"""Train images/s of pytorch-generative's own PixelCNN beside jaxgen's twin and jaxgen.

    python tools/peer_pixelcnn_bench.py PEER_CHECKOUT [--rounds 3] [--window_s 8]

PEER_CHECKOUT is a checkout of github.com/EugenHotaj/pytorch-generative. Only
three of its files are loaded (``nn/convolution.py``, ``models/base.py`` and
``models/autoregressive/pixel_cnn.py``, under a package of their own), so its
other dependencies need not be installed; PyTorch comes from the ``bench``
extra. The network is the peer's ``reproduce()`` PixelCNN (15 blocks, 16
residual channels, head 32; one Bernoulli logit per pixel, BCE summed over
pixels, Adam 1e-3) at batch 32 on random binary 28x28 images, 2 threads; beside
it the twin and jaxgen's train step of ``benchmark.TRAIN_CASES["pixelcnn_15x16"]``
(the same network with two-level softmax outputs: 33 more parameters). Windows
alternate jaxgen, twin, peer, each after one untimed step, ``--rounds`` times;
prints images/s per window and the medians.
"""

import argparse
import importlib.util
import os
import pathlib
import statistics
import sys
import time
import types

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as benchmark --vs torch

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
from experiments import benchmark, speed, torch_twin  # noqa: E402

BATCH = 32


def load_peer_pixelcnn(checkout: pathlib.Path) -> type:
    """The peer's ``PixelCNN`` class, loaded from three of its files."""
    root = checkout / "pytorch_generative"
    package = types.ModuleType("pytorch_generative")
    package.__path__ = []
    sys.modules["pytorch_generative"] = package
    for name, path in (
        ("nn", "nn/convolution.py"),
        ("models.base", "models/base.py"),
        ("models.pixel_cnn", "models/autoregressive/pixel_cnn.py"),
    ):
        if name == "models.base":
            models = types.ModuleType("pytorch_generative.models")
            models.__path__ = []
            sys.modules["pytorch_generative.models"] = models
            package.models = models
        spec = importlib.util.spec_from_file_location(f"pytorch_generative.{name}", root / path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module
        spec.loader.exec_module(module)
        parent, _, leaf = spec.name.rpartition(".")
        setattr(sys.modules[parent], leaf, module)
    return sys.modules["pytorch_generative.models.pixel_cnn"].PixelCNN


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkout", type=pathlib.Path)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--window_s", type=float, default=8.0)
    args = parser.parse_args()

    torch.set_num_threads(2)
    peer = load_peer_pixelcnn(args.checkout)(
        in_channels=1, out_channels=1, n_residual=15, residual_channels=16, head_channels=32
    )
    x = (torch.rand(BATCH, 1, 28, 28) > 0.5).float()
    optimizer = torch.optim.Adam(peer.parameters(), lr=1e-3)

    def peer_window(steps: int) -> float:
        start = time.perf_counter()
        for _ in range(steps):
            optimizer.zero_grad(set_to_none=True)
            logits = peer(x).view(BATCH, -1)
            F.binary_cross_entropy_with_logits(logits, x.view(BATCH, -1), reduction="none").sum(
                1
            ).mean().backward()
            optimizer.step()
        return time.perf_counter() - start

    twin = torch_twin.TwinRun(benchmark.TWIN_CONFIGS["pixelcnn_15x16"](), 2)
    run = speed.prepare_train(benchmark.TRAIN_CASES["pixelcnn_15x16"][1]())
    print(
        f"params: peer {sum(p.numel() for p in peer.parameters())}, twin {twin.num_params}, "
        f"jaxgen {run.num_params}"
    )
    peer_window(2)
    steps = max(1, round(args.window_s / (peer_window(3) / 3)))
    windows = {"jaxgen": run.window, "twin": twin.window, "peer": peer_window}
    rates: dict[str, list[float]] = {name: [] for name in windows}
    for r in range(args.rounds):
        for name, window in windows.items():
            window(1)
            rates[name].append(BATCH * steps / window(steps))
        print(r, {name: round(v[-1], 1) for name, v in rates.items()}, flush=True)
    print("median images/s", {name: round(statistics.median(v), 1) for name, v in rates.items()})


if __name__ == "__main__":
    main()
