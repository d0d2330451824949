"""ONNX file → accelsim :class:`~accelsim.graph.Model` + weights, on the one op registry and executor.

``import_onnx(path, params)`` reads the file (:mod:`.proto`), fixes dynamic dimensions, infers shapes and folds
constants (:mod:`.fold`), then maps each remaining node through the table in :mod:`.ops_map`. The layers are
validated by :meth:`Model.from_dict` (the same rules as a model YAML), and every layer's shape is compared with
ONNX shape inference: a difference is an error naming the node. Layer names are the ONNX output tensor names, so
``accelsim infer`` writes outputs under the graph's own names.

Errors are one line naming the node and op (``node 'conv1' (Conv): ...``). An op outside the table is an error,
or with ``unsupported="vector"`` a ``vector`` layer costed as one vector op per output element (not executable).
Initializers whose external data is absent leave the model costable (shapes only): ``OnnxImport.notes`` says so
and ``weights`` lacks them.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType

import numpy as np

from ..errors import AccelsimError, ConfigError, short
from ..graph import Model
from .batch import output_batch_axes, parse_batch_axis
from .fold import fold
from .ops_map import CONVERTERS
from .opset import upgrade
from .proto import read_model


@dataclass
class OnnxImport:
    """An imported ONNX model: the graph, its weights (name → array), ONNX graph inputs/outputs → accelsim tensor
    names, notes for the report (opset converted, weights absent) and the input dtypes (ONNX element types)."""
    model: Model
    weights: dict
    inputs: dict
    outputs: dict
    notes: list = field(default_factory=list)
    plan: object = None              # QuantPlan of a quantized (QDQ / QOperator) model, else None
    weight_params: dict | None = None  # its weight grids by layer (QuantOps(weight_params=...))
    absent: str = ""                 # why it cannot be executed (weights absent), else empty
    output_batch_axes: dict = field(default_factory=dict)   # with a batch axis k > 0: graph output → its batch axis


_DTYPES = {1: "float32", 2: "uint8", 3: "int8", 4: "uint16", 5: "int16", 6: "int32", 7: "int64", 9: "bool",
           10: "float16", 11: "float64", 12: "uint32", 13: "uint64"}
"""ONNX element type → numpy dtype name of a graph input."""


class _Builder:
    def __init__(self, f, unsupported: str):
        self.f, self.unsupported = f, unsupported
        self.layers: list[dict] = []
        self.weights: dict = {}
        self.tensor: dict = {n: n for n in f.inputs}          # ONNX name → accelsim tensor
        self.expected: dict = {}                                  # accelsim layer → ONNX full shape
        self.labels: dict = {}                                    # accelsim layer → "node (OpType)"
        self.nodes: dict = {}                                     # accelsim layer → its ONNX node
        self.wsrc: dict = {}                                      # accelsim layer → {input index: ONNX name}
        self.qadd_out: dict = {}                                  # Q output of a fused QLinearAdd → the Add output
        self.off = 1 if f.batch_axis == 0 else 0                  # ONNX axis a is accelsim axis a − off
        self.producer = {o: node for node in f.nodes for o in node.output}
        self.readers: dict = {}
        for node in f.nodes:
            for i in node.input:
                self.readers.setdefault(i, []).append(node)

    def full(self, name: str, node) -> tuple:
        if name in self.f.consts:
            return tuple(self.f.consts[name].shape)
        if name in self.f.missing:
            return self.f.missing[name][1]
        shape = self.f.shapes.get(name)
        if shape is None or -1 in shape:
            NodeView(node, self).fail(f"tensor {short(name)!r} has no static shape after shape inference")
        return tuple(shape)

    def constant(self, name: str, rank: int, node) -> str:
        """A constant input as a ``constant`` layer; with a batch axis in front, a constant of the output's rank
        has its leading 1 dropped (it broadcasts over the batch) and any other leading size is refused."""
        key = f"{name}#{rank}"
        if key not in self.tensor:
            v = self.f.consts.get(name)      # None: data absent, shape known (cost-only)
            shape = self.full(name, node)
            if self.off and len(shape) == rank:
                if shape[0] != 1:
                    NodeView(node, self).fail(f"constant {short(name)!r} {list(shape)} spans the batch axis "
                                              "(import with --batch-axis none to run the graph as written)")
                shape, v = shape[1:], None if v is None else v[0]
            self.constant_layer(key, shape, None if v is None else float_value(v))
        return key

    def constant_layer(self, key: str, shape, value) -> str:
        """A ``constant`` layer ``key`` of ``shape`` holding ``value`` (None: data absent)."""
        if value is not None:
            self.weights[f"{key}.value"] = value
        # a layer reads ≥ 1 tensor: a constant names the first graph input (and ignores it)
        self.layers.append(dict(name=key, op="constant", shape=list(shape), weight=key, inputs=[self.f.inputs[0]]))
        self.expected[key] = (1,) * self.off + tuple(shape)
        self.tensor[key] = key
        return key


def float_value(v: np.ndarray) -> np.ndarray:
    """A constant as the executor holds it: float64 stays float64 (a float64 model runs in float64), other floats
    become float32, integers keep their type."""
    return v.astype(np.float32) if v.dtype.kind == "f" and v.dtype != np.float64 else v


class NodeView:
    """What a converter in :mod:`.ops_map` sees of one node: attributes, constants, shapes; ``emit`` a layer."""

    def __init__(self, node, b: _Builder):
        self.node, self.b, self.opset, self.off = node, b, b.f.opset, b.off

    def fail(self, why: str):
        raise AccelsimError(f"node {short(self.node.name or self.node.output[0])!r} ({self.node.op_type}): {why}")

    def attr(self, name: str, default=...):
        from onnx import helper
        for a in self.node.attribute:
            if a.name == name:
                v = helper.get_attribute_value(a)
                return v.decode() if isinstance(v, bytes) else v
        if default is ...:
            self.fail(f"required attribute {name!r} is missing")
        return default

    def has(self, i: int) -> bool:
        return i < len(self.node.input) and bool(self.node.input[i])

    def _name(self, i: int) -> str:
        if not self.has(i):
            self.fail(f"input {i} is missing")
        return self.node.input[i]

    def is_const(self, i: int) -> bool:
        return self.has(i) and self.node.input[i] in self.b.f.consts

    def is_weight(self, i: int) -> bool:
        return self.has(i) and (self.node.input[i] in self.b.f.consts or self.node.input[i] in self.b.f.missing)

    def const(self, i: int):
        return self.b.f.consts.get(self.node.input[i]) if self.has(i) else None

    def weight(self, i: int):
        """A weight input as a float array (float64 kept, else float32), or None if its data is absent
        (cost-only); an error if computed."""
        if not self.is_weight(i):
            self.fail(f"input {i} ({short(self._name(i))}) must be a constant (initializer), not computed")
        self.b.wsrc.setdefault(self.node.output[0], {})[i] = self.node.input[i]
        v = self.const(i)
        return None if v is None else np.asarray(v, dtype=np.float64 if v.dtype == np.float64 else np.float32)

    def weight_shape(self, i: int) -> tuple:
        if not self.is_weight(i):
            self.fail(f"input {i} ({short(self._name(i))}) must be a constant (initializer), not computed")
        return self.b.full(self._name(i), self.node)

    def dtype_in(self, i: int) -> int:
        return self.b.f.dtypes.get(self._name(i), 1)

    def full(self, i: int) -> tuple:
        return self.b.full(self._name(i), self.node)

    def full_out(self, j: int = 0) -> tuple:
        return self.b.full(self.node.output[j], self.node)

    def x(self, i: int) -> str:
        """The accelsim tensor for input ``i`` (constants become ``constant`` layers)."""
        name = self._name(i)
        if name in self.b.f.consts or name in self.b.f.missing:
            return self.b.constant(name, len(self.full_out()), self.node)
        if name not in self.b.tensor:
            self.fail(f"input {short(name)!r} is not produced by any supported node")
        return self.b.tensor[name]

    def producer(self, i: int):
        """The node computing input ``i`` (None for graph inputs and constants)."""
        return self.b.producer.get(self.node.input[i]) if self.has(i) else None

    def readers(self, j: int = 0) -> list:
        """The nodes reading output ``j`` (a graph output also counts as a reader: ``None``)."""
        out = self.node.output[j]
        return list(self.b.readers.get(out, [])) + ([None] if out in self.b.f.outputs else [])

    def alias(self, tensor: str, j: int = 0):
        self.b.tensor[self.node.output[j]] = tensor

    def emit(self, op: str, inputs: list, attrs: dict, weights: dict | None = None, out: int = 0) -> str:
        """The layer computing output ``out`` of this node."""
        full = self.full_out(out)
        if self.off and (not full or full[0] != 1):
            self.fail(f"output {list(full)} does not keep the batch axis first (import with --batch-axis none to "
                      "run the graph as written)")
        return self._layer(self.node.output[out], op, inputs, attrs, weights, full)

    def emit_temp(self, op: str, inputs: list, attrs: dict, suffix: str, full) -> str:
        """An intermediate layer of a node lowered to several, named ``<output 0><suffix>``; ``full``: its ONNX
        shape."""
        return self._layer(self.node.output[0] + suffix, op, inputs, attrs, None, tuple(full))

    def synth(self, key: str, value: np.ndarray) -> str:
        """A ``constant`` layer holding ``value`` (a scalar or small array the conversion needs)."""
        return self.b.constant_layer(key, value.shape, value)

    def float_type(self):
        """The float type of this node's output: float64 in a float64 graph, else float32."""
        return np.float64 if self.b.f.dtypes.get(self.node.output[0]) == 11 else np.float32

    def _layer(self, name: str, op: str, inputs: list, attrs: dict, weights: dict | None, full: tuple) -> str:
        layer = dict(name=name, op=op, inputs=list(inputs), **attrs)
        if weights:
            layer["weight"] = name
            for suffix, v in weights.items():
                if v is not None:
                    self.b.weights[f"{name}.{suffix}"] = v
        self.b.layers.append(layer)
        self.b.tensor[name] = name
        self.b.expected[name] = full
        self.b.labels[name] = f"node {short(self.node.name or name)!r} ({self.node.op_type})"
        self.b.nodes[name] = self.node
        return name


def _vector(n: NodeView):
    for j, out in enumerate(n.node.output):
        if out:
            acts = [n.x(i) for i in range(len(n.node.input)) if n.has(i) and not n.is_weight(i)]
            n.emit("vector", acts, dict(shape=list(n.full_out(j)[n.off:]), onnx_op=n.node.op_type), out=j)


def _convert(node, b: _Builder):
    n = NodeView(node, b)
    fn = CONVERTERS.get(node.op_type) if node.domain in ("", "ai.onnx", "com.microsoft") else None
    if fn is None:
        if b.unsupported != "vector":
            n.fail("unsupported operator (use --unsupported vector to cost it as vector work)")
        fn = _vector
    fn(n)


def import_onnx(path: str | Path, params: dict | None = None, unsupported: str = "error",
                shapes: dict | None = None, batch_axis="auto") -> OnnxImport:
    """Import an ONNX model (module docstring). ``params`` sets named dynamic dimensions (``--param``);
    ``batch_axis`` (``--batch-axis``): ``"auto"``, ``None`` or an axis (:mod:`accelsim.onnx.batch`); ``shapes``
    (graph input → full shape) fixes inputs directly (used to re-load weights of an imported model)."""
    if unsupported not in ("error", "vector"):
        raise AccelsimError(f"unsupported: expected 'error' or 'vector', got {short(unsupported)!r}")
    batch_axis = parse_batch_axis(batch_axis)
    from .quantized import build_plan, is_quantized, to_qdq
    proto, missing = read_model(path)
    proto, upgraded = upgrade(proto)
    if shapes:
        _fix_inputs(proto, shapes)
    quantized, dynamic = is_quantized(proto), set()
    if quantized:
        dynamic = to_qdq(proto)
    original = list(proto.graph.node)
    f = fold(proto, set(missing), dict(params or {}), batch_axis)
    b = _Builder(f, unsupported)
    for node in f.nodes:
        _convert(node, b)
    outputs = {}
    for o in f.outputs:
        if o not in b.tensor:
            raise AccelsimError(f"graph output {short(o)!r} is a constant or not computed by the graph")
        outputs[o] = b.tensor[o]
    data = dict(name=proto.graph.name or Path(path).stem, layers=b.layers,
                inputs=[dict(name=n, shape=list(f.shapes[n][b.off:])) for n in f.inputs],
                weights=dict(format="onnx", file=str(Path(path).resolve())))
    try:
        model = Model.from_dict(data, "model", source=str(path))
    except ConfigError as exc:
        raise AccelsimError(f"{short(path)}: the imported graph is invalid: {exc.problems[0]}") from None
    model = replace(model, batch_axis=f.batch_axis, dtypes=MappingProxyType(
        {n: _DTYPES.get(f.dtypes.get(n, 1), "float32") for n in f.inputs}))
    _check_weights(model, b)
    for layer in model.layers:
        want = b.expected[layer.name][b.off:]
        if tuple(layer.out_shape) != tuple(want):
            raise AccelsimError(f"node output {short(layer.name)!r} ({layer.op}): accelsim infers "
                                f"{list(layer.out_shape)}, ONNX {list(want)}")
    notes = [upgraded] if upgraded else []
    absent = ""
    if missing:
        absent = (f"weights absent ({len(missing)} initializers' external data not found, e.g. "
                  f"{short(missing[0])}): costed from shapes only, cannot be executed")
        notes.append(absent)
    imp = OnnxImport(model, b.weights, {n: n for n in f.inputs}, outputs, notes, absent=absent)
    if f.batch_axis:   # a batch axis k > 0: where each output carries it
        imp.output_batch_axes = output_batch_axes(proto, {n: f.shapes[n] for n in f.inputs}, f.batch_axis)
    if quantized:
        imp.plan, imp.weight_params = build_plan(model, b, original, f.consts, dynamic)
    return imp


def _check_weights(model: Model, b: _Builder):
    """Every bound weight has the shape its op needs (an initializer that does not fit its use)."""
    from ..ops import OPS
    for layer in model.layers:
        if layer.weight is None:
            continue
        for suffix, shape in OPS[layer.op].weights(layer.attrs, list(layer.in_shapes)).items():
            v = b.weights.get(f"{layer.weight}.{suffix}")
            if v is not None and tuple(v.shape) != tuple(shape):
                raise AccelsimError(f"{b.labels.get(layer.name, layer.name)}: {suffix} initializer has "
                                    f"shape {list(v.shape)}, the {layer.op} needs {list(shape)}")


def _fix_inputs(proto, shapes: dict):
    for vi in proto.graph.input:
        if vi.name in shapes:
            for d, v in zip(vi.type.tensor_type.shape.dim, shapes[vi.name]):
                d.dim_value = int(v)


_CACHE: dict = {}          # (path, mtime, size, params, unsupported) → OnnxImport; the last few imports
_CACHE_SIZE = 4


def _key(path, params, unsupported, batch_axis):
    p = Path(path).resolve()
    try:
        st = p.stat()
    except OSError:
        return None
    return (str(p), st.st_mtime_ns, st.st_size, tuple(sorted((params or {}).items())), unsupported, batch_axis)


def cached_import(path: str | Path, params: dict | None = None, unsupported: str = "error",
                  batch_axis="auto") -> OnnxImport:
    """:func:`import_onnx`, remembered for the last few (path, mtime, params, batch axis) so that costing,
    weights and notes of one model parse the file once."""
    key = _key(path, params, unsupported, batch_axis)
    if key is not None and key in _CACHE:
        return _CACHE[key]
    imp = import_onnx(path, params, unsupported, batch_axis=batch_axis)
    if key is not None:
        while len(_CACHE) >= _CACHE_SIZE:
            _CACHE.pop(next(iter(_CACHE)))
        _CACHE[key] = imp
    return imp


def _find(model: Model) -> OnnxImport:
    """The import a model came from: the cached one, else a re-import of its file with its input shapes and
    batch axis."""
    for imp in reversed(list(_CACHE.values())):
        if imp.model is model:
            return imp
    lead = (1,) if model.batch_axis == 0 else ()
    return import_onnx(model.weights["file"], shapes={n: (*lead, *s) for n, s in model.inputs.items()},
                       batch_axis=model.batch_axis)


def weights_for(model: Model) -> dict:
    """The weights of an imported model (``weights: {format: onnx, file}``); an error when they are absent."""
    imp = _find(model)
    if imp.absent:
        raise AccelsimError(f"{short(model.source or model.name)}: cannot execute: {imp.absent}")
    return imp.weights


def _imported(model: Model) -> bool:
    return bool(model.weights and model.weights.get("format") == "onnx")


def quant_for(model: Model):
    """``(plan, weight_params)`` of an imported quantized ONNX model, ``(None, None)`` for anything else."""
    if not _imported(model):
        return None, None
    imp = _find(model)
    return imp.plan, imp.weight_params


def notes_for(model: Model) -> list:
    """Report notes of an imported model (opset converted, weights absent), empty for other models."""
    return list(_find(model).notes) if _imported(model) else []


def outputs_for(model: Model) -> dict:
    """ONNX graph output name → accelsim tensor of an imported model."""
    return dict(_find(model).outputs)


def output_batch_axes_for(model: Model) -> dict:
    """Graph output name → its batch axis, for an imported model with a batch axis k > 0 (else empty)."""
    return dict(_find(model).output_batch_axes) if _imported(model) and model.batch_axis else {}
