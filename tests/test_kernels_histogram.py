"""Histogram and threshold-search kernels against numpy (np.histogram itself and plain-numpy twins)."""
import numpy as np
import pytest
import reference_quant as ref
from numpy.testing import assert_allclose, assert_array_equal

from accelsim.errors import QuantError
from accelsim.kernels import histogram as kh
from accelsim.kernels._jit import njit
from accelsim.quant.histogram import LinearHistogram, np_edges


# ------------------------------------------------------------------------------------------ plain-numpy twins
def np_stats(x):
    """(min, max, min|x|, max|x|, n_nonfinite) of the finite values; a zero min/max takes the sign of the first
    zero (a sequential min/max keeps the first of equal values)."""
    x = np.asarray(x, np.float32).reshape(-1)
    fin = x[np.isfinite(x)]
    bad = int(x.size - fin.size)
    if fin.size == 0:
        return np.inf, -np.inf, np.inf, 0.0, bad
    mn, mx = float(fin.min()), float(fin.max())
    first_zero = fin[np.flatnonzero(fin == 0)[:1]]
    if first_zero.size:
        z = float(first_zero[0])  # keeps the sign
        mn, mx = (z if mn == 0 else mn), (z if mx == 0 else mx)
    a = np.abs(fin)
    return mn, mx, float(a.min()), float(a.max()), bad


def np_hist(x, absolute, first, last, n):
    """``np.histogram`` of the finite ``x`` (or ``|x|``) on ``n`` bins over ``[first, last]`` (float32 edges)."""
    x = np.asarray(x, np.float32).reshape(-1)
    v = x[np.isfinite(x)]
    v = np.abs(v) if absolute else v
    return np.histogram(v, bins=n, range=(np.float32(first), np.float32(last)))[0]


def np_rule_hist(x, absolute, first, last, n):
    """numpy's uniform-bin computation itself (``numpy/lib/_histograms_impl.py``), without its refusal of grids
    whose float32 edges do not increase: ``i = int((v - f) / (l - f) * n)``, then the edge corrections."""
    f, l, edges = np_edges(first, last, n)
    v = np.asarray(x, np.float32).reshape(-1)
    v = np.abs(v) if absolute else v
    v = v[(v >= f) & (v <= l)]
    idx = ((v - f) / (l - f) * n).astype(np.intp)
    idx[idx == n] -= 1
    idx[v < edges[idx]] -= 1
    idx[(v >= edges[idx + 1]) & (idx != n - 1)] += 1
    return np.bincount(idx, minlength=n)


def same_stats(got, want):
    """Equal values, equal count, and equal signs (so -0.0 vs 0.0 is a difference)."""
    assert tuple(got[:5]) == tuple(want[:5])
    assert [np.signbit(v) for v in got[:4]] == [np.signbit(v) for v in want[:4]]


def fused(x, absolute, first, last, n):
    """The one-pass kernel: (stats, counts)."""
    f, l, edges = np_edges(first, last, n)
    counts = np.zeros(n, np.int64)
    stats = kh.batch_stats_histogram(x, absolute, f, l, edges, kh.fast_bounds(edges, f, l), counts)
    return stats, counts


def _data(kind, rng, size):
    if kind == "gauss":
        return rng.standard_normal(size).astype(np.float32)
    if kind == "relu":
        return np.maximum(rng.standard_normal(size), 0).astype(np.float32)
    if kind == "heavy":  # GELU-like: a few huge outliers
        return (rng.standard_t(1.5, size) * 0.3).astype(np.float32)
    if kind == "grid":  # many values exactly on bin edges of a power-of-two grid
        return (rng.integers(-512, 513, size) / 256).astype(np.float32)
    return (rng.uniform(-1, 1, size) * 10 ** rng.uniform(-30, 30)).astype(np.float32)


def _hist(x, first, last, n, absolute=False):
    f, l, edges = np_edges(first, last, n)
    counts = np.zeros(n, np.int64)
    kh.histogram_add(x, absolute, f, l, edges, counts)
    return counts, edges


@pytest.mark.parametrize("seed", range(4))
def test_histogram_add_equals_np_histogram(seed):
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal(20000) * 10 ** rng.uniform(-3, 3)).astype(np.float32)
    for n in (7, 128, 2048):
        a = np.abs(x)
        counts, edges = _hist(x, a.min(), a.max(), n, absolute=True)  # ORT's |x| grid (autodetected range)
        want, want_edges = np.histogram(a, bins=n)
        assert_array_equal(counts, want)
        assert_array_equal(edges, want_edges)
        t = np.float32(a.max())
        counts, _ = _hist(x, -t, t, n)  # ORT's signed grid
        assert_array_equal(counts, np.histogram(x, n, range=(-t, t))[0])


def test_histogram_add_edge_values_and_out_of_range():
    n = 10
    _, _, edges = np_edges(0.0, 1.0, n)
    x = np.concatenate([edges, np.nextafter(edges, np.float32(2)), np.nextafter(edges, np.float32(-1)),
                        [np.nan, np.inf, -np.inf, 2.0, -0.5]]).astype(np.float32)
    counts, _ = _hist(x, 0.0, 1.0, n)
    assert_array_equal(counts, np.histogram(x[np.isfinite(x)], bins=n, range=(np.float32(0), np.float32(1)))[0])


def test_histogram_degenerate_range_like_numpy():
    x = np.full(5, 3.0, np.float32)
    counts, edges = _hist(x, 3.0, 3.0, 4)
    want, want_edges = np.histogram(x, bins=4)
    assert_array_equal(counts, want)
    assert_array_equal(edges, want_edges)


def test_regrid_is_an_exact_merge():
    counts = np.arange(12, dtype=np.int64)
    out = np.zeros(12, np.int64)
    kh.regrid(counts, 3, 2, out)
    want = np.zeros(12, np.int64)
    for j, c in enumerate(counts):
        want[(j + 3) // 2] += c
    assert_array_equal(out, want)
    assert out.sum() == counts.sum()


def test_linear_histogram_growth_keeps_counts_and_matches_fixed_grid():
    rng = np.random.default_rng(0)
    x1 = rng.uniform(0, 1, 1000).astype(np.float32)
    x2 = rng.uniform(0, 3.5, 1000).astype(np.float32)
    grown = LinearHistogram(64, "abs0")
    for x in (x1, x2):
        grown.add(x, kh.finite_stats(x))
    assert grown.total() == 2000 and grown.first == 0
    # the grown grid is the first grid merged k = 4 times: the same as a fixed grid of that range
    assert np.isclose(float(grown.last), 4 * float(x1.max()), rtol=1e-6)
    fixed = LinearHistogram(64, "abs0", grid=(0.0, float(grown.last)))
    for x in (x1, x2):
        fixed.add(x, kh.finite_stats(x))
    assert np.abs(fixed.counts - grown.counts).sum() <= 4  # only values within float32 ulps of an edge differ


@pytest.mark.parametrize("mode", ["abs", "signed"])
def test_linear_histogram_growth_in_both_directions(mode):
    rng = np.random.default_rng(1)
    h = LinearHistogram(33, mode)
    batches = [rng.uniform(0.5, 1, 300), rng.uniform(-4, 0.1, 300), rng.uniform(-0.2, 9, 300)]
    for b in batches:
        b = b.astype(np.float32)
        h.add(b, kh.finite_stats(b))
    assert h.total() == 900 and h.counts.size == 33
    allx = np.abs(np.concatenate(batches)) if mode == "abs" else np.concatenate(batches)
    assert h.first <= allx.min() and h.last >= allx.max()
    if mode == "signed":
        assert h.first == -h.last


def test_kl_divergences_match_twin():
    rng = np.random.default_rng(2)
    x = np.abs(rng.standard_normal(50000)).astype(np.float32)
    h, _ = np.histogram(x, 512, range=(0, x.max()))
    h[300:310] = 0  # empty bins inside the window and at window ends
    out = np.empty(512 - 64 + 1)
    kh.kl_divergences(h.astype(np.int64), 64, 64, out)
    assert_allclose(out, ref.kl_divergences(h, 64, 64), rtol=1e-9, atol=1e-12)


@njit
def kl_direct(h, start, nq, out):
    """TensorRT's KL(P_i || Q_i) straight from the per-bin definition (level of bin j = j * nq // i), float64 sums
    in bin order: the previous kernel, kept as the bit-exact reference of the prefix-sum one."""
    for c in range(out.shape[0]):
        i = start + c
        outliers = 0.0
        for j in range(i, h.shape[0]):
            outliers += h[j]
        levels = np.zeros(nq)
        nonzero = np.zeros(nq)
        total_p = outliers
        total_q = 0.0
        for j in range(i):
            levels[j * nq // i] += h[j]
            nonzero[j * nq // i] += 1.0 if h[j] != 0 else 0.0
            total_p += h[j]
            total_q += h[j]
        if total_q == 0.0:
            out[c] = np.inf
            continue
        sum_q = 0.0
        for j in range(i):
            q = levels[j * nq // i] / nonzero[j * nq // i] if h[j] != 0 else 0.0
            p = h[j] + (outliers if j == i - 1 else 0.0)
            sum_q += q if (q > 0 or p == 0) else kh.SMOOTH_EPS
        div = 0.0
        for j in range(i):
            q = levels[j * nq // i] / nonzero[j * nq // i] if h[j] != 0 else 0.0
            p = h[j] + (outliers if j == i - 1 else 0.0)
            if p != 0:
                q = q if q != 0 else kh.SMOOTH_EPS
                div += (p / total_p) * np.log((p / total_p) / (q / sum_q))
        out[c] = div


@pytest.mark.parametrize("seed", range(6))
def test_kl_divergences_equal_the_per_bin_definition_bit_for_bit(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.choice([300, 2048]))
    x = np.abs(rng.standard_t(rng.uniform(1, 8), 50000))
    h = np.histogram(x, n, range=(0, x.max()))[0].astype(np.int64)
    if seed % 2:
        h[rng.integers(0, n, n // 4)] = 0  # empty bins inside levels
    if seed % 3 == 0:
        h[n // 2:] = 0
        h[-2] = 3  # an empty last bin behind outliers for some candidates
    for nq, start in [(128, 128), (128, 256), (7, 7)]:
        got, want = np.empty(n - start + 1), np.empty(n - start + 1)
        kh.kl_divergences(h, start, nq, got)
        kl_direct(h, start, nq, want)
        assert_array_equal(got, want)


def test_code_entropies_and_mse_match_twins():
    rng = np.random.default_rng(3)
    x = np.abs(rng.laplace(size=30000)).astype(np.float32)
    h, edges = np.histogram(x, 256, range=(0, x.max()))
    h = h.astype(np.int64)
    w = float(edges[1] - edges[0])
    th = np.arange(16, 257) * w
    out = np.empty(th.size)
    kh.code_entropies(h, 0.0, w, th, 16, out)
    assert_allclose(out, ref.code_entropies(h, 0.0, w, th, 16), rtol=1e-9)
    centers = (np.arange(256) + 0.5) * w
    out2 = np.empty(th.size)
    kh.mse_errors(h, centers, th, 16, out2)
    assert_allclose(out2, ref.mse_errors(h, centers, th, 16), rtol=1e-9)


# ------------------------------------------------------------------- one-pass kernels vs the numpy twins
KINDS = ["gauss", "relu", "heavy", "grid", "scaled"]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("size", [1, 3, 4099, 8192 * 2 + 5])
def test_fused_stats_and_histogram_equal_numpy_twins(kind, size):
    rng = np.random.default_rng(size)
    x = _data(kind, rng, size)
    same_stats(kh.finite_stats(x), np_stats(x))
    same_stats(kh.finite_stats(x), kh.finite_stats_masked(x))
    a = np.abs(x)
    for n in (2, 7, 128, 2048):
        for absolute, lo, hi in [(True, 0.0, a.max()), (True, a.min(), a.max()), (False, -a.max(), a.max()),
                                 (False, *np.quantile(x, [0.2, 0.7]))]:  # last: values outside the grid
            if np.float32(lo) == np.float32(hi):
                continue
            stats, counts = fused(x, absolute, lo, hi, n)
            same_stats(stats, np_stats(x))
            assert_array_equal(counts, np_hist(x, absolute, lo, hi, n))
            assert_array_equal(counts, np_rule_hist(x, absolute, lo, hi, n))


def test_nonfinite_values_are_counted_and_skipped():
    rng = np.random.default_rng(0)
    x = _data("gauss", rng, 20000)
    x[rng.integers(0, x.size, 50)] = np.nan
    x[:3] = [np.inf, -np.inf, np.nan]
    stats, counts = fused(x, True, 0.0, 4.0, 2048)
    same_stats(stats, np_stats(x))
    assert stats[4] == np.count_nonzero(~np.isfinite(x))
    assert_array_equal(counts, np_hist(x, True, 0.0, 4.0, 2048))
    stats, counts = fused(np.full(9, np.nan, np.float32), False, -1.0, 1.0, 16)
    assert stats == (np.inf, -np.inf, np.inf, 0.0, 9) and counts.sum() == 0


def test_values_on_and_next_to_every_edge():
    for first, last, n in [(0.0, 1.0, 10), (-3.0, 5.0, 2048), (0.0, 6.0, 2048), (0.1, 0.7, 333), (1e-3, 7e4, 64)]:
        f, l, edges = np_edges(first, last, n)
        x = np.concatenate([edges, np.nextafter(edges, np.float32(np.inf)), np.nextafter(edges, np.float32(-np.inf)),
                            -edges]).astype(np.float32)
        for absolute in (False, True):
            _, counts = fused(x, absolute, first, last, n)
            assert_array_equal(counts, np_hist(x, absolute, first, last, n))


def test_all_zero_single_value_and_signed_zeros():
    z = np.zeros(100, np.float32)
    same_stats(kh.finite_stats(z), (0.0, 0.0, 0.0, 0.0, 0))
    _, counts = fused(z, True, 0.0, 0.0, 4)  # degenerate range: numpy's +-0.5
    assert_array_equal(counts, np.histogram(z, bins=4)[0])
    one = np.array([2.5], np.float32)
    same_stats(kh.finite_stats(one), np_stats(one))
    _, counts = fused(one, False, 2.5, 2.5, 5)
    assert_array_equal(counts, np.histogram(one, bins=5)[0])
    for zs in ([0.0, -0.0, 1.0], [-0.0, 0.0, 1.0], [2.0, -0.0], [-1.0, 0.0, -0.0], [-1.0, -0.0, 0.0], [-0.0, -0.0]):
        x = np.array(zs, np.float32)
        same_stats(kh.finite_stats(x), np_stats(x))
        same_stats(kh.finite_stats(x), kh.finite_stats_masked(x))
    # a non-C-ordered view: the sign follows the array's C order, not memory order
    m = np.ones((3, 4), np.float32)
    m[0, 1], m[1, 0] = -0.0, 0.0
    t = m.T  # C order of t: t[0, 1] = m[1, 0] = +0.0 comes first
    flat = t.ravel(order="K")
    same_stats(kh.batch_stats(flat, t), np_stats(t))
    same_stats(kh.batch_stats(np.ascontiguousarray(flat)), np_stats(m))


def test_huge_and_tiny_ranges():
    rng = np.random.default_rng(1)
    big = (rng.uniform(0, 1, 5000) * 3.4e38).astype(np.float32)
    _, counts = fused(big, True, 0.0, float(big.max()), 2048)
    assert_array_equal(counts, np_hist(big, True, 0.0, big.max(), 2048))
    signed = (rng.uniform(-1, 1, 5000) * 1.7e38).astype(np.float32)
    a = float(np.abs(signed).max())
    _, counts = fused(signed, False, -a, a, 2048)
    assert_array_equal(counts, np_hist(signed, False, -a, a, 2048))
    tiny = (rng.standard_normal(5000) * 1e-42).astype(np.float32)  # subnormals
    a = float(np.abs(tiny).max())
    _, counts = fused(tiny, True, 0.0, a, 64)
    assert_array_equal(counts, np_hist(tiny, True, 0.0, a, 64))
    offset = (100.0 + rng.uniform(0, 1e-3, 5000)).astype(np.float32)  # bins narrower than a float32 ulp
    _, counts = fused(offset, True, offset.min(), offset.max(), 2048)
    with pytest.raises(ValueError, match="Too many bins"):  # np.histogram refuses; its rule still defines them
        np_hist(offset, True, offset.min(), offset.max(), 2048)
    assert_array_equal(counts, np_rule_hist(offset, True, offset.min(), offset.max(), 2048))
    h = LinearHistogram(2048, "signed")  # width 2*3e38 overflows float32: refused, as np.histogram does
    x = np.array([-3e38, 3e38, 1.0], np.float32)
    with pytest.raises(QuantError, match="too wide"):
        h.add(x, kh.finite_stats(x))
    assert h.first is None and h.total() == 0


def test_fast_bounds_are_conservative():
    for first, last, n in [(0.0, 5.35, 2048), (-2.0, 2.0, 2048), (0.0, 1.0, 7), (100.0, 100.001, 2048)]:
        f, l, edges = np_edges(first, last, n)
        lo, hi, top, a, b, c, k = kh.fast_bounds(edges, f, l)
        t = kh._grid_positions(edges, f, l).astype(np.float64)
        d = t - np.arange(n + 1)
        if top >= 0:
            assert 0 <= d.max() <= lo < hi <= 1 + d.min() and top == n - 1
            if first < 0 < last:  # the window around 0: bins k, k + 1 and their edges
                z = np_rule_hist(np.zeros(1, np.float32), False, first, last, n).argmax()
                assert (a, b, c, k) == (edges[z - 1], edges[z], edges[z + 1], z - 1)
            else:
                assert a > c
        else:
            assert (lo, hi, top, a, b, c, k) == kh.NO_FAST
    assert kh.fast_bounds(np.linspace(0, 1, 5, dtype=np.float32), 0.0, 2.0) == kh.NO_FAST  # edges[n] != last
