"""Quantized ONNX in: models made by ``onnxruntime.quantization`` (QDQ and QOperator) → graph + QuantPlan.

* **QOperator → QDQ** (:func:`to_qdq`, a rewrite of the ONNX graph before import): each ``QLinear*`` node becomes
  ``DequantizeLinear`` on its inputs, the float op, ``QuantizeLinear`` on its output grid (QLinearConv → Conv with
  DQ(int8 weights) and DQ(int32 bias, scale x_scale·w_scale); QLinearMatMul, QGemm, QLinearAdd, QLinearMul,
  QLinearGlobalAveragePool, QLinearAveragePool, QLinearConcat, QLinearSigmoid likewise). Ops that move codes
  without arithmetic (MaxPool, Flatten, Reshape, Transpose, Squeeze, Unsqueeze, Identity) on a quantized tensor
  become DQ → op → Q on the same grid (exact: they commute with a monotone per-tensor quantization).
* **Import**: DequantizeLinear of an initializer folds into float weights (ONNX Runtime's ``(q − zp)·scale``);
  activation QuantizeLinear/DequantizeLinear become the ``quantize_linear``/``dequantize_linear`` layers
  (ONNX Runtime-exact, free in the cost model).
* **ONNX Runtime's integer kernels**: DQ → Add → Q and DQ → GlobalAveragePool → Q (what ONNX Runtime fuses into
  QLinearAdd / QLinearGlobalAveragePool) become ``qlinear_add`` / ``qlinear_global_avgpool`` layers on the codes
  (:mod:`accelsim.quant.ort_fused`, rounding as ONNX Runtime's kernels; ``ops_map.add``, ``ops_map.global_avgpool``).
* **Plan** (:func:`build_plan`): a conv/linear/matmul layer whose input is a ``dequantize_linear`` and whose output
  (after its fused relu/relu6) goes to exactly one ``quantize_linear`` is quantized: input grid = that DQ's, output
  grid = that Q's, weight grid = its weight DequantizeLinear's (int8 or uint8 codes with their zero points —
  ``weight_type=QUInt8`` is asymmetric — per-tensor or one scale and zero point per output channel) — accelsim's int
  mode then runs ONNX Runtime's QLinearConv / QLinearMatMul arithmetic on exactly those codes (the weight zero
  point subtracted in the exact integer sum, as ONNX Runtime does). The bias is re-quantized as ``rne(b / (x_scale·w_scale))``, which returns ONNX Runtime's int32 bias
  codes (|bias| < 2²⁴). Other layers run in float on dequantized values, as the QDQ graph says.

* **Dynamic** (``quantize_dynamic``: DynamicQuantizeLinear → MatMulInteger/ConvInteger → Cast → Mul by
  x_scale·w_scale, bias as a following Add): rewritten to MatMul/Conv on DequantizeLinear(int8 weights); those
  layers run with accelsim's dynamic quantization (``QuantScheme.dynamic``: DynamicQuantizeLinear's grid per call,
  exact integer GEMM, ``float32(acc)·float32(x_scale·w_scale)``), the Add stays a float add as in the graph.

Not supported (one-line error naming the node): other uses of DynamicQuantizeLinear/MatMulInteger/ConvInteger,
static and dynamic quantization in one model, per-axis activation grids.
"""
from __future__ import annotations

from types import MappingProxyType

import numpy as np

from ..errors import AccelsimError, short

QOPS = {"QLinearConv", "QLinearMatMul", "QGemm", "QLinearAdd", "QLinearMul", "QLinearGlobalAveragePool",
        "QLinearAveragePool", "QLinearConcat", "QLinearSigmoid", "QLinearLeakyRelu"}
DYNAMIC = {"DynamicQuantizeLinear", "MatMulInteger", "ConvInteger"}
CODE_OPS = {"MaxPool", "Flatten", "Reshape", "Transpose", "Squeeze", "Unsqueeze", "Identity"}


def is_quantized(proto) -> bool:
    return any(n.op_type in QOPS | DYNAMIC | {"QuantizeLinear", "DequantizeLinear"} for n in proto.graph.node)


class _Rewriter:
    def __init__(self, proto):
        from onnx import helper, numpy_helper
        self.h, self.nh, self.proto = helper, numpy_helper, proto
        self.values = {t.name: numpy_helper.to_array(t) for t in proto.graph.initializer}
        self.nodes: list = []
        self.grid: dict = {}            # quantized tensor → (scale name, zero point name)
        self._n = 0

    def fresh(self, base: str) -> str:
        self._n += 1
        return f"{base}__q{self._n}"

    def const(self, base: str, value) -> str:
        name = self.fresh(base)
        self.proto.graph.initializer.append(self.nh.from_array(np.asarray(value), name))
        self.values[name] = np.asarray(value)
        return name

    def dq(self, x: str, s: str, z: str | None, **attrs) -> str:
        out = self.fresh(f"{x}_dq")
        self.nodes.append(self.h.make_node("DequantizeLinear", [x, s] + ([z] if z else []), [out], **attrs))
        return out

    def q(self, x: str, s: str, z: str | None, out: str) -> str:
        self.nodes.append(self.h.make_node("QuantizeLinear", [x, s] + ([z] if z else []), [out]))
        self.grid[out] = (s, z)
        return out

    def op(self, node, op_type: str, inputs: list, domain: str = "", **attrs) -> str:
        out = self.fresh(f"{node.output[0]}_f")
        kept = {a.name: self.h.get_attribute_value(a) for a in node.attribute}
        kept.update(attrs)
        self.nodes.append(self.h.make_node(op_type, inputs, [out], name=node.name, domain=domain, **kept))
        return out


def _fail(node, why: str):
    raise AccelsimError(f"node {short(node.name or node.output[0])!r} ({node.op_type}): {why}")


def _bias(rw: _Rewriter, node, b: str, xs: str, ws: str, axis_len: int) -> str:
    """DQ of an int32 bias with scale float32(x_scale · w_scale) (ONNX Runtime's bias scale)."""
    scale = (np.float32(rw.values[xs]) * rw.values[ws].astype(np.float32)).astype(np.float32).reshape(-1)
    scale = np.broadcast_to(scale, (axis_len,)).copy() if scale.size > 1 else scale.reshape(())
    s = rw.const(f"{b}_scale", scale)
    z = rw.const(f"{b}_zp", np.zeros(scale.shape, np.int32))
    return rw.dq(b, s, z, **({"axis": 0} if scale.ndim else {}))


def _w_axis(rw: _Rewriter, ws: str, axis: int) -> dict:
    return {"axis": axis} if rw.values[ws].size > 1 else {}


def _qlinear_conv(rw, n):
    x, xs, xz, w, ws, wz, ys, yz = n.input[:8]
    ins = [rw.dq(x, xs, xz), rw.dq(w, ws, wz, **_w_axis(rw, ws, 0))]
    if len(n.input) > 8 and n.input[8]:
        ins.append(_bias(rw, n, n.input[8], xs, ws, rw.values[w].shape[0]))
    rw.q(rw.op(n, "Conv", ins), ys, yz, n.output[0])


def _qlinear_matmul(rw, n):
    a, as_, az, b, bs, bz, ys, yz = n.input[:8]
    rw.q(rw.op(n, "MatMul", [rw.dq(a, as_, az), rw.dq(b, bs, bz, **_w_axis(rw, bs, 1))]), ys, yz, n.output[0])


def _qgemm(rw, n):
    a, as_, az, b, bs, bz = n.input[:6]
    if len(n.input) < 9 or not n.input[8]:
        _fail(n, "QGemm with a float output is not supported")
    trans_b = any(x.name == "transB" and x.i for x in n.attribute)
    ins = [rw.dq(a, as_, az), rw.dq(b, bs, bz, **_w_axis(rw, bs, 0 if trans_b else 1))]
    if n.input[6]:
        ins.append(_bias(rw, n, n.input[6], as_, bs, rw.values[b].shape[0 if trans_b else 1]))
    out = rw.fresh(f"{n.output[0]}_f")
    attrs = {x.name: rw.h.get_attribute_value(x) for x in n.attribute}
    rw.nodes.append(rw.h.make_node("Gemm", ins, [out], name=n.name, **attrs))
    rw.q(out, n.input[7], n.input[8], n.output[0])


def _binary(op_type: str):
    def rewrite(rw, n):
        a, as_, az, b, bs, bz, cs, cz = n.input[:8]
        rw.q(rw.op(n, op_type, [rw.dq(a, as_, az), rw.dq(b, bs, bz)]), cs, cz, n.output[0])
    return rewrite


def _unary(op_type: str, drop=()):
    def rewrite(rw, n):
        x, xs, xz, ys, yz = n.input[:5]
        out = rw.fresh(f"{n.output[0]}_f")
        attrs = {a.name: rw.h.get_attribute_value(a) for a in n.attribute if a.name not in drop}
        if attrs.get("channels_last"):
            _fail(n, "channels_last is not supported")
        attrs.pop("channels_last", None)
        rw.nodes.append(rw.h.make_node(op_type, [rw.dq(x, xs, xz)], [out], name=n.name, **attrs))
        rw.q(out, ys, yz, n.output[0])
    return rewrite


def _qlinear_concat(rw, n):
    ys, yz = n.input[:2]
    rest = n.input[2:]
    ins = [rw.dq(*rest[i:i + 3]) for i in range(0, len(rest), 3)]
    rw.q(rw.op(n, "Concat", ins), ys, yz, n.output[0])


REWRITES = {
    "QLinearConv": _qlinear_conv, "QLinearMatMul": _qlinear_matmul, "QGemm": _qgemm,
    "QLinearAdd": _binary("Add"), "QLinearMul": _binary("Mul"),
    "QLinearGlobalAveragePool": _unary("GlobalAveragePool"), "QLinearAveragePool": _unary("AveragePool"),
    "QLinearSigmoid": _unary("Sigmoid"), "QLinearLeakyRelu": _unary("LeakyRelu"), "QLinearConcat": _qlinear_concat,
}


def _dynamic(proto) -> set:
    """Rewrite ``quantize_dynamic`` patterns in place: ``DynamicQuantizeLinear(x) → MatMulInteger|ConvInteger(x_q,
    W_q) → Cast → Mul(·, x_scale·w_scale)`` becomes ``MatMul|Conv(x, DequantizeLinear(W_q, w_scale))`` named like the
    Mul's output; returns those names (the layers that run dynamically quantized)."""
    from onnx import helper
    nodes = list(proto.graph.node)
    producer = {o: n for n in nodes for o in n.output}
    readers: dict = {}
    for n in nodes:
        for i in n.input:
            readers.setdefault(i, []).append(n)
    values = {t.name: t for t in proto.graph.initializer}
    replace, drop, names = {}, set(), set()
    for n in nodes:
        if n.op_type not in ("MatMulInteger", "ConvInteger"):
            continue
        d = producer.get(n.input[0])
        cast = readers.get(n.output[0], [])
        mul = readers.get(cast[0].output[0], []) if len(cast) == 1 and cast[0].op_type == "Cast" else []
        if d is None or d.op_type != "DynamicQuantizeLinear" or len(mul) != 1 or mul[0].op_type != "Mul" \
                or n.input[1] not in values:
            _fail(n, "expected ONNX Runtime's quantize_dynamic pattern (DynamicQuantizeLinear → op → Cast → Mul)")
        scale_node = producer.get([i for i in mul[0].input if i != cast[0].output[0]][0])
        if scale_node is None or scale_node.op_type != "Mul" or d.output[1] not in scale_node.input:
            _fail(n, "expected the rescale Mul(x_scale, w_scale) of quantize_dynamic")
        w_scale = [i for i in scale_node.input if i != d.output[1]][0]
        zp = n.input[3] if len(n.input) > 3 and n.input[3] else None
        axis = {"axis": 1} if n.op_type == "MatMulInteger" and np.prod(values[w_scale].dims) > 1 else {}
        w = f"{n.input[1]}__dq"
        new = [helper.make_node("DequantizeLinear", [n.input[1], w_scale] + ([zp] if zp else []), [w], **axis),
               helper.make_node("MatMul" if n.op_type == "MatMulInteger" else "Conv", [d.input[0], w],
                                [mul[0].output[0]], name=n.name,
                                **{a.name: helper.get_attribute_value(a) for a in n.attribute})]
        replace[id(n)] = new
        drop |= {id(cast[0]), id(mul[0])}
        names.add(mul[0].output[0])
    if not names:
        return names
    out = [m for n in nodes if id(n) not in drop for m in replace.get(id(n), [n])]
    used = {o.name for o in proto.graph.output}
    while True:   # drop what only fed the removed nodes (DynamicQuantizeLinear, the scale Muls)
        for n in out:
            used.update(n.input)
        keep = [n for n in out if any(o in used for o in n.output)]
        if len(keep) == len(out):
            break
        out, used = keep, {o.name for o in proto.graph.output}
    del proto.graph.node[:]
    proto.graph.node.extend(out)
    return names


def to_qdq(proto) -> set:
    """Rewrite QOperator nodes of ``proto`` (in place) into QDQ form (module docstring); returns the names of the
    layers ``quantize_dynamic`` quantized (see :func:`_dynamic`)."""
    dynamic = _dynamic(proto)
    rw = _Rewriter(proto)
    for n in list(proto.graph.node):
        if n.op_type in DYNAMIC:
            _fail(n, "dynamic quantization outside ONNX Runtime's quantize_dynamic pattern is not supported")
        if n.op_type == "QuantizeLinear":
            rw.nodes.append(n)
            rw.grid[n.output[0]] = (n.input[1], n.input[2] if len(n.input) > 2 else None)
        elif n.op_type in REWRITES:
            REWRITES[n.op_type](rw, n)
        elif n.op_type in CODE_OPS and n.input and n.input[0] in rw.grid:
            s, z = rw.grid[n.input[0]]
            rw.q(rw.op(n, n.op_type, [rw.dq(n.input[0], s, z)] + list(n.input[1:])), s, z, n.output[0])
        else:
            if n.op_type != "DequantizeLinear" and any(i in rw.grid for i in n.input):
                _fail(n, "reads a quantized tensor but is not a known QOperator op")
            rw.nodes.append(n)
    del proto.graph.node[:]
    proto.graph.node.extend(rw.nodes)
    return dynamic


def _grid(attrs) -> object:
    from ..quant import QParams, QuantSpec
    spec = QuantSpec(attrs["bits"], signed=attrs["signed"], symmetric=False, narrow_range=False)
    return QParams(np.asarray(attrs["scale"], np.float32), np.asarray(attrs["zero_point"], np.int32), spec)


def _weight_grid(layer, node, dq, consts):
    """QParams of a layer's weight DequantizeLinear — int8 or uint8 codes, zero points of any value (ONNX Runtime's
    ``weight_type=QUInt8`` is asymmetric), per tensor or one scale and zero point per output channel — or an
    error naming the node."""
    from ..quant import QParams, QuantSpec
    codes, scale = consts.get(dq.input[0]), consts.get(dq.input[1])
    zp = consts.get(dq.input[2]) if len(dq.input) > 2 and dq.input[2] else np.zeros((), np.int8)
    if codes is None or scale is None or zp is None or codes.dtype not in (np.int8, np.uint8) \
            or np.asarray(zp).dtype != codes.dtype or np.size(zp) not in (1, np.size(scale)):
        _fail(node, "quantized weights must be 8-bit codes (int8 or uint8) with constant scales and zero points "
                    "of their type")
    if any(a.name == "alpha" and a.f != 1.0 for a in node.attribute):
        _fail(node, "quantized Gemm needs alpha = 1")
    per_channel = np.size(scale) > 1
    signed = codes.dtype == np.int8
    spec = QuantSpec(8, signed=signed, symmetric=signed and not np.any(zp),
                     granularity="channel" if per_channel else "tensor", axis=0 if per_channel else None,
                     narrow_range=False)
    shape = -1 if per_channel else ()
    s = np.asarray(scale, np.float32).reshape(shape)
    z = np.broadcast_to(np.asarray(zp, np.int32).reshape(-1), s.reshape(-1).shape).reshape(shape)
    return QParams(s, np.array(z), spec)


def build_plan(model, b, original_nodes, consts, dynamic: set = frozenset()):
    """``(QuantPlan, weight_params)`` of an imported QDQ graph (module docstring); the layers in ``dynamic``
    (quantize_dynamic) run with per-call input grids and a float rescale (``QuantScheme.dynamic``)."""
    from ..nn.graph_exec import fused_chains
    from ..nn.qexec import LayerQ, QuantPlan, QuantScheme
    dq_nodes = {n.output[0]: n for n in original_nodes if n.op_type == "DequantizeLinear"}
    by_name = {layer.name: layer for layer in model.layers}
    readers: dict = {}
    for layer in model.layers:
        for t in layer.inputs:
            readers.setdefault(t, []).append(layer)
    chains = fused_chains(model)
    layers, wparams = {}, {}
    for layer in model.layers:
        if layer.op not in ("conv2d", "linear", "matmul"):
            continue
        if layer.name in dynamic:
            wname = b.wsrc.get(layer.name, {}).get(1)
            wparams[layer.name] = _weight_grid(layer, b.nodes[layer.name], dq_nodes[wname], consts)
            unused = _grid(dict(scale=1.0, zero_point=0, bits=8, signed=False))
            layers[layer.name] = LayerQ(layer.name, 8, 8, unused, unused)
            continue
        src = by_name.get(layer.inputs[0])
        chain = chains.get(layer.name, [])
        end = chain[-1].name if chain else layer.name
        out = readers.get(end, [])
        if src is None or src.op != "dequantize_linear" or len(out) != 1 or out[0].op != "quantize_linear" \
                or any(f.op == "batchnorm" for f in chain):
            continue
        qname = layer.weight or layer.name
        bgrid = None
        if layer.op == "matmul":
            other = by_name.get(layer.inputs[1])
            if other is None or other.op != "dequantize_linear":
                continue
            bgrid = _grid(other.attrs)
        else:
            wname = b.wsrc.get(layer.name, {}).get(1)
            if wname not in dq_nodes:
                continue
            wparams[qname] = _weight_grid(layer, b.nodes[layer.name], dq_nodes[wname], consts)
        x, y = _grid(src.attrs), _grid(out[0].attrs)
        layers[qname] = LayerQ(qname, 8, src.attrs["bits"], x, y, bgrid)
    if not layers:
        raise AccelsimError("quantized ONNX model: no conv/matmul/gemm sits between DequantizeLinear and "
                            "QuantizeLinear, so there is nothing accelsim can run in integer mode")
    if dynamic and len(dynamic) != len(layers):
        raise AccelsimError("quantized ONNX model mixes static (QDQ) and dynamic quantization: not supported")
    first = next(iter(layers.values()))
    scheme = QuantScheme(8, first.a_bits, per_channel=any(p.spec.granularity == "channel" for p in wparams.values()),
                         act_symmetric=first.x.spec.signed, calib="from the ONNX model", dynamic=bool(dynamic))
    return QuantPlan(scheme, MappingProxyType(layers), 0), wparams
