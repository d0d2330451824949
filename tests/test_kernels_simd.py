"""The explicit vector steps (:mod:`accelsim.kernels.simd`): compiled code equals the plain-Python definitions
(the twins) bit for bit — int16 extremes, negative strides, int32/int64 accumulators, wrap and saturate at the
range edges with their overflow counts."""
from __future__ import annotations

import numpy as np
import pytest

from accelsim.kernels._jit import njit
from accelsim.kernels.simd import LANES, vmac, vmac_checked


@njit
def _vmac_jit(o, oo, x, xo, xt, xu, y, yo, yt, yu, n, f):
    vmac(o, oo, x, xo, xt, xu, y, yo, yt, yu, n, f)


@njit
def _vmac_checked_jit(o, ov, oo, x, xo, xt, xu, y, yo, yt, yu, n, f, wrap, sh, lo, hi):
    vmac_checked(o, ov, oo, x, xo, xt, xu, y, yo, yt, yu, n, f, wrap, sh, lo, hi)


def _operands(rng, size):
    x = rng.integers(-(1 << 15) + 1, 1 << 15, size).astype(np.int16)
    y = rng.integers(-(1 << 15) + 1, 1 << 15, size).astype(np.int16)
    x[:8], y[:8] = 32767, -32767                     # extremes: products of magnitude 2**30
    return x, y


# (xo, xt, xu, yo, yt, yu, n, f): band along a row stride, along a negative (reversed) step, lanes, empty
CASES = [(0, 40, 100, 3, 17, 200, 4, 1), (300, -1, 0, 0, 16, 0, 8, 1), (10, 33, 5, 20, 19, 7, 3, 3),
         (0, 0, 0, 0, 0, 0, 0, 2), (50, 1, 2, 60, -1, 2, 1, 4)]


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("acc", [np.int32, np.int64])
def test_vmac_equals_python(case, acc):
    rng = np.random.default_rng(len(case) + case[6])
    x, y = _operands(rng, 600)
    xo, xt, xu, yo, yt, yu, n, f = case
    small = acc == np.int32
    if small:                                        # keep the int32 sums exact: 12 products of < 2**30 / 16
        x, y = (x // 4).astype(np.int16), (y // 4).astype(np.int16)
    o0 = rng.integers(-(1 << 20), 1 << 20, 64).astype(acc)
    want, got = o0.copy(), o0.copy()
    vmac(want, 7, x, xo, xt, xu, y, yo, yt, yu, n, f)
    _vmac_jit(got, 7, x, xo, xt, xu, y, yo, yt, yu, n, f)
    np.testing.assert_array_equal(got, want)
    ref = o0.astype(np.int64)
    for t in range(n):
        for u in range(f):
            a, b = xo + t * xt + u * xu, yo + t * yt + u * yu
            ref[7:7 + LANES] += x[a:a + LANES].astype(np.int64) * y[b:b + LANES]
    np.testing.assert_array_equal(got.astype(np.int64), ref)


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("acc_bits,wrap", [(16, True), (16, False), (31, True), (40, False), (64, True)])
def test_vmac_checked_equals_python(case, acc_bits, wrap):
    rng = np.random.default_rng(acc_bits + case[6])
    x, y = _operands(rng, 600)
    lo, hi = -(1 << (acc_bits - 1)), (1 << (acc_bits - 1)) - 1
    o0 = np.clip(rng.integers(-(1 << 40), 1 << 40, 64), lo, hi).astype(np.int64)
    o0[7:9] = lo, hi                                 # start at the range edges
    ov0 = rng.integers(0, 5, 64).astype(np.int64)
    want, wov = o0.copy(), ov0.copy()
    got, gov = o0.copy(), ov0.copy()
    xo, xt, xu, yo, yt, yu, n, f = case
    vmac_checked(want, wov, 7, x, xo, xt, xu, y, yo, yt, yu, n, f, wrap, 64 - acc_bits, lo, hi)
    _vmac_checked_jit(got, gov, 7, x, xo, xt, xu, y, yo, yt, yu, n, f, wrap, 64 - acc_bits, lo, hi)
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(gov, wov)
    assert n * f == 0 or acc_bits == 64 or wov.sum() > ov0.sum()     # the edges do overflow
