"""accelsim graph → ONNX: FP32, or accelsim's quantization plan as QDQ that ONNX Runtime runs identically.

``export_onnx(model, weights, path, plan=None)`` writes one ONNX node (or a few) per accelsim layer through the
table :data:`EXPORTERS`; the batch axis is a symbolic ``N``; tensor names are the layer names.

With a :class:`~accelsim.nn.qexec.QuantPlan` (8-bit weights and activations), every quantized conv/linear is
written exactly as accelsim's int mode computes it (:class:`~accelsim.nn.qexec.QuantOps`):
``x → QuantizeLinear(x grid) → DequantizeLinear → Conv(DQ(int8 weight codes, per-channel scales, axis 0),
DQ(int32 bias codes, scale x_scale·w_scale)) → QuantizeLinear(y grid) → DequantizeLinear → [Relu | Clip(0, 6)]``.
The codes are the ones accelsim's executor uses (a following batchnorm folded into the weights, the same bias
headroom), so ONNX Runtime's QDQ fusion (DQ → Conv → Q ⇒ QLinearConv) computes the same integers. A linear layer
is written as a 1×1 Conv on ``[N, K, 1, 1]`` (QLinearConv has the bias and per-channel requantization that
accelsim's ``qlinear_matmul(bias=)`` uses; ONNX Runtime's QGemm is a different kernel). The fused activation is
applied after the output DequantizeLinear, as accelsim applies it to the dequantized codes. Everything else runs
in float on dequantized values, as in accelsim.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import AccelsimError, short
from ..graph import Layer, Model
from .proto import require_onnx


class _Writer:
    def __init__(self, model: Model, weights: dict, plan, qops):
        from onnx import helper, numpy_helper
        self.h, self.nh = helper, numpy_helper
        self.model, self.weights, self.plan, self.qops = model, weights, plan, qops
        self.nodes, self.inits, self.tensor = [], [], {n: n for n in model.inputs}
        self._n = 0

    def fresh(self, base: str) -> str:
        self._n += 1
        return f"{base}__{self._n}"

    def const(self, base: str, value) -> str:
        name = self.fresh(base)
        self.inits.append(self.nh.from_array(np.asarray(value), name))
        return name

    def node(self, op: str, inputs: list, out: str | None = None, **attrs) -> str:
        out = out or self.fresh(op.lower())
        self.nodes.append(self.h.make_node(op, inputs, [out], name=out, **attrs))
        return out

    def param(self, layer: Layer, suffix: str):
        return self.weights.get(f"{layer.weight}.{suffix}")


def _conv_attrs(a: dict) -> dict:
    """ONNX Conv attributes (accelsim's padding is ONNX's order: begins, then ends; any number of spatial dims)."""
    return dict(kernel_shape=list(a["kernel"]), strides=list(a["stride"]), pads=list(a["padding"]),
                dilations=list(a["dilation"]), group=int(a["groups"]))


def _act(w: _Writer, act: str | None, x: str, out: str) -> str:
    if act == "relu":
        return w.node("Relu", [x], out)
    if act == "relu6":
        return w.node("Clip", [x, w.const("zero", np.float32(0)), w.const("six", np.float32(6))], out)
    return w.node("Identity", [x], out)


def _qdq(w: _Writer, x: str, p, base: str) -> str:
    s, z = w.const(f"{base}_scale", np.float32(p.scale)), w.const(f"{base}_zp", np.asarray(p.zero_point, p.spec.dtype))
    return w.node("DequantizeLinear", [w.node("QuantizeLinear", [x, s, z]), s, z])


def _gemm_layer(w: _Writer, layer: Layer, chain: list, x: str) -> str:
    """A conv/linear with its fused chain (batchnorm folded, relu/relu6) — float or the QDQ form (module doc)."""
    from ..nn.graph_exec import folded_weights, quant_name
    from ..quant import QParams, QuantSpec, quantize, quantize_bias
    wt, b = folded_weights(layer, w.weights, chain)
    lq = w.plan.layers.get(quant_name(layer)) if w.plan else None
    is_linear = layer.op == "linear"
    out = chain[-1].name if chain else layer.name
    acts = [f.op for f in chain if f.op != "batchnorm"]
    if is_linear and lq is None:   # a float linear: plain Gemm
        inputs = [x, w.const("w", wt.astype(np.float32))] + ([w.const("b", b.astype(np.float32))] if b is not None else [])
        return _act(w, acts[-1] if acts else None, w.node("Gemm", inputs, transB=1), out)
    attrs = dict(kernel_shape=[1, 1]) if is_linear else _conv_attrs(layer.attrs)
    if is_linear:
        x = w.node("Reshape", [x, w.const("shape", np.array([0, -1, 1, 1], np.int64))])
        wt = wt.reshape(*wt.shape, 1, 1)
    if lq is None:
        inputs = [x, w.const("w", wt.astype(np.float32))] + ([w.const("b", b.astype(np.float32))] if b is not None else [])
        y = w.node("Conv", inputs, **attrs)
    else:
        if (lq.w_bits, lq.a_bits) != (8, 8):
            raise AccelsimError(f"layer {short(layer.name)!r}: QDQ export supports w8a8 (got w{lq.w_bits}a{lq.a_bits})")
        _codes, ws, _dq, wp = w.qops.weight_codes(quant_name(layer), wt.reshape(wt.shape[:2]) if is_linear else wt,
                                                  lq.w_bits, b, lq.x.scale)
        codes = quantize(wt, QParams(wp.scale, wp.zero_point, QuantSpec(8, True, True, "channel", 0)) if
                         wp.spec.granularity == "channel" else wp).q
        ws = np.broadcast_to(np.asarray(wp.scale, np.float32).reshape(-1), (wt.shape[0],)).astype(np.float32)
        wdq = w.node("DequantizeLinear", [w.const("w_q", codes.astype(np.int8)), w.const("w_scale", ws),
                                          w.const("w_zp", np.zeros(len(ws), np.int8))], axis=0)
        inputs = [_qdq(w, x, lq.x, "x"), wdq]
        if b is not None:
            bq = quantize_bias(b, lq.x.scale, ws)
            bs = (np.float32(lq.x.scale) * ws).astype(np.float32)
            inputs.append(w.node("DequantizeLinear", [w.const("b_q", bq.astype(np.int32)), w.const("b_scale", bs),
                                                      w.const("b_zp", np.zeros(len(bs), np.int32))], axis=0))
        y = _qdq(w, w.node("Conv", inputs, **attrs), lq.y, "y")
    if is_linear:
        y = w.node("Flatten", [y], axis=1)
    return _act(w, acts[-1] if acts else None, y, out)


def _pool(op: str, **extra):
    def write(w: _Writer, layer: Layer, xs: list) -> str:
        a = layer.attrs
        dil = {"dilations": list(a["dilation"])} if any(d != 1 for d in a["dilation"]) else {}
        if dil and op != "MaxPool":
            raise AccelsimError(f"export: layer {short(layer.name)!r}: a dilated {op} has no opset-13 form")
        return w.node(op, xs, layer.name, kernel_shape=list(a["kernel"]), strides=list(a["stride"]),
                      pads=list(a["padding"]), **dil, **extra)
    return write


def _simple(op: str, **attrs):
    return lambda w, layer, xs: w.node(op, xs, layer.name, **attrs)


def _batchnorm(w: _Writer, layer: Layer, xs: list) -> str:
    ps = [w.const(s, np.asarray(w.param(layer, s), np.float32)) for s in ("weight", "bias", "running_mean", "running_var")]
    return w.node("BatchNormalization", xs + ps, layer.name, epsilon=float(layer.attrs["eps"]))


def _reshape(w: _Writer, layer: Layer, xs: list) -> str:
    return w.node("Reshape", [xs[0], w.const("shape", np.array([0, *layer.attrs["shape"]], np.int64))], layer.name)


EXPORTERS = {
    "reshape": _reshape, "concat": lambda w, layer, xs: w.node("Concat", xs, layer.name, axis=layer.attrs["axis"] + 1),
    "transpose": lambda w, layer, xs: w.node("Transpose", xs, layer.name, perm=[0, *(p + 1 for p in layer.attrs["perm"])]),
    "relu": _simple("Relu"), "sigmoid": _simple("Sigmoid"), "tanh": _simple("Tanh"), "hardswish": _simple("HardSwish"),
    "relu6": lambda w, layer, xs: _act(w, "relu6", xs[0], layer.name),
    # QDQ export: Sum, which ONNX Runtime leaves in float as accelsim computes it (a DQ → Add → Q would become its
    # QLinearAdd, a different rounding: accelsim.quant.ort_fused); FP32 export: Add, which its quantizers quantize
    "add": lambda w, layer, xs: w.node("Add" if len(xs) == 2 and w.plan is None else "Sum", xs, layer.name), "mul": _simple("Mul"), "flatten": _simple("Flatten", axis=1),
    "global_avgpool": _simple("GlobalAveragePool"), "batchnorm": _batchnorm,
    "maxpool": _pool("MaxPool"), "avgpool": _pool("AveragePool", count_include_pad=1),
}


def export_onnx(model: Model, weights: dict, path: str | Path, plan=None, opset: int = 13) -> Path:
    """Write ``model`` (with ``weights``; quantized by ``plan`` if given) as an ONNX file (module docstring)."""
    onnx = require_onnx()
    from ..nn.graph_exec import fused_chains
    from ..nn.qexec import QuantOps
    if any(layer.op in ("conv2d", "conv", "linear") and layer.attrs.get("ceil_mode") for layer in model.layers):
        raise AccelsimError("export: ceil_mode convs are not supported")
    if model.batch_axis != 0:
        raise AccelsimError("export: the model has no batch axis in front (an ONNX graph imported as written is "
                            "ONNX already); export writes models whose tensors carry the batch in front")
    w = _Writer(model, weights, plan, QuantOps(plan, "int", measure=False) if plan else None)
    chains = fused_chains(model)
    fused = {f.name for c in chains.values() for f in c}
    for layer in model.layers:
        if layer.name in fused:
            continue
        xs = [w.tensor[t] for t in layer.inputs]
        if layer.name in chains:
            out = _gemm_layer(w, layer, chains[layer.name], xs[0])
        elif layer.op in EXPORTERS:
            out = EXPORTERS[layer.op](w, layer, xs)
        else:
            raise AccelsimError(f"export: layer {short(layer.name)!r} ({layer.op}) has no ONNX form yet")
        for name in [layer.name] + [f.name for f in chains.get(layer.name, [])]:
            w.tensor[name] = out
    h = w.h
    last = model.layers[-1].name
    inputs = [h.make_tensor_value_info(n, onnx.TensorProto.FLOAT, ["N", *s]) for n, s in model.inputs.items()]
    outputs = [h.make_tensor_value_info(w.tensor[last], onnx.TensorProto.FLOAT, ["N", *model.layers[-1].out_shape])]
    graph = h.make_graph(w.nodes, model.name, inputs, outputs, w.inits)
    proto = h.make_model(graph, opset_imports=[h.make_opsetid("", opset)], producer_name="accelsim")
    onnx.checker.check_model(proto)
    path = Path(path)
    onnx.save(proto, str(path))
    return path
