"""N-D convolution and pooling, the transposed conv and the ops added for ONNX graphs, end to end: FP32 against
ONNX Runtime on small graphs (with a batch axis in front and without one), the integer kernels against an exact
integer twin and on the emulated array, costing against an independent count, and a w8a8 run.

Tolerance for FP32 against ONNX Runtime: rtol 1e-4, atol 1e-5 (as test_onnx_import)."""
from __future__ import annotations

import math

import numpy as np
import pytest

from test_onnx_import import RTOL, ATOL, ort_run, save  # skips this module too when onnx/onnxruntime are missing

from onnx import TensorProto, helper, numpy_helper  # noqa: E402

import reference_quant as ref  # noqa: E402
from accelsim.config.loader import load_hw  # noqa: E402
from accelsim.hw.dataflow import DATAFLOWS  # noqa: E402
from accelsim.inference import infer  # noqa: E402
from accelsim.lowering import lower  # noqa: E402
from accelsim.onnx import import_onnx  # noqa: E402
from accelsim.ops import functional as F  # noqa: E402
from accelsim.quant import qlinear_conv, qlinear_conv_transpose  # noqa: E402
from accelsim.sim.array_ops import ArrayConfig  # noqa: E402


def _graph(nodes, x_shape, inits, opset=13, out="y"):
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, x_shape)],
                          [helper.make_tensor_value_info(out, TensorProto.FLOAT, None)],
                          [numpy_helper.from_array(v, k) for k, v in inits.items()])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])


def _w(rng, *shape):
    return (rng.standard_normal(shape) * 0.3).astype(np.float32)


def _cases(rng):
    """(name, nodes, spatial input shape [C, *sp], initializers)."""
    n = helper.make_node
    return [
        ("conv1d", [n("Conv", ["x", "w", "b"], ["y"], pads=[2, 1], dilations=[2], group=2, strides=[2])],
         [4, 11], {"w": _w(rng, 6, 2, 3), "b": _w(rng, 6)}),
        ("conv3d", [n("Conv", ["x", "w"], ["c"], pads=[1, 0, 1, 0, 1, 1], strides=[1, 2, 1], group=2),
                    n("Relu", ["c"], ["y"])], [4, 5, 6, 4], {"w": _w(rng, 6, 2, 2, 3, 3)}),
        ("conv3d_same", [n("Conv", ["x", "w"], ["y"], auto_pad="SAME_UPPER", strides=[2, 2, 1])], [3, 5, 5, 4],
         {"w": _w(rng, 2, 3, 3, 2, 3)}),
        ("convtranspose2d", [n("ConvTranspose", ["x", "w", "b"], ["y"], strides=[2, 1], dilations=[1, 2], group=2,
                               pads=[1, 0, 0, 1], output_padding=[1, 0])], [4, 5, 6],
         {"w": _w(rng, 4, 3, 3, 2), "b": _w(rng, 6)}),
        ("convtranspose1d_shape", [n("ConvTranspose", ["x", "w"], ["y"], strides=[3], output_shape=[20])], [3, 7],
         {"w": _w(rng, 3, 2, 4)}),
        ("convtranspose3d", [n("ConvTranspose", ["x", "w", "b"], ["y"], strides=[2, 2, 1], pads=[0, 1, 0, 1, 0, 0])],
         [2, 3, 4, 3], {"w": _w(rng, 2, 3, 2, 3, 2), "b": _w(rng, 3)}),
        ("maxpool1d_dil", [n("MaxPool", ["x"], ["y"], kernel_shape=[3], dilations=[2], pads=[1, 2], strides=[2],
                             ceil_mode=1)], [3, 12], {}),
        ("maxpool3d", [n("MaxPool", ["x"], ["y"], kernel_shape=[2, 3, 2], strides=[1, 2, 2], pads=[0, 1, 0, 1, 1, 0])],
         [2, 4, 6, 5], {}),
        ("avgpool3d", [n("AveragePool", ["x"], ["y"], kernel_shape=[2, 2, 3], pads=[1, 0, 1, 0, 1, 1],
                         count_include_pad=0)], [2, 4, 5, 6], {}),
        ("instnorm_prelu", [n("InstanceNormalization", ["x", "s", "b"], ["i"], epsilon=1e-4),
                            n("PRelu", ["i", "slope"], ["y"])], [3, 4, 5],
         {"s": _w(rng, 3), "b": _w(rng, 3), "slope": np.abs(_w(rng, 3, 1, 1))}),
        ("reduce_logsoftmax", [n("ReduceSum", ["x", "ax"], ["r"], keepdims=1), n("LogSoftmax", ["r"], ["y"], axis=-1)],
         [3, 4, 5], {"ax": np.array([2], np.int64)}),
    ]


@pytest.mark.parametrize("batch", ["N", None])
def test_nd_ops_match_onnxruntime(tmp_path, batch):
    """Every case with a symbolic batch axis (batch 3) and with a fixed first dimension of 2 (no batch axis: the
    graph as written, its N running as more images)."""
    rng = np.random.default_rng(0)
    for name, nodes, shape, inits in _cases(rng):
        path = save(_graph(nodes, ["N" if batch else 2, *shape], inits), tmp_path / f"{name}.onnx")
        x = rng.standard_normal((3 if batch else 2, *shape)).astype(np.float32)
        imp = import_onnx(path)
        assert imp.model.batch_axis == (0 if batch else None), name
        got = infer(imp.model, {"x": x})["y"]
        np.testing.assert_allclose(got, ort_run(path, {"x": x})[0], rtol=RTOL, atol=ATOL, err_msg=name)


def test_gemm_of_two_activations_and_numpy_matmul(tmp_path):
    n = helper.make_node
    nodes = [n("Transpose", ["x"], ["xt"], perm=[1, 0]),
             n("Gemm", ["x", "xt", "c"], ["g"], alpha=0.5, beta=2.0),            # [4, 6] @ [6, 4] + c
             n("Gemm", ["g", "x", "c4"], ["h"], transA=1),                        # [4, 4]ᵀ @ [4, 6] + c4
             n("MatMul", ["v", "h"], ["y"])]                                      # 1-D [4] @ [4, 6]
    inits = {"c": np.arange(4, dtype=np.float32), "c4": np.ones((4, 6), np.float32),
             "v": np.array([1, -2, 0.5, 3], np.float32)}
    path = save(_graph(nodes, [4, 6], inits), tmp_path / "g.onnx")
    x = np.random.default_rng(1).standard_normal((4, 6)).astype(np.float32)
    np.testing.assert_allclose(infer(path, {"x": x})["y"], ort_run(path, {"x": x})[0], rtol=RTOL, atol=ATOL)


def test_costing_counts_the_nd_gemms(tmp_path):
    """MACs against a count from ONNX shape inference alone: a conv N·prod(out)·Cout·(Cin/g)·prod(k) (= the output
    size times the weight's fan-in), a transposed conv N·prod(in)·Cin·(Cout/g)·prod(k) (= the input size times
    the weight's fan-out)."""
    import onnx
    rng = np.random.default_rng(2)
    for name, nodes, shape, inits in _cases(rng):
        if nodes[0].op_type not in ("Conv", "ConvTranspose"):
            continue
        m = _graph(nodes, [2, *shape], inits)
        inferred = onnx.shape_inference.infer_shapes(m)
        out = [d.dim_value for d in inferred.graph.value_info[0].type.tensor_type.shape.dim] if len(nodes) > 1 \
            else [d.dim_value for d in inferred.graph.output[0].type.tensor_type.shape.dim]
        w = inits["w"]
        want = math.prod(out) * math.prod(w.shape[1:]) if nodes[0].op_type == "Conv" else \
            2 * math.prod(shape) * math.prod(w.shape[1:])
        model = import_onnx(save(m, tmp_path / f"{name}.onnx")).model
        assert sum(w.gemm.macs for w in lower(model) if w.gemm is not None) == want, name


# ---- the integer path ---------------------------------------------------------------------------------------

def _int_twin_conv(x, zx, w, zw, bias, geo, transposed=False):
    """The exact accumulator from float64 numerics on (x − zx), (w − zw) (integers < 2**53: exact)."""
    xf = x.astype(np.float64) - int(zx)
    wf = w.astype(np.float64) - np.asarray(zw, np.float64).reshape((-1,) + (1,) * (w.ndim - 1))
    if transposed:
        acc = F.conv_transpose(xf, wf, None, geo["strides"], geo["pads"], geo["dilations"], geo["group"],
                               geo["output_padding"])
    else:
        acc = F.conv(xf, wf, None, geo["strides"], geo["pads"], geo["dilations"], geo["group"])
    return np.rint(acc).astype(np.int64) + bias.reshape((1, -1) + (1,) * (x.ndim - 2))


def _operands(rng, xs, ws, wzp=0):
    """Random uint8 inputs, weights (int8, or uint8 around ``wzp``), per-channel scales and an int32 bias."""
    x = rng.integers(0, 256, xs, dtype=np.uint8)
    w = rng.integers(0, 256, ws, dtype=np.uint8) if wzp else rng.integers(-127, 128, ws, dtype=np.int8)
    return x, w, (0.002 + rng.random(ws[0]) / 500).astype(np.float32), rng.integers(-2000, 2000, ws[0]).astype(np.int32)


def _requant_twin(acc, sx, sw, sy, zy):
    """tests/reference_quant's requantization on a channels-first accumulator."""
    a = np.moveaxis(acc, 1, -1)
    return np.moveaxis(ref._requant(a, "float", sx, sw, sy, 0, 255, int(zy)), -1, 1).astype(np.uint8)


NDGEO = [
    ((2, 4, 9), (6, 2, 3), dict(strides=(2,), pads=(1, 2), dilations=(2,), group=2)),
    ((2, 4, 5, 6, 4), (6, 2, 2, 3, 2), dict(strides=(1, 2, 1), pads=(1, 0, 1, 0, 1, 1), dilations=(1, 1, 2), group=2)),
    ((1, 3, 4, 5, 4), (3, 1, 3, 3, 3), dict(strides=(1, 1, 1), pads=(1, 1, 1, 1, 1, 1), dilations=(1, 1, 1), group=3)),
]


@pytest.mark.parametrize("xs, ws, geo", NDGEO)
@pytest.mark.parametrize("wzp", [0, 7])
def test_qlinear_conv_nd_equals_the_integer_twin(xs, ws, geo, wzp):
    x, w, sw, bias = _operands(np.random.default_rng(3), xs, ws, wzp)
    zw = np.full(ws[0], wzp, np.uint8 if wzp else np.int8)
    zw[0] = wzp + 3 if wzp else 0                                         # per-channel zero points
    y = qlinear_conv(x, np.float32(0.02), np.uint8(5), w, sw, zw, np.float32(0.07), np.uint8(120), bias, **geo)
    want = _requant_twin(_int_twin_conv(x, 5, w, zw, bias, geo), np.float32(0.02), sw, np.float32(0.07), 120)
    np.testing.assert_array_equal(y, want)


@pytest.mark.parametrize("xs, ws, geo", [
    ((2, 4, 5, 6), (6, 2, 3, 2), dict(strides=(2, 1), pads=(1, 0, 0, 1), dilations=(1, 2), group=2,
                                      output_padding=(1, 0))),
    ((2, 3, 7), (2, 3, 4), dict(strides=(3,), pads=(1, 1), dilations=(1,), group=1, output_padding=(2,))),
    ((1, 2, 3, 4, 3), (3, 2, 2, 3, 2), dict(strides=(2, 2, 1), pads=(0, 1, 0, 1, 0, 0), dilations=(1, 1, 1),
                                            group=1, output_padding=(0, 0, 0))),
])
def test_qlinear_conv_transpose_equals_the_integer_twin_and_the_array(xs, ws, geo):
    x, w, sw, bias = _operands(np.random.default_rng(4), xs, ws)
    args = (x, np.float32(0.02), np.uint8(5), w, sw, np.int8(0), np.float32(0.09), np.uint8(100), bias)
    y = qlinear_conv_transpose(*args, **geo)
    want = _requant_twin(_int_twin_conv(x, 5, w, 0, bias, geo, True), np.float32(0.02), sw, np.float32(0.09), 100)
    np.testing.assert_array_equal(y, want)
    cfg = ArrayConfig(3, 4, DATAFLOWS["ws"], load_hw("edge").pe)
    on_array, _ = qlinear_conv_transpose(*args, **geo, return_overflow=True, accumulate=cfg.accumulator("ct"))
    np.testing.assert_array_equal(on_array, y)
    # one GEMM per group: [B·prod(in), Cin/g] @ [Cin/g, Cout/g·prod(k)]
    assert cfg.stats["ct"].gemms == geo["group"]
    assert cfg.stats["ct"].macs == math.prod(xs) * (ws[0] // geo["group"]) * math.prod(ws[2:])


def test_conv3d_on_the_array_equals_the_kernels():
    rng = np.random.default_rng(5)
    xs, ws, geo = NDGEO[1]
    x = rng.integers(0, 256, xs, dtype=np.uint8)
    w = rng.integers(-127, 128, ws, dtype=np.int8)
    args = (x, np.float32(0.02), np.uint8(5), w, np.float32(0.003), np.int8(0), np.float32(0.07), np.uint8(120))
    cfg = ArrayConfig(4, 3, DATAFLOWS["os"], load_hw("edge").pe)
    got, _ = qlinear_conv(*args, **geo, return_overflow=True, accumulate=cfg.accumulator("c3"))
    np.testing.assert_array_equal(got, qlinear_conv(*args, **geo))


def test_w8a8_runs_nd_graphs_and_tracks_fp32(tmp_path):
    rng = np.random.default_rng(6)
    n = helper.make_node
    nodes = [n("Conv", ["x", "w1", "b1"], ["c"], pads=[1, 1, 1, 1, 1, 1]), n("Relu", ["c"], ["r"]),
             n("MaxPool", ["r"], ["p"], kernel_shape=[2, 2, 2], strides=[2, 2, 2]),
             n("ConvTranspose", ["p", "w2", "b2"], ["y"], strides=[2, 2, 2])]
    inits = {"w1": _w(rng, 4, 2, 3, 3, 3), "b1": _w(rng, 4), "w2": _w(rng, 4, 3, 2, 2, 2), "b2": _w(rng, 3)}
    path = save(_graph(nodes, ["N", 2, 6, 6, 4], inits), tmp_path / "v.onnx")
    x = rng.standard_normal((8, 2, 6, 6, 4)).astype(np.float32)
    ref32 = infer(path, {"x": x})["y"]
    q = infer(path, {"x": x}, "w8a8", calib_data={"x": x})["y"]
    assert q.shape == ref32.shape and not np.array_equal(q, ref32)
    assert np.corrcoef(q.ravel(), ref32.ravel())[0, 1] > 0.99


@pytest.mark.parametrize("xs, ws, strides, pads", [((2, 4, 9), (6, 4, 3), [2], [1, 2]),
                                                  ((2, 4, 5, 6, 4), (6, 4, 2, 3, 2), [1, 2, 1], [1, 0, 1, 0, 1, 1])])
def test_qlinear_conv_1d_3d_equal_onnxruntime(xs, ws, strides, pads):
    x, w, sw, bias = _operands(np.random.default_rng(7), xs, ws)
    grids = dict(xs=np.float32(0.02), xz=np.uint8(5), w=w, ws=sw, wz=np.zeros(ws[0], np.int8), ys=np.float32(0.07),
                 yz=np.uint8(120), b=bias)
    node = helper.make_node("QLinearConv", ["x", *grids], ["y"], strides=strides, pads=pads)
    g = helper.make_graph([node], "q", [helper.make_tensor_value_info("x", TensorProto.UINT8, list(xs))],
                          [helper.make_tensor_value_info("y", TensorProto.UINT8, None)],
                          [numpy_helper.from_array(v, k) for k, v in grids.items()])
    want = ort_run(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]), {"x": x})[0]
    got = qlinear_conv(x, np.float32(0.02), np.uint8(5), w, sw, np.zeros(ws[0], np.int8), np.float32(0.07),
                       np.uint8(120), bias, strides=tuple(strides), pads=tuple(pads), dilations=(1,) * len(strides))
    np.testing.assert_array_equal(got, want)
