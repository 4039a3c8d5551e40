"""GAN networks: DCGAN (Radford et al., 2016) and the fully connected GAN (Goodfellow et al., 2014).

DCGAN generator, for an image of H x W x C with ``n`` upsamplings (H = base * 2^n):

    z float [B, latent_dim]
      -> Dense -> [B, base, base, features * 2^(n-1)], BatchNorm, ReLU
      -> n - 1 x (ConvTranspose stride 2, halve the width, BatchNorm, ReLU)
      -> ConvTranspose stride 2 -> C channels, tanh          -> [B, H, W, C] in [-1, 1]

DCGAN discriminator, its mirror image:

    x float [B, H, W, C] in [-1, 1]
      -> Conv stride 2 -> features, LeakyReLU 0.2            (no BatchNorm on the input layer)
      -> n - 1 x (Conv stride 2, double the width, BatchNorm, LeakyReLU 0.2)
      -> flatten, Dense -> one logit                          -> [B]

28 x 28 images use base 7 and n = 2, 32 x 32 use base 4 and n = 3. Weights are
drawn from N(0, 0.02) and BatchNorm gains from N(1, 0.02) as in the official
DCGAN code; BatchNorm statistics live in the ``batch_stats`` collection, with
running averages of momentum 0.9 used when ``train=False``. The transposed
convolutions are ``ConvTranspose2x``: what ``nn.ConvTranspose`` computes, an
order of magnitude faster on CPU.

The fully connected GAN of Goodfellow et al. (2014) on MNIST: G is two ReLU
layers of 1200 units and a tanh output layer (the paper used a sigmoid on [0, 1]
data); D is two maxout layers of 240 units with 5 pieces and a linear logit.
The paper's dropout in D is left out. These networks have no batch statistics.

All generators map ``z [B, latent_dim] -> images [B, H, W, C]`` in [-1, 1] and
all discriminators map ``images -> logits [B]``; both take ``train`` (batch
statistics vs running averages).
"""

import math

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxgen import levels
from jaxgen.validation import ConfigError, check_sizes

ARCHITECTURES = ("dcgan", "mlp")  # the pairs of ``make_gan``
_WEIGHT_INIT = nn.initializers.normal(0.02)


def _gain_init(key: jax.Array, shape: tuple[int, ...], dtype=jnp.float32) -> jax.Array:
    """BatchNorm gains drawn from N(1, 0.02)."""
    return 1.0 + 0.02 * jax.random.normal(key, shape, dtype)


def _batch_norm(train: bool, name: str) -> nn.BatchNorm:
    return nn.BatchNorm(
        use_running_average=not train, momentum=0.9, scale_init=_gain_init, name=name
    )


class ConvTranspose2x(nn.Module):
    """Stride-2 transposed convolution with 'SAME' padding, by output phases.

    Computes exactly ``nn.ConvTranspose(features, (k, k), (2, 2))`` (same
    ``kernel`` and ``bias`` parameters), but as four stride-1 convolutions, one
    per output phase (row parity a, column parity b), with the kernel taps of
    that phase. XLA's CPU transposed convolution dilates the input with zeros
    and runs about 15x slower.

    Attributes:
      features: output channels.
      kernel_size: side k >= 2 of the square kernel.
    """

    features: int
    kernel_size: int = 5

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        """Upsamples by two.

        Args:
          x: float [B, H, W, C_in].

        Returns:
          float [B, 2H, 2W, features].
        """
        k = self.kernel_size
        if k < 2:
            raise ConfigError(f"kernel_size={k} of a stride-2 transposed convolution must be >= 2.")
        kernel = self.param("kernel", _WEIGHT_INIT, (k, k, x.shape[-1], self.features))
        bias = self.param("bias", nn.initializers.zeros, (self.features,))
        # Output o = 2p + a reads input p + d + m through tap t0 + 2m (lax.conv_transpose's
        # 'SAME' padding puts ceil(k / 2) zeros before the dilated input).
        pad_before = (k + 1) // 2
        taps, pads = [], []
        for a in (0, 1):
            t0 = (pad_before - a) % 2
            d = (a + t0 - pad_before) // 2
            taps.append(t0)
            pads.append((-d, d + len(range(t0, k, 2)) - 1))
        rows = []
        for a in (0, 1):
            row = [
                jax.lax.conv_general_dilated(
                    x,
                    kernel[taps[a] :: 2, taps[b] :: 2],
                    (1, 1),
                    (pads[a], pads[b]),
                    dimension_numbers=("NHWC", "HWIO", "NHWC"),
                )
                for b in (0, 1)
            ]
            rows.append(jnp.stack(row, axis=3))  # [B, H, W, b, C]
        y = jnp.stack(rows, axis=2)  # [B, H, a, W, b, C]
        b, h, _, w, _, c = y.shape
        return y.reshape(b, 2 * h, 2 * w, c) + bias


def num_upsamplings(size: int) -> int:
    """Stride-2 layers for a square image side: halve while even and the base stays >= 4.

    Args:
      size: image height (= width).

    Returns:
      n >= 1 with ``size = base * 2**n``; 28 -> 2 (base 7), 32 -> 3 (base 4).
    """
    n = 0
    while size % 2 == 0 and size // 2 >= 4:
        size //= 2
        n += 1
    if n == 0:
        raise ConfigError(f"image side {size} must be even and at least 8 for a DCGAN.")
    return n


def _check_square(image_shape: tuple[int, int, int]) -> int:
    h, w, _ = image_shape
    if h != w:
        raise ConfigError(f"DCGAN needs square images, got image_shape={image_shape}.")
    return num_upsamplings(h)


class DCGANGenerator(nn.Module):
    """DCGAN generator: projection, stride-2 transposed convolutions, tanh.

    Attributes:
      image_shape: (H, W, C) of the generated images; H = W.
      features: width of the last hidden layer; widths double towards the projection.
      kernel_size: side of the transposed convolutions (5 in the official code).
    """

    image_shape: tuple[int, int, int] = (28, 28, 1)
    features: int = 64
    kernel_size: int = 5

    @nn.compact
    def __call__(self, z: jax.Array, train: bool = True) -> jax.Array:
        """Generates images.

        Args:
          z: float [B, latent_dim] latent codes.
          train: use batch statistics (and update the running averages) if True.

        Returns:
          float [B, H, W, C] in [-1, 1].
        """
        check_sizes(self, ("features",))
        n = _check_square(self.image_shape)
        h, _, c = self.image_shape
        base = h // 2**n
        width = self.features * 2 ** (n - 1)
        y = nn.Dense(base * base * width, kernel_init=_WEIGHT_INIT, name="project")(z)
        y = y.reshape(z.shape[0], base, base, width)
        y = nn.relu(_batch_norm(train, "project_bn")(y))
        for i in range(n - 1):
            width //= 2
            y = ConvTranspose2x(width, self.kernel_size, name=f"up{i}")(y)
            y = nn.relu(_batch_norm(train, f"up{i}_bn")(y))
        y = ConvTranspose2x(c, self.kernel_size, name="output")(y)
        return jnp.tanh(y)


class DCGANDiscriminator(nn.Module):
    """DCGAN discriminator: stride-2 convolutions with LeakyReLU 0.2, one logit.

    Attributes:
      image_shape: (H, W, C) of the input images; H = W.
      features: width of the first convolution; widths double at each layer.
      kernel_size: side of the convolutions.
    """

    image_shape: tuple[int, int, int] = (28, 28, 1)
    features: int = 64
    kernel_size: int = 5

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = True) -> jax.Array:
        """Scores images.

        Args:
          x: float [B, H, W, C] in [-1, 1].
          train: use batch statistics (and update the running averages) if True.

        Returns:
          float [B] logits of "x is real".
        """
        check_sizes(self, ("features",))
        n = _check_square(self.image_shape)
        k = (self.kernel_size, self.kernel_size)
        y = nn.Conv(self.features, k, (2, 2), kernel_init=_WEIGHT_INIT, name="input_conv")(x)
        y = nn.leaky_relu(y, 0.2)
        for i in range(n - 1):
            width = self.features * 2 ** (i + 1)
            y = nn.Conv(width, k, (2, 2), kernel_init=_WEIGHT_INIT, name=f"down{i}")(y)
            y = nn.leaky_relu(_batch_norm(train, f"down{i}_bn")(y), 0.2)
        y = y.reshape(y.shape[0], -1)
        return nn.Dense(1, kernel_init=_WEIGHT_INIT, name="logit")(y)[:, 0]


class MLPGenerator(nn.Module):
    """Fully connected generator of Goodfellow et al. (2014).

    Attributes:
      image_shape: (H, W, C) of the generated images.
      hidden: width of the two ReLU layers.
    """

    image_shape: tuple[int, int, int] = (28, 28, 1)
    hidden: int = 1200

    @nn.compact
    def __call__(self, z: jax.Array, train: bool = True) -> jax.Array:
        """Generates images.

        Args:
          z: float [B, latent_dim] latent codes.
          train: unused (no batch statistics); kept for a common signature.

        Returns:
          float [B, H, W, C] in [-1, 1].
        """
        del train
        y = nn.relu(nn.Dense(self.hidden, name="hidden0")(z))
        y = nn.relu(nn.Dense(self.hidden, name="hidden1")(y))
        y = nn.Dense(math.prod(self.image_shape), name="output")(y)
        return jnp.tanh(y).reshape(z.shape[0], *self.image_shape)


class MLPDiscriminator(nn.Module):
    """Maxout discriminator of Goodfellow et al. (2014), without dropout.

    Attributes:
      hidden: maxout units per layer.
      pieces: linear pieces per maxout unit.
    """

    hidden: int = 240
    pieces: int = 5

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = True) -> jax.Array:
        """Scores images.

        Args:
          x: float [B, H, W, C] in [-1, 1].
          train: unused (no batch statistics); kept for a common signature.

        Returns:
          float [B] logits of "x is real".
        """
        del train
        y = x.reshape(x.shape[0], -1)
        for i in range(2):
            y = nn.Dense(self.hidden * self.pieces, name=f"maxout{i}")(y)
            y = y.reshape(y.shape[0], self.hidden, self.pieces).max(axis=-1)
        return nn.Dense(1, name="logit")(y)[:, 0]


def make_gan(
    architecture: str, image_shape: tuple[int, int, int], features: int = 64
) -> tuple[nn.Module, nn.Module]:
    """Builds a (generator, discriminator) pair.

    Args:
      architecture: ``"dcgan"`` or ``"mlp"`` (Goodfellow et al., 2014).
      image_shape: (H, W, C) of the data.
      features: DCGAN base width (ignored by ``"mlp"``, which has the paper's sizes).

    Returns:
      (generator, discriminator) Flax modules.
    """
    if architecture == "dcgan":
        return (
            DCGANGenerator(image_shape=image_shape, features=features),
            DCGANDiscriminator(image_shape=image_shape, features=features),
        )
    if architecture == "mlp":
        return MLPGenerator(image_shape=image_shape), MLPDiscriminator()
    raise ConfigError(f"architecture={architecture!r} must be one of {', '.join(ARCHITECTURES)}.")


# The level <-> [-1, 1] maps live in jaxgen.levels; these two names stay importable from
# here only until every caller imports jaxgen.levels.
to_signed = levels.to_signed
to_levels = levels.from_signed
