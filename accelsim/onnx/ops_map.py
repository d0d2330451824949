"""The table ONNX op → accelsim op: :data:`CONVERTERS` maps each ONNX ``op_type`` to a function that reads the
node (through :class:`accelsim.onnx.importer.NodeView`) and emits accelsim layers (:mod:`accelsim.ops`); window
and per-channel ops live in :mod:`.ops_window`, quantization ops in :mod:`.ops_qdq`.

Conventions (checked by the importer against ONNX shape inference for every layer):

* With the batch axis in front (:mod:`accelsim.onnx.batch`) accelsim shapes drop it, so ONNX axis ``a`` is
  accelsim axis ``a − 1`` (``n.off`` = 1), and an op that reads or changes the batch axis (a Concat on axis 0, a
  Reshape that merges the batch) is refused with the node's name. Without a batch axis the graph runs as written:
  ONNX axis ``a`` is accelsim axis ``a``.
* Weights (Conv, Gemm, MatMul with a constant B, BatchNormalization, LayerNormalization, Gather tables) become
  layer bindings; other constants feeding an op become ``constant`` layers.
* Gemm with a constant B: ``y = alpha · A · op(B) + beta · C`` → ``linear`` with ``w = alpha · op(B)ᵀ`` and
  ``bias = beta · C``; with an activation B (or transA): ``matmul`` (+ the alpha scale and beta·C as element-wise
  layers). MatMul follows numpy ``matmul`` (broadcast leading dims, 1-D operands).
* Softmax/LogSoftmax before opset 13 normalize over all axes from ``axis`` on (ONNX's 2-D coercion); from 13 on
  one axis.
* Clip(0, 6) is ``relu6`` and Clip(0, ∞) ``relu``, so they fuse into the preceding conv as on the hardware;
  Softplus is ``softplus``.
* Identity, Dropout (inference) and float→float Cast alias their input.
* Shapes must be static: an op whose output shape depends on a graph input's values (e.g. Expand to a shape
  given as an input) is refused.
"""
from __future__ import annotations

import math

import numpy as np

from .node_attrs import axis as _axis
from .node_attrs import elementwise
from .node_attrs import ints as _ints
from .ops_qdq import QDQ
from .ops_window import WINDOW


def gemm(n):
    alpha, beta = float(n.attr("alpha", 1.0)), float(n.attr("beta", 1.0))
    t_b = bool(n.attr("transB", 0))
    if n.attr("transA", 0) or len(n.full(0)) != 2 or not n.is_weight(1):
        return _gemm_activations(n, alpha, beta, t_b)
    b = n.weight(1)
    b_shape = n.weight_shape(1)
    out_f = b_shape[0] if t_b else b_shape[1]
    w = None if b is None else (b.dtype.type(alpha) * (b if t_b else b.T)).astype(b.dtype)
    weights = {"weight": w}
    if n.has(2) and beta != 0:
        c = n.weight(2)
        weights["bias"] = None if c is None else (c.dtype.type(beta) * np.broadcast_to(
            np.asarray(c).reshape(-1) if np.size(c) in (1, out_f) else c, (out_f,))).astype(c.dtype)
    n.emit("linear", [n.x(0)], dict(out_features=out_f, bias="bias" in weights), weights)


def _gemm_activations(n, alpha: float, beta: float, t_b: bool):
    """``alpha · op(A) @ op(B) + beta · C`` with A or B computed: a ``matmul`` (``transpose`` for transA), then the
    scale and the bias as element-wise layers (named ``<output>#...``)."""
    out = n.node.output[0]
    rows, cols = n.full_out()
    a = n.x(0)
    if n.attr("transA", 0):
        if n.off:
            n.fail("transA moves the batch axis")
        a = n.emit_temp("transpose", [a], dict(perm=[1, 0]), "#a", (n.full(0)[1], n.full(0)[0]))
    has_c = n.has(2) and beta != 0
    y = n.emit_temp("matmul", [a, n.x(1)], dict(transpose_b=t_b), "#mm", (rows, cols)) \
        if alpha != 1 or has_c else n.emit("matmul", [a, n.x(1)], dict(transpose_b=t_b))
    if alpha != 1:
        scale = n.synth(f"{out}#alpha", np.asarray(alpha, n.float_type()))
        y = n.emit_temp("bcast_mul", [y, scale], {}, "#scaled", (rows, cols)) if has_c else \
            n.emit("bcast_mul", [y, scale], {})
    if has_c:
        c = n.x(2)
        if beta != 1:
            c = n.emit_temp("bcast_mul", [c, n.synth(f"{out}#beta", np.asarray(beta, n.float_type()))], {}, "#c",
                            n.full(2))
        n.emit("bcast_add", [y, c], {})


def matmul(n):
    if n.is_weight(1) and not n.is_weight(0) and len(n.weight_shape(1)) == 2 and len(n.full(0)) > n.off:
        b = n.weight(1)
        return n.emit("linear", [n.x(0)], dict(out_features=n.weight_shape(1)[1], bias=False),
                      {"weight": None if b is None else np.ascontiguousarray(b.T)})
    if n.is_const(0) and n.is_const(1):
        n.fail("MatMul of two constants should have been folded")
    n.emit("matmul", [n.x(0), n.x(1)], dict(transpose_b=False))


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
    if (n.dtype_in(0) == 11) != (to == 11):
        n.fail("a Cast between float64 and another float type is not supported (accelsim runs one float type)")
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
    if n.attr("approximate", "none") != "none":
        n.fail("only exact (erf) Gelu is supported")
    n.emit("gelu", [n.x(0)], {})


def concat(n):
    ins = [i for i in range(len(n.node.input)) if n.has(i)]
    n.emit("concat", [n.x(i) for i in ins], dict(axis=_axis(n, int(n.attr("axis")), len(n.full_out()))))


def split(n):
    full = n.full(0)
    ax = _axis(n, int(n.attr("axis", 0)), len(full))
    rank = len(full) - n.off
    start = 0
    for j, out in enumerate(n.node.output):
        size = n.full_out(j)[ax + n.off]
        if out:
            starts, ends = [0] * rank, [None] * rank
            starts[ax], ends[ax] = start, start + size
            n.emit("slice", [n.x(0)], dict(starts=starts, ends=ends, steps=[1] * rank), out=j)
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
    st, en, sp = [0] * (rank - n.off), [None] * (rank - n.off), [1] * (rank - n.off)
    for a, b, e, s in zip(axes, starts, ends, steps):
        a = a + rank if a < 0 else a
        if a < n.off:
            if n.full_out()[0] != n.full(0)[0]:
                n.fail("slicing the batch axis is not supported")
            continue
        st[a - n.off], en[a - n.off], sp[a - n.off] = b, e, s
    n.emit("slice", [n.x(0)], dict(starts=st, ends=en, steps=sp))


def pad(n):
    mode = n.attr("mode", "constant")
    if n.opset < 11:
        pads, value = _ints(n.attr("pads")), float(n.attr("value", 0.0))
    else:
        p, v = n.const(1), n.const(2) if n.has(2) else np.zeros(())
        if p is None or v is None or n.has(3):
            n.fail("Pad needs constant pads and value (and no axes input)")
        pads, value = _ints(p), float(np.asarray(v).reshape(-1)[0]) if np.size(v) else 0.0
    rank, o = len(n.full(0)), n.off
    if mode not in ("constant", "reflect", "edge") or (o and (pads[0] or pads[rank])):
        n.fail(f"mode {mode!r} or padding of the batch axis is not supported")
    n.emit("pad", [n.x(0)], dict(pads=pads[o:rank] + pads[rank + o:], mode=mode, value=value))


def reshape_like(n):
    out = n.full_out()
    if n.off and out[0] != n.full(0)[0]:
        n.fail(f"changes the batch axis ({list(n.full(0))} → {list(out)})")
    if out == n.full(0):
        return n.alias(n.x(0))
    n.emit("reshape", [n.x(0)], dict(shape=list(out[n.off:])))


def transpose(n):
    rank = len(n.full(0))
    perm = _ints(n.attr("perm", list(range(rank))[::-1]))
    if n.off and perm[0] != 0:
        n.fail(f"perm {perm} moves the batch axis")
    n.emit("transpose", [n.x(0)], dict(perm=[p - n.off for p in perm[n.off:]]))


def softmax(log: bool):
    def convert(n):
        rank = len(n.full(0))
        a = _axis(n, int(n.attr("axis", 1 if n.opset < 13 else -1)), rank)
        axes = list(range(a, rank - n.off)) if n.opset < 13 else [a]
        if not log and axes == [rank - 1 - n.off]:
            return n.emit("softmax", [n.x(0)], dict(scale=1.0))
        n.emit("log_softmax" if log else "softmax_axes", [n.x(0)], dict(axes=axes))
    return convert


def _reduce_axes(n, rank: int, since: int):
    """The reduced axes (attribute before opset ``since``, else the optional constant input 1), or None: keep x."""
    axes = n.attr("axes", None) if n.opset < since else (n.const(1) if n.has(1) else None)
    if n.opset >= since and n.has(1) and axes is None:
        n.fail(f"{n.node.op_type} axes must be constant")
    if axes is None or np.size(axes) == 0:
        return None if n.attr("noop_with_empty_axes", 0) else list(range(n.off, rank))
    return _ints(axes)


def reduce(kind: str, since: int):
    """ReduceMean (``reduce_mean``) and ReduceSum/Max/Min/Prod/L2 (``reduce``): axes from opset ``since`` on are
    an input."""
    def convert(n):
        rank = len(n.full(0))
        axes = _reduce_axes(n, rank, since)
        if axes is None:
            return n.alias(n.x(0))
        attrs = dict(axes=sorted(_axis(n, a, rank) for a in axes), keepdims=bool(n.attr("keepdims", 1)))
        n.emit("reduce_mean" if kind == "mean" else "reduce", [n.x(0)], attrs if kind == "mean" else
               dict(kind=kind, **attrs))
    return convert


def layernorm(n):
    if _axis(n, int(n.attr("axis", -1)), len(n.full(0))) != len(n.full(0)) - 1 - n.off or any(n.node.output[1:]):
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


def prelu(n):
    """PRelu; a 1-D slope of the channel count that does not broadcast (opset ≤ 6's per-channel slope, kept by the
    version converter) is read per channel: reshaped to ``[C, 1, ...]``."""
    x, slope = n.full(0), n.full(1)
    s = n.x(1)
    if len(slope) == 1 and len(x) > 2 and slope[0] == x[1] and slope[0] not in (1, x[-1]):
        shape = (slope[0],) + (1,) * (len(x) - 2)
        c = n.const(1)
        s = n.synth(f"{n.node.output[0]}#slope", c.reshape(shape).astype(n.float_type())) if c is not None else \
            n.emit_temp("reshape", [s], dict(shape=list(shape)), "#slope", shape)
    n.emit("prelu", [n.x(0), s], {})


def tile(n):
    reps = n.const(1)
    if reps is None:
        n.fail("Tile repeats must be a constant")
    reps = _ints(reps)
    if n.off and reps[0] != 1:
        n.fail(f"repeats {reps} repeat the batch axis")
    n.emit("tile", [n.x(0)], dict(repeats=reps[n.off:]))


def expand(n):
    if not n.is_const(1):
        n.fail("the target shape is computed at run time (a graph input or a computed tensor); accelsim needs "
               "static shapes")
    n.emit("expand", [n.x(0)], dict(shape=list(n.full_out()[n.off:])))


CONVERTERS = {
    **QDQ, **WINDOW,
    "Gemm": gemm, "MatMul": matmul,
    "Relu": unary("relu"), "Sigmoid": unary("sigmoid"), "Tanh": unary("tanh"), "HardSwish": unary("hardswish"),
    "Erf": unary("erf"), "Exp": unary("exp"), "Sqrt": unary("sqrt"), "Neg": unary("neg"), "Gelu": gelu,
    "Abs": unary("abs"), "Sign": unary("sign"), "Softsign": unary("softsign"), "Softplus": unary("softplus"),
    "Elu": unary("elu", alpha=lambda n: float(n.attr("alpha", 1.0))),
    "Selu": unary("selu", alpha=lambda n: float(n.attr("alpha", 1.67326319217681884765625)),
                  gamma=lambda n: float(n.attr("gamma", 1.05070102214813232421875))),
    "Shrink": unary("shrink", bias=lambda n: float(n.attr("bias", 0.0)), lambd=lambda n: float(n.attr("lambd", 0.5))),
    "LeakyRelu": unary("leaky_relu", alpha=lambda n: float(n.attr("alpha", 0.01))),
    "HardSigmoid": unary("hardsigmoid_ab", alpha=lambda n: float(n.attr("alpha", 0.2)),
                         beta=lambda n: float(n.attr("beta", 0.5))),
    "Clip": clip, "PRelu": prelu,
    "Sum": elementwise("add", "bcast_add"),
    "Mul": elementwise("mul", "bcast_mul"), "Sub": binary("sub"), "Div": binary("div"), "Pow": binary("pow"),
    "Max": elementwise("maximum", "maximum"), "Min": elementwise("minimum", "minimum"),
    "Concat": concat, "Split": split, "Slice": slice_, "Pad": pad, "Tile": tile, "Expand": expand,
    "Reshape": reshape_like, "Flatten": reshape_like, "Squeeze": reshape_like, "Unsqueeze": reshape_like,
    "Transpose": transpose, "Softmax": softmax(False), "LogSoftmax": softmax(True),
    "ReduceMean": reduce("mean", 18), "ReduceSum": reduce("sum", 13), "ReduceMax": reduce("max", 18),
    "ReduceMin": reduce("min", 18), "ReduceProd": reduce("prod", 18), "ReduceL2": reduce("l2", 18),
    "LayerNormalization": layernorm, "Gather": gather, "Identity": _alias, "Dropout": _alias, "Cast": cast,
}
