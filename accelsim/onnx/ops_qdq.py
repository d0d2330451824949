"""ONNX quantization ops → accelsim layers: QuantizeLinear/DequantizeLinear of activations, and the patterns ONNX
Runtime fuses into its own integer kernels (DQ → Add → Q: QLinearAdd; DQ → GlobalAveragePool → Q:
QLinearGlobalAveragePool), imported as the ``qlinear_add`` / ``qlinear_global_avgpool`` layers that emulate them
(:mod:`accelsim.ops.quantization`)."""
from __future__ import annotations

import numpy as np

from .node_attrs import elementwise


plain_add = elementwise("add", "bcast_add")
"""Add without the quantized pattern: ``add`` of same-shape activations, else ``bcast_add``."""


_QTYPES = {2: (8, False), 3: (8, True), 4: (16, False), 5: (16, True)}   # ONNX elem type → (bits, signed)


def _grid(n, node):
    """(scale, zero point, bits, signed) of a per-tensor Q/DQ node with constant parameters, else None."""
    consts = n.b.f.consts
    scale = consts.get(node.input[1])
    zp = consts.get(node.input[2]) if len(node.input) > 2 and node.input[2] else np.zeros((), np.uint8)
    types = {np.dtype(np.uint8): (8, False), np.dtype(np.int8): (8, True)}
    if scale is None or zp is None or np.size(scale) != 1 or np.size(zp) != 1 or np.asarray(zp).dtype not in types:
        return None
    return (float(np.float32(scale).reshape(())), int(np.asarray(zp).reshape(())), *types[np.asarray(zp).dtype])


def _fusable(n, n_inputs: int):
    """``(codes, grids)`` when every input is a DequantizeLinear and the only reader a QuantizeLinear, all
    per-tensor and of one integer type — the pattern ONNX Runtime fuses into one integer kernel — else None.
    The Q is then aliased to the fused layer (``qadd_out``)."""
    dqs = [n.producer(i) for i in range(len(n.node.input))]
    q = n.readers(0)
    if len(dqs) != n_inputs or not all(d is not None and d.op_type == "DequantizeLinear" for d in dqs) \
            or len(q) != 1 or q[0] is None or q[0].op_type != "QuantizeLinear":
        return None
    grids = [_grid(n, d) for d in dqs] + [_grid(n, q[0])]
    codes = [n.b.tensor.get(d.input[0]) for d in dqs]
    if None in grids or None in codes or len({g[2:] for g in grids}) != 1:
        return None
    n.b.qadd_out[q[0].output[0]] = n.node.output[0]
    return codes, grids


def add(n):
    """Add; DequantizeLinear(a), DequantizeLinear(b) → Add → one QuantizeLinear is what ONNX Runtime runs as
    QLinearAdd (its own integer arithmetic): it becomes a ``qlinear_add`` layer on the codes."""
    fused = _fusable(n, 2)
    if fused is None:
        return plain_add(n)
    codes, grids = fused
    attrs = {f"{k}_{f}": g[i] for k, g in zip("abc", grids) for i, f in enumerate(("scale", "zero_point"))}
    n.emit("qlinear_add", codes, dict(attrs, signed=grids[0][3]))


def qdq(op: str):
    """QuantizeLinear / DequantizeLinear of an activation: per-tensor scale and zero point (constants)."""
    def convert(n):
        if op == "quantize_linear" and n.node.output[0] in n.b.qadd_out:   # the Q of a fused qlinear_add
            return n.alias(n.b.tensor[n.b.qadd_out[n.node.output[0]]])
        scale, zp = n.const(1), n.const(2) if n.has(2) else None
        if scale is None or np.size(scale) != 1 or (n.has(2) and (zp is None or np.size(zp) != 1)):
            n.fail("activations need a constant per-tensor scale and zero point")
        np_types = {np.dtype(np.uint8): 2, np.dtype(np.int8): 3, np.dtype(np.uint16): 4, np.dtype(np.int16): 5}
        elem = (n.dtype_in(0) if op == "dequantize_linear" else
                np_types.get(np.asarray(zp).dtype, 0) if zp is not None else int(n.attr("output_dtype", 2) or 2))
        if elem not in _QTYPES:
            n.fail(f"element type {elem} is not an 8/16-bit integer type")
        bits, signed = _QTYPES[elem]
        n.emit(op, [n.x(0)], dict(scale=float(np.float32(scale).reshape(())), bits=bits, signed=signed,
                                  zero_point=int(np.asarray(zp).reshape(())) if zp is not None else 0))
    return convert


def global_avgpool(n):
    """GlobalAveragePool; between a DequantizeLinear and a QuantizeLinear (uint8) it is ONNX Runtime's
    QLinearGlobalAveragePool: a ``qlinear_global_avgpool`` layer on the codes."""
    if len(n.full(0)) < 3:
        n.fail(f"needs an [N, C, *spatial] input, got shape {list(n.full(0))}")
    fused = _fusable(n, 1)
    if fused is None or fused[1][0][3]:
        if fused is not None:
            del n.b.qadd_out[n.readers(0)[0].output[0]]
        return n.emit("global_avgpool", [n.x(0)], dict(channel_axis=1 - n.off))
    (codes,), (gx, gy) = fused
    n.emit("qlinear_global_avgpool", [codes], dict(x_scale=gx[0], x_zero_point=gx[1], y_scale=gy[0],
                                                 y_zero_point=gy[1], channel_axis=1 - n.off))


QDQ = {"QuantizeLinear": qdq("quantize_linear"), "DequantizeLinear": qdq("dequantize_linear"), "Add": add,
       "GlobalAveragePool": global_avgpool}
"""The converters of this module by ONNX op type (merged into :data:`accelsim.onnx.ops_map.CONVERTERS`)."""
