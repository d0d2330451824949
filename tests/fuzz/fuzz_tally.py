"""Outcome counts of the fuzz suite (printed by tests/fuzz/conftest.py at the end of the session)."""
from __future__ import annotations

from collections import Counter

TALLY: dict[str, Counter] = {"cli": Counter(), "api": Counter()}
EXAMPLES: dict[str, list] = {"cli": [], "api": []}   # up to 3 (class, case) samples of each bad class


def record(suite: str, outcome: str, case, bad: bool) -> None:
    TALLY[suite][outcome] += 1
    if bad and sum(1 for o, _ in EXAMPLES[suite] if o == outcome) < 3:
        EXAMPLES[suite].append((outcome, repr(case)[:600]))
