"""timing.fastest: the one "fastest of N timed calls" of the benchmarks and the compare table."""

import time

import pytest

from jaxgen import timing
from jaxgen.validation import ConfigError


def _sleeper(durations):
    """A function whose k-th call sleeps durations[k] seconds and returns k."""
    calls = []

    def fn():
        calls.append(None)
        time.sleep(durations[len(calls) - 1])
        return len(calls) - 1

    return fn, calls


def test_fastest_is_the_minimum_over_the_timed_calls_after_the_warmup():
    # The warm-up call (0.5 s) is not timed; of the timed ones the 0.02 s call is fastest.
    fn, calls = _sleeper([0.5, 0.3, 0.02, 0.3])
    seconds, result = timing.fastest(fn, repeats=3)
    assert len(calls) == 4 and result == 3, "one warm-up call, then 3 timed; the last result"
    assert 0.02 <= seconds < 0.3


def test_without_warmup_every_call_is_timed():
    fn, calls = _sleeper([0.3, 0.3])
    seconds, result = timing.fastest(fn, repeats=2, warmup=False)
    assert len(calls) == 2 and result == 1
    assert seconds >= 0.3


def test_repeats_must_be_positive():
    with pytest.raises(ConfigError, match="repeats=0"):
        timing.fastest(lambda: None, repeats=0)
