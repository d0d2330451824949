"""GEMM ops — ``conv2d``, ``linear``, ``matmul`` — end to end: shapes, weights, lowering to the array, the FP32
numerics with their gradients, and :data:`KINDS`, how each runs in every quantization mode.

* **Layout.** Images NCHW; token activations ``[..., features]``; a ``linear`` flattens the leading dims into
  one 2-D GEMM (a numpy ``@`` on 3-D stacks is much slower). Convolution is lowered the way the accelerator
  sees it (DESIGN §5.1): ``im2col`` → one 2-D GEMM per group ``y[Cout, M] = W[Cout, K] @ cols``; depthwise
  convs (``groups == Cin == Cout``) run as ``R·S`` shifted multiply-adds, as a vector unit does.
* **Lowering.** conv: ``groups`` GEMMs with M = Ho·Wo, N = Cout/g, K = (Cin/g)·kh·kw (a depthwise conv is Cin
  tiny GEMMs); linear: M = rows, N = out_features, K = in_features; matmul: one GEMM per leading index (per
  attention head), both operands activations.
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
from ._common import one, spatial
from ._geometry import conv_output_size, pad, pads4, pair, unpad, window
from .elementwise import relu, relu6, relu6_backward, relu_backward
from .registry import Gemm, OpDef, Shape, ShapeError

# ---- numerics ----------------------------------------------------------------------------------------------


def im2col(x: np.ndarray, kh: int, kw: int, stride=1, padding=0, dilation=1):
    """``x [N, C, H, W]`` → ``cols [C·kh·kw, N·Ho·Wo]`` (row ``(c·kh + r)·kw + s``, column ``(n·Ho + i)·Wo + j``)
    and ``(Ho, Wo)``; ``cols[(c,r,s), (n,i,j)] = xpad[n, c, i·sh + r·dh, j·sw + s·dw]``."""
    n, c, h, w = x.shape
    pads, st, dl = pads4(padding), pair(stride, "stride"), pair(dilation, "dilation")
    ho, wo = conv_output_size(h, w, kh, kw, st, pads, dl)
    if kh == kw == 1 and st == (1, 1) and not any(pads):
        return x.transpose(1, 0, 2, 3).reshape(c, n * h * w), (ho, wo)
    xp = pad(x, pads)
    cols = np.empty((c, kh, kw, n, ho, wo), dtype=x.dtype)
    for r in range(kh):
        for s in range(kw):
            cols[:, r, s] = window(xp, r, s, ho, wo, st, dl).transpose(1, 0, 2, 3)
    return cols.reshape(c * kh * kw, n * ho * wo), (ho, wo)


def col2im(cols: np.ndarray, x_shape, kh: int, kw: int, stride=1, padding=0, dilation=1):
    """Adjoint of :func:`im2col`: scatter-add ``cols [C·kh·kw, N·Ho·Wo]`` back to ``[N, C, H, W]``."""
    n, c, h, w = x_shape
    pads, st, dl = pads4(padding), pair(stride, "stride"), pair(dilation, "dilation")
    ho, wo = conv_output_size(h, w, kh, kw, st, pads, dl)
    c6 = cols.reshape(c, kh, kw, n, ho, wo)
    xp = np.zeros((n, c, h + pads[0] + pads[2], w + pads[1] + pads[3]), dtype=cols.dtype)
    for r in range(kh):
        for s in range(kw):
            window(xp, r, s, ho, wo, st, dl)[...] += c6[:, r, s].transpose(1, 0, 2, 3)
    return unpad(xp, pads, h, w)


def _check_conv(x, w, b, groups):
    if x.ndim != 4 or w.ndim != 4:
        raise AccelsimError(f"conv2d expects x [N, C, H, W] and w [Cout, Cin/g, R, S], got {x.shape}, {w.shape}")
    cin, cout = x.shape[1], w.shape[0]
    if groups < 1 or cin % groups or cout % groups or w.shape[1] != cin // groups:
        raise AccelsimError(f"conv2d: weight {w.shape} does not fit {cin} input channels with groups={groups} "
                            f"(expected [Cout, {cin // max(groups, 1)}, R, S] with Cout divisible by groups)")
    if b is not None and b.shape != (cout,):
        raise AccelsimError(f"conv2d: bias shape {b.shape}, expected ({cout},)")


def _is_depthwise(x, w, groups):
    return groups > 1 and groups == x.shape[1] == w.shape[0]


def _depthwise(x, w, stride, pads, dilation):
    """``y[n,c,i,j] = Σ_rs w[c,0,r,s] · xpad[n, c, i·sh + r·dh, j·sw + s·dw]``."""
    kh, kw = w.shape[2:]
    ho, wo = conv_output_size(x.shape[2], x.shape[3], kh, kw, stride, pads, dilation)
    xp = pad(x, pads)
    y = np.zeros((x.shape[0], x.shape[1], ho, wo), dtype=np.result_type(x, w))
    for r in range(kh):
        for s in range(kw):
            y += window(xp, r, s, ho, wo, stride, dilation) * w[None, :, 0, r, s, None, None]
    return y


def conv2d(x, w, b=None, stride=1, padding=0, dilation=1, groups: int = 1) -> np.ndarray:
    """2-D convolution (cross-correlation, as torch/ONNX): ``y[n, o, i, j] = b[o] + Σ_{c∈group(o), r, s}
    w[o, c, r, s] · xpad[n, c, i·sh + r·dh, j·sw + s·dw]`` → [N, Cout, Ho, Wo]."""
    _check_conv(x, w, b, groups)
    pads, st, dl = pads4(padding), pair(stride, "stride"), pair(dilation, "dilation")
    if _is_depthwise(x, w, groups):
        y = _depthwise(x, w, st, pads, dl)
    else:
        n, cout, kh, kw = x.shape[0], w.shape[0], w.shape[2], w.shape[3]
        cg, og = x.shape[1] // groups, cout // groups
        parts = []
        for g in range(groups):
            cols, (ho, wo) = im2col(x[:, g * cg:(g + 1) * cg], kh, kw, st, pads, dl)
            parts.append(w[g * og:(g + 1) * og].reshape(og, -1) @ cols)
        y2 = parts[0] if groups == 1 else np.concatenate(parts, axis=0)
        y = y2.reshape(cout, n, ho, wo).transpose(1, 0, 2, 3)
    if b is not None:
        y = y + b[None, :, None, None]
    return y


def conv2d_backward(dy, x, w, stride=1, padding=0, dilation=1, groups: int = 1, has_bias=True):
    """Gradients of :func:`conv2d`: ``dx = col2im(Wᵀ @ dY)``, ``dw = dY @ colsᵀ``, ``db = Σ_{n,i,j} dy``."""
    pads, st, dl = pads4(padding), pair(stride, "stride"), pair(dilation, "dilation")
    kh, kw = w.shape[2:]
    db = dy.sum(axis=(0, 2, 3)) if has_bias else None
    if _is_depthwise(x, w, groups):
        ho, wo = dy.shape[2:]
        xp = pad(x, pads)
        dxp, dw = np.zeros_like(xp), np.empty_like(w)
        for r in range(kh):
            for s in range(kw):
                dw[:, 0, r, s] = np.einsum("ncij,ncij->c", window(xp, r, s, ho, wo, st, dl), dy)
                window(dxp, r, s, ho, wo, st, dl)[...] += dy * w[None, :, 0, r, s, None, None]
        return unpad(dxp, pads, x.shape[2], x.shape[3]), dw, db
    cout, cg = w.shape[0], x.shape[1] // groups
    og = cout // groups
    dy2 = dy.transpose(1, 0, 2, 3).reshape(cout, -1)                          # [Cout, M]
    dxs, dws = [], []
    for g in range(groups):
        xg = x[:, g * cg:(g + 1) * cg]
        cols, _ = im2col(xg, kh, kw, st, pads, dl)
        dyg, wg = dy2[g * og:(g + 1) * og], w[g * og:(g + 1) * og].reshape(og, -1)
        dws.append((dyg @ cols.T).reshape(og, cg, kh, kw))
        dxs.append(col2im(wg.T @ dyg, xg.shape, kh, kw, st, pads, dl))
    dx = dxs[0] if groups == 1 else np.concatenate(dxs, axis=1)
    dw = dws[0] if groups == 1 else np.concatenate(dws, axis=0)
    return dx, dw, db


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


def conv_geometry(stride=1, pads=(0, 0, 0, 0), dilation=1, groups=1) -> dict:
    """A conv's geometry as the kernels take it: ``strides``, ``pads`` (top, left, bottom, right), ``dilations``,
    ``group``."""
    return dict(strides=pair(stride, "stride"), pads=pads4(pads), dilations=pair(dilation, "dilation"),
                group=int(groups))


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


def _conv_requant(xq, xs, xz, wq, ws, wz, ys, yz, bias, g, kw):
    from ..quant.qlinear import qlinear_conv
    return qlinear_conv(xq, xs, xz, wq, ws, wz, ys, yz, bias, **g, return_overflow=True, x_bits=kw.pop("a_bits"),
                        w_bits=kw.pop("b_bits"), **kw)


def _conv_rescale(xq, xs, xz, wq, ws, wz, bias, act, g):
    from ..quant.qlinear import conv_integer_rescale
    return conv_integer_rescale(xq, xs, xz, wq, ws, wz, bias, **g, act=act)


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
        lambda x, w, b, g: conv2d(x, w, b, g["strides"], g["pads"], g["dilations"], g["group"]),
        _conv_requant, _conv_rescale,
        lambda x, w, b, g, dz: conv2d_backward(dz, x, w, g["strides"], g["pads"], g["dilations"], g["group"],
                                               b is not None)),
    "linear": GemmKind(lambda x, w, b, g: linear(x, w, b), _matmul_requant(True), _matmul_rescale(True),
                       lambda x, w, b, g, dz: linear_nd_backward(dz, x, w, b is not None)),
    "matmul": GemmKind(
        lambda x, w, b, g: np.matmul(x, w), _matmul_requant(False), _matmul_rescale(False),
        lambda x, w, b, g, dz: (np.matmul(dz, np.swapaxes(w, -1, -2)), np.matmul(np.swapaxes(x, -1, -2), dz))),
}
"""The three GEMM kinds (integer kernels: :mod:`accelsim.quant.qlinear`, imported when first used, so that the
cost model's graph layer loads without them)."""


def gemm_backward(kind: str, x, w, b, geo, dz):
    """Gradients of one GEMM op's pre-activation output ``z`` (:attr:`GemmKind.backward`): conv →
    :func:`conv2d_backward`, linear → :func:`linear_nd_backward`, matmul ``z = a @ B`` → ``(dz @ Bᵀ, aᵀ @ dz)``."""
    return KINDS[kind].backward(x, w, b, geo, dz)


# ---- the registry entries ----------------------------------------------------------------------------------

def _conv_attrs(r) -> dict:
    return dict(out_channels=r.pos_int("out_channels"), kernel=A.pair(r, "kernel", None, 1),
                stride=A.pair(r, "stride", 1, 1), padding=A.padding(r), dilation=A.pair(r, "dilation", 1, 1),
                groups=r.pos_int("groups", 1), bias=r.boolean("bias", True), ceil_mode=r.boolean("ceil_mode", False))


def _conv_shape(a: dict, shapes: list[Shape]) -> Shape:
    x = one(shapes)
    g = a["groups"]
    if len(x) == 3 and (x[0] % g or a["out_channels"] % g):
        raise ShapeError(f"in_channels {x[0]} and out_channels {a['out_channels']} must both be divisible by groups {g}")
    return spatial(a, shapes, a["out_channels"])


def _linear_shape(a: dict, shapes: list[Shape]) -> Shape:
    return one(shapes)[:-1] + (a["out_features"],)


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


def _conv_weights(a: dict, s: list[Shape]) -> dict:
    kh, kw = a["kernel"]
    w = {"weight": (a["out_channels"], s[0][0] // a["groups"], kh, kw)}
    return w | ({"bias": (a["out_channels"],)} if a["bias"] else {})


def _linear_weights(a: dict, s: list[Shape]) -> dict:
    return {"weight": (a["out_features"], s[0][-1])} | ({"bias": (a["out_features"],)} if a["bias"] else {})


def _sizes(weights: Callable) -> dict:
    """``params`` (every weight element) and ``wide_params`` (the bias, kept 32-bit) of a weighted GEMM op."""
    return dict(weights=weights, params=lambda a, s: sum(math.prod(shape) for shape in weights(a, s).values()),
                wide_params=lambda a, s: math.prod(weights(a, s).get("bias", (0,))))


def _conv_gemm(a: dict, s: list[Shape], out: Shape) -> Gemm:
    """groups g: g GEMMs with M = Ho·Wo, N = Cout/g, K = (Cin/g)·kh·kw (a depthwise conv is Cin tiny GEMMs)."""
    g, (kh, kw) = a["groups"], a["kernel"]
    return Gemm(out[1] * out[2], a["out_channels"] // g, s[0][0] // g * kh * kw, g, True)


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


def _run_conv(a: dict, xs: list, ctx):
    w, b = ctx.weight_and_bias()
    return ctx.qops.conv(ctx.qname, xs[0], w, b, a["stride"], a["padding"], a["dilation"], a["groups"], ctx.act)


def _run_linear(a: dict, xs: list, ctx):
    w, b = ctx.weight_and_bias()
    return ctx.qops.linear(ctx.qname, xs[0], w, b, ctx.act)


def _run_matmul(a: dict, xs: list, ctx):
    b = np.ascontiguousarray(np.swapaxes(xs[1], -1, -2)) if a["transpose_b"] else xs[1]
    return ctx.qops.matmul(ctx.qname, xs[0], b)


def _gemm_back(a: dict, xs: list, y, dy, ctx) -> list:
    """conv2d / linear: ``(dx, dw', db') = qops.backward``, then through the folds to the raw parameters."""
    dx, dw, db = ctx.qops.backward(ctx.qname, dy)
    ctx.weight_grads(dw, db)
    return [dx]


def _matmul_back(a: dict, xs: list, y, dy, ctx) -> list:
    """``y = x_a @ B`` with ``B = x_bᵀ`` when ``transpose_b``: ``(da, dB)`` from the qops, ``dx_b = dBᵀ``."""
    da, db = ctx.qops.backward(ctx.qname, dy)
    return [da, np.swapaxes(db, -1, -2) if a["transpose_b"] else db]


OPS = {
    "conv2d": OpDef(_conv_attrs, _conv_shape, _run_conv, gemm=_conv_gemm, backward=_gemm_back,
                    footprint=_conv_footprint, **_sizes(_conv_weights)),
    "linear": OpDef(lambda r: dict(out_features=r.pos_int("out_features"), bias=r.boolean("bias", True)),
                    _linear_shape, _run_linear, gemm=_linear_gemm, backward=_gemm_back, **_sizes(_linear_weights)),
    "matmul": OpDef(lambda r: dict(transpose_b=r.boolean("transpose_b", False)), _matmul_shape, _run_matmul,
                    gemm=_matmul_gemm, backward=_matmul_back),
}
