"""Pooling and reductions — ``maxpool``, ``avgpool``, ``global_avgpool``, imported ``avgpool_valid`` and
``reduce_mean`` — with their numerics and gradients. Windows follow :mod:`accelsim.ops._geometry` (ONNX padding
order); vector work is one operation per output element and window tap (pools) or per input element (global
and reduce means)."""
from __future__ import annotations

import math

import numpy as np

from . import attrs as A
from ._common import axes_ok, input_elements, one, spatial, window_elements
from ._geometry import conv_output_size, pad, pads4, pair, unpad, window
from .registry import OpDef, Shape, ShapeError

# ---- numerics ----------------------------------------------------------------------------------------------


def _pool_geometry(x_shape, kernel, stride, padding):
    kh, kw = pair(kernel, "kernel")
    st = pair(stride if stride is not None else (kh, kw), "stride")
    pads = pads4(padding)
    return kh, kw, st, pads, conv_output_size(x_shape[2], x_shape[3], kh, kw, st, pads, 1)


def max_pool2d(x, kernel, stride=None, padding=0):
    """``y[n,c,i,j] = max_{r,s} xpad[n, c, i·sh + r, j·sw + s]`` (pad = −inf) and the argmax tap index
    ``r·kw + s`` (first maximum wins) for the backward."""
    kh, kw, st, pads, (ho, wo) = _pool_geometry(x.shape, kernel, stride, padding)
    xp = pad(x, pads, -np.inf)
    y = np.full((x.shape[0], x.shape[1], ho, wo), -np.inf, dtype=x.dtype)
    arg = np.zeros(y.shape, dtype=np.int16)
    for r in range(kh):
        for s in range(kw):
            win = window(xp, r, s, ho, wo, st, (1, 1))
            better = win > y
            y = np.where(better, win, y)
            arg[better] = r * kw + s
    return y, arg


def _spread(dy, x_shape, kernel, stride, padding, tap):
    """``dx`` = Σ over window taps (r, s) of ``tap(r, s, kw)`` (the share of ``dy`` that tap gets) scattered back."""
    kh, kw, st, pads, _ = _pool_geometry(x_shape, kernel, stride, padding)
    ho, wo = dy.shape[2:]
    dxp = np.zeros((x_shape[0], x_shape[1], x_shape[2] + pads[0] + pads[2], x_shape[3] + pads[1] + pads[3]),
                   dtype=dy.dtype)
    for r in range(kh):
        for s in range(kw):
            window(dxp, r, s, ho, wo, st, (1, 1))[...] += tap(r, s, kh, kw)
    return unpad(dxp, pads, x_shape[2], x_shape[3])


def max_pool2d_backward(dy, arg, x_shape, kernel, stride=None, padding=0):
    """Route each ``dy`` to the input position its window's argmax came from."""
    return _spread(dy, x_shape, kernel, stride, padding, lambda r, s, kh, kw: dy * (arg == r * kw + s))


def avg_pool2d(x, kernel, stride=None, padding=0):
    """``y = (1/(kh·kw)) Σ_{r,s} xpad[...]`` (zero padding counted, torch's ``count_include_pad=True``)."""
    kh, kw, st, pads, (ho, wo) = _pool_geometry(x.shape, kernel, stride, padding)
    xp = pad(x, pads)
    y = np.zeros((x.shape[0], x.shape[1], ho, wo), dtype=x.dtype)
    for r in range(kh):
        for s in range(kw):
            y += window(xp, r, s, ho, wo, st, (1, 1))
    return y / (kh * kw)


def avg_pool2d_backward(dy, x_shape, kernel, stride=None, padding=0):
    """Spread ``dy / (kh·kw)`` over each window."""
    return _spread(dy, x_shape, kernel, stride, padding, lambda r, s, kh, kw: dy / (kh * kw))


def avg_pool2d_valid(x, kernel, stride=None, padding=0):
    """Average over the window's cells inside the input (ONNX ``count_include_pad=0``)."""
    ones = np.ones((1, 1) + x.shape[2:], dtype=x.dtype)
    return avg_pool2d(x, kernel, stride, padding) / avg_pool2d(ones, kernel, stride, padding)


def global_avg_pool(x):
    """``[N, C, H, W] → [N, C]``, mean over H·W."""
    return x.mean(axis=(2, 3))


def global_avg_pool_backward(dy, x_shape):
    """``dx = dy / (H·W)`` broadcast over the plane."""
    h, w = x_shape[2:]
    return np.broadcast_to((dy / (h * w))[:, :, None, None], x_shape).copy()


# ---- the registry entries ----------------------------------------------------------------------------------

def _pool_shape(a: dict, shapes: list[Shape]) -> Shape:
    x = one(shapes)
    return spatial(a, shapes, x[0] if len(x) == 3 else 0)


def _global_pool(a: dict, shapes: list[Shape]) -> Shape:
    x = one(shapes)
    if len(x) != 3:
        raise ShapeError(f"expects a [C, H, W] input, got {list(x)}")
    return (x[0], 1, 1)


def _run_pool(fn):
    def run(a: dict, xs: list, ctx):
        if a["ceil_mode"]:
            ctx.unsupported("execution supports pools without ceil_mode")
        y = fn(xs[0], a["kernel"], a["stride"], a["padding"])
        if isinstance(y, tuple):   # max pool: keep the argmax for the gradient rule
            y, ctx.saved = y
        return y
    return run


def _max_back(a, xs, y, dy, ctx):
    k, s, p = a["kernel"], a["stride"], a["padding"]
    arg = ctx.saved if ctx.saved is not None else max_pool2d(xs[0], k, s, p)[1]   # the forward's argmax
    return [max_pool2d_backward(dy, arg, xs[0].shape, k, s, p)]


def _avg_back(a, xs, y, dy, ctx):
    return [avg_pool2d_backward(dy, xs[0].shape, a["kernel"], a["stride"], a["padding"])]


def _reduce_shape(a: dict, shapes: list[Shape]) -> Shape:
    x = one(shapes)
    if not axes_ok(a["axes"], len(x)):
        raise ShapeError(f"axes {a['axes']} are not distinct axes of {list(x)}")
    return tuple(1 if i in a["axes"] else d for i, d in enumerate(x) if a["keepdims"] or i not in a["axes"])


def _reduce_mean_back(a, xs, y, dy, ctx):
    axes = tuple(i + 1 for i in a["axes"])
    g = dy if a["keepdims"] else np.expand_dims(dy, axes)
    return [np.broadcast_to(g / math.prod(xs[0].shape[i] for i in axes), xs[0].shape).astype(dy.dtype)]


OPS = {
    "maxpool": OpDef(A.window, _pool_shape, _run_pool(max_pool2d), vector_ops=1.0, elements=window_elements,
                     backward=_max_back),
    "avgpool": OpDef(A.window, _pool_shape, _run_pool(avg_pool2d), vector_ops=1.0, elements=window_elements,
                     backward=_avg_back),
    "global_avgpool": OpDef(A.none, _global_pool,
                            lambda a, xs, ctx: np.ascontiguousarray(xs[0].mean(axis=(2, 3), keepdims=True)),
                            vector_ops=1.0, elements=input_elements,
                            backward=lambda a, xs, y, dy, ctx: [global_avg_pool_backward(dy.reshape(dy.shape[:2]),
                                                                                         xs[0].shape)]),
}

IMPORTED = {
    "avgpool_valid": OpDef(A.window, _pool_shape, _run_pool(avg_pool2d_valid), vector_ops=1.0,
                           elements=window_elements),
    "reduce_mean": OpDef(lambda r: dict(axes=A.int_list(r, "axes"), keepdims=r.boolean("keepdims", True)),
                         _reduce_shape,
                         lambda a, xs, ctx: xs[0].mean(axis=tuple(i + 1 for i in a["axes"]), keepdims=a["keepdims"]),
                         vector_ops=1.0, elements=input_elements, backward=_reduce_mean_back),
}
