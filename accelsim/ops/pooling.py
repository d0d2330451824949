"""Pooling and reductions — ``maxpool``, ``avgpool``, ``global_avgpool``, imported ``avgpool_valid``,
``reduce_mean`` and ``reduce`` (sum, max, min, prod, L2) — with their numerics and gradients.

Pools work in 1 to 3 spatial dims on ``[*lead, C, *spatial]`` (the kernel's length says how many; dims in front of
the channels run as more images); windows follow :mod:`accelsim.ops._geometry` (ONNX padding order), MaxPool
with dilation. ``global_avgpool`` averages every axis after ``channel_axis`` (default 0: ``[C, H, W] → [C, 1,
1]``). Vector work: one operation per output element and window tap (pools) or per input element (global pools
and reductions).
"""
from __future__ import annotations

import math

import numpy as np

from . import attrs as A
from ._common import axes_ok, channel_axis_ok, input_elements, on_images, one, spatial, window_elements
from ._geometry import ntuple, out_sizes, pad, pads_nd, unpad_nd, window_nd
from .registry import OpDef, Shape, ShapeError

# ---- numerics ----------------------------------------------------------------------------------------------


def _pool_geometry(x_shape, kernel, stride, padding, dilation=1):
    d = len(x_shape) - 2
    k = ntuple(kernel, d, "kernel")
    st = ntuple(stride if stride is not None else k, d, "stride")
    pads, dl = pads_nd(padding, d), ntuple(dilation, d, "dilation")
    return k, st, pads, dl, out_sizes(x_shape[2:], k, st, pads, dl)


def max_pool(x, kernel, stride=None, padding=0, dilation=1):
    """``y[n, c, *i] = max_t xpad[n, c, *(i·s + t·d)]`` (pad = −inf) and the argmax tap's flat index (first
    maximum wins) for the backward; ``x [N, C, *spatial]``."""
    k, st, pads, dl, out = _pool_geometry(x.shape, kernel, stride, padding, dilation)
    xp = pad(x, pads, -np.inf)
    y = np.full(x.shape[:2] + out, -np.inf, dtype=x.dtype)
    arg = np.zeros(y.shape, dtype=np.int32)
    for i, tap in enumerate(np.ndindex(*k)):
        win = window_nd(xp, tap, out, st, dl)
        better = win > y
        y = np.where(better, win, y)
        arg[better] = i
    return y, arg


def _spread(dy, x_shape, kernel, stride, padding, dilation, share):
    """``dx`` = Σ over window taps (flat index i) of ``share(i, taps)`` (the share of ``dy`` that tap gets)
    scattered back."""
    k, st, pads, dl, out = _pool_geometry(x_shape, kernel, stride, padding, dilation)
    d = len(k)
    dxp = np.zeros(x_shape[:2] + tuple(n + pads[j] + pads[j + d] for j, n in enumerate(x_shape[2:])), dtype=dy.dtype)
    for i, tap in enumerate(np.ndindex(*k)):
        window_nd(dxp, tap, out, st, dl)[...] += share(i, math.prod(k))
    return unpad_nd(dxp, pads, x_shape[2:])


def max_pool_backward(dy, arg, x_shape, kernel, stride=None, padding=0, dilation=1):
    """Route each ``dy`` to the input position its window's argmax came from."""
    return _spread(dy, x_shape, kernel, stride, padding, dilation, lambda i, n: dy * (arg == i))


def avg_pool(x, kernel, stride=None, padding=0, dilation=1):
    """``y = (1/prod(k)) Σ_t xpad[...]`` (zero padding counted, torch's ``count_include_pad=True``)."""
    k, st, pads, dl, out = _pool_geometry(x.shape, kernel, stride, padding, dilation)
    xp = pad(x, pads)
    y = np.zeros(x.shape[:2] + out, dtype=x.dtype)
    for tap in np.ndindex(*k):
        y += window_nd(xp, tap, out, st, dl)
    return y / x.dtype.type(math.prod(k))


def avg_pool_backward(dy, x_shape, kernel, stride=None, padding=0, dilation=1):
    """Spread ``dy / prod(k)`` over each window."""
    return _spread(dy, x_shape, kernel, stride, padding, dilation, lambda i, n: dy / n)


def avg_pool_valid(x, kernel, stride=None, padding=0, dilation=1):
    """Average over the window's cells inside the input (ONNX ``count_include_pad=0``)."""
    ones = np.ones((1, 1) + x.shape[2:], dtype=x.dtype)
    return avg_pool(x, kernel, stride, padding, dilation) / avg_pool(ones, kernel, stride, padding, dilation)


max_pool2d, max_pool2d_backward, avg_pool2d, avg_pool2d_backward, avg_pool2d_valid = (
    max_pool, max_pool_backward, avg_pool, avg_pool_backward, avg_pool_valid)   # their 2-D names


def global_avg_pool(x):
    """``[N, C, H, W] → [N, C]``, mean over H·W."""
    return x.mean(axis=(2, 3))


def global_avg_pool_backward(dy, x_shape):
    """``dx = dy / (H·W)`` broadcast over the plane."""
    h, w = x_shape[2:]
    return np.broadcast_to((dy / (h * w))[:, :, None, None], x_shape).copy()


# ---- the registry entries ----------------------------------------------------------------------------------

def _pool_shape(a: dict, shapes: list[Shape]) -> Shape:
    return spatial(a, shapes, None)


def _global_pool(a: dict, shapes: list[Shape]) -> Shape:
    x = channel_axis_ok(a, shapes)
    ca = a["channel_axis"]
    if len(x) == ca + 1:
        raise ShapeError(f"expects spatial dims after the channels (axis {ca}), got {list(x)}")
    return x[:ca + 1] + (1,) * (len(x) - ca - 1)


def _run_pool(fn):
    def run(a: dict, xs: list, ctx):
        if a["ceil_mode"]:
            ctx.unsupported("execution supports pools without ceil_mode")
        return on_images(a, xs[0], lambda x: fn(x, a["kernel"], a["stride"], a["padding"], a["dilation"]))
    return run


def _images(a: dict, x):
    """A pool's run-time input ``[B, *lead, C, *spatial]`` as ``[B·lead, C, *spatial]``."""
    return x.reshape((-1,) + x.shape[x.ndim - len(a["kernel"]) - 1:])


def _run_max(a: dict, xs: list, ctx):
    """The max pool, keeping the argmax for the gradient rule (``ctx.saved``)."""
    if a["ceil_mode"]:
        ctx.unsupported("execution supports pools without ceil_mode")
    x = xs[0]
    y, ctx.saved = max_pool(_images(a, x), a["kernel"], a["stride"], a["padding"], a["dilation"])
    return y.reshape(x.shape[:x.ndim - len(a["kernel"]) - 1] + y.shape[1:])


def _max_back(a, xs, y, dy, ctx):
    k, s, p, dl = a["kernel"], a["stride"], a["padding"], a["dilation"]
    x = _images(a, xs[0])
    arg = ctx.saved if ctx.saved is not None else max_pool(x, k, s, p, dl)[1]   # the forward's argmax
    return [on_images(a, dy, lambda d: max_pool_backward(d, arg, x.shape, k, s, p, dl))]


def _avg_back(a, xs, y, dy, ctx):
    k = a["kernel"]
    shape = (-1,) + xs[0].shape[xs[0].ndim - len(k) - 1:]
    return [on_images(a, dy, lambda d: avg_pool_backward(d, (len(d),) + shape[1:], k, a["stride"], a["padding"],
                                                          a["dilation"]))]


def _spatial_axes(a: dict, x) -> tuple:
    """The run-time axes after the channels (the batch axis in front)."""
    return tuple(range(a["channel_axis"] + 2, x.ndim))


def _global_back(a, xs, y, dy, ctx):
    x = xs[0]
    return [np.broadcast_to(dy / dy.dtype.type(math.prod(x.shape[i] for i in _spatial_axes(a, x))), x.shape).copy()]


def _reduce_shape(a: dict, shapes: list[Shape]) -> Shape:
    x = one(shapes)
    if not axes_ok(a["axes"], len(x)):
        raise ShapeError(f"axes {a['axes']} are not distinct axes of {list(x)}")
    return tuple(1 if i in a["axes"] else d for i, d in enumerate(x) if a["keepdims"] or i not in a["axes"])


def _reduce_mean_back(a, xs, y, dy, ctx):
    axes = tuple(i + 1 for i in a["axes"])
    g = dy if a["keepdims"] else np.expand_dims(dy, axes)
    return [np.broadcast_to(g / math.prod(xs[0].shape[i] for i in axes), xs[0].shape).astype(dy.dtype)]


REDUCTIONS = {"sum": np.sum, "max": np.max, "min": np.min, "prod": np.prod,
              "l2": lambda x, axis, keepdims: np.sqrt(np.sum(x * x, axis=axis, keepdims=keepdims))}
"""ONNX ReduceSum/ReduceMax/ReduceMin/ReduceProd/ReduceL2 (an empty ``axes`` list reduces nothing)."""


def _reduce(a: dict, xs: list, ctx):
    x = xs[0]
    return np.asarray(REDUCTIONS[a["kind"]](x, axis=tuple(i + 1 for i in a["axes"]), keepdims=a["keepdims"]),
                      dtype=x.dtype)


def _reduce_back(a, xs, y, dy, ctx):
    """``∂/∂x``: sum → 1; max/min → 1 where x is the extreme (ties share it, as ``x == y``); prod → y/x; L2 → x/y."""
    x, axes = xs[0], tuple(i + 1 for i in a["axes"])
    yk, dk = (y, dy) if a["keepdims"] else (np.expand_dims(y, axes), np.expand_dims(dy, axes))
    local = {"sum": lambda: 1, "max": lambda: x == yk, "min": lambda: x == yk, "prod": lambda: yk / x,
             "l2": lambda: x / yk}[a["kind"]]()
    return [np.asarray(np.broadcast_to(dk, x.shape) * local, dtype=dy.dtype)]


def _channel_attrs(r) -> dict:
    return dict(channel_axis=r.nonneg_int("channel_axis", 0))


OPS = {
    "maxpool": OpDef(A.window, _pool_shape, _run_max, vector_ops=1.0, elements=window_elements, backward=_max_back),
    "avgpool": OpDef(A.window, _pool_shape, _run_pool(avg_pool), vector_ops=1.0, elements=window_elements,
                     backward=_avg_back),
    "global_avgpool": OpDef(_channel_attrs, _global_pool,
                            lambda a, xs, ctx: np.ascontiguousarray(xs[0].mean(axis=_spatial_axes(a, xs[0]),
                                                                               keepdims=True)),
                            vector_ops=1.0, elements=input_elements, backward=_global_back),
}

IMPORTED = {
    "avgpool_valid": OpDef(A.window, _pool_shape, _run_pool(avg_pool_valid), vector_ops=1.0,
                           elements=window_elements),
    "reduce_mean": OpDef(lambda r: dict(axes=A.int_list(r, "axes"), keepdims=r.boolean("keepdims", True)),
                         _reduce_shape,
                         lambda a, xs, ctx: xs[0].mean(axis=tuple(i + 1 for i in a["axes"]), keepdims=a["keepdims"]),
                         vector_ops=1.0, elements=input_elements, backward=_reduce_mean_back),
    "reduce": OpDef(lambda r: dict(kind=r.choice("kind", tuple(REDUCTIONS)), axes=A.int_list(r, "axes"),
                                   keepdims=r.boolean("keepdims", True)),
                    _reduce_shape, _reduce, vector_ops=1.0, elements=input_elements, backward=_reduce_back),
}
