"""Fuzz the public ``accelsim.quant`` API (strategies and checkers: tests/fuzz/api_cases.py): every call returns
a result its checker confirms or raises QuantError/ConfigError; never another exception, a numeric warning or a
wrong result. Quick profile in CI; ``--fuzz-long`` for >= 10^4 calls in all."""
from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings

from .api_cases import BAD, TARGETS, calibrate_case, check_calibrate, run_call
from .fuzz_tally import record


def _long(profile) -> bool:
    """Long profile: count every case and fail at the end; quick: stop at the first bad case and shrink it."""
    return profile["api"] > 100


def _settings(profile):
    n = profile["api"]
    return settings(max_examples=n, deadline=None, database=None, derandomize=n < 100,
                    suppress_health_check=list(HealthCheck))


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_api_fuzz(name, fuzz_profile):
    strategy, checker = TARGETS[name]

    @_settings(fuzz_profile)
    @given(strategy)
    def one(case):
        fn, args, kwargs = case
        outcome, detail = run_call(fn, args, kwargs, checker(args, kwargs))
        record("api", outcome, (name, args, kwargs, detail), outcome in BAD, name)
        if outcome in BAD:
            bad.append(f"{name}: {outcome}: {detail}")
        assert _long(fuzz_profile) or outcome not in BAD, bad[-1]

    bad: list[str] = []
    one()
    assert not bad, f"{len(bad)} bad calls; first: {bad[0]}"


def test_api_fuzz_calibrate(fuzz_profile):
    @_settings({"api": 2 * fuzz_profile["api"]})
    @given(calibrate_case())
    def one(case):
        fn, (batches_arg, method), kwargs, batches = case
        outcome, detail = run_call(fn, (batches_arg, method), kwargs, check_calibrate(batches, method, kwargs))
        record("api", outcome, ("calibrate", method, kwargs, detail), outcome in BAD, "calibrate")
        if outcome in BAD:
            bad.append(f"calibrate: {outcome}: {detail}")
        assert _long(fuzz_profile) or outcome not in BAD, bad[-1]

    bad: list[str] = []
    one()
    assert not bad, f"{len(bad)} bad calls; first: {bad[0]}"
