"""MADE, the masked autoencoder for distribution estimation (Germain et al., arXiv 1502.03509).

    x int [B, H, W, C] -> v = x / (L - 1), float [B, D], D = H W C
    h^1 = g(W^1 (.) M^1 v + b^1), ..., h^n = g(W^n (.) M^n h^{n-1} + b^n)      (g: ReLU)
    logit_d = b_d + (V (.) M^V)_d . h^n [+ (A (.) M^A)_d . v]  -> logits [0, logit_d] or [L]

Degrees (PAPERS.md §9, karpathy/pytorch-made ``update_masks``; the official
code is equivalent): the inputs get a permutation m^0 of 0..D-1 (the ordering:
sub-pixel d is generated at step m^0(d)); hidden unit k of layer l gets
m^l(k) ~ randint(min m^{l-1}, D - 1) (exclusive upper bound, so in
[min m^{l-1}, D - 2]). A hidden weight from unit j to unit k is kept where
m^{l-1}(j) <= m^l(k); an output weight from hidden unit k to sub-pixel d where
m^n(k) < m^0(d) (strict), and a direct input-to-output weight where
m^0(j) < m^0(d). So the logits of d depend only on sub-pixels earlier in the
ordering. Mask i is drawn with ``numpy.random.RandomState(mask_seed + i)``:
the permutation first, then each layer's degrees. With one hidden layer and
``mask_seed = 0`` these are pytorch-generative's masks (its ``_sample_masks``).

``num_masks`` > 1 orderings and connectivities (``order="random"``), or
connectivities in raster order (``order="raster"``), are trained order- and
connectivity-agnostically: ``train_log_likelihood`` uses the mask drawn from
its key, one mask per train step (the official ``Full`` shuffling over a fixed
pool of masks). ``log_likelihood`` is the ensemble: the uniform mixture over
the masks, log p(x) = logsumexp_i log p_i(x) - log n (the official
trainMADE.py's test NLL), n forward passes. ``apply(params, x, mask=i)``
returns mask i's logits (default 0).

Only ``num_masks == 1`` with ``order="raster"`` is a raster-order model in the
sense of ``jaxgen.sampling``. Any MADE is sampled by its own ``sample``: the D
sub-pixels in its mask's order, one MLP pass each, in one compiled loop; with
several masks each image's mask is drawn uniformly first (an exact sample of
the mixture). Completion keeps the known pixels and draws the others in that
order, each from the mask's conditional on the sub-pixels before it in the
order: exact for that order, and a known pixel later in the order is kept but
not conditioned on (no ordering-agnostic model can use it without marginalising).

Numbers on binarized MNIST (PAPERS.md §9, all UNCONFIRMED against the paper's
table): 88.04 nats quoted as "paper, 1 hidden layer, 32 masks"; 86.64 (2 hidden
layers, 32 masks) often cited; pytorch-generative 84.87 (1 x 8000 hidden, 1
mask in a fixed random order, Adam 1e-3, 85 epochs, batch 64, dynamically
binarized data: not comparable with the fixed binarization).
"""

import functools
import math
from collections.abc import Mapping, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jaxgen import losses, sampling
from jaxgen.levels import to_unit
from jaxgen.models.fully_visible import (
    check_choice,
    check_dims,
    flat_inputs,
    image_logits,
    level_logits,
    num_outputs,
)
from jaxgen.validation import ConfigError, check_images, check_sizes

ORDERS = ("random", "raster")
ACTIVATIONS = {"relu": nn.relu, "sigmoid": nn.sigmoid, "tanh": jnp.tanh}

Params = Mapping[str, jax.Array]


@functools.lru_cache(maxsize=32)
def degrees(
    num_dims: int, hidden_sizes: tuple[int, ...], num_masks: int, order: str, seed: int
) -> tuple[np.ndarray, ...]:
    """The degrees of every mask: (inputs int [n, D], layer 1 int [n, H_1], ..., layer L).

    ``inputs[i, d]`` is the step of mask i's ordering at which sub-pixel d (raster-then-
    channel index) is generated; ``np.argsort(inputs[i])`` is that ordering.

    Args:
      num_dims: D, sub-pixels per image (at least 2).
      hidden_sizes: the hidden layers' widths.
      num_masks: n.
      order: ``"random"`` (mask i's own permutation) or ``"raster"`` (m^0(d) = d).
      seed: mask i uses ``numpy.random.RandomState(seed + i)``.
    """
    per_mask = []
    for i in range(num_masks):
        rng = np.random.RandomState(seed + i)
        m = rng.permutation(num_dims)  # drawn in raster order too: the same connectivity
        if order == "raster":
            m = np.arange(num_dims)
        layers = [m]
        for size in hidden_sizes:
            layers.append(rng.randint(layers[-1].min(), num_dims - 1, size=size))
        per_mask.append(layers)
    out = tuple(np.stack(layer).astype(np.int32) for layer in zip(*per_mask, strict=True))
    for a in out:
        a.flags.writeable = False
    return out


def _normal(fan_in: int):
    return nn.initializers.normal(stddev=1.0 / math.sqrt(fan_in))


class MADE(nn.Module):
    """MADE: a masked MLP with one or several orderings and connectivities.

    Attributes:
      num_levels: intensity levels L per sub-pixel (2: a Bernoulli per sub-pixel).
      hidden_sizes: widths of the hidden layers (paper: 2 x 8000 for MNIST;
        pytorch-generative: 1 x 8000).
      num_masks: n >= 1 orderings/connectivities drawn from ``mask_seed``
        (paper: 32; pytorch-generative: 1).
      order: ``"random"`` (each mask its own ordering) or ``"raster"`` (every mask
        generates in raster-then-channel order; only the connectivity varies).
      direct: direct input-to-output connections (masked, as in the official code).
      activation: hidden nonlinearity: ``"relu"`` (the paper's MNIST runs),
        ``"sigmoid"`` or ``"tanh"``.
      mask_seed: the masks' seed (mask i: ``RandomState(mask_seed + i)``).

    Params (images of D sub-pixels, K = 1 if L = 2 else L): ``kernel_l`` [in, out]
    and ``bias_l`` of hidden layer l, ``out_kernel`` [H_n, D, K], ``out_bias``
    [D, K], and ``direct_kernel`` [D, D, K] with ``direct``; LeCun-normal kernels,
    zero biases.
    """

    num_levels: int = 2
    hidden_sizes: tuple[int, ...] = (8000,)
    num_masks: int = 1
    order: str = "random"
    direct: bool = False
    activation: str = "relu"
    mask_seed: int = 0

    def __post_init__(self):
        if isinstance(self.hidden_sizes, list):  # from JSON (a checkpoint's record)
            object.__setattr__(self, "hidden_sizes", tuple(self.hidden_sizes))
        check_sizes(self, ("num_levels", "num_masks"))
        sizes = self.hidden_sizes
        if (
            not isinstance(sizes, tuple)
            or not sizes
            or not all(isinstance(s, int | np.integer) and s >= 1 for s in sizes)
        ):
            raise ConfigError(
                f"MADE hidden_sizes={sizes!r} must be a non-empty tuple of positive widths, "
                "e.g. (8000,) or (8000, 8000)."
            )
        check_choice(self, "order", ORDERS)
        check_choice(self, "activation", tuple(ACTIVATIONS))
        if not isinstance(self.mask_seed, int | np.integer) or self.mask_seed < 0:
            raise ConfigError(f"MADE mask_seed={self.mask_seed!r} must be an integer >= 0.")
        super().__post_init__()

    @property
    def density_note(self) -> str:
        """How ``log_likelihood`` computes log p(x) (``jaxgen.load_run``'s ``density_note``)."""
        if self.num_masks == 1:
            order = "raster-then-channel" if self.order == "raster" else "a random"
            return f"the chain rule over sub-pixels in {order} order (MADE's mask)"
        order = "raster-then-channel order" if self.order == "raster" else "random orders"
        return (
            f"the uniform mixture of {self.num_masks} masks ({order}): "
            f"logsumexp_i log p_i(x) - log {self.num_masks}, each by the chain rule"
        )

    def orderings(self, num_dims: int) -> np.ndarray:
        """int [n, D]: row i, the sub-pixels (raster-then-channel indices) in mask i's order."""
        return np.argsort(self._degrees(num_dims)[0], axis=1)

    def _degrees(self, num_dims: int) -> tuple[np.ndarray, ...]:
        if num_dims < 2:
            raise ConfigError(
                f"MADE needs images of at least 2 sub-pixels; got {num_dims} (its hidden "
                "degrees are drawn from [0, D - 2])."
            )
        return degrees(num_dims, self.hidden_sizes, self.num_masks, self.order, self.mask_seed)

    def _check_mask(self, mask: int | jax.Array) -> None:
        if isinstance(mask, int | np.integer) and not 0 <= mask < self.num_masks:
            raise ConfigError(
                f"mask={mask} must lie in [0, {self.num_masks}) (MADE num_masks={self.num_masks})."
            )

    def _masked_kernels(
        self, params: Params, mask: int | jax.Array
    ) -> tuple[list[jax.Array], jax.Array, jax.Array | None]:
        """Mask ``mask``'s kernels (hidden layers, output, direct or None), weights masked."""
        num_dims = params["out_bias"].shape[0]
        degs = [jnp.asarray(a)[mask] for a in self._degrees(num_dims)]
        hidden = [
            params[f"kernel_{n}"] * (degs[n][:, None] <= degs[n + 1][None, :])
            for n in range(len(self.hidden_sizes))
        ]
        out = params["out_kernel"] * (degs[-1][:, None] < degs[0][None, :])[..., None]
        direct = None
        if self.direct:
            direct = params["direct_kernel"] * (degs[0][:, None] < degs[0][None, :])[..., None]
        return hidden, out, direct

    def _hidden(self, params: Params, hidden: Sequence[jax.Array], v: jax.Array) -> jax.Array:
        h = v
        for n, kernel in enumerate(hidden):
            h = ACTIVATIONS[self.activation](h @ kernel + params[f"bias_{n}"])
        return h

    def _outputs(self, params: Params, v: jax.Array, mask: int | jax.Array) -> jax.Array:
        """float [B, D, K] output units of mask ``mask`` for inputs v [B, D]."""
        hidden, out, direct = self._masked_kernels(params, mask)
        units = jnp.einsum("bh,hdk->bdk", self._hidden(params, hidden, v), out)
        if direct is not None:
            units = units + jnp.einsum("bj,jdk->bdk", v, direct)
        return units + params["out_bias"]

    @nn.compact
    def __call__(self, x: jax.Array, mask: int | jax.Array = 0) -> jax.Array:
        """Computes mask ``mask``'s logits of every sub-pixel given the earlier ones in its order.

        Args:
          x: int [B, H, W, C] levels in [0, num_levels).
          mask: int in [0, num_masks) (traced or not), the ordering/connectivity.

        Returns:
          float32 [B, H, W, C, num_levels] logits; those of sub-pixel d depend only on
          the sub-pixels before d in the mask's order (``orderings``).
        """
        check_images(x, self.num_levels)
        self._check_mask(mask)
        if self.has_variable("params", "out_bias"):
            check_dims(self, self.variables["params"]["out_bias"].shape[0], x)
        d, k = math.prod(x.shape[1:]), num_outputs(self.num_levels)
        self._degrees(d)
        sizes = (d, *self.hidden_sizes)
        params = {}
        for n in range(len(self.hidden_sizes)):
            shape = (sizes[n], sizes[n + 1])
            params[f"kernel_{n}"] = self.param(f"kernel_{n}", _normal(sizes[n]), shape)
            params[f"bias_{n}"] = self.param(f"bias_{n}", nn.initializers.zeros, shape[1:])
        params["out_kernel"] = self.param("out_kernel", _normal(sizes[-1]), (sizes[-1], d, k))
        params["out_bias"] = self.param("out_bias", nn.initializers.zeros, (d, k))
        if self.direct:
            params["direct_kernel"] = self.param("direct_kernel", _normal(d), (d, d, k))
        units = self._outputs(params, flat_inputs(x, self.num_levels), mask)
        return image_logits(units, x.shape, self.num_levels)

    def _mask_log_likelihood(self, x: jax.Array, mask: int | jax.Array) -> jax.Array:
        params = self.variables["params"]
        units = self._outputs(params, flat_inputs(x, self.num_levels), mask)
        return -losses.autoregressive_nll(image_logits(units, x.shape, self.num_levels), x)

    def log_likelihood(self, x: jax.Array, mask: int | None = None) -> jax.Array:
        """Exact log p(x) in nats per image: float [B].

        Args:
          x: int [B, H, W, C] levels in [0, num_levels).
          mask: None: the ensemble, the uniform mixture over all masks,
            logsumexp_i log p_i(x) - log n (n passes); an int: mask ``mask``'s own.
        """
        check_images(x, self.num_levels)
        check_dims(self, self.variables["params"]["out_bias"].shape[0], x)
        if mask is not None:
            self._check_mask(mask)
            return self._mask_log_likelihood(x, mask)
        if self.num_masks == 1:
            return self._mask_log_likelihood(x, 0)
        per_mask = jax.lax.map(
            lambda m: self._mask_log_likelihood(x, m), jnp.arange(self.num_masks)
        )
        return jax.nn.logsumexp(per_mask, axis=0) - math.log(self.num_masks)

    def train_log_likelihood(self, x: jax.Array, key: jax.Array) -> jax.Array:
        """log p_i(x) [B] under the mask i drawn uniformly from ``key``: the training objective
        of order- and connectivity-agnostic training (one mask per step)."""
        if self.num_masks == 1:
            return self._mask_log_likelihood(x, 0)
        return self._mask_log_likelihood(x, jax.random.randint(key, (), 0, self.num_masks))

    def sample(
        self,
        x: jax.Array,
        known: jax.Array,
        key: jax.Array,
        temperature: jax.Array,
        first_logits: jax.Array | None,
    ) -> jax.Array:
        """Fills the unknown pixels of ``x`` in the mask's order: the sampler ``jaxgen.sampling``
        calls for MADE (``autoregressive_sample`` and ``complete``).

        With several masks, each image's mask is drawn uniformly with
        ``fold_in(key, D)`` (an exact sample of the ensemble; n times the work of one
        mask); the draw at step t of the order uses ``sampling.draw`` with
        ``fold_in(key, t)``, as the raster samplers do, so ``order="raster"`` with
        one mask draws what ``sampling``'s naive raster loop draws.

        Args:
          x: int [B, H, W, C] initial images (values at unknown pixels are ignored).
          known: bool [B, H, W], pixels to keep.
          key: PRNG key.
          temperature: float [] softmax temperature.
          first_logits: float [L] log-probabilities of the first sub-pixel in the
            mask's order, or None (the model's).

        Returns:
          int32 [B, H, W, C].
        """
        params = self.variables["params"]
        b = x.shape[0]
        d = params["out_bias"].shape[0]
        check_dims(self, d, x)
        orders = jnp.asarray(self.orderings(d))  # [n, D]
        keep = jnp.repeat(known.reshape(b, -1), x.shape[-1], axis=1)  # [B, D]
        start = x.reshape(b, d).astype(jnp.int32)

        def with_mask(mask):
            hidden, out, direct = self._masked_kernels(params, mask)  # masked once per mask

            def body(t, levels):
                dim = orders[mask, t]
                v = to_unit(levels, self.num_levels)
                units = self._hidden(params, hidden, v) @ out[:, dim] + params["out_bias"][dim]
                if direct is not None:
                    units = units + v @ direct[:, dim]
                logits = level_logits(units, self.num_levels)
                level = sampling.draw(key, t, logits, temperature, first_logits)
                return levels.at[:, dim].set(jnp.where(keep[:, dim], levels[:, dim], level))

            return jax.lax.fori_loop(0, d, body, start)

        if self.num_masks == 1:
            return with_mask(0).reshape(x.shape)
        chosen = jax.random.randint(jax.random.fold_in(key, d), (b,), 0, self.num_masks)

        def add_mask(mask, out):
            return jnp.where((chosen == mask)[:, None], with_mask(mask), out)

        return jax.lax.fori_loop(0, self.num_masks, add_mask, start).reshape(x.shape)
