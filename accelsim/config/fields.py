"""Schema-first field readers that collect every problem with its field path.

Each reader takes the mapping, the key, the parent path and a ``problems`` list. On a bad value it appends
``"<path>.<key>: expected <what>, got <value>"`` and returns a placeholder, so one pass over a config reports
every problem at once; the caller raises one :class:`~accelsim.errors.ConfigError` at the end.
"""
from __future__ import annotations

from typing import Any, Iterable

MISSING = object()


def _show(value: Any) -> str:
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list" if value else "an empty list"
    if value is MISSING:
        return "nothing"
    return str(value)


def join(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else key


class Reader:
    """Reads typed fields out of one mapping at ``path``; problems go to the shared ``problems`` list."""

    def __init__(self, data: Any, path: str, problems: list[str]):
        self.path = path
        self.problems = problems
        # a section that is not a mapping is reported once; its fields are then not reported as missing
        self.broken = not isinstance(data, dict)
        if self.broken:
            problems.append(f"{path or 'document'}: expected a mapping, got {_show(data)}")
            data = {}
        self.data = data
        self.seen: set[str] = set()

    def bad(self, key: str, expected: str, got: Any) -> None:
        self.problems.append(f"{join(self.path, key)}: expected {expected}, got {_show(got)}")

    def raw(self, key: str, default: Any = MISSING) -> Any:
        self.seen.add(key)
        if key in self.data:
            return self.data[key]
        if default is MISSING and not self.broken:
            self.problems.append(f"{join(self.path, key)}: required field is missing")
        return default

    def _number(self, key, default, kind, minimum, strict, expected):
        value = self.raw(key, default)
        if value is MISSING:
            return 1 if kind is int else 1.0
        if value is None and default is None:
            return None
        ok_type = isinstance(value, int) if kind is int else isinstance(value, (int, float))
        if isinstance(value, bool) or not ok_type or value != value:
            self.bad(key, expected, value)
            return 1 if kind is int else 1.0
        if (strict and value <= minimum) or (not strict and value < minimum):
            self.bad(key, expected, value)
            return 1 if kind is int else 1.0
        return kind(value)

    def pos_int(self, key: str, default: Any = MISSING) -> int:
        return self._number(key, default, int, 0, True, "a positive integer")

    def nonneg_int(self, key: str, default: Any = MISSING) -> int:
        return self._number(key, default, int, 0, False, "a non-negative integer")

    def pos_float(self, key: str, default: Any = MISSING) -> float:
        return self._number(key, default, float, 0.0, True, "a positive number")

    def nonneg_float(self, key: str, default: Any = MISSING) -> float:
        return self._number(key, default, float, 0.0, False, "a non-negative number")

    def boolean(self, key: str, default: Any = MISSING) -> bool:
        value = self.raw(key, default)
        if value is MISSING:
            return False
        if not isinstance(value, bool):
            self.bad(key, "true or false", value)
            return False
        return value

    def string(self, key: str, default: Any = MISSING) -> str:
        value = self.raw(key, default)
        if value is MISSING:
            return ""
        if not isinstance(value, str) or not value:
            self.bad(key, "a non-empty string", value)
            return ""
        return value

    def choice(self, key: str, options: Iterable[str], default: Any = MISSING) -> str:
        options = list(options)
        value = self.raw(key, default)
        if value is MISSING:
            return options[0]
        if not isinstance(value, str) or value.lower() not in options:
            self.bad(key, "one of " + " | ".join(options), value)
            return options[0]
        return value.lower()

    def mapping(self, key: str, default: Any = MISSING) -> "Reader":
        value = self.raw(key, default)
        if value is MISSING:  # already reported as missing (or the parent is broken): read silently
            sub = Reader({}, join(self.path, key), self.problems)
            sub.broken = True
            return sub
        return Reader(value, join(self.path, key), self.problems)

    def reject_unknown(self) -> None:
        """Report every key that no reader asked for (typos must not be silently ignored)."""
        for key in self.data:
            if key not in self.seen:
                known = ", ".join(sorted(self.seen)) or "none"
                self.problems.append(f"{join(self.path, str(key))}: unknown field (known: {known})")
