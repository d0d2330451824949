"""Measured on this machine: FP32 and INT8 latency of real models under ONNX Runtime on the host CPU, next to
accelsim's estimate for ``hw_configs/host_cpu.yaml`` (a rough model of the same CPU as an array).

The model (real weights) is exported by accelsim as FP32 ONNX, and as ONNX QDQ with accelsim's own W8A8
plan (ONNX Runtime fuses it into QLinearConv, the integer kernels); inputs are random arrays of the model's
input shape (latency does not depend on the values). Batch 1, two intra-op threads, median of ``runs``
after warm-up. The simulator is not the device: the two columns are shown side by side, not fitted.
"""
from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np

from ..config.loader import load_hw, load_model
from ..sim.engine import simulate

MODELS = ("mnist_cnn", "efficientnet_lite0")


def _latency_ms(path: Path, feeds: dict, runs: int) -> float:
    import onnxruntime as ort
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 2
    sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    for _ in range(3):
        sess.run(None, feeds)
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        sess.run(None, feeds)
        times.append(time.perf_counter() - t0)
    return 1e3 * float(np.median(times))


def measure(name: str, runs: int = 30, seed: int = 0) -> dict:
    """Host ONNX Runtime latency (ms) of ``name`` in FP32 and accelsim-quantized W8A8, and accelsim's
    estimate of both on ``host_cpu``."""
    from ..nn.weights import load_model_weights
    from ..inference import infer
    from ..onnx.exporter import export_onnx
    model = load_model(name)
    rng = np.random.default_rng(seed)
    feeds = {k: rng.standard_normal((1, *shape)).astype(np.float32) for k, shape in model.inputs.items()}
    calib = {k: rng.standard_normal((16, *shape)).astype(np.float32) for k, shape in model.inputs.items()}
    with tempfile.TemporaryDirectory() as tmp:
        fp32, int8 = Path(tmp) / "fp32.onnx", Path(tmp) / "w8a8.onnx"
        export_onnx(model, load_model_weights(model), fp32)
        infer(model, feeds, "w8a8", calib_data=calib, export_onnx=int8)
        host = {"fp32": _latency_ms(fp32, feeds, runs), "w8a8": _latency_ms(int8, feeds, runs)}
    hw = load_hw("host_cpu")
    est = {p: simulate(model, hw, p).totals["latency_ms"] for p in ("fp32", "w8a8")}
    return {"model": name, "host_ms": host, "accelsim_ms": est,
            "host_speedup": host["fp32"] / host["w8a8"], "accelsim_speedup": est["fp32"] / est["w8a8"]}
