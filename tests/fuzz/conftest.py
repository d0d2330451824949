"""The fuzz suite's profiles and its outcome tally (issue 10).

Profiles: the quick one runs in CI (a few dozen cases per target, seconds); ``--fuzz-long`` (registered in
tests/conftest.py) runs at least 10^4 CLI cases and 10^4 API cases. Every case is classified (see
``cli_cases.classify`` and ``api_cases.classify``) and counted; the counts per outcome class are printed at the end
of the session and, with ``FUZZ_COUNTS=path``, written there as JSON. A case in a bad class fails its test.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from .fuzz_tally import BY_TARGET, EXAMPLES, TALLY

QUICK = {"cli": 40, "api": 20}
LONG = {"cli": 10_000, "api": 1_000}    # api: per target (test_fuzz_api has >= 10 targets)


@pytest.fixture(scope="session")
def fuzz_profile(request) -> dict:
    return LONG if request.config.getoption("--fuzz-long", default=False) else QUICK


def pytest_terminal_summary(terminalreporter):
    if not any(TALLY.values()):
        return
    terminalreporter.write_sep("-", "fuzz outcomes")
    for suite, counts in TALLY.items():
        if counts:
            total = sum(counts.values())
            terminalreporter.write_line(f"{suite}: {total} cases: " + ", ".join(f"{k} {v}" for k, v in
                                                                              sorted(counts.items())))
    for suite, samples in EXAMPLES.items():
        for outcome, case in samples:
            terminalreporter.write_line(f"  {suite} {outcome}: {case}")
    path = os.environ.get("FUZZ_COUNTS")
    if path:
        Path(path).write_text(json.dumps({"counts": {k: dict(v) for k, v in TALLY.items()},
                                          "by_target": {k: dict(sorted(v.items())) for k, v in BY_TARGET.items()},
                                          "examples": EXAMPLES}, indent=1))
