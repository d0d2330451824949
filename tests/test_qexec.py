"""Quantized executor: int vs fake agreement, ONNX Runtime bit-exactness of int-mode layers, fused grids."""
from __future__ import annotations

import numpy as np
import pytest
from numpy.testing import assert_array_equal

from accelsim.errors import QuantError
from accelsim.nn.qexec import Calibrator, FloatOps, QuantOps, QuantScheme
from accelsim.quant import QTensor, dequantize, ptq_conv, ptq_linear, quantize, quantize_bias

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
    wq, ws, _, _ = ops.weight_codes("c", w, 8, b, lq.x.scale)
    xq = quantize(x, lq.x).q
    zy = np.asarray(lq.y.zero_point, lq.y.spec.dtype)
    ort_y = _ort_conv(xq, lq.x.scale, np.asarray(lq.x.zero_point, np.uint8), wq, ws, np.zeros(8, np.int8),
                      lq.y.scale, zy, quantize_bias(b, lq.x.scale, ws), (2, 2), (1, 1, 1, 1), (1, 1), 2)
    assert_array_equal(ours, dequantize(QTensor(ort_y, lq.y)))


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


def test_ptq_uses_the_pipeline_weight_quantization():
    """ptq_conv / ptq_linear and the model pipeline give one layer the same weight scales (bias headroom too)."""
    x, w, b, plan = conv_case()
    b = b * 1e4                                  # a bias large enough to raise some weight scales
    cal = Calibrator(QuantScheme())
    cal.conv("c", x, w, b, 2, (1, 1, 1, 1), 1, 1)
    plan = cal.plan()
    ops = QuantOps(plan, "int", acc_bits=16)
    ops.conv("c", x, w, b, 2, (1, 1, 1, 1), 1, 1)
    _, ws, _, _ = ops.weight_codes("c", w, 8)
    res = ptq_conv([x], w, b, strides=(2, 2), pads=(1, 1, 1, 1), acc_bits=16)
    assert float(res.x_params.scale) == float(plan.layers["c"].x.scale)
    assert_array_equal(res.w_params.scale, ws)
    xl, wl = x.reshape(2, -1)[:, :40], w.reshape(8, -1)[:, :40]
    cal = Calibrator(QuantScheme())
    cal.linear("fc", xl, wl, b)
    ops = QuantOps(cal.plan(), "int")
    ops.linear("fc", xl, wl, b)
    assert_array_equal(ptq_linear([xl], wl.T, b).w_params.scale, ops.weight_codes("fc", wl, 8)[1])


def test_shared_input_is_observed_once_with_identical_grids():
    """Q, K and V read one tensor: one observer serves all three, and the grids equal separate calibration."""
    x = RNG.standard_normal((2, 5, 16)).astype(np.float32)
    ws = [(RNG.standard_normal((16, 16)) * 0.3).astype(np.float32) for _ in range(3)]
    shared, separate = Calibrator(QuantScheme(calib="kl")), Calibrator(QuantScheme(calib="kl"))
    for batch in range(2):
        xb = x + batch
        for i, wi in enumerate(ws):
            shared.linear(f"l{i}", xb, wi, None)            # one array read by three layers
            separate.linear(f"l{i}", xb.copy(), wi, None)   # three equal arrays
    assert shared.observers["l0"]["x"] is shared.observers["l2"]["x"]
    a, b = shared.plan().layers, separate.plan().layers
    for name in a:
        for k in ("x", "y"):
            pa, pb = getattr(a[name], k), getattr(b[name], k)
            assert (float(pa.scale), int(pa.zero_point)) == (float(pb.scale), int(pb.zero_point))


def test_squeeze_excite_block_runs_through_the_registry():
    """An op the zoo lacks (hardsigmoid) plus broadcasting mul: one registry entry each, then the graph runs,
    costs and quantizes a squeeze-excite block."""
    from accelsim.graph import Model
    from accelsim.lowering import lower
    from accelsim.nn.graph_exec import run_graph
    g = Model.from_dict({"name": "se", "inputs": [{"name": "x", "shape": [8, 6, 6]}], "layers": [
        {"name": "gap", "op": "global_avgpool"},
        {"name": "reduce", "op": "conv2d", "out_channels": 2, "kernel": 1, "weight": "r"},
        {"name": "relu", "op": "relu"},
        {"name": "expand", "op": "conv2d", "out_channels": 8, "kernel": 1, "weight": "e"},
        {"name": "gate", "op": "hardsigmoid"},
        {"name": "scaled", "op": "mul", "inputs": ["x", "gate"]}]})
    w = {"r.weight": RNG.standard_normal((2, 8, 1, 1)).astype(np.float32), "r.bias": np.zeros(2, np.float32),
         "e.weight": RNG.standard_normal((8, 2, 1, 1)).astype(np.float32), "e.bias": np.ones(8, np.float32)}
    x = RNG.standard_normal((3, 8, 6, 6)).astype(np.float32)
    y = run_graph(g, w, {"x": x})["scaled"]
    s = np.maximum(x.mean(axis=(2, 3)) @ w["r.weight"][:, :, 0, 0].T, 0) @ w["e.weight"][:, :, 0, 0].T + 1
    np.testing.assert_allclose(y, x * np.clip(s / 6 + 0.5, 0, 1)[:, :, None, None], rtol=1e-5, atol=1e-6)
    assert [wk.vector_op for wk in lower(g)] == ["global_avgpool", None, None, None, "hardsigmoid", "mul"]
    cal = Calibrator(QuantScheme())
    run_graph(g, w, {"x": x}, cal)
    yq = run_graph(g, w, {"x": x}, QuantOps(cal.plan(), "int"))["scaled"]
    assert np.abs(yq - y).max() < 0.05 * np.abs(y).max()
