"""Quantized ONNX in: models made by ``onnxruntime.quantization.quantize_static`` (QDQ and QOperator, per-channel
and per-tensor) run in accelsim's int mode with the same output codes as ONNX Runtime.

Quick tier: a small conv/relu/clip/maxpool/add/gemm/matmul graph with random weights and calibration data. Slow
tier: MNIST CNN (1k test images) and EfficientNet-Lite0 (the photo task's 48 views) with their real weights,
exported to FP32 ONNX by accelsim and quantized by ONNX Runtime on the tasks' calibration sets.
"""
from __future__ import annotations

import numpy as np
import pytest

from test_onnx_import import cli, ort_run, save  # skips this module too when onnx/onnxruntime are missing

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


def quantize(fp32, out, name, calib, fmt, per_channel):
    quantize_static(str(fp32), str(out), _Reader(name, calib), quant_format=fmt, per_channel=per_channel,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
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


@pytest.mark.parametrize("fmt, per_channel", FORMATS)
def test_small_graph_codes_equal_onnxruntime(fmt, per_channel, tmp_path):
    rng = np.random.default_rng(0)
    fp32 = save(small_graph(rng), tmp_path / "f.onnx")
    q = quantize(fp32, tmp_path / "q.onnx", "x", rng.standard_normal((32, 3, 8, 8)).astype(np.float32), fmt,
                 per_channel)
    differing, total, n_layers = differing_codes(q, "x", rng.standard_normal((64, 3, 8, 8)).astype(np.float32))
    assert n_layers == 5 and total == 640 and differing == 0


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


def test_dynamic_quantization_is_a_one_line_error(tmp_path, capsys):
    fp32 = save(small_graph(np.random.default_rng(2)), tmp_path / "f.onnx")
    quantize_dynamic(str(fp32), str(tmp_path / "d.onnx"), op_types_to_quantize=["MatMul"])
    with pytest.raises(AccelsimError, match=r"\((DynamicQuantizeLinear|MatMulInteger)\): dynamic quantization"):
        import_onnx(tmp_path / "d.onnx")
    code, _, err = cli(capsys, "run", tmp_path / "d.onnx", "--hw", "edge")
    assert code == 2 and err.count("\n") == 1


@pytest.mark.slow
@pytest.mark.parametrize("name", ["mnist", "photos"])
def test_real_models_quantized_by_onnxruntime_run_identically(name, tmp_path):
    from test_onnx_export import _task
    from accelsim.onnx.exporter import export_onnx
    task = _task(name)
    st = task._setup()
    inp = next(iter(task.graph.inputs))
    fp32 = export_onnx(task.graph, st["weights"], tmp_path / "f.onnx")
    for fmt, per_channel in FORMATS:
        q = quantize(fp32, tmp_path / f"q_{fmt.name}_{per_channel}.onnx", inp, st["calib"], fmt, per_channel)
        differing, total, n_layers = differing_codes(q, inp, st["data"])
        assert n_layers == len([la for la in task.graph.layers if la.op in ("conv2d", "linear")])
        assert total >= 10000 and differing == 0, (fmt, per_channel, differing)
