"""The numerics of every op, once: stateless numpy functions, arrays in, arrays out, with their backward.

The graph executor (:mod:`accelsim.nn.graph_exec`, through the op registry :mod:`accelsim.ops`), the
quantized executors (:mod:`accelsim.nn.qexec`) and the training layers (:mod:`accelsim.nn.layers`) all call
these; no op is written twice.

* **Layout.** Images NCHW; token activations ``[..., features]``; a ``linear`` flattens the leading dims into
  one 2-D GEMM (a numpy ``@`` on 3-D stacks is much slower). Convolution is lowered the way the accelerator
  sees it (DESIGN §5.1): ``im2col`` → one 2-D GEMM per group ``y[Cout, M] = W[Cout, K] @ cols``; depthwise
  convs (``groups == Cin == Cout``) run as ``R·S`` shifted multiply-adds, as a vector unit does.
* **One padding order, ONNX's**: ``padding`` is an int (all sides), ``(ph, pw)`` or
  ``(top, left, bottom, right)`` — begin values, then end values. Strides, dilations and kernels are an int
  or an ``(h, w)`` pair. Output size per axis: ``(H + begin + end − d·(R − 1) − 1) // s + 1``.
* **dtype**: every op keeps the input dtype (float32 for inference, float64 for gradient checks), except
  :func:`erf`/:func:`gelu`, which evaluate their rational approximation in float64 blocks.
"""
from __future__ import annotations

import numpy as np

from accelsim.errors import AccelsimError

__all__ = ["pads4", "pair", "same_padding", "conv_output_size", "im2col", "col2im", "conv2d", "conv2d_backward",
           "linear", "linear_backward", "relu", "relu_backward", "relu6", "relu6_backward", "sigmoid", "hardswish",
           "erf", "gelu", "max_pool2d", "max_pool2d_backward", "avg_pool2d", "avg_pool2d_backward",
           "global_avg_pool", "global_avg_pool_backward", "fold_bn", "batch_norm", "layer_norm", "softmax",
           "softmax_cross_entropy", "embedding", "split_heads", "merge_heads", "mask_bias", "mean_pool",
           "l2_normalize"]


# ---- geometry ----------------------------------------------------------------------------------------------

def pair(v, what: str = "value") -> tuple[int, int]:
    """An int or an ``(h, w)`` pair of ints ≥ 1 → ``(h, w)``."""
    p = (v, v) if np.isscalar(v) else tuple(v)
    if len(p) != 2 or any(int(e) != e or e < 1 for e in p):
        raise AccelsimError(f"{what} must be an int or an (h, w) pair of ints >= 1, got {v!r}")
    return int(p[0]), int(p[1])


def pads4(padding) -> tuple[int, int, int, int]:
    """Normalise ``padding`` to ONNX's ``(top, left, bottom, right)``."""
    p = (padding,) * 4 if np.isscalar(padding) else tuple(padding)
    if len(p) == 2:
        p = (p[0], p[1], p[0], p[1])
    if len(p) != 4 or any(int(v) != v or v < 0 for v in p):
        raise AccelsimError(f"padding must be an int, (ph, pw) or (top, left, bottom, right) >= 0, got {padding!r}")
    return tuple(int(v) for v in p)


def same_padding(h: int, w: int, kh: int, kw: int, stride: int = 1, dilation: int = 1):
    """TF "SAME" padding ``(top, left, bottom, right)``: output ``ceil(H/s)``, total pad
    ``max((ceil(H/s) − 1)·s + (k − 1)·d + 1 − H, 0)``, the odd pixel at the bottom/right."""
    def one(n, k):
        total = max((-(-n // stride) - 1) * stride + (k - 1) * dilation + 1 - n, 0)
        return total // 2, total - total // 2
    (t, b), (l, r) = one(h, kh), one(w, kw)
    return t, l, b, r


def conv_output_size(h: int, w: int, kh: int, kw: int, stride, pads, dilation) -> tuple[int, int]:
    """``(Ho, Wo)`` with ``Ho = (H + top + bottom − dh·(R − 1) − 1) // sh + 1`` (likewise Wo)."""
    (sh, sw), (dh, dw) = pair(stride, "stride"), pair(dilation, "dilation")
    t, l, b, r = pads
    ho = (h + t + b - dh * (kh - 1) - 1) // sh + 1
    wo = (w + l + r - dw * (kw - 1) - 1) // sw + 1
    if ho < 1 or wo < 1:
        raise AccelsimError(f"conv/pool window {kh}×{kw} (dilation {dh}×{dw}) does not fit the padded "
                            f"input {h + t + b}×{w + l + r}")
    return ho, wo


def _pad(x, pads, value=0.0):
    t, l, b, r = pads
    if not (t or b or l or r):
        return x
    return np.pad(x, ((0, 0), (0, 0), (t, b), (l, r)), constant_values=value)


def _window(xp, r, s, ho, wo, stride, dilation):
    """The strided slice of padded ``xp`` that kernel tap (r, s) sees: [N, C, Ho, Wo] (a view)."""
    (sh, sw), (dh, dw) = stride, dilation
    y0, x0 = r * dh, s * dw
    return xp[:, :, y0:y0 + sh * (ho - 1) + 1:sh, x0:x0 + sw * (wo - 1) + 1:sw]


def _unpad(xp, pads, h, w):
    t, l = pads[0], pads[1]
    return xp[:, :, t:t + h, l:l + w]


# ---- convolution and linear --------------------------------------------------------------------------------

def im2col(x: np.ndarray, kh: int, kw: int, stride=1, padding=0, dilation=1):
    """``x [N, C, H, W]`` → ``cols [C·kh·kw, N·Ho·Wo]`` (row ``(c·kh + r)·kw + s``, column ``(n·Ho + i)·Wo + j``)
    and ``(Ho, Wo)``; ``cols[(c,r,s), (n,i,j)] = xpad[n, c, i·sh + r·dh, j·sw + s·dw]``."""
    n, c, h, w = x.shape
    pads, st, dl = pads4(padding), pair(stride, "stride"), pair(dilation, "dilation")
    ho, wo = conv_output_size(h, w, kh, kw, st, pads, dl)
    if kh == kw == 1 and st == (1, 1) and not any(pads):
        return x.transpose(1, 0, 2, 3).reshape(c, n * h * w), (ho, wo)
    xp = _pad(x, pads)
    cols = np.empty((c, kh, kw, n, ho, wo), dtype=x.dtype)
    for r in range(kh):
        for s in range(kw):
            cols[:, r, s] = _window(xp, r, s, ho, wo, st, dl).transpose(1, 0, 2, 3)
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
            _window(xp, r, s, ho, wo, st, dl)[...] += c6[:, r, s].transpose(1, 0, 2, 3)
    return _unpad(xp, pads, h, w)


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
    xp = _pad(x, pads)
    y = np.zeros((x.shape[0], x.shape[1], ho, wo), dtype=np.result_type(x, w))
    for r in range(kh):
        for s in range(kw):
            y += _window(xp, r, s, ho, wo, stride, dilation) * w[None, :, 0, r, s, None, None]
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
        xp = _pad(x, pads)
        dxp, dw = np.zeros_like(xp), np.empty_like(w)
        for r in range(kh):
            for s in range(kw):
                dw[:, 0, r, s] = np.einsum("ncij,ncij->c", _window(xp, r, s, ho, wo, st, dl), dy)
                _window(dxp, r, s, ho, wo, st, dl)[...] += dy * w[None, :, 0, r, s, None, None]
        return _unpad(dxp, pads, x.shape[2], x.shape[3]), dw, db
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


# ---- activations -------------------------------------------------------------------------------------------

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


def sigmoid(x):
    """``1 / (1 + e^(−x))``."""
    return (1 / (1 + np.exp(-x))).astype(x.dtype)


def hardswish(x):
    """``x · relu6(x + 3) / 6``."""
    return (x * np.clip(x + 3, 0, 6) / 6).astype(x.dtype)


# erf(z) ≈ z·P(z²)/Q(z²) on |z| ≤ 4 and ±1 beyond (Eigen's float erf, degrees 6/4 in z²); evaluated in
# float64 the max abs error vs the exact erf is 6.5e-8 (tests check ≤ 1e-7 against scipy.special.erf).
_ERF_P = (-2.72614225801306e-10, 2.77068142495902e-08, -2.10102402082508e-06, -5.69250639462346e-05,
          -7.34990630326855e-04, -2.95459980854025e-03, -1.60960333262415e-02)
_ERF_Q = (-1.45660718464996e-05, -2.13374055278905e-04, -1.68282697438203e-03, -7.37332916720468e-03,
          -1.42647390514189e-02)
_CHUNK = 16384  # elements per elementwise block: keeps the float64 temporaries in L2 cache


def _erf_block(z: np.ndarray) -> np.ndarray:
    """``z·P(z²)/Q(z²)`` on a float64 block with ``z`` clipped to ``[−4, 4]``."""
    z = np.clip(z, -4.0, 4.0)
    z2 = z * z
    p = np.full_like(z, _ERF_P[0])
    for c in _ERF_P[1:]:
        p *= z2
        p += c
    q = np.full_like(z, _ERF_Q[0])
    for c in _ERF_Q[1:]:
        q *= z2
        q += c
    p *= z
    p /= q
    return p


def _blockwise(x: np.ndarray, fn) -> np.ndarray:
    x = np.asarray(x)
    dtype = x.dtype if np.issubdtype(x.dtype, np.floating) else np.dtype(np.float64)
    flat = x.reshape(-1)
    out = np.empty(flat.shape, dtype=dtype)
    for s in range(0, flat.size, _CHUNK):
        out[s:s + _CHUNK] = fn(flat[s:s + _CHUNK].astype(np.float64))
    return out.reshape(x.shape)


def erf(x: np.ndarray) -> np.ndarray:
    """The error function ``erf(x) = 2/√π ∫₀ˣ e^(−t²) dt``, elementwise, max abs error ≤ 1e-7: rational
    approximation ``x·P(x²)/Q(x²)`` for ``|x| ≤ 4`` and ``sign(x)`` beyond (``1 − erf(4) = 1.5e-8``), in float64
    blocks; the result has the input's float dtype (float64 for integer input)."""
    return _blockwise(x, _erf_block)


def _gelu_block(v):
    e = _erf_block(v * 0.7071067811865476)
    e += 1.0
    e *= v
    e *= 0.5
    return e


def gelu(x: np.ndarray) -> np.ndarray:
    """Exact (erf) GELU: ``gelu(x) = x · ½ · (1 + erf(x/√2))`` (torch ``nn.GELU()``, BERT ``"gelu"``); float32/64
    arrays run the one-pass kernel :func:`accelsim.kernels.elementwise.gelu` (bit-identical to the blocks)."""
    x = np.asarray(x)
    if x.dtype in (np.float32, np.float64):
        from accelsim.kernels import elementwise as _ew
        out = np.empty(x.shape, dtype=x.dtype)
        _ew.gelu(np.ascontiguousarray(x).reshape(-1), _ew.ERF_P, _ew.ERF_Q, out.reshape(-1))
        return out
    return _blockwise(x, _gelu_block)


# ---- pooling -----------------------------------------------------------------------------------------------

def _pool_geometry(x_shape, kernel, stride, padding):
    kh, kw = pair(kernel, "kernel")
    st = pair(stride if stride is not None else (kh, kw), "stride")
    pads = pads4(padding)
    return kh, kw, st, pads, conv_output_size(x_shape[2], x_shape[3], kh, kw, st, pads, 1)


def max_pool2d(x, kernel, stride=None, padding=0):
    """``y[n,c,i,j] = max_{r,s} xpad[n, c, i·sh + r, j·sw + s]`` (pad = −inf) and the argmax tap index
    ``r·kw + s`` (first maximum wins) for the backward."""
    kh, kw, st, pads, (ho, wo) = _pool_geometry(x.shape, kernel, stride, padding)
    xp = _pad(x, pads, -np.inf)
    y = np.full((x.shape[0], x.shape[1], ho, wo), -np.inf, dtype=x.dtype)
    arg = np.zeros(y.shape, dtype=np.int16)
    for r in range(kh):
        for s in range(kw):
            win = _window(xp, r, s, ho, wo, st, (1, 1))
            better = win > y
            y = np.where(better, win, y)
            arg[better] = r * kw + s
    return y, arg


def _pool_grad_buffer(x_shape, dy, pads):
    return np.zeros((x_shape[0], x_shape[1], x_shape[2] + pads[0] + pads[2], x_shape[3] + pads[1] + pads[3]),
                    dtype=dy.dtype)


def max_pool2d_backward(dy, arg, x_shape, kernel, stride=None, padding=0):
    """Route each ``dy`` to the input position its window's argmax came from."""
    kh, kw, st, pads, _ = _pool_geometry(x_shape, kernel, stride, padding)
    ho, wo = dy.shape[2:]
    dxp = _pool_grad_buffer(x_shape, dy, pads)
    for r in range(kh):
        for s in range(kw):
            _window(dxp, r, s, ho, wo, st, (1, 1))[...] += dy * (arg == r * kw + s)
    return _unpad(dxp, pads, x_shape[2], x_shape[3])


def avg_pool2d(x, kernel, stride=None, padding=0):
    """``y = (1/(kh·kw)) Σ_{r,s} xpad[...]`` (zero padding counted, torch's ``count_include_pad=True``)."""
    kh, kw, st, pads, (ho, wo) = _pool_geometry(x.shape, kernel, stride, padding)
    xp = _pad(x, pads)
    y = np.zeros((x.shape[0], x.shape[1], ho, wo), dtype=x.dtype)
    for r in range(kh):
        for s in range(kw):
            y += _window(xp, r, s, ho, wo, st, (1, 1))
    return y / (kh * kw)


def avg_pool2d_backward(dy, x_shape, kernel, stride=None, padding=0):
    """Spread ``dy / (kh·kw)`` over each window."""
    kh, kw, st, pads, _ = _pool_geometry(x_shape, kernel, stride, padding)
    ho, wo = dy.shape[2:]
    dxp = _pool_grad_buffer(x_shape, dy, pads)
    for r in range(kh):
        for s in range(kw):
            _window(dxp, r, s, ho, wo, st, (1, 1))[...] += dy / (kh * kw)
    return _unpad(dxp, pads, x_shape[2], x_shape[3])


def global_avg_pool(x):
    """``[N, C, H, W] → [N, C]``, mean over H·W."""
    return x.mean(axis=(2, 3))


def global_avg_pool_backward(dy, x_shape):
    """``dx = dy / (H·W)`` broadcast over the plane."""
    h, w = x_shape[2:]
    return np.broadcast_to((dy / (h * w))[:, :, None, None], x_shape).copy()


# ---- normalisation -----------------------------------------------------------------------------------------

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


def batch_norm(x, gamma, beta, mean, var, eps: float):
    """Inference BatchNorm per channel (axis 1): ``y = (x − mean) / √(var + eps) · γ + β``."""
    shape = (1, -1) + (1,) * (x.ndim - 2)
    g = lambda v: np.asarray(v).astype(x.dtype, copy=False).reshape(shape)  # noqa: E731
    return ((x - g(mean)) / np.sqrt(g(var) + x.dtype.type(eps)) * g(gamma) + g(beta)).astype(x.dtype)


def layer_norm(x: np.ndarray, gamma: np.ndarray, beta: np.ndarray, eps: float = 1e-12) -> np.ndarray:
    """``y = (x − μ) / √(σ² + eps) · γ + β`` over the last axis (biased variance, as torch)."""
    mu = x.mean(axis=-1, keepdims=True)
    xc = x - mu
    var = np.mean(xc * xc, axis=-1, keepdims=True)
    y = xc / np.sqrt(var + x.dtype.type(eps))
    y *= gamma
    y += beta
    return y


def softmax(x: np.ndarray, axis: int = -1, scale=None, bias=None) -> np.ndarray:
    """Numerically stable ``softmax(z)_i = exp(z_i − max z) / Σ_j exp(z_j − max z)`` along ``axis`` of
    ``z = x · scale + bias`` (attention: scores, 1/√d, the mask's additive bias); ``scale``/``bias`` optional.
    One temporary, worked on in place (the same float operations in the same order as the plain formula)."""
    z = x * x.dtype.type(scale) if scale is not None else None
    if bias is not None:
        z = z + bias if z is None else np.add(z, bias, out=z)
    if z is None:
        z = x - x.max(axis=axis, keepdims=True)
    else:
        z -= z.max(axis=axis, keepdims=True)
    np.exp(z, out=z)
    z /= z.sum(axis=axis, keepdims=True)
    return z


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


# ---- sequences ---------------------------------------------------------------------------------------------

def embedding(ids: np.ndarray, table: np.ndarray) -> np.ndarray:
    """Row lookup ``table[ids]`` (shape ``ids.shape + (dim,)``); ids outside ``[0, rows)`` raise."""
    ids = np.asarray(ids)
    if ids.size and (ids.min() < 0 or ids.max() >= table.shape[0]):
        raise AccelsimError(f"embedding: ids must lie in [0, {table.shape[0]}), got range "
                            f"[{ids.min()}, {ids.max()}]")
    return table[ids]


def split_heads(x: np.ndarray, heads: int) -> np.ndarray:
    """``[B, S, heads·d] → [B, heads, S, d]`` (contiguous copy, so the attention matmuls hit BLAS)."""
    b, s, hd = x.shape
    return np.ascontiguousarray(x.reshape(b, s, heads, hd // heads).transpose(0, 2, 1, 3))


def merge_heads(x: np.ndarray) -> np.ndarray:
    """``[B, heads, S, d] → [B, S, heads·d]`` (inverse of :func:`split_heads`)."""
    b, h, s, d = x.shape
    return np.ascontiguousarray(x.transpose(0, 2, 1, 3)).reshape(b, s, h * d)


def mask_bias(mask: np.ndarray, dtype=np.float32) -> np.ndarray:
    """Additive attention bias ``[B, 1, 1, S]`` from a key mask ``[B, S]``: 0 where ``mask`` ≠ 0, the dtype's most
    negative finite value where it is 0 (as Hugging Face BERT), so masked keys get probability exactly 0."""
    mask = np.asarray(mask)
    return np.where(mask[:, None, None, :] != 0, dtype(0), np.finfo(dtype).min).astype(dtype)


def mean_pool(hidden: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    """Mean over the sequence axis of ``hidden [B, S, D]``; with a mask ``[B, S]`` the masked mean
    ``Σ_t m_t·h_t / max(Σ_t m_t, 1e-9)`` (sentence-transformers' mean pooling)."""
    if mask is None:
        return hidden.mean(axis=1)
    m = mask.astype(hidden.dtype)[:, :, None]
    return (hidden * m).sum(axis=1) / np.maximum(m.sum(axis=1), hidden.dtype.type(1e-9))


def l2_normalize(x: np.ndarray, eps: float = 1e-12) -> np.ndarray:
    """``x / max(‖x‖₂, eps)`` along the last axis (torch ``F.normalize``)."""
    n = np.linalg.norm(x, axis=-1, keepdims=True)
    return x / np.maximum(n, x.dtype.type(eps))
