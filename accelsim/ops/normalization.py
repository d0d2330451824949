"""Normalization ops — ``batchnorm``, ``layernorm`` and imported ``lrn``, ``instance_norm`` — with their numerics
and gradients. Per-channel ops take their channel axis from ``channel_axis`` (default 0, ``[C, ...]``).

A ``batchnorm`` after a conv/linear is ``fusable``: the executors fold it into the weights (:func:`fold_bn`,
running statistics frozen) as inference compilers do, and the gradient flows back through the fold
(:func:`fold_bn_backward`). In training mode (``ctx.train`` set, torch's ``model.train()``; nothing is folded) it
normalizes with the batch's statistics (:func:`batch_norm_train`) and updates the running ones
(:func:`running_stats`) through ``ctx.set_param``. Parameters: ``weight``/``bias`` (γ, β) plus
``running_mean``/``running_var``; torch's count convention (BN has 2·C parameters, both kept 32-bit in a quantized model's size).
"""
from __future__ import annotations

import numpy as np

from ..errors import AccelsimError
from ._common import channel_axis_ok, same
from .registry import OpDef, Shape

# ---- numerics ----------------------------------------------------------------------------------------------


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


def fold_bn_backward(dw_f, db_f, w, b, gamma, mean, var, eps: float):
    """Chain rule through :func:`fold_bn` (running statistics frozen): with ``k = γ/√(var + eps)``,
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


def batch_norm(x, gamma, beta, mean, var, eps: float, axis: int = 1):
    """Inference BatchNorm per channel (``axis``, default 1): ``y = (x − mean) / √(var + eps) · γ + β``."""
    shape = (1,) * axis + (-1,) + (1,) * (x.ndim - axis - 1)
    g = lambda v: np.asarray(v).astype(x.dtype, copy=False).reshape(shape)  # noqa: E731
    return ((x - g(mean)) / np.sqrt(g(var) + x.dtype.type(eps)) * g(gamma) + g(beta)).astype(x.dtype)


def batch_norm_backward(dy, x, gamma, mean, var, eps: float, axis: int = 1):
    """Inference BatchNorm (running statistics frozen, as in fine-tuning): ``y = (x − mean)·k + β``,
    ``k = γ/√(var + eps)``: ``dx = dy·k``, ``dγ = Σ dy·(x − mean)/√(var + eps)``, ``dβ = Σ dy`` (per channel,
    ``axis``)."""
    shape = (1,) * axis + (-1,) + (1,) * (x.ndim - axis - 1)
    inv = (1.0 / np.sqrt(np.asarray(var, np.float64) + eps)).astype(x.dtype)
    k = np.asarray(gamma, x.dtype) * inv
    axes = tuple(i for i in range(x.ndim) if i != axis)
    xhat = (x - np.asarray(mean, x.dtype).reshape(shape)) * inv.reshape(shape)
    return dy * k.reshape(shape), (dy * xhat).sum(axis=axes), dy.sum(axis=axes)


def _batch_stats(x, eps: float, axis: int = 1):
    """``(axes, shape, μ, σ², inv, x̂)`` of a batch: per channel (``axis``) over every other axis, biased σ²."""
    axes, shape = tuple(i for i in range(x.ndim) if i != axis), (1,) * axis + (-1,) + (1,) * (x.ndim - axis - 1)
    mean, var = x.mean(axis=axes), x.var(axis=axes)
    inv = (1.0 / np.sqrt(var + eps)).astype(x.dtype)
    return axes, shape, mean, var, inv, (x - mean.astype(x.dtype).reshape(shape)) * inv.reshape(shape)


def batch_norm_train(x, gamma, beta, eps: float, axis: int = 1):
    """Training-mode BatchNorm: the batch's mean μ and biased variance σ² per channel (``axis``, over every other
    axis), ``y = x̂·γ + β`` with ``x̂ = (x − μ)·inv``, ``inv = 1/√(σ² + eps)``. Returns ``(y, μ, σ²)``."""
    _, shape, mean, var, _, xhat = _batch_stats(x, eps, axis)
    return xhat * np.asarray(gamma).reshape(shape) + np.asarray(beta).reshape(shape), mean, var


def batch_norm_train_backward(dy, x, gamma, eps: float, axis: int = 1):
    """Gradients of :func:`batch_norm_train` (the statistics depend on x): with M elements per channel,
    ``dx = (γ·inv / M) · (M·dy − Σdy − x̂·Σ(dy·x̂))``, ``dγ = Σ dy·x̂``, ``dβ = Σ dy``."""
    axes, shape, _, _, inv, xhat = _batch_stats(x, eps, axis)
    sum_dy, sum_dy_xhat = dy.sum(axis=axes), (dy * xhat).sum(axis=axes)
    m = dy.size // dy.shape[axis]
    centred = m * dy - sum_dy.reshape(shape) - xhat * sum_dy_xhat.reshape(shape)
    return centred * (np.asarray(gamma) * inv / m).reshape(shape), sum_dy_xhat, sum_dy


def running_stats(running_mean, running_var, mean, var, n: int, momentum: float):
    """torch's update of the running statistics from a batch of ``n`` elements per channel:
    ``r ← (1 − momentum)·r + momentum·batch``, with the unbiased variance ``σ²·n/(n − 1)`` for ``running_var``."""
    new_mean = ((1 - momentum) * running_mean + momentum * mean).astype(running_mean.dtype)
    unbiased = var * n / max(n - 1, 1)
    return new_mean, ((1 - momentum) * running_var + momentum * unbiased).astype(running_var.dtype)


def layer_norm(x: np.ndarray, gamma: np.ndarray, beta: np.ndarray, eps: float = 1e-12) -> np.ndarray:
    """``y = (x − μ) / √(σ² + eps) · γ + β`` over the last axis (biased variance, as torch)."""
    mu = x.mean(axis=-1, keepdims=True)
    xc = x - mu
    var = np.mean(xc * xc, axis=-1, keepdims=True)
    y = xc / np.sqrt(var + x.dtype.type(eps))
    y *= gamma
    y += beta
    return y


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


def lrn(a: dict, x, axis: int = 1):
    """``y = x / (bias + alpha/size · Σ_{c'∈[c−⌊(size−1)/2⌋, c+⌈(size−1)/2⌉]} x[c']²)^beta`` (ONNX LRN; channels on
    ``axis``)."""
    sq = np.square(x)
    lo, hi = (a["size"] - 1) // 2, -(-(a["size"] - 1) // 2)
    sq = np.pad(sq, [(0, 0)] * axis + [(lo, hi)] + [(0, 0)] * (x.ndim - axis - 1))
    c = x.shape[axis]
    acc = sum(sq[(slice(None),) * axis + (slice(i, i + c),)] for i in range(a["size"]))
    return (x / (x.dtype.type(a["bias"]) + x.dtype.type(a["alpha"] / a["size"]) * acc) ** x.dtype.type(a["beta"]))


def instance_norm(x, gamma, beta, eps: float, axis: int = 1):
    """ONNX InstanceNormalization: per sample and channel (``axis``), over the axes after it,
    ``y = (x − μ) / √(σ² + eps) · γ + β`` (biased σ²)."""
    axes = tuple(range(axis + 1, x.ndim))
    shape = (1,) * axis + (-1,) + (1,) * (x.ndim - axis - 1)
    mu = x.mean(axis=axes, keepdims=True)
    xc = x - mu
    y = xc / np.sqrt(np.mean(xc * xc, axis=axes, keepdims=True) + x.dtype.type(eps))
    return y * np.asarray(gamma, x.dtype).reshape(shape) + np.asarray(beta, x.dtype).reshape(shape)


def instance_norm_backward(dy, x, gamma, eps: float, axis: int = 1):
    """With M elements per (sample, channel), ``x̂`` and ``σ`` as in :func:`instance_norm`, ``g = dy·γ``:
    ``dx = (g − mean(g) − x̂·mean(g·x̂)) / σ``; ``dγ = Σ dy·x̂``, ``dβ = Σ dy`` (over every axis but the channels)."""
    axes = tuple(range(axis + 1, x.ndim))
    shape = (1,) * axis + (-1,) + (1,) * (x.ndim - axis - 1)
    xc = x - x.mean(axis=axes, keepdims=True)
    sigma = np.sqrt(np.mean(xc * xc, axis=axes, keepdims=True) + x.dtype.type(eps))
    xhat = xc / sigma
    g = dy * np.asarray(gamma, x.dtype).reshape(shape)
    dx = (g - g.mean(axis=axes, keepdims=True) - xhat * (g * xhat).mean(axis=axes, keepdims=True)) / sigma
    others = tuple(i for i in range(x.ndim) if i != axis)
    return dx, (dy * xhat).sum(axis=others), dy.sum(axis=others)


# ---- the registry entries ----------------------------------------------------------------------------------

def _ch(a: dict) -> int:
    """The run-time channel axis (the batch axis in front)."""
    return a.get("channel_axis", 0) + 1


def _run_bn(a: dict, xs: list, ctx):
    p, x, ax = ctx.param, xs[0], _ch(a)
    if ctx.train is None:
        return batch_norm(x, p("weight"), p("bias"), p("running_mean"), p("running_var"), a["eps"], ax)
    y, mean, var = batch_norm_train(x, p("weight"), p("bias"), a["eps"], ax)
    for key, value in zip(("running_mean", "running_var"), running_stats(
            p("running_mean"), p("running_var"), mean, var, x.size // x.shape[ax], ctx.train.bn_momentum)):
        ctx.set_param(key, value)
    return y


def _bn_back(a, xs, y, dy, ctx):
    """A BatchNorm that is not folded (no conv before it): running statistics frozen, or in training mode the
    batch statistics' full gradient."""
    p, ax = ctx.param, _ch(a)
    if ctx.train is not None:
        dx, dg, dbeta = batch_norm_train_backward(dy, xs[0], p("weight"), a["eps"], ax)
    else:
        dx, dg, dbeta = batch_norm_backward(dy, xs[0], p("weight"), p("running_mean"), p("running_var"), a["eps"],
                                            ax)
    ctx.add_grad("weight", dg)
    ctx.add_grad("bias", dbeta)
    return [dx]


def _ln_back(a, xs, y, dy, ctx):
    dx, dg, db = layer_norm_backward(dy, xs[0], ctx.param("weight"), a["eps"])
    ctx.add_grad("weight", dg)
    ctx.add_grad("bias", db)
    return [dx]


def _in_back(a, xs, y, dy, ctx):
    dx, dg, db = instance_norm_backward(dy, xs[0], ctx.param("weight"), a["eps"], _ch(a))
    ctx.add_grad("weight", dg)
    ctx.add_grad("bias", db)
    return [dx]


def _channels(a: dict, s: list[Shape]) -> int:
    return s[0][a["channel_axis"]]


def _bn_weights(a: dict, s: list[Shape]) -> dict:
    return {k: (_channels(a, s),) for k in ("weight", "bias", "running_mean", "running_var")}


def _channel_attrs(eps: float):
    """``eps`` and ``channel_axis`` (default 0: ``[C, ...]``; 1 in an ONNX graph run without a batch axis,
    ``[N, C, ...]``)."""
    return lambda r: dict(eps=r.pos_float("eps", eps), channel_axis=r.nonneg_int("channel_axis", 0))


OPS = {
    "batchnorm": OpDef(_channel_attrs(1e-5), channel_axis_ok, _run_bn,
                       params=lambda a, s: 2 * _channels(a, s), wide_params=lambda a, s: 2 * _channels(a, s),
                       weights=_bn_weights, vector_ops=2.0, fusable=True, backward=_bn_back, epilogue="element"),
    "layernorm": OpDef(lambda r: dict(eps=r.pos_float("eps", 1e-12)), same,
                       lambda a, xs, ctx: layer_norm(xs[0], ctx.param("weight"), ctx.param("bias"), a["eps"]),
                       params=lambda a, s: 2 * s[0][-1], wide_params=lambda a, s: 2 * s[0][-1],
                       weights=lambda a, s: {"weight": (s[0][-1],), "bias": (s[0][-1],)},
                       vector_ops=6.0, backward=_ln_back, epilogue="row"),
}

IMPORTED = {
    "lrn": OpDef(lambda r: dict(size=r.pos_int("size"), alpha=r.pos_float("alpha", 1e-4), beta=r.pos_float("beta", 0.75),
                                bias=r.pos_float("bias", 1.0), channel_axis=r.nonneg_int("channel_axis", 0)),
                 channel_axis_ok, lambda a, xs, ctx: lrn(a, xs[0], _ch(a)), vector_ops=8.0),
    "instance_norm": OpDef(_channel_attrs(1e-5), channel_axis_ok,
                           lambda a, xs, ctx: instance_norm(xs[0], ctx.param("weight"), ctx.param("bias"), a["eps"],
                                                            _ch(a)),
                           params=lambda a, s: 2 * _channels(a, s), wide_params=lambda a, s: 2 * _channels(a, s),
                           weights=lambda a, s: {"weight": (_channels(a, s),), "bias": (_channels(a, s),)},
                           vector_ops=6.0, backward=_in_back),
}
