"""The ``calibrate`` convenience function and the method-name -> observer factory.

* :func:`make_observer` - the observer of a method name (:data:`METHODS`).
* :func:`calibrate` - one tensor's range from an iterable of batches with a named method.

The observer classes live in :mod:`accelsim.quant.observers`; :class:`PerChannelMinMaxObserver` and
:class:`PerChannelObserver` are re-exported here for existing imports.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from accelsim.errors import QuantError
from accelsim.quant import _validate as v
from accelsim.quant import observers as _o
from accelsim.quant.histogram import LinearHistogram
from accelsim.quant.observers import PerChannelMinMaxObserver, PerChannelObserver

METHODS = ("minmax", "percentile", "kl", "entropy", "mse")


def make_observer(method: str, symmetric=False, percentile=99.999, num_bins=2048, num_quantized_bins=128,
                  grid=None, nan_policy="raise") -> _o.Observer:
    """Observer for a method name (see :data:`METHODS`)."""
    if not isinstance(method, str) or method not in METHODS:
        raise QuantError(f"method: expected one of {METHODS}, got {method!r}")
    if method == "minmax":
        return _o.MinMaxObserver(symmetric, nan_policy=nan_policy)
    if method == "percentile":
        return _o.PercentileObserver(percentile, num_bins, symmetric, grid, nan_policy)
    classes = {"kl": _o.KLObserver, "entropy": _o.EntropyObserver, "mse": _o.MSEObserver}
    return classes[method](num_bins, num_quantized_bins, symmetric, grid, nan_policy)


def _grid_pass(batches, method: str, symmetric: bool, nan_policy: str):
    """First pass over re-iterable batches: the grid one big batch would get (makes incremental == one-shot)."""
    probe = _o.MinMaxObserver(nan_policy=nan_policy)  # one statistics pass per batch (min, max, min|x|)
    for b in batches:
        probe.observe(b)
    if probe.count == 0:
        return None
    amin = probe.amin
    amax = max(abs(float(probe.min)), abs(float(probe.max)))
    mode = ("abs" if symmetric else "signed") if method == "percentile" else "abs0"
    lo = {"abs0": 0.0, "abs": amin, "signed": -amax}[mode]
    return (lo, amax) if np.float32(lo) != np.float32(amax) else None


def calibrate(batches: Iterable, method: str = "minmax", symmetric: bool = False, percentile: float = 99.999,
              num_bins: int = 2048, num_quantized_bins: int = 128, nan_policy: str = "raise") -> tuple[float, float]:
    """Range ``(lo, hi)`` of a tensor from ``batches`` (arrays of any shape) with ``method`` in
    ``"minmax" | "percentile" | "kl" | "entropy" | "mse"`` (semantics: :mod:`accelsim.quant.observers`).

    A list/tuple is read twice (first for the histogram grid), which makes the result identical to calibrating
    the concatenation of all batches; a one-shot iterator is read once (histogram re-gridding, see
    :mod:`accelsim.quant.histogram`). Turn the range into (scale, zero point) with ``qparams_from_range``.
    The range always has ``lo <= 0 <= hi`` and stays inside the data's range widened to 0 (see
    :mod:`accelsim.quant.observers` for what each method may clip).
    """
    if not isinstance(method, str) or method not in METHODS:
        raise QuantError(f"method: expected one of {METHODS}, got {method!r}")
    symmetric = v.flag(symmetric, "symmetric")
    if isinstance(batches, np.ndarray) or not isinstance(batches, Iterable):
        raise QuantError("batches: expected an iterable of arrays (wrap a single array in a list)")
    grid = None
    if method != "minmax" and isinstance(batches, Sequence):
        grid = _grid_pass(batches, method, symmetric, nan_policy)
    obs = make_observer(method, symmetric, percentile, num_bins, num_quantized_bins, grid, nan_policy)
    for b in batches:
        obs.observe(b)
    return obs.range()


__all__ = [
    "METHODS",
    "LinearHistogram",
    "PerChannelMinMaxObserver",
    "PerChannelObserver",
    "calibrate",
    "make_observer",
]
