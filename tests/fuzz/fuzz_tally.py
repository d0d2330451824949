"""Outcome counts of the fuzz suite (printed by tests/fuzz/conftest.py at the end of the session)."""
from __future__ import annotations

from collections import Counter

TALLY: dict[str, Counter] = {"cli": Counter(), "api": Counter()}
BY_TARGET: dict[str, Counter] = {"cli": Counter(), "api": Counter()}   # (subcommand or function, class) -> count
EXAMPLES: dict[str, list] = {"cli": [], "api": []}   # up to 3 samples of each bad class (and of exit0-null)


def record(suite: str, outcome: str, case, bad: bool, target: str = "") -> None:
    TALLY[suite][outcome] += 1
    BY_TARGET[suite][f"{target} {outcome}"] += 1
    if (bad or outcome == "exit0-null") and sum(1 for o, _ in EXAMPLES[suite] if o.startswith(outcome)) < 3:
        EXAMPLES[suite].append((f"{outcome} ({target})", repr(case)[:600]))
