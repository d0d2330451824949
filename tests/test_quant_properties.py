"""Hypothesis property tests for the quantization invariants (zero exactly representable, codes within
[qmin, qmax], round-trip error ≤ scale/2, per-channel = per-tensor slice by slice, requantization monotone), and
for the calibration histograms (one-pass kernels equal numpy; split batches calibrate like one big batch)."""
import itertools

import numpy as np
import reference_quant as ref
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_array_equal

from accelsim.kernels import histogram as kh
from accelsim.kernels import requant as kr
from accelsim.quant import (
    METHODS,
    QuantSpec,
    calibrate,
    dequantize,
    qlinear_matmul,
    qparams_from_range,
    quantize,
)
from accelsim.quant.histogram import np_edges

SETTINGS = settings(max_examples=60, deadline=None)

specs = st.builds(QuantSpec, bits=st.integers(2, 16), signed=st.booleans(), symmetric=st.booleans())
finite = st.floats(-1e4, 1e4, allow_nan=False, width=32)


@st.composite
def spec_and_range(draw):
    spec = draw(specs)
    a, b = sorted([draw(finite), draw(finite)])
    return spec, a, b


@SETTINGS
@given(spec_and_range())
def test_zero_exactly_representable(sr):
    spec, lo, hi = sr
    qp = qparams_from_range(lo, hi, spec)
    q = quantize(np.zeros(4, np.float32), qp)
    assert_array_equal(dequantize(q), np.zeros(4, np.float32))


@SETTINGS
@given(spec_and_range(), st.lists(st.floats(allow_nan=False, width=32), min_size=1,
                                  max_size=40))
def test_codes_within_qmin_qmax(sr, xs):
    spec, lo, hi = sr
    q = quantize(np.array(xs, np.float32), qparams_from_range(lo, hi, spec)).q.astype(np.int64)
    assert q.min() >= spec.qmin and q.max() <= spec.qmax


@SETTINGS
@given(spec_and_range(), st.lists(st.floats(0, 1), min_size=1, max_size=40))
def test_roundtrip_error_at_most_half_a_step_inside_the_range(sr, fractions):
    spec, lo, hi = sr
    qp = qparams_from_range(lo, hi, spec)
    s, z = float(qp.scale), int(qp.zero_point)
    lo_g, hi_g = (spec.qmin - z) * s, (spec.qmax - z) * s  # the representable interval of the grid
    x = np.array([lo_g + f * (hi_g - lo_g) for f in fractions], np.float32)
    x = np.clip(x, np.float32(lo_g), np.float32(hi_g))
    err = np.abs(dequantize(quantize(x, qp)).astype(np.float64) - x.astype(np.float64))
    assert np.all(err <= s / 2 * (1 + 1e-5) + 1e-7 * np.abs(x))


@SETTINGS
@given(st.integers(2, 8), st.booleans(), st.integers(1, 4), st.integers(0, 2**32 - 1))
def test_per_channel_equals_per_tensor_slice_by_slice(bits, signed, channels, seed):
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal((3, channels, 5)) * rng.uniform(0.1, 10, (1, channels, 1))).astype(np.float32)
    lo, hi = x.min(axis=(0, 2)), x.max(axis=(0, 2))
    spec_c = QuantSpec(bits, signed, signed, "channel", 1)
    qc = quantize(x, qparams_from_range(lo, hi, spec_c))
    for c in range(channels):
        qt = quantize(x[:, c], qparams_from_range(lo[c], hi[c], QuantSpec(bits, signed, signed)))
        assert_array_equal(qc.q[:, c], qt.q)
        assert_array_equal(dequantize(qc)[:, c], dequantize(qt))


@SETTINGS
@given(st.lists(st.integers(-2**31, 2**31 - 1), min_size=2, max_size=50), st.floats(1e-9, 0.99),
       st.integers(-128, 127))
def test_requantization_monotone_in_acc(accs, m, zp):
    accs = sorted(accs)
    mf = np.float32(m)
    lo, hi = np.float32(-128 - zp), np.float32(127 - zp)
    out = [kr.requant_float(a, mf, lo, hi, zp) for a in accs]
    assert all(u <= v for u, v in itertools.pairwise(out))
    qm, sh = ref.quantize_multiplier(float(m))
    outq = [kr.requant_fixed(a, qm, sh, -128, 127, zp) for a in accs]
    assert all(u <= v for u, v in itertools.pairwise(outq))


@settings(max_examples=25, deadline=None)
@given(st.integers(1, 9), st.integers(1, 70), st.integers(1, 9), st.integers(0, 2**32 - 1),
       st.sampled_from(["float", "fixed_point"]))
def test_qlinear_matmul_equals_twin_on_random_shapes(m, k, n, seed, mode):
    rng = np.random.default_rng(seed)
    a = rng.integers(0, 256, (m, k)).astype(np.uint8)
    b = rng.integers(-128, 128, (k, n)).astype(np.int8)
    sa, sb, sy = (np.float32(v) for v in rng.uniform(1e-3, 1, 3))
    za, zy = np.uint8(rng.integers(0, 256)), np.uint8(rng.integers(0, 256))
    zb = rng.integers(-128, 128, n).astype(np.int8)
    y = qlinear_matmul(a, sa, za, b, sb, zb, sy, zy, requant=mode)
    want, _, _ = ref.qlinear_matmul(a, sa, za, b, sb, zb, sy, zy, np.uint8, 0, 255, mode=mode)
    assert_array_equal(y, want)


# ------------------------------------------------------------------------------ calibration histograms
f32_any = st.floats(width=32, allow_nan=True, allow_infinity=True)
f32_finite = st.floats(-1e6, 1e6, allow_nan=False, width=32)


@SETTINGS
@given(st.lists(f32_any, min_size=1, max_size=300), st.sampled_from([2, 7, 64, 2048]), st.booleans())
def test_one_pass_stats_and_bins_equal_numpy(xs, n, absolute):
    x = np.array(xs, np.float32)
    fin = x[np.isfinite(x)]
    stats = kh.finite_stats(x)
    want = kh.finite_stats_masked(x)
    assert stats == want and [np.signbit(v) for v in stats[:4]] == [np.signbit(v) for v in want[:4]]
    assert stats[4] == x.size - fin.size
    if fin.size == 0:
        return
    v = np.abs(fin) if absolute else fin
    lo, hi = float(v.min()), float(v.max())
    with np.errstate(over="ignore"):
        if not np.isfinite(np.float32(hi) - np.float32(lo)):
            return
    f, l, edges = np_edges(lo, hi, n)
    if f == l:  # a single value whose +-0.5 rounds away in float32: no grid (numpy refuses it too)
        return
    counts = np.zeros(n, np.int64)
    kh.batch_stats_histogram(x, absolute, f, l, edges, kh.fast_bounds(edges, f, l), counts)
    try:
        want_counts = np.histogram(v, bins=n, range=(f, l))[0]
    except ValueError:  # numpy refuses grids whose float32 edges do not increase
        return
    assert_array_equal(counts, want_counts)


@SETTINGS
@given(st.lists(f32_finite, min_size=2, max_size=200), st.integers(1, 5), st.sampled_from(METHODS),
       st.booleans())
def test_calibrating_split_batches_equals_one_big_batch(xs, parts, method, symmetric):
    x = np.array(xs, np.float32)
    batches = np.array_split(x, parts)
    assert calibrate(batches, method, symmetric=symmetric) == calibrate([x], method, symmetric=symmetric)
