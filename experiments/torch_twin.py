"""PyTorch eager twins of jaxgen's PixelCNN and Gated PixelCNN, for ``benchmark --vs torch``.

A support module (like ``experiments.cli``), never imported by ``jaxgen``; it
needs the ``bench`` extra (``pip install -e '.[bench]'``). The twins have the
layers, masks (``jaxgen.nn.masked.conv_mask`` and ``jaxgen.nn.gated.gate_mask``
themselves), sizes and parameter names of the Flax models, so
``load_flax_params`` copies a jaxgen model's params into its twin and both then
compute the same logits. Layout is PyTorch's NCHW; logits come out as
[B, C, L, H, W] and the loss is the same NLL in nats per image (softmax over
the L levels, summed over pixels and channels), averaged over the batch.

    twin = torch_twin.build(config.model.to_dict(), num_levels=2)
    load_flax_params(twin, params)
    loss = torch_twin.nll(twin(x), x)   # x: int64 [B, C, H, W]
    run = torch_twin.TwinRun(config, threads=2)  # checked against jaxgen; run.window(steps)
"""

import time
from collections.abc import Mapping
from typing import Any

import jax
import numpy as np
import torch
import torch.nn.functional as F

from experiments import speed
from jaxgen import losses
from jaxgen.models import registry
from jaxgen.nn.gated import gate_mask
from jaxgen.nn.masked import conv_mask


class Conv(torch.nn.Module):
    """A 2-D convolution with a fixed 0/1 mask on its kernel and explicit padding.

    As fast as PyTorch lets the same function be: a kernel whose mask is all ones
    (every 1x1 and every vertical-stack kernel on one-channel images) is a plain
    convolution; a masked kernel has its masked entries set to zero in place, once
    per call and outside autograd (as pytorch-generative's ``CausalConv2d``), so
    the convolution runs on the weight itself, not on a product formed and
    differentiated on every call. The function is that of ``weight * mask``: the
    masked entries are zero whenever the forward pass reads them (Adam may move
    them between steps; the next call zeroes them again). Symmetric padding is the
    convolution's own, not a padded copy of the input.

    Args:
      mask: 0/1 float [kh, kw, F_in, F_out] (HWIO, as jaxgen builds it); all ones: no mask.
      padding: (top, bottom, left, right) zero rows/columns added to the input.
    """

    def __init__(self, mask: np.ndarray, padding: tuple[int, int, int, int]):
        super().__init__()
        kh, kw, fin, fout = mask.shape
        self.weight = torch.nn.Parameter(torch.randn(fout, fin, kh, kw) * (kh * kw * fin) ** -0.5)
        self.bias = torch.nn.Parameter(torch.zeros(fout))
        masked = None if mask.all() else np.ascontiguousarray(mask.transpose(3, 2, 0, 1))
        self.register_buffer("mask", None if masked is None else torch.from_numpy(masked))
        top, bottom, left, right = padding
        self.symmetric = (top, left) if (top, left) == (bottom, right) else None
        self.pad = (left, right, top, bottom)  # F.pad's order: last axis first

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """float [B, F_in, H, W] -> [B, F_out, H, W]."""
        if self.mask is not None:
            with torch.no_grad():
                self.weight.mul_(self.mask)
        if self.symmetric is not None:
            return F.conv2d(x, self.weight, self.bias, padding=self.symmetric)
        return F.conv2d(F.pad(x, self.pad), self.weight, self.bias)


def _same(kernel_size: tuple[int, int]) -> tuple[int, int, int, int]:
    kh, kw = kernel_size
    return (kh // 2, kh // 2, kw // 2, kw // 2)


def masked_conv(kernel_size: tuple[int, int], fin: int, fout: int, c: int, mask_type: str) -> Conv:
    """The twin of ``jaxgen.nn.MaskedConv2D`` ("SAME" padding)."""
    return Conv(conv_mask(kernel_size, fin, fout, c, mask_type), _same(kernel_size))


def scale_levels(x: torch.Tensor, num_levels: int) -> torch.Tensor:
    """int levels [B, C, H, W] in [0, L) -> float [-1, 1], as jaxgen's first layers expect."""
    return x.float() * (2.0 / (num_levels - 1)) - 1.0


def gated_activation(z: torch.Tensor) -> torch.Tensor:
    """tanh(f) * sigmoid(g) for z = [f | g] on the channel axis: [B, 2F, H, W] -> [B, F, H, W]."""
    f, g = torch.chunk(z, 2, dim=1)
    return torch.tanh(f) * torch.sigmoid(g)


class PixelCNN(torch.nn.Module):
    """The twin of ``jaxgen.models.PixelCNN`` (residual blocks, every conv masked)."""

    def __init__(
        self, num_levels: int, num_layers: int, features: int, head_features: int, c: int = 1
    ):
        super().__init__()
        self.num_levels, self.num_layers, self.c = num_levels, num_layers, c
        h = features
        layers = {"input_conv": masked_conv((7, 7), c, 2 * h, c, "A")}
        for i in range(num_layers):
            layers[f"block{i}_in"] = masked_conv((1, 1), 2 * h, h, c, "B")
            layers[f"block{i}_conv"] = masked_conv((3, 3), h, h, c, "B")
            layers[f"block{i}_out"] = masked_conv((1, 1), h, 2 * h, c, "B")
        layers["head"] = masked_conv((1, 1), 2 * h, head_features, c, "B")
        layers["logits"] = masked_conv((1, 1), head_features, c * num_levels, c, "B")
        self.layers = torch.nn.ModuleDict(layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """int [B, C, H, W] levels -> float [B, C, L, H, W] logits."""
        m = self.layers
        y = m["input_conv"](scale_levels(x, self.num_levels))
        for i in range(self.num_layers):
            r = m[f"block{i}_in"](F.relu(y))
            r = m[f"block{i}_conv"](F.relu(r))
            y = y + m[f"block{i}_out"](F.relu(r))
        y = m["logits"](F.relu(m["head"](F.relu(y))))
        b, _, height, width = x.shape
        return y.view(b, self.c, self.num_levels, height, width)


class GatedPixelCNN(torch.nn.Module):
    """The twin of the unconditional ``jaxgen.models.GatedPixelCNN`` (both stacks, no labels)."""

    def __init__(
        self,
        num_levels: int,
        num_layers: int,
        features: int,
        kernel_size: int,
        head_features: int,
        c: int = 1,
    ):
        super().__init__()
        self.num_levels, self.num_layers, self.c = num_levels, num_layers, c
        p, n = features, kernel_size
        rows = n // 2 + 1
        layers = {}
        for k in range(num_layers):
            fin = c if k == 0 else p
            ones = np.ones((rows, n, fin, 2 * p), np.float32)
            layers[f"v{k}_conv"] = Conv(ones, (rows - 1, 0, n // 2, n // 2))
            mask = gate_mask((1, n), fin, p, 2, c, "A" if k == 0 else "B")
            layers[f"h{k}_conv"] = Conv(mask, _same((1, n)))
            layers[f"v{k}_to_h"] = Conv(np.ones((1, 1, 2 * p, 2 * p), np.float32), (0, 0, 0, 0))
            layers[f"h{k}_out"] = masked_conv((1, 1), p, p, c, "B")
        layers["head"] = masked_conv((1, 1), p, head_features, c, "B")
        layers["logits"] = masked_conv((1, 1), head_features, c * num_levels, c, "B")
        self.layers = torch.nn.ModuleDict(layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """int [B, C, H, W] levels -> float [B, C, L, H, W] logits."""
        m = self.layers
        v = h = scale_levels(x, self.num_levels)
        for k in range(self.num_layers):
            v_pre = m[f"v{k}_conv"](v)
            below = F.pad(v_pre[:, :, :-1], (0, 0, 1, 0))  # shifted down one row
            h_pre = m[f"h{k}_conv"](h) + m[f"v{k}_to_h"](below)
            v = gated_activation(v_pre)
            out = m[f"h{k}_out"](gated_activation(h_pre))
            h = out if k == 0 else h + out
        y = m["logits"](F.relu(m["head"](F.relu(h))))
        b, _, height, width = x.shape
        return y.view(b, self.c, self.num_levels, height, width)


def build(
    model_config: Mapping[str, Any], num_levels: int, num_channels: int = 1
) -> torch.nn.Module:
    """The twin of ``jaxgen.models.registry.build_model(model_config, num_levels)``.

    Args:
      model_config: ``name`` ("pixelcnn" or "gated") and the model's sizes.
      num_levels: intensity levels L.
      num_channels: colour channels C of the images.

    Returns:
      The PyTorch module.

    Raises:
      ValueError: a model without a twin, or settings the twins do not have.
    """
    kwargs = dict(model_config)
    name = kwargs.pop("name", None)
    if kwargs.get("num_classes") is not None:
        raise ValueError("The PyTorch twins are unconditional: set model.num_classes=None.")
    kwargs.pop("num_classes", None)
    dtype = kwargs.pop("dtype", "float32")
    if dtype != "float32":
        raise ValueError(f"model.dtype={dtype!r}: the PyTorch twins run in float32 only.")
    if name == "pixelcnn":
        return PixelCNN(num_levels, c=num_channels, **kwargs)
    if name == "gated":
        return GatedPixelCNN(num_levels, c=num_channels, **kwargs)
    raise ValueError(f"model.name={name!r} has no PyTorch twin; choose 'pixelcnn' or 'gated'.")


def nll(logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Mean over the batch of the NLL in nats per image.

    Args:
      logits: float [B, C, L, H, W].
      x: int64 [B, C, H, W] levels.

    Returns:
      float scalar.
    """
    return F.cross_entropy(logits.transpose(1, 2), x, reduction="sum") / x.shape[0]


def num_params(module: torch.nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in module.parameters())


def load_flax_params(twin: torch.nn.Module, params: Mapping[str, Any]) -> None:
    """Copies a jaxgen model's params (``variables["params"]``) into its twin, layer by name.

    A Flax kernel [kh, kw, F_in, F_out] (or [F_in, F_out] for a 1x1 as a matmul)
    becomes the twin's weight [F_out, F_in, kh, kw].

    Raises:
      ValueError: the layer names or shapes differ.
    """
    layers = twin.layers
    if set(layers) != set(params):
        raise ValueError(
            "The twin's layers differ from the Flax params': only in the twin "
            f"{sorted(set(layers) - set(params))}, "
            f"only in Flax {sorted(set(params) - set(layers))}."
        )
    with torch.no_grad():
        for name, layer in layers.items():
            fout, fin, kh, kw = layer.weight.shape
            kernel = np.asarray(params[name]["kernel"], np.float32)
            if kernel.size != layer.weight.numel() or kernel.shape[-2:] != (fin, fout):
                raise ValueError(
                    f"Layer {name}: Flax kernel {kernel.shape}, "
                    f"twin weight {tuple(layer.weight.shape)}."
                )
            kernel = kernel.reshape(kh, kw, fin, fout).transpose(3, 2, 0, 1)
            layer.weight.copy_(torch.from_numpy(np.ascontiguousarray(kernel)))
            layer.bias.copy_(torch.from_numpy(np.array(params[name]["bias"], np.float32)))


class TwinRun:
    """A twin built, checked against jaxgen's model and ready to time its Adam train steps.

    Building it copies the initial params of the jaxgen model of ``config`` into
    the twin and checks that both compute the same loss on a random batch, then
    takes one (untimed, warm-up) train step.

    Args:
      config: a ``pixelcnn`` experiment config (``model``, ``num_levels``,
        ``batch_size``, ``learning_rate``).
      threads: PyTorch's intra-op threads.
      seed: seed of the params and of the batch (``speed.random_batch``).

    Raises:
      ValueError: the twin's parameter count or loss differs from jaxgen's.
    """

    def __init__(self, config, threads: int, seed: int = 0):
        torch.set_num_threads(threads)
        model = registry.build_model(config.model.to_dict(), config.num_levels)
        image = speed.random_batch(config.batch_size, seed)["image"]
        params = jax.jit(model.init)(jax.random.key(seed), image[:1])
        self.module = build(config.model.to_dict(), config.num_levels)
        self.num_params = num_params(self.module)
        self.jax_num_params = speed.count_params(params)
        if self.num_params != self.jax_num_params:
            raise ValueError(
                f"The twin has {self.num_params} parameters, jaxgen's model "
                f"{self.jax_num_params}: the networks differ."
            )
        load_flax_params(self.module, params["params"])
        check = image[:2]
        jax_loss = float(
            losses.autoregressive_nll(jax.jit(model.apply)(params, check), check).mean()
        )
        self.x = torch.from_numpy(image.transpose(0, 3, 1, 2).astype(np.int64))
        with torch.no_grad():
            torch_loss = float(nll(self.module(self.x[:2]), self.x[:2]))
        if not np.isclose(torch_loss, jax_loss, rtol=1e-4):
            raise ValueError(
                f"With the same params the twin's loss is {torch_loss}, jaxgen's {jax_loss}."
            )
        self.optimizer = torch.optim.Adam(self.module.parameters(), lr=config.learning_rate)
        self.first_step_s = self.window(1)

    def window(self, steps: int) -> float:
        """Runs ``steps`` train steps (forward, loss, backward, Adam); returns their seconds."""
        start = time.perf_counter()
        for _ in range(steps):
            self.optimizer.zero_grad(set_to_none=True)
            nll(self.module(self.x), self.x).backward()
            self.optimizer.step()
        return time.perf_counter() - start
