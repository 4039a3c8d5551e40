"""RealNVP (Dinh, Sohl-Dickstein & Bengio, 2017): a multi-scale normalizing flow.

    x int [B, H, W, C] in [0, L), u ~ U[0, 1)^D    (uniform dequantization, D = H W C)
    v = x + u in [0, L)^D
    p = alpha + (1 - 2 alpha) v / L,  y = logit(p)  (the logit transform; RealNVP: alpha = 0.05)
    z = f(y)                                         (the flow: affine couplings, squeezes)
    log p_V(v) = log N(z; 0, I) + log|det df/dy| + sum log|dy/dv|
               = log N(z; 0, I) + log|det df/dy|
                 + sum[log(1 - 2 alpha) - log L - log p - log(1 - p)]

p_V is a density on [0, L)^D whose integral over the unit cube of an integer
image x is the model's probability of x, so by Jensen's inequality
``log P(x) >= E_u[log p_V(x + u)]``: ``-log_prob(x, u)`` with u ~ U[0, 1)^D is an
unbiased estimate of an upper bound on the NLL of the integer image in nats,
every Jacobian term included (the ``- D log L`` is the /L scaling's; in
bits/dim it is the familiar ``+ 8`` for L = 256, written in RealNVP's code as
``bpd = (nll + D log 256) / (D log 2)`` of the density on [0, 1)^D).

The flow f (the official code's layout, ``real_nvp_multiscale_dataset.py``), one
scale per entry of ``features``, each halving H and W:

    scale s < last: 3 checkerboard couplings (alternating) -> squeeze (H, W, C -> H/2, W/2, 4C)
                    -> 3 channel couplings (alternating halves) -> half the channels are
                    factored out (to N(0, I)), the other half goes on to scale s + 1
    last scale:     4 checkerboard couplings

Affine coupling (the official code's order, shift before scale): the masked part
``x_b`` passes through; the rest becomes ``(x + t) * exp(s)`` with
``(s_raw, t) = NN(x_b)`` and ``s = scale * tanh(s_raw)``, ``scale`` a learned
per-channel vector. NN: a 3x3 conv to ``features`` channels, ``num_blocks``
residual blocks (ReLU, 3x3 conv, ReLU, 3x3 conv), ReLU and a zero-initialised
3x3 conv to (s_raw, t), so that every coupling starts as the identity; a
checkerboard coupling's NN reads ``[x * b, b]`` (the mask as a channel).

Departures from the paper and its code, all for simplicity:

* normalization: ``"actnorm"`` (Glow's per-channel affine layer after every
  coupling, initialised from the first batch: ``bias = -mean``, ``log_scale =
  -log(std + 1e-6)``) or ``"none"``, instead of batch norm in and after the
  coupling nets, so that a model is one deterministic function in training and
  evaluation (no running averages);
* no weight normalization in the coupling nets, and ``scale`` starts at 1 (the
  official code's starts at 0 with a randomly initialised last conv; with a
  zero last conv, as here, both would stay 0);
* the factored-out half is the second half of the squeezed channels (Glow's
  ``split2d``), not the official code's ``squeeze_2x2_ordered`` re-ordering;
* the latent z is returned with the image's shape [B, H, W, C]: the factored-out
  parts are unsqueezed back into place (a fixed permutation of the official layout).
"""

import math
from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxgen.nn.conv import PaddedConv2D, padded_conv
from jaxgen.validation import ConfigError, check_images

NORMALIZATIONS = ("actnorm", "none")
MASKS = ("checkerboard", "channel")
CHECKERBOARD_COUPLINGS = 3  # per scale, before the squeeze (4 at the last scale)
CHANNEL_COUPLINGS = 3  # per scale, after the squeeze (none at the last scale)
LAST_CHECKERBOARD_COUPLINGS = 4
ACTNORM_EPS = 1e-6  # Glow's: log_scale = -log(std + eps) at initialisation

_SAME = ((1, 1), (1, 1))  # padding of a 3x3 "SAME" convolution


def squeeze(x: jax.Array) -> jax.Array:
    """2x2 space-to-depth: float [B, H, W, C] -> [B, H/2, W/2, 4C], channels (dy, dx, c)."""
    b, h, w, c = x.shape
    x = x.reshape(b, h // 2, 2, w // 2, 2, c).transpose(0, 1, 3, 2, 4, 5)
    return x.reshape(b, h // 2, w // 2, 4 * c)


def unsqueeze(x: jax.Array) -> jax.Array:
    """The inverse of ``squeeze``: float [B, H, W, 4C] -> [B, 2H, 2W, C]."""
    b, h, w, c4 = x.shape
    c = c4 // 4
    x = x.reshape(b, h, w, 2, 2, c).transpose(0, 1, 3, 2, 4, 5)
    return x.reshape(b, 2 * h, 2 * w, c)


def checkerboard(height: int, width: int, parity: int) -> jax.Array:
    """float [H, W]: 1 where (i + j + parity) is even (the part that passes through), else 0."""
    i, j = jnp.arange(height)[:, None], jnp.arange(width)[None, :]
    return ((i + j + parity) % 2 == 0).astype(jnp.float32)


def standard_normal_log_density(z: jax.Array) -> jax.Array:
    """log N(z; 0, I) summed per example: float [B, ...] -> [B]."""
    flat = z.reshape(z.shape[0], -1)
    return -0.5 * jnp.sum(flat**2, axis=-1) - 0.5 * flat.shape[-1] * math.log(2 * math.pi)


def _sum_per_example(x: jax.Array) -> jax.Array:
    return x.reshape(x.shape[0], -1).sum(axis=-1)


class ZeroConv(nn.Module):
    """A 3x3 "SAME" convolution whose kernel and bias start at zero (Glow's ``conv2d_zeros``)."""

    features: int

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        shape = (3, 3, x.shape[-1], self.features)
        kernel = self.param("kernel", nn.initializers.zeros, shape)
        bias = self.param("bias", nn.initializers.zeros, (self.features,))
        return padded_conv(x, kernel, _SAME) + bias


class CouplingNet(nn.Module):
    """The coupling's residual network: float [B, H, W, C_in] -> [B, H, W, out_features].

    Attributes:
      features: hidden channels.
      num_blocks: residual blocks (ReLU, 3x3 conv, ReLU, 3x3 conv, plus the input).
      out_features: output channels; the last conv starts at zero.
    """

    features: int
    num_blocks: int
    out_features: int

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        h = PaddedConv2D(self.features, (3, 3), _SAME)(x)
        for _ in range(self.num_blocks):
            r = PaddedConv2D(self.features, (3, 3), _SAME)(nn.relu(h))
            h = h + PaddedConv2D(self.features, (3, 3), _SAME)(nn.relu(r))
        return ZeroConv(self.out_features)(nn.relu(h))


class AffineCoupling(nn.Module):
    """RealNVP's masked affine coupling layer, ``(x, reverse) -> (y, log_det)``.

    Forward: ``y = x_b + (1 - b) * (x + t) * exp(s)`` with ``(s_raw, t) = NN(x_b)``,
    ``s = scale * tanh(s_raw)``; ``log_det = sum(s)`` over the changed part.

    Attributes:
      mask: ``"checkerboard"`` (b: ``checkerboard(H, W, parity)``, every channel)
        or ``"channel"`` (b: the first half of the channels; parity 1: the second).
      parity: 0 or 1, which part passes through.
      features: hidden channels of the coupling net.
      num_blocks: its residual blocks.
    """

    mask: str
    parity: int
    features: int
    num_blocks: int

    @nn.compact
    def __call__(self, x: jax.Array, reverse: bool = False) -> tuple[jax.Array, jax.Array]:
        """float [B, H, W, C] -> (float [B, H, W, C], float [B]).

        Forward: ``log_det`` is log|det dy/dx|; ``reverse``: x from y, and
        ``log_det`` is log|det dx/dy| (the negation).
        """
        if self.mask == "checkerboard":
            b = checkerboard(x.shape[1], x.shape[2], self.parity)[None, :, :, None]
            given = x * b
            net_in = jnp.concatenate([given, jnp.broadcast_to(b, (*x.shape[:3], 1))], axis=-1)
            change = x
        elif self.mask == "channel":
            halves = jnp.split(x, 2, axis=-1)
            given, change = halves if self.parity == 0 else halves[::-1]
            net_in = given
        else:
            raise ConfigError(f"mask={self.mask!r} must be one of {', '.join(MASKS)}.")
        out = CouplingNet(self.features, self.num_blocks, 2 * change.shape[-1])(net_in)
        s_raw, t = jnp.split(out, 2, axis=-1)
        scale = self.param("scale", nn.initializers.ones, (change.shape[-1],))
        s = scale * jnp.tanh(s_raw)
        if self.mask == "checkerboard":  # the given part passes through
            s, t = s * (1 - b), t * (1 - b)
        if reverse:
            changed, log_det = change * jnp.exp(-s) - t, -_sum_per_example(s)
        else:
            changed, log_det = (change + t) * jnp.exp(s), _sum_per_example(s)
        if self.mask == "checkerboard":
            return changed, log_det
        parts = (given, changed) if self.parity == 0 else (changed, given)
        return jnp.concatenate(parts, axis=-1), log_det


class ActNorm(nn.Module):
    """Glow's actnorm, ``(x, reverse) -> (y, log_det)``: ``y = (x + bias) * exp(log_scale)``.

    Per-channel ``bias`` and ``log_scale``, initialised from the batch the model
    is initialised with (data-dependent: every channel of that batch comes out with
    mean 0 and standard deviation 1); ``log_det = H W sum(log_scale)``.
    """

    @nn.compact
    def __call__(self, x: jax.Array, reverse: bool = False) -> tuple[jax.Array, jax.Array]:
        """float [B, H, W, C] -> (float [B, H, W, C], float [B]); ``reverse`` inverts."""
        axes = tuple(range(x.ndim - 1))
        channels = (x.shape[-1],)
        bias = self.param("bias", lambda _, shape: -jnp.mean(x, axis=axes), channels)
        log_scale = self.param(
            "log_scale", lambda _, shape: -jnp.log(jnp.std(x, axis=axes) + ACTNORM_EPS), channels
        )
        log_det = jnp.sum(log_scale) * math.prod(x.shape[1:-1]) * jnp.ones(x.shape[:1])
        if reverse:
            return x * jnp.exp(-log_scale) - bias, -log_det
        return (x + bias) * jnp.exp(log_scale), log_det


class FlowSequence(nn.Module):
    """Couplings of one mask type, alternating parity, each followed by actnorm (optional).

    Attributes:
      mask: ``"checkerboard"`` or ``"channel"``.
      num_couplings: how many.
      features: hidden channels of the coupling nets.
      num_blocks: their residual blocks.
      actnorm: an ``ActNorm`` after every coupling.
    """

    mask: str
    num_couplings: int
    features: int
    num_blocks: int
    actnorm: bool

    def setup(self):
        self.couplings = [
            AffineCoupling(self.mask, i % 2, self.features, self.num_blocks)
            for i in range(self.num_couplings)
        ]
        self.norms = [ActNorm() for _ in range(self.num_couplings)] if self.actnorm else []

    def __call__(self, x: jax.Array, reverse: bool = False) -> tuple[jax.Array, jax.Array]:
        """float [B, H, W, C] -> (float [B, H, W, C], float [B] log-determinant).

        ``reverse`` runs the inverse: the layers in reverse order, each inverted.
        """
        layers: list = []
        for i, coupling in enumerate(self.couplings):
            layers += [coupling, *self.norms[i : i + 1]]
        log_det = jnp.zeros(x.shape[:1], x.dtype)
        for layer in reversed(layers) if reverse else layers:
            x, term = layer(x, reverse)
            log_det = log_det + term
        return x, log_det


class RealNVP(nn.Module):
    """RealNVP on integer images with uniform dequantization and the logit transform.

    Attributes:
      num_levels: L, the images' intensity levels (256 for 8-bit data).
      features: hidden channels of the coupling nets at each scale; its length
        is the number of scales (H and W must be divisible by 2^(scales - 1);
        28 x 28 MNIST: three scales, 28 -> 14 -> 7).
      num_blocks: residual blocks per coupling net.
      normalization: ``"actnorm"`` after every coupling, or ``"none"``.
      alpha: the logit transform's ``p = alpha + (1 - 2 alpha) x`` (RealNVP: 0.05), in (0, 0.5).
    """

    num_levels: int = 256
    features: Sequence[int] = (64, 128, 256)
    num_blocks: int = 8
    normalization: str = "actnorm"
    alpha: float = 0.05

    def setup(self):
        self._check()
        actnorm = self.normalization == "actnorm"
        last = len(self.features) - 1
        self.checker = [
            FlowSequence(
                "checkerboard",
                LAST_CHECKERBOARD_COUPLINGS if s == last else CHECKERBOARD_COUPLINGS,
                width,
                self.num_blocks,
                actnorm,
            )
            for s, width in enumerate(self.features)
        ]
        self.channel = [
            FlowSequence("channel", CHANNEL_COUPLINGS, width, self.num_blocks, actnorm)
            for width in self.features[:-1]
        ]

    def _check(self) -> None:
        if not isinstance(self.num_levels, int) or self.num_levels < 2:
            raise ConfigError(f"RealNVP num_levels={self.num_levels!r} must be an integer >= 2.")
        if len(self.features) < 1 or any(not isinstance(f, int) or f < 1 for f in self.features):
            raise ConfigError(
                f"RealNVP features={self.features!r} must be one positive channel count per "
                "scale, e.g. (64, 128, 256) for three scales."
            )
        if not isinstance(self.num_blocks, int) or self.num_blocks < 0:
            raise ConfigError(f"RealNVP num_blocks={self.num_blocks!r} must be an integer >= 0.")
        if self.normalization not in NORMALIZATIONS:
            raise ConfigError(
                f"RealNVP normalization={self.normalization!r} must be one of "
                f"{', '.join(NORMALIZATIONS)}."
            )
        if not 0 < self.alpha < 0.5:
            raise ConfigError(f"RealNVP alpha={self.alpha!r} must be in (0, 0.5).")

    def _check_shape(self, shape: Sequence[int]) -> None:
        factor = 2 ** (len(self.features) - 1)
        if len(shape) != 4 or shape[1] % factor or shape[2] % factor:
            raise ConfigError(
                f"RealNVP with {len(self.features)} scales needs images [B, H, W, C] with H and "
                f"W divisible by {factor}; got shape {tuple(shape)}. Use fewer scales (entries "
                "of features) or images of another size."
            )

    def flow(self, y: jax.Array, reverse: bool = False) -> tuple[jax.Array, jax.Array]:
        """The bijection on the logit scale, y -> z (``reverse``: z -> y).

        Args:
          y: float [B, H, W, C] (``reverse``: z of that shape).
          reverse: run the inverse.

        Returns:
          (z, log|det dz/dy|) (``reverse``: (y, log|det dy/dz|)), float [B, H, W, C] and [B].
        """
        self._check_shape(y.shape)
        if reverse:
            return self._inverse(y)
        log_det = jnp.zeros(y.shape[:1])
        h, factored = y, []
        for s, checker in enumerate(self.checker):
            h, term = checker(h)
            log_det = log_det + term
            if s == len(self.channel):
                break
            h, term = self.channel[s](squeeze(h))
            log_det = log_det + term
            h, out = jnp.split(h, 2, axis=-1)
            factored.append(out)
        for out in reversed(factored):
            h = unsqueeze(jnp.concatenate([h, out], axis=-1))
        return h, log_det

    def _inverse(self, z: jax.Array) -> tuple[jax.Array, jax.Array]:
        log_det = jnp.zeros(z.shape[:1])
        h, factored = z, []
        for _ in self.channel:
            h, out = jnp.split(squeeze(h), 2, axis=-1)
            factored.append(out)
        for s in reversed(range(len(self.checker))):
            if s < len(self.channel):
                h, term = self.channel[s](jnp.concatenate([h, factored[s]], axis=-1), True)
                log_det = log_det + term
                h = unsqueeze(h)
            h, term = self.checker[s](h, True)
            log_det = log_det + term
        return h, log_det

    def dequantize(self, x: jax.Array, u: jax.Array) -> tuple[jax.Array, jax.Array]:
        """v = x + u -> y = logit(alpha + (1 - 2 alpha) v / L), with log|det dy/dv|.

        Args:
          x: int [B, H, W, C] in [0, L).
          u: float [B, H, W, C] in [0, 1), the dequantization noise.

        Returns:
          (y float [B, H, W, C], float [B]: sum[log(1 - 2 alpha) - log L - log p - log(1 - p)]).
        """
        if u.shape != x.shape:
            raise ConfigError(f"u has shape {u.shape}; it must be the images' shape {x.shape}.")
        p = self.alpha + (1 - 2 * self.alpha) * (x + u) / self.num_levels
        y = jnp.log(p) - jnp.log1p(-p)
        terms = math.log(1 - 2 * self.alpha) - math.log(self.num_levels) - jnp.log(p)
        return y, _sum_per_example(terms - jnp.log1p(-p))

    def quantize(self, y: jax.Array) -> jax.Array:
        """The integer image of logit-scale y: floor(L (sigmoid(y) - alpha) / (1 - 2 alpha)).

        Returns:
          int32 [B, H, W, C] clipped to [0, L).
        """
        v = self.num_levels * (jax.nn.sigmoid(y) - self.alpha) / (1 - 2 * self.alpha)
        return jnp.clip(jnp.floor(v), 0, self.num_levels - 1).astype(jnp.int32)

    def __call__(self, x: jax.Array, u: jax.Array) -> tuple[jax.Array, jax.Array]:
        """The whole map from the dequantized image v = x + u to the latent z.

        Args:
          x: int [B, H, W, C] in [0, L).
          u: float [B, H, W, C] in [0, 1).

        Returns:
          (z float [B, H, W, C], log|det dz/dv| float [B]): logit transform and flow.
        """
        check_images(x, self.num_levels)
        y, log_det = self.dequantize(x, u)
        z, flow_log_det = self.flow(y)
        return z, log_det + flow_log_det

    def log_prob(self, x: jax.Array, u: jax.Array) -> jax.Array:
        """log p_V(x + u) in nats per image: an estimate of a lower bound on log P(x).

        Args:
          x: int [B, H, W, C] in [0, L).
          u: float [B, H, W, C] in [0, 1); u ~ U[0, 1)^D gives E[log_prob] <= log P(x).

        Returns:
          float [B]: log N(z; 0, I) + every log-determinant (flow, logit, 1/L).
        """
        z, log_det = self(x, u)
        return standard_normal_log_density(z) + log_det

    def generate(self, z: jax.Array) -> jax.Array:
        """Images of latents: float [B, H, W, C] -> int32 [B, H, W, C] in [0, L)."""
        return self.quantize(self.flow(z, reverse=True)[0])
