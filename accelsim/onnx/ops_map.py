"""The table ONNX op → accelsim op: :data:`CONVERTERS` maps each ONNX ``op_type`` to a function that reads the
node (through :class:`accelsim.onnx.importer.NodeView`) and emits accelsim layers (:mod:`accelsim.ops`).

Conventions (checked by the importer against ONNX shape inference for every layer):

* The first axis of every activation is the batch; accelsim shapes drop it, so ONNX axis ``a`` is accelsim axis
  ``a − 1``. An op that reads or changes the batch axis (a Concat on axis 0, a Reshape that merges the batch) is
  refused with the node's name.
* Weights (Conv, Gemm, MatMul with a constant B, BatchNormalization, LayerNormalization, Gather tables) become
  layer bindings; other constants feeding an op become ``constant`` layers.
* Gemm: ``y = alpha · A · op(B) + beta · C`` → ``linear`` with ``w = alpha · op(B)ᵀ`` and ``bias = beta · C``.
* Pools with ``ceil_mode`` get the extra end padding that gives ONNX's output size (−inf for MaxPool; not counted
  by AveragePool with ``count_include_pad = 0``, the ONNX default, which maps to ``avgpool_valid``).
* Softmax before opset 13 normalizes over all axes from ``axis`` on (ONNX's 2-D coercion); from 13 on one axis.
* Clip(0, 6) is ``relu6`` and Clip(0, ∞) ``relu``, so they fuse into the preceding conv as on the hardware.
* Identity, Dropout (inference) and float→float Cast alias their input.
"""
from __future__ import annotations

import math

import numpy as np


def _ints(v) -> list[int]:
    return [int(x) for x in np.asarray(v).reshape(-1)]


def _spatial_pads(n, k, s, d, out):
    """[top, left, bottom, right] from ``pads``/``auto_pad``; ``out`` (H, W) adds ceil_mode's extra end pads."""
    x = n.full(0)
    auto = n.attr("auto_pad", "NOTSET")
    auto = auto.decode() if isinstance(auto, bytes) else auto
    if auto in ("SAME_UPPER", "SAME_LOWER"):
        total = [max((-(-x[2 + i] // s[i]) - 1) * s[i] + (k[i] - 1) * d[i] + 1 - x[2 + i], 0) for i in range(2)]
        lo = [t // 2 if auto == "SAME_UPPER" else t - t // 2 for t in total]
        pads = lo + [t - b for t, b in zip(total, lo)]
    elif auto == "VALID":
        pads = [0, 0, 0, 0]
    else:
        pads = _ints(n.attr("pads", [0, 0, 0, 0]))
    if out is not None:   # ceil_mode: pad the end until floor mode gives ONNX's output size
        for i in range(2):
            need = (out[i] - 1) * s[i] + (k[i] - 1) * d[i] + 1 - (x[2 + i] + pads[i] + pads[i + 2])
            pads[i + 2] += max(0, need)
    return pads


def _need_4d(n):
    if len(n.full(0)) != 4:
        n.fail(f"only 2-D (NCHW) inputs are supported, got shape {list(n.full(0))}")


def conv(n):
    _need_4d(n)
    w_shape = n.weight_shape(1)
    if len(w_shape) != 4:
        n.fail(f"weight must be [Cout, Cin/group, kh, kw], got {list(w_shape)}")
    k = w_shape[2:]
    s, d = _ints(n.attr("strides", [1, 1])), _ints(n.attr("dilations", [1, 1]))
    has_b = n.has(2)
    attrs = dict(out_channels=w_shape[0], kernel=list(k), stride=s, dilation=d, groups=int(n.attr("group", 1)),
                 padding=_spatial_pads(n, k, s, d, None), bias=has_b)
    n.emit("conv2d", [n.x(0)], attrs, {"weight": n.weight(1), **({"bias": n.weight(2)} if has_b else {})})


def _pool(n, op: str):
    _need_4d(n)
    k = _ints(n.attr("kernel_shape"))
    s, d = _ints(n.attr("strides", [1, 1])), _ints(n.attr("dilations", [1, 1]))
    if d != [1, 1] or len(n.node.output) > 1 and n.node.output[1]:
        n.fail("dilated pools and MaxPool indices are not supported")
    ceil = bool(n.attr("ceil_mode", 0))
    pads = _spatial_pads(n, k, s, d, n.full_out()[2:] if ceil else None)
    if op == "avgpool" and not n.attr("count_include_pad", 0) and any(pads):
        op = "avgpool_valid"
    elif op == "avgpool" and ceil and pads != _spatial_pads(n, k, s, d, None):
        n.fail("ceil_mode with count_include_pad=1 is not supported")
    n.emit(op, [n.x(0)], dict(kernel=k, stride=s, padding=pads))


def batchnorm(n):
    if n.attr("training_mode", 0) or len([o for o in n.node.output if o]) > 1:
        n.fail("only inference BatchNormalization is supported")
    names = ("weight", "bias", "running_mean", "running_var")
    n.emit("batchnorm", [n.x(0)], dict(eps=float(n.attr("epsilon", 1e-5))),
           {k: n.weight(i + 1) for i, k in enumerate(names)})


def gemm(n):
    if n.attr("transA", 0) or len(n.full(0)) != 2 or not n.is_weight(1):
        n.fail("only Gemm of a [batch, K] activation with a constant B (transA=0) is supported")
    b = n.weight(1)
    b_shape = n.weight_shape(1)
    t_b = bool(n.attr("transB", 0))
    out_f = b_shape[0] if t_b else b_shape[1]
    alpha, beta = float(n.attr("alpha", 1.0)), float(n.attr("beta", 1.0))
    w = None if b is None else (np.float32(alpha) * (b if t_b else b.T)).astype(np.float32)
    weights = {"weight": w}
    if n.has(2):
        c = n.weight(2)
        weights["bias"] = None if c is None else (np.float32(beta) * np.broadcast_to(
            np.asarray(c, np.float32).reshape(-1) if np.size(c) in (1, out_f) else c, (out_f,))).astype(np.float32)
    n.emit("linear", [n.x(0)], dict(out_features=out_f, bias=n.has(2)), weights)


def matmul(n):
    if n.is_weight(1) and len(n.weight_shape(1)) == 2:
        b = n.weight(1)
        n.emit("linear", [n.x(0)], dict(out_features=n.weight_shape(1)[1], bias=False),
               {"weight": None if b is None else np.ascontiguousarray(b.T)})
    elif not n.is_const(0) and not n.is_const(1):
        n.emit("matmul", [n.x(0), n.x(1)], dict(transpose_b=False))
    else:
        n.fail("MatMul needs an activation A and a 2-D constant or activation B")


def elementwise(same_op: str, bcast_op: str):
    def convert(n):
        ins = [i for i in range(len(n.node.input)) if n.has(i)]
        if len(ins) == 1:
            return n.alias(n.x(0))
        same = all(not n.is_const(i) and n.full(i) == n.full_out() for i in ins)
        n.emit(same_op if same else bcast_op, [n.x(i) for i in ins], {})
    return convert


def binary(op: str):
    return lambda n: n.emit(op, [n.x(0), n.x(1)], {})


def unary(op: str, **fixed):
    return lambda n: n.emit(op, [n.x(0)], {k: v(n) if callable(v) else v for k, v in fixed.items()})


def _alias(n):
    n.alias(n.x(0))


def cast(n):
    to = n.attr("to")
    if n.dtype_in(0) not in (1, 10, 11, 16) or to not in (1, 10, 11, 16):
        n.fail("only float → float Cast is supported")
    _alias(n)


def clip(n):
    lo = n.attr("min", None) if n.opset < 11 else (n.const(1) if n.has(1) else None)
    hi = n.attr("max", None) if n.opset < 11 else (n.const(2) if n.has(2) else None)
    if (n.has(1) and lo is None) or (n.has(2) and hi is None):
        n.fail("Clip bounds must be constants")
    lo = -math.inf if lo is None else float(lo)
    hi = math.inf if hi is None else float(hi)
    if lo == 0 and hi in (6, math.inf):
        return n.emit("relu6" if hi == 6 else "relu", [n.x(0)], {})
    n.emit("clip", [n.x(0)], dict(min=lo, max=hi))


def gelu(n):
    if n.attr("approximate", "none") not in ("none", b"none"):
        n.fail("only exact (erf) Gelu is supported")
    n.emit("gelu", [n.x(0)], {})


def _axis(n, axis: int, rank: int) -> int:
    a = axis + rank if axis < 0 else axis
    if not 1 <= a < rank:
        n.fail(f"axis {axis} is the batch axis or out of range for rank {rank}")
    return a - 1


def concat(n):
    ins = [i for i in range(len(n.node.input)) if n.has(i)]
    n.emit("concat", [n.x(i) for i in ins], dict(axis=_axis(n, int(n.attr("axis")), len(n.full_out()))))


def split(n):
    full = n.full(0)
    ax = _axis(n, int(n.attr("axis", 0)), len(full))
    start = 0
    for j, out in enumerate(n.node.output):
        size = n.full_out(j)[ax + 1]
        if out:
            starts, ends = [0] * (len(full) - 1), [None] * (len(full) - 1)
            starts[ax], ends[ax] = start, start + size
            n.emit("slice", [n.x(0)], dict(starts=starts, ends=ends, steps=[1] * (len(full) - 1)), out=j)
        start += size


def slice_(n):
    rank = len(n.full(0))
    if n.opset < 10:
        starts, ends = _ints(n.attr("starts")), _ints(n.attr("ends"))
        axes = _ints(n.attr("axes", list(range(len(starts)))))
        steps = [1] * len(starts)
    else:
        vals = [n.const(i) if n.has(i) else None for i in range(1, 5)]
        if vals[0] is None or vals[1] is None or any(n.has(i) and vals[i - 1] is None for i in (3, 4)):
            n.fail("Slice starts/ends/axes/steps must be constants")
        starts, ends = _ints(vals[0]), _ints(vals[1])
        axes = _ints(vals[2]) if vals[2] is not None else list(range(len(starts)))
        steps = _ints(vals[3]) if vals[3] is not None else [1] * len(starts)
    st, en, sp = [0] * (rank - 1), [None] * (rank - 1), [1] * (rank - 1)
    for a, b, e, s in zip(axes, starts, ends, steps):
        a = a + rank if a < 0 else a
        if a == 0:
            if n.full_out()[0] != n.full(0)[0]:
                n.fail("slicing the batch axis is not supported")
            continue
        st[a - 1], en[a - 1], sp[a - 1] = b, e, s
    n.emit("slice", [n.x(0)], dict(starts=st, ends=en, steps=sp))


def pad(n):
    mode = n.attr("mode", "constant")
    mode = mode.decode() if isinstance(mode, bytes) else mode
    if n.opset < 11:
        pads, value = _ints(n.attr("pads")), float(n.attr("value", 0.0))
    else:
        p, v = n.const(1), n.const(2) if n.has(2) else np.zeros(())
        if p is None or v is None or n.has(3):
            n.fail("Pad needs constant pads and value (and no axes input)")
        pads, value = _ints(p), float(np.asarray(v).reshape(-1)[0]) if np.size(v) else 0.0
    rank = len(n.full(0))
    if mode not in ("constant", "reflect", "edge") or pads[0] or pads[rank]:
        n.fail(f"mode {mode!r} or padding of the batch axis is not supported")
    n.emit("pad", [n.x(0)], dict(pads=pads[1:rank] + pads[rank + 1:], mode=mode, value=value))


def reshape_like(n):
    out = n.full_out()
    if out[0] != n.full(0)[0]:
        n.fail(f"changes the batch axis ({list(n.full(0))} → {list(out)})")
    if out == n.full(0):
        return n.alias(n.x(0))
    n.emit("reshape", [n.x(0)], dict(shape=list(out[1:])))


def transpose(n):
    rank = len(n.full(0))
    perm = _ints(n.attr("perm", list(range(rank))[::-1]))
    if perm[0] != 0:
        n.fail(f"perm {perm} moves the batch axis")
    n.emit("transpose", [n.x(0)], dict(perm=[p - 1 for p in perm[1:]]))


def softmax(n):
    rank = len(n.full(0))
    a = _axis(n, int(n.attr("axis", 1 if n.opset < 13 else -1)), rank)
    axes = list(range(a, rank - 1)) if n.opset < 13 else [a]
    if axes == [rank - 2]:
        return n.emit("softmax", [n.x(0)], dict(scale=1.0))
    n.emit("softmax_axes", [n.x(0)], dict(axes=axes))


def reduce_mean(n):
    rank = len(n.full(0))
    axes = n.attr("axes", None) if n.opset < 18 else (n.const(1) if n.has(1) else None)
    if n.opset >= 18 and n.has(1) and axes is None:
        n.fail("ReduceMean axes must be constant")
    axes = list(range(rank)) if axes is None else _ints(axes)
    n.emit("reduce_mean", [n.x(0)], dict(axes=sorted(_axis(n, a, rank) for a in axes),
                                         keepdims=bool(n.attr("keepdims", 1))))


def layernorm(n):
    if _axis(n, int(n.attr("axis", -1)), len(n.full(0))) != len(n.full(0)) - 2 or any(n.node.output[1:]):
        n.fail("only LayerNormalization over the last axis (one output) is supported")
    d = n.full(0)[-1]
    bias = n.weight(2) if n.has(2) else np.zeros(d, np.float32)
    n.emit("layernorm", [n.x(0)], dict(eps=float(n.attr("epsilon", 1e-5))), {"weight": n.weight(1), "bias": bias})


def gather(n):
    if n.is_weight(0) and not n.is_const(1):
        if int(n.attr("axis", 0)) != 0 or len(n.weight_shape(0)) != 2:
            n.fail("an embedding Gather needs a 2-D table gathered on axis 0")
        v, dim = n.weight_shape(0)
        return n.emit("embedding", [n.x(1)], dict(num_embeddings=v, dim=dim), {"weight": n.weight(0)})
    idx = n.const(1)
    if idx is None or n.is_const(0):
        n.fail("Gather needs a constant table or constant indices")
    rank = len(n.full(0))
    n.emit("gather", [n.x(0)], dict(axis=_axis(n, int(n.attr("axis", 0)), rank), indices=idx.tolist()))


def global_avgpool(n):
    """GlobalAveragePool; between a DequantizeLinear and a QuantizeLinear (uint8) it is ONNX Runtime's
    QLinearGlobalAveragePool: a ``qlinear_global_avgpool`` layer on the codes."""
    _need_4d(n)
    fused = _fusable(n, 1)
    if fused is None or fused[1][0][3]:
        if fused is not None:
            del n.b.qadd_out[n.readers(0)[0].output[0]]
        return n.emit("global_avgpool", [n.x(0)], {})
    (codes,), (gx, gy) = fused
    n.emit("qlinear_global_avgpool", [codes], dict(x_scale=gx[0], x_zero_point=gx[1], y_scale=gy[0],
                                                 y_zero_point=gy[1]))


def lrn(n):
    n.emit("lrn", [n.x(0)], dict(size=int(n.attr("size")), alpha=float(n.attr("alpha", 1e-4)),
                                 beta=float(n.attr("beta", 0.75)), bias=float(n.attr("bias", 1.0))))


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
        return elementwise("add", "bcast_add")(n)
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


CONVERTERS = {
    "QuantizeLinear": qdq("quantize_linear"), "DequantizeLinear": qdq("dequantize_linear"),
    "Conv": conv, "Gemm": gemm, "MatMul": matmul, "BatchNormalization": batchnorm,
    "MaxPool": lambda n: _pool(n, "maxpool"), "AveragePool": lambda n: _pool(n, "avgpool"),
    "GlobalAveragePool": global_avgpool, "LRN": lrn,
    "Relu": unary("relu"), "Sigmoid": unary("sigmoid"), "Tanh": unary("tanh"), "HardSwish": unary("hardswish"),
    "Erf": unary("erf"), "Exp": unary("exp"), "Sqrt": unary("sqrt"), "Neg": unary("neg"), "Gelu": gelu,
    "LeakyRelu": unary("leaky_relu", alpha=lambda n: float(n.attr("alpha", 0.01))),
    "HardSigmoid": unary("hardsigmoid_ab", alpha=lambda n: float(n.attr("alpha", 0.2)),
                         beta=lambda n: float(n.attr("beta", 0.5))),
    "Clip": clip,
    "Add": add, "Sum": elementwise("add", "bcast_add"),
    "Mul": elementwise("mul", "bcast_mul"), "Sub": binary("sub"), "Div": binary("div"), "Pow": binary("pow"),
    "Max": elementwise("maximum", "maximum"), "Min": elementwise("minimum", "minimum"),
    "Concat": concat, "Split": split, "Slice": slice_, "Pad": pad,
    "Reshape": reshape_like, "Flatten": reshape_like, "Squeeze": reshape_like, "Unsqueeze": reshape_like,
    "Transpose": transpose, "Softmax": softmax, "ReduceMean": reduce_mean, "LayerNormalization": layernorm,
    "Gather": gather, "Identity": _alias, "Dropout": _alias, "Cast": cast,
}
