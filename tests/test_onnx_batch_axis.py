"""The batch axis of an imported graph (detected, given with --batch-axis, or none), inputs taken as written,
dtypes (float64 models run in float64, no silent narrowing, integers kept) and the opset upgrade on import."""
from __future__ import annotations

import numpy as np
import pytest

from test_onnx_import import RTOL, ATOL, cli, ort_run, save  # skips this module too when onnx/onnxruntime are missing

from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from accelsim.config.loader import load_hw, load_model  # noqa: E402
from accelsim.errors import AccelsimError  # noqa: E402
from accelsim.inference import fed_shape, infer  # noqa: E402
from accelsim.onnx import import_onnx  # noqa: E402
from accelsim.sim.engine import simulate  # noqa: E402


def _model(nodes, inputs, outputs, inits=(), opset=13):
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info(n, t, s) for n, t, s in inputs],
                          [helper.make_tensor_value_info(n, t, None) for n, t in outputs],
                          [numpy_helper.from_array(v, k) for k, v in dict(inits).items()])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])


def scalar_vector_graph():
    """A scalar and a vector input, constants spanning the first axis, a matmul of a vector: no batch axis."""
    n = helper.make_node
    nodes = [n("Mul", ["v", "s"], ["a"]), n("Add", ["a", "k"], ["b"]),        # [5]·[] + [3, 5] → [3, 5]
             n("MatMul", ["b", "v"], ["c"]),                                  # [3, 5] @ [5] → [3]
             n("MatMul", ["w", "b"], ["d"]),                                  # [4, 3] @ [3, 5] → [4, 5]
             n("ReduceSum", ["d"], ["e"], keepdims=0)]                        # → []
    rng = np.random.default_rng(0)
    return _model(nodes, [("s", TensorProto.FLOAT, []), ("v", TensorProto.FLOAT, [5])],
                  [("c", TensorProto.FLOAT), ("e", TensorProto.FLOAT)],
                  {"k": rng.standard_normal((3, 5)).astype(np.float32),
                   "w": rng.standard_normal((4, 3)).astype(np.float32)})


def test_scalar_and_vector_inputs_run_and_cost_as_written(tmp_path, capsys):
    path = save(scalar_vector_graph(), tmp_path / "sv.onnx")
    model = load_model(path)
    assert model.batch_axis is None and dict(model.inputs) == {"s": (), "v": (5,)}
    feeds = {"s": np.array(1.5, np.float32), "v": np.arange(5, dtype=np.float32)}
    got = infer(model, feeds)
    for name, want in zip(["c", "e"], ort_run(path, feeds)):
        assert got[name].shape == want.shape
        np.testing.assert_allclose(got[name], want, rtol=RTOL, atol=ATOL)
    report = simulate(model, load_hw("edge"), "fp32")
    assert report.totals["macs"] == 3 * 5 + 4 * 3 * 5                     # the two matmuls, per inference
    code, out, err = cli(capsys, "run", path, "--hw", "edge", "--quiet")
    assert code == 0 and "MACs 75" in out and err == ""
    with pytest.raises(AccelsimError, match=r"input 'v' has shape \[2, 5\], the graph needs \[5\] \(the model has "
                                            r"no batch axis"):
        infer(model, {"s": feeds["s"], "v": np.zeros((2, 5), np.float32)})


def sequence_first_graph():
    """x [S=4, N, D=3] (sequence first, batch second) → MatMul [3, 2] → outputs [S, N, 2] and [N, S, 2]."""
    n = helper.make_node
    w = np.random.default_rng(1).standard_normal((3, 2)).astype(np.float32)
    return _model([n("MatMul", ["x", "w"], ["y"]), n("Transpose", ["y"], ["t"], perm=[1, 0, 2])],
                  [("x", TensorProto.FLOAT, [4, "N", 3])], [("y", TensorProto.FLOAT), ("t", TensorProto.FLOAT)],
                  {"w": w})


def test_a_batch_axis_that_is_not_first(tmp_path, capsys):
    path = save(sequence_first_graph(), tmp_path / "seq.onnx")
    with pytest.raises(AccelsimError, match=r"graph input 'x': dimension 1 \(N\) is dynamic: set it with --param N=INT"):
        import_onnx(path)
    imp = import_onnx(path, batch_axis=1)
    assert imp.model.batch_axis == 1 and imp.model.inputs["x"] == (4, 1, 3)
    assert imp.output_batch_axes == {"y": 1, "t": 0}
    x = np.random.default_rng(2).standard_normal((4, 5, 3)).astype(np.float32)          # a batch of 5 on axis 1
    assert fed_shape(imp.model, "x", 5) == x.shape
    got = infer(imp.model, {"x": x})
    for name, want in zip(["y", "t"], ort_run(path, {"x": x})):
        np.testing.assert_allclose(got[name], want, rtol=RTOL, atol=ATOL)
    code, out, err = cli(capsys, "run", path, "--hw", "edge", "--quiet", "--batch-axis", "1")
    assert code == 0 and "MACs 24" in out                                              # 4·1·3·2: one inference
    code, out, err = cli(capsys, "run", path, "--hw", "edge", "--quiet", "--batch-axis", "one")
    assert code == 2 and err.startswith("accelsim: error: --batch-axis: expected 'auto', 'none' or an axis")
    assert load_model(path, {"N": 2}, batch_axis="none").inputs["x"] == (4, 2, 3)     # as written, N set


def test_batch_axis_0_on_a_fixed_first_dimension(tmp_path):
    """[1, 3] fixed: no batch axis unless --batch-axis 0, which then runs a batch of any size along axis 0."""
    n = helper.make_node
    path = save(_model([n("Gemm", ["x", "w", "b"], ["y"])], [("x", TensorProto.FLOAT, [1, 3])],
                       [("y", TensorProto.FLOAT)], {"w": np.ones((3, 2), np.float32), "b": np.ones(2, np.float32)}),
                tmp_path / "fixed.onnx")
    assert load_model(path).inputs["x"] == (1, 3)
    model = load_model(path, batch_axis=0)
    assert model.batch_axis == 0 and model.inputs["x"] == (3,)
    x = np.arange(12, dtype=np.float32).reshape(4, 3)
    np.testing.assert_array_equal(infer(model, {"x": x})["y"], x.sum(1, keepdims=True) + 1 + np.zeros((4, 2)))


def test_float64_runs_in_float64_and_nothing_is_narrowed_silently(tmp_path, capsys):
    n = helper.make_node
    f64 = save(_model([n("Add", ["x", "c"], ["y"])], [("x", TensorProto.DOUBLE, [2, 3])], [("y", TensorProto.DOUBLE)],
                      {"c": np.full((2, 3), 1e200)}), tmp_path / "f64.onnx")
    x = np.full((2, 3), 3e222)
    y = infer(f64, {"x": x})["y"]
    assert y.dtype == np.float64 and np.array_equal(y, x + 1e200)
    f32 = save(_model([n("Relu", ["x"], ["y"])], [("x", TensorProto.FLOAT, [2, 3])], [("y", TensorProto.FLOAT)]),
               tmp_path / "f32.onnx")
    with pytest.raises(AccelsimError, match=r"input 'x' holds 3e\+222, outside float32's range"):
        infer(f32, {"x": x})
    np.savez(tmp_path / "in.npz", x=x)
    code, _, err = cli(capsys, "infer", f32, "--inputs", tmp_path / "in.npz", "--out", tmp_path / "o.npz")
    assert code == 2 and err.count("\n") == 1 and "outside float32's range" in err
    ints = save(_model([n("Add", ["a", "b"], ["y"])], [("a", TensorProto.INT64, [2]), ("b", TensorProto.INT64, [2])],
                       [("y", TensorProto.INT64)]), tmp_path / "i.onnx")
    got = infer(ints, {"a": np.array([2**40, 3]), "b": np.array([1, -5])})["y"]
    assert got.dtype == np.int64 and got.tolist() == [2**40 + 1, -2]


def test_old_opsets_are_converted_and_what_cannot_be_is_one_line(tmp_path, capsys):
    n = helper.make_node
    old = save(_model([n("Add", ["x", "b"], ["y"], broadcast=1)], [("x", TensorProto.FLOAT, [2, 3])],
                      [("y", TensorProto.FLOAT)], {"b": np.arange(3, dtype=np.float32)}, opset=6), tmp_path / "o6.onnx")
    imp = import_onnx(old)
    assert imp.notes == ["opset 6 converted to 9 by onnx.version_converter"]
    x = np.ones((2, 3), np.float32)
    np.testing.assert_array_equal(infer(imp.model, {"x": x})["y"], x + np.arange(3))
    code, out, _ = cli(capsys, "run", old, "--hw", "edge", "--quiet")
    assert code == 0 and "note: opset 6 converted to 9 by onnx.version_converter" in out
    new = save(_model([n("RMSNormalization", ["x", "s"], ["y"])], [("x", TensorProto.FLOAT, [2, 4])],
                      [("y", TensorProto.FLOAT)], {"s": np.ones(4, np.float32)}, opset=24), tmp_path / "o24.onnx")
    code, _, err = cli(capsys, "run", new, "--hw", "edge")
    assert code == 2 and err.count("\n") == 1
    assert "opset 24 is outside 7–22 and onnx.version_converter cannot convert it to 22: No Previous Version of " \
           "RMSNormalization exists" in err
