"""Calibration observers (torch.ao style): ``observe(batch)`` any number of times, then ``range()`` -> (lo, hi)
or ``qparams(spec)`` (always through :func:`~accelsim.quant.spec.qparams_from_range`).

Non-finite values (NaN, +-Inf): ``nan_policy="raise"`` (default) raises :class:`QuantError` naming the count;
``"ignore"`` drops them and counts them in ``observer.ignored``. A scale is never computed from NaN.

Ranges returned by ``range()`` always satisfy ``lo <= 0 <= hi`` (zero is representable, as
:func:`~accelsim.quant.spec.qparams_from_range` makes it anyway: the parameters are the same as from the raw
range) and never extend beyond the data: ``min(min, 0) <= lo`` and ``hi <= max(max, 0)``. MinMax ranges contain
all the data seen; the other methods clip tails by design (Percentile at most ``100 - p`` percent of the values
plus part of one bin, the searches never more than half of them, see :mod:`accelsim.quant.thresholds`).
``symmetric=True`` gives ``(-a, a)``, except Percentile, which clamps its ends to the data's ``[min, max]`` as ONNX
Runtime's calibrator does (the symmetric quantization grid is the same: ``qparams_from_range`` symmetrizes it):

* :class:`MinMaxObserver` - global min/max (ONNX Runtime ``MinMaxCalibrater``); with ``averaging_constant=c``
  an exponential moving average of per-batch min/max, ``m <- m + c (m_batch - m)``, first batch initializing
  (torch ``MovingAverageMinMaxObserver``; ONNX Runtime applies the same update between ``collect_data`` calls
  but a plain mean of the batches inside one call).
* :class:`PercentileObserver` - ONNX Runtime ``PercentileCalibrater`` (``|x|`` histogram over [min|x|, max|x|]
  when symmetric, signed ``[-max|x|, max|x|]`` otherwise), see :mod:`accelsim.quant.thresholds`.
* :class:`KLObserver`, :class:`EntropyObserver`, :class:`MSEObserver` - a threshold ``T`` on the ``|x|``
  histogram over ``[0, max|x|]``; range ``(-T, T)`` when symmetric, else ``(max(-T, min(min, 0)),
  min(T, max(max, 0)))`` (so non-negative data gives ``(0, T)`` and maps onto the asymmetric/unsigned grid).

Histograms follow :class:`~accelsim.quant.histogram.LinearHistogram` (``grid=`` fixes the grid up front, which
makes incremental calibration identical to one big batch; :func:`accelsim.quant.calibrate` does that with a
first pass whenever its ``batches`` can be iterated twice).

Per-channel: :class:`PerChannelMinMaxObserver` (min/max or moving average per slice along ``axis``; weights:
axis 0 of ``[Cout, Cin/g, R, S]``) and :class:`PerChannelObserver` (any observer, one instance per channel).

Cost: ``observe`` reads a float32 batch once, in place (a view; a copy only for other dtypes or a layout that is
not one contiguous block): one Numba pass gives min, max, min|x|, max|x|, the non-finite count and, for the
histogram observers, the bin counts (:mod:`accelsim.kernels.histogram`).
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np

from accelsim.errors import QuantError
from accelsim.kernels import histogram as _h
from accelsim.quant import _validate as v
from accelsim.quant import thresholds as _t
from accelsim.quant.histogram import LinearHistogram
from accelsim.quant.spec import QParams, QuantSpec, qparams_from_range


def flat_float32(x) -> tuple[np.ndarray, np.ndarray | None]:
    """``(flat, nd)``: ``x`` as a 1-d float32 array without copying when it is float32 and one contiguous block
    (C order, or any axis order via ``ravel('K')``); ``nd`` is ``x`` itself when ``flat`` is not in its C order
    (the statistics then take the sign of a zero min/max from ``nd``), else None."""
    arr = v.as_array(x, "observe")
    if arr.dtype.kind not in "fiu" or arr.dtype.kind == "b":
        raise QuantError(f"observe: expected a real array, got dtype {arr.dtype}")
    if arr.dtype != np.float32 or arr.flags.c_contiguous:
        return v.to_float32(arr).reshape(-1), None
    return arr.ravel(order="K"), arr  # a view when the elements form one block, else a copy in memory order


class Observer:
    """Base class: non-finite screening, batch statistics (``count``, ``min``, ``max`` and ``amin`` = min|x| of
    the finite values seen) and ``qparams``; subclasses implement ``_update`` and ``range``."""

    def __init__(self, nan_policy: str = "raise"):
        if not isinstance(nan_policy, str) or nan_policy not in ("raise", "ignore"):
            raise QuantError(f"nan_policy: expected 'raise' or 'ignore', got {nan_policy!r}")
        self.nan_policy = nan_policy
        self.ignored = 0
        self.count = 0
        self.min = self.max = self.amin = None

    def _screen(self, x) -> tuple[np.ndarray, tuple, np.ndarray | None]:
        flat, nd = flat_float32(x)
        stats, binned = self._stats(flat, nd)
        if stats[4]:
            if self.nan_policy == "raise":
                raise QuantError(f"observe: batch contains {stats[4]} NaN/Inf value(s) out of {flat.size} (as "
                                 "float32) (pass nan_policy='ignore' to drop and count them)")
            self.ignored += int(stats[4])
        return flat, stats, binned

    def _stats(self, flat, nd) -> tuple:
        return _h.batch_stats(flat, nd), None

    def observe(self, x) -> None:
        """Accumulate one batch (any shape)."""
        flat, stats, binned = self._screen(x)
        n = flat.size - int(stats[4])
        if n == 0:
            return
        self._update(flat, stats, binned)
        self.count += n
        mn, mx = np.float32(stats[0]), np.float32(stats[1])
        self.min = mn if self.min is None else min(self.min, mn)
        self.max = mx if self.max is None else max(self.max, mx)
        amin = float(stats[2])
        self.amin = amin if self.amin is None else min(self.amin, amin)

    def _update(self, flat, stats, binned) -> None:
        pass

    def _require_data(self) -> None:
        if self.count == 0:
            raise QuantError(f"{type(self).__name__}: no finite data observed yet")

    def range(self) -> tuple[float, float]:
        raise NotImplementedError

    def qparams(self, spec: QuantSpec) -> QParams:
        """(scale, zero point) of ``range()`` for ``spec`` (per-tensor specs)."""
        lo, hi = self.range()
        return qparams_from_range(lo, hi, spec)


class MinMaxObserver(Observer):
    """Global (or moving-average) min/max; see module doc."""

    def __init__(self, symmetric: bool = False, averaging_constant: float | None = None, nan_policy="raise"):
        super().__init__(nan_policy)
        if averaging_constant is not None:
            averaging_constant = v.scalar(averaging_constant, "averaging_constant")
            if not 0.0 <= averaging_constant <= 1.0:
                raise QuantError(f"averaging_constant: expected a value in [0, 1], got {averaging_constant!r}")
        self.symmetric = v.flag(symmetric, "symmetric")
        self.averaging_constant = averaging_constant
        self._lo = self._hi = None

    def _update(self, flat, stats, binned) -> None:
        lo, hi = np.float32(stats[0]), np.float32(stats[1])
        if self._lo is None or self.averaging_constant is None:
            self._lo = lo if self._lo is None else min(self._lo, lo)
            self._hi = hi if self._hi is None else max(self._hi, hi)
        else:
            c = self.averaging_constant
            self._lo = self._lo + c * (lo - self._lo)
            self._hi = self._hi + c * (hi - self._hi)

    def range(self) -> tuple[float, float]:
        self._require_data()
        lo, hi = float(self._lo), float(self._hi)
        if self.symmetric:
            a = max(abs(lo), abs(hi))
            return -a, a
        return min(lo, 0.0), max(hi, 0.0)


class _HistogramObserver(Observer):
    _mode = "abs0"

    def __init__(self, num_bins=2048, num_quantized_bins=128, symmetric=False, grid=None, nan_policy="raise"):
        super().__init__(nan_policy)
        self.symmetric = v.flag(symmetric, "symmetric")
        self.hist = LinearHistogram(num_bins, self._grid_mode(), grid)
        self.num_quantized_bins = num_quantized_bins
        self._cache = None
        if self.hist.mode == "abs0":
            _t._check_nq(self.hist, num_quantized_bins)

    def _grid_mode(self) -> str:
        return self._mode

    def _stats(self, flat, nd) -> tuple:
        return self.hist.observe(flat, nd)

    def _update(self, flat, stats, binned) -> None:
        self.hist.add(flat, stats, binned)

    def _threshold(self) -> float:
        raise NotImplementedError

    def _threshold_once(self) -> float:
        """``_threshold()``, computed once per histogram state (a layer that shares a tensor's observer asks
        for its range again; the KL search alone is ~10 ms)."""
        key = (self.hist.first, self.hist.last, self.hist.counts.tobytes(), self.num_quantized_bins, self.symmetric,
               float(self.min), getattr(self, "one_sided_fix", None))
        if self._cache is None or self._cache[0] != key:
            self._cache = (key, self._threshold())
        return self._cache[1]

    def range(self) -> tuple[float, float]:
        self._require_data()
        lo, hi = float(self.min), float(self.max)
        t = max(abs(lo), abs(hi)) if self.hist.first is None else min(self._threshold_once(), max(abs(lo), abs(hi)))
        if self.symmetric:
            return -t, t
        return max(-t, min(lo, 0.0)), min(t, max(hi, 0.0))


class KLObserver(_HistogramObserver):
    """TensorRT KL-divergence (entropy) calibration; see :mod:`accelsim.quant.thresholds`.

    Non-negative data on an asymmetric observer uses the one-sided search (:func:`~accelsim.quant.thresholds.
    kl_threshold` with ``one_sided=True``); ``one_sided_fix=False`` keeps the plain search."""

    def __init__(self, num_bins=2048, num_quantized_bins=128, symmetric=False, grid=None, nan_policy="raise",
                 one_sided_fix: bool = True):
        super().__init__(num_bins, num_quantized_bins, symmetric, grid, nan_policy)
        self.one_sided_fix = v.flag(one_sided_fix, "one_sided_fix")

    def _threshold(self) -> float:
        one_sided = self.one_sided_fix and not self.symmetric and float(self.min) >= 0.0
        return _t.kl_threshold(self.hist, self.num_quantized_bins, one_sided)


class EntropyObserver(_HistogramObserver):
    """Maximum code entropy (minimum information loss); see :mod:`accelsim.quant.thresholds`."""

    def _threshold(self) -> float:
        return _t.entropy_threshold(self.hist, self.num_quantized_bins)


class MSEObserver(_HistogramObserver):
    """Minimum expected squared quantization error; see :mod:`accelsim.quant.thresholds`."""

    def _threshold(self) -> float:
        return _t.mse_threshold(self.hist, self.num_quantized_bins)


class PercentileObserver(_HistogramObserver):
    """ONNX Runtime's Percentile calibration (``percentile`` in [0, 100], default 99.999)."""

    def __init__(self, percentile=99.999, num_bins=2048, symmetric=False, grid=None, nan_policy="raise"):
        p = v.scalar(percentile, "percentile")
        if not 0.0 <= p <= 100.0:
            raise QuantError(f"percentile: expected a value in [0, 100], got {percentile!r}")
        self.percentile = p
        self.symmetric = v.flag(symmetric, "symmetric")
        super().__init__(num_bins, 128, symmetric, grid, nan_policy)

    def _grid_mode(self) -> str:
        return "abs" if self.symmetric else "signed"

    def range(self) -> tuple[float, float]:
        self._require_data()
        if self.hist.first is None:
            lo, hi = float(self.min), float(self.max)
        else:
            lo, hi = _t.percentile_range(self.hist, self.percentile, self.min, self.max)
        return min(lo, 0.0), max(hi, 0.0)


def _channels_first(x, axis: int, nan_policy: str, who: str) -> np.ndarray:
    arr = v.as_array(x, f"{who}.observe")
    if arr.dtype.kind not in "fiu":
        raise QuantError(f"{who}.observe: expected a real array, got dtype {arr.dtype}")
    if not -arr.ndim <= axis < arr.ndim:
        raise QuantError(f"{who}.observe: axis {axis} out of range for a {arr.ndim}-d batch")
    with np.errstate(over="ignore"):
        return np.moveaxis(arr.astype(np.float32, copy=False), axis, 0).reshape(arr.shape[axis], -1)


def _axis(axis) -> int:
    if isinstance(axis, (bool, np.bool_)) or not isinstance(axis, (int, np.integer)):
        raise QuantError(f"axis: expected an int, got {axis!r}")
    return int(axis)


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
        self._proto = MinMaxObserver(symmetric, averaging_constant, nan_policy)  # validates the arguments
        self.axis = _axis(axis)
        self.symmetric = bool(symmetric)
        self.averaging_constant = self._proto.averaging_constant
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
        return np.minimum(self._lo, np.float32(0)), np.maximum(self._hi, np.float32(0))


class PerChannelObserver(_PerChannel):
    """One observer per channel: ``make()`` builds each (e.g. ``lambda: MSEObserver(symmetric=True)``)."""

    def __init__(self, make: Callable[[], Observer], axis: int = 0):
        if not callable(make):
            raise QuantError(f"make: expected a callable returning an observer, got {make!r}")
        self.make = make
        self.axis = _axis(axis)
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
