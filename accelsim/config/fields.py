"""Schema-first field readers that collect every problem with its field path.

Each reader takes the mapping, the key, the parent path and a ``problems`` list. On a bad value it appends
``"<path>.<key>: expected <what>, got <value>"`` and returns a placeholder, so one pass over a config reports
every problem at once; the caller raises one :class:`~accelsim.errors.ConfigError` at the end.

**Value rules** every field obeys (a field may narrow its range; hw configs, model descriptions, SCALE-Sim
topologies and ``--set``/``--param`` values all pass through here):

* integers are Python ints (numpy integers accepted, bools and floats refused), compared exactly with their
  bounds before any conversion, in ``[0 or 1, MAX_INT = 2**31]`` unless the field says otherwise;
* numbers are finite (``.inf``/``.nan`` refused); positive ones lie in ``[MIN_POSITIVE, MAX_NUMBER] =
  [1e-15, 1e12]`` and non-negative ones in ``[0, 1e12]`` unless the field says otherwise. A positive quantity
  outside that range in accelsim's units (MHz, GB/s, KiB, pJ, MACs/cycle; normalization eps) is a unit mistake,
  and the bounds keep every closed form over them finite (no ``inf``, no division by a subnormal);
* model sizes (see :mod:`accelsim.graph` and :mod:`accelsim.lowering`): every dimension ≤ ``MAX_DIM = 2**31``,
  every tensor ≤ ``MAX_ELEMENTS = 2**48`` elements and every layer ≤ ``MAX_MACS = 2**48`` MACs (or vector
  elements); with arrays of at most 2**16 × 2**16 PEs and 2**-10 ≤ MACs/PE/cycle ≤ 2**10 (config/hw.py), every
  per-GEMM closed form of the timing model (``hw/dataflow.py``) stays below 2**61, so its int64 arithmetic is
  exact.

Values echoed in messages are cut to a few dozen characters (:func:`accelsim.errors.short`).
"""
from __future__ import annotations

import math
import numbers
from typing import Any, Iterable

import numpy as np

from ..errors import short

MAX_INT = 1 << 31
MIN_POSITIVE = 1e-15
MAX_NUMBER = 1e12
MAX_DIM = 1 << 31
MAX_ELEMENTS = 1 << 48
MAX_MACS = 1 << 48
MISSING = object()


def _show(value: Any) -> str:
    if isinstance(value, str):
        return short(repr(value))
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list" if value else "an empty list"
    if value is MISSING:
        return "nothing"
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 10 ** 20:
        return f"an integer of about {int(abs(value).bit_length() * math.log10(2)) + 1} digits"
    return short(value)


def bound_text(value: int | float) -> str:
    """A bound as written in messages: ``2**31`` for large powers of two, ``1e+12`` style for floats."""
    if isinstance(value, int) and value > 1 << 16 and value & (value - 1) == 0:
        return f"2**{value.bit_length() - 1}"
    if isinstance(value, float) and value > 0 and math.frexp(value)[0] == 0.5 and abs(math.log2(value)) >= 10:
        return f"2**{int(math.log2(value))}"
    return f"{value:g}" if isinstance(value, float) else str(value)


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

    def _number(self, key, default, kind, strict: bool, expected: str, low, high):
        """The value rules of the module docstring; ``low``/``high`` bound the value (inclusive)."""
        placeholder = 1 if kind is int else 1.0
        value = self.raw(key, default)
        if value is MISSING:
            return placeholder
        if value is None and default is None:
            return None
        if isinstance(value, np.ndarray):     # a sweep's values for this field, one per configuration
            return self._numbers(key, value, kind, strict, expected, low, high)
        ok_type = isinstance(value, numbers.Integral if kind is int else (numbers.Integral, numbers.Real))
        if isinstance(value, bool) or not ok_type or value != value or (strict and value <= 0) or value < 0:
            self.bad(key, expected, value)
            return placeholder
        if not low <= value <= high:
            rule = f"≤ {bound_text(high)}" if kind is int or not low else f"in [{bound_text(low)}, {bound_text(high)}]"
            self.bad(key, f"{expected} {rule}", value)
            return placeholder
        return int(value) if kind is int else float(value)

    def _numbers(self, key, values: np.ndarray, kind, strict: bool, expected: str, low, high):
        """An array of values for one field (a design-space sweep): every element obeys the rules of
        :meth:`_number`; the first one that does not is reported."""
        probe = Reader({key: None}, self.path, self.problems)
        for v in np.unique(values).tolist():
            probe.data[key] = v
            before = len(self.problems)
            probe._number(key, MISSING, kind, strict, expected, low, high)
            if len(self.problems) > before:
                return np.full(values.shape, 1 if kind is int else 1.0)
        return values.astype(np.int64 if kind is int else np.float64)

    def pos_int(self, key: str, default: Any = MISSING, maximum: int = MAX_INT) -> int:
        return self._number(key, default, int, True, "a positive integer", 1, maximum)

    def nonneg_int(self, key: str, default: Any = MISSING, maximum: int = MAX_INT) -> int:
        return self._number(key, default, int, False, "a non-negative integer", 0, maximum)

    def pos_float(self, key: str, default: Any = MISSING, minimum: float = MIN_POSITIVE,
                  maximum: float = MAX_NUMBER) -> float:
        return self._number(key, default, float, True, "a positive number", minimum, maximum)

    def nonneg_float(self, key: str, default: Any = MISSING, maximum: float = MAX_NUMBER) -> float:
        return self._number(key, default, float, False, "a non-negative number", 0.0, maximum)

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
                self.problems.append(f"{join(self.path, short(key))}: unknown field (known: {known})")
