"""Incremental linear histogram used by the histogram observers.

Three grid layouts (``mode``):

* ``"abs0"`` - ``|x|`` over ``[0, max|x|]`` (KL, Entropy, MSE; docs/quantization.md);
* ``"abs"`` - ``|x|`` over ``[min|x|, max|x|]``: ``np.histogram(|x|, bins)`` as ONNX Runtime's symmetric
  Percentile calibrator builds it;
* ``"signed"`` - ``x`` over ``[-max|x|, max|x|]``: ONNX Runtime's ``collect_value`` grid.

The grid is set by the first batch with a non-degenerate range (or up front with ``grid=(first, last)``, which
makes any number of batches bin exactly like one big batch). Binning is ``np.histogram``'s, bit for bit.
When a later batch falls outside the grid, the histogram is re-gridded *exactly*: shifted by ``s`` whole bins
and merged ``k`` bins to one (``k``, ``s`` integers, smallest that cover the new data; ``"signed"`` stays
symmetric, ``"abs0"`` stays anchored at 0), so no count moves to a wrong bin and the bin count stays fixed.
Difference from one big batch: identical when the first batch holds the extremes (or ``grid`` is given);
otherwise the final bin width is ``k`` times the first batch's width, i.e. ``width < (max - min)/n + w1`` for
``"abs"``/``"abs0"`` (``w1`` = first width) and the top of the grid may be empty.
Batches whose range is a single value (e.g. all zeros) are held as a pending (value, count) until a grid exists.
A grid whose float32 width ``last - first`` overflows (|x| beyond ~1.7e38 on a signed grid, or a grid grown
past float32's range) raises :class:`QuantError`, as ``np.histogram`` refuses it. A grid may grow by any
factor (``k`` and ``s`` are exact Python ints; e.g. from 1e-30 to 1e6). ``num_bins`` is an int in
``[2, MAX_BINS = 2**14]``: the threshold searches cost ``O(num_bins**2)``.

Cost: :meth:`LinearHistogram.observe` computes the batch statistics and bins it on the current grid in one pass
(:func:`accelsim.kernels.histogram.batch_stats_histogram`); only a batch that grows the grid (or the first one)
is binned again, by a second pass on the new grid.
"""
from __future__ import annotations

import math

import numpy as np

from accelsim.errors import QuantError
from accelsim.kernels import histogram as _h

MODES = ("abs0", "abs", "signed")
MAX_BINS = 1 << 14


def np_edges(first, last, n: int) -> tuple[np.float32, np.float32, np.ndarray]:
    """np.histogram's outer edges (``+-0.5`` for an empty range) and float32 ``linspace`` edges."""
    f, l = np.float32(first), np.float32(last)
    if f == l:
        f, l = np.float32(f - 0.5), np.float32(l + 0.5)
    return f, l, np.linspace(f, l, n + 1, endpoint=True, dtype=np.float32)


class LinearHistogram:
    """``counts`` (int64) over ``num_bins`` equal bins from ``first`` to ``last`` (see module doc)."""

    def __init__(self, num_bins: int = 2048, mode: str = "abs0", grid=None):
        if isinstance(num_bins, bool) or not isinstance(num_bins, (int, np.integer)) or not 2 <= num_bins <= MAX_BINS:
            raise QuantError(f"num_bins: expected an int in [2, {MAX_BINS}], got {num_bins!r}")
        if not isinstance(mode, str) or mode not in MODES:
            raise QuantError(f"mode: expected one of {MODES}, got {mode!r}")
        self.num_bins = int(num_bins)
        self.mode = mode
        self.counts = np.zeros(self.num_bins, dtype=np.int64)
        self.first = self.last = None
        self.edges = None
        self.bounds = _h.NO_FAST
        self.pending: dict[float, int] = {}
        if grid is not None:
            try:
                lo, hi = (float(g) for g in grid)
            except (TypeError, ValueError):
                lo = hi = math.nan
            if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
                raise QuantError(f"grid: expected finite (first, last) with first < last, got {grid!r}")
            self._set_grid(lo, hi)

    @property
    def width(self) -> float:
        return (float(self.last) - float(self.first)) / self.num_bins

    def _set_grid(self, lo: float, hi: float) -> None:
        with np.errstate(over="ignore"):
            if not np.isfinite(np.float32(hi) - np.float32(lo)):
                raise QuantError(f"histogram range [{lo}, {hi}] is too wide for float32 bins "
                                 "(last - first overflows float32)")
        self.first, self.last, self.edges = np_edges(lo, hi, self.num_bins)
        self.bounds = _h.fast_bounds(self.edges, self.first, self.last)

    def _span(self, mn: float, mx: float, amn: float, amx: float) -> tuple[float, float]:
        if self.mode == "abs0":
            return 0.0, amx
        if self.mode == "abs":
            return amn, amx
        return -amx, amx

    def observe(self, x: np.ndarray, nd: np.ndarray | None = None) -> tuple:
        """Statistics of a flat float32 batch (:func:`~accelsim.kernels.histogram.batch_stats`) and, when the
        grid exists, its counts on that grid, in one pass: ``(stats, counts or None)``; pass both to :meth:`add`."""
        if self.first is None:
            return _h.batch_stats(x, nd), None
        binned = np.zeros(self.num_bins, dtype=np.int64)
        stats = _h.batch_stats_histogram(x, self.mode != "signed", self.first, self.last, self.edges, self.bounds,
                                         binned, nd)
        return stats, binned

    def add(self, x: np.ndarray, stats, binned: np.ndarray | None = None) -> None:
        """Bin a flat float32 batch whose finite statistics ``(min, max, min|x|, max|x|, ...)`` are ``stats``;
        ``binned`` (from :meth:`observe` on the current grid) is used as is unless the grid must grow."""
        lo, hi = self._span(*stats[:4])
        absolute = self.mode != "signed"
        if self.first is None:
            vals = [lo, hi, *self.pending]
            lo, hi = min(vals), max(vals)
            if np.float32(lo) == np.float32(hi):
                self.pending[float(np.float32(lo))] = self.pending.get(float(np.float32(lo)), 0) + _count(x, stats)
                return
            self._set_grid(lo, hi)
            for value, count in self.pending.items():
                tmp = np.zeros(self.num_bins, dtype=np.int64)
                _h.histogram_add(np.full(1, value, np.float32), absolute, self.first, self.last, self.edges, tmp)
                self.counts += tmp * count
            self.pending = {}
        elif lo < self.first or hi > self.last:
            self._grow(lo, hi)
        elif binned is not None:
            self.counts += binned
            return
        _h.histogram_add(x, absolute, self.first, self.last, self.edges, self.counts)

    def _grow(self, lo: float, hi: float) -> None:
        n, w, f = self.num_bins, self.width, float(self.first)
        if self.mode == "signed":
            k = max(2, math.ceil(max(-lo, hi) / float(self.last)))
            k += 1 if (n % 2 and k % 2 == 0) else 0
            s = (k - 1) * n // 2
            new_first, new_last = -k * float(self.last), k * float(self.last)
        else:
            s = max(0, math.ceil((f - lo) / w)) if lo < f else 0
            k = max(1, math.ceil((hi - (f - s * w)) / (n * w)), (n - 1 + s) // n + 1)
            new_first = f - s * w
            new_last = new_first + n * k * w
        counts = self.counts
        self._set_grid(new_first, new_last)  # validates before the counts change
        self.counts = np.zeros(n, dtype=np.int64)
        _regrid(counts, s, k, self.counts)
        if np.float32(lo) < self.first or np.float32(hi) > self.last:  # float32 rounding of the new edges
            self._grow(lo, hi)

    def total(self) -> int:
        return int(self.counts.sum()) + sum(self.pending.values())


def _regrid(counts: np.ndarray, s: int, k: int, out: np.ndarray) -> None:
    """``out[(j + s) // k] += counts[j]`` for Python ints ``s >= 0``, ``k >= 1`` of any size (every target is a
    bin of ``out`` by construction of ``s`` and ``k``); the kernel when they fit int64."""
    n = counts.shape[0]
    if s + n < 1 << 62 and k < 1 << 62:
        _h.regrid(counts, s, k, out)
        return
    np.add.at(out, np.array([(j + s) // k for j in range(n)], dtype=np.int64), counts)


def _count(x, stats) -> int:
    """Number of finite values in a batch (all of them unless the observer ignores non-finite ones)."""
    return int(x.shape[0] - stats[4]) if len(stats) > 4 else int(x.shape[0])
