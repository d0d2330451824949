"""Bad input raises QuantError (a ValueError) with a message naming the argument and the problem."""
import numpy as np
import pytest

from accelsim.errors import QuantError
from accelsim.quant import (
    QuantSpec,
    dequantize_linear,
    qlinear_conv,
    qlinear_matmul,
    qparams_from_range,
    quantize_linear,
    unpack_int4,
)

A = np.zeros((2, 3), np.uint8)
B = np.zeros((3, 4), np.int8)
MM = {"a": A, "a_scale": 0.1, "a_zp": np.uint8(0), "b": B, "b_scale": 0.1, "b_zp": np.int8(0), "y_scale": 0.2, "y_zp": np.uint8(0)}
X = np.zeros((1, 2, 4, 4), np.uint8)
W = np.zeros((4, 2, 3, 3), np.int8)
CV = {"x": X, "x_scale": 0.1, "x_zp": np.uint8(0), "w": W, "w_scale": 0.1, "w_zp": np.int8(0), "y_scale": 0.2, "y_zp": np.uint8(0)}


@pytest.mark.parametrize("change,match", [
    ({"a": A.astype(np.float32)}, "a: expected dtype uint8 or int8, got float32"),
    ({"b": B.astype(np.int32)}, "b: expected dtype uint8 or int8, got int32"),
    ({"a": [[1, 2, 3]]}, "a: expected a numpy array"),
    ({"b": np.zeros((4, 4), np.int8)}, r"inner dimensions differ"),
    ({"b": np.zeros((3,), np.int8)}, r"a must be \(\.\.\., M, K\) and b \(K, N\)"),
    ({"a_scale": 0.0}, r"a_scale: scales must be finite and > 0, got \[0.0\]"),
    ({"b_scale": -1.0}, r"b_scale: scales must be finite and > 0"),
    ({"y_scale": float("nan")}, r"y_scale: scales must be finite and > 0, got \[nan\]"),
    ({"b_scale": np.ones(3, np.float32)}, r"b_scale: expected a scalar or a 1-d array of 4, got shape \(3,\)"),
    ({"a_scale": np.ones(2, np.float32)}, r"a_scale: expected a scalar, got shape \(2,\)"),
    ({"a_zp": np.int8(0)}, r"a_zp: dtype must match its tensor \(uint8\), got int8"),
    ({"b_zp": np.zeros(5, np.int8)}, r"b_zp: expected a scalar or a 1-d array of 4"),
    ({"y_zp": np.int32(0)}, "y_zp: expected dtype uint8 or int8, got int32"),
])
def test_qlinear_matmul_errors(change, match):
    with pytest.raises(QuantError, match=match):
        qlinear_matmul(**{**MM, **change})


def test_bits_and_ranges_errors():
    with pytest.raises(QuantError, match=r"a_bits: expected an int in \[2, 8\]"):
        qlinear_matmul(**MM, a_bits=9)
    with pytest.raises(QuantError, match=r"a: 4-bit values must lie in \[0, 15\], got range \[200, 200\]"):
        qlinear_matmul(**{**MM, "a": np.full((2, 3), 200, np.uint8)}, a_bits=4)
    with pytest.raises(QuantError, match=r"a_zp: zero point\(s\) must lie in \[0, 15\] for 4-bit values, got \[20\]"):
        qlinear_matmul(**{**MM, "a_zp": np.uint8(20)}, a_bits=4)
    with pytest.raises(QuantError, match=r"acc_bits: expected an int in \[8, 64\]"):
        qlinear_matmul(**MM, acc_bits=4)
    with pytest.raises(QuantError, match="overflow: expected 'wrap' or 'saturate'"):
        qlinear_matmul(**MM, overflow="clip")
    with pytest.raises(QuantError, match="requant: expected 'float' or 'fixed_point'"):
        qlinear_matmul(**MM, requant="double")
    with pytest.raises(QuantError, match=r"multiplier .* >= 2\*\*30"):
        qlinear_matmul(**{**MM, "a_scale": 1e6, "b_scale": 1e6, "y_scale": 1e-3}, requant="fixed_point")
    with pytest.raises(QuantError, match="overflows float32"):
        qlinear_matmul(**{**MM, "a_scale": 1e30, "b_scale": 1e30, "y_scale": 1e-30})


@pytest.mark.parametrize("change,match", [
    ({"x": X[0]}, r"x must be NCHW"),
    ({"w": np.zeros((4, 3, 3, 3), np.int8)}, r"channels do not match group=1: x has 2"),
    ({"group": 3}, r"channels do not match group=3"),
    ({"group": 0}, r"group: expected an int >= 1, got 0"),
    ({"strides": (0, 1)}, r"strides: expected 2 ints >= 1"),
    ({"pads": (1, 1)}, r"pads: expected 4 ints >= 0"),
    ({"dilations": (3, 3)}, r"dilated kernel 7x7 is larger than the padded input 4x4"),
    ({"w_scale": np.ones(3, np.float32)}, r"w_scale: expected a scalar or a 1-d array of 4"),
    ({"bias": np.zeros(4, np.int64)}, "bias: expected dtype int32, got int64"),
    ({"bias": np.zeros(3, np.int32)}, r"bias: expected shape \(4,\), got \(3,\)"),
    ({"x_zp": np.int8(0)}, r"x_zp: dtype must match its tensor \(uint8\), got int8"),
    ({"w_scale": np.array([1, 1, 0, 1], np.float32)}, r"w_scale: scales must be finite and > 0, got \[0.0\]"),
])
def test_qlinear_conv_errors(change, match):
    with pytest.raises(QuantError, match=match):
        qlinear_conv(**{**CV, **change})


def test_quantize_linear_errors():
    x = np.zeros((2, 3), np.float32)
    with pytest.raises(QuantError, match="x: contains 1 NaN"):
        quantize_linear(np.array([np.nan, 1.0], np.float32), 0.1)
    with pytest.raises(QuantError, match="x: expected a float array, got dtype int64"):
        quantize_linear(np.zeros(3, np.int64), 0.1)
    with pytest.raises(QuantError, match=r"scale: has 2 entries but axis 1 of the input has 3"):
        quantize_linear(x, np.ones(2, np.float32))
    with pytest.raises(QuantError, match=r"axis: expected an int in \[-2, 1\], got 2"):
        quantize_linear(x, np.ones(2, np.float32), axis=2)
    with pytest.raises(QuantError, match=r"zero_point: zero point\(s\) must lie in \[-8, 7\] for 4-bit values"):
        quantize_linear(x, 0.1, np.int8(9), dtype="int4")
    with pytest.raises(QuantError, match="dtype: expected one of"):
        quantize_linear(x, 0.1, dtype="int3")
    with pytest.raises(QuantError, match=r"zero_point: dtype must match its tensor \(int8\), got uint8"):
        quantize_linear(x, 0.1, np.uint8(0), dtype=np.int8)
    with pytest.raises(QuantError, match=r"x: 4-bit values must lie in \[-8, 7\]"):
        dequantize_linear(np.array([9], np.int8), 0.1, dtype="int4")
    with pytest.raises(QuantError, match=r"count: expected an int in \[0, 2\]"):
        unpack_int4(np.zeros(1, np.uint8), 3)


def test_spec_errors():
    with pytest.raises(QuantError, match=r"QuantSpec.bits: expected an int in \[2, 16\], got 17"):
        QuantSpec(bits=17)
    with pytest.raises(QuantError, match=r"QuantSpec.bits: expected an int in \[2, 16\], got 1"):
        QuantSpec(bits=1)
    with pytest.raises(QuantError, match="QuantSpec.bits"):
        QuantSpec(bits=8.0)
    with pytest.raises(QuantError, match="QuantSpec.axis: per-channel specs need an int axis"):
        QuantSpec(granularity="channel")
    with pytest.raises(QuantError, match="QuantSpec.narrow_range: only defined for signed grids"):
        QuantSpec(signed=False, narrow_range=True)
    with pytest.raises(QuantError, match="QuantSpec.granularity"):
        QuantSpec(granularity="row")
    with pytest.raises(QuantError, match="range must be finite"):
        qparams_from_range(float("nan"), 1.0, QuantSpec())
    with pytest.raises(QuantError, match="rmin > rmax"):
        qparams_from_range(2.0, 1.0, QuantSpec())
    assert issubclass(QuantError, ValueError)
