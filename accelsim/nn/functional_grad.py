"""Backward numerics of the ops in :mod:`accelsim.nn.functional` that it does not already differentiate.

Each ``*_backward(dy, ...)`` returns ``dL/d(input)`` (and parameter gradients where the op has some) given the
upstream gradient ``dy = dL/dy`` and what the forward saw. Stateless numpy, dtype-preserving (tests check every
rule against central finite differences in float64). Together with ``conv2d_backward``, ``linear_backward``,
``relu*_backward`` and the pooling backwards in :mod:`accelsim.nn.functional` they are the gradient rules the
op registry (:mod:`accelsim.ops`, ``OpDef.backward``) dispatches to.
"""
from __future__ import annotations

import numpy as np

from . import functional as F

__all__ = ["linear_nd_backward", "gelu_backward", "softmax_backward", "layer_norm_backward", "batch_norm_backward",
           "fold_bn_backward", "mean_pool_backward", "sigmoid_backward", "hardswish_backward", "tanh_backward",
           "embedding_backward"]

_INV_SQRT2 = 0.7071067811865476
_INV_SQRT_2PI = 0.3989422804014327


def linear_nd_backward(dy, x, w, has_bias: bool = True):
    """:func:`F.linear` on ``x [..., in]``: ``dx = dy·w``, ``dw = Σ dyᵀ·x``, ``db = Σ dy`` over the flattened
    leading dims."""
    x2, dy2 = x.reshape(-1, x.shape[-1]), dy.reshape(-1, dy.shape[-1])
    dx, dw, db = F.linear_backward(dy2, x2, w)
    return dx.reshape(x.shape), dw, db if has_bias else None


def gelu_backward(dy, x):
    """``d/dx [x·Φ(x)] = Φ(x) + x·φ(x)`` with ``Φ(x) = ½(1 + erf(x/√2))``, ``φ(x) = e^(−x²/2)/√(2π)``."""
    x64 = np.asarray(x, np.float64)
    cdf = 0.5 * (1.0 + F.erf(x64 * _INV_SQRT2))
    pdf = np.exp(-0.5 * x64 * x64) * _INV_SQRT_2PI
    return (dy * (cdf + x64 * pdf)).astype(dy.dtype)


def softmax_backward(dy, p, scale=None):
    """``p = softmax(x·scale + bias)`` along the last axis: ``dz = p ⊙ (dy − Σ_j p_j dy_j)``, ``dx = scale·dz``
    (the additive bias is a mask, not a parameter)."""
    dz = p * (dy - (p * dy).sum(axis=-1, keepdims=True))
    return dz * dz.dtype.type(scale) if scale is not None else dz


def layer_norm_backward(dy, x, gamma, eps: float = 1e-12):
    """``y = x̂·γ + β``, ``x̂ = (x − μ)/σ``, ``σ = √(var + eps)`` over the last axis (biased variance):
    ``dx = (g − mean(g) − x̂·mean(g·x̂)) / σ`` with ``g = dy·γ``; ``dγ = Σ dy·x̂``, ``dβ = Σ dy`` (summed over every
    leading axis)."""
    mu = x.mean(axis=-1, keepdims=True)
    xc = x - mu
    sigma = np.sqrt(np.mean(xc * xc, axis=-1, keepdims=True) + x.dtype.type(eps))
    xhat = xc / sigma
    g = dy * gamma
    dx = (g - g.mean(axis=-1, keepdims=True) - xhat * (g * xhat).mean(axis=-1, keepdims=True)) / sigma
    lead = tuple(range(dy.ndim - 1))
    return dx, (dy * xhat).sum(axis=lead), dy.sum(axis=lead)


def batch_norm_backward(dy, x, gamma, mean, var, eps: float):
    """Inference BatchNorm (running statistics frozen, as in fine-tuning): ``y = (x − mean)·k + β``,
    ``k = γ/√(var + eps)``: ``dx = dy·k``, ``dγ = Σ dy·(x − mean)/√(var + eps)``, ``dβ = Σ dy`` (per channel,
    axis 1)."""
    shape = (1, -1) + (1,) * (x.ndim - 2)
    inv = (1.0 / np.sqrt(np.asarray(var, np.float64) + eps)).astype(x.dtype)
    k = np.asarray(gamma, x.dtype) * inv
    axes = (0,) + tuple(range(2, x.ndim))
    xhat = (x - np.asarray(mean, x.dtype).reshape(shape)) * inv.reshape(shape)
    return dy * k.reshape(shape), (dy * xhat).sum(axis=axes), dy.sum(axis=axes)


def fold_bn_backward(dw_f, db_f, w, b, gamma, mean, var, eps: float):
    """Chain rule through :func:`F.fold_bn` (running statistics frozen): with ``k = γ/√(var + eps)``,
    ``w' = w·k``, ``b' = (b − mean)·k + β``: ``dw = dw'·k``, ``db = db'·k``,
    ``dγ = (Σ_{axes≠0} dw'·w + db'·(b − mean)) / √(var + eps)``, ``dβ = db'``. ``db`` is None when ``b`` is."""
    inv = 1.0 / np.sqrt(np.asarray(var, np.float64) + eps)
    k = np.asarray(gamma, np.float64) * inv
    kk = k.reshape((-1,) + (1,) * (w.ndim - 1))
    b0 = np.zeros(w.shape[0]) if b is None else np.asarray(b, np.float64)
    dgamma = ((dw_f * w).reshape(w.shape[0], -1).sum(axis=1) + db_f * (b0 - mean)) * inv
    dt = dw_f.dtype
    return ((dw_f * kk).astype(dt), None if b is None else (db_f * k).astype(dt), dgamma.astype(dt),
            np.asarray(db_f, dt).copy())


def mean_pool_backward(dy, hidden_shape, mask=None):
    """:func:`F.mean_pool`: ``dh_t = dy / S`` unmasked; with a mask ``dh_t = m_t·dy / max(Σ m, 1e-9)``."""
    b, s, _ = hidden_shape
    if mask is None:
        return np.broadcast_to(dy[:, None, :] / dy.dtype.type(s), hidden_shape).copy()
    m = mask.astype(dy.dtype)[:, :, None]
    return m * (dy[:, None, :] / np.maximum(m.sum(axis=1, keepdims=True), dy.dtype.type(1e-9)))


def sigmoid_backward(dy, y):
    """``σ' = σ(1 − σ)`` (from the forward output)."""
    return dy * y * (1 - y)


def tanh_backward(dy, y):
    """``tanh' = 1 − tanh²`` (from the forward output)."""
    return dy * (1 - y * y)


def hardswish_backward(dy, x):
    """``hardswish(x) = x·relu6(x + 3)/6``: derivative 0 below −3, ``(2x + 3)/6`` on (−3, 3), 1 above 3."""
    return dy * np.where(x <= -3, 0, np.where(x >= 3, 1, (2 * x + 3) / 6)).astype(dy.dtype)


def embedding_backward(dy, ids, rows: int):
    """``table[ids]``: scatter-add ``dy`` into the rows that were read (``np.add.at``)."""
    dt = np.zeros((rows, dy.shape[-1]), dtype=dy.dtype)
    np.add.at(dt, np.asarray(ids).reshape(-1), dy.reshape(-1, dy.shape[-1]))
    return dt
