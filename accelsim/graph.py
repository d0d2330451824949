"""Model graphs: layers with inferred shapes, parameter and MAC counts.

A model is a list of layers in topological order. Each layer reads the tensors named in ``inputs``
(default: the previous layer's output, or the first model input for the first layer) and produces one
tensor named after the layer. Shapes describe one inference. See :mod:`accelsim.ops` for the operator vocabulary.

**The batch axis** (``Model.batch_axis``) says where a graph input carries the inferences of a batch — the one
notion of batch, what :func:`accelsim.lowering.batched` and ``simulate(batch=)`` scale:

* ``0`` (every model YAML; an imported graph whose inputs start with a symbolic dimension, or ``--batch-axis 0``):
  the batch axis is in front of every tensor and the shapes exclude it (an image is ``[C, H, W]``);
* ``None`` (an imported graph without one): the shapes are the graph's own, as written (a scalar is ``[]``); one
  inference is one run of the graph;
* ``k > 0`` (``--batch-axis k``): axis ``k`` of each graph input is the batch; the shapes are as written with 1 on
  that axis (one inference).

At run time every tensor carries one leading axis more than its shape: the inferences of a batch
(:mod:`accelsim.nn.graph_exec`; :func:`accelsim.inference.check_feeds` puts the fed batch there).

**Size bounds** (refused with the layer's path, see :mod:`accelsim.config.fields`): every dimension and model
parameter ≤ ``MAX_DIM = 2**31``; every tensor and every layer's parameter count ≤ ``MAX_ELEMENTS = 2**48``;
each layer's work ≤ ``MAX_MACS = 2**48`` MACs (GEMM layers, with each of M, N, K and the GEMM count ≤ 2**31) or
vector elements (:func:`size_problem`, checked again by :func:`accelsim.lowering.lower_layer`).
A model input sized by a parameter declared 0 (``past_len``: an empty KV cache) may be empty; no layer output may.

**One report per root cause**: a layer with a problem defines no tensor, and a later layer that reads it (by
name, or implicitly as the previous layer) is not checked against it; one line counts such layers.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Mapping

from .config.fields import MAX_DIM, MAX_ELEMENTS, MAX_MACS, MISSING, Reader, bound_text, join
from .errors import ConfigError, short
from .ops import OPS, Shape, ShapeError

WEIGHT_FORMATS = ("safetensors", "pth", "npz", "trained", "onnx", "gguf")
DATASETS = ("mnist", "photos", "lee")


@dataclass(frozen=True, slots=True)
class Layer:
    name: str
    op: str
    inputs: tuple[str, ...]
    attrs: Mapping[str, Any]
    in_shapes: tuple[Shape, ...]
    out_shape: Shape
    params: int
    precision: str | None = None
    weight: str | None = None      # tensor-name prefix of this layer's weights in the model's weights file


@dataclass(frozen=True, slots=True)
class Model:
    name: str
    inputs: Mapping[str, Shape]
    layers: tuple[Layer, ...]
    source: str = field(default="", compare=False)
    weights: Mapping[str, str] | None = None   # where real weights come from (see accelsim.data.weights)
    dataset: str | None = None                 # the evaluation task these weights are measured on
    dims: Mapping[str, int] = field(default_factory=dict)   # the named dimensions (YAML ``params``) as set
    batch_axis: int | None = 0                 # where graph inputs carry the batch (module docstring)
    dtypes: Mapping[str, str] | None = None    # graph input → numpy dtype name (imported graphs), else None
    warnings: tuple[str, ...] = field(default=(), compare=False)   # how the loader read the file (for the user)

    @property
    def params(self) -> int:
        return sum(layer.params for layer in self.layers)

    def layer(self, name: str) -> Layer:
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise KeyError(name)

    @classmethod
    def from_dict(cls, data, path: str = "model", source: str = "", overrides: Mapping[str, int] | None = None):
        """Validate a model description and infer every shape; one ConfigError lists all problems."""
        problems: list[str] = []
        r = Reader(data, path, problems)
        name = r.string("name", "model")
        params = _params(r.mapping("params", {}), overrides or {})
        inputs = _inputs(r, params)
        raw_layers = r.raw("layers", None if r.broken else MISSING)
        r.raw("description", None)
        weights = _weights_spec(r.mapping("weights")) if "weights" in r.data else None
        dataset = r.choice("dataset", DATASETS) if "dataset" in r.data else None
        r.reject_unknown()
        if not isinstance(raw_layers, list) or not raw_layers:
            if raw_layers is not None and raw_layers is not MISSING:
                r.bad("layers", "a non-empty list of layers", raw_layers)
            raise ConfigError(problems, source)
        layers = _layers(raw_layers, join(path, "layers"), dict(inputs), problems)
        if problems:
            raise ConfigError(problems, source)
        return cls(name, MappingProxyType(inputs), tuple(layers), source, weights, dataset, MappingProxyType(params))


def _weights_spec(r: Reader) -> Mapping[str, str]:
    """``weights: {format, package + module + path | file | trained}`` — validated, not loaded."""
    spec = {"format": r.choice("format", WEIGHT_FORMATS)}
    for key in ("package", "module", "path", "file", "trained"):
        if key in r.data:
            spec[key] = r.string(key)
    r.reject_unknown()
    sources = [k for k in ("module", "file", "trained") if k in spec]
    if len(sources) != 1:
        r.problems.append(f"{r.path}: expected exactly one source (module + path, file, or trained), got {sources}")
    elif sources == ["module"] and ("path" not in spec or "package" not in spec):
        r.problems.append(f"{r.path}: a module source needs 'package' (pip name) and 'path' (file in the package)")
    return MappingProxyType(spec)


def _params(r: Reader, overrides: Mapping[str, int]) -> dict[str, int]:
    """Model parameters: positive integers, except that one declared 0 (a count such as ``past_len``, the tokens
    already in a KV cache) takes any non-negative value; a zero then sizes an empty model input."""
    values = {key: r.nonneg_int(key) if r.data.get(key) == 0 else r.pos_int(key) for key in r.data}
    counts = {key for key in values if r.data.get(key) == 0}
    for key, value in overrides.items():
        low = 0 if key in counts else 1
        if key not in values:
            r.problems.append(f"{join(r.path, short(key))}: unknown model parameter "
                              f"(known: {', '.join(values) or 'none'})")
        elif isinstance(value, bool) or not isinstance(value, int) or value < low:
            kind = "non-negative" if low == 0 else "positive"
            r.problems.append(f"{join(r.path, key)}: expected a {kind} integer, got {short(repr(value))}")
        elif value > MAX_DIM:
            r.problems.append(f"{join(r.path, key)}: expected an integer ≤ {bound_text(MAX_DIM)}, "
                              f"got {short(value)}")
        else:
            values[key] = value
    return values


def _inputs(r: Reader, params: dict[str, int]) -> dict[str, Shape]:
    raw = r.raw("inputs", None if r.broken else MISSING)
    out: dict[str, Shape] = {}
    if not isinstance(raw, list) or not raw:
        if raw is not None and raw is not MISSING:
            r.bad("inputs", "a non-empty list of {name, shape}", raw)
        return out
    for i, item in enumerate(raw):
        ir = Reader(item, join(r.path, "inputs") + f"[{i}]", r.problems)
        name = ir.string("name")
        shape = ir.raw("shape")
        ir.raw("dtype", None)
        ir.reject_unknown()
        dims = []
        for d in shape if isinstance(shape, list) else [None]:   # [] is a scalar
            zero_ok = isinstance(d, str) and params.get(d) == 0    # an empty input (e.g. an empty KV cache)
            d = params.get(d, d) if isinstance(d, str) else d
            if isinstance(d, bool) or not isinstance(d, int) or d < (0 if zero_ok else 1):
                ir.bad("shape", "a list of positive integers or model parameter names", shape)
                break
            dims.append(d)
        else:
            problem = _shape_problem(tuple(dims))
            if problem:
                ir.problems.append(f"{join(ir.path, 'shape')}: {problem}")
            else:
                out[name] = tuple(dims)
    return out


def _shape_problem(shape: Shape) -> str | None:
    if any(d > MAX_DIM for d in shape):
        return f"dimensions must be ≤ {bound_text(MAX_DIM)}, got {short(list(shape))}"
    if math.prod(shape) > MAX_ELEMENTS:
        return f"a tensor must hold ≤ {bound_text(MAX_ELEMENTS)} elements, got {short(list(shape))}"
    return None


def size_problem(op: str, attrs: Mapping[str, Any], in_shapes: list[Shape], out: Shape) -> str | None:
    """Why a layer is too big for the cost model (module docstring: size bounds) or empty, or None."""
    if 0 in out:
        return f"output {list(out)} is empty (only a model input may be empty)"
    problem = _shape_problem(out)
    if problem:
        return f"output {problem}"
    d = OPS[op]
    if d.params(attrs, in_shapes) > MAX_ELEMENTS:
        return f"more than {bound_text(MAX_ELEMENTS)} parameters"
    if d.gemm is not None:
        g = d.gemm(attrs, in_shapes, out)
        if max(g.m, g.n, g.k, g.count) > MAX_DIM or g.m * g.n * g.k * g.count > MAX_MACS:
            return (f"GEMM m={short(g.m)}, n={short(g.n)}, k={short(g.k)} ×{short(g.count)}: each of m, n, k and the "
                    f"count must be ≤ {bound_text(MAX_DIM)} and the MACs ≤ {bound_text(MAX_MACS)}")
    elif d.vector_ops and d.elements(attrs, in_shapes, out) > MAX_MACS:
        return f"more than {bound_text(MAX_MACS)} vector elements"
    return None


def _layers(raw: list, path: str, tensors: dict[str, Shape], problems: list[str]) -> list[Layer]:
    layers: list[Layer] = []
    previous = next(iter(tensors), None)
    failed: set[str] = set()   # names of layers with a problem
    dependent = 0         # layers not checked because they read such an output
    for i, item in enumerate(raw):
        label = f"{path}[{i}]"
        if isinstance(item, dict) and isinstance(item.get("name"), str):
            label += f" ({short(item['name'])})"
        n_before = len(problems)
        r = Reader(item, label, problems)
        name, op = r.string("name"), r.string("op")
        inputs = _layer_inputs(r, previous)
        precision = r.string("precision", None) if "precision" in r.data else None
        weight = r.string("weight", None) if "weight" in r.data else None
        attrs = None
        if op and op not in OPS:
            r.bad("op", "one of " + ", ".join(sorted(OPS)), op)
        elif op:
            attrs = OPS[op].attrs(r)
            r.reject_unknown()
        blocked = any(t in failed for t in inputs)
        dependent += blocked
        missing = [t for t in inputs if t not in tensors and t not in failed]
        if missing:
            problems.append(f"{label}.inputs: unknown tensor(s) {short(missing)} (not a model input or earlier layer)")
        if name and name in tensors:
            problems.append(f"{label}.name: duplicate tensor name {short(name)!r}")
        out = None
        if len(problems) == n_before and not blocked:
            in_shapes = [tensors[t] for t in inputs]
            try:
                out = OPS[op].shape(attrs, in_shapes)
            except ShapeError as exc:
                problems.append(f"{label}: {op}: {exc}")
            else:
                problem = size_problem(op, attrs, in_shapes, out)
                if problem:
                    problems.append(f"{label}: {op}: {problem}")
                    out = None
        if out is None:   # no tensor: readers of this layer (by name or as "the previous layer") are not checked
            previous = name if name and name not in tensors else f"\0layer {i}"
            failed.add(previous)
            continue
        tensors[name] = out
        previous = name
        layers.append(Layer(name, op, tuple(inputs), MappingProxyType(attrs), tuple(in_shapes), out,
                            OPS[op].params(attrs, in_shapes), precision, weight))
    if dependent:
        problems.append(f"{path}: {dependent} later layer(s) read the output of a layer with a problem above "
                        "and were not checked further")
    return layers


def _layer_inputs(r: Reader, previous: str | None) -> list[str]:
    if "inputs" in r.data:
        value = r.raw("inputs")
        if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
            return list(value)
        r.bad("inputs", "a non-empty list of tensor names", value)
        return []
    if "input" in r.data:
        value = r.raw("input")
        if isinstance(value, str):
            return [value]
        r.bad("input", "a tensor name", value)
        return []
    return [previous] if previous else []

