"""The experiments' configs: variants combine in any order, every variant builds its model."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from experiments.configs import pixelcnn, pixelrnn, vae
from jaxgen.models import registry
from jaxgen.train import optim
from jaxgen.validation import ConfigError


def test_default_is_the_papers_mnist_diagonal_bilstm():
    c = pixelrnn.get_config()
    assert c.model.to_dict() == {
        "dtype": "float32",
        "name": "pixelrnn",
        "variant": "diagonal_bilstm",
        "num_layers": 7,
        "features": 16,
        "head_features": 32,
    }
    assert (c.dataset, c.num_levels, c.batch_size) == ("binarized_mnist", 2, 16)


@pytest.mark.parametrize(
    "variants,variant,num_layers",
    [
        ("row_lstm", "row_lstm", 7),
        ("diagonal_bilstm,tiny", "diagonal_bilstm", 1),
        ("tiny,row_lstm", "row_lstm", 1),
        ("row_lstm,cpu", "row_lstm", 3),
    ],
)
def test_variants_combine(variants, variant, num_layers):
    c = pixelrnn.get_config(variants)
    assert (c.model.variant, c.model.num_layers) == (variant, num_layers)
    model = registry.build_model(c.model, c.num_levels)
    if "tiny" in variants:
        assert c.num_steps < 100
        params = model.init(jax.random.key(0), jnp.zeros((1, 28, 28, 1), jnp.int32))
        assert model.apply(params, jnp.zeros((1, 28, 28, 1), jnp.int32)).shape[-1] == 2


def test_unknown_variant_is_named():
    with pytest.raises(ValueError, match="'colum_lstm'.*row_lstm"):
        pixelrnn.get_config("colum_lstm")


@pytest.mark.parametrize(
    "variants,name,learning_rate",
    [
        ("cpu", "pixelcnn", 1e-2),  # the rate swept for each model, in either order
        ("gated,cpu", "gated", 1e-2),
        ("cpu,gated", "gated", 1e-2),
        ("", "pixelcnn", 1e-3),  # the paper-size configs keep the default
        ("gated", "gated", 1e-3),
    ],
)
def test_the_cpu_variant_sets_the_swept_learning_rate(variants, name, learning_rate):
    c = pixelcnn.get_config(variants)
    assert (c.model.name, c.learning_rate, c.num_steps) == (
        name,
        learning_rate,
        2500 if "cpu" in variants else 200_000,
    )


@pytest.mark.parametrize("variants", ["pixelsnail", "tiny,pixelsnail", "pixelsnail,cpu"])
def test_pixelsnail_variants_build_their_model(variants):
    """The default is pytorch-generative's reproduce(); tiny and cpu shrink it."""
    c = pixelcnn.get_config(variants)
    model = registry.build_model(c.model, c.num_levels)
    x = jnp.zeros((1, 28, 28, 1), jnp.int32)
    logits, _ = jax.eval_shape(model.init_with_output, jax.random.key(0), x)
    assert logits.shape == (1, 28, 28, 1, 2)
    sizes = (model.num_blocks, model.features, model.num_residual, model.key_size)
    if variants == "pixelsnail":
        assert sizes + (model.value_size, model.num_heads) == (8, 64, 2, 4, 32, 1)
        assert (c.batch_size, c.learning_rate, c.num_steps) == (128, 1e-3, 178_700)
    else:
        assert model.num_blocks < 8 and model.features < 64 and c.num_steps <= 600


def test_hour_recipes_keep_their_models_and_set_the_budget():
    recipe = pixelrnn.get_config("row_lstm,hour")
    assert (recipe.model.variant, recipe.model.num_layers, recipe.model.features) == (
        "row_lstm",
        7,
        16,
    )  # the paper's Row LSTM
    assert (recipe.batch_size, recipe.num_steps, recipe.ema_decay) == (16, 20_000, 0.999)
    assert recipe.keep_checkpoints * recipe.checkpoint_every >= recipe.num_steps  # whole curve
    two = pixelrnn.get_config("row_lstm,two_hours")
    assert two.model == recipe.model and two.num_steps == 2 * recipe.num_steps
    assert two.keep_checkpoints * two.checkpoint_every >= two.num_steps
    first_hour = np.arange(recipe.num_steps)  # the same rates: an hour run resumes into it
    np.testing.assert_array_equal(
        optim.make_schedule(two)(first_hour), optim.make_schedule(recipe)(first_hour)
    )
    assert optim.make_schedule(two)(recipe.num_steps + recipe.warmup_steps) == pytest.approx(
        recipe.learning_rate / 2
    )
    diagonal = pixelrnn.get_config("diagonal_bilstm,hour")  # one core-hour: fewer steps
    assert diagonal.model.to_dict() == {**recipe.model.to_dict(), "variant": "diagonal_bilstm"}
    assert diagonal.num_steps < recipe.num_steps and diagonal.batch_size == 16
    assert diagonal.keep_checkpoints * diagonal.checkpoint_every >= diagonal.num_steps
    two_diagonal = pixelrnn.get_config("diagonal_bilstm,two_hours")
    assert two_diagonal.lr_cycle_steps * 2 == two_diagonal.num_steps == 2 * diagonal.num_steps
    gated = pixelcnn.get_config("gated,hour")
    cpu = pixelcnn.get_config("gated,cpu")
    assert gated.model == cpu.model and gated.num_steps == 8500
    assert gated.keep_checkpoints * gated.checkpoint_every >= gated.num_steps
    v = vae.get_config("hour")
    assert v.keep_checkpoints * v.checkpoint_every >= v.num_steps and v.iwae_samples == 1000
    dynamic = vae.get_config("hour,dynamic")  # the IWAE paper's binarization, in either order
    assert dynamic == vae.get_config("dynamic,hour")
    assert (dynamic.dataset, dynamic.num_levels, dynamic.binarize) == ("mnist", 2, "dynamic")
    assert dynamic.keep_checkpoints * dynamic.checkpoint_every >= dynamic.num_steps
    both = vae.get_config("dynamic,two_core_hour")  # the hour on both cores: more steps, same run
    assert both == vae.get_config("two_core_hour,dynamic") and both.binarize == "dynamic"
    assert both.num_steps == 430_000 > dynamic.num_steps and both.model == dynamic.model
    assert (both.learning_rate, both.ema_decay, both.iwae_samples) == (1e-3, 0.999, 1000)
    assert both.keep_checkpoints * both.checkpoint_every >= both.num_steps
    snail = pixelcnn.get_config("pixelsnail,hour")
    assert snail.model == pixelcnn.get_config("pixelsnail,cpu").model
    assert snail.keep_checkpoints * snail.checkpoint_every >= snail.num_steps
    gpt = pixelcnn.get_config("imagegpt,hour")
    assert gpt.model == pixelcnn.get_config("imagegpt,cpu").model
    assert gpt.keep_checkpoints * gpt.checkpoint_every >= gpt.num_steps
    with pytest.raises(ConfigError, match="sized for pixelcnn, gated, pixelsnail, imagegpt, not"):
        pixelcnn.get_config("nade,hour")
