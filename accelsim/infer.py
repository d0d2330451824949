"""Run any model (model YAML, bundled name or ONNX file) on given inputs: FP32, or quantized (fake / int).

``infer(model, inputs, precision="fp32", ...)`` feeds ``inputs`` (graph input name → batched array) to the one
executor (:func:`accelsim.nn.graph_exec.run_graph`) and returns the outputs by graph output name (an ONNX model's
own output names; for a YAML model its last layer). An integer ``precision`` (``w8a8``, ``w4a8`` ...) calibrates
on ``calib_data`` (same keys; default: the inputs themselves) with ``calib`` and runs the plan in ``mode``
(``int``: bit-exact integer kernels; ``fake``: quantize-dequantize in float32). ``plan`` runs a given
:class:`~accelsim.nn.qexec.QuantPlan` instead (e.g. one imported from a quantized ONNX model).

Rules: every graph input must be given with the graph's shape after the batch axis (an error names the input);
unknown keys are an error; float inputs run in float32. ``read_npz``/``write_npz`` read and write the files of
``accelsim infer`` (written atomically: no partial file on failure).
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np

from .errors import AccelsimError, short
from .graph import Model

BATCH = 32


def read_npz(path: str | Path, what: str = "--inputs") -> dict:
    try:
        with np.load(path, allow_pickle=False) as data:
            return {k: data[k] for k in data.files}
    except (OSError, ValueError, EOFError) as exc:
        raise AccelsimError(f"{what} {short(path)}: not a readable .npz ({short(exc)})") from None


def write_npz(path: str | Path, arrays: dict) -> None:
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent if str(path.parent) else ".", prefix=f".{path.name}.", suffix=".npz")
    os.close(fd)
    try:
        np.savez(tmp, **arrays)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def check_feeds(model: Model, feeds: dict, what: str = "inputs") -> dict:
    """``feeds`` checked against the graph inputs (module docstring); float arrays as float32."""
    missing = [n for n in model.inputs if n not in feeds]
    if missing:
        raise AccelsimError(f"{what}: graph input {short(missing[0])!r} is missing (graph inputs: "
                            f"{short(', '.join(model.inputs))}; given: {short(', '.join(feeds) or 'none')})")
    extra = [k for k in feeds if k not in model.inputs]
    if extra:
        raise AccelsimError(f"{what}: {short(extra[0])!r} is not a graph input (graph inputs: "
                            f"{short(', '.join(model.inputs))})")
    out = {}
    for name, shape in model.inputs.items():
        x = np.asarray(feeds[name])
        if x.ndim != len(shape) + 1 or tuple(x.shape[1:]) != tuple(shape) or len(x) == 0:
            raise AccelsimError(f"{what}: input {short(name)!r} has shape {list(x.shape)}, the graph needs "
                                f"[N, {', '.join(map(str, shape))}]")
        out[name] = x.astype(np.float32) if x.dtype.kind == "f" else x
    if len({len(x) for x in out.values()}) > 1:
        raise AccelsimError(f"{what}: inputs have different batch sizes {[len(x) for x in out.values()]}")
    return out


def output_names(model: Model) -> dict:
    """Graph output name → accelsim tensor (ONNX: the graph outputs; YAML: the last layer)."""
    if model.weights and model.weights.get("format") == "onnx":
        from .onnx.importer import outputs_for
        return outputs_for(model)
    return {model.layers[-1].name: model.layers[-1].name}


def _batches(feeds: dict, batch: int):
    n = len(next(iter(feeds.values())))
    for i in range(0, n, batch):
        yield {k: v[i:i + batch] for k, v in feeds.items()}


def run_batched(model: Model, weights: dict, feeds: dict, qops=None, batch: int = BATCH) -> dict:
    """:func:`run_graph` over ``feeds`` in batches; outputs by graph output name."""
    from .nn.graph_exec import run_graph
    names = output_names(model)
    parts = [run_graph(model, weights, b, qops, outputs=list(dict.fromkeys(names.values())))
             for b in _batches(feeds, batch)]
    return {o: np.concatenate([p[t] for p in parts]) for o, t in names.items()}


def calibrate(model: Model, weights: dict, calib: dict, scheme, batch: int = BATCH):
    """A :class:`QuantPlan` of ``scheme`` from the calibration feeds."""
    from .nn.qexec import Calibrator
    cal = Calibrator(scheme)
    for b in _batches(calib, batch):
        run_batched(model, weights, b, cal, batch)
        cal.samples += len(next(iter(b.values())))
    return cal.plan()


def infer(model, inputs: dict, precision: str = "fp32", calib: str = "minmax", calib_data: dict | None = None,
          mode: str = "int", per_channel: bool = True, act_symmetric: bool = False, plan=None,
          params: dict | None = None) -> dict:
    """Outputs of ``model`` on ``inputs`` by graph output name (module docstring)."""
    from .config.loader import load_model
    from .data.weights import load_model_weights
    from .hw.mac import parse_precision
    from .nn.qexec import QuantOps
    model = model if isinstance(model, Model) else load_model(model, params)
    feeds = check_feeds(model, inputs)
    weights = load_model_weights(model)
    if plan is None and not parse_precision(precision).is_float:
        from .eval.pipeline import scheme_for
        scheme = scheme_for(precision, calib, per_channel, act_symmetric)
        calib_feeds = feeds if calib_data is None else check_feeds(model, calib_data, "calibration data")
        plan = calibrate(model, weights, calib_feeds, scheme)
    return run_batched(model, weights, feeds, None if plan is None else QuantOps(plan, mode, measure=False))
