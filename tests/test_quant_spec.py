"""QuantSpec grids, the range -> (scale, zero point) function (vs ONNX Runtime's compute_scale_zp), bias
quantization, spec-level quantize/dequantize and INT4 packing."""
import numpy as np
import pytest
from numpy.testing import assert_array_equal

from accelsim.quant import (
    QParams,
    QTensor,
    QuantSpec,
    dequantize,
    pack_int4,
    qparams_from_range,
    quantize,
    quantize_bias,
    unpack_int4,
)


@pytest.mark.parametrize("bits,signed,symmetric,narrow,qmin,qmax", [
    (8, True, True, None, -127, 127), (8, True, False, None, -128, 127), (8, False, True, None, 0, 255),
    (4, True, True, None, -8, 7), (4, False, False, None, 0, 15), (16, True, True, None, -32767, 32767),
    (8, True, True, False, -128, 127), (4, True, True, True, -7, 7), (2, True, False, None, -2, 1),
    (12, False, False, None, 0, 4095),
])
def test_spec_grid(bits, signed, symmetric, narrow, qmin, qmax):
    spec = QuantSpec(bits, signed, symmetric, narrow_range=narrow)
    assert (spec.qmin, spec.qmax) == (qmin, qmax)
    assert isinstance(spec.narrow_range, bool)
    assert spec.dtype == (np.dtype(("int" if signed else "uint") + ("8" if bits <= 8 else "16")))


def test_spec_is_frozen_and_slotted():
    spec = QuantSpec()
    with pytest.raises(AttributeError):
        spec.bits = 4
    assert not hasattr(spec, "__dict__")


def test_qparams_from_range_matches_ort_compute_scale_zp():
    pytest.importorskip("onnxruntime")
    from onnxruntime.quantization.quant_utils import compute_scale_zp

    rng = np.random.default_rng(0)
    specs = [QuantSpec(8, False), QuantSpec(8, True, True), QuantSpec(8, True), QuantSpec(8, False, True),
             QuantSpec(4, True, True), QuantSpec(4, False), QuantSpec(16, True, True), QuantSpec(16, False)]
    ranges = [(0.0, 0.0), (0.0, 1.0), (-1.0, 0.0), (1e-39, 2e-39), (-3.2, 7.9), (2.0, 5.0), (-5.0, -2.0),
              (-1e-3, 1e-3)] + [tuple(sorted(rng.standard_normal(2) * 10 ** rng.uniform(-4, 4))) for _ in range(60)]
    for lo, hi in ranges:
        for spec in specs:
            ours = qparams_from_range(lo, hi, spec)
            zp, scale = compute_scale_zp(np.float32(lo), np.float32(hi), np.int64(spec.qmin), np.int64(spec.qmax),
                                         spec.symmetric)
            assert_array_equal(ours.scale, np.float32(scale))
            assert int(ours.zero_point) == int(zp), (lo, hi, spec)


def test_qparams_zero_is_exact_and_degenerate_range():
    qp = qparams_from_range(-1.3, 2.9, QuantSpec(8, False))
    q = quantize(np.zeros(3, np.float32), qp)
    assert_array_equal(dequantize(q), np.zeros(3, np.float32))
    deg = qparams_from_range(0.0, 0.0, QuantSpec(8, False))
    assert float(deg.scale) == 1.0 and int(deg.zero_point) == 0


def test_per_channel_qparams_and_quantize():
    spec = QuantSpec(8, True, True, "channel", 1)
    lo = np.array([-1.0, -0.5, -2.0], np.float32)
    qp = qparams_from_range(lo, -lo, spec)
    assert_array_equal(qp.scale, (-lo / 127).astype(np.float32))
    x = np.array([[1.0, 0.5, -2.0], [-1.5, 0.1, 1.0]], np.float32)
    qt = quantize(x, qp)
    assert qt.q.dtype == np.int8
    assert_array_equal(qt.q, [[127, 127, -127], [-127, 25, 64]])  # -1.5 saturates to the narrow -127
    assert isinstance(qt, QTensor)
    np.testing.assert_allclose(qt.dequantize()[0], [1.0, 0.5, -2.0], rtol=1e-6)


def test_quantize_bias_matches_ort_formula():
    rng = np.random.default_rng(1)
    b = rng.standard_normal(16).astype(np.float32) * 3
    xs, ws = np.float32(0.0123), rng.uniform(1e-3, 1e-2, 16).astype(np.float32)
    want = np.rint(b / (xs * ws)).astype(np.int32)  # onnxruntime quantize_bias_static: float32 divide, round
    assert_array_equal(quantize_bias(b, xs, ws), want)
    assert quantize_bias(np.array([1e30], np.float32), 1e-3, 1e-3)[0] == np.iinfo(np.int32).max


def test_int4_pack_public():
    q = np.array([[-8, 7, 1], [0, -1, 5]], np.int8)
    packed = pack_int4(q)
    assert packed.dtype == np.uint8 and packed.size == 3
    assert_array_equal(unpack_int4(packed, 6).reshape(2, 3), q)
    u = np.array([15, 0, 9], np.uint8)
    assert_array_equal(unpack_int4(pack_int4(u), 3, signed=False), u)


def test_qparams_validation():
    from accelsim.errors import QuantError

    with pytest.raises(QuantError, match="finite and > 0"):
        QParams(np.float32(0.0), np.int32(0), QuantSpec())
    with pytest.raises(QuantError, match=r"zero_point: must lie in \[-128, 127\]"):
        QParams(np.float32(1.0), np.int32(200), QuantSpec())
    with pytest.raises(QuantError, match="channel granularity needs 1-d"):
        QParams(np.float32(1.0), np.int32(0), QuantSpec(granularity="channel", axis=0))
