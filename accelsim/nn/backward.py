"""Gradient rules of the op registry (``OpDef.backward`` in :mod:`accelsim.ops`).

A rule is ``backward(attrs, xs, y, dy, ctx) -> list`` of ``dL/d(input)`` per input of the layer (``None`` where an
input is not differentiable: token ids, masks), given the forward inputs ``xs``, its output ``y`` and the upstream
gradient ``dy``. Parameter gradients go to ``ctx.add_grad(suffix, g[, layer])`` under the weight file's names
(``<binding>.weight``...). The GEMM ops (conv2d, linear, matmul) ask the quantization mode that ran the forward
(``ctx.qops.backward(name, dy)``; :class:`accelsim.nn.autograd.GradOps` in FP32, fake-quant modes in
:mod:`accelsim.recover.fakequant`): it owns what it quantized, its straight-through estimator and the fused
activation; then ``ctx.weight_grads`` carries ``dw, db`` of the *folded* weights back through every folded
BatchNorm to the raw conv weight, bias and BN γ/β (running statistics frozen). Numerics: :mod:`.functional`,
:mod:`.functional_grad`.
"""
from __future__ import annotations

import numpy as np

from . import functional as F
from . import functional_grad as G


def gemm(a: dict, xs: list, y, dy, ctx) -> list:
    """conv2d / linear: ``(dx, dw', db') = qops.backward``, then through the folds to the raw parameters."""
    dx, dw, db = ctx.qops.backward(ctx.qname, dy)
    ctx.weight_grads(dw, db)
    return [dx]


def matmul(a: dict, xs: list, y, dy, ctx) -> list:
    """``y = x_a @ B`` with ``B = x_bᵀ`` when ``transpose_b``: ``(da, dB)`` from the qops, ``dx_b = dBᵀ``."""
    da, db = ctx.qops.backward(ctx.qname, dy)
    return [da, np.swapaxes(db, -1, -2) if a["transpose_b"] else db]


def add(a, xs, y, dy, ctx):
    """``y = Σ x_i``: every input receives ``dy``."""
    return [dy] * len(xs)


def mul(a, xs, y, dy, ctx):
    """``y = Π x_i`` (broadcasting): ``dx_i = dy·Π_{j≠i} x_j`` summed back to ``x_i``'s shape."""
    out = []
    for i, x in enumerate(xs):
        g = dy
        for j, other in enumerate(xs):
            if j != i:
                g = g * other
        out.append(_unbroadcast(g, x.shape))
    return out


def _unbroadcast(g, shape):
    while g.ndim > len(shape):
        g = g.sum(axis=0)
    for ax, n in enumerate(shape):
        if n == 1 and g.shape[ax] != 1:
            g = g.sum(axis=ax, keepdims=True)
    return g


def batchnorm(a, xs, y, dy, ctx):
    """A BatchNorm that is not folded (no conv before it): running statistics frozen."""
    p = ctx.param
    dx, dg, dbeta = G.batch_norm_backward(dy, xs[0], p("weight"), p("running_mean"), p("running_var"), a["eps"])
    ctx.add_grad("weight", dg)
    ctx.add_grad("bias", dbeta)
    return [dx]


def layernorm(a, xs, y, dy, ctx):
    dx, dg, db = G.layer_norm_backward(dy, xs[0], ctx.param("weight"), a["eps"])
    ctx.add_grad("weight", dg)
    ctx.add_grad("bias", db)
    return [dx]


def softmax(a, xs, y, dy, ctx):
    return [G.softmax_backward(dy, y, a["scale"])] + [None] * (len(xs) - 1)


def embedding(a, xs, y, dy, ctx):
    ctx.add_grad("weight", G.embedding_backward(dy, xs[0], a["num_embeddings"]))
    return [None]


def pool(kind: str):
    def rule(a, xs, y, dy, ctx):
        k, s, p = a["kernel"], a["stride"], a["padding"]
        if kind == "max":
            _, arg = F.max_pool2d(xs[0], k, s, p)
            return [F.max_pool2d_backward(dy, arg, xs[0].shape, k, s, p)]
        return [F.avg_pool2d_backward(dy, xs[0].shape, k, s, p)]
    return rule


def global_avgpool(a, xs, y, dy, ctx):
    return [F.global_avg_pool_backward(dy.reshape(dy.shape[:2]), xs[0].shape)]


def mean_pool(a, xs, y, dy, ctx):
    return [G.mean_pool_backward(dy, xs[0].shape, xs[1] if len(xs) == 2 else None)] + [None] * (len(xs) - 1)


def reshape_back(a, xs, y, dy, ctx):
    """flatten: ``dx = dy`` in ``x``'s shape."""
    return [dy.reshape(xs[0].shape)]


def first_token(a, xs, y, dy, ctx):
    dx = np.zeros_like(xs[0])
    dx[:, 0] = dy
    return [dx]


def split_heads(a, xs, y, dy, ctx):
    return [F.merge_heads(dy)]


def merge_heads(a, xs, y, dy, ctx):
    return [F.split_heads(dy, xs[0].shape[1])]


def no_grad(a, xs, y, dy, ctx):
    """Masks and other non-differentiable inputs."""
    return [None] * len(xs)


def elementwise(fn, uses_output: bool = False):
    """An activation rule from ``fn(dy, x)`` (or ``fn(dy, y)`` when ``uses_output``)."""
    return lambda a, xs, y, dy, ctx: [fn(dy, y if uses_output else xs[0])]


ACTIVATIONS = {"relu": elementwise(F.relu_backward), "relu6": elementwise(F.relu6_backward),
               "gelu": elementwise(G.gelu_backward), "sigmoid": elementwise(G.sigmoid_backward, True),
               "tanh": elementwise(G.tanh_backward, True), "hardswish": elementwise(G.hardswish_backward),
               "hardsigmoid": elementwise(lambda dy, x: dy * ((x > -3) & (x < 3)) / dy.dtype.type(6))}
