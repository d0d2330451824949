"""Convolution numerics in 1 to 3 spatial dims, as the accelerator sees them: ``im2col`` → one 2-D GEMM per group.

* :func:`conv`: ``y[n, o, *i] = b[o] + Σ_{c∈group(o), *t} w[o, c, *t] · xpad[n, c, *(i·s + t·d)]`` (cross-
  correlation, as torch/ONNX) as ``y[Cout, M] = W[Cout, K] @ cols`` per group (M = N·prod(out), K =
  (Cin/g)·prod(kernel)); depthwise convs (``groups == Cin == Cout``) run as shifted multiply-adds, as a vector
  unit does. :func:`conv2d` is the same function (the name of its 2-D use).
* :func:`conv_transpose`: the adjoint of a conv, ``y = col2im(Wᵀ @ x) + b`` — one GEMM per group
  ``[Cout/g·prod(kernel), Cin/g] @ [Cin/g, N·prod(in)]`` whose columns are scattered and summed into the output
  (col2im). Its weight is given ``[Cout, Cin/g, *kernel]``, output channel first like a conv's (ONNX stores
  ``[Cin, Cout/g, *kernel]``; :func:`transpose_weight_from_onnx`), so that BatchNorm folding and per-channel
  quantization use axis 0 for both. Output size per dim ``(in − 1)·s + (k − 1)·d + 1 − begin − end + out_pad``.
* Gradients: ``dx = col2im(Wᵀ @ dY)``, ``dw = dY @ colsᵀ`` for a conv; the transposed conv swaps the two.
"""
from __future__ import annotations

import math

import numpy as np

from ..errors import AccelsimError
from ._geometry import ntuple, out_sizes, pad, pads_nd, unpad_nd, window_nd


def _geo(d: int, stride, padding, dilation):
    return ntuple(stride, d, "stride"), pads_nd(padding, d), ntuple(dilation, d, "dilation")


def im2col_nd(x: np.ndarray, kernel, stride=1, padding=0, dilation=1):
    """``x [N, C, *sp]`` → ``cols [C·prod(k), N·prod(out)]`` (rows ``(c, *tap)``, columns ``(n, *out)``) and
    ``out``; ``cols[(c, t), (n, i)] = xpad[n, c, *(i·s + t·d)]``."""
    d = x.ndim - 2
    k = ntuple(kernel, d, "kernel")
    st, pads, dl = _geo(d, stride, padding, dilation)
    n, c = x.shape[:2]
    out = out_sizes(x.shape[2:], k, st, pads, dl)
    if all(v == 1 for v in k + st) and not any(pads):
        return x.swapaxes(0, 1).reshape(c, n * math.prod(out)), out
    xp = pad(x, pads)
    cols = np.empty((c, *k, n, *out), dtype=x.dtype)
    for tap in np.ndindex(*k):
        cols[(slice(None), *tap)] = window_nd(xp, tap, out, st, dl).swapaxes(0, 1)
    return cols.reshape(c * math.prod(k), n * math.prod(out)), out


def col2im_nd(cols: np.ndarray, x_shape, kernel, stride=1, padding=0, dilation=1):
    """Adjoint of :func:`im2col_nd`: scatter-add ``cols [C·prod(k), N·prod(out)]`` back to ``x_shape``."""
    d = len(x_shape) - 2
    k = ntuple(kernel, d, "kernel")
    st, pads, dl = _geo(d, stride, padding, dilation)
    n, c = x_shape[:2]
    out = out_sizes(x_shape[2:], k, st, pads, dl)
    ck = cols.reshape(c, *k, n, *out)
    xp = np.zeros((n, c, *(s + pads[i] + pads[i + d] for i, s in enumerate(x_shape[2:]))), dtype=cols.dtype)
    for tap in np.ndindex(*k):
        window_nd(xp, tap, out, st, dl)[...] += ck[(slice(None), *tap)].swapaxes(0, 1)
    return unpad_nd(xp, pads, x_shape[2:])


def im2col(x: np.ndarray, kh: int, kw: int, stride=1, padding=0, dilation=1):
    """2-D :func:`im2col_nd`: ``x [N, C, H, W]`` → ``cols [C·kh·kw, N·Ho·Wo]`` and ``(Ho, Wo)``."""
    return im2col_nd(x, (kh, kw), stride, padding, dilation)


def col2im(cols: np.ndarray, x_shape, kh: int, kw: int, stride=1, padding=0, dilation=1):
    """2-D :func:`col2im_nd`."""
    return col2im_nd(cols, x_shape, (kh, kw), stride, padding, dilation)


def _check_conv(x, w, b, groups, what="conv"):
    if x.ndim != w.ndim or not 3 <= x.ndim <= 5:
        raise AccelsimError(f"{what} expects x [N, C, *spatial] and w [Cout, Cin/g, *kernel] with 1–3 spatial "
                            f"dims, got {x.shape}, {w.shape}")
    cin, cout = x.shape[1], w.shape[0]
    if groups < 1 or cin % groups or cout % groups or w.shape[1] != cin // groups:
        raise AccelsimError(f"{what}: weight {w.shape} does not fit {cin} input channels with groups={groups} "
                            f"(expected [Cout, {cin // max(groups, 1)}, *kernel] with Cout divisible by groups)")
    if b is not None and b.shape != (cout,):
        raise AccelsimError(f"{what}: bias shape {b.shape}, expected ({cout},)")


def _is_depthwise(x, w, groups):
    return groups > 1 and groups == x.shape[1] == w.shape[0]


def _channel(v, d: int):
    """A per-channel vector shaped to broadcast over ``[N, C, *spatial]``."""
    return v.reshape((1, -1) + (1,) * d)


def conv(x, w, b=None, stride=1, padding=0, dilation=1, groups: int = 1) -> np.ndarray:
    """Convolution (module docstring) → ``[N, Cout, *out]``."""
    _check_conv(x, w, b, groups)
    d = x.ndim - 2
    st, pads, dl = _geo(d, stride, padding, dilation)
    k = w.shape[2:]
    if _is_depthwise(x, w, groups):
        out = out_sizes(x.shape[2:], k, st, pads, dl)
        xp = pad(x, pads)
        y = np.zeros((x.shape[0], x.shape[1], *out), dtype=np.result_type(x, w))
        for tap in np.ndindex(*k):
            y += window_nd(xp, tap, out, st, dl) * _channel(w[(slice(None), 0, *tap)], d)
    else:
        n, cout = x.shape[0], w.shape[0]
        cg, og = x.shape[1] // groups, cout // groups
        parts = []
        for g in range(groups):
            cols, out = im2col_nd(x[:, g * cg:(g + 1) * cg], k, st, pads, dl)
            parts.append(w[g * og:(g + 1) * og].reshape(og, -1) @ cols)
        y2 = parts[0] if groups == 1 else np.concatenate(parts, axis=0)
        y = y2.reshape(cout, n, *out).swapaxes(0, 1)
    if b is not None:
        y = y + _channel(b, d)
    return y


def conv_backward(dy, x, w, stride=1, padding=0, dilation=1, groups: int = 1, has_bias=True):
    """Gradients of :func:`conv`: ``dx = col2im(Wᵀ @ dY)``, ``dw = dY @ colsᵀ``, ``db = Σ_{n,i} dy``."""
    d = x.ndim - 2
    st, pads, dl = _geo(d, stride, padding, dilation)
    k, axes = w.shape[2:], (0,) + tuple(range(2, dy.ndim))
    db = dy.sum(axis=axes) if has_bias else None
    if _is_depthwise(x, w, groups):
        out = dy.shape[2:]
        xp = pad(x, pads)
        dxp, dw = np.zeros_like(xp), np.empty_like(w)
        for tap in np.ndindex(*k):
            dw[(slice(None), 0, *tap)] = (window_nd(xp, tap, out, st, dl) * dy).sum(axis=axes)
            window_nd(dxp, tap, out, st, dl)[...] += dy * _channel(w[(slice(None), 0, *tap)], d)
        return unpad_nd(dxp, pads, x.shape[2:]), dw, db
    cout, cg = w.shape[0], x.shape[1] // groups
    og = cout // groups
    dy2 = dy.swapaxes(0, 1).reshape(cout, -1)                          # [Cout, M]
    dxs, dws = [], []
    for g in range(groups):
        xg = x[:, g * cg:(g + 1) * cg]
        cols, _ = im2col_nd(xg, k, st, pads, dl)
        dyg, wg = dy2[g * og:(g + 1) * og], w[g * og:(g + 1) * og].reshape(og, -1)
        dws.append((dyg @ cols.T).reshape(og, cg, *k))
        dxs.append(col2im_nd(wg.T @ dyg, xg.shape, k, st, pads, dl))
    dx = dxs[0] if groups == 1 else np.concatenate(dxs, axis=1)
    dw = dws[0] if groups == 1 else np.concatenate(dws, axis=0)
    return dx, dw, db


conv2d, conv2d_backward = conv, conv_backward


def transpose_weight_from_onnx(w: np.ndarray, groups: int) -> np.ndarray:
    """ONNX ConvTranspose weight ``[Cin, Cout/g, *k]`` → accelsim's ``[Cout, Cin/g, *k]`` (output channel
    ``g·Cout/g + j`` reads input channel ``g·Cin/g + i`` through ``w[g·Cin/g + i, j]``)."""
    cin, og = w.shape[:2]
    cg = cin // groups
    return np.ascontiguousarray(w.reshape(groups, cg, og, *w.shape[2:]).swapaxes(1, 2)
                                .reshape(groups * og, cg, *w.shape[2:]))


def conv_transpose_size(sizes, kernel, stride, pads, dilation, out_pad) -> tuple[int, ...]:
    """Output size per dim: ``(in − 1)·s + (k − 1)·d + 1 − begin − end + out_pad``."""
    d = len(sizes)
    return tuple((n - 1) * stride[i] + (kernel[i] - 1) * dilation[i] + 1 - pads[i] - pads[i + d] + out_pad[i]
                 for i, n in enumerate(sizes))


def _ct_geo(x, w, stride, padding, dilation, output_padding):
    d = x.ndim - 2
    st, pads, dl = _geo(d, stride, padding, dilation)
    op = (output_padding,) * d if np.isscalar(output_padding) else tuple(output_padding)
    return st, pads, dl, conv_transpose_size(x.shape[2:], w.shape[2:], st, pads, dl, op)


def _w_cols(wg) -> np.ndarray:
    """``[Cout/g, Cin/g, *k]`` → ``[Cout/g·prod(k), Cin/g]`` (rows ``(o, *tap)``, as :func:`col2im_nd` reads)."""
    return np.moveaxis(wg, 1, -1).reshape(-1, wg.shape[1])


def conv_transpose(x, w, b=None, stride=1, padding=0, dilation=1, groups: int = 1, output_padding=0):
    """Transposed convolution (module docstring): ``x [N, Cin, *in]``, ``w [Cout, Cin/g, *k]`` →
    ``[N, Cout, *out]``."""
    _check_conv(x, w, b, groups, "conv_transpose")
    st, pads, dl, out = _ct_geo(x, w, stride, padding, dilation, output_padding)
    n, cg, og = x.shape[0], x.shape[1] // groups, w.shape[0] // groups
    parts = []
    for g in range(groups):
        xg = x[:, g * cg:(g + 1) * cg].swapaxes(0, 1).reshape(cg, -1)
        cols = _w_cols(w[g * og:(g + 1) * og]) @ xg
        parts.append(col2im_nd(cols, (n, og, *out), w.shape[2:], st, pads, dl))
    y = parts[0] if groups == 1 else np.concatenate(parts, axis=1)
    return y if b is None else y + _channel(b, x.ndim - 2)


def conv_transpose_backward(dy, x, w, stride=1, padding=0, dilation=1, groups: int = 1, output_padding=0,
                            has_bias=True):
    """Gradients of :func:`conv_transpose`: with ``cols = im2col(dy)``, ``dx_g = W_gᵀ-cols`` (a conv of ``dy``),
    ``dw_g = (cols @ x_gᵀ)`` regrouped, ``db = Σ dy``."""
    st, pads, dl, _ = _ct_geo(x, w, stride, padding, dilation, output_padding)
    n, cg, og, k = x.shape[0], x.shape[1] // groups, w.shape[0] // groups, w.shape[2:]
    db = dy.sum(axis=(0,) + tuple(range(2, dy.ndim))) if has_bias else None
    dxs, dws = [], []
    for g in range(groups):
        cols, _ = im2col_nd(dy[:, g * og:(g + 1) * og], k, st, pads, dl)     # [og·prod(k), N·prod(in)]
        xg = x[:, g * cg:(g + 1) * cg].swapaxes(0, 1).reshape(cg, -1)
        wc = _w_cols(w[g * og:(g + 1) * og])
        dxs.append((wc.T @ cols).reshape(cg, n, *x.shape[2:]).swapaxes(0, 1))
        dws.append(np.moveaxis((cols @ xg.T).reshape(og, *k, cg), -1, 1))
    dx = dxs[0] if groups == 1 else np.concatenate(dxs, axis=1)
    dw = dws[0] if groups == 1 else np.concatenate(dws, axis=0)
    return dx, dw, db
