"""Histogram and threshold-search kernels against numpy (np.histogram itself and plain-numpy twins)."""
import numpy as np
import pytest
import reference_quant as ref
from numpy.testing import assert_allclose, assert_array_equal

from accelsim.kernels import histogram as kh
from accelsim.quant.histogram import LinearHistogram, np_edges


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
