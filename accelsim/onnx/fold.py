"""Static shapes and constant folding of an ONNX graph (before it is mapped to accelsim ops).

Rules:

* **Graph inputs** are taken as written; named dynamic dimensions come from ``params`` (``--param NAME=INT``) and
  the batch axis, when there is one, is 1 (per inference): :mod:`accelsim.onnx.batch`.
* **Shapes** come from ONNX shape inference (``strict_mode``, ``data_prop``) on the graph with every folded
  tensor as a constant; an inference error is reported with ONNX's own message (it names the node).
* **Folding.** A node whose inputs are all constants (initializers, ``Constant`` outputs, folded tensors) is
  evaluated once with ``onnx.reference`` and its outputs become constants; ``Shape`` and ``Size`` of a tensor with
  a known shape are constants too. This repeats until nothing changes, so ``Shape → Gather → Unsqueeze → Concat →
  Reshape`` chains and ``ConstantOfShape`` weights disappear. Random ops are never folded. Initializers whose
  values are missing (absent external data) are not constants: anything computed from them stays in the graph.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import AccelsimError, short
from .batch import AUTO, input_shapes
from .opset import default_opset
from .proto import require_onnx

_NEVER_FOLD = {"RandomNormal", "RandomUniform", "RandomNormalLike", "RandomUniformLike", "Multinomial",
               "Bernoulli"}
_SMALL = 4096              # constants up to this many elements are shown to shape inference by value


@dataclass
class Folded:
    """A graph after folding: the nodes left, constants by name, every tensor's full (ONNX) shape, element types,
    graph inputs/outputs, the default-domain opset, the initializers without values and the batch axis."""
    nodes: list
    consts: dict
    shapes: dict
    dtypes: dict
    inputs: list
    outputs: list
    opset: int
    missing: dict           # initializer name → shape (values absent)
    batch_axis: int | None  # where the graph inputs carry the batch (accelsim.onnx.batch), None: nowhere


def _infer(onnx, model, nodes, consts, inputs, missing):
    """ONNX shape inference on ``nodes`` with big constants and value-less initializers as typed inputs."""
    from onnx import helper, numpy_helper
    graph_inputs = [helper.make_tensor_value_info(n, et, s) for n, (et, s) in inputs.items()]
    inits = []
    for name, v in consts.items():
        if v.size <= _SMALL:
            inits.append(numpy_helper.from_array(v, name))
        else:
            graph_inputs.append(helper.make_tensor_value_info(name, helper.np_dtype_to_tensor_dtype(v.dtype), v.shape))
    graph_inputs += [helper.make_tensor_value_info(n, et, s) for n, (et, s) in missing.items()]
    g = helper.make_graph(nodes, model.graph.name or "g", graph_inputs, list(model.graph.output), inits)
    m = helper.make_model(g, opset_imports=list(model.opset_import), ir_version=max(model.ir_version, 7))
    try:
        m = onnx.shape_inference.infer_shapes(m, check_type=True, strict_mode=True, data_prop=True)
    except Exception as exc:   # onnx.shape_inference.InferenceError and checker errors: ONNX names the node
        raise AccelsimError(f"ONNX shape inference failed: {short(' '.join(str(exc).split()), 300)}") from None
    shapes, dtypes = {}, {}
    for vi in list(m.graph.value_info) + list(m.graph.output) + list(m.graph.input):
        t = vi.type.tensor_type
        if vi.type.HasField("tensor_type") and t.HasField("shape"):
            dims = tuple(d.dim_value if d.HasField("dim_value") else -1 for d in t.shape.dim)
            shapes[vi.name] = dims
            dtypes[vi.name] = t.elem_type
    return shapes, dtypes


def _dequantize(node, values: list) -> list:
    """DequantizeLinear with accelsim's ONNX Runtime-exact kernel (``float32(q − zp) · scale``, per tensor or axis)."""
    from ..quant import dequantize_linear
    q, scale = values[0], values[1]
    zp = values[2] if len(values) > 2 else None
    axis = next((a.i for a in node.attribute if a.name == "axis"), 1) if np.ndim(scale) else None
    if q.dtype == np.int32:     # int32 bias codes: float32(q − zp) · scale
        s = scale if axis is None else np.reshape(scale, [-1 if i == axis % q.ndim else 1 for i in range(q.ndim)])
        z = 0 if zp is None else (zp if axis is None else np.reshape(zp, np.shape(s)))
        return [((q - z).astype(np.float32) * s).astype(np.float32)]
    return [dequantize_linear(q, scale, zp, axis=axis)]


NATIVE = {"DequantizeLinear": _dequantize}
"""Folds done by accelsim's own kernels (ONNX Runtime semantics; also opsets ``onnx.reference`` lacks)."""


def _evaluate(node, values: list, opset: int) -> list:
    """The node's outputs by ``onnx.reference`` at the model's opset (a one-node model: a bare NodeProto would be
    evaluated at the newest opset, e.g. Unsqueeze-13 where opset 9 has ``axes`` as an attribute)."""
    from onnx import TypeProto, helper
    from onnx.reference import ReferenceEvaluator
    try:
        feeds = {n: np.asarray(v) for n, v in zip([i for i in node.input if i], values)}
        ins = [helper.make_tensor_value_info(n, helper.np_dtype_to_tensor_dtype(v.dtype), v.shape)
               for n, v in feeds.items()]
        outs = [helper.make_value_info(o, TypeProto()) for o in node.output if o]
        model = helper.make_model(helper.make_graph([node], "fold", ins, outs),
                                  opset_imports=[helper.make_opsetid("", opset)])
        return [np.asarray(v) for v in ReferenceEvaluator(model).run(None, feeds)]
    except Exception as exc:   # the reference evaluator raises many types; all mean "this node is invalid"
        raise AccelsimError(f"node {short(node.name or node.output[0])!r} ({node.op_type}): cannot fold constant "
                            f"inputs: {short(exc)}") from None


def _shape_value(node, shape) -> np.ndarray | None:
    if shape is None or -1 in shape:
        return None
    if node.op_type == "Size":
        return np.asarray(int(np.prod(shape)), np.int64)
    attrs = {a.name: a.i for a in node.attribute}
    start, end = attrs.get("start", 0), attrs.get("end", len(shape))
    return np.asarray(shape[slice(start, end)], np.int64)


def fold(model, missing_names, params: dict, batch_axis=AUTO) -> Folded:
    """Fix the input dimensions, infer shapes and fold constants (module docstring)."""
    onnx = require_onnx()
    from onnx import numpy_helper
    opset = default_opset(model)
    g = model.graph
    init_names = {t.name for t in g.initializer}
    consts, missing = {}, {}
    for t in g.initializer:
        if t.name in missing_names:
            missing[t.name] = (t.data_type, tuple(t.dims))
        else:
            try:
                consts[t.name] = numpy_helper.to_array(t)
            except Exception as exc:   # malformed tensor payloads (wrong byte count, bad type)
                raise AccelsimError(f"initializer {short(t.name)!r}: unreadable ({short(exc)})") from None
    inputs, batch_axis = input_shapes([vi for vi in g.input if vi.name not in init_names], params, batch_axis)
    nodes = list(g.node)
    for node in nodes:
        if node.domain not in ("", "ai.onnx", "com.microsoft"):
            raise AccelsimError(f"node {short(node.name or node.output[0])!r} ({node.op_type}): operator domain "
                                f"{short(node.domain)!r} is not supported")
    for _ in range(16):
        shapes, dtypes = _infer(onnx, model, nodes, consts, inputs, missing)
        left, changed = [], False
        for node in nodes:
            value = None
            if node.op_type in ("Shape", "Size"):
                value = _shape_value(node, shapes.get(node.input[0]))
                out = None if value is None else [value]
            elif node.op_type not in _NEVER_FOLD and node.domain in ("", "ai.onnx") and all(
                    not n or n in consts for n in node.input):
                vals = [consts[n] for n in node.input if n]
                out = NATIVE[node.op_type](node, vals) if node.op_type in NATIVE else _evaluate(node, vals, opset)
            else:
                out = None
            if out is None:
                left.append(node)
                continue
            consts.update((n, v) for n, v in zip(node.output, out) if n)
            changed = True
        nodes = left
        if not changed:
            break
    return Folded(nodes, consts, shapes, dtypes, list(inputs), [o.name for o in g.output], opset, missing,
                  batch_axis)
