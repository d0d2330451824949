"""ONNX import: small graphs built here (every mapped op, folding, dynamic dims, errors) against ONNX Runtime,
and (slow tier) the onnx package's bundled reference models: ResNet-50, SqueezeNet, ShuffleNet.

Tolerance for FP32 against ONNX Runtime: rtol 1e-4, atol 1e-5 (the issue's rule). The bundled "light" models
carry constant-filled weights (ConstantOfShape); :func:`randomized` replaces them by seeded random values so the
comparison is not between two uniform softmaxes. MACs and params are checked against a count made here from ONNX
shape inference alone (no accelsim code): Conv ``Cout·Ho·Wo · Cin/g·kh·kw``, Gemm/MatMul ``M·N·K``; params = Conv
and Gemm weights + biases, 2·C per BatchNormalization (torch's convention, as accelsim counts).
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

if os.environ.get("CI", "").lower() not in ("1", "true", "yes"):   # under CI a missing package fails below
    pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
import onnx  # noqa: E402
import onnxruntime as ort  # noqa: E402
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from accelsim.cli import main  # noqa: E402
from accelsim.config.loader import load_model  # noqa: E402
from accelsim.errors import AccelsimError  # noqa: E402
from accelsim.inference import fed_shape, infer  # noqa: E402
from accelsim.onnx import import_onnx  # noqa: E402

LIGHT = Path(onnx.__file__).parent / "backend" / "test" / "data" / "light"
RTOL, ATOL = 1e-4, 1e-5


# ---- helpers (also used by the other test_onnx_* files) ----------------------------------------------------------

def ort_run(model_or_path, feeds: dict, outputs=None) -> list:
    so = ort.SessionOptions()
    so.log_severity_level = 3
    so.intra_op_num_threads = 1
    src = model_or_path if isinstance(model_or_path, (str, Path)) else model_or_path.SerializeToString()
    s = ort.InferenceSession(str(src) if isinstance(src, Path) else src, so, providers=["CPUExecutionProvider"])
    return s.run(outputs, feeds)


def save(model, path: Path) -> Path:
    onnx.save(model, str(path))
    return path


def randomized(name: str, seed: int = 0, logits: bool = True):
    """The bundled light model with its ConstantOfShape weights replaced by seeded random values (LeCun-normal
    weights (the classifier's ×0.01), N(0, 0.1) biases / BN shifts / BN means, U(0.5, 1.5) BN scales and variances), plus the final
    Softmax's input as a second graph output (the logits)."""
    m = onnx.load(str(LIGHT / f"light_{name}.onnx"))
    rng = np.random.default_rng(seed)
    inits = {t.name: numpy_helper.to_array(t) for t in m.graph.initializer}
    centred = {n.input[i] for n in m.graph.node for i in (2, 3)
               if n.op_type in ("BatchNormalization", "Conv", "Gemm") and i < len(n.input)}
    centred -= {n.input[3] for n in m.graph.node if n.op_type != "BatchNormalization" and len(n.input) > 3}
    keep = []
    for node in m.graph.node:
        if node.op_type == "ConstantOfShape" and node.input[0] in inits:
            shape = tuple(int(v) for v in inits[node.input[0]])
            if len(shape) >= 2:     # LeCun-normal; the classifier ×0.01 so that logits are O(1)
                v = rng.standard_normal(shape) / np.sqrt(np.prod(shape[1:])) * (0.01 if len(shape) == 2 else 1)
            elif node.output[0] in centred:   # biases, BN shift and mean
                v = rng.normal(0, 0.1, shape)
            else:                             # BN scale and variance
                v = rng.uniform(0.5, 1.5, shape)
            m.graph.initializer.append(numpy_helper.from_array(v.astype(np.float32), node.output[0]))
        else:
            keep.append(node)
    del m.graph.node[:]
    m.graph.node.extend(keep)
    softmax = [n for n in m.graph.node if n.op_type == "Softmax"]
    if logits and softmax:
        m.graph.output.append(helper.make_tensor_value_info(softmax[-1].input[0], TensorProto.FLOAT, None))
    return m


def independent_count(model) -> tuple[int, int]:
    """(MACs, params) from ONNX shape inference only (module docstring)."""
    m = onnx.shape_inference.infer_shapes(model, data_prop=True)
    shapes = {vi.name: [d.dim_value for d in vi.type.tensor_type.shape.dim]
              for vi in list(m.graph.value_info) + list(m.graph.input) + list(m.graph.output)}
    shapes.update({t.name: list(t.dims) for t in m.graph.initializer})
    macs = params = 0
    for n in m.graph.node:
        if n.op_type == "Conv":
            w, y = shapes[n.input[1]], shapes[n.output[0]]
            macs += int(np.prod(y[1:])) * int(np.prod(w[1:]))
            params += int(np.prod(w)) + (w[0] if len(n.input) > 2 and n.input[2] else 0)
        elif n.op_type in ("Gemm", "MatMul"):
            b, y = shapes[n.input[1]], shapes[n.output[0]]
            trans_b = any(a.name == "transB" and a.i for a in n.attribute)
            k, cols = (b[-1], b[-2]) if trans_b else (b[-2], b[-1])
            rows = int(np.prod(y[:-1])) if y and all(y) else 1    # batch 1 when data_prop leaves it unknown
            macs += rows * cols * k
            params += int(np.prod(shapes[n.input[1]])) + (int(np.prod(shapes[n.input[2]])) if len(n.input) > 2 else 0)
        elif n.op_type == "BatchNormalization":
            params += 2 * shapes[n.input[1]][0]
    return macs, params


def cli(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def assert_close_to_ort(path: Path, feeds: dict, n_out: int | None = None):
    imp = import_onnx(path)
    ref = ort_run(path, feeds)
    got = infer(imp.model, feeds)
    names = [o.name for o in onnx.load(str(path)).graph.output][:n_out]
    for name, r in zip(names, ref):
        np.testing.assert_allclose(got[name], r, rtol=RTOL, atol=ATOL, err_msg=name)
    return imp, got


# ---- small graphs ------------------------------------------------------------------------------------------------

def _init(name, arr):
    return numpy_helper.from_array(np.asarray(arr), name)


def cnn_graph(rng, batch="N", opset=13):
    """Conv(group, pads, bias) → BN → Clip(0,6) → MaxPool(ceil) → LRN → Concat with a constant-fed branch
    (Mul/Add/Sub/Div, HardSigmoid, LeakyRelu, AveragePool count_include_pad=0) → Shape-arithmetic Reshape →
    Gemm(transB=0, alpha, beta) → Softmax."""
    f = lambda *s: rng.standard_normal(s).astype(np.float32)  # noqa: E731
    inits = [_init("w1", f(8, 1, 3, 3) * 0.3), _init("b1", f(8)), _init("g", rng.uniform(.5, 1.5, 8).astype(np.float32)),
             _init("beta", f(8)), _init("mu", f(8) * .1), _init("var", rng.uniform(.5, 1.5, 8).astype(np.float32)),
             _init("c6", np.float32(6)), _init("c0", np.float32(0)), _init("scale", f(1, 8, 1, 1)),
             _init("two", np.float32(2)), _init("wg", f(16 * 5 * 3, 5) * 0.1), _init("bg", f(5)),
             _init("zero1", np.array([0], np.int64)), _init("minus1", np.array([-1], np.int64))]
    nodes = [
        helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], group=2, pads=[1, 0, 2, 1], strides=[1, 2]),
        helper.make_node("BatchNormalization", ["c1", "g", "beta", "mu", "var"], ["bn"], epsilon=1e-3),
        helper.make_node("Clip", ["bn", "c0", "c6"], ["r6"]),
        helper.make_node("MaxPool", ["r6"], ["mp"], kernel_shape=[3, 3], strides=[2, 2], ceil_mode=1),
        helper.make_node("LRN", ["mp"], ["lrn"], size=3, alpha=1e-2, beta=0.75, bias=2.0),
        helper.make_node("Mul", ["lrn", "scale"], ["m1"]),
        helper.make_node("Sub", ["m1", "two"], ["s1"]),
        helper.make_node("Div", ["s1", "two"], ["d1"]),
        helper.make_node("HardSigmoid", ["d1"], ["hs"], alpha=0.3, beta=0.4),
        helper.make_node("LeakyRelu", ["lrn"], ["lr"], alpha=0.1),
        helper.make_node("AveragePool", ["lr"], ["ap"], kernel_shape=[3, 3], pads=[1, 1, 1, 1], strides=[1, 1]),
        helper.make_node("Add", ["ap", "hs"], ["sum"]),
        helper.make_node("Concat", ["sum", "lrn"], ["cat"], axis=1),
        helper.make_node("Shape", ["cat"], ["shp"]),
        helper.make_node("Gather", ["shp", "zero1"], ["n0"], axis=0),
        helper.make_node("Concat", ["n0", "minus1"], ["newshape"], axis=0),
        helper.make_node("Reshape", ["cat", "newshape"], ["flat"]),
        helper.make_node("Gemm", ["flat", "wg", "bg"], ["logits"], alpha=0.5, beta=2.0),
        helper.make_node("Softmax", ["logits"], ["prob"], axis=1),
    ]
    g = helper.make_graph(nodes, "cnn", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, 2, 9, 14])],
                          [helper.make_tensor_value_info("prob", TensorProto.FLOAT, None),
                           helper.make_tensor_value_info("logits", TensorProto.FLOAT, None)], inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])


def text_graph(rng, opset=18):
    """Gather embedding → LayerNorm → MatMul (weights) → erf-GELU pattern → Split → MatMul of activations with a
    Transpose → Slice, Pad, ReduceMean, Sigmoid, HardSwish, Squeeze/Unsqueeze; dynamic ``seq`` dimension."""
    f = lambda *s: rng.standard_normal(s).astype(np.float32)  # noqa: E731
    inits = [_init("emb", f(50, 16)), _init("ln_g", f(16)), _init("ln_b", f(16)), _init("wq", f(16, 32) * .2),
             _init("sqrt2", np.float32(np.sqrt(2))), _init("one", np.float32(1)), _init("half", np.float32(.5)),
             _init("split", np.array([16, 16], np.int64)), _init("st", np.array([1], np.int64)),
             _init("en", np.array([-1], np.int64)), _init("ax", np.array([2], np.int64)),
             _init("pads", np.array([0, 0, 1, 0, 0, 2], np.int64)), _init("rax", np.array([1], np.int64))]
    nodes = [
        helper.make_node("Gather", ["emb", "ids"], ["e"]),
        helper.make_node("LayerNormalization", ["e", "ln_g", "ln_b"], ["ln"], axis=-1, epsilon=1e-5),
        helper.make_node("MatMul", ["ln", "wq"], ["h"]),
        helper.make_node("Div", ["h", "sqrt2"], ["hd"]),
        helper.make_node("Erf", ["hd"], ["he"]),
        helper.make_node("Add", ["he", "one"], ["h1"]),
        helper.make_node("Mul", ["h", "h1"], ["h2"]),
        helper.make_node("Mul", ["h2", "half"], ["gelu"]),
        helper.make_node("Split", ["gelu", "split"], ["qa", "ka"], axis=2),
        helper.make_node("Transpose", ["ka"], ["kt"], perm=[0, 2, 1]),
        helper.make_node("MatMul", ["qa", "kt"], ["att"]),
        helper.make_node("Softmax", ["att"], ["p"], axis=-1),
        helper.make_node("Slice", ["p", "st", "en", "ax"], ["ps"]),
        helper.make_node("Pad", ["ps", "pads"], ["pp"]),
        helper.make_node("Sigmoid", ["pp"], ["sg"]),
        helper.make_node("HardSwish", ["sg"], ["hw"]),
        helper.make_node("ReduceMean", ["hw", "rax"], ["rm"], keepdims=0),
        helper.make_node("Unsqueeze", ["rm", "rax"], ["un"]),
        helper.make_node("Squeeze", ["un", "rax"], ["out"]),
    ]
    g = helper.make_graph(nodes, "text", [helper.make_tensor_value_info("ids", TensorProto.INT64, ["batch", "seq"])],
                          [helper.make_tensor_value_info("out", TensorProto.FLOAT, None)], inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])


@pytest.mark.parametrize("opset", [11, 13, 21])
def test_cnn_graph_matches_onnxruntime(tmp_path, opset):
    rng = np.random.default_rng(1)
    path = save(cnn_graph(rng, opset=opset), tmp_path / "cnn.onnx")
    x = rng.standard_normal((3, 2, 9, 14)).astype(np.float32)
    imp, _ = assert_close_to_ort(path, {"x": x})
    ops = [layer.op for layer in imp.model.layers]
    assert "shape" not in ops and ops.count("reshape") == 1          # Shape → Gather → Concat folded
    assert {"relu6", "avgpool_valid", "lrn", "hardsigmoid_ab", "leaky_relu", "linear", "concat"} <= set(ops)


@pytest.mark.parametrize("opset", [18, 21])
def test_text_graph_with_dynamic_dim(tmp_path, opset):
    rng = np.random.default_rng(2)
    path = save(text_graph(rng, opset), tmp_path / "text.onnx")
    with pytest.raises(AccelsimError, match=r"graph input 'ids': dimension 1 \(seq\) is dynamic: set it with "
                                            r"--param seq=INT"):
        import_onnx(path)
    imp = import_onnx(path, {"seq": 7})
    assert imp.model.inputs["ids"] == (7,)
    ids = rng.integers(0, 50, (2, 7)).astype(np.int64)
    np.testing.assert_allclose(infer(imp.model, {"ids": ids})["out"], ort_run(path, {"ids": ids})[0],
                               rtol=RTOL, atol=ATOL)
    with pytest.raises(AccelsimError, match="no graph input dimension has that name"):
        import_onnx(path, {"seq": 7, "sequence": 3})


def test_load_model_and_cost_match_independent_count(tmp_path, capsys):
    model = cnn_graph(np.random.default_rng(3))
    path = save(model, tmp_path / "cnn.onnx")
    m = load_model(path)
    from accelsim.config.loader import load_hw
    from accelsim.sim.engine import simulate
    report = simulate(m, load_hw("edge"), "w8a8")
    fixed = onnx.load(str(path))
    fixed.graph.input[0].type.tensor_type.shape.dim[0].dim_value = 1
    macs, params = independent_count(fixed)
    assert (report.totals["macs"], report.totals["params"]) == (macs, params + 8 + 1)   # + constant layers: the Mul scale [8], the scalar 2
    code, out, err = cli(capsys, "run", path, "--hw", "edge", "--quiet")
    assert code == 0 and f"MACs {macs:,}" in out and err == ""


# ---- errors: one line, exit 2, no output file ---------------------------------------------------------------------

def _bad_models(tmp_path: Path) -> dict:
    rng = np.random.default_rng(4)
    good = cnn_graph(rng)
    blob = good.SerializeToString()
    (tmp_path / "trunc.onnx").write_bytes(blob[: len(blob) // 3])
    (tmp_path / "text.onnx").write_text("name: not a model\n")
    unsup = cnn_graph(rng)
    unsup.graph.node[4].op_type = "Celu"               # LRN → an op accelsim does not map
    save(unsup, tmp_path / "unsup.onnx")
    mism = cnn_graph(rng)
    mism.graph.initializer[0].CopyFrom(_init("w1", np.zeros((8, 2, 3, 3), np.float32)))   # Cin/g 2, input gives 1
    save(mism, tmp_path / "mismatch.onnx")
    save(text_graph(rng), tmp_path / "dyn.onnx")
    return {"trunc": "not an ONNX model", "text": "not an ONNX model",
            "unsup": "node 'lrn' (Celu): unsupported operator", "mismatch": "node 'c1' (Conv): weight initializer has shape [8, 2, 3, 3], the conv2d needs [8, 1, 3, 3]",
            "dyn": "dimension 1 (seq) is dynamic"}


def test_bad_onnx_is_one_line_exit_2(tmp_path, capsys):
    for name, fragment in _bad_models(tmp_path).items():
        code, out, err = cli(capsys, "run", tmp_path / f"{name}.onnx", "--hw", "edge", "--json", tmp_path / "o.json")
        assert code == 2 and err.count("\n") == 1 and err.startswith("accelsim: error: "), (name, err)
        assert fragment in err, (name, err)
        assert not (tmp_path / "o.json").exists()


def test_unsupported_vector_costs_the_op(tmp_path, capsys):
    _bad_models(tmp_path)
    code, out, err = cli(capsys, "run", tmp_path / "unsup.onnx", "--hw", "edge", "--unsupported", "vector")
    assert code == 0 and "vector" in out
    np.savez(tmp_path / "in.npz", x=np.zeros((1, 2, 9, 14), np.float32))
    code, _, err = cli(capsys, "infer", tmp_path / "unsup.onnx", "--inputs", tmp_path / "in.npz",
                       "--out", tmp_path / "o.npz")
    assert code == 2 and "node 'lrn' (Celu): unsupported operator" in err and not (tmp_path / "o.npz").exists()


def test_infer_cli_names_inputs_and_outputs(tmp_path, capsys):
    rng = np.random.default_rng(5)
    path = save(cnn_graph(rng), tmp_path / "cnn.onnx")
    x = rng.standard_normal((4, 2, 9, 14)).astype(np.float32)
    np.savez(tmp_path / "in.npz", x=x)
    code, out, err = cli(capsys, "infer", path, "--inputs", tmp_path / "in.npz", "--out", tmp_path / "out.npz")
    assert code == 0, err
    with np.load(tmp_path / "out.npz") as o:
        assert sorted(o.files) == ["logits", "prob"]
        np.testing.assert_allclose(o["prob"], ort_run(path, {"x": x})[0], rtol=RTOL, atol=ATOL)
    np.savez(tmp_path / "bad.npz", y=x)
    code, _, err = cli(capsys, "infer", path, "--inputs", tmp_path / "bad.npz", "--out", tmp_path / "o2.npz")
    assert code == 2 and "graph input 'x' is missing" in err and not (tmp_path / "o2.npz").exists()
    np.savez(tmp_path / "bad.npz", x=x[:, :1])
    code, _, err = cli(capsys, "infer", path, "--inputs", tmp_path / "bad.npz", "--out", tmp_path / "o2.npz")
    assert code == 2 and "has shape [4, 1, 9, 14], the graph needs [N, 2, 9, 14]" in err


def test_infer_quantized_tracks_fp32(tmp_path):
    rng = np.random.default_rng(6)
    path = save(cnn_graph(rng), tmp_path / "cnn.onnx")
    x = rng.standard_normal((8, 2, 9, 14)).astype(np.float32)
    ref = infer(path, {"x": x})["logits"]
    q = infer(path, {"x": x}, "w8a8", calib_data={"x": x})["logits"]
    assert q.shape == ref.shape and not np.array_equal(q, ref)
    assert np.corrcoef(q.ravel(), ref.ravel())[0, 1] > 0.99


def test_external_data_absent_costs_from_shapes(tmp_path, capsys):
    model = cnn_graph(np.random.default_rng(7))
    onnx.save(model, str(tmp_path / "full.onnx"))
    onnx.save_model(model, str(tmp_path / "ext.onnx"), save_as_external_data=True, all_tensors_to_one_file=True,
                    location="ext.data", size_threshold=64)
    os.remove(tmp_path / "ext.data")
    c_full = cli(capsys, "run", tmp_path / "full.onnx", "--hw", "edge", "--quiet")
    c_ext = cli(capsys, "run", tmp_path / "ext.onnx", "--hw", "edge", "--quiet", "--json", tmp_path / "r.json")
    assert c_ext[0] == 0 and "note: weights absent" in c_ext[1]
    import json
    assert json.loads((tmp_path / "r.json").read_text())["notes"][0].startswith("weights absent")
    assert c_full[1].splitlines()[1] == c_ext[1].splitlines()[1]            # same layers, params, MACs line
    np.savez(tmp_path / "in.npz", x=np.zeros((1, 2, 9, 14), np.float32))
    code, _, err = cli(capsys, "infer", tmp_path / "ext.onnx", "--inputs", tmp_path / "in.npz", "--out",
                       tmp_path / "o.npz")
    assert code == 2 and "weights absent" in err and not (tmp_path / "o.npz").exists()


# ---- the onnx package's reference models (slow) ------------------------------------------------------------------

@pytest.mark.slow
@pytest.mark.parametrize("name", ["resnet50", "squeezenet", "shufflenet"])
def test_reference_model_matches_onnxruntime_and_counts(name, tmp_path, capsys):
    path = save(randomized(name), tmp_path / f"{name}.onnx")
    imp = import_onnx(path)
    inp = next(iter(imp.inputs))
    x = np.random.default_rng(8).standard_normal(fed_shape(imp.model, inp)).astype(np.float32)
    ref = ort_run(path, {inp: x})
    got = infer(imp.model, {inp: x})
    for o, r in zip(onnx.load(str(path)).graph.output, ref):
        np.testing.assert_allclose(got[o.name], r, rtol=RTOL, atol=ATOL, err_msg=o.name)
    assert 0.1 < np.ptp(ref[1]) and np.abs(ref[1]).max() < 100   # logits neither degenerate nor huge
    macs, params = independent_count(onnx.load(str(LIGHT / f"light_{name}.onnx")))
    code, out, err = cli(capsys, "run", LIGHT / f"light_{name}.onnx", "--hw", "edge", "--quiet")
    assert code == 0 and f"params {params:,}" in out and f"MACs {macs:,}" in out, out
    # the same model with its weights in an external file that is then deleted: costed from shapes alone
    onnx.save_model(randomized(name, logits=False), str(tmp_path / "ext.onnx"), save_as_external_data=True,
                    all_tensors_to_one_file=True, location="ext.data", size_threshold=1024)
    os.remove(tmp_path / "ext.data")
    code, out, err = cli(capsys, "run", tmp_path / "ext.onnx", "--hw", "edge", "--quiet")
    assert code == 0 and f"MACs {macs:,}" in out and "note: weights absent" in out, out + err


def test_run_and_eval_with_own_data(tmp_path, capsys):
    rng = np.random.default_rng(9)
    path = save(cnn_graph(rng), tmp_path / "cnn.onnx")
    x = rng.standard_normal((48, 2, 9, 14)).astype(np.float32)
    labels = ort_run(path, {"x": x})[0].argmax(1)          # labels = the FP32 model's own answers
    np.savez(tmp_path / "d.npz", x=x, labels=labels)
    code, out, err = cli(capsys, "eval", path, "--data", tmp_path / "d.npz", "--precision", "w8a8",
                         "--json", tmp_path / "e.json")
    assert code == 0, err
    import json
    result = json.loads((tmp_path / "e.json").read_text())
    assert result["fp32"]["accuracy"] == 1.0 and 0.8 <= result["quantized"]["accuracy"] <= 1.0
    assert result["quantized"]["top1_agreement"] == result["quantized"]["accuracy"]
    code, out, _ = cli(capsys, "run", path, "--hw", "edge", "--quiet", "--data", tmp_path / "d.npz")
    assert code == 0 and "top1_agreement" in out
    np.savez(tmp_path / "bad.npz", x=x, labels=labels[:3])
    code, _, err = cli(capsys, "eval", path, "--data", tmp_path / "bad.npz")
    assert code == 2 and "'labels' must be 48 integer class indices" in err
    code, _, err = cli(capsys, "eval", path)
    assert code == 2 and "eval needs --eval DATASET or --data FILE.npz" in err


ALL_LIGHT = ["bvlc_alexnet", "densenet121", "inception_v1", "inception_v2", "resnet50", "shufflenet", "squeezenet",
             "vgg19", "zfnet512"]


@pytest.mark.slow
def test_every_bundled_reference_model_imports_with_the_independent_count(capsys):
    """All nine: MACs equal; params equal except densenet121 and inception_v2, which scale and shift with Mul/Add
    by constants (accelsim counts those constants as parameters, the independent count only Conv/Gemm/BN)."""
    for name in ALL_LIGHT:
        macs, params = independent_count(onnx.load(str(LIGHT / f"light_{name}.onnx")))
        code, out, err = cli(capsys, "run", LIGHT / f"light_{name}.onnx", "--hw", "edge", "--quiet")
        assert code == 0 and f"MACs {macs:,}" in out, (name, out, err)
        assert name in ("densenet121", "inception_v2") or f"params {params:,}" in out, (name, out)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["inception_v1", "densenet121"])
def test_lrn_concat_and_broadcast_models_match_onnxruntime(name, tmp_path):
    path = save(randomized(name), tmp_path / f"{name}.onnx")
    imp = import_onnx(path)
    inp = next(iter(imp.inputs))
    x = np.random.default_rng(8).standard_normal(fed_shape(imp.model, inp)).astype(np.float32)
    got = infer(imp.model, {inp: x})
    for o, r in zip(onnx.load(str(path)).graph.output, ort_run(path, {inp: x})):
        np.testing.assert_allclose(got[o.name], r, rtol=RTOL, atol=ATOL, err_msg=o.name)


def test_missing_onnx_package_is_a_clear_error(monkeypatch, tmp_path, capsys):
    import sys
    path = save(cnn_graph(np.random.default_rng(10)), tmp_path / "m.onnx")
    monkeypatch.setitem(sys.modules, "onnx", None)          # as if the extra were not installed
    code, _, err = cli(capsys, "run", path, "--hw", "edge")
    assert code == 2 and "needs the onnx package: pip install 'accelsim[onnx]'" in err
