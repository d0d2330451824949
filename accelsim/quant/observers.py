"""Calibration observers (torch.ao style): ``observe(batch)`` any number of times, then ``range()`` -> (lo, hi)
or ``qparams(spec)`` (always through :func:`~accelsim.quant.spec.qparams_from_range`).

Non-finite values (NaN, +-Inf): ``nan_policy="raise"`` (default) raises :class:`QuantError` naming the count;
``"ignore"`` drops them and counts them in ``observer.ignored``. A scale is never computed from NaN.

Ranges returned by ``range()`` (``symmetric=True`` always gives ``(-a, a)``):

* :class:`MinMaxObserver` - global min/max (ONNX Runtime ``MinMaxCalibrater``); with ``averaging_constant=c``
  an exponential moving average of per-batch min/max, ``m <- m + c (m_batch - m)``, first batch initializing
  (torch ``MovingAverageMinMaxObserver``; ONNX Runtime applies the same update between ``collect_data`` calls
  but a plain mean of the batches inside one call).
* :class:`PercentileObserver` - ONNX Runtime ``PercentileCalibrater`` (``|x|`` histogram over [min|x|, max|x|]
  when symmetric, signed ``[-max|x|, max|x|]`` otherwise), see :mod:`accelsim.quant.thresholds`.
* :class:`KLObserver`, :class:`EntropyObserver`, :class:`MSEObserver` - a threshold ``T`` on the ``|x|``
  histogram over ``[0, max|x|]``; range ``(-T, T)`` when symmetric, else ``(max(-T, min), min(T, max))`` (so
  non-negative data gives ``(min, T)`` and maps onto the asymmetric/unsigned grid with 0 included).

Histograms follow :class:`~accelsim.quant.histogram.LinearHistogram` (``grid=`` fixes the grid up front, which
makes incremental calibration identical to one big batch; :func:`accelsim.quant.calibrate` does that with a
first pass whenever its ``batches`` can be iterated twice).
"""
from __future__ import annotations

import numpy as np

from accelsim.errors import QuantError
from accelsim.kernels import histogram as _h
from accelsim.quant import thresholds as _t
from accelsim.quant.histogram import LinearHistogram
from accelsim.quant.spec import QParams, QuantSpec, qparams_from_range


class Observer:
    """Base class: non-finite screening, batch statistics and ``qparams``; subclasses implement ``_update``
    and ``range``."""

    def __init__(self, nan_policy: str = "raise"):
        if nan_policy not in ("raise", "ignore"):
            raise QuantError(f"nan_policy: expected 'raise' or 'ignore', got {nan_policy!r}")
        self.nan_policy = nan_policy
        self.ignored = 0
        self.count = 0
        self.min = self.max = None

    def _screen(self, x):
        arr = np.asarray(x)
        if arr.dtype.kind not in "fiu" or arr.dtype.kind == "b":
            raise QuantError(f"observe: expected a real array, got dtype {arr.dtype}")
        flat = np.ascontiguousarray(arr, dtype=np.float32).reshape(-1)
        stats = _h.finite_stats(flat)
        if stats[4]:
            if self.nan_policy == "raise":
                raise QuantError(f"observe: batch contains {stats[4]} NaN/Inf value(s) out of {flat.size} "
                                 "(pass nan_policy='ignore' to drop and count them)")
            self.ignored += int(stats[4])
        return flat, stats

    def observe(self, x) -> None:
        """Accumulate one batch (any shape)."""
        flat, stats = self._screen(x)
        n = flat.size - int(stats[4])
        if n == 0:
            return
        self.count += n
        mn, mx = np.float32(stats[0]), np.float32(stats[1])
        self.min = mn if self.min is None else min(self.min, mn)
        self.max = mx if self.max is None else max(self.max, mx)
        self._update(flat, stats)

    def _update(self, flat, stats) -> None:
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
        if averaging_constant is not None and not 0.0 <= float(averaging_constant) <= 1.0:
            raise QuantError(f"averaging_constant: expected a value in [0, 1], got {averaging_constant!r}")
        self.symmetric = bool(symmetric)
        self.averaging_constant = averaging_constant
        self._lo = self._hi = None

    def _update(self, flat, stats) -> None:
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
        return lo, hi


class _HistogramObserver(Observer):
    _mode = "abs0"

    def __init__(self, num_bins=2048, num_quantized_bins=128, symmetric=False, grid=None, nan_policy="raise"):
        super().__init__(nan_policy)
        self.symmetric = bool(symmetric)
        self.hist = LinearHistogram(num_bins, self._grid_mode(), grid)
        self.num_quantized_bins = num_quantized_bins
        if self.hist.mode == "abs0":
            _t._check_nq(self.hist, num_quantized_bins)

    def _grid_mode(self) -> str:
        return self._mode

    def _update(self, flat, stats) -> None:
        self.hist.add(flat, stats)

    def _threshold(self) -> float:
        raise NotImplementedError

    def range(self) -> tuple[float, float]:
        self._require_data()
        lo, hi = float(self.min), float(self.max)
        t = max(abs(lo), abs(hi)) if self.hist.first is None else min(self._threshold(), max(abs(lo), abs(hi)))
        if self.symmetric:
            return -t, t
        return max(-t, lo), min(t, hi)


class KLObserver(_HistogramObserver):
    """TensorRT KL-divergence (entropy) calibration; see :mod:`accelsim.quant.thresholds`.

    Non-negative data on an asymmetric observer uses the one-sided search (:func:`~accelsim.quant.thresholds.
    kl_threshold` with ``one_sided=True``); ``one_sided_fix=False`` keeps the plain search."""

    def __init__(self, num_bins=2048, num_quantized_bins=128, symmetric=False, grid=None, nan_policy="raise",
                 one_sided_fix: bool = True):
        super().__init__(num_bins, num_quantized_bins, symmetric, grid, nan_policy)
        self.one_sided_fix = bool(one_sided_fix)

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
        p = float(percentile)
        if not 0.0 <= p <= 100.0:
            raise QuantError(f"percentile: expected a value in [0, 100], got {percentile!r}")
        self.percentile = p
        self.symmetric = bool(symmetric)
        super().__init__(num_bins, 128, symmetric, grid, nan_policy)

    def _grid_mode(self) -> str:
        return "abs" if self.symmetric else "signed"

    def range(self) -> tuple[float, float]:
        self._require_data()
        if self.hist.first is None:
            return float(self.min), float(self.max)
        return _t.percentile_range(self.hist, self.percentile, self.min, self.max)
