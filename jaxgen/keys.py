"""Named PRNG streams: one root key from the seed, split once.

Every consumer draws from its own stream, so adding randomness in one place
(say, a dropout layer) never changes the numbers another place sees.
"""

from typing import NamedTuple

import jax


class Keys(NamedTuple):
    """The named streams of one run."""

    init: jax.Array
    data: jax.Array
    train: jax.Array
    sample: jax.Array
    eval: jax.Array


def make_keys(seed: int) -> Keys:
    """Splits ``jax.random.key(seed)`` once into the named streams.

    Args:
      seed: the run's integer seed.

    Returns:
      Keys with one typed PRNG key per stream.
    """
    return Keys(*jax.random.split(jax.random.key(seed), len(Keys._fields)))


def to_seed(key: jax.Array) -> int:
    """Derives a non-negative int32 seed from a key, for libraries that take integers."""
    return int(jax.random.randint(key, (), 0, 2**31 - 1))
