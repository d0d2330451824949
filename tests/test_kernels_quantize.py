"""Quantize/dequantize/INT4-packing/requantization kernels against their plain-numpy twins."""
import math

import numpy as np
import pytest
import reference_quant as ref
from numpy.testing import assert_array_equal

from accelsim.kernels import quantize as kq
from accelsim.kernels import requant as kr


def _q3(x, scale, zp, qmin, qmax, dtype):
    out = np.empty(x.shape, dtype=dtype)
    kq.quantize_3d(x, scale, zp, qmin, qmax, out)
    return out


@pytest.mark.parametrize("dtype,qmin,qmax", [(np.uint8, 0, 255), (np.int8, -128, 127), (np.int8, -8, 7),
                                             (np.int16, -32768, 32767)])
def test_quantize_3d_matches_twin(dtype, qmin, qmax):
    rng = np.random.default_rng(0)
    x = (rng.standard_normal((3, 4, 50)) * 40).astype(np.float32)
    x[0, 0, :6] = [np.inf, -np.inf, 0.5, 1.5, -2.5, 3e38]  # saturation and exact ties
    scale = rng.uniform(0.05, 2, 4).astype(np.float32)
    scale[0] = 1.0
    zp = rng.integers(qmin, qmax + 1, 4).astype(np.int64)
    got = _q3(x, scale, zp, qmin, qmax, dtype)
    want = ref.quantize_linear(x, scale, zp, 1, qmin, qmax, dtype)
    assert_array_equal(got, want)


def test_quantize_uses_division_not_reciprocal():
    # 0.3 / 0.1 in float32 is 3.0000002 (-> 3); 0.3 * float32(1/0.1) differs for some pairs; check many pairs
    rng = np.random.default_rng(1)
    x = rng.uniform(-100, 100, (1, 1, 20000)).astype(np.float32)
    s = np.array([0.1], np.float32)
    got = _q3(x, s, np.zeros(1, np.int64), -32768, 32767, np.int16)
    assert_array_equal(got.reshape(-1), np.rint(x.reshape(-1) / s[0]).astype(np.int16))


def test_dequantize_3d_matches_twin():
    rng = np.random.default_rng(2)
    q = rng.integers(0, 256, (2, 3, 17)).astype(np.uint8)
    scale = rng.uniform(0.01, 1, 3).astype(np.float32)
    zp = rng.integers(0, 256, 3).astype(np.int64)
    out = np.empty(q.shape, np.float32)
    kq.dequantize_3d(q, scale, zp, out)
    assert_array_equal(out, ref.dequantize_linear(q, scale, zp, 1))  # exact: one float32 multiply


@pytest.mark.parametrize("n", [0, 1, 2, 7, 64])
@pytest.mark.parametrize("signed", [True, False])
def test_int4_pack_unpack_twin_and_roundtrip(n, signed):
    rng = np.random.default_rng(n)
    q = rng.integers(-8, 8, n).astype(np.int8) if signed else rng.integers(0, 16, n).astype(np.uint8)
    packed = np.empty((n + 1) // 2, np.uint8)
    kq.pack_int4(q, packed)
    assert_array_equal(packed, ref.pack_int4(q))
    out = np.empty(n, q.dtype)
    kq.unpack_int4(packed, n, signed, out)
    assert_array_equal(out, q)
    assert_array_equal(out, ref.unpack_int4(packed, n, signed))


def test_int4_packing_matches_onnx():
    from onnx import TensorProto, helper

    q = np.array([-8, 7, -1, 0, 3, -5, 6], np.int8)
    packed = np.empty(4, np.uint8)
    kq.pack_int4(q, packed)
    want = helper.make_tensor("t", TensorProto.INT4, [q.size], q.tolist()).int32_data  # onnx's packed bytes
    assert_array_equal(packed, np.array(want, np.uint8))


def test_finite_stats():
    x = np.array([1.0, -3.0, np.nan, 0.25, np.inf, -np.inf, 2.0], np.float32)
    assert kq.finite_count(x) == 4
    from accelsim.kernels import histogram as kh
    mn, mx, amn, amx, bad = kh.finite_stats(x)
    assert (mn, mx, amn, amx, bad) == (-3.0, 2.0, 0.25, 3.0, 3)


@pytest.mark.parametrize("m", [0.0, 1e-12, 2.0**-40, 0.0007, 0.25, 0.5, 0.999999999, 1.0, 1.5, 3.75e4])
def test_quantize_multiplier_matches_twin(m):
    qm, sh = kr.quantize_multiplier(np.array([m]))
    assert (int(qm[0]), int(sh[0])) == ref.quantize_multiplier(m)
    if qm[0]:
        assert 2**30 <= qm[0] < 2**31
        assert math.isclose(qm[0] * 2.0 ** (int(sh[0]) - 31), m, rel_tol=2**-30)


def test_fixed_point_primitives_known_values():
    # gemmlowp definitions: SRDHM(a, b) = round(a*b / 2**31) (ties away from zero), saturating INT32_MIN^2
    assert kr.srdhm(kr.INT32_MIN, kr.INT32_MIN) == kr.INT32_MAX
    assert kr.srdhm(1 << 30, 1 << 30) == 1 << 29
    assert kr.srdhm(-(1 << 30), 1 << 30) == -(1 << 29)
    # nudge 2**30 (positive) / 1 - 2**30 (negative), then C++ truncation: 1.5 -> 2 but -1.5 -> -1
    assert kr.srdhm(3, 1 << 30) == 2 and kr.srdhm(-3, 1 << 30) == -1
    assert kr.srdhm(-5, 1 << 30) == -2 and kr.srdhm(-7, 1 << 30) == -3  # -2.5 -> -2, -3.5 -> -3
    # RoundingDivideByPOT: round to nearest, ties away from zero
    assert [kr.rounding_divide_by_pot(v, 1) for v in (5, -5, 4, -4, 3, -3)] == [3, -3, 2, -2, 2, -2]
    assert kr.rounding_divide_by_pot(-7, 2) == -2 and kr.rounding_divide_by_pot(7, 2) == 2
    assert kr.wrap_int32(2**31) == -(2**31) and kr.wrap_int32(-(2**31) - 1) == 2**31 - 1


def test_requant_scalar_paths_match_twin():
    rng = np.random.default_rng(3)
    acc = np.concatenate([rng.integers(-2**31, 2**31, 400), [0, 1, -1, 2**24 + 1, -(2**24) - 3, 2**31 - 1, -2**31]])
    for m in (0.000123, 0.0371, 0.5, 0.99):
        mf = np.float32(m)
        got = np.array([kr.requant_float(int(a), mf, np.float32(-128 - 5), np.float32(127 - 5), 5) for a in acc])
        assert_array_equal(got, ref.requant_float(acc, mf, -128, 127, 5))
        qm, sh = ref.quantize_multiplier(m)
        got = np.array([kr.requant_fixed(int(a), qm, sh, 0, 255, 17) for a in acc])
        assert_array_equal(got, ref.requant_fixed(acc, qm, sh, 0, 255, 17))


def naive_energies(ref, test):
    """Twin of kernels.stats.energies: float64 sums of ref² and (test − ref)²."""
    r = np.asarray(ref, np.float64)
    return float(np.sum(r * r)), float(np.sum((np.asarray(test, np.float64) - r) ** 2))


@pytest.mark.parametrize("n", [0, 1, 7, 65536, 65537, 300_001])
def test_energies_match_twin(n):
    from accelsim.kernels.stats import energies
    rng = np.random.default_rng(n)
    ref = (rng.standard_normal(n) * 3).astype(np.float32)
    test = ref + rng.standard_normal(n).astype(np.float32) * 0.01
    got, want = energies(ref, test), naive_energies(ref, test)
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=0)
