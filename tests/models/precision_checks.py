"""Checks of the models' bfloat16 mixed precision, shared by the model tests."""

import jax
import jax.extend.core
import jax.numpy as jnp
import numpy as np

from jaxgen import sampling

from . import ar_checks

# bfloat16 keeps 8 significant bits: one rounding of a value near 1 moves it by up
# to 2**-8 = 0.004. The cached pass sums the same products in another order and
# rounds at other places, so logits of size ~1-3 differ by a few roundings per
# layer; 0.1 allows ~25 of them and is far below the effect of a wrong input
# (a changed pixel moves logits by ~0.1-1 in float32).
BF16_LOGIT_ATOL = 0.1
# After 20 Adam steps the NLL of the tiny models is ~5 nats per 8x8 binary image
# (from ~50); bf16 rounding of the activations (relative 2**-8) perturbs every
# gradient a little, and the measured gaps to float32 were 0.02-0.3 nats on AVX-512
# CPUs and 0.61 (ImageGPT) on an AMD EPYC without AVX-512. 1 nat per image (0.023
# bits/dim) is ~2% of the fall.
BF16_NLL_ATOL = 1.0


def conv_dtypes(model, params, x) -> set[str]:
    """The input dtypes of every dot and convolution in ``model.apply``'s program."""
    jaxpr = jax.make_jaxpr(model.apply)(params, x)
    dtypes = set()

    def visit(jaxpr):
        for eqn in jaxpr.eqns:
            if eqn.primitive.name in ("dot_general", "conv_general_dilated"):
                dtypes.update(str(v.aval.dtype) for v in eqn.invars)
            for sub in jax.extend.core.jaxprs_in_params(eqn.params):
                visit(sub)

    visit(jaxpr.jaxpr)
    return dtypes


def check_bfloat16_trains_like_float32(make_model) -> None:
    """20 Adam steps on 8 striped 8x8 images give nearly the same NLL in bf16 as in float32.

    From ~50 nats per image both fall below 7; the final NLLs may differ by at most
    ``BF16_NLL_ATOL`` nats per image (measured gaps: 0.02-0.3).
    """
    x = ar_checks.striped_batch(jax.random.key(0), 8, 8)
    f32 = ar_checks.fit(make_model("float32"), x, steps=20)
    bf16 = ar_checks.fit(make_model("bfloat16"), x, steps=20)
    assert abs(f32[0] - bf16[0]) < 0.1  # the same init, the same first loss
    assert f32[-1] < 7 and bf16[-1] < 7
    assert abs(f32[-1] - bf16[-1]) <= BF16_NLL_ATOL, (f32[-1], bf16[-1])


def identical_sample_fraction(model, params, shape: tuple[int, ...]) -> float:
    """Fraction of sub-pixels where cached and naive sampling with one key agree."""
    key = jax.random.key(2)
    naive, cached = (
        np.asarray(sampling.autoregressive_sample(model, params, key, shape, method=method))
        for method in ("naive", "cached")
    )
    return float((naive == cached).mean())


def check_bfloat16_passes(
    model, shape: tuple[int, int, int, int], recurrence_in_float32: bool = False
) -> None:
    """In bfloat16: convs run in bf16, logits are float32, nothing leaks, cached == full.

    ``recurrence_in_float32``: the model's LSTM state-to-state products stay float32.

    Cached == full is judged on the teacher-forced logits (within ``BF16_LOGIT_ATOL``)
    and on samples drawn with one key by both methods (at least 95% identical
    sub-pixels: a logit that rounds differently can flip a draw, and every later
    draw of that image may then differ).
    """
    x = jax.random.randint(jax.random.key(1), shape, 0, model.num_levels)
    params = jax.jit(lambda key, x: ar_checks.with_noise(model.init(key, x)))(jax.random.key(0), x)
    expected = {"bfloat16", "float32"} if recurrence_in_float32 else {"bfloat16"}
    assert conv_dtypes(model, params, x) == expected
    full = jax.jit(model.apply)(params, x)
    assert full.dtype == jnp.float32
    assert not leaks(model, params, x[:1]).any()
    cached = ar_checks.cached_logits(model, params, x)
    np.testing.assert_allclose(cached, full, atol=BF16_LOGIT_ATOL)
    assert identical_sample_fraction(model, params, shape) >= 0.95


def leaks(model, params, x: jax.Array) -> np.ndarray:
    """bool [N, N]: logit t_out moved when input t_in <= t_out changed (must be all False)."""
    return np.tril(ar_checks.dependency_matrix(model, params, x))
