"""The Markov-chain family's task: an RBM trained by contrastive divergence, evaluated by AIS.

Training (one jitted step, ``jaxgen.train.jit_train_step``): the gradient of
the mean free-energy gap F(v_data) - F(v_model) with the negative samples
v_model under ``stop_gradient``. CD-k starts the k block Gibbs sweeps of the
negative phase at the batch; persistent CD (PCD, Tieleman 2008) continues
``num_chains`` chains that the train state carries from step to step (so a
resumed run is exact). The state is jaxgen's ``TrainState`` with

    params    = the RBM's variables {"params": {"W", "b", "c"}, "data_stats": {...}}
    opt_state = {"optimizer": the Optax state of params["params"], "chains": float [N, D] (PCD)}

``data_stats`` counts the training images the steps see; they set the visible
biases of the AIS base model (``jaxgen.ais.base_visible_bias``): after whole
epochs these are exactly the training split's pixel frequencies, with the
reference code's 5 pseudo-counts per batch.

Evaluation: ``Task.prepare_eval`` estimates log Z once per evaluation by AIS
(``jaxgen.ais``; the periodic evaluations with a cheaper schedule), and every
image's log p(v) = -F(v) - log Z.
"""

import pathlib
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from ml_collections import ConfigDict

from jaxgen import ais, losses, viz
from jaxgen.models import rbm as rbm_lib
from jaxgen.models.rbm import RBM
from jaxgen.train.loop import Inference, Task
from jaxgen.train.optim import make_schedule
from jaxgen.train.state import TrainState
from jaxgen.train.step import jit_train_step
from jaxgen.validation import ConfigError

OPTIMIZERS = ("sgd", "adam")
COMPLETIONS = 10  # example images in the completions picture


def _check_args(model: RBM, **args: Any) -> None:
    """Raises a ConfigError naming the first bad argument of ``rbm``."""
    if not isinstance(model, RBM):
        raise ConfigError(f"tasks.rbm needs a jaxgen.models.RBM; got {type(model).__name__}.")
    rbm_lib.check_rbm_args(model.image_shape, model.num_hidden, model.num_levels, model.init_scale)
    for name in ("cd_steps", "num_chains", "num_gibbs_steps", "num_filters"):
        value = args[name]
        if not isinstance(value, int | np.integer) or value < 1:
            raise ConfigError(f"{name}={value!r} must be a positive integer.")
    for name in ("ais_runs", "eval_ais_runs"):
        if not isinstance(args[name], int | np.integer) or args[name] < 2:
            raise ConfigError(f"{name}={args[name]!r} must be an integer >= 2 (for the ±3σ band).")
    for name in ("ais_steps", "eval_ais_steps"):
        if not isinstance(args[name], int | np.integer) or args[name] < 3:
            raise ConfigError(f"{name}={args[name]!r} must be an integer >= 3.")
    if args["optimizer"] not in OPTIMIZERS:
        raise ConfigError(
            f"optimizer={args['optimizer']!r} must be one of {', '.join(OPTIMIZERS)}."
        )
    for name in ("momentum", "initial_momentum"):
        if not 0.0 <= args[name] < 1.0:
            raise ConfigError(f"{name}={args[name]} must be in [0, 1).")
    for name in ("momentum_warmup_steps", "weight_decay", "pseudo_count"):
        if not args[name] >= 0:
            raise ConfigError(f"{name}={args[name]} must be non-negative.")
    if args["sample_init"] not in rbm_lib.SAMPLE_INITS:
        raise ConfigError(
            f"sample_init={args['sample_init']!r} must be one of {', '.join(rbm_lib.SAMPLE_INITS)}."
        )


def rbm(
    model: RBM,
    *,
    cd_steps: int = 1,
    persistent: bool = False,
    num_chains: int = 100,
    optimizer: str = "sgd",
    momentum: float = 0.9,
    initial_momentum: float = 0.5,
    momentum_warmup_steps: int = 0,
    weight_decay: float = 0.0,
    pseudo_count: float = ais.PSEUDO_COUNT,
    ais_runs: int = ais.DEFAULT_RUNS,
    ais_steps: int = ais.DEFAULT_STEPS,
    eval_ais_runs: int = ais.DEFAULT_RUNS,
    eval_ais_steps: int = 1000,
    num_gibbs_steps: int = 1000,
    sample_init: str = "base",
    num_filters: int = 100,
) -> Task:
    """The RBM's task: CD-k or PCD training, AIS log-likelihood, Gibbs samples and filters.

    Train metrics: ``loss`` = ``free_energy_gap`` = mean F(v_data) - mean
    F(v_model) (the CD objective, whose gradient is the update; not a
    likelihood), ``free_energy_data``, ``free_energy_model``, ``recon_error``
    (squared error of the mean-field reconstruction per image), ``grad_norm``,
    ``learning_rate`` (and ``momentum`` with SGD). Eval rows, per image in nats:
    ``nll_nats`` = F(v) + log Z (the AIS estimate), ``bits_per_dim``,
    ``nll_nats_low`` / ``nll_nats_high`` (with the ends of log Z's ±3σ band),
    ``free_energy``, ``recon_error``; and for the whole row ``log_z``,
    ``log_z_low``, ``log_z_high``, ``ais_runs``, ``ais_steps``. Pictures (after
    training): ``stepNNNNNNN_samples.png`` (mean-field visibles after
    ``num_gibbs_steps`` sweeps from the base model), ``stepNNNNNNN_filters.png``
    (the first ``num_filters`` columns of W, each scaled to black-white) and
    ``stepNNNNNNN_completions.png`` (clamped Gibbs completions of the bottom
    halves of the first 10 example images, above the originals).

    Args:
      model: the RBM.
      cd_steps: k, block Gibbs sweeps of the negative phase per step.
      persistent: PCD: the negative chains continue from the previous step's
        (``num_chains`` of them, starting all-zero) instead of starting at the batch.
      num_chains: PCD's persistent chains.
      optimizer: ``"sgd"`` (with momentum, as in Hinton's ``rbm.m``) or ``"adam"``;
        the learning rate is the config's schedule.
      momentum: SGD's momentum after ``momentum_warmup_steps``.
      initial_momentum: SGD's momentum for the first ``momentum_warmup_steps`` steps.
      momentum_warmup_steps: steps at ``initial_momentum``.
      weight_decay: L2 weight cost on W (not the biases), added to the gradient.
      pseudo_count: the base model's pseudo-counts per training batch.
      ais_runs, ais_steps: AIS of the test evaluation, ``jaxgen.load_run``'s
        evaluations and log-likelihoods.
      eval_ais_runs, eval_ais_steps: AIS of the periodic evaluations.
      num_gibbs_steps: Gibbs sweeps of samples and completions.
      sample_init: chain starts of samples: ``"base"`` (the base model) or ``"random"``.
      num_filters: columns of W in the filters picture.

    Returns:
      The Task.

    Raises:
      ConfigError: a bad argument, named.
    """
    args = dict(locals())
    del args["model"], args["persistent"]
    _check_args(model, **args)
    num_visible = model.num_visible

    def base_bias(variables) -> jax.Array:
        return ais.base_visible_bias(variables["data_stats"], pseudo_count)

    def momentum_at(count):
        return jnp.where(count < momentum_warmup_steps, initial_momentum, momentum)

    def init(key, batch):
        return model.init(key, batch["image"])

    def make_optimizer(config: ConfigDict) -> tuple[optax.GradientTransformation, optax.Schedule]:
        if not config.learning_rate > 0:
            raise ConfigError(f"learning_rate={config.learning_rate} must be positive.")
        schedule = make_schedule(config)
        if optimizer == "sgd":
            tx = optax.inject_hyperparams(optax.sgd)(learning_rate=schedule, momentum=momentum_at)
        else:
            tx = optax.adam(schedule)
        if weight_decay:
            mask = {"W": True, "b": False, "c": False}
            tx = optax.chain(optax.add_decayed_weights(weight_decay, mask), tx)
        return tx, schedule

    def init_state(variables, tx, ema_decay) -> TrainState:
        if ema_decay is not None:
            raise ConfigError(_NO_EMA)
        opt_state = {"optimizer": tx.init(variables["params"])}
        if persistent:
            opt_state["chains"] = jnp.zeros((num_chains, num_visible), jnp.float32)
        return TrainState(step=jnp.zeros((), jnp.int32), params=variables, opt_state=opt_state)

    def make_train_step(tx, schedule, mesh):
        def train_step(state: TrainState, batch, key):
            key = jax.random.fold_in(key, state.step)
            weights = state.params["params"]
            v = rbm_lib.flatten(batch["image"])
            start = state.opt_state["chains"] if persistent else v
            negative, _ = rbm_lib.gibbs_chain(weights, key, start, cd_steps)
            negative = jax.lax.stop_gradient(negative)

            def gap(w):
                f_data = rbm_lib.free_energy(w, v).mean()
                f_model = rbm_lib.free_energy(w, negative).mean()
                return f_data - f_model, (f_data, f_model)

            (loss, (f_data, f_model)), grads = jax.value_and_grad(gap, has_aux=True)(weights)
            updates, opt = tx.update(grads, state.opt_state["optimizer"], weights)
            opt_state = {"optimizer": opt}
            if persistent:
                opt_state["chains"] = negative
            variables = {
                "params": optax.apply_updates(weights, updates),
                "data_stats": rbm_lib.count_images(state.params["data_stats"], v),
            }
            metrics = {
                "loss": loss,
                "free_energy_gap": loss,
                "free_energy_data": f_data,
                "free_energy_model": f_model,
                "recon_error": rbm_lib.reconstruction_error(weights, v).mean(),
                "grad_norm": optax.tree.norm(grads),
                "learning_rate": schedule(state.step),
            }
            if optimizer == "sgd":
                metrics["momentum"] = momentum_at(state.step)
            return TrainState(step=state.step + 1, params=variables, opt_state=opt_state), metrics

        return jit_train_step(train_step, mesh)

    def log_partition(variables, key, final: bool) -> ais.LogPartition:
        runs, steps = (ais_runs, ais_steps) if final else (eval_ais_runs, eval_ais_steps)
        return ais.log_partition(variables["params"], base_bias(variables), key, runs, steps)

    def prepare_eval(params, key, final):
        estimate = log_partition(jax.device_get(params), key, final)  # AIS on one device
        row = {
            "log_z": estimate.log_z,
            "log_z_low": estimate.log_z_low,
            "log_z_high": estimate.log_z_high,
            "ais_runs": estimate.num_runs,
            "ais_steps": estimate.num_steps,
        }
        names = ("log_z", "log_z_low", "log_z_high")
        # The variables as they came (on the evaluation's devices), log Z beside them.
        prepared = {"variables": params, **{n: jnp.float32(row[n]) for n in names}}
        return prepared, row

    def eval_fn(params, batch, key):
        del key  # deterministic given log Z
        weights = params["variables"]["params"]
        v = rbm_lib.flatten(batch["image"])
        f = rbm_lib.free_energy(weights, v)
        nll = f + params["log_z"]
        return {
            "nll_nats": nll,
            "bits_per_dim": losses.bits_per_dim(nll, num_visible),
            "nll_nats_low": f + params["log_z_low"],
            "nll_nats_high": f + params["log_z_high"],
            "free_energy": f,
            "recon_error": rbm_lib.reconstruction_error(weights, v),
        }

    def sample(
        params, key, shape, *, num_steps=num_gibbs_steps, init=sample_init, mean_field=False
    ):
        variables = jax.device_get(params)
        weights = variables["params"]
        bias = base_bias(variables)
        return rbm_lib.sample(weights, bias, key, shape, num_steps, init, mean_field)

    def complete(params, key, images, known, *, num_steps=num_gibbs_steps):
        variables = jax.device_get(params)
        return rbm_lib.complete(
            variables["params"], base_bias(variables), key, images, known, num_steps
        )

    def log_likelihood(params, images, key, labels):
        del labels  # unconditional
        if "log_z" not in params:  # the variables themselves: estimate log Z from ``key``
            params, _ = prepare_eval(params, key, True)
        v = rbm_lib.flatten(jnp.asarray(images))
        return _log_px(params["variables"]["params"], v, params["log_z"])

    def write_samples(params, key, workdir, step, examples) -> list[pathlib.Path]:
        variables = jax.device_get(params)
        images = np.asarray(examples["image"])
        sample_key, complete_key = jax.random.split(key)
        means = sample(variables, sample_key, images.shape, mean_field=True)
        images = images[:COMPLETIONS]
        known = np.zeros(images.shape[:3], bool)
        known[:, : images.shape[1] // 2] = True  # the top half is given
        completions = complete(variables, complete_key, images, known)
        if jax.process_index() != 0:
            return []
        out = pathlib.Path(workdir) / "samples"
        prefix = f"step{step:07d}"
        shape = tuple(model.image_shape)
        return [
            viz.save_grid(
                out / f"{prefix}_samples.png",
                viz.to_pixels(np.asarray(means)),
                256,
                title=f"p(v|h) after {num_gibbs_steps} Gibbs sweeps",
            ),
            viz.save_grid(
                out / f"{prefix}_filters.png",
                rbm_lib.filters(variables["params"], shape, num_filters),
                256,
            ),
            viz.save_rows(  # top: completions of the bottom halves; bottom: originals
                out / f"{prefix}_completions.png",
                np.stack([viz.to_pixels(np.asarray(completions), 2), viz.to_pixels(images, 2)]),
            ),
        ]

    def check_config(config: ConfigDict) -> None:
        if config.get("ema_decay") is not None:
            raise ConfigError(_NO_EMA)

    inference = Inference(
        sample=sample,
        density="estimate",
        density_note=(
            f"log p(v) = -F(v) - log Z with log Z estimated by annealed importance sampling "
            f"(Salakhutdinov & Murray, 2008), {ais_runs} runs of {ais_steps} steps from a "
            "base model of the training pixel frequencies, one estimate for all images"
        ),
        log_likelihood=log_likelihood,
        complete=complete,
    )
    return Task(
        init=init,
        loss_fn=None,  # the CD step is the task's own
        eval_fn=eval_fn,
        write_samples=write_samples,
        make_optimizer=make_optimizer,
        init_state=init_state,
        make_train_step=make_train_step,
        check_config=check_config,
        family="rbm",
        modules={"model": model},
        inference=inference,
        prepare_eval=prepare_eval,
    )


_NO_EMA = (
    "ema_decay must be None for an RBM: its evaluations estimate log Z of the weights "
    "it trains (set --config.ema_decay=None)."
)


@jax.jit
def _log_px(weights, v, log_z):
    return rbm_lib.log_prob(weights, v, log_z)
