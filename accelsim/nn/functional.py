"""Stateless NCHW tensor ops in plain numpy, each with its backward: the arithmetic under :mod:`.layers`.

Convolution is lowered the way the accelerator sees it (DESIGN §5.1): ``im2col`` turns the input into a
2-D matrix ``cols [K = Cin/g·R·S, M = N·Ho·Wo]`` and the conv is one 2-D GEMM per group,
``y[Cout, M] = W[Cout, K] @ cols`` (never a 3-D ``@``). Depthwise convs (``groups == Cin == Cout``) are
computed directly as ``R·S`` shifted multiply-adds, which is what a vector unit does and much faster than
``C`` tiny GEMMs in numpy.

Padding is ``int`` (all sides), ``(ph, pw)`` (symmetric, torch style) or ``(top, bottom, left, right)``
(e.g. TF "SAME", see :func:`same_padding`). Output size per axis: ``(H + p0 + p1 − d·(R − 1) − 1) // s + 1``.
All ops keep the input dtype (float32 for inference, float64 for gradient checks).
"""
from __future__ import annotations

import numpy as np

from accelsim.errors import AccelsimError

__all__ = ["pad4", "same_padding", "conv_output_size", "im2col", "col2im", "conv2d", "conv2d_backward",
           "linear", "linear_backward", "relu", "relu_backward", "relu6", "relu6_backward",
           "max_pool2d", "max_pool2d_backward", "avg_pool2d", "avg_pool2d_backward",
           "global_avg_pool", "global_avg_pool_backward", "fold_bn", "batch_norm_inference",
           "softmax", "softmax_cross_entropy"]


def pad4(padding) -> tuple[int, int, int, int]:
    """Normalise ``padding`` to ``(top, bottom, left, right)``."""
    p = (padding,) * 4 if np.isscalar(padding) else tuple(padding)
    if len(p) == 2:
        p = (p[0], p[0], p[1], p[1])
    if len(p) != 4 or any(int(v) != v or v < 0 for v in p):
        raise AccelsimError(f"padding must be an int, (ph, pw) or (top, bottom, left, right) >= 0, got {padding!r}")
    return tuple(int(v) for v in p)


def same_padding(h: int, w: int, kh: int, kw: int, stride: int = 1, dilation: int = 1):
    """TF "SAME" padding ``(top, bottom, left, right)``: output ``ceil(H/s)``, total pad
    ``max((ceil(H/s) − 1)·s + (k − 1)·d + 1 − H, 0)``, the odd pixel at the bottom/right."""
    def one(n, k):
        total = max((-(-n // stride) - 1) * stride + (k - 1) * dilation + 1 - n, 0)
        return total // 2, total - total // 2
    return one(h, kh) + one(w, kw)


def conv_output_size(h: int, w: int, kh: int, kw: int, stride: int, pads, dilation: int) -> tuple[int, int]:
    """``(Ho, Wo)`` with ``Ho = (H + top + bottom − d·(R − 1) − 1) // s + 1``."""
    t, b, l, r = pads
    ho = (h + t + b - dilation * (kh - 1) - 1) // stride + 1
    wo = (w + l + r - dilation * (kw - 1) - 1) // stride + 1
    if ho < 1 or wo < 1:
        raise AccelsimError(f"conv/pool window {kh}×{kw} (dilation {dilation}) does not fit the padded "
                            f"input {h + t + b}×{w + l + r}")
    return ho, wo


def _pad(x, pads, value=0.0):
    t, b, l, r = pads
    if not (t or b or l or r):
        return x
    return np.pad(x, ((0, 0), (0, 0), (t, b), (l, r)), constant_values=value)


def _window(xp, r, s, ho, wo, stride, dilation):
    """The strided slice of padded ``xp`` that kernel tap (r, s) sees: [N, C, Ho, Wo] (a view)."""
    y0, x0 = r * dilation, s * dilation
    return xp[:, :, y0:y0 + stride * (ho - 1) + 1:stride, x0:x0 + stride * (wo - 1) + 1:stride]


def im2col(x: np.ndarray, kh: int, kw: int, stride: int = 1, padding=0, dilation: int = 1):
    """``x [N, C, H, W]`` → ``cols [C·kh·kw, N·Ho·Wo]`` (row index ``(c·kh + r)·kw + s``, column
    ``(n·Ho + i)·Wo + j``) and ``(Ho, Wo)``; ``cols[(c,r,s), (n,i,j)] = xpad[n, c, i·st + r·d, j·st + s·d]``."""
    n, c, h, w = x.shape
    pads = pad4(padding)
    ho, wo = conv_output_size(h, w, kh, kw, stride, pads, dilation)
    if kh == kw == 1 and stride == 1 and not any(pads):
        return x.transpose(1, 0, 2, 3).reshape(c, n * h * w), (ho, wo)
    xp = _pad(x, pads)
    cols = np.empty((c, kh, kw, n, ho, wo), dtype=x.dtype)
    for r in range(kh):
        for s in range(kw):
            cols[:, r, s] = _window(xp, r, s, ho, wo, stride, dilation).transpose(1, 0, 2, 3)
    return cols.reshape(c * kh * kw, n * ho * wo), (ho, wo)


def col2im(cols: np.ndarray, x_shape, kh: int, kw: int, stride: int = 1, padding=0, dilation: int = 1):
    """Adjoint of :func:`im2col`: scatter-add ``cols [C·kh·kw, N·Ho·Wo]`` back to ``[N, C, H, W]``."""
    n, c, h, w = x_shape
    t, b, l, r_ = pads = pad4(padding)
    ho, wo = conv_output_size(h, w, kh, kw, stride, pads, dilation)
    c6 = cols.reshape(c, kh, kw, n, ho, wo)
    xp = np.zeros((n, c, h + t + b, w + l + r_), dtype=cols.dtype)
    for r in range(kh):
        for s in range(kw):
            _window(xp, r, s, ho, wo, stride, dilation)[...] += c6[:, r, s].transpose(1, 0, 2, 3)
    return xp[:, :, t:t + h, l:l + w]


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
    """``y[n,c,i,j] = Σ_rs w[c,0,r,s] · xpad[n, c, i·st + r·d, j·st + s·d]``."""
    kh, kw = w.shape[2:]
    ho, wo = conv_output_size(x.shape[2], x.shape[3], kh, kw, stride, pads, dilation)
    xp = _pad(x, pads)
    y = np.zeros((x.shape[0], x.shape[1], ho, wo), dtype=np.result_type(x, w))
    for r in range(kh):
        for s in range(kw):
            y += _window(xp, r, s, ho, wo, stride, dilation) * w[None, :, 0, r, s, None, None]
    return y


def conv2d(x, w, b=None, stride: int = 1, padding=0, dilation: int = 1, groups: int = 1) -> np.ndarray:
    """2-D convolution (cross-correlation, as torch): ``y[n, o, i, j] = b[o] + Σ_{c∈group(o), r, s}
    w[o, c, r, s] · xpad[n, c, i·stride + r·dilation, j·stride + s·dilation]`` → [N, Cout, Ho, Wo]."""
    _check_conv(x, w, b, groups)
    pads = pad4(padding)
    if _is_depthwise(x, w, groups):
        y = _depthwise(x, w, stride, pads, dilation)
    else:
        n, cout, kh, kw = x.shape[0], w.shape[0], w.shape[2], w.shape[3]
        cg, og = x.shape[1] // groups, cout // groups
        parts = []
        for g in range(groups):
            cols, (ho, wo) = im2col(x[:, g * cg:(g + 1) * cg], kh, kw, stride, pads, dilation)
            parts.append(w[g * og:(g + 1) * og].reshape(og, -1) @ cols)
        y2 = parts[0] if groups == 1 else np.concatenate(parts, axis=0)
        y = y2.reshape(cout, n, ho, wo).transpose(1, 0, 2, 3)
    if b is not None:
        y = y + b[None, :, None, None]
    return y


def conv2d_backward(dy, x, w, stride: int = 1, padding=0, dilation: int = 1, groups: int = 1, has_bias=True):
    """Gradients of :func:`conv2d`: ``dx = col2im(Wᵀ @ dY)``, ``dw = dY @ colsᵀ``, ``db = Σ_{n,i,j} dy``."""
    pads = pad4(padding)
    kh, kw = w.shape[2:]
    db = dy.sum(axis=(0, 2, 3)) if has_bias else None
    if _is_depthwise(x, w, groups):
        ho, wo = dy.shape[2:]
        xp = _pad(x, pads)
        dxp, dw = np.zeros_like(xp), np.empty_like(w)
        for r in range(kh):
            for s in range(kw):
                dw[:, 0, r, s] = np.einsum("ncij,ncij->c", _window(xp, r, s, ho, wo, stride, dilation), dy)
                _window(dxp, r, s, ho, wo, stride, dilation)[...] += dy * w[None, :, 0, r, s, None, None]
        t, _, l, _ = pads
        return dxp[:, :, t:t + x.shape[2], l:l + x.shape[3]], dw, db
    cout, cg = w.shape[0], x.shape[1] // groups
    og = cout // groups
    dy2 = dy.transpose(1, 0, 2, 3).reshape(cout, -1)                          # [Cout, M]
    dxs, dws = [], []
    for g in range(groups):
        xg = x[:, g * cg:(g + 1) * cg]
        cols, _ = im2col(xg, kh, kw, stride, pads, dilation)
        dyg, wg = dy2[g * og:(g + 1) * og], w[g * og:(g + 1) * og].reshape(og, -1)
        dws.append((dyg @ cols.T).reshape(og, cg, kh, kw))
        dxs.append(col2im(wg.T @ dyg, xg.shape, kh, kw, stride, pads, dilation))
    dx = dxs[0] if groups == 1 else np.concatenate(dxs, axis=1)
    dw = dws[0] if groups == 1 else np.concatenate(dws, axis=0)
    return dx, dw, db


def linear(x, w, b=None):
    """``y = x @ wᵀ + b`` with ``x [N, in]``, ``w [out, in]`` (torch layout)."""
    if x.ndim != 2 or w.ndim != 2 or x.shape[1] != w.shape[1]:
        raise AccelsimError(f"linear: x {x.shape} and weight {w.shape} (expected [N, {w.shape[-1]}])")
    y = x @ w.T
    return y + b if b is not None else y


def linear_backward(dy, x, w):
    """``dx = dy @ w``, ``dw = dyᵀ @ x``, ``db = Σ_n dy``."""
    return dy @ w, dy.T @ x, dy.sum(axis=0)


def relu(x):
    """``max(x, 0)``."""
    return np.maximum(x, 0)


def relu_backward(dy, x):
    """``dy · [x > 0]``."""
    return dy * (x > 0)


def relu6(x):
    """``min(max(x, 0), 6)``."""
    return np.clip(x, 0, 6)


def relu6_backward(dy, x):
    """``dy · [0 < x < 6]``."""
    return dy * ((x > 0) & (x < 6))


def max_pool2d(x, kernel: int, stride: int | None = None, padding=0):
    """``y[n,c,i,j] = max_{r,s} xpad[n,c,i·s + r, j·s + s']`` (pad = −inf) and the argmax tap index
    ``r·kernel + s'`` (first maximum wins) for the backward."""
    stride = stride or kernel
    pads = pad4(padding)
    ho, wo = conv_output_size(x.shape[2], x.shape[3], kernel, kernel, stride, pads, 1)
    xp = _pad(x, pads, -np.inf)
    y = np.full((x.shape[0], x.shape[1], ho, wo), -np.inf, dtype=x.dtype)
    arg = np.zeros(y.shape, dtype=np.int16)
    for r in range(kernel):
        for s in range(kernel):
            win = _window(xp, r, s, ho, wo, stride, 1)
            better = win > y
            y = np.where(better, win, y)
            arg[better] = r * kernel + s
    return y, arg


def max_pool2d_backward(dy, arg, x_shape, kernel: int, stride: int | None = None, padding=0):
    """Route each ``dy`` to the input position its window's argmax came from."""
    stride = stride or kernel
    t, b, l, r_ = pad4(padding)
    ho, wo = dy.shape[2:]
    dxp = np.zeros((x_shape[0], x_shape[1], x_shape[2] + t + b, x_shape[3] + l + r_), dtype=dy.dtype)
    for r in range(kernel):
        for s in range(kernel):
            _window(dxp, r, s, ho, wo, stride, 1)[...] += dy * (arg == r * kernel + s)
    return dxp[:, :, t:t + x_shape[2], l:l + x_shape[3]]


def avg_pool2d(x, kernel: int, stride: int | None = None, padding=0):
    """``y = (1/k²) Σ_{r,s} xpad[...]`` (zero padding counted, torch's ``count_include_pad=True``)."""
    stride = stride or kernel
    pads = pad4(padding)
    ho, wo = conv_output_size(x.shape[2], x.shape[3], kernel, kernel, stride, pads, 1)
    xp = _pad(x, pads)
    y = np.zeros((x.shape[0], x.shape[1], ho, wo), dtype=x.dtype)
    for r in range(kernel):
        for s in range(kernel):
            y += _window(xp, r, s, ho, wo, stride, 1)
    return y / (kernel * kernel)


def avg_pool2d_backward(dy, x_shape, kernel: int, stride: int | None = None, padding=0):
    """Spread ``dy / k²`` over each window."""
    stride = stride or kernel
    t, b, l, r_ = pad4(padding)
    ho, wo = dy.shape[2:]
    dxp = np.zeros((x_shape[0], x_shape[1], x_shape[2] + t + b, x_shape[3] + l + r_), dtype=dy.dtype)
    for r in range(kernel):
        for s in range(kernel):
            _window(dxp, r, s, ho, wo, stride, 1)[...] += dy / (kernel * kernel)
    return dxp[:, :, t:t + x_shape[2], l:l + x_shape[3]]


def global_avg_pool(x):
    """``[N, C, H, W] → [N, C]``, mean over H·W."""
    return x.mean(axis=(2, 3))


def global_avg_pool_backward(dy, x_shape):
    """``dx = dy / (H·W)`` broadcast over the plane."""
    h, w = x_shape[2:]
    return np.broadcast_to((dy / (h * w))[:, :, None, None], x_shape).copy()


def fold_bn(w, b, gamma, beta, mean, var, eps: float):
    """Fold inference BatchNorm into the preceding conv/linear (output channel = axis 0 of ``w``):
    ``k = γ / √(var + eps)``, ``w' = w · k``, ``b' = (b − mean) · k + β`` (``b = 0`` when None).
    Computed in float64, returned in ``w``'s dtype."""
    cout = w.shape[0]
    for name, v in (("gamma", gamma), ("beta", beta), ("mean", mean), ("var", var)):
        if np.shape(v) != (cout,):
            raise AccelsimError(f"fold_bn: {name} has shape {np.shape(v)}, expected ({cout},) for weight {w.shape}")
    k = np.asarray(gamma, np.float64) / np.sqrt(np.asarray(var, np.float64) + eps)
    b64 = np.zeros(cout) if b is None else np.asarray(b, np.float64)
    w_f = (w.astype(np.float64) * k.reshape((-1,) + (1,) * (w.ndim - 1))).astype(w.dtype)
    b_f = ((b64 - mean) * k + beta).astype(w.dtype)
    return w_f, b_f


def batch_norm_inference(x, gamma, beta, mean, var, eps: float):
    """``y = (x − mean) / √(var + eps) · γ + β`` per channel (axis 1)."""
    shape = (1, -1) + (1,) * (x.ndim - 2)
    inv = (gamma / np.sqrt(var + eps)).astype(x.dtype)
    return (x - mean.astype(x.dtype).reshape(shape)) * inv.reshape(shape) + beta.astype(x.dtype).reshape(shape)


def softmax(z):
    """Row-wise ``exp(z − max z) / Σ exp(z − max z)``."""
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def softmax_cross_entropy(logits, labels):
    """Mean cross-entropy ``L = −(1/N) Σ_n log softmax(z_n)[y_n]`` and ``dL/dz = (softmax(z) − onehot(y)) / N``."""
    n, k = logits.shape
    labels = np.asarray(labels)
    if labels.shape != (n,) or labels.min(initial=0) < 0 or labels.max(initial=0) >= k:
        raise AccelsimError(f"softmax_cross_entropy: labels must be [N={n}] ints in 0..{k - 1}, got {labels.shape}")
    z = logits - logits.max(axis=1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    loss = -logp[np.arange(n), labels].mean()
    grad = np.exp(logp)
    grad[np.arange(n), labels] -= 1
    return float(loss), grad / n
