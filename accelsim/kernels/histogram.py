"""Histogram kernels for calibration: statistics, binning, re-gridding and the threshold searches.

Internal (arrays and scalars in): call :mod:`accelsim.quant`. An observed batch is read once (a second pass only
when it sets or grows the histogram grid, or holds non-finite values).

* :func:`finite_stats` - ``(min, max, min|x|, max|x|, n_nonfinite)`` over the finite values of a flat
  float32 array; :func:`batch_stats` is its checked entry for observers (any array layout).
* :func:`histogram_add` - ``np.histogram(x or |x|, bins=n, range=(first, last))`` exactly, accumulated into
  ``counts``; :func:`batch_stats_histogram` does the statistics and the binning in the same single pass.
* :func:`fast_bounds` - the per-grid constants that let most values skip numpy's edge corrections exactly.
* :func:`regrid` - exact merge of a histogram into a grid shifted by ``s`` old bins and ``k`` times coarser.
* :func:`kl_divergences` - TensorRT entropy calibration (DESIGN section 5.5) for every candidate bin count
  (level sums from prefix sums; bit-identical to the per-bin definition).
* :func:`code_entropies` / :func:`mse_errors` - the Entropy and MSE criteria for every candidate threshold.

Statistics work on the int32 bit patterns ``b`` of the floats: ``key(b) = b ^ ((b >> 31) & 0x7fffffff)`` is an
integer whose order is the float order (``-0.0 < +0.0``, NaN beyond +-inf), so min/max are integer reductions
that vectorize. Non-finite values (``b & 0x7fffffff >= 0x7f800000``) are counted; when there are any, the
statistics are recomputed by a masked loop (:func:`finite_stats_masked`, the reference semantics). A zero min/max
takes the sign of the first zero in ``x`` (what a sequential ``min`` gives), found by an early-exit scan in the
two cases the keys cannot tell (min = -0.0 or max = +0.0).

Binning (numpy's uniform-bin rule, float32): ``t = (v - first) / (last - first) * n``, ``i = int(t)``, ``i = n``
moved to ``n - 1``, then ``i -= v < edges[i]`` and ``i += i != n - 1 and v >= edges[i + 1]``. ``t(v)`` is monotone
in ``v`` (each float32 operation is), so with ``T_j = t(edges[j])`` and ``d_j = T_j - j``: if
``max_j d_j < frac(t) < 1 + min_j d_j`` then ``T_i < t < T_{i+1}``, hence ``edges[i] <= v < edges[i+1]`` and
numpy's answer is ``i`` with no correction (likewise ``i = 0`` needs only the upper bound, ``t = n`` is bin
``n - 1``, and values in the two bins around 0.0 are placed by comparing with their three edges). Only the few
values near an edge take the corrected path, so the result equals ``np.histogram``'s.
"""
from __future__ import annotations

import numpy as np

from accelsim.kernels._jit import njit, njit_parallel, prange

SMOOTH_EPS = 1e-4  # count added to an empty Q bin where P is not empty (KL smoothing)
BLOCK = 8192  # elements per block (the block and its bin codes stay in L1/L2 between the two loops)
FLUSH = 1 << 30  # elements per int32 sub-histogram flush (no overflow)
_ABS = np.int32(0x7FFFFFFF)
_EXP = np.int32(0x7F800000)
_INF = np.float32(np.inf)
NO_FAST = (np.float32(1.0), np.float32(0.0), -1, _INF, _INF, -_INF, 0)  # fast_bounds that disable the fast path


@njit
def finite_stats_masked(x):
    """Reference statistics: ``(min, max, min|x|, max|x|, n_nonfinite)`` by a sequential float64 loop."""
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
def _new_acc():
    """Statistics accumulator: [min key, max key, min |x| bits, number of non-finite values]."""
    acc = np.zeros(4, np.int64)
    acc[0] = 0x7FFFFFFF
    acc[1] = -0x80000000
    acc[2] = 0x7FFFFFFF
    return acc


@njit
def _key_stats(b, acc):
    """Fold the int32 bit patterns ``b`` into ``acc`` (see :func:`_new_acc`): integer min/max of
    ``key(b)``, min of ``b & 0x7fffffff`` and the count of ``b & 0x7fffffff >= 0x7f800000``; vectorized."""
    mn = acc[0]
    mx = acc[1]
    amn = acc[2]
    bad = acc[3]
    for i in range(b.shape[0]):
        v = b[i]
        a = v & _ABS
        k = v ^ ((v >> 31) & _ABS)
        mn = min(mn, k)
        mx = max(mx, k)
        amn = min(amn, a)
        bad += a >= _EXP
    acc[0] = mn
    acc[1] = mx
    acc[2] = amn
    acc[3] = bad


@njit
def _from_key(k):
    """The float32 whose key (module doc) is ``k``, as float64."""
    bits = np.array([k ^ ((k >> 31) & _ABS)], dtype=np.int32)
    return np.float64(bits.view(np.float32)[0])


@njit
def _first_zero_negative(x):
    """Sign bit of the first zero of ``x`` in C order (``x`` of any layout; stops at that zero)."""
    for v in x.flat:
        if v == 0:
            return np.signbit(v)
    return False


@njit
def _finish(x, acc):
    """``acc`` -> ``finite_stats``' tuple. ``x`` (any layout, read in C order) only for the rare cases: non-finite
    values (the masked loop) and a zero min/max whose sign the keys cannot tell, i.e. min = -0.0 (a +0.0 may come
    first) or max = +0.0 (a -0.0 may come first)."""
    if acc[3] > 0:
        return finite_stats_masked(x.ravel())
    if x.size == 0:
        return np.inf, -np.inf, np.inf, 0.0, 0
    mn = _from_key(acc[0])
    mx = _from_key(acc[1])
    if acc[0] == -1 or acc[1] == 0:  # key(-0.0) = -1, key(+0.0) = 0
        z = -0.0 if _first_zero_negative(x) else 0.0
        mn = z if mn == 0 else mn
        mx = z if mx == 0 else mx
    return mn, mx, _from_key(acc[2]), max(abs(mn), abs(mx)), 0  # |x| bits are their own key


@njit
def finite_stats(x):
    """``(min, max, min|x|, max|x|, n_nonfinite)`` over the finite values of a flat float32 array in one pass;
    equal to :func:`finite_stats_masked` (a zero min/max takes the sign of the first zero of ``x``)."""
    acc = _new_acc()
    _key_stats(x.view(np.int32), acc)
    return _finish(x, acc)


@njit
def _bin_index(v, first, denom, nf, edges, n):
    """numpy's bin of ``v`` (``first <= v <= last``): ``int((v - first) / denom * n)`` then edge corrections."""
    idx = np.int64((v - first) / denom * nf)
    if idx == n:
        idx -= 1
    if v < edges[idx]:
        idx -= 1
    if idx != n - 1 and v >= edges[idx + 1]:
        idx += 1
    return idx


@njit
def _grid_positions(edges, first, last):
    """``T_j = (edges[j] - first) / (last - first) * n`` in float32, exactly as :func:`_bin_index` computes it."""
    n = edges.shape[0] - 1
    f = np.float32(first)
    denom = np.float32(np.float32(last) - f)
    nf = np.float32(n)
    out = np.empty(n + 1, np.float32)
    for j in range(n + 1):
        out[j] = (np.float32(edges[j]) - f) / denom * nf
    return out


def fast_bounds(edges, first, last) -> tuple:
    """``(lo, hi, top, a, b, c, k)`` for :func:`histogram_add`: float32 ``lo >= max_j d_j`` and
    ``hi <= 1 + min_j d_j`` with ``d_j = T_j - j`` (module doc), ``top = n - 1``, and the two bins around 0.0 on a
    grid that holds 0 inside (``k = z - 1`` for numpy's bin ``z`` of 0.0, ``a, b, c = edges[z-1], edges[z],
    edges[z+1]``: values in ``[a, c)`` take bin ``k + (v >= b)``; near-zero values, a spike in activations, sit
    on an edge of a signed grid). :data:`NO_FAST` when the grid gives no such guarantee (``edges[0] != first``,
    ``edges[n] != last``, non-finite width or edges, or ``lo >= hi``)."""
    edges = np.asarray(edges, np.float32)
    f, l = np.float32(first), np.float32(last)
    n = edges.shape[0] - 1
    with np.errstate(over="ignore", invalid="ignore"):
        width = np.float32(l - f)
    if n < 1 or not (np.isfinite(width) and width > 0 and edges[0] == f and edges[n] == l
                     and np.all(np.isfinite(edges))):
        return NO_FAST
    d = _grid_positions(edges, f, l).astype(np.float64) - np.arange(n + 1)
    lo, hi = float(d.max()), 1.0 + float(d.min())
    lo32, hi32 = np.float32(lo), np.float32(hi)
    if lo32 < lo:
        lo32 = np.nextafter(lo32, np.float32(2))
    if hi32 > hi:
        hi32 = np.nextafter(hi32, np.float32(-1))
    if not lo32 < hi32:
        return NO_FAST
    z = int(_bin_index(np.float32(0), f, width, np.float32(n), edges, n)) if f <= 0 <= l else -1
    if not 1 <= z <= n - 2:  # 0 at an end of the grid (|x| grids): t = 0 and t = n are already exact
        return lo32, hi32, n - 1, _INF, _INF, -_INF, 0
    return lo32, hi32, n - 1, edges[z - 1], edges[z], edges[z + 1], z - 1


@njit
def _codes(xc, absolute, f, l, denom, nf, n, lo, hi, top, a, b, c, k, buf):
    """``buf[j]``: the bin of ``xc[j]`` when provably exact (``max d < frac(t) < 1 + min d``, ``t = n``, or in
    the window ``[a, c)`` around 0), ``n`` outside ``[f, l]`` (or non-finite), -1 when numpy's edge corrections
    are needed. Vectorized (no gathers, no branches); the window test only runs when there is a window."""
    if a < c:
        for j in range(xc.shape[0]):
            w = abs(xc[j]) if absolute else xc[j]
            ok = (w >= f) & (w <= l)
            t = (w - f) / denom * nf
            t = t if ok else np.float32(0)
            i = np.int32(t)
            fr = t - np.float32(i)
            fast = ((fr > lo) | (i == 0)) & (fr < hi)
            i = (i if fast else np.int32(-1)) if i < n else np.int32(top)
            i = np.int32(k) + np.int32(w >= b) if (w >= a) & (w < c) else i
            buf[j] = i if ok else np.int32(n)
    else:
        for j in range(xc.shape[0]):
            w = abs(xc[j]) if absolute else xc[j]
            ok = (w >= f) & (w <= l)
            t = (w - f) / denom * nf
            t = t if ok else np.float32(0)
            i = np.int32(t)
            fr = t - np.float32(i)
            fast = ((fr > lo) | (i == 0)) & (fr < hi)
            i = (i if fast else np.int32(-1)) if i < n else np.int32(top)
            buf[j] = i if ok else np.int32(n)


@njit
def _stats_bin(x, absolute, first, last, edges, bounds, acc, counts):
    """Statistics of ``x`` into ``acc`` and its histogram (``x`` or ``|x|``) added into ``counts``, block by
    block: stats and codes vectorized, then the scatter into 4 interleaved int32 sub-histograms (so repeated
    bins, e.g. ReLU zeros, do not serialize on one counter), flushed into ``counts`` every ``FLUSH`` values."""
    n = counts.shape[0]
    f = np.float32(first)
    l = np.float32(last)
    denom = np.float32(l - f)
    nf = np.float32(n)
    lo, hi, top, a, b, c, k = bounds
    m1 = n + 1  # slot n of each sub-histogram: out of range or non-finite
    bits = x.view(np.int32)
    buf = np.empty(BLOCK, np.int32)
    sub = np.zeros(4 * m1, np.int32)
    for start in range(0, x.shape[0], FLUSH):
        stop = min(x.shape[0], start + FLUSH)
        for s in range(start, stop, BLOCK):
            xc = x[s:min(stop, s + BLOCK)]
            _key_stats(bits[s:min(stop, s + BLOCK)], acc)
            _codes(xc, absolute, f, l, denom, nf, n, lo, hi, top, a, b, c, k, buf)
            m = xc.shape[0]
            m4 = m - m % 4
            for j in range(0, m4, 4):
                for u in range(4):  # sub-histogram u takes values j + u
                    i = buf[j + u]
                    if i < 0:  # near an edge: numpy's corrected rule (rare)
                        i = _bin_index(abs(xc[j + u]) if absolute else xc[j + u], f, denom, nf, edges, n)
                    sub[u * m1 + i] += 1
            for j in range(m4, m):
                i = buf[j]
                if i < 0:
                    i = _bin_index(abs(xc[j]) if absolute else xc[j], f, denom, nf, edges, n)
                sub[i] += 1
        for k in range(4):
            for j in range(n):
                counts[j] += sub[k * m1 + j]
                sub[k * m1 + j] = 0


def _check(x, first, last, edges, counts, who: str) -> None:
    if not isinstance(x, np.ndarray) or x.dtype != np.float32 or x.ndim != 1 or not x.flags.c_contiguous:
        raise ValueError(f"{who}: expected a contiguous 1-d float32 array, got {getattr(x, 'dtype', type(x))}")
    if edges is None:
        return
    if counts.dtype != np.int64 or edges.dtype != np.float32 or edges.shape != (counts.shape[0] + 1,):
        raise ValueError(f"{who}: expected int64 counts and float32 edges with len(edges) == len(counts) + 1")
    with np.errstate(over="ignore", invalid="ignore"):
        if not np.float32(last) - np.float32(first) > 0 or not np.isfinite(np.float32(last) - np.float32(first)):
            raise ValueError(f"{who}: grid [{first}, {last}] has no finite positive float32 width")


def histogram_add(x, absolute, first, last, edges, counts) -> None:
    """Add flat float32 ``x`` (or ``|x|``) into int64 ``counts`` with numpy's uniform-bin rule (float32
    arithmetic): ``i = int((v - first) / (last - first) * n)``, corrected against ``edges``; the last bin is
    closed; non-finite and out-of-range values are skipped. (The statistics-free use of :func:`_stats_bin`.)"""
    _check(x, first, last, edges, counts, "histogram_add")
    _stats_bin(x, bool(absolute), np.float32(first), np.float32(last), edges, fast_bounds(edges, first, last),
               _new_acc(), counts)


def batch_stats(x: np.ndarray, nd: np.ndarray | None = None) -> tuple:
    """:func:`finite_stats` of a flat float32 array; ``nd`` is the array ``x`` was raveled from when ``x`` is
    not in its C order (the sign of a zero min/max then follows ``nd``'s C order)."""
    _check(x, None, None, None, None, "batch_stats")
    acc = _new_acc()
    _key_stats(x.view(np.int32), acc)
    return _finish(x if nd is None else nd, acc)


def batch_stats_histogram(x: np.ndarray, absolute: bool, first, last, edges: np.ndarray, bounds: tuple,
                          counts: np.ndarray, nd: np.ndarray | None = None) -> tuple:
    """:func:`batch_stats` of ``x`` and, in the same single pass, ``histogram_add(x, absolute, first, last,
    edges, counts)``; ``bounds = fast_bounds(edges, first, last)``."""
    _check(x, first, last, edges, counts, "batch_stats_histogram")
    acc = _new_acc()
    _stats_bin(x, bool(absolute), np.float32(first), np.float32(last), edges, bounds, acc, counts)
    return _finish(x if nd is None else nd, acc)


@njit
def regrid(counts, s, k, out):
    """``out[(j + s) // k] += counts[j]``: the old grid shifted right by ``s`` bins and merged ``k`` to 1."""
    for j in range(counts.shape[0]):
        out[(j + s) // k] += counts[j]


@njit
def _kl_one(h, pt, cum, cnz, i, nq, total):
    """KL(P || Q) for a histogram truncated to its first ``i`` bins (see :func:`kl_divergences`).

    ``cum``/``cnz``: prefix sums of the counts and of the non-zero bins (integers, exact in float64), ``pt[j] =
    h[j] / total``. Every floating-point operation is the per-bin definition's, in bin order; only values that are
    equal by construction (a level's q, bin j's p) are computed once."""
    if cum[i] == 0.0:
        return np.inf
    outliers = total - cum[i]
    last = i - 1
    p_last = h[last] + outliers
    sum_q = 0.0  # the smoothed Q's total: each non-zero bin adds its level's q, an empty last bin SMOOTH_EPS
    for lv in range(nq):  # level lv = bins [ceil(lv i / nq), ceil((lv + 1) i / nq)), i.e. j * nq // i == lv
        s, e = (lv * i + nq - 1) // nq, ((lv + 1) * i + nq - 1) // nq
        nzc = cnz[e] - cnz[s]
        if nzc > 0:
            q = (cum[e] - cum[s]) / nzc
            for _ in range(np.int64(nzc)):
                sum_q += q
    if h[last] == 0 and p_last != 0:
        sum_q += SMOOTH_EPS
    div = 0.0
    for lv in range(nq):
        s, e = (lv * i + nq - 1) // nq, ((lv + 1) * i + nq - 1) // nq
        nzc = cnz[e] - cnz[s]
        qs = (cum[e] - cum[s]) / nzc / sum_q if nzc > 0 else 0.0
        for j in range(s, min(e, last)):
            if h[j] != 0:
                div += pt[j] * np.log(pt[j] / qs)
        if e == i and p_last != 0:  # the last bin, which carries the outlier mass
            a = p_last / total
            div += a * np.log(a / (qs if h[last] != 0 else SMOOTH_EPS / sum_q))
    return div


@njit_parallel
def kl_divergences(h, start, nq, out):
    """``out[i - start]`` = KL(P_i || Q_i) for every candidate ``i`` in [start, len(h)] (TensorRT, 2017):

    P_i = h[0..i-1] with the mass of all bins >= i added to bin i-1; Q_i = h[0..i-1] merged into ``nq`` levels
    (bin j belongs to level ``j * nq // i``) and expanded back by spreading each level's count uniformly over
    its non-zero bins (zero bins stay zero). Where Q is 0 but P is not, Q gets ``SMOOTH_EPS`` counts. Both are
    normalized; ``KL = sum_{P>0} p ln(p / q)``.
    """
    n = h.shape[0]
    cum = np.zeros(n + 1)
    cnz = np.zeros(n + 1)
    for j in range(n):
        cum[j + 1] = cum[j] + h[j]
        cnz[j + 1] = cnz[j] + (1.0 if h[j] != 0 else 0.0)
    pt = h / cum[n]
    m = out.shape[0]
    for c in prange((m + 1) // 2):  # candidate c with m-1-c: equal work per iteration (cost grows with i)
        out[c] = _kl_one(h, pt, cum, cnz, start + c, nq, cum[n])
        if m - 1 - c != c:
            out[m - 1 - c] = _kl_one(h, pt, cum, cnz, start + m - 1 - c, nq, cum[n])


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
