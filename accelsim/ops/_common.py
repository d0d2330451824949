"""Building blocks several op families share: shape rules, vector-work counts, run adapters and gradient helpers.

Shapes describe one inference (see :mod:`accelsim.ops`); arrays at run time carry the batch as axis 0.
"""
from __future__ import annotations

import math

import numpy as np

from .registry import Shape, ShapeError

# ---- shape rules -------------------------------------------------------------------------------------------


def one(shapes: list[Shape]) -> Shape:
    """The single input's shape (ShapeError for any other count)."""
    if len(shapes) != 1:
        raise ShapeError(f"expects 1 input, got {len(shapes)}")
    return shapes[0]


def same(a: dict, shapes: list[Shape]) -> Shape:
    """One input, output of the same shape (element-wise ops, normalizations)."""
    return one(shapes)


def broadcasts(x: Shape, y: Shape) -> bool:
    """True when ``y`` broadcasts against ``x`` without growing it."""
    return len(y) <= len(x) and all(b in (1, d) for d, b in zip(x[::-1], y[::-1]))


def axes_ok(axes, rank: int) -> bool:
    """Distinct axes, each in ``[0, rank)``."""
    return all(0 <= a < rank for a in axes) and len(set(axes)) == len(axes)


def broadcast_shape(a: dict, shapes: list[Shape]) -> Shape:
    """≥ 2 inputs with numpy (ONNX multidirectional) broadcasting."""
    try:
        if len(shapes) < 2:
            raise ValueError
        return tuple(np.broadcast_shapes(*shapes))
    except ValueError:
        raise ShapeError(f"inputs {[list(s) for s in shapes]} do not broadcast") from None


def conv_out(size: int, k: int, s: int, pad: int, d: int, what: str, ceil_mode: bool) -> int:
    """``floor((size + pad − span) / s) + 1`` (``ceil`` with ceil_mode, as SCALE-Sim), span = d·(k−1)+1."""
    span = d * (k - 1) + 1
    if size + pad < span:
        raise ShapeError(f"kernel {what} {k} (dilated span {span}) is larger than the padded input {size + pad}")
    return (-(-(size + pad - span) // s) if ceil_mode else (size + pad - span) // s) + 1


_DIMS = {1: ("length",), 2: ("height", "width"), 3: ("depth", "height", "width")}
_LETTERS = {1: "L", 2: "H, W", 3: "D, H, W"}


def window_dims(a: dict, x: Shape) -> tuple[Shape, int, Shape]:
    """``(lead, C, spatial)`` of a window op's input ``[*lead, C, *spatial]``, ``len(spatial) = len(kernel)``
    (``lead``: dims in front of the channels, e.g. ONNX's N in a graph without a batch axis)."""
    d = len(a["kernel"])
    if len(x) < d + 1:
        raise ShapeError(f"expects a [C, {_LETTERS[d]}] input ({d} spatial dim(s) after the channels), got {list(x)}")
    return x[:len(x) - d - 1], x[-d - 1], x[len(x) - d:]


def spatial(a: dict, shapes: list[Shape], channels: int | None) -> Shape:
    """``[*lead, channels, *out]`` of a window op (kernel, stride, dilation, padding, ceil_mode) on
    ``[*lead, C, *spatial]`` (``channels`` None: C)."""
    lead, c, sp = window_dims(a, one(shapes))
    d, pads = len(sp), a["padding"]
    out = tuple(conv_out(n, a["kernel"][i], a["stride"][i], pads[i] + pads[i + d], a["dilation"][i], _DIMS[d][i],
                         a["ceil_mode"]) for i, n in enumerate(sp))
    return lead + (c if channels is None else channels,) + out


def on_images(a: dict, x, fn):
    """``fn`` on a window op's run-time input ``[B, *lead, C, *spatial]`` seen as ``[B·lead, C, *spatial]``
    (dims in front of the channels run as more images), the result shaped back."""
    d = len(a["kernel"])
    front = x.shape[:x.ndim - d - 1]
    y = fn(x.reshape((-1,) + x.shape[x.ndim - d - 1:]))
    return y.reshape(front + y.shape[1:])


def channel_axis_ok(a: dict, shapes: list[Shape]) -> Shape:
    """The single input of a per-channel op (``channel_axis`` within its rank)."""
    x = one(shapes)
    if not 0 <= a["channel_axis"] < len(x):
        raise ShapeError(f"channel_axis {a['channel_axis']} is not an axis of {list(x)}")
    return x


# ---- vector work (``OpDef.elements``) ----------------------------------------------------------------------

def input_elements(a: dict, s: list[Shape], out: Shape) -> int:
    """One unit of work per input element (reductions)."""
    return math.prod(s[0])


def window_elements(a: dict, s: list[Shape], out: Shape) -> int:
    """One unit per output element and window tap (pools)."""
    return math.prod(out) * math.prod(a["kernel"])


# ---- run adapters ------------------------------------------------------------------------------------------

def float_dtype(x) -> np.dtype:
    """The dtype a float op keeps: the input's float dtype (float64 in gradient checks), else float32."""
    return x.dtype if x.dtype.kind == "f" else np.dtype(np.float32)


def arith_dtype(xs) -> np.dtype:
    """The dtype of arithmetic on ``xs``: the first float input's (a float32 graph stays float32, a float64 one
    float64), or the integer inputs' common type (ONNX integer Add/Mul/... stay integer)."""
    return next((x.dtype for x in xs if x.dtype.kind == "f"), None) or np.result_type(*xs)


def layout(fn):
    """``run`` of a layout op ``fn(attrs, x)``: a contiguous result."""
    return lambda a, xs, ctx: np.ascontiguousarray(fn(a, xs[0]))


# ---- gradient helpers --------------------------------------------------------------------------------------

def aligned(xs: list) -> list:
    """Run-time arrays of broadcasting inputs with equal ranks: a lower-rank input gets its missing (leading)
    dims after the batch axis, so that numpy broadcasts shape against shape and batch against batch."""
    r = max(x.ndim for x in xs)
    return [x if x.ndim == r else x.reshape(x.shape[:1] + (1,) * (r - x.ndim) + x.shape[1:]) for x in xs]


def unbroadcast(g, shape):
    """Sum a broadcast gradient ``g`` (run-time, batch axis in front) back down to the run-time ``shape``: the
    dims a lower-rank input lacked (after the batch axis), then every dim it had as 1."""
    if g.ndim > len(shape):
        g = g.sum(axis=tuple(range(1, 1 + g.ndim - len(shape))))
    for ax, n in enumerate(shape):
        if n == 1 and g.shape[ax] != 1:
            g = g.sum(axis=ax, keepdims=True)
    return g


def no_grad(a, xs, y, dy, ctx):
    """Masks and other non-differentiable inputs."""
    return [None] * len(xs)


def unary_grad(fn):
    """A rule ``[fn(attrs, x, y, dy)]`` for a one-input op."""
    return lambda a, xs, y, dy, ctx: [fn(a, xs[0], y, dy)]
