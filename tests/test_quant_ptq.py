"""Single-layer PTQ end to end: calibrate, quantize per channel, run the integer kernel, compare with float."""
import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from accelsim.errors import QuantError
from accelsim.quant import METHODS, ptq_conv, ptq_linear, sqnr_db


def _linear_case(seed=0):
    rng = np.random.default_rng(seed)
    calib = [rng.standard_normal((32, 64)).astype(np.float32) for _ in range(4)]
    w = (rng.standard_normal((64, 16)) * rng.uniform(0.01, 0.3, 16)).astype(np.float32)  # channel scales differ
    b = rng.standard_normal(16).astype(np.float32) * 0.1
    return calib, w, b


def test_sqnr_definition():
    assert sqnr_db([1.0, -1.0], [1.0, -1.0]) == float("inf")
    assert_allclose(sqnr_db([3.0, 4.0], [3.0, 4.5]), 10 * np.log10(25 / 0.25))


@pytest.mark.parametrize("method", METHODS)
def test_ptq_linear_int8_is_accurate_for_every_method(method):
    calib, w, b = _linear_case()
    res = ptq_linear(calib, w, b, method=method, act_signed=True)
    floor = 10 if method == "entropy" else 30  # entropy clips hard by design (see thresholds doc)
    assert res.sqnr_db > floor
    assert res.y_int.dtype == np.int8 and res.overflow.events == 0
    assert res.w_params.scale.shape == (16,)
    assert_allclose(res.y_float, np.concatenate(calib) @ w + b, rtol=1e-5, atol=1e-5)


def test_ptq_linear_int4_and_fixed_point():
    calib, w, b = _linear_case(1)
    r8 = ptq_linear(calib, w, b)
    r4 = ptq_linear(calib, w, b, act_bits=4, w_bits=4, method="mse")
    assert 8 < r4.sqnr_db < r8.sqnr_db - 10  # INT4 costs about 6 dB per bit
    assert r4.y_int.max() <= 15 and r4.y_int.dtype == np.uint8
    rf = ptq_linear(calib, w, b, requant="fixed_point")
    assert abs(rf.sqnr_db - r8.sqnr_db) < 0.5
    diff = np.abs(rf.y_int.astype(int) - r8.y_int.astype(int))
    assert diff.max() <= 1  # float vs integer-only requantization differ by at most one code


def test_ptq_per_channel_beats_a_single_weight_scale():
    calib, w, _b = _linear_case(2)
    res = ptq_linear(calib, w, None)
    # reference: per-tensor weights with the same activation params
    ws = np.abs(w).max() / 127
    wq = np.clip(np.rint(w / ws), -127, 127)
    x = np.concatenate(calib)
    y_pt = (np.rint(x / res.x_params.scale) + res.x_params.zero_point - res.x_params.zero_point) \
        * res.x_params.scale @ (wq * ws)
    assert res.sqnr_db > sqnr_db(res.y_float, y_pt)


@pytest.mark.parametrize("group,pads,strides,dil", [(1, (1, 1, 1, 1), (1, 1), (1, 1)), (8, (1, 1, 1, 1), (2, 2), (1, 1)),
                                                     (2, (2, 2, 2, 2), (1, 1), (2, 2))])
def test_ptq_conv(group, pads, strides, dil):
    rng = np.random.default_rng(3)
    calib = [np.maximum(rng.standard_normal((2, 8, 10, 10)), 0).astype(np.float32) for _ in range(2)]
    w = rng.standard_normal((8, 8 // group, 3, 3)).astype(np.float32) * 0.2
    b = rng.standard_normal(8).astype(np.float32) * 0.1
    res = ptq_conv(calib, w, b, strides=strides, pads=pads, dilations=dil, group=group)
    assert res.sqnr_db > 28
    assert res.y_int.shape == res.y_float.shape
    assert res.bias_int32.dtype == np.int32 and res.x_params.spec.signed is False


def test_ptq_reports_accumulator_overflow():
    calib, w, b = _linear_case(4)
    res = ptq_linear(calib, w * 50, b, acc_bits=16, overflow="saturate")
    assert res.overflow.events > 0 and res.overflow.outputs > 0
    assert res.sqnr_db < ptq_linear(calib, w * 50, b).sqnr_db


def test_ptq_input_errors():
    calib, w, b = _linear_case()
    with pytest.raises(QuantError, match="calib: expected a non-empty list"):
        ptq_linear(calib[0], w)
    with pytest.raises(QuantError, match=r"w: expected \(K, N\)"):
        ptq_linear(calib, w[0])
    with pytest.raises(QuantError, match=r"w: expected \(Cout, Cin/group, R, S\)"):
        ptq_conv([np.zeros((1, 2, 4, 4), np.float32)], w)
    y = ptq_linear(calib, w, b, evaluate=calib[0]).y_int
    assert_array_equal(y.shape, (32, 16))
