"""GEMM ops — ``conv2d``, ``linear``, ``matmul`` and the imported ``conv`` (1 to 3 spatial dims) and
``conv_transpose`` — end to end: shapes, weights, lowering to the array, the FP32 numerics with their gradients,
and :data:`KINDS`, how each runs in every quantization mode.

* **Layout.** Images ``[C, *spatial]`` (NCHW at run time; dims in front of the channels run as more images);
  token activations ``[..., features]``; a ``linear`` flattens the leading dims into one 2-D GEMM (a numpy ``@``
  on 3-D stacks is much slower). Convolution is lowered the way the accelerator sees it (DESIGN §5.1):
  ``im2col`` → one 2-D GEMM per group ``y[Cout, M] = W[Cout, K] @ cols`` (:mod:`accelsim.ops._conv`); depthwise
  convs (``groups == Cin == Cout``) run as shifted multiply-adds, as a vector unit does.
* **Lowering.** conv: ``groups`` GEMMs with M = prod(out), N = Cout/g, K = (Cin/g)·prod(kernel) (a depthwise conv
  is Cin tiny GEMMs); conv_transpose: ``groups`` GEMMs with M = prod(in), N = (Cout/g)·prod(kernel), K = Cin/g;
  linear: M = rows, N = out_features, K = in_features; matmul (numpy ``matmul``: broadcast leading dims, 1-D
  operands): one GEMM per leading index (per attention head), both operands activations.
* **Execution.** ``run`` hands the op to ``ctx.qops`` (the quantization mode: :mod:`accelsim.nn.qexec`), which
  computes it through :data:`KINDS` (float reference, requantizing and rescaling integer kernels, gradient).
  A fused activation (``relu``/``relu6`` after a conv/linear) is applied in the output stage (:data:`ACTIVATIONS`).
* **Gradients.** The rule asks the mode that ran the forward (``ctx.qops.backward``) — it owns what it quantized
  and its straight-through estimator — then ``ctx.weight_grads`` carries ``dw, db`` of the folded weights back
  through every folded BatchNorm to the raw parameters.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np

from ..errors import AccelsimError
from . import attrs as A
from ._common import aligned, on_images, one, spatial, window_dims
from ._conv import conv, conv_backward, conv_transpose, conv_transpose_backward, conv_transpose_size
from ._geometry import ntuple, pads_nd
from .elementwise import relu, relu6, relu6_backward, relu_backward
from .registry import Gemm, OpDef, Shape, ShapeError

# ---- numerics ----------------------------------------------------------------------------------------------


def linear(x, w, b=None):
    """``y = x · wᵀ + b`` with ``w [out, in]`` (torch layout); the leading dims of ``x`` are flattened into one
    2-D GEMM ``[M, in] · [in, out]`` and restored."""
    if w.ndim != 2 or x.ndim < 1 or x.shape[-1] != w.shape[1]:
        raise AccelsimError(f"linear: x {x.shape} does not fit weight {w.shape} ([out, in], in = x.shape[-1])")
    if b is not None and np.shape(b) != (w.shape[0],):
        raise AccelsimError(f"linear: bias shape {np.shape(b)} does not match weight rows {w.shape[0]}")
    y = x.reshape(-1, x.shape[-1]) @ w.T
    if b is not None:
        y += b
    return y.reshape(x.shape[:-1] + (w.shape[0],))


def linear_backward(dy, x, w):
    """``dx = dy @ w``, ``dw = dyᵀ @ x``, ``db = Σ_n dy`` (2-D ``x [N, in]``)."""
    return dy @ w, dy.T @ x, dy.sum(axis=0)


def linear_nd_backward(dy, x, w, has_bias: bool = True):
    """:func:`linear` on ``x [..., in]``: ``dx = dy·w``, ``dw = Σ dyᵀ·x``, ``db = Σ dy`` over the flattened
    leading dims."""
    x2, dy2 = x.reshape(-1, x.shape[-1]), dy.reshape(-1, dy.shape[-1])
    dx, dw, db = linear_backward(dy2, x2, w)
    return dx.reshape(x.shape), dw, db if has_bias else None


# ---- how each GEMM kind runs in every mode -----------------------------------------------------------------

ACTIVATIONS = {None: lambda y: y, "relu": relu, "relu6": relu6}
"""Fused activations of a conv/linear output stage (the clamp is the requantization's saturation)."""
ACT_BACKWARD = {None: lambda dy, z: dy, "relu": relu_backward, "relu6": relu6_backward}


def conv_geometry(stride=1, pads=0, dilation=1, groups=1, d: int = 2, output_padding=None) -> dict:
    """A conv's geometry (``d`` spatial dims) as the kernels take it: ``strides``, ``pads`` (begins then ends;
    2-D: top, left, bottom, right), ``dilations``, ``group`` (and ``output_padding`` of a transposed conv)."""
    g = dict(strides=ntuple(stride, d, "stride"), pads=pads_nd(pads, d), dilations=ntuple(dilation, d, "dilation"),
             group=int(groups))
    if output_padding is not None:
        g["output_padding"] = tuple(int(v) for v in ((output_padding,) * d if np.isscalar(output_padding)
                                                     else output_padding))
    return g


@dataclass(frozen=True, slots=True)
class GemmKind:
    """How one GEMM op computes: ``float(x, w, b, geo)``, ``requant(xq, xs, xz, wq, ws, wz, ys, yz, bias, geo, kw)``
    (codes, overflow), ``rescale(xq, xs, xz, wq, ws, wz, bias, act, geo)`` (float32) and ``backward(x, w, b, geo,
    dz)`` (gradients of the pre-activation output ``z``: ``(dx, dw, db)``, or ``(da, dB)`` for a matmul). A linear's
    float ``w`` is [out, in], its codes ``wq`` [in, out]."""
    float: Callable
    requant: Callable
    rescale: Callable
    backward: Callable


def _conv_requant(fn: str):
    def requant(xq, xs, xz, wq, ws, wz, ys, yz, bias, g, kw):
        from ..quant import qconv
        return getattr(qconv, fn)(xq, xs, xz, wq, ws, wz, ys, yz, bias, **g, return_overflow=True,
                                  x_bits=kw.pop("a_bits"), w_bits=kw.pop("b_bits"), **kw)
    return requant


def _conv_rescale(fn: str):
    def rescale(xq, xs, xz, wq, ws, wz, bias, act, g):
        from ..quant import qconv
        return getattr(qconv, fn)(xq, xs, xz, wq, ws, wz, bias, **g, act=act)
    return rescale


def _matmul_requant(with_bias: bool):
    def requant(xq, xs, xz, wq, ws, wz, ys, yz, bias, g, kw):
        from ..quant.qlinear import qlinear_matmul
        return qlinear_matmul(xq, xs, xz, wq, ws, wz, ys, yz, **({"bias": bias} if with_bias else {}),
                              return_overflow=True, **kw)
    return requant


def _matmul_rescale(with_bias: bool):
    def rescale(xq, xs, xz, wq, ws, wz, bias, act, g):
        from ..quant.qlinear import matmul_integer_rescale
        return matmul_integer_rescale(xq, xs, xz, wq, ws, wz, **(dict(bias=bias, act=act) if with_bias else {}))
    return rescale


KINDS = {
    "conv": GemmKind(
        lambda x, w, b, g: conv(x, w, b, g["strides"], g["pads"], g["dilations"], g["group"]),
        _conv_requant("qlinear_conv"), _conv_rescale("conv_integer_rescale"),
        lambda x, w, b, g, dz: conv_backward(dz, x, w, g["strides"], g["pads"], g["dilations"], g["group"],
                                             b is not None)),
    "conv_transpose": GemmKind(
        lambda x, w, b, g: conv_transpose(x, w, b, g["strides"], g["pads"], g["dilations"], g["group"],
                                          g["output_padding"]),
        _conv_requant("qlinear_conv_transpose"), _conv_rescale("conv_transpose_integer_rescale"),
        lambda x, w, b, g, dz: conv_transpose_backward(dz, x, w, g["strides"], g["pads"], g["dilations"], g["group"],
                                                       g["output_padding"], b is not None)),
    "linear": GemmKind(lambda x, w, b, g: linear(x, w, b), _matmul_requant(True), _matmul_rescale(True),
                       lambda x, w, b, g, dz: linear_nd_backward(dz, x, w, b is not None)),
    "matmul": GemmKind(
        lambda x, w, b, g: np.matmul(x, w), _matmul_requant(False), _matmul_rescale(False),
        lambda x, w, b, g, dz: (np.matmul(dz, np.swapaxes(w, -1, -2)), np.matmul(np.swapaxes(x, -1, -2), dz))),
}
"""The GEMM kinds (integer kernels: :mod:`accelsim.quant.qlinear` and :mod:`accelsim.quant.qconv`, imported when
first used, so that the cost model's graph layer loads without them)."""


def gemm_backward(kind: str, x, w, b, geo, dz):
    """Gradients of one GEMM op's pre-activation output ``z`` (:attr:`GemmKind.backward`): conv →
    :func:`~accelsim.ops._conv.conv_backward`, linear → :func:`linear_nd_backward`, matmul ``z = a @ B`` → ``(dz @ Bᵀ, aᵀ @ dz)``."""
    return KINDS[kind].backward(x, w, b, geo, dz)


# ---- the registry entries ----------------------------------------------------------------------------------

def _conv_attrs(d: int | None, transposed: bool = False):
    """The attributes of a conv in ``d`` spatial dims (None: as many as ``kernel`` has, 1 to 3)."""
    def read(r) -> dict:
        kernel = A.spatial(r, "kernel", None, 1, d)
        n = len(kernel)
        a = dict(out_channels=r.pos_int("out_channels"), kernel=kernel, stride=A.spatial(r, "stride", 1, 1, n),
                 padding=A.padding(r, n), dilation=A.spatial(r, "dilation", 1, 1, n), groups=r.pos_int("groups", 1),
                 bias=r.boolean("bias", True), ceil_mode=r.boolean("ceil_mode", False))
        if transposed:
            a["output_padding"] = A.spatial(r, "output_padding", 0, 0, n)
        return a
    return read


def _check_groups(a: dict, c: int):
    g = a["groups"]
    if c % g or a["out_channels"] % g:
        raise ShapeError(f"in_channels {c} and out_channels {a['out_channels']} must both be divisible by groups {g}")


def _conv_shape(a: dict, shapes: list[Shape]) -> Shape:
    _check_groups(a, window_dims(a, one(shapes))[1])
    return spatial(a, shapes, a["out_channels"])


def _conv_transpose_shape(a: dict, shapes: list[Shape]) -> Shape:
    """``[*lead, Cout, *out]``, out per dim ``(in − 1)·s + (k − 1)·d + 1 − begin − end + output_padding``."""
    lead, c, sp = window_dims(a, one(shapes))
    _check_groups(a, c)
    if any(p >= max(s, d) for p, s, d in zip(a["output_padding"], a["stride"], a["dilation"])):
        raise ShapeError(f"output_padding {list(a['output_padding'])} must be smaller than the stride or dilation")
    out = conv_transpose_size(sp, a["kernel"], a["stride"], a["padding"], a["dilation"], a["output_padding"])
    if min(out) < 1:
        raise ShapeError(f"padding {list(a['padding'])} leaves no output of {list(sp)}")
    return lead + (a["out_channels"],) + out


def _linear_shape(a: dict, shapes: list[Shape]) -> Shape:
    return one(shapes)[:-1] + (a["out_features"],)


def _matmul_operands(a: dict, x: Shape, y: Shape) -> tuple[Shape, Shape]:
    """Both operands as ``[..., M, K]`` and ``[..., K, N]`` (numpy ``matmul``: a 1-D ``x`` is a row, a 1-D ``y`` a
    column; ``transpose_b`` reads ``y`` as ``[..., N, K]``)."""
    if not x or not y:
        raise ShapeError(f"expects operands of rank ≥ 1, got {list(x)} and {list(y)}")
    if a["transpose_b"] and len(y) >= 2:
        y = y[:-2] + (y[-1], y[-2])
    return ((1,) + x if len(x) == 1 else x), (y + (1,) if len(y) == 1 else y)


def _matmul_shape(a: dict, shapes: list[Shape]) -> Shape:
    """numpy ``matmul``: leading dims broadcast, a 1-D operand loses its added dim in the output."""
    if len(shapes) != 2:
        raise ShapeError(f"expects 2 inputs, got {len(shapes)}")
    x, y = shapes
    xm, ym = _matmul_operands(a, x, y)
    if xm[-1] != ym[-2]:
        raise ShapeError(f"inner dimensions differ: {xm[-1]} vs {ym[-2]} (transpose_b={a['transpose_b']})")
    try:
        lead = tuple(np.broadcast_shapes(xm[:-2], ym[:-2]))
    except ValueError:
        raise ShapeError(f"leading dims of {list(x)} and {list(y)} do not broadcast") from None
    return lead + (() if len(x) == 1 else (xm[-2],)) + (() if len(y) == 1 else (ym[-1],))


def _conv_weights(a: dict, s: list[Shape]) -> dict:
    """``weight [Cout, Cin/g, *kernel]`` (a transposed conv's too: output channel first) and ``bias [Cout]``."""
    w = {"weight": (a["out_channels"], window_dims(a, s[0])[1] // a["groups"], *a["kernel"])}
    return w | ({"bias": (a["out_channels"],)} if a["bias"] else {})


def _linear_weights(a: dict, s: list[Shape]) -> dict:
    return {"weight": (a["out_features"], s[0][-1])} | ({"bias": (a["out_features"],)} if a["bias"] else {})


def _sizes(weights: Callable) -> dict:
    """``params`` (every weight element) and ``wide_params`` (the bias, kept 32-bit) of a weighted GEMM op."""
    return dict(weights=weights, params=lambda a, s: sum(math.prod(shape) for shape in weights(a, s).values()),
                wide_params=lambda a, s: math.prod(weights(a, s).get("bias", (0,))))


def _conv_gemm(a: dict, s: list[Shape], out: Shape) -> Gemm:
    """groups g: g GEMMs with M = lead·prod(out), N = Cout/g, K = (Cin/g)·prod(kernel) (a depthwise conv is Cin tiny
    GEMMs)."""
    g, d = a["groups"], len(a["kernel"])
    return Gemm(math.prod(out[:len(out) - d - 1]) * math.prod(out[len(out) - d:]), a["out_channels"] // g,
                window_dims(a, s[0])[1] // g * math.prod(a["kernel"]), g, True, g > 1)


def _conv_transpose_gemm(a: dict, s: list[Shape], out: Shape) -> Gemm:
    """The transposed conv is the GEMM ``[lead·prod(in), Cin/g] @ [Cin/g, Cout/g·prod(kernel)]`` per group (its
    columns are then summed into the output, col2im: the partial-sum accumulation of overlapping windows)."""
    g = a["groups"]
    lead, c, sp = window_dims(a, s[0])
    return Gemm(math.prod(lead) * math.prod(sp), a["out_channels"] // g * math.prod(a["kernel"]), c // g, g, True,
                g > 1)


def _touched(size: int, n_out: int, k: int, s: int, d: int, pad_: int) -> int:
    """Distinct input positions in [0, size) read by outputs o < n_out: {o·s + i·d − pad : i < k}."""
    if d == 1 and s <= k:   # overlapping or abutting windows cover one contiguous span
        return max(0, min(size, (n_out - 1) * s + k - pad_) - max(0, -pad_))
    if size > 1 << 24:      # too big to mark: an upper bound (never more than the input)
        return min(size, n_out * k)
    hit = np.zeros(size + pad_ + (n_out - 1) * s + (k - 1) * d + 1, dtype=bool)
    for i in range(k):
        hit[i * d: i * d + (n_out - 1) * s + 1: s] = True
    return int(hit[pad_: pad_ + size].sum())


def _conv_footprint(a: dict, s: list[Shape], out: Shape) -> int:
    """Input elements a conv reads: lead · C · Π touched positions per spatial dim (a 1×1 stride-2 conv reads ¼)."""
    lead, c, sp = window_dims(a, s[0])
    d = len(sp)
    return math.prod(lead) * c * math.prod(
        _touched(n, out[len(out) - d + i], a["kernel"][i], a["stride"][i], a["dilation"][i], a["padding"][i])
        for i, n in enumerate(sp))


def _linear_gemm(a: dict, s: list[Shape], out: Shape) -> Gemm:
    return Gemm(math.prod(s[0][:-1]), a["out_features"], s[0][-1], 1, True)


def _matmul_gemm(a: dict, s: list[Shape], out: Shape) -> Gemm:
    """One GEMM M, N, K per index of the broadcast leading dims (e.g. per attention head); both operands are
    activations."""
    xm, ym = _matmul_operands(a, *s)
    lead = np.broadcast_shapes(xm[:-2], ym[:-2])
    return Gemm(xm[-2], ym[-1], xm[-1], math.prod(lead), False)


def _run_conv(a: dict, xs: list, ctx):
    w, b = ctx.weight_and_bias()
    return on_images(a, xs[0], lambda x: ctx.qops.conv(ctx.qname, x, w, b, a["stride"], a["padding"],
                                                           a["dilation"], a["groups"], ctx.act))


def _run_conv_transpose(a: dict, xs: list, ctx):
    w, b = ctx.weight_and_bias()
    return on_images(a, xs[0], lambda x: ctx.qops.conv_transpose(
        ctx.qname, x, w, b, a["stride"], a["padding"], a["dilation"], a["groups"], a["output_padding"], ctx.act))


def _run_linear(a: dict, xs: list, ctx):
    w, b = ctx.weight_and_bias()
    return ctx.qops.linear(ctx.qname, xs[0], w, b, ctx.act)


def _matmul_arrays(a: dict, x, y):
    """The run-time operands ``[B, *lead, M, K]`` and ``[B, *lead, K, N]`` (leading dims broadcast, 1-D operands
    given their row/column dim; the batch axis 1 of a constant repeated) and how to shape the result back."""
    if a["transpose_b"] and y.ndim >= 3:
        y = np.swapaxes(y, -1, -2)
    if x.ndim == y.ndim >= 3 and x.shape[:-2] == y.shape[:-2]:   # nothing to broadcast (attention's matmuls)
        return np.ascontiguousarray(x), np.ascontiguousarray(y), ()
    drop = _dropped((x.ndim, y.ndim))
    row, col = x.ndim == 2, y.ndim == 2         # 1-D operands (one batch axis in front)
    x, y = (x[:, None, :] if row else x), (y[:, :, None] if col else y)
    x, y = aligned([x, y])
    lead = np.broadcast_shapes(x.shape[:-2], y.shape[:-2])
    x = np.broadcast_to(x, lead + x.shape[-2:]) if x.shape[:-2] != lead else x
    y = np.broadcast_to(y, lead + y.shape[-2:]) if y.shape[:-2] != lead else y
    return np.ascontiguousarray(x), np.ascontiguousarray(y), drop


def _dropped(ranks) -> tuple:
    """The result dims to squeeze back: the row dim of a 1-D ``x`` and the column dim of a 1-D ``y`` (their
    run-time ``ranks``, batch axis included)."""
    return ((-2,) if ranks[0] == 2 else ()) + ((-1,) if ranks[1] == 2 else ())


def _run_matmul(a: dict, xs: list, ctx):
    x, y, drop = _matmul_arrays(a, *xs)
    out = ctx.qops.matmul(ctx.qname, x, y)
    return out.squeeze(drop) if drop else out


def _gemm_back(a: dict, xs: list, y, dy, ctx) -> list:
    """conv / linear: ``(dx, dw', db') = qops.backward``, then through the folds to the raw parameters."""
    dx, dw, db = ctx.qops.backward(ctx.qname, dy)
    ctx.weight_grads(dw, db)
    return [dx]


def _window_back(a: dict, xs: list, y, dy, ctx) -> list:
    """A conv whose input has dims in front of the channels: the rule on the ``[B·lead, C, *spatial]`` view."""
    return [on_images(a, dy, lambda d: _gemm_back(a, xs, y, d, ctx)[0])]


def _matmul_back(a: dict, xs: list, y, dy, ctx) -> list:
    """``y = x_a @ B`` with ``B = x_bᵀ`` when ``transpose_b``: ``(da, dB)`` from the qops (on the broadcast
    operands), summed back to each input's shape, ``dx_b = dBᵀ``."""
    drop = _dropped([x.ndim for x in xs])
    da, db = ctx.qops.backward(ctx.qname, np.expand_dims(dy, drop) if drop else dy)
    if a["transpose_b"] and xs[1].ndim >= 3:
        db = np.swapaxes(db, -1, -2)
    return [_sum_to(da, xs[0], -2 if xs[0].ndim == 2 else None), _sum_to(db, xs[1], -1 if xs[1].ndim == 2 else None)]


def _sum_to(g, x, squeeze):
    """The gradient of a broadcast operand summed back to ``x``'s run-time shape (``squeeze``: the dim a 1-D
    operand was given)."""
    g = g if squeeze is None else g.squeeze(squeeze)
    extra = g.ndim - x.ndim
    g = g.sum(axis=tuple(range(1, 1 + extra))) if extra else g
    axes = tuple(i for i, n in enumerate(x.shape) if n == 1 and g.shape[i] != 1)
    return g.sum(axis=axes, keepdims=True) if axes else g


OPS = {
    "conv2d": OpDef(_conv_attrs(2), _conv_shape, _run_conv, gemm=_conv_gemm, backward=_window_back,
                    footprint=_conv_footprint, **_sizes(_conv_weights)),
    "linear": OpDef(lambda r: dict(out_features=r.pos_int("out_features"), bias=r.boolean("bias", True)),
                    _linear_shape, _run_linear, gemm=_linear_gemm, backward=_gemm_back, **_sizes(_linear_weights)),
    "matmul": OpDef(lambda r: dict(transpose_b=r.boolean("transpose_b", False)), _matmul_shape, _run_matmul,
                    gemm=_matmul_gemm, backward=_matmul_back),
}

IMPORTED = {
    # convolutions in 1, 2 or 3 spatial dims (``conv2d`` is the 2-D one of model YAMLs)
    "conv": OpDef(_conv_attrs(None), _conv_shape, _run_conv, gemm=_conv_gemm, backward=_window_back,
                  footprint=_conv_footprint, **_sizes(_conv_weights)),
    "conv_transpose": OpDef(_conv_attrs(None, transposed=True), _conv_transpose_shape, _run_conv_transpose,
                            gemm=_conv_transpose_gemm, backward=_window_back, **_sizes(_conv_weights)),
}
