"""Arithmetic on plain numbers or on numpy arrays of hardware configurations, with one meaning.

The cost model is written once. ``simulate`` runs it on Python numbers (one configuration, microseconds per
layer); a sweep runs the same code with every numeric hw field a numpy array over configurations
(:mod:`accelsim.sweep`). Each helper dispatches on its arguments: Python numbers stay Python numbers (exact
integers), arrays broadcast. Integer-valued results are exact in float64 below 2**53, which the config and
model bounds guarantee.
"""
from __future__ import annotations

import math

import numpy as np

_NUMBER = (int, float, bool)
_PLAIN = frozenset(_NUMBER)     # exact types: the checks below run millions of times per sweep


def is_number(x) -> bool:
    """A plain number (one configuration), not an array over configurations or layers."""
    return type(x) in _PLAIN


def is_zero(x) -> bool:
    """A number equal to 0 (an array never is: its configurations may differ)."""
    return type(x) in _PLAIN and not x


def ceil(x):
    """Smallest integer ≥ x (an int for a number, a float64 array for an array)."""
    return math.ceil(x) if type(x) in _PLAIN else np.ceil(x)


def floor(x):
    return math.floor(x) if type(x) in _PLAIN else np.floor(x)


def trunc(x):
    return int(x) if type(x) in _PLAIN else np.trunc(x)


def maximum(a, b):
    return (a if a >= b else b) if type(a) in _PLAIN and type(b) in _PLAIN else np.maximum(a, b)


def minimum(a, b):
    return (a if a <= b else b) if type(a) in _PLAIN and type(b) in _PLAIN else np.minimum(a, b)


def where(cond, a, b):
    """``a`` where ``cond`` holds, else ``b`` (both are evaluated)."""
    if type(cond) in _PLAIN:
        return a if cond else b
    return np.where(cond, a, b)


def both(a, b):
    """Elementwise ``a and b`` for booleans or boolean arrays."""
    return (a and b) if type(a) in _PLAIN and type(b) in _PLAIN else np.logical_and(a, b)


def negate(a):
    return (not a) if type(a) in _PLAIN else np.logical_not(a)


def ratio(a, b, default=0.0):
    """``a / b`` where ``b`` ≠ 0, else ``default`` (no division warnings on arrays)."""
    if type(b) in _PLAIN:
        if type(a) in _PLAIN:
            return a / b if b else default
        if b and type(a) is np.ndarray and a.ndim:      # (what the general form below gives, in one division)
            return np.asarray(a, dtype=float) / float(b)
    b = np.asarray(b, dtype=float)
    safe = np.where(b != 0, b, 1.0)
    return np.where(b != 0, np.asarray(a, dtype=float) / safe, default)


def isinf(x):
    return math.isinf(x) if type(x) in _PLAIN else np.isinf(x)


def total(values, start=0):
    """Sum of numbers or arrays (Python's ``sum`` broadcasts arrays already; named for readability)."""
    return sum(values, start)
