"""Quantized ONNX in: models made by ``onnxruntime.quantization.quantize_static`` (QDQ and QOperator, per-channel
and per-tensor, QInt8 and QUInt8 weights) run in accelsim's int mode with the same output codes as ONNX Runtime.

Quick tier: a small conv/relu/clip/maxpool/add/gemm/matmul graph with random weights and calibration data. Slow
tier: MNIST CNN (1k test images) and EfficientNet-Lite0 (the photo task's 48 views) with their real weights,
exported to FP32 ONNX by accelsim and quantized by ONNX Runtime on the tasks' calibration sets.
"""
from __future__ import annotations

import numpy as np
import pytest

from test_onnx_import import cli, ort_run, save  # skips this module too when onnx/onnxruntime are missing

import onnx  # noqa: E402
from onnx import TensorProto, helper, numpy_helper  # noqa: E402
from onnxruntime.quantization import (CalibrationDataReader, QuantFormat, QuantType,  # noqa: E402
                                      quantize_dynamic, quantize_static)

from accelsim.errors import AccelsimError
from accelsim.inference import infer
from accelsim.onnx import import_onnx

FORMATS = [(QuantFormat.QDQ, True), (QuantFormat.QDQ, False), (QuantFormat.QOperator, True),
           (QuantFormat.QOperator, False)]


class _Reader(CalibrationDataReader):
    def __init__(self, name: str, data: np.ndarray, batch: int = 8):
        self.it = iter([{name: data[i:i + batch]} for i in range(0, len(data), batch)])

    def get_next(self):
        return next(self.it, None)


def quantize(fp32, out, name, calib, fmt, per_channel, weight_type=QuantType.QInt8):
    quantize_static(str(fp32), str(out), _Reader(name, calib), quant_format=fmt, per_channel=per_channel,
                    activation_type=QuantType.QUInt8, weight_type=weight_type)
    return out


def differing_codes(path, name, x) -> tuple[int, int, int]:
    """(differing output codes, total codes, quantized layers) of accelsim int mode vs ONNX Runtime."""
    imp = import_onnx(path)
    ours = next(iter(infer(imp.model, {name: x}).values()))
    theirs = ort_run(path, {name: x})[0]
    y = list(imp.plan.layers.values())[-1].y           # the last GEMM's output grid (graph output = DQ of it)
    codes = lambda v: np.rint(v / np.float32(y.scale))  # noqa: E731
    return int((codes(ours) != codes(theirs)).sum()), theirs.size, len(imp.plan.layers)


def small_graph(rng):
    f = lambda *s: rng.standard_normal(s).astype(np.float32)  # noqa: E731
    init = lambda n, v: numpy_helper.from_array(np.asarray(v), n)  # noqa: E731
    inits = [init("w1", f(8, 3, 3, 3) * .3), init("b1", f(8) * .1), init("w2", f(8, 4, 3, 3) * .2),
             init("b2", f(8) * .1), init("w3", f(8, 8, 1, 1) * .3), init("lo", np.float32(0)),
             init("hi", np.float32(6)), init("wg", f(8 * 4 * 4, 16) * .1), init("bg", f(16) * .1),
             init("wm", f(16, 10) * .3)]
    nodes = [helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c1"], ["r1"]),
             helper.make_node("MaxPool", ["r1"], ["p1"], kernel_shape=[2, 2], strides=[2, 2]),
             helper.make_node("Conv", ["p1", "w2", "b2"], ["c2"], pads=[1, 1, 1, 1], group=2),
             helper.make_node("Clip", ["c2", "lo", "hi"], ["r2"]),
             helper.make_node("Conv", ["p1", "w3"], ["c3"]),
             helper.make_node("Add", ["r2", "c3"], ["a"]),
             helper.make_node("Flatten", ["a"], ["fl"]),
             helper.make_node("Gemm", ["fl", "wg", "bg"], ["g"]),
             helper.make_node("MatMul", ["g", "wm"], ["y"])]
    g = helper.make_graph(nodes, "q", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, 8, 8])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])


@pytest.mark.parametrize("weight_type", [QuantType.QInt8, QuantType.QUInt8])
@pytest.mark.parametrize("fmt, per_channel", FORMATS)
def test_small_graph_codes_equal_onnxruntime(fmt, per_channel, weight_type, tmp_path):
    """QInt8 weights (symmetric) and QUInt8 weights (asymmetric: uint8 codes, non-zero zero points, which enter
    the exact integer sum as in ONNX Runtime)."""
    rng = np.random.default_rng(0)
    fp32 = save(small_graph(rng), tmp_path / "f.onnx")
    q = quantize(fp32, tmp_path / "q.onnx", "x", rng.standard_normal((32, 3, 8, 8)).astype(np.float32), fmt,
                 per_channel, weight_type)
    differing, total, n_layers = differing_codes(q, "x", rng.standard_normal((64, 3, 8, 8)).astype(np.float32))
    assert n_layers == 5 and total == 640 and differing == 0
    assert "qlinear_add" in {layer.op for layer in import_onnx(q).model.layers}   # the residual Add: ORT's QLinearAdd


def test_quantized_model_costs_and_cli_infer(tmp_path, capsys):
    rng = np.random.default_rng(1)
    fp32 = save(small_graph(rng), tmp_path / "f.onnx")
    q = quantize(fp32, tmp_path / "q.onnx", "x", rng.standard_normal((16, 3, 8, 8)).astype(np.float32),
                 QuantFormat.QOperator, True)
    code_f, out_f, _ = cli(capsys, "run", fp32, "--hw", "edge", "--quiet")
    code_q, out_q, _ = cli(capsys, "run", q, "--hw", "edge", "--quiet")
    macs = lambda out: out.split("MACs ")[1].split()[0]  # noqa: E731
    assert code_f == code_q == 0 and macs(out_f) == macs(out_q)         # Q/DQ layers add no work
    code, _, _ = cli(capsys, "run", q, "--hw", "edge", "--precision", "fp32", "--json", tmp_path / "r.json")
    import json
    gemms = [la for la in json.loads((tmp_path / "r.json").read_text())["layers"] if la.get("macs")]
    assert code == 0 and len(gemms) == 5 and {la["precision"] for la in gemms} == {"w8a8"}   # its own bit-widths
    x = rng.standard_normal((4, 3, 8, 8)).astype(np.float32)
    np.savez(tmp_path / "in.npz", x=x)
    code, out, err = cli(capsys, "infer", q, "--inputs", tmp_path / "in.npz", "--out", tmp_path / "o.npz")
    assert code == 0, err
    with np.load(tmp_path / "o.npz") as o:
        np.testing.assert_array_equal(o["y"], ort_run(q, {"x": x})[0])


@pytest.mark.parametrize("weight_type", [QuantType.QInt8, QuantType.QUInt8])
@pytest.mark.parametrize("per_channel", [True, False])
def test_dynamic_quantized_model_matches_onnxruntime(per_channel, weight_type, tmp_path):
    """quantize_dynamic (DynamicQuantizeLinear → ConvInteger/MatMulInteger → Cast → Mul, bias Add): the float
    outputs are bit-identical to ONNX Runtime's (one call over all 64 inputs: the grids are per call)."""
    rng = np.random.default_rng(2)
    fp32 = save(small_graph(rng), tmp_path / "f.onnx")
    quantize_dynamic(str(fp32), str(tmp_path / "d.onnx"), per_channel=per_channel, weight_type=weight_type)
    imp = import_onnx(tmp_path / "d.onnx")
    assert imp.plan.scheme.dynamic and len(imp.plan.layers) == 5
    x = rng.standard_normal((64, 3, 8, 8)).astype(np.float32)
    np.testing.assert_array_equal(infer(imp.model, {"x": x})["y"], ort_run(tmp_path / "d.onnx", {"x": x})[0])


def test_dynamic_quantization_outside_the_pattern_is_a_one_line_error(tmp_path, capsys):
    fp32 = save(small_graph(np.random.default_rng(2)), tmp_path / "f.onnx")
    quantize_dynamic(str(fp32), str(tmp_path / "d.onnx"), op_types_to_quantize=["MatMul"])
    m = onnx.load(str(tmp_path / "d.onnx"))
    casts = {n.output[0] for n in m.graph.node if n.op_type == "Cast"}
    next(n for n in m.graph.node if n.op_type == "Mul" and casts & set(n.input)).op_type = "Add"
    save(m, tmp_path / "bad.onnx")
    with pytest.raises(AccelsimError, match=r"\(MatMulInteger\): expected ONNX Runtime's quantize_dynamic pattern"):
        import_onnx(tmp_path / "bad.onnx")
    code, _, err = cli(capsys, "run", tmp_path / "bad.onnx", "--hw", "edge")
    assert code == 2 and err.count("\n") == 1 and "quantize_dynamic pattern" in err


@pytest.mark.slow
@pytest.mark.parametrize("name", ["mnist", "photos"])
def test_real_models_quantized_by_onnxruntime_run_identically(name, tmp_path):
    from test_onnx_export import _task
    from accelsim.onnx.exporter import export_onnx
    task = _task(name)
    st = task._setup()
    inp = next(iter(task.graph.inputs))
    fp32 = export_onnx(task.graph, st["weights"], tmp_path / "f.onnx")
    for (fmt, per_channel), wt in [(f, w) for f in FORMATS for w in (QuantType.QInt8, QuantType.QUInt8)]:
        q = quantize(fp32, tmp_path / f"q_{fmt.name}_{per_channel}_{wt.name}.onnx", inp, st["calib"], fmt,
                     per_channel, wt)
        differing, total, n_layers = differing_codes(q, inp, st["data"])
        assert n_layers == len([la for la in task.graph.layers if la.op in ("conv2d", "linear")])
        assert total >= 10000 and differing == 0, (fmt, per_channel, wt, differing)
    # quantize_dynamic: float outputs. MNIST is bit-identical. EfficientNet-Lite0 is bit-identical up to the
    # global average pool; its float32 mean sums in a different order than ONNX Runtime's (≤ 4.8e-7 apart on a
    # few % of the values), which moves the classifier's per-call grid: logits ≤ 1.9e-6 apart (a few ulp).
    d = tmp_path / "d.onnx"
    quantize_dynamic(str(fp32), str(d), per_channel=True, weight_type=QuantType.QInt8)
    ours = next(iter(infer(import_onnx(d).model, {inp: st["data"]}).values()))
    theirs = ort_run(d, {inp: st["data"]})[0]
    if name == "mnist":
        np.testing.assert_array_equal(ours, theirs)
    else:
        np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-5)


def _avx2() -> bool:
    try:
        return " avx2" in open("/proc/cpuinfo").read()
    except OSError:
        return False


@pytest.mark.skipif(not _avx2(), reason="emulates ONNX Runtime's AVX2 QLinearAdd kernel")
def test_qlinear_add_and_global_pool_emulation_equal_onnxruntime():
    """Every (a, b) code pair for random grids (ties included), and random pools; see accelsim/quant/ort_fused.py."""
    from accelsim.quant.ort_fused import qlinear_add, qlinear_global_avgpool
    rng = np.random.default_rng(0)
    a, b = np.repeat(np.arange(256, dtype=np.uint8), 256), np.tile(np.arange(256, dtype=np.uint8), 256)
    for _ in range(12):
        g = [np.float32(rng.uniform(.01, .5)) if i % 2 == 0 else np.uint8(rng.integers(0, 256)) for i in range(6)]
        inits = [numpy_helper.from_array(np.array(v), n) for v, n in zip(g, ["sa", "za", "sb", "zb", "sc", "zc"])]
        gg = helper.make_graph([helper.make_node("QLinearAdd", ["a", "sa", "za", "b", "sb", "zb", "sc", "zc"], ["y"],
                                                 domain="com.microsoft")], "g",
                               [helper.make_tensor_value_info(k, TensorProto.UINT8, [a.size]) for k in "ab"],
                               [helper.make_tensor_value_info("y", TensorProto.UINT8, [a.size])], inits)
        m = helper.make_model(gg, opset_imports=[helper.make_opsetid("", 13), helper.make_opsetid("com.microsoft", 1)])
        ref = ort_run(m, {"a": a, "b": b})[0]
        np.testing.assert_array_equal(qlinear_add(a, g[0], g[1], b, g[2], g[3], g[4], g[5], np.uint8), ref)
        x = rng.integers(0, 256, (2, int(rng.integers(1, 40)), 7, 7)).astype(np.uint8)
        p = [np.float32(rng.uniform(.01, .5)), np.uint8(rng.integers(0, 256)), np.float32(rng.uniform(.01, .5)),
             np.uint8(rng.integers(0, 256))]
        inits = [numpy_helper.from_array(np.array(v), n) for v, n in zip(p, ["xs", "xz", "ys", "yz"])]
        gp = helper.make_graph([helper.make_node("QLinearGlobalAveragePool", ["x", "xs", "xz", "ys", "yz"], ["y"],
                                                 domain="com.microsoft", channels_last=0)], "g",
                               [helper.make_tensor_value_info("x", TensorProto.UINT8, list(x.shape))],
                               [helper.make_tensor_value_info("y", TensorProto.UINT8, None)], inits)
        m = helper.make_model(gp, opset_imports=[helper.make_opsetid("", 13), helper.make_opsetid("com.microsoft", 1)])
        np.testing.assert_array_equal(qlinear_global_avgpool(x, *p), ort_run(m, {"x": x})[0])
