"""Execute a model graph (a model YAML) on real weights, in FP32, fake-quant or bit-exact integer mode.

``run_graph(model, weights, feeds, qops)`` walks ``model.layers`` in order with a leading batch axis on
every tensor. ``conv2d``/``linear``/``matmul`` go through ``qops`` (see :mod:`accelsim.nn.qexec`; ``None``
= FP32), named by their weight binding (e.g. ``_blocks.3._expand_conv``, the names the model-specific
forwards use) or, for weightless matmuls, by the layer name. As on the hardware (and in
:mod:`accelsim.lowering`), a ``batchnorm`` that follows a conv/linear is folded into its weights and a
following ``relu``/``relu6`` is fused into its output grid; the fused layers' tensors alias the result.
Everything else runs in float32. Sequences are unpadded (batch 1, or equal lengths: there is no mask).
"""
from __future__ import annotations

import math

import numpy as np

from ..errors import AccelsimError
from ..graph import Layer, Model
from ..lowering import lower
from . import functional as F
from . import text_ops as T
from .qexec import FloatOps


def _params(layer: Layer, weights: dict, suffix: str):
    if layer.weight is None:
        raise AccelsimError(f"layer {layer.name} ({layer.op}) has no 'weight:' binding, so it cannot be executed")
    return weights.get(f"{layer.weight}.{suffix}")


def _bn_fold(conv: Layer, bn: Layer, w, b, weights):
    g = lambda s: _params(bn, weights, s)  # noqa: E731
    return F.fold_bn(w, b, g("weight"), g("bias"), g("running_mean"), g("running_var"), bn.attrs["eps"])


def _gemm(layer: Layer, x, weights, qops, chain: list[Layer]):
    """conv2d/linear with its fused batchnorm folded and its fused relu/relu6 applied in the output grid."""
    w, b = _params(layer, weights, "weight"), _params(layer, weights, "bias")
    act = None
    for f in chain:
        if f.op == "batchnorm":
            w, b = _bn_fold(layer, f, w, b, weights)
        else:
            act = f.op
    name = layer.weight
    if layer.op == "linear":
        return qops.linear(name, x, w, b, act)
    a = layer.attrs
    if a["stride"][0] != a["stride"][1] or a["dilation"][0] != a["dilation"][1]:
        raise AccelsimError(f"layer {layer.name}: execution supports equal strides/dilations per axis")
    return qops.conv(name, x, w, b, a["stride"][0], a["padding"], a["dilation"][0], a["groups"], act)


def _pool(layer: Layer, x):
    a = layer.attrs
    t, l, b, r = a["padding"]
    if a["kernel"][0] != a["kernel"][1] or a["stride"][0] != a["stride"][1] or a["ceil_mode"]:
        raise AccelsimError(f"layer {layer.name}: execution supports square pools without ceil_mode")
    fn = F.max_pool2d if layer.op == "maxpool" else F.avg_pool2d
    y = fn(x, a["kernel"][0], a["stride"][0], (t, b, l, r))
    return y[0] if isinstance(y, tuple) else y


def _elementwise(layer: Layer, xs: list, weights):
    op, x = layer.op, xs[0]
    simple = {"relu": F.relu, "relu6": F.relu6, "gelu": T.gelu, "tanh": np.tanh,
              "sigmoid": lambda v: 1 / (1 + np.exp(-v)), "hardswish": lambda v: v * np.clip(v + 3, 0, 6) / 6}
    if op in simple:
        return simple[op](x).astype(np.float32)
    if op in ("add", "mul"):
        return (sum(xs[1:], xs[0]) if op == "add" else math.prod(xs[1:], start=xs[0])).astype(np.float32)
    if op == "softmax":
        return T.softmax(x * np.float32(layer.attrs["scale"]), axis=-1)
    if op == "layernorm":
        return T.layer_norm(x, _params(layer, weights, "weight"), _params(layer, weights, "bias"), layer.attrs["eps"])
    if op == "batchnorm":
        g = lambda s: _params(layer, weights, s)[None, :, None, None]  # noqa: E731
        return ((x - g("running_mean")) / np.sqrt(g("running_var") + layer.attrs["eps"]) * g("weight")
                + g("bias")).astype(np.float32)
    if op == "embedding":
        return T.embedding(x, _params(layer, weights, "weight"))
    if op in ("maxpool", "avgpool"):
        return _pool(layer, x)
    layout = {"global_avgpool": lambda: x.mean(axis=(2, 3), keepdims=True), "flatten": lambda: x.reshape(len(x), -1),
              "mean_pool": lambda: x.mean(axis=1), "first_token": lambda: x[:, 0],
              "split_heads": lambda: x.reshape(x.shape[0], x.shape[1], layer.attrs["heads"], -1).transpose(0, 2, 1, 3),
              "merge_heads": lambda: x.transpose(0, 2, 1, 3).reshape(x.shape[0], x.shape[2], -1)}
    return np.ascontiguousarray(layout[op]())


def _chains(model: Model) -> dict[str, list[Layer]]:
    """conv/linear layer name → the fused layers that follow it (as :func:`accelsim.lowering.lower` fuses)."""
    chains: dict[str, list[Layer]] = {}
    root: dict[str, str] = {}
    for work in lower(model):
        layer = work.layer
        if work.fused:
            root[layer.name] = root[layer.inputs[0]]
            chains[root[layer.name]].append(layer)
        elif layer.op in ("conv2d", "linear"):
            root[layer.name] = layer.name
            chains[layer.name] = []
    return chains


def run_graph(model: Model, weights: dict, feeds: dict, qops=None, outputs=None) -> dict:
    """Run ``model`` on ``feeds`` (model input name → batched array); return the requested (default: the
    last layer's) tensors by name."""
    qops = qops or FloatOps()
    missing = [n for n in model.inputs if n not in feeds]
    if missing:
        raise AccelsimError(f"run_graph: no value fed for model input(s) {missing}")
    env = dict(feeds)
    chains = _chains(model)
    fused = {f.name for c in chains.values() for f in c}
    names = outputs or [model.layers[-1].name]
    last_use = {t: i for i, layer in enumerate(model.layers) for t in layer.inputs}
    for i, layer in enumerate(model.layers):
        if layer.name in fused:
            continue
        xs = [env[t] for t in layer.inputs]
        if layer.op in ("conv2d", "linear"):
            y = _gemm(layer, xs[0], weights, qops, chains[layer.name])
            for f in chains[layer.name]:
                env[f.name] = y
        elif layer.op == "matmul":
            b = np.ascontiguousarray(np.swapaxes(xs[1], -1, -2)) if layer.attrs["transpose_b"] else xs[1]
            y = qops.matmul(layer.name, xs[0], b)
        else:
            y = _elementwise(layer, xs, weights)
        env[layer.name] = y
        for t in set(layer.inputs):   # free tensors no later layer reads
            if last_use.get(t) == i and t not in names:
                env.pop(t, None)
    return {n: env[n] for n in names}
