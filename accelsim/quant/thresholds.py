"""Threshold searches over a :class:`~accelsim.quant.histogram.LinearHistogram` (docs/quantization.md, "Calibration").

With ``w`` the bin width and ``nq = num_quantized_bins`` (128: the magnitude levels of symmetric INT8):

* **KL** (TensorRT entropy calibration, Migacz 2017) - for every ``i`` in ``[nq, n]``: P = the first ``i``
  bins with all outlier mass added to bin ``i-1``; Q = the first ``i`` bins merged into ``nq`` levels and
  spread back uniformly over each level's non-zero bins; pick the ``i`` of minimal ``KL(P||Q)`` (first on
  ties); ``T = (i + 0.5) * w``, capped at ``max|x|``. Details and smoothing: :func:`accelsim.kernels.histogram.
  kl_divergences`.
* **Entropy** - maximizes the Shannon entropy ``H(C_T)`` of the magnitude codes ``C_T = min(rne(|x|/s), nq-1)``,
  ``s = T/(nq-1)``, over ``T = i * w`` for ``i`` in ``[nq, n]`` (a code never narrower than a bin). For a
  deterministic quantizer ``I(X; C_T) = H(C_T)``, so this minimizes the information lost by quantization,
  ``H(X_bins) - H(C_T)``. It is *not* KL: it rewards using all codes evenly and so clips harder than KL or MSE.
* **MSE** - minimizes ``sum_j h_j (c_j - Q_T(c_j))**2`` (bin centers ``c_j``; rounding inside, clipping
  outside the range) over ``T = i * w``, ``i`` in ``[1, n]``.
* **Percentile** - ONNX Runtime's rule: the lower edge of the bin where the CDF reaches ``p`` (symmetric,
  on the ``|x|`` grid) or reaches ``(100-p)/200`` and ``1-(100-p)/200`` (signed grid); clamped to [min, max].
  Values inside the bin of that edge lie above it by less than one bin width (e.g. constant data).

**Half the data is never clipped** (KL, Entropy, MSE): candidates start at ``max(first candidate, m + 1)`` bins,
``m`` the bin where the cumulative count reaches half the total, so ``T`` is at least the upper edge of the
median bin. The searches measure the shape of the clipped distribution, not how much is clipped, and without
this floor they pick a threshold below all the data on degenerate histograms (constant data, data far from
0: every candidate below the data scores KL = 0 and entropy 0, and the first one wins). A histogram whose
median bin lies below the first candidate (any data with |x| spread from near 0) is unaffected.
"""
from __future__ import annotations

import numpy as np

from accelsim.errors import QuantError
from accelsim.kernels import histogram as _h
from accelsim.quant.histogram import LinearHistogram


def _check_nq(hist: LinearHistogram, nq) -> int:
    if isinstance(nq, bool) or not isinstance(nq, (int, np.integer)) or not 2 <= nq <= hist.num_bins:
        raise QuantError(f"num_quantized_bins: expected an int in [2, num_bins={hist.num_bins}], got {nq!r}")
    if hist.mode != "abs0":
        raise QuantError(f"threshold searches need an 'abs0' histogram, got mode {hist.mode!r}")
    return int(nq)


def first_candidate(hist: LinearHistogram, lowest: int) -> int:
    """``max(lowest, m + 1)``, ``m`` the histogram's median bin (module doc: half the data is never clipped)."""
    cum = np.cumsum(hist.counts)
    median_bin = int(np.searchsorted(cum, cum[-1] / 2.0)) if cum[-1] else 0
    return min(max(int(lowest), median_bin + 1), hist.num_bins)


def kl_divergence_curve(hist: LinearHistogram, nq: int = 128, one_sided: bool = False) -> tuple[int, np.ndarray]:
    """``(start, KL(P_i || Q_i) for i = start .. num_bins)``, ``start`` the first candidate; see
    :func:`kl_threshold`."""
    nq = _check_nq(hist, nq)
    counts = hist.counts
    if one_sided:
        nq = min(2 * nq, hist.num_bins)
        counts = counts.copy()
        counts[0] = counts[1]
    start = first_candidate(hist, nq)
    out = np.empty(hist.num_bins - start + 1)
    _h.kl_divergences(counts, start, nq, out)
    return start, out


def kl_threshold(hist: LinearHistogram, nq: int = 128, one_sided: bool = False) -> float:
    """TensorRT threshold ``(i* + 0.5) * w`` (capped at the histogram's top edge); see module doc.

    ``one_sided`` (non-negative data, e.g. ReLU outputs, which map onto an unsigned grid): as NVIDIA's
    pytorch-quantization does, the search merges into ``2·nq`` levels (an unsigned grid has twice the
    magnitude levels of a signed one) and bin 0 takes bin 1's count — exact zeros are represented exactly
    by the zero point, and their spike would otherwise drag the threshold far down (measured: MNIST
    W8A8 82.5 % vs 97 % FP32; EfficientNet-Lite0 top-1 agreement 0 %)."""
    start, div = kl_divergence_curve(hist, nq, one_sided)
    i = int(np.argmin(div)) + start
    return min(float(hist.first) + (i + 0.5) * hist.width, float(hist.last))


def entropy_threshold(hist: LinearHistogram, nq: int = 128) -> float:
    """Threshold maximizing the entropy of the ``nq`` magnitude codes; see module doc."""
    nq = _check_nq(hist, nq)
    w = hist.width
    cand = float(hist.first) + np.arange(first_candidate(hist, nq), hist.num_bins + 1) * w
    ent = np.empty(cand.shape[0])
    _h.code_entropies(hist.counts, float(hist.first), w, cand, nq, ent)
    return float(cand[int(np.argmax(ent))])


def mse_threshold(hist: LinearHistogram, nq: int = 128) -> float:
    """Threshold minimizing the histogram's expected squared quantization error; see module doc."""
    nq = _check_nq(hist, nq)
    w = hist.width
    cand = float(hist.first) + np.arange(first_candidate(hist, 1), hist.num_bins + 1) * w
    centers = float(hist.first) + (np.arange(hist.num_bins) + 0.5) * w
    err = np.empty(cand.shape[0])
    _h.mse_errors(hist.counts, centers, cand, nq, err)
    return float(cand[int(np.argmin(err))])


def percentile_range(hist: LinearHistogram, percentile: float, data_min, data_max) -> tuple[float, float]:
    """ONNX Runtime ``HistogramCollector.compute_percentile`` on an ``"abs"`` (symmetric) or ``"signed"`` grid."""
    if hist.mode == "abs0":
        raise QuantError("percentile_range needs an 'abs' or 'signed' histogram")
    cdf = np.cumsum(hist.counts / hist.counts.sum())
    edges = hist.edges
    if hist.mode == "abs":
        t = edges[np.searchsorted(cdf, percentile / 100.0)]
        lo, hi = -t, t
    else:
        cut = (100.0 - percentile) / 200.0
        lo, hi = edges[np.searchsorted(cdf, cut)], edges[np.searchsorted(cdf, 1.0 - cut)]
    lo = max(lo, data_min)
    hi = min(hi, data_max)
    return float(lo), float(hi)
