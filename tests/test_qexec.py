"""Quantized executor: int vs fake agreement, ONNX Runtime bit-exactness of int-mode layers, fused grids."""
from __future__ import annotations

import numpy as np
import pytest
from numpy.testing import assert_array_equal

from accelsim.errors import QuantError
from accelsim.nn import layers as L
from accelsim.nn.mnist_cnn import small_resnet
from accelsim.nn.qexec import Calibrator, FloatOps, QuantOps, QuantScheme, dequantize_codes
from accelsim.nn.sequential_exec import fold_batchnorm, run_sequential
from accelsim.quant import quantize, quantize_bias

RNG = np.random.default_rng(7)


def conv_case(act=None, groups=1, w_bits=8, a_bits=8):
    x = RNG.standard_normal((2, 8, 9, 9)).astype(np.float32)
    w = (RNG.standard_normal((8, 8 // groups, 3, 3)) * 0.2).astype(np.float32)
    b = RNG.standard_normal(8).astype(np.float32) * 0.1
    scheme = QuantScheme(w_bits=w_bits, a_bits=a_bits)
    cal = Calibrator(scheme)
    cal.conv("c", x, w, b, 2, (1, 1, 1, 1), 1, groups, act)
    return x, w, b, cal.plan()


def codes(y, p):
    return np.rint(y / np.float32(p.scale)).astype(np.int64) + int(p.zero_point)


@pytest.mark.parametrize("act, groups, w_bits, a_bits", [(None, 1, 8, 8), ("relu6", 8, 8, 8), ("relu", 2, 4, 8),
                                                         (None, 1, 4, 4)])
def test_int_and_fake_agree_within_one_code(act, groups, w_bits, a_bits):
    """Documented bound: int and fake output codes differ by at most 1 (float32 sum vs exact integer sum)."""
    x, w, b, plan = conv_case(act, groups, w_bits, a_bits)
    args = ("c", x, w, b, 2, (1, 1, 1, 1), 1, groups, act)
    y_int, y_fake = QuantOps(plan, "int").conv(*args), QuantOps(plan, "fake").conv(*args)
    diff = np.abs(codes(y_int, plan.layers["c"].y) - codes(y_fake, plan.layers["c"].y))
    assert diff.max() <= 1 and diff.mean() < 0.01


def test_int_and_fake_linear_and_matmul_agree():
    x = RNG.standard_normal((4, 16, 64)).astype(np.float32)
    w = (RNG.standard_normal((32, 64)) * 0.1).astype(np.float32)
    bmat = RNG.standard_normal((4, 64, 16)).astype(np.float32)
    cal = Calibrator(QuantScheme())
    cal.linear("fc", x, w, None)
    cal.matmul("mm", x, bmat)
    plan = cal.plan()
    for op, args in (("linear", ("fc", x, w, None)), ("matmul", ("mm", x, bmat))):
        name = args[0]
        y_i, y_f = getattr(QuantOps(plan, "int"), op)(*args), getattr(QuantOps(plan, "fake"), op)(*args)
        assert np.abs(codes(y_i, plan.layers[name].y) - codes(y_f, plan.layers[name].y)).max() <= 1


def test_int_mode_conv_equals_onnxruntime_bit_for_bit():
    from test_quant_ort_ops import _ort_conv
    x, w, b, plan = conv_case(groups=2)
    lq = plan.layers["c"]
    ops = QuantOps(plan, "int")
    ours = ops.conv("c", x, w, b, 2, (1, 1, 1, 1), 1, 2)
    wq, ws, _ = ops._weight("c", w, 8, b, lq.x.scale)
    xq = quantize(x, lq.x).q
    zy = np.asarray(lq.y.zero_point, lq.y.spec.dtype)
    ort_y = _ort_conv(xq, lq.x.scale, np.asarray(lq.x.zero_point, np.uint8), wq, ws, np.zeros(8, np.int8),
                      lq.y.scale, zy, quantize_bias(b, lq.x.scale, ws), (2, 2), (1, 1, 1, 1), (1, 1), 2)
    assert_array_equal(ours, dequantize_codes(ort_y, lq.y))


def test_fused_relu_grid_starts_at_zero():
    _, _, _, plan = conv_case("relu6")
    y = plan.layers["c"].y
    assert int(y.zero_point) == 0 and float(y.scale) * 255 <= 6.0 + 1e-6


def test_calibration_needs_data_and_measures_sqnr():
    with pytest.raises(QuantError, match="calibration saw no quantizable layer"):
        Calibrator(QuantScheme()).plan()
    x, w, b, plan = conv_case()
    ops = QuantOps(plan, "int")
    ops.conv("c", x, w, b, 2, (1, 1, 1, 1), 1, 1)
    assert 25 < ops.stats["c"].sqnr_db < 60


def test_float_layers_stay_float():
    x, w, b, _ = conv_case()
    scheme = QuantScheme(float_layers=frozenset({"c"}))
    cal = Calibrator(scheme)
    cal.conv("c", x, w, b)
    cal.linear("fc", x.reshape(2, -1), np.ones((3, x[0].size), np.float32))
    plan = cal.plan()
    assert set(plan.layers) == {"fc"}
    assert_array_equal(QuantOps(plan, "int").conv("c", x, w, b), FloatOps().conv("c", x, w, b))


def test_run_sequential_and_bn_folding_match_the_layers_forward():
    model = small_resnet(seed=3)
    for layer in [model.layers[1], model.layers[4].body.layers[1]]:   # give the BNs non-trivial statistics
        layer.buffers["running_mean"] = RNG.standard_normal(16).astype(np.float32) * 0.1
        layer.buffers["running_var"] = RNG.uniform(0.5, 2, 16).astype(np.float32)
    x = RNG.standard_normal((3, 1, 28, 28)).astype(np.float32)
    ref = model.forward(x, train=False)
    folded = fold_batchnorm(model)
    assert not any(isinstance(l, L.BatchNorm2d) for l in folded.layers)
    np.testing.assert_allclose(run_sequential(folded, x, FloatOps()), ref, rtol=1e-4, atol=1e-4)
