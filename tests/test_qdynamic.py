"""Dynamic quantization: ONNX Runtime's DynamicQuantizeLinear + MatMulInteger, bit for bit."""
from __future__ import annotations

import numpy as np
import pytest
from numpy.testing import assert_array_equal

from accelsim.nn.qexec import DynamicQuantOps, dynamic_qparams
from accelsim.nn.qexec import Calibrator, QuantScheme
from accelsim.quant import quantize

ort = pytest.importorskip("onnxruntime")
from onnx import TensorProto as TP  # noqa: E402
from onnx import helper  # noqa: E402
from test_quant_ort_ops import _run  # noqa: E402

RNG = np.random.default_rng(11)


def _x(shape):
    return (RNG.standard_normal(shape) * RNG.uniform(0.01, 50) + RNG.uniform(-3, 3)).astype(np.float32)


def test_dynamic_quantize_linear_equals_onnxruntime():
    node = helper.make_node("DynamicQuantizeLinear", ["x"], ["y", "s", "z"])
    for shape in [(7, 33)] * 150 + [(3, 5, 4)] * 10 + [(1, 1)]:
        x = _x(shape)
        y, s, z = _run([node], {"x": x}, [("y", TP.UINT8), ("s", TP.FLOAT), ("z", TP.UINT8)], opset=11)
        p = dynamic_qparams(x)
        assert np.float32(p.scale) == s and int(p.zero_point) == int(z)
        assert_array_equal(quantize(x, p).q, y)


def test_dynamic_linear_equals_onnxruntime_integer_graph():
    """DynamicQuantizeLinear → MatMulInteger (per-column int8 weights) → Cast → Mul(s_x·s_w) → Add(bias)."""
    x, w, b = _x((6, 40)), (RNG.standard_normal((24, 40)) * 0.2).astype(np.float32), _x((24,))
    cal = Calibrator(QuantScheme(dynamic=True))
    cal.linear("fc", x, w, b)
    ops = DynamicQuantOps(cal.plan(), "int")
    ours = ops.linear("fc", x, w, b)
    wq, ws, _, _ = ops.weight_codes("fc", w, 8)
    nodes = [helper.make_node("DynamicQuantizeLinear", ["x"], ["xq", "xs", "xz"]),
             helper.make_node("MatMulInteger", ["xq", "wq", "xz", "wz"], ["acc"]),
             helper.make_node("Cast", ["acc"], ["accf"], to=TP.FLOAT),
             helper.make_node("Mul", ["xs", "ws"], ["scale"]),
             helper.make_node("Mul", ["accf", "scale"], ["yf"]),
             helper.make_node("Add", ["yf", "b"], ["y"])]
    feeds = {"x": x, "wq": wq, "wz": np.zeros(24, np.int8), "ws": ws, "b": b}
    (y,) = _run(nodes, feeds, [("y", TP.FLOAT)], opset=13)
    assert_array_equal(ours, y)
    fake = DynamicQuantOps(cal.plan(), "fake").linear("fc", x, w, b)
    np.testing.assert_allclose(fake, ours, rtol=1e-4, atol=1e-4 * np.abs(ours).max())
