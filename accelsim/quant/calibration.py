"""Per-channel observers and the ``calibrate`` convenience function.

* :class:`PerChannelMinMaxObserver` - vectorized min/max (or moving average) per slice along ``axis``
  (weights: axis 0 of ``[Cout, Cin/g, R, S]``).
* :class:`PerChannelObserver` - any observer, one instance per channel (e.g. per-channel MSE for weights).
* :func:`calibrate` - one tensor's range from an iterable of batches with a named method.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

import numpy as np

from accelsim.errors import QuantError
from accelsim.quant import observers as _o
from accelsim.quant.histogram import LinearHistogram
from accelsim.quant.spec import QParams, QuantSpec, qparams_from_range

METHODS = ("minmax", "percentile", "kl", "entropy", "mse")


def _channels_first(x, axis: int, nan_policy: str, who: str) -> np.ndarray:
    arr = np.asarray(x)
    if arr.dtype.kind not in "fiu":
        raise QuantError(f"{who}.observe: expected a real array, got dtype {arr.dtype}")
    if not -arr.ndim <= axis < arr.ndim:
        raise QuantError(f"{who}.observe: axis {axis} out of range for a {arr.ndim}-d batch")
    return np.moveaxis(arr.astype(np.float32, copy=False), axis, 0).reshape(arr.shape[axis], -1)


class _PerChannel:
    """Shared ``qparams`` of the per-channel observers (``range()`` returns two 1-d float32 arrays)."""

    axis: int

    def range(self) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError

    def qparams(self, spec: QuantSpec) -> QParams:
        """Per-channel (scale, zero point); ``spec`` must be per-channel with this observer's axis."""
        if spec.granularity != "channel" or spec.axis != self.axis:
            raise QuantError(f"qparams: need a per-channel spec with axis={self.axis}, got {spec}")
        lo, hi = self.range()
        return qparams_from_range(lo, hi, spec)


class PerChannelMinMaxObserver(_PerChannel):
    """min/max per channel along ``axis``; ``range()`` returns two 1-d float32 arrays."""

    def __init__(self, axis: int = 0, symmetric: bool = False, averaging_constant: float | None = None,
                 nan_policy: str = "raise"):
        self._proto = _o.MinMaxObserver(symmetric, averaging_constant, nan_policy)  # validates the arguments
        self.axis = int(axis)
        self.symmetric = bool(symmetric)
        self.averaging_constant = averaging_constant
        self.nan_policy = nan_policy
        self.ignored = 0
        self._lo = self._hi = None

    def observe(self, x) -> None:
        x2 = _channels_first(x, self.axis, self.nan_policy, type(self).__name__)
        bad = ~np.isfinite(x2)
        if bad.any():
            if self.nan_policy == "raise":
                raise QuantError(f"observe: batch contains {int(bad.sum())} NaN/Inf value(s) "
                                 "(pass nan_policy='ignore' to drop and count them)")
            self.ignored += int(bad.sum())
        if x2.shape[1] == 0 or bad.all(axis=1).any():
            raise QuantError("observe: every channel needs at least one finite value per batch")
        lo = np.where(bad, np.inf, x2).min(axis=1).astype(np.float32)
        hi = np.where(bad, -np.inf, x2).max(axis=1).astype(np.float32)
        if self._lo is not None and self._lo.shape != lo.shape:
            raise QuantError(f"observe: channel count changed from {self._lo.shape[0]} to {lo.shape[0]}")
        if self._lo is None:
            self._lo, self._hi = lo, hi
        elif self.averaging_constant is None:
            self._lo, self._hi = np.minimum(self._lo, lo), np.maximum(self._hi, hi)
        else:
            c = np.float32(self.averaging_constant)
            self._lo, self._hi = self._lo + c * (lo - self._lo), self._hi + c * (hi - self._hi)

    def range(self) -> tuple[np.ndarray, np.ndarray]:
        if self._lo is None:
            raise QuantError("PerChannelMinMaxObserver: no data observed yet")
        if self.symmetric:
            a = np.maximum(np.abs(self._lo), np.abs(self._hi))
            return -a, a
        return self._lo.copy(), self._hi.copy()


class PerChannelObserver(_PerChannel):
    """One observer per channel: ``make()`` builds each (e.g. ``lambda: MSEObserver(symmetric=True)``)."""

    def __init__(self, make: Callable[[], _o.Observer], axis: int = 0):
        if not callable(make):
            raise QuantError(f"make: expected a callable returning an observer, got {make!r}")
        self.make = make
        self.axis = int(axis)
        self.observers: list | None = None

    def observe(self, x) -> None:
        x2 = _channels_first(x, self.axis, "raise", type(self).__name__)
        if self.observers is None:
            self.observers = [self.make() for _ in range(x2.shape[0])]
        if len(self.observers) != x2.shape[0]:
            raise QuantError(f"observe: channel count changed from {len(self.observers)} to {x2.shape[0]}")
        for obs, row in zip(self.observers, x2):
            obs.observe(row)

    @property
    def ignored(self) -> int:
        return sum(o.ignored for o in self.observers or [])

    def range(self) -> tuple[np.ndarray, np.ndarray]:
        if self.observers is None:
            raise QuantError("PerChannelObserver: no data observed yet")
        r = np.array([o.range() for o in self.observers], dtype=np.float32)
        return r[:, 0].copy(), r[:, 1].copy()


def make_observer(method: str, symmetric=False, percentile=99.999, num_bins=2048, num_quantized_bins=128,
                  grid=None, nan_policy="raise") -> _o.Observer:
    """Observer for a method name (see :data:`METHODS`)."""
    if method == "minmax":
        return _o.MinMaxObserver(symmetric, nan_policy=nan_policy)
    if method == "percentile":
        return _o.PercentileObserver(percentile, num_bins, symmetric, grid, nan_policy)
    classes = {"kl": _o.KLObserver, "entropy": _o.EntropyObserver, "mse": _o.MSEObserver}
    if method not in classes:
        raise QuantError(f"method: expected one of {METHODS}, got {method!r}")
    return classes[method](num_bins, num_quantized_bins, symmetric, grid, nan_policy)


def _grid_pass(batches, method: str, symmetric: bool, nan_policy: str):
    """First pass over re-iterable batches: the grid one big batch would get (makes incremental == one-shot)."""
    probe = _o.MinMaxObserver(nan_policy=nan_policy)
    amin = np.inf
    for b in batches:
        probe.observe(b)
        flat = np.asarray(b, dtype=np.float32).reshape(-1)
        fin = np.abs(flat[np.isfinite(flat)])
        amin = min(amin, float(fin.min())) if fin.size else amin
    if probe.count == 0:
        return None
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
    """
    if method not in METHODS:
        raise QuantError(f"method: expected one of {METHODS}, got {method!r}")
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
