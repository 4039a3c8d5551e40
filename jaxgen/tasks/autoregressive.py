"""The autoregressive family's task: exact NLL, samples and half-image completions.

One task serves PixelCNN, Gated PixelCNN (class-conditional or not), PixelRNN,
FVSBN, NADE and MADE: any module whose ``apply(params, images[, labels])``
returns logits float [B, H, W, C, L] with the autoregressive ordering of
``jaxgen.sampling``. A model may override parts of that through methods
(called with ``model.apply(..., method=name)``):

* ``log_likelihood(images[, labels]) -> float [B]``: the exact log p(x) of the
  evaluation and of ``Run.log_likelihood``, instead of the logits' chain rule
  (MADE: the mixture over its masks);
* ``train_log_likelihood(images[, labels], key) -> float [B]``: the objective the
  training loss maximises, given the step's key (MADE: one mask drawn per step);
* ``sample``: its own sampler (see ``jaxgen.sampling``), for samples and completions;
* a ``density_note`` attribute: how its log-likelihood is computed.

PixelCNN and the other convolutional models have none of these.
"""

import math
import pathlib
from collections.abc import Mapping

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jaxgen import losses, sampling, viz
from jaxgen.train.loop import Inference, Task
from jaxgen.validation import ConfigError


def autoregressive(model: nn.Module, *, sample_method: str | None = None) -> Task:
    """The task of an autoregressive model trained by maximum likelihood.

    Loss: the NLL in nats per image (``losses.autoregressive_nll``, or the model's
    ``train_log_likelihood``) averaged over the batch. Evaluation: per-image
    ``nll_nats`` (the model's ``log_likelihood`` where it has one) and
    ``bits_per_dim``. Pictures
    (``write_samples``, after training): ``stepNNNNNNN_samples.png``, as many
    samples as there are example images (cycling through the classes for a
    class-conditional model), and ``stepNNNNNNN_completions.png``, completions of
    the example images' bottom halves (top row) above the originals.

    Args:
      model: the module, with an int ``num_levels``; a model with a
        ``num_classes`` that is not None is class-conditional and is given
        ``batch["label"]`` (int [B]) as its second argument.
      sample_method: ``"naive"`` or ``"cached"`` (see ``jaxgen.sampling``); None:
        the sampler's default.

    Returns:
      The Task.

    Raises:
      ConfigError: an unknown ``sample_method``, or ``"cached"`` for a model without a cache.
    """
    if sample_method is not None and sample_method not in sampling.METHODS:
        raise ConfigError(
            f"sample_method={sample_method!r} must be one of {', '.join(sampling.METHODS)}."
        )
    if sample_method == "cached" and not all(hasattr(model, m) for m in sampling.CACHE_METHODS):
        raise ConfigError(
            f"sample_method='cached' is not available for {type(model).__name__}: it has no "
            "init_cache/start_row/step methods; use 'naive'."
        )
    num_classes = getattr(model, "num_classes", None)
    method = {} if sample_method is None else {"method": sample_method}
    own_log_likelihood = callable(getattr(model, "log_likelihood", None))
    own_train_objective = callable(getattr(model, "train_log_likelihood", None))

    def labels_of(batch: Mapping[str, jax.Array]) -> jax.Array | None:
        """int [B] labels for a class-conditional model (padding's -1 as 0), else None."""
        return None if num_classes is None else jnp.maximum(batch["label"], 0)

    def inputs(batch: Mapping[str, jax.Array]) -> tuple[jax.Array, ...]:
        """The model's arguments: the images, and the labels if it is class-conditional."""
        return (batch["image"],) if num_classes is None else (batch["image"], labels_of(batch))

    def nll(params, batch) -> jax.Array:
        """float [B] nats per image."""
        if own_log_likelihood:
            return -jnp.asarray(model.apply(params, *inputs(batch), method="log_likelihood"))
        return losses.autoregressive_nll(model.apply(params, *inputs(batch)), batch["image"])

    def train_nll(params, batch, key) -> jax.Array:
        """float [B] nats per image of the training objective."""
        if own_train_objective:
            log_px = model.apply(params, *inputs(batch), key, method="train_log_likelihood")
            return -jnp.asarray(log_px)
        return nll(params, batch)

    def bits_per_dim(nll: jax.Array, batch) -> jax.Array:
        return losses.bits_per_dim(nll, math.prod(batch["image"].shape[1:]))

    def init(key, batch):
        return model.init(key, *inputs(batch))

    def loss_fn(params, batch, key):
        loss = train_nll(params, batch, key).mean()  # the key: only a model's own objective
        return loss, {"nll_nats": loss, "bits_per_dim": bits_per_dim(loss, batch)}

    def eval_fn(params, batch, key):
        del key
        per_image = nll(params, batch)
        return {"nll_nats": per_image, "bits_per_dim": bits_per_dim(per_image, batch)}

    def write_samples(params, key, workdir, step, examples) -> list[pathlib.Path]:
        params = jax.device_get(params)  # sample on one device
        sample_key, complete_key = jax.random.split(key)
        images = examples["image"]
        grid_labels = None if num_classes is None else np.arange(len(images)) % num_classes
        samples = sampling.autoregressive_sample(
            model, params, sample_key, images.shape, labels=grid_labels, **method
        )
        known = np.zeros(images.shape[:3], bool)
        known[:, : images.shape[1] // 2] = True  # the top half is given
        completions = sampling.complete(
            model, params, complete_key, images, known, labels=labels_of(examples), **method
        )
        if jax.process_index() != 0:
            return []
        out = pathlib.Path(workdir) / "samples"
        return [
            viz.save_image_grid(out / f"step{step:07d}_samples.png", samples, model.num_levels),
            viz.save_image_grid(
                out / f"step{step:07d}_completions.png",  # top row: completions, bottom: originals
                np.concatenate([np.asarray(completions), images]),
                model.num_levels,
                num_cols=len(images),
            ),
        ]

    @jax.jit
    def log_likelihood(params, images, key, labels):
        del key  # exact
        batch = {"image": images, "label": labels}
        return -nll(params, batch)

    def sample(params, key, shape, *, labels=None, **options):
        return sampling.autoregressive_sample(
            model, params, key, shape, labels=labels, **{**method, **options}
        )

    def complete(params, key, images, known, *, labels=None, **options):
        return sampling.complete(
            model, params, key, images, known, labels=labels, **{**method, **options}
        )

    inference = Inference(
        sample=sample,
        density="exact",
        density_note=getattr(
            model, "density_note", "the chain rule over sub-pixels in raster-then-channel order"
        ),
        log_likelihood=log_likelihood,
        complete=complete,
    )
    return Task(
        init=init,
        loss_fn=loss_fn,
        eval_fn=eval_fn,
        write_samples=write_samples,
        family="autoregressive",
        modules={"model": model},
        inference=inference,
    )
