"""Run any model (model YAML, bundled name, ONNX or GGUF file) on given inputs: FP32, or quantized (fake / int).

``infer(model, inputs, precision="fp32", ...)`` feeds ``inputs`` (graph input name → batched array) to the one
executor (:func:`accelsim.nn.graph_exec.run_graph`) and returns the outputs by graph output name (an ONNX model's
own output names; for a YAML model its last layer). An integer ``precision`` (``w8a8``, ``w4a8`` ...) calibrates
on ``calib_data`` (same keys; default: the inputs themselves) with ``calib`` and runs the plan in ``mode``
(``int``: bit-exact integer kernels; ``fake``: quantize-dequantize in float32). ``plan`` runs a given
:class:`~accelsim.nn.qexec.QuantPlan` instead (e.g. one imported from a quantized ONNX model).

A GGUF decoder LLM (or a model YAML with GGUF weights) takes ``input_ids`` (int ``[N, S]``) and returns ``logits``
``[N, S, vocab]`` (:func:`accelsim.llm.run.infer`).

A dynamically quantized plan (``quantize_dynamic`` models) runs all inputs in one call, since its activation
grids come from each call's range (as ONNX Runtime computes them over the whole input tensor).

Rules: every graph input must be given with the graph's shape and the batch where the model has its batch axis
(:attr:`accelsim.graph.Model.batch_axis`: in front for a model YAML; a model without one takes exactly its
shape, one inference); an error names the input. Unknown keys are an error. Float inputs take the graph input's
float type (float32 unless an ONNX graph says float64: a float64 model runs in float64), never silently narrowed
(a value outside float32's range is an error); integer inputs keep their type. Outputs come back as the graph
gives them (:func:`as_written`). ``read_npz``/``write_npz`` read and write the files of ``accelsim infer``
(written atomically: no partial file on failure).
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


def fed_shape(model: Model, name: str, n: int = 1) -> tuple:
    """The shape graph input ``name`` is fed with for ``n`` inferences (module docstring; without a batch axis
    ``n`` must be 1)."""
    shape, ax = tuple(model.inputs[name]), model.batch_axis
    if ax is None:
        if n != 1:
            raise AccelsimError(f"input {short(name)!r}: the model has no batch axis, so it runs one inference")
        return shape
    return (n, *shape) if ax == 0 else (*shape[:ax], n, *shape[ax + 1:])


def _fed_form(model: Model, name: str, x: np.ndarray, shape: tuple, what: str) -> np.ndarray:
    """``x`` as the graph takes it (module docstring: the batch axis) → the executor's form: the inferences of
    the batch on a leading axis, then the input's shape."""
    ax = model.batch_axis
    if ax == 0:
        ok, need = x.ndim == len(shape) + 1 and tuple(x.shape[1:]) == tuple(shape) and len(x) > 0, ["N", *shape]
    elif ax is None:
        ok, need = tuple(x.shape) == tuple(shape), list(shape)
    else:
        rest = lambda s: tuple(s[:ax]) + tuple(s[ax + 1:])  # noqa: E731
        ok = x.ndim == len(shape) and rest(x.shape) == rest(shape) and x.shape[ax] > 0
        need = [*shape[:ax], "N", *shape[ax + 1:]]
    if not ok:
        where = ("" if ax == 0 else " (the model has no batch axis: import it with --batch-axis K to run a batch "
                 "along axis K)" if ax is None else f" (the batch is axis {ax})")
        raise AccelsimError(f"{what}: input {short(name)!r} has shape {list(x.shape)}, the graph needs "
                            f"[{', '.join(map(str, need))}]{where}")
    if ax is None:
        return x[None]
    return x if ax == 0 else np.expand_dims(np.moveaxis(x, ax, 0), ax + 1)


def _typed(x: np.ndarray, declared: str | None, what: str, name: str) -> np.ndarray:
    """Float inputs take the graph input's float type (float32 unless it says otherwise), never silently
    narrowed: a finite value outside the narrower type's range is an error; integer inputs keep theirs."""
    if x.dtype.kind != "f":
        return x
    target = np.dtype(declared) if declared and np.dtype(declared).kind == "f" else np.dtype(np.float32)
    if target.itemsize < x.dtype.itemsize and x.size:
        finite = x[np.isfinite(x)]
        big = float(np.abs(finite).max(initial=0))
        if big > float(np.finfo(target).max):
            raise AccelsimError(f"{what}: input {short(name)!r} holds {big:.4g}, outside {target.name}'s range "
                                f"(the graph input is {target.name})")
    return x.astype(target, copy=False)


def check_feeds(model: Model, feeds: dict, what: str = "inputs") -> dict:
    """``feeds`` checked against the graph inputs (module docstring) and put in the executor's form (a leading
    axis of inferences); float arrays take the graph input's float type."""
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
        x = _fed_form(model, name, np.asarray(feeds[name]), shape, what)
        out[name] = _typed(x, (model.dtypes or {}).get(name), what, name)
    if len({len(x) for x in out.values()}) > 1:
        raise AccelsimError(f"{what}: inputs have different batch sizes {[len(x) for x in out.values()]}")
    return out


def as_written(model: Model, outputs: dict) -> dict:
    """Outputs in the executor's form (inferences on a leading axis) → as the graph gives them: unchanged with
    the batch in front; without a batch axis the one inference; with a batch axis k > 0 the batch moved to each
    output's own batch axis (an error for a batch > 1 where ONNX shape inference could not tell it)."""
    ax = model.batch_axis
    if ax == 0:
        return outputs
    if ax is None:
        return {k: v[0] for k, v in outputs.items()}
    from .onnx.importer import output_batch_axes_for
    axes = output_batch_axes_for(model)
    out = {}
    for k, v in outputs.items():
        kout = axes.get(k)
        if kout is None:
            if len(v) > 1:
                raise AccelsimError(f"output {short(k)!r}: ONNX shape inference does not tell which of its axes "
                                    f"carries the batch (axis {ax} of the inputs): feed one inference at a time")
            out[k] = v[0]
        else:
            out[k] = np.moveaxis(v.squeeze(kout + 1), 0, kout)
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


def infer(model, inputs: dict, precision: str | None = None, calib: str = "minmax", calib_data: dict | None = None,
          mode: str = "int", per_channel: bool = True, act_symmetric: bool = False, plan=None,
          params: dict | None = None, weight_params: dict | None = None, export_onnx: str | Path | None = None,
          weight_method: str = "rtn") -> dict:
    """Outputs of ``model`` (a bundled name, a path — YAML, SCALE-Sim CSV, ``.onnx`` — or a loaded Model; ``params``
    set a model's parameters as it is loaded) on ``inputs`` by graph output name (module docstring).

    ``precision=None`` runs a quantized ONNX model (ONNX Runtime QDQ / QOperator) on its own plan in ``mode`` and
    anything else in FP32; ``"fp32"`` runs float GEMMs (a quantized ONNX model keeps its Q/DQ layers).
    ``export_onnx`` writes the calibrated plan as ONNX QDQ (:func:`accelsim.onnx.exporter.export_onnx`);
    ``weight_method`` (``rtn`` | ``gptq``) is how a decoder LLM's weight-only precision rounds its weights."""
    from .config.loader import load_model
    from .nn.weights import load_model_weights
    from .hw.mac import parse_precision
    from .nn.qexec import QuantOps
    model = load_model(model, params)
    if model.weights and model.weights.get("format") == "gguf":    # a decoder LLM: input_ids → logits
        if export_onnx is not None or plan is not None:
            raise AccelsimError("a GGUF decoder runs FP32 or a --precision; it has no plan to export")
        from .llm.run import infer as infer_decoder
        return infer_decoder(model, inputs, precision, calib, weight_method)
    if weight_method != "rtn":
        raise AccelsimError("weight_method: GPTQ applies to decoder LLMs (GGUF weights)")
    feeds = check_feeds(model, inputs)
    weights = load_model_weights(model)
    if plan is None and precision is None and model.weights and model.weights.get("format") == "onnx":
        from .onnx.importer import quant_for
        plan, weight_params = quant_for(model)
    if plan is None and precision is not None and not parse_precision(precision).is_float:
        from .eval.pipeline import scheme_for
        scheme = scheme_for(precision, calib, per_channel, act_symmetric)
        calib_feeds = feeds if calib_data is None else check_feeds(model, calib_data, "calibration data")
        plan = calibrate(model, weights, calib_feeds, scheme)
    if export_onnx is not None:
        if plan is None or weight_params:
            raise AccelsimError("export: give an integer --precision (accelsim's own quantization plan) to export")
        from .onnx.exporter import export_onnx as write
        write(model, weights, export_onnx, plan)
    qops = None if plan is None else QuantOps(plan, mode, measure=False, weight_params=weight_params)
    # dynamic quantization takes each call's own range: one call over all inputs, as ONNX Runtime does
    batch = len(next(iter(feeds.values()))) if plan is not None and plan.scheme.dynamic else BATCH
    return as_written(model, run_batched(model, weights, feeds, qops, batch))


class _Batch:
    """Feeds of one batch (graph input → array); ``len`` is the number of samples."""
    __slots__ = ("feeds",)

    def __init__(self, feeds: dict):
        self.feeds = feeds

    def __len__(self) -> int:
        return len(next(iter(self.feeds.values())))


class DataTask:
    """Bring-your-own-data evaluation (``accelsim run/eval --data FILE.npz``) for :func:`accelsim.eval.pipeline.evaluate`.

    The npz holds one array per graph input (by name) and optionally ``labels`` (integer class per sample). Metrics
    compare the quantized outputs with FP32 on the same inputs: a 2-D output is treated as class scores
    (top-1 agreement, logit SQNR, and accuracy with labels); any other output reports its SQNR. Calibration uses
    ``calib`` (same keys; default: the evaluation inputs themselves, said so in the card)."""
    name = "data"
    calib_batch = 16

    def __init__(self, model: Model, data: dict, calib: dict | None = None, source: str = "--data",
                 calib_source: str | None = None):
        from .nn.weights import load_model_weights
        labels = data.get("labels")
        feeds = {k: v for k, v in data.items() if k != "labels" or k in model.inputs}
        self.graph, self.model_name = model, model.name
        self.feeds = check_feeds(model, feeds, source)
        n = len(next(iter(self.feeds.values())))
        if labels is not None and (np.ndim(labels) != 1 or len(labels) != n or np.asarray(labels).dtype.kind not in "iu"):
            raise AccelsimError(f"{source}: 'labels' must be {n} integer class indices, got shape {list(np.shape(labels))}")
        self.labels = labels if "labels" not in model.inputs else None
        self.calib = self.feeds if calib is None else check_feeds(model, calib, "calibration data")
        self.calib_source = calib_source or f"{source} (the evaluation inputs)"
        self.weights = load_model_weights(model)
        self.primary = "accuracy" if self.labels is not None else "top1_agreement"

    def describe_calibration(self) -> dict:
        return {"dataset": self.calib_source, "size": len(_Batch(self.calib))}

    def calibration(self) -> list:
        return [_Batch(b) for b in _batches(self.calib, self.calib_batch)]

    def eval_data(self) -> _Batch:
        return _Batch(self.feeds)

    def run(self, qops, data: _Batch):
        return next(iter(run_batched(self.graph, self.weights, data.feeds, qops).values()))

    def metrics(self, ref, out) -> dict:
        from .data.metrics import sqnr_db
        if ref.ndim != 2:
            self.primary = "sqnr_db"
            return {"sqnr_db": float(sqnr_db(ref, out)), "max_abs_diff": float(np.abs(ref - out).max())}
        m = {"top1_agreement": float(np.mean(ref.argmax(1) == out.argmax(1))), "logit_sqnr_db": float(sqnr_db(ref, out))}
        if self.labels is not None:
            m["accuracy"] = float(np.mean(out.argmax(1) == self.labels))
        return m
