"""The op registry: everything accelsim knows about an operator, in one :class:`OpDef` per op.

Shapes exclude the batch dimension (batch 1): images are ``[C, H, W]``, token sequences ``[S]``, hidden
states ``[S, D]``, per-head tensors ``[heads, S, d]``; at execution every tensor carries a leading batch axis.
Each entry of :data:`OPS` gives

* ``attrs(reader)`` — read and validate its attributes (problems collected with field paths);
* ``shape(attrs, in_shapes)`` — the output shape, or raise :class:`ShapeError` with the reason;
* ``params(attrs, in_shapes)`` — learnable parameter count (torch's convention: BN has 2·C, not 4·C), and
  ``wide_params`` — how many of them stay 32-bit in a quantized model's size (norm parameters, biases);
* ``weights(attrs, in_shapes)`` — the tensors a ``weight: prefix`` binding needs (suffix → shape);
* lowering (:mod:`accelsim.lowering`): ``gemm(attrs, in_shapes, out_shape)`` → :class:`Gemm` for the array, or
  vector work of ``elements(attrs, in_shapes, out_shape) × vector_ops`` (default ops per element, which a hw
  config may override), or nothing for layout ops (``vector_ops == 0``); ``fusable`` ops (batchnorm, relu,
  relu6) fold into a preceding conv/linear;
* ``run(attrs, xs, ctx)`` — the FP32 forward on batched arrays (numerics in :mod:`accelsim.nn.functional`);
  GEMM ops call ``ctx.qops`` so the quantization mode decides how they execute (see :mod:`accelsim.nn.graph_exec`);
* ``epilogue`` — vector work that can run on a GEMM's output tiles as they leave the array
  (``"element"``: tile by tile; ``"row"``: once every tile of an output row is done; see
  :mod:`accelsim.sim.overlap`);
* ``backward(attrs, xs, y, dy, ctx)`` — the gradient rule (:mod:`accelsim.nn.backward`; walked by
  :func:`accelsim.nn.autograd.backward`), each checked against finite differences in the tests.

Adding an op is adding one entry here.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Callable

import numpy as np

from .config.fields import Reader
from .nn import backward as B
from .nn import functional as F

Shape = tuple[int, ...]


class ShapeError(Exception):
    """An impossible shape; the message says which and why."""


@dataclass(frozen=True, slots=True)
class Gemm:
    """``count`` independent GEMMs ``(m×k) @ (k×n)``, run one after another on the array; ``grouped``: they are
    the groups of a grouped/depthwise conv, which a hw config may spread across the array instead
    (``array.grouped``, :data:`accelsim.hw.dataflow.GROUPED_MAPPINGS`)."""
    m: int
    n: int
    k: int
    count: int
    b_is_weight: bool
    grouped: bool = False

    @property
    def macs(self) -> int:
        return self.m * self.n * self.k * self.count


def _out_elements(a: dict, shapes: list[Shape], out: Shape) -> int:
    return math.prod(out)


@dataclass(frozen=True, slots=True)
class OpDef:
    attrs: Callable[[Reader], dict]
    shape: Callable[[dict, list[Shape]], Shape]
    run: Callable
    params: Callable[[dict, list[Shape]], int] = lambda a, s: 0
    wide_params: Callable[[dict, list[Shape]], int] = lambda a, s: 0
    weights: Callable[[dict, list[Shape]], dict] = lambda a, s: {}
    gemm: Callable[[dict, list[Shape], Shape], Gemm] | None = None
    vector_ops: float = 0.0
    elements: Callable[[dict, list[Shape], Shape], int] = _out_elements
    fusable: bool = False
    backward: Callable | None = None
    footprint: Callable[[dict, list[Shape], Shape], int] | None = None   # input-0 elements read; None = all
    epilogue: str = ""    # "element" | "row": vector work that can run on a GEMM's output tiles as they drain


# ---- attribute readers -----------------------------------------------------------------------------------

def _pair(r: Reader, key: str, default, minimum: int) -> tuple[int, int]:
    value = r.raw(key, default)
    vals = value if isinstance(value, list) else [value, value]
    ok = len(vals) == 2 and all(isinstance(v, int) and not isinstance(v, bool) and v >= minimum for v in vals)
    if not ok:
        r.bad(key, f"an integer ≥ {minimum} or a pair of them", value)
        return (max(minimum, 1), max(minimum, 1))
    return int(vals[0]), int(vals[1])


def _padding(r: Reader) -> tuple[int, int, int, int]:
    """Padding as int, [ph, pw] or [top, left, bottom, right] (ONNX order) → (top, left, bottom, right)."""
    value = r.raw("padding", 0)
    vals = value if isinstance(value, list) else [value]
    if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in vals) or len(vals) not in (1, 2, 4):
        r.bad("padding", "a non-negative integer, [ph, pw] or [top, left, bottom, right]", value)
        return (0, 0, 0, 0)
    return F.pads4(vals[0] if len(vals) == 1 else vals)


def _conv_attrs(r: Reader) -> dict:
    return dict(out_channels=r.pos_int("out_channels"), kernel=_pair(r, "kernel", None, 1),
                stride=_pair(r, "stride", 1, 1), padding=_padding(r), dilation=_pair(r, "dilation", 1, 1),
                groups=r.pos_int("groups", 1), bias=r.boolean("bias", True), ceil_mode=r.boolean("ceil_mode", False))


def _pool_attrs(r: Reader) -> dict:
    kernel = _pair(r, "kernel", None, 1)
    return dict(kernel=kernel, stride=_pair(r, "stride", list(kernel), 1), padding=_padding(r),
                dilation=(1, 1), ceil_mode=r.boolean("ceil_mode", False))


def _none(r: Reader) -> dict:
    return {}


# ---- shape rules -----------------------------------------------------------------------------------------

def _one(shapes: list[Shape]) -> Shape:
    if len(shapes) != 1:
        raise ShapeError(f"expects 1 input, got {len(shapes)}")
    return shapes[0]


def _conv_out(size: int, k: int, s: int, pad: int, d: int, what: str, ceil_mode: bool) -> int:
    """``floor((size + pad − span) / s) + 1`` (``ceil`` with ceil_mode, as SCALE-Sim), span = d·(k−1)+1."""
    span = d * (k - 1) + 1
    if size + pad < span:
        raise ShapeError(f"kernel {what} {k} (dilated span {span}) is larger than the padded input {size + pad}")
    return (-(-(size + pad - span) // s) if ceil_mode else (size + pad - span) // s) + 1


def _spatial(a: dict, shapes: list[Shape], channels: int) -> Shape:
    x = _one(shapes)
    if len(x) != 3:
        raise ShapeError(f"expects a [C, H, W] input, got {list(x)}")
    (kh, kw), (sh, sw), (dh, dw) = a["kernel"], a["stride"], a["dilation"]
    t, l, b, rr = a["padding"]
    ceil = a["ceil_mode"]
    return (channels, _conv_out(x[1], kh, sh, t + b, dh, "height", ceil), _conv_out(x[2], kw, sw, l + rr, dw, "width", ceil))


def _conv_shape(a: dict, shapes: list[Shape]) -> Shape:
    x = _one(shapes)
    g = a["groups"]
    if len(x) == 3 and (x[0] % g or a["out_channels"] % g):
        raise ShapeError(f"in_channels {x[0]} and out_channels {a['out_channels']} must both be divisible by groups {g}")
    return _spatial(a, shapes, a["out_channels"])


def _pool_shape(a: dict, shapes: list[Shape]) -> Shape:
    x = _one(shapes)
    return _spatial(a, shapes, x[0] if len(x) == 3 else 0)


def _linear_shape(a: dict, shapes: list[Shape]) -> Shape:
    return _one(shapes)[:-1] + (a["out_features"],)


def _matmul_shape(a: dict, shapes: list[Shape]) -> Shape:
    if len(shapes) != 2:
        raise ShapeError(f"expects 2 inputs, got {len(shapes)}")
    x, y = shapes
    if len(x) < 2 or len(y) < 2 or x[:-2] != y[:-2]:
        raise ShapeError(f"expects [..., S, K] and [..., K, T] with equal leading dims, got {list(x)} and {list(y)}")
    k_b, t = (y[-1], y[-2]) if a["transpose_b"] else (y[-2], y[-1])
    if x[-1] != k_b:
        raise ShapeError(f"inner dimensions differ: {x[-1]} vs {k_b} (transpose_b={a['transpose_b']})")
    return x[:-1] + (t,)


def _same_shapes(a: dict, shapes: list[Shape]) -> Shape:
    if len(shapes) < 2 or any(s != shapes[0] for s in shapes):
        raise ShapeError(f"expects ≥ 2 inputs of one shape, got {[list(s) for s in shapes]}")
    return shapes[0]


def _elementwise(a: dict, shapes: list[Shape]) -> Shape:
    return _one(shapes)


def _broadcast_join(a: dict, shapes: list[Shape]) -> Shape:
    """≥ 2 inputs, each broadcasting against the first (e.g. a squeeze-excite scale [C, 1, 1] × [C, H, W])."""
    if len(shapes) < 2 or not all(_broadcasts(shapes[0], s) for s in shapes[1:]):
        raise ShapeError(f"expects ≥ 2 inputs that broadcast against the first, got {[list(s) for s in shapes]}")
    return shapes[0]


def _broadcasts(x: Shape, y: Shape) -> bool:
    return len(y) <= len(x) and all(b in (1, d) for d, b in zip(x[::-1], y[::-1]))


def _softmax_shape(a: dict, shapes: list[Shape]) -> Shape:
    """``softmax(x · scale [+ bias])``: one input, or a second (additive bias) that broadcasts against x."""
    if len(shapes) not in (1, 2):
        raise ShapeError(f"expects 1 input (+ an optional additive bias), got {len(shapes)}")
    if len(shapes) == 2 and not _broadcasts(shapes[0], shapes[1]):
        raise ShapeError(f"bias {list(shapes[1])} does not broadcast against {list(shapes[0])}")
    return shapes[0]


def _mask_bias_shape(a: dict, shapes: list[Shape]) -> Shape:
    x = _one(shapes)
    if len(x) != 1:
        raise ShapeError(f"expects a mask [S], got {list(x)}")
    return (1, 1, x[0])


def _split_heads(a: dict, shapes: list[Shape]) -> Shape:
    x = _one(shapes)
    if len(x) != 2 or x[1] % a["heads"]:
        raise ShapeError(f"expects [S, D] with D divisible by heads={a['heads']}, got {list(x)}")
    return (a["heads"], x[0], x[1] // a["heads"])


def _merge_heads(a: dict, shapes: list[Shape]) -> Shape:
    x = _one(shapes)
    if len(x) != 3:
        raise ShapeError(f"expects [heads, S, d], got {list(x)}")
    return (x[1], x[0] * x[2])


def _embedding_shape(a: dict, shapes: list[Shape]) -> Shape:
    return _one(shapes) + (a["dim"],)


def _seq_to_vector(a: dict, shapes: list[Shape]) -> Shape:
    x = _one(shapes)
    if len(x) != 2:
        raise ShapeError(f"expects an [S, D] input, got {list(x)}")
    return (x[1],)


def _mean_pool_shape(a: dict, shapes: list[Shape]) -> Shape:
    """Mean over the sequence of ``[S, D]``; an optional second input is the mask ``[S]``."""
    if len(shapes) == 2:
        if shapes[1] != shapes[0][:1]:
            raise ShapeError(f"mask {list(shapes[1])} does not match the sequence of {list(shapes[0])}")
        return _seq_to_vector(a, shapes[:1])
    return _seq_to_vector(a, shapes)


def _global_pool(a: dict, shapes: list[Shape]) -> Shape:
    x = _one(shapes)
    if len(x) != 3:
        raise ShapeError(f"expects a [C, H, W] input, got {list(x)}")
    return (x[0], 1, 1)


# ---- parameters, weight bindings, lowering ---------------------------------------------------------------

def _conv_weights(a: dict, s: list[Shape]) -> dict:
    kh, kw = a["kernel"]
    w = {"weight": (a["out_channels"], s[0][0] // a["groups"], kh, kw)}
    return w | ({"bias": (a["out_channels"],)} if a["bias"] else {})


def _linear_weights(a: dict, s: list[Shape]) -> dict:
    return {"weight": (a["out_features"], s[0][-1])} | ({"bias": (a["out_features"],)} if a["bias"] else {})


def _count(weights: Callable) -> Callable[[dict, list[Shape]], int]:
    return lambda a, s: sum(math.prod(shape) for shape in weights(a, s).values())


def _bias_count(weights: Callable) -> Callable[[dict, list[Shape]], int]:
    return lambda a, s: math.prod(weights(a, s).get("bias", (0,)))


def _norm_weights(a: dict, s: list[Shape]) -> dict:
    return {"weight": (s[0][-1],), "bias": (s[0][-1],)}


def _bn_weights(a: dict, s: list[Shape]) -> dict:
    return {k: (s[0][0],) for k in ("weight", "bias", "running_mean", "running_var")}


def _conv_gemm(a: dict, s: list[Shape], out: Shape) -> Gemm:
    """groups g: g GEMMs with M = Ho·Wo, N = Cout/g, K = (Cin/g)·kh·kw (a depthwise conv is Cin tiny GEMMs)."""
    g, (kh, kw) = a["groups"], a["kernel"]
    return Gemm(out[1] * out[2], a["out_channels"] // g, s[0][0] // g * kh * kw, g, True, g > 1)


def _touched(size: int, n_out: int, k: int, s: int, d: int, pad: int) -> int:
    """Distinct input positions in [0, size) read by outputs o < n_out: {o·s + i·d − pad : i < k}."""
    if d == 1 and s <= k:   # overlapping or abutting windows cover one contiguous span
        return max(0, min(size, (n_out - 1) * s + k - pad) - max(0, -pad))
    if size > 1 << 24:      # too big to mark: an upper bound (never more than the input)
        return min(size, n_out * k)
    hit = np.zeros(size + pad + (n_out - 1) * s + (k - 1) * d + 1, dtype=bool)
    for i in range(k):
        hit[i * d: i * d + (n_out - 1) * s + 1: s] = True
    return int(hit[pad: pad + size].sum())


def _conv_footprint(a: dict, s: list[Shape], out: Shape) -> int:
    """Input elements a conv reads: C · touched rows · touched columns (a 1×1 stride-2 conv reads ¼)."""
    (kh, kw), (sh, sw), (dh, dw) = a["kernel"], a["stride"], a["dilation"]
    t, l = a["padding"][0], a["padding"][1]
    c, h, w = s[0]
    return c * _touched(h, out[1], kh, sh, dh, t) * _touched(w, out[2], kw, sw, dw, l)


def _linear_gemm(a: dict, s: list[Shape], out: Shape) -> Gemm:
    return Gemm(math.prod(s[0][:-1]), a["out_features"], s[0][-1], 1, True)


def _matmul_gemm(a: dict, s: list[Shape], out: Shape) -> Gemm:
    """One GEMM M=S, N=T, K per leading index (e.g. per attention head); both operands are activations."""
    return Gemm(s[0][-2], out[-1], s[0][-1], math.prod(s[0][:-2]), False)


def _window_elements(a: dict, s: list[Shape], out: Shape) -> int:
    return math.prod(out) * a["kernel"][0] * a["kernel"][1]


def _input_elements(a: dict, s: list[Shape], out: Shape) -> int:
    return math.prod(s[0])


def _join_elements(a: dict, s: list[Shape], out: Shape) -> int:
    return math.prod(out) * (len(s) - 1)


# ---- FP32 forwards ---------------------------------------------------------------------------------------

def _run_conv(a: dict, xs: list, ctx):
    w, b = ctx.weight_and_bias()
    return ctx.qops.conv(ctx.qname, xs[0], w, b, a["stride"], a["padding"], a["dilation"], a["groups"], ctx.act)


def _run_linear(a: dict, xs: list, ctx):
    w, b = ctx.weight_and_bias()
    return ctx.qops.linear(ctx.qname, xs[0], w, b, ctx.act)


def _run_matmul(a: dict, xs: list, ctx):
    b = np.ascontiguousarray(np.swapaxes(xs[1], -1, -2)) if a["transpose_b"] else xs[1]
    return ctx.qops.matmul(ctx.qname, xs[0], b)


def _run_pool(fn):
    def run(a: dict, xs: list, ctx):
        if a["ceil_mode"]:
            ctx.unsupported("execution supports pools without ceil_mode")
        y = fn(xs[0], a["kernel"], a["stride"], a["padding"])
        return y[0] if isinstance(y, tuple) else y
    return run


def _run_softmax(a: dict, xs: list, ctx):
    return F.softmax(xs[0], -1, a["scale"], xs[1] if len(xs) == 2 else None)


def _float(x) -> np.dtype:
    """The dtype a float op keeps: the input's float dtype (float64 in gradient checks), else float32."""
    return x.dtype if x.dtype.kind == "f" else np.dtype(np.float32)


def _f32(fn):
    return lambda a, xs, ctx: fn(xs[0]).astype(_float(xs[0]), copy=False)


def _layout(fn):
    return lambda a, xs, ctx: np.ascontiguousarray(fn(a, xs[0]))


def _run_bn(a: dict, xs: list, ctx):
    p = ctx.param
    return F.batch_norm(xs[0], p("weight"), p("bias"), p("running_mean"), p("running_var"), a["eps"])


def _act(op: str, fn) -> OpDef:
    return OpDef(_none, _elementwise, _f32(fn), vector_ops=VECTOR_OPS[op], fusable=op in ("relu", "relu6"),
                 backward=B.ACTIVATIONS[op], epilogue="element")


VECTOR_OPS = {"add": 1.0, "mul": 1.0, "relu": 1.0, "relu6": 1.0, "batchnorm": 2.0, "gelu": 8.0, "sigmoid": 4.0,
              "tanh": 4.0, "hardswish": 3.0, "softmax": 5.0, "layernorm": 6.0, "maxpool": 1.0, "avgpool": 1.0,
              "global_avgpool": 1.0, "mean_pool": 1.0, "embedding": 1.0, "mask_bias": 1.0, "hardsigmoid": 2.0}
"""Default vector-unit ops per element (a hw config's ``vector.ops_per_element`` overrides them by op name)."""

_conv_def = dict(params=_count(_conv_weights), wide_params=_bias_count(_conv_weights), weights=_conv_weights,
                 footprint=_conv_footprint)
_linear_def = dict(params=_count(_linear_weights), wide_params=_bias_count(_linear_weights), weights=_linear_weights)

OPS: dict[str, OpDef] = {
    "conv2d": OpDef(_conv_attrs, _conv_shape, _run_conv, gemm=_conv_gemm, backward=B.gemm, **_conv_def),
    "linear": OpDef(lambda r: dict(out_features=r.pos_int("out_features"), bias=r.boolean("bias", True)),
                    _linear_shape, _run_linear, gemm=_linear_gemm, backward=B.gemm, **_linear_def),
    "matmul": OpDef(lambda r: dict(transpose_b=r.boolean("transpose_b", False)), _matmul_shape, _run_matmul,
                    gemm=_matmul_gemm, backward=B.matmul),
    "embedding": OpDef(lambda r: dict(num_embeddings=r.pos_int("num_embeddings"), dim=r.pos_int("dim")),
                       _embedding_shape, lambda a, xs, ctx: F.embedding(xs[0], ctx.param("weight")),
                       params=lambda a, s: a["num_embeddings"] * a["dim"],
                       weights=lambda a, s: {"weight": (a["num_embeddings"], a["dim"])},
                       vector_ops=VECTOR_OPS["embedding"], backward=B.embedding),
    "add": OpDef(_none, _same_shapes, lambda a, xs, ctx: sum(xs[1:], xs[0]).astype(_float(xs[0]), copy=False),
                 vector_ops=VECTOR_OPS["add"], elements=_join_elements, backward=B.add, epilogue="element"),
    "mul": OpDef(_none, _broadcast_join, lambda a, xs, ctx: math.prod(xs[1:], start=xs[0]).astype(_float(xs[0]), copy=False),
                 vector_ops=VECTOR_OPS["mul"], elements=_join_elements, backward=B.mul, epilogue="element"),
    "batchnorm": OpDef(lambda r: dict(eps=r.pos_float("eps", 1e-5)), _elementwise, _run_bn,
                       params=lambda a, s: 2 * s[0][0], wide_params=lambda a, s: 2 * s[0][0], weights=_bn_weights,
                       vector_ops=VECTOR_OPS["batchnorm"], fusable=True, backward=B.batchnorm, epilogue="element"),
    "layernorm": OpDef(lambda r: dict(eps=r.pos_float("eps", 1e-12)), _elementwise,
                       lambda a, xs, ctx: F.layer_norm(xs[0], ctx.param("weight"), ctx.param("bias"), a["eps"]),
                       params=lambda a, s: 2 * s[0][-1], wide_params=lambda a, s: 2 * s[0][-1], weights=_norm_weights,
                       vector_ops=VECTOR_OPS["layernorm"], backward=B.layernorm, epilogue="row"),
    "softmax": OpDef(lambda r: dict(scale=r.pos_float("scale", 1.0)), _softmax_shape, _run_softmax,
                     vector_ops=VECTOR_OPS["softmax"], backward=B.softmax, epilogue="row"),
    "mask_bias": OpDef(_none, _mask_bias_shape, lambda a, xs, ctx: F.mask_bias(xs[0]),
                       vector_ops=VECTOR_OPS["mask_bias"], backward=B.no_grad),
    "maxpool": OpDef(_pool_attrs, _pool_shape, _run_pool(F.max_pool2d), vector_ops=VECTOR_OPS["maxpool"],
                     elements=_window_elements, backward=B.pool("max")),
    "avgpool": OpDef(_pool_attrs, _pool_shape, _run_pool(F.avg_pool2d), vector_ops=VECTOR_OPS["avgpool"],
                     elements=_window_elements, backward=B.pool("avg")),
    "global_avgpool": OpDef(_none, _global_pool, _layout(lambda a, x: x.mean(axis=(2, 3), keepdims=True)),
                            vector_ops=VECTOR_OPS["global_avgpool"], elements=_input_elements,
                            backward=B.global_avgpool),
    "mean_pool": OpDef(_none, _mean_pool_shape, lambda a, xs, ctx: F.mean_pool(*xs),
                       vector_ops=VECTOR_OPS["mean_pool"], elements=_input_elements, backward=B.mean_pool),
    "flatten": OpDef(_none, lambda a, s: (math.prod(_one(s)),), _layout(lambda a, x: x.reshape(len(x), -1)),
                      backward=B.reshape_back),
    "first_token": OpDef(_none, _seq_to_vector, _layout(lambda a, x: x[:, 0]), backward=B.first_token),
    "split_heads": OpDef(lambda r: dict(heads=r.pos_int("heads")), _split_heads,
                         _layout(lambda a, x: F.split_heads(x, a["heads"])), backward=B.split_heads),
    "merge_heads": OpDef(_none, _merge_heads, _layout(lambda a, x: F.merge_heads(x)), backward=B.merge_heads),
    "relu": _act("relu", F.relu),
    "relu6": _act("relu6", F.relu6),
    "gelu": _act("gelu", F.gelu),
    "sigmoid": _act("sigmoid", F.sigmoid),
    "tanh": _act("tanh", np.tanh),
    "hardswish": _act("hardswish", F.hardswish),
    "hardsigmoid": _act("hardsigmoid", lambda x: np.clip(x / 6 + 0.5, 0, 1)),   # relu6(x + 3) / 6 (MobileNetV3 SE)
}


# ---- ops for imported graphs (accelsim.onnx; usable from YAML too) -----------------------------------------
# Axes count without the batch axis (axis 0 = the first non-batch dimension), as every shape here.

def _int_list(r: Reader, key: str, default=None, nullable: bool = False) -> list:
    """A list of integers (negative allowed; ``None`` entries where ``nullable``)."""
    value = r.raw(key, default)
    ok = isinstance(value, (list, tuple)) and all(
        (v is None and nullable) or (isinstance(v, int) and not isinstance(v, bool)) for v in value)
    if not ok:
        r.bad(key, "a list of integers", value)
        return []
    return list(value)


def _number(r: Reader, key: str, default=None) -> float:
    """Any finite number (negative allowed; ``±inf`` only as the default)."""
    value = r.raw(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:
        r.bad(key, "a number", value)
        return 0.0
    return float(value)


def _axes_ok(axes, rank: int) -> bool:
    return all(0 <= a < rank for a in axes) and len(set(axes)) == len(axes)


def _reshape_shape(a: dict, shapes: list[Shape]) -> Shape:
    x, out = _one(shapes), tuple(a["shape"])
    if any(d <= 0 for d in out) or math.prod(out) != math.prod(x):
        raise ShapeError(f"cannot reshape {list(x)} ({math.prod(x)} elements) to {list(out)}")
    return out


def _transpose_shape(a: dict, shapes: list[Shape]) -> Shape:
    x, perm = _one(shapes), a["perm"]
    if sorted(perm) != list(range(len(x))):
        raise ShapeError(f"perm {perm} is not a permutation of the {len(x)} axes of {list(x)}")
    return tuple(x[p] for p in perm)


def _concat_shape(a: dict, shapes: list[Shape]) -> Shape:
    ax = a["axis"]
    if not shapes or not 0 <= ax < len(shapes[0]) or any(
            len(s) != len(shapes[0]) or s[:ax] + s[ax + 1:] != shapes[0][:ax] + shapes[0][ax + 1:] for s in shapes):
        raise ShapeError(f"cannot concatenate {[list(s) for s in shapes]} along axis {ax}")
    return shapes[0][:ax] + (sum(s[ax] for s in shapes),) + shapes[0][ax + 1:]


def _slices(a: dict) -> tuple:
    return tuple(slice(b, e, s) for b, e, s in zip(a["starts"], a["ends"], a["steps"]))


def _slice_shape(a: dict, shapes: list[Shape]) -> Shape:
    """``x[starts:ends:steps]`` per axis (lists as long as the rank; an end of ``None`` runs to the edge)."""
    x = _one(shapes)
    if not len(a["starts"]) == len(a["ends"]) == len(a["steps"]) == len(x) or 0 in a["steps"]:
        raise ShapeError(f"starts/ends/steps must give one non-zero step per axis of {list(x)}")
    out = tuple(len(range(*sl.indices(d))) for sl, d in zip(_slices(a), x))
    if 0 in out:
        raise ShapeError(f"slice of {list(x)} is empty")
    return out


def _pad_shape(a: dict, shapes: list[Shape]) -> Shape:
    x, p = _one(shapes), a["pads"]
    if len(p) != 2 * len(x):
        raise ShapeError(f"pads needs {2 * len(x)} values (begins then ends) for {list(x)}, got {len(p)}")
    out = tuple(d + p[i] + p[i + len(x)] for i, d in enumerate(x))
    if min(out) <= 0:
        raise ShapeError(f"pads {p} leave nothing of {list(x)}")
    return out


def _run_pad(a: dict, xs: list, ctx):
    x, p, n = xs[0], a["pads"], xs[0].ndim - 1
    cut = (slice(None),) + tuple(slice(max(0, -p[i]), d - max(0, -p[i + n]))
                                     for i, d in enumerate(x.shape[1:]))
    widths = [(0, 0)] + [(max(0, p[i]), max(0, p[i + n])) for i in range(n)]
    kw = {"constant_values": a["value"]} if a["mode"] == "constant" else {}
    return np.pad(x[cut], widths, mode=a["mode"], **kw)


def _reduce_shape(a: dict, shapes: list[Shape]) -> Shape:
    x = _one(shapes)
    if not _axes_ok(a["axes"], len(x)):
        raise ShapeError(f"axes {a['axes']} are not distinct axes of {list(x)}")
    return tuple(1 if i in a["axes"] else d for i, d in enumerate(x) if a["keepdims"] or i not in a["axes"])


def _softmax_axes_shape(a: dict, shapes: list[Shape]) -> Shape:
    x = _one(shapes)
    if not a["axes"] or not _axes_ok(a["axes"], len(x)):
        raise ShapeError(f"axes {a['axes']} are not distinct axes of {list(x)}")
    return x


def _gather_shape(a: dict, shapes: list[Shape]) -> Shape:
    x, ax, idx = _one(shapes), a["axis"], np.asarray(a["indices"])
    if not 0 <= ax < len(x) or idx.size == 0 or idx.min() < -x[ax] or idx.max() >= x[ax]:
        raise ShapeError(f"indices {a['indices']} out of range for axis {ax} of {list(x)}")
    return x[:ax] + idx.shape + x[ax + 1:]


def _broadcast_shape(a: dict, shapes: list[Shape]) -> Shape:
    """≥ 2 inputs with numpy (ONNX multidirectional) broadcasting."""
    try:
        if len(shapes) < 2:
            raise ValueError
        return tuple(np.broadcast_shapes(*shapes))
    except ValueError:
        raise ShapeError(f"inputs {[list(s) for s in shapes]} do not broadcast") from None


def _lrn(a: dict, x):
    """``y = x / (bias + alpha/size · Σ_{c'∈[c−⌊(size−1)/2⌋, c+⌈(size−1)/2⌉]} x[c']²)^beta`` (ONNX LRN)."""
    sq = np.square(x)
    lo, hi = (a["size"] - 1) // 2, -(-(a["size"] - 1) // 2)
    sq = np.pad(sq, [(0, 0), (lo, hi)] + [(0, 0)] * (x.ndim - 2))
    c = x.shape[1]
    acc = sum(sq[:, i:i + c] for i in range(a["size"]))
    return (x / (x.dtype.type(a["bias"]) + x.dtype.type(a["alpha"] / a["size"]) * acc) ** x.dtype.type(a["beta"]))


def _avgpool_valid(x, kernel, stride, padding):
    """Average over the window's cells inside the input (ONNX ``count_include_pad=0``)."""
    ones = np.ones((1, 1) + x.shape[2:], dtype=x.dtype)
    return F.avg_pool2d(x, kernel, stride, padding) / F.avg_pool2d(ones, kernel, stride, padding)


def _binary(fn, ops: float = 1.0) -> OpDef:
    return OpDef(_none, _broadcast_shape, lambda a, xs, ctx: fn(*xs).astype(_float(xs[0]), copy=False),
                 vector_ops=ops, epilogue="element")


def _unary(fn, ops: float, attrs=_none) -> OpDef:
    return OpDef(attrs, _elementwise, lambda a, xs, ctx: fn(a, xs[0]).astype(_float(xs[0]), copy=False),
                 vector_ops=ops, epilogue="element")


def _no_run(a: dict, xs: list, ctx):
    ctx.unsupported(f"imported op {a['onnx_op']} is costed as vector work but cannot be executed")


# gradient rules of the import ops (:mod:`accelsim.nn.backward` conventions); ops without a cheap exact rule raise
def _grad_unavailable(op: str):
    def rule(a, xs, y, dy, ctx):
        ctx.unsupported(f"no gradient rule for {op} (an op of imported graphs; inference only)")
    return rule


def _unbroadcast_all(grads: list, xs: list) -> list:
    return [B._unbroadcast(np.asarray(g, dtype=dy_dtype(g)), x.shape) for g, x in zip(grads, xs)]


def dy_dtype(g) -> np.dtype:
    return g.dtype if getattr(g, "dtype", np.dtype("O")).kind == "f" else np.dtype(np.float32)


def _binary_grad(fn):
    return lambda a, xs, y, dy, ctx: _unbroadcast_all(fn(xs, y, dy), xs)


def _slice_back(a, xs, y, dy, ctx):
    dx = np.zeros_like(xs[0])
    dx[(slice(None), *_slices(a))] = dy
    return [dx]


def _pad_back(a, xs, y, dy, ctx):
    if a["mode"] != "constant" or min(a["pads"]) < 0:
        ctx.unsupported("no gradient rule for non-constant or negative padding")
    return [dy[(slice(None), *(slice(a["pads"][i], a["pads"][i] + d) for i, d in enumerate(xs[0].shape[1:])))]]


def _concat_back(a, xs, y, dy, ctx):
    cuts = np.cumsum([x.shape[a["axis"] + 1] for x in xs])[:-1]
    return np.split(dy, cuts, axis=a["axis"] + 1)


def _reduce_mean_back(a, xs, y, dy, ctx):
    axes = tuple(i + 1 for i in a["axes"])
    g = dy if a["keepdims"] else np.expand_dims(dy, axes)
    return [np.broadcast_to(g / math.prod(xs[0].shape[i] for i in axes), xs[0].shape).astype(dy.dtype)]


def _softmax_axes_back(a, xs, y, dy, ctx):
    axes = tuple(i + 1 for i in a["axes"])
    return [y * (dy - (dy * y).sum(axis=axes, keepdims=True))]


def _unary_grad(fn):
    return lambda a, xs, y, dy, ctx: [fn(a, xs[0], y, dy)]


def _constant_back(a, xs, y, dy, ctx):
    ctx.add_grad("value", dy.sum(axis=0))
    return [None]


IMPORT_GRADS = {
    "constant": _constant_back,
    "reshape": B.reshape_back,
    "transpose": lambda a, xs, y, dy, ctx: [dy.transpose(0, *(int(i) + 1 for i in np.argsort(a["perm"])))],
    "concat": _concat_back, "slice": _slice_back, "pad": _pad_back, "reduce_mean": _reduce_mean_back,
    "softmax_axes": _softmax_axes_back,
    "clip": _unary_grad(lambda a, x, y, dy: dy * ((x >= a["min"]) & (x <= a["max"]))),
    "leaky_relu": _unary_grad(lambda a, x, y, dy: np.where(x >= 0, dy, dy * dy.dtype.type(a["alpha"]))),
    "hardsigmoid_ab": _unary_grad(lambda a, x, y, dy: dy * dy.dtype.type(a["alpha"]) * ((y > 0) & (y < 1))),
    "erf": _unary_grad(lambda a, x, y, dy: dy * (2 / math.sqrt(math.pi)) * np.exp(-x * x)),
    "exp": _unary_grad(lambda a, x, y, dy: dy * y),
    "sqrt": _unary_grad(lambda a, x, y, dy: dy / (2 * y)),
    "neg": _unary_grad(lambda a, x, y, dy: -dy),
    "bcast_add": _binary_grad(lambda xs, y, dy: [dy, dy]),
    "bcast_mul": _binary_grad(lambda xs, y, dy: [dy * xs[1], dy * xs[0]]),
    "sub": _binary_grad(lambda xs, y, dy: [dy, -dy]),
    "div": _binary_grad(lambda xs, y, dy: [dy / xs[1], -dy * y / xs[1]]),
    "maximum": _binary_grad(lambda xs, y, dy: [dy * (xs[0] >= xs[1]), dy * (xs[0] < xs[1])]),
    "minimum": _binary_grad(lambda xs, y, dy: [dy * (xs[0] <= xs[1]), dy * (xs[0] > xs[1])]),
}

def _qdq_attrs(r: Reader) -> dict:
    return dict(scale=r.pos_float("scale", maximum=3.5e38), zero_point=int(_number(r, "zero_point", 0)),
                bits=r.pos_int("bits", 8), signed=r.boolean("signed", False))


def _qdq_run(a: dict, x, quantize: bool):
    """ONNX Runtime-exact ``QuantizeLinear`` (x → codes) or ``DequantizeLinear`` (codes → float32)."""
    from .quant import dequantize_linear, quantize_linear
    dtype = f"{'' if a['signed'] else 'u'}int{a['bits']}"
    zp = np.asarray(a["zero_point"], dtype=np.dtype(dtype) if a["bits"] in (8, 16) else np.int8)
    scale = np.float32(a["scale"])
    return quantize_linear(x, scale, zp, dtype=dtype) if quantize else dequantize_linear(x, scale, zp, dtype=dtype)


def _qadd_attrs(r: Reader) -> dict:
    out = {f"{k}_scale": r.pos_float(f"{k}_scale", maximum=3.5e38) for k in "abc"}
    out |= {f"{k}_zero_point": int(_number(r, f"{k}_zero_point", 0)) for k in "abc"}
    return out | dict(signed=r.boolean("signed", False))


def _qgap_attrs(r: Reader) -> dict:
    return {f"{k}_scale": r.pos_float(f"{k}_scale", maximum=3.5e38) for k in "xy"} | {
        f"{k}_zero_point": int(_number(r, f"{k}_zero_point", 0)) for k in "xy"}


def _qgap_run(a: dict, x):
    from .onnx.ort_ops import qlinear_global_avgpool
    return qlinear_global_avgpool(x, a["x_scale"], a["x_zero_point"], a["y_scale"], a["y_zero_point"])


def _qadd_run(a: dict, xs: list):
    from .onnx.ort_ops import qlinear_add
    return qlinear_add(xs[0], a["a_scale"], a["a_zero_point"], xs[1], a["b_scale"], a["b_zero_point"],
                       a["c_scale"], a["c_zero_point"], np.int8 if a["signed"] else np.uint8)


IMPORT_OPS: dict[str, OpDef] = {
    # a weight tensor as a graph tensor (binding ``prefix.value``); at run time it gains a batch axis of 1
    "constant": OpDef(lambda r: dict(shape=_int_list(r, "shape", [])), lambda a, s: tuple(a["shape"]),
                      lambda a, xs, ctx: ctx.param("value")[None], params=lambda a, s: math.prod(a["shape"]),
                      weights=lambda a, s: {"value": tuple(a["shape"])}),
    "reshape": OpDef(lambda r: dict(shape=_int_list(r, "shape")), _reshape_shape,
                     _layout(lambda a, x: x.reshape((len(x), *a["shape"])))),
    "transpose": OpDef(lambda r: dict(perm=_int_list(r, "perm")), _transpose_shape,
                       _layout(lambda a, x: x.transpose(0, *(p + 1 for p in a["perm"])))),
    "concat": OpDef(lambda r: dict(axis=r.nonneg_int("axis")), _concat_shape,
                    lambda a, xs, ctx: np.concatenate(xs, axis=a["axis"] + 1)),
    "slice": OpDef(lambda r: dict(starts=_int_list(r, "starts"), ends=_int_list(r, "ends", nullable=True),
                                  steps=_int_list(r, "steps")), _slice_shape,
                   _layout(lambda a, x: x[(slice(None), *_slices(a))])),
    "pad": OpDef(lambda r: dict(pads=_int_list(r, "pads"), mode=r.choice("mode", ("constant", "reflect", "edge"))
                                if "mode" in r.data else "constant", value=_number(r, "value", 0.0)),
                 _pad_shape, _run_pad),
    "gather": OpDef(lambda r: dict(axis=r.nonneg_int("axis"), indices=r.raw("indices")), _gather_shape,
                    _layout(lambda a, x: np.take(x, np.asarray(a["indices"]), axis=a["axis"] + 1))),
    "reduce_mean": OpDef(lambda r: dict(axes=_int_list(r, "axes"), keepdims=r.boolean("keepdims", True)),
                         _reduce_shape,
                         lambda a, xs, ctx: xs[0].mean(axis=tuple(i + 1 for i in a["axes"]), keepdims=a["keepdims"]),
                         vector_ops=1.0, elements=_input_elements),
    "softmax_axes": OpDef(lambda r: dict(axes=_int_list(r, "axes")), _softmax_axes_shape,
                          lambda a, xs, ctx: F.softmax(xs[0], tuple(i + 1 for i in a["axes"])), vector_ops=5.0),
    "lrn": OpDef(lambda r: dict(size=r.pos_int("size"), alpha=r.pos_float("alpha", 1e-4), beta=r.pos_float("beta", 0.75),
                                bias=r.pos_float("bias", 1.0)), _elementwise, lambda a, xs, ctx: _lrn(a, xs[0]),
                 vector_ops=8.0),
    "avgpool_valid": OpDef(_pool_attrs, _pool_shape, _run_pool(_avgpool_valid), vector_ops=1.0,
                           elements=_window_elements),
    "clip": _unary(lambda a, x: np.clip(x, a["min"], a["max"]), 1.0,
                   lambda r: dict(min=_number(r, "min", -math.inf), max=_number(r, "max", math.inf))),
    "leaky_relu": _unary(lambda a, x: np.where(x >= 0, x, x * x.dtype.type(a["alpha"])), 1.0,
                         lambda r: dict(alpha=_number(r, "alpha", 0.01))),
    "hardsigmoid_ab": _unary(lambda a, x: np.clip(x * x.dtype.type(a["alpha"]) + x.dtype.type(a["beta"]), 0, 1), 2.0,
                             lambda r: dict(alpha=_number(r, "alpha", 0.2), beta=_number(r, "beta", 0.5))),
    "erf": _unary(lambda a, x: F.erf(x), 8.0),
    "exp": _unary(lambda a, x: np.exp(x), 4.0),
    "sqrt": _unary(lambda a, x: np.sqrt(x), 4.0),
    "neg": _unary(lambda a, x: -x, 1.0),
    "bcast_add": _binary(np.add),
    "bcast_mul": _binary(np.multiply),
    "sub": _binary(np.subtract),
    "div": _binary(np.divide),
    "pow": _binary(np.power, 4.0),
    "maximum": _binary(np.maximum),
    "minimum": _binary(np.minimum),
    # ONNX QuantizeLinear / DequantizeLinear of an activation on one grid (codes between them are integers);
    # free in the cost model: on the integer datapath they are the requantization of the neighbouring GEMMs
    "quantize_linear": OpDef(_qdq_attrs, _elementwise, lambda a, xs, ctx: _qdq_run(a, xs[0], True)),
    "dequantize_linear": OpDef(_qdq_attrs, _elementwise, lambda a, xs, ctx: _qdq_run(a, xs[0], False)),
    # ONNX Runtime's QLinearAdd on two code tensors (what it fuses DQ → Add → Q into), exact (accelsim.onnx.ort_ops)
    "qlinear_add": OpDef(_qadd_attrs, _broadcast_shape, lambda a, xs, ctx: _qadd_run(a, xs), vector_ops=1.0),
    "qlinear_global_avgpool": OpDef(_qgap_attrs, _global_pool, lambda a, xs, ctx: _qgap_run(a, xs[0]), vector_ops=1.0,
                                    elements=_input_elements),
    # an op accelsim cannot run, costed as ``vector_ops`` per output element (``--unsupported vector``)
    "vector": OpDef(lambda r: dict(shape=_int_list(r, "shape"), onnx_op=r.string("onnx_op")),
                    lambda a, s: tuple(a["shape"]), _no_run, vector_ops=1.0),
}
OPS.update({k: v if v.backward is not None else replace(v, backward=IMPORT_GRADS.get(k, _grad_unavailable(k)))
            for k, v in IMPORT_OPS.items()})
