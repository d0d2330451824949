"""Histogram kernels for calibration: statistics, binning, re-gridding and the threshold searches.

* :func:`finite_stats` - min, max, min|x|, max|x| and the count of non-finite values in one pass.
* :func:`histogram_add` - ``np.histogram(x or |x|, bins=n, range=(first, last))`` exactly (same float32 index
  arithmetic and edge corrections), accumulated into ``counts``; non-finite and out-of-range values are skipped.
* :func:`regrid` - exact merge of a histogram into a grid shifted by ``s`` old bins and ``k`` times coarser.
* :func:`kl_divergences` - TensorRT entropy calibration (DESIGN section 5.5) for every candidate bin count.
* :func:`code_entropies` / :func:`mse_errors` - the Entropy and MSE criteria for every candidate threshold.
"""
from __future__ import annotations

import numpy as np

from accelsim.kernels._jit import njit, njit_parallel, prange

SMOOTH_EPS = 1e-4  # count added to an empty Q bin where P is not empty (KL smoothing)


@njit
def finite_stats(x):
    """(min, max, min|x|, max|x|, n_nonfinite) over the finite values of a flat float array."""
    mn = np.inf
    mx = -np.inf
    amn = np.inf
    amx = 0.0
    bad = 0
    for i in range(x.shape[0]):
        v = np.float64(x[i])
        if v - v != 0:
            bad += 1
            continue
        mn = min(mn, v)
        mx = max(mx, v)
        a = abs(v)
        amn = min(amn, a)
        amx = max(amx, a)
    return mn, mx, amn, amx, bad


@njit
def _bin_index(v, first, denom, nf, edges, n):
    idx = np.int64((v - first) / denom * nf)
    if idx == n:
        idx -= 1
    if v < edges[idx]:
        idx -= 1
    if idx != n - 1 and v >= edges[idx + 1]:
        idx += 1
    return idx


@njit
def histogram_add(x, absolute, first, last, edges, counts):
    """Add ``x`` (or ``|x|``) into ``counts`` with numpy's uniform-bin rule (float32 arithmetic):
    ``i = int((v - first) / (last - first) * n)``, corrected against ``edges``; the last bin is closed."""
    n = counts.shape[0]
    f = np.float32(first)
    l = np.float32(last)
    denom = np.float32(l - f)
    nf = np.float32(n)
    for i in range(x.shape[0]):
        v = np.float32(x[i])
        if absolute:
            v = abs(v)
        if v >= f and v <= l:
            counts[_bin_index(v, f, denom, nf, edges, n)] += 1


@njit
def regrid(counts, s, k, out):
    """``out[(j + s) // k] += counts[j]``: the old grid shifted right by ``s`` bins and merged ``k`` to 1."""
    for j in range(counts.shape[0]):
        out[(j + s) // k] += counts[j]


@njit
def _kl_one(h, i, nq, levels, nonzero):
    """KL(P || Q) for a histogram truncated to its first ``i`` bins (see :func:`kl_divergences`)."""
    outliers = 0.0
    for j in range(i, h.shape[0]):
        outliers += h[j]
    levels[:] = 0.0
    nonzero[:] = 0.0
    total_q = 0.0
    for j in range(i):
        lv = j * nq // i
        levels[lv] += h[j]
        if h[j] != 0:
            nonzero[lv] += 1.0
    total_p = outliers
    for j in range(i):
        total_p += h[j]
        total_q += h[j]
    if total_q == 0.0:
        return np.inf
    div = 0.0
    sum_q = 0.0
    for j in range(i):  # total of the smoothed Q, for normalization
        lv = j * nq // i
        q = levels[lv] / nonzero[lv] if h[j] != 0 else 0.0
        p = h[j] + (outliers if j == i - 1 else 0.0)
        sum_q += q if (q > 0 or p == 0) else SMOOTH_EPS
    for j in range(i):
        lv = j * nq // i
        q = levels[lv] / nonzero[lv] if h[j] != 0 else 0.0
        p = h[j] + (outliers if j == i - 1 else 0.0)
        if p == 0:
            continue
        if q == 0:
            q = SMOOTH_EPS
        div += (p / total_p) * np.log((p / total_p) / (q / sum_q))
    return div


@njit_parallel
def kl_divergences(h, start, nq, out):
    """``out[i - start]`` = KL(P_i || Q_i) for every candidate ``i`` in [start, len(h)] (TensorRT, 2017):

    P_i = h[0..i-1] with the mass of all bins >= i added to bin i-1; Q_i = h[0..i-1] merged into ``nq`` levels
    (bin j belongs to level ``j * nq // i``) and expanded back by spreading each level's count uniformly over
    its non-zero bins (zero bins stay zero). Where Q is 0 but P is not, Q gets ``SMOOTH_EPS`` counts. Both are
    normalized; ``KL = sum_{P>0} p ln(p / q)``.
    """
    for c in prange(out.shape[0]):
        levels = np.zeros(nq)
        nonzero = np.zeros(nq)
        out[c] = _kl_one(h, start + c, nq, levels, nonzero)


@njit
def _cdf_at(cum, first, w, t):
    """Piecewise-linear cumulative count at ``t`` (uniform density inside each bin)."""
    n = cum.shape[0] - 1
    pos = (t - first) / w
    if pos <= 0:
        return 0.0
    if pos >= n:
        return cum[n]
    j = np.int64(pos)
    return cum[j] + (pos - j) * (cum[j + 1] - cum[j])


@njit_parallel
def code_entropies(h, first, w, thresholds, nq, out):
    """``out[c]`` = Shannon entropy (nats) of the magnitude codes ``min(rne(|x| / s), nq - 1)`` with
    ``s = thresholds[c] / (nq - 1)``; the code masses come from the histogram assuming uniform density per bin."""
    cum = np.zeros(h.shape[0] + 1)
    for j in range(h.shape[0]):
        cum[j + 1] = cum[j] + h[j]
    total = cum[-1]
    for c in prange(thresholds.shape[0]):
        s = thresholds[c] / (nq - 1)
        ent = 0.0
        prev = 0.0
        for code in range(nq):
            upper = cum[-1] if code == nq - 1 else _cdf_at(cum, first, w, (code + 0.5) * s)
            p = (upper - prev) / total
            prev = upper
            if p > 0:
                ent -= p * np.log(p)
        out[c] = ent
    return out


@njit_parallel
def mse_errors(h, centers, thresholds, nq, out):
    """``out[c] = sum_j h[j] * (centers[j] - s * min(rne(centers[j] / s), nq - 1))**2``, ``s = T_c / (nq - 1)``:
    expected squared error (rounding inside the range, clipping beyond it) evaluated at the bin centers."""
    for c in prange(thresholds.shape[0]):
        s = thresholds[c] / (nq - 1)
        err = 0.0
        for j in range(h.shape[0]):
            if h[j] == 0:
                continue
            x = centers[j]
            code = min(np.rint(x / s), nq - 1.0)
            d = x - code * s
            err += h[j] * d * d
        out[c] = err
