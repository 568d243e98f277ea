"""autotune.fastest: the fastest candidate by its fastest run, over interleaved rounds."""
import time

import pytest

from octconv.utils.autotune import fastest


def _sleeper(seconds, calls):
    def run():
        calls.append(seconds)
        time.sleep(seconds)
    return run


def test_the_fastest_candidate_is_found_and_each_time_is_its_fastest_run():
    calls = []
    runners = [_sleeper(0.02, calls), _sleeper(0.002, calls), _sleeper(0.01, calls)]
    index, seconds = fastest(runners, budget_seconds=0.05, min_rounds=3, max_rounds=4,
                             warmup=1)
    assert index == 1
    # a sleep never ends early; how late it ends depends on the machine's load
    assert all(measured >= slept for slept, measured in zip((0.02, 0.002, 0.01), seconds))
    assert seconds[1] < seconds[2] < seconds[0]
    # one warm-up each, then rounds that run every candidate in turn
    assert calls[:3] == [0.02, 0.002, 0.01]
    rounds = calls[3:]
    assert 3 <= len(rounds) // 3 <= 4 and rounds == [0.02, 0.002, 0.01] * (len(rounds) // 3)


def test_rounds_stop_at_the_budget_but_not_before_the_minimum():
    calls = []
    fastest([_sleeper(0.01, calls)], budget_seconds=0.0, min_rounds=4, max_rounds=50, warmup=0)
    assert len(calls) == 4
    calls.clear()
    fastest([_sleeper(0.001, calls)], budget_seconds=10.0, min_rounds=1, max_rounds=7, warmup=0)
    assert len(calls) == 7


@pytest.mark.parametrize('runners,rounds,message', [
    ([], (5, 50), 'no candidates'),
    ([lambda: None], (0, 50), 'min_rounds'),
    ([lambda: None], (10, 5), 'max_rounds'),
])
def test_bad_arguments_are_named(runners, rounds, message):
    with pytest.raises(ValueError, match=message):
        fastest(runners, min_rounds=rounds[0], max_rounds=rounds[1])
