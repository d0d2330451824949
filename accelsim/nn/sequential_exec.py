"""Adapters that run our numpy models through a quantization ops object (see :mod:`accelsim.nn.qexec`).

* :func:`run_sequential` walks a :class:`~accelsim.nn.layers.Sequential` (the MNIST CNNs): every
  ``Conv2d``/``Linear`` goes through ``qops`` under its path name (``"0"``, ``"4.body.0"`` ...) with a
  directly following ReLU/ReLU6 fused into it; everything else runs its own float forward.
* :func:`fold_batchnorm` returns a copy with each ``Conv2d → BatchNorm2d`` pair folded into one conv
  (inference form; what an integer datapath executes).
* :func:`efficientnet_adapters` gives the ``conv``/``linear`` callables ``efficientnet_forward`` accepts.
"""
from __future__ import annotations

from . import functional as F
from . import layers as L


def onnx_pads(padding) -> tuple[int, int, int, int]:
    """Our ``(top, bottom, left, right)`` padding → ONNX's ``(top, left, bottom, right)``."""
    t, b, l, r = F.pad4(padding)
    return (t, l, b, r)


def _single(v, what: str) -> int:
    if isinstance(v, (tuple, list)):
        if len(set(v)) != 1:
            raise ValueError(f"{what}: quantized execution supports equal values per axis, got {v}")
        return int(v[0])
    return int(v)


def run_sequential(model: L.Sequential, x, qops, prefix: str = ""):
    """Forward ``x`` through ``model`` with conv/linear layers executed by ``qops``."""
    for i, layer in enumerate(model.layers):
        name = f"{prefix}{i}"
        following = model.layers[i + 1] if i + 1 < len(model.layers) else None
        act = {L.ReLU: "relu", L.ReLU6: "relu6"}.get(type(following))  # fused; re-applying it is a no-op
        if isinstance(layer, L.Conv2d):
            x = qops.conv(name, x, layer.params["weight"], layer.params.get("bias"), _single(layer.stride, "stride"),
                          onnx_pads(layer.padding), _single(layer.dilation, "dilation"), layer.groups, act)
        elif isinstance(layer, L.Linear):
            x = qops.linear(name, x, layer.params["weight"], layer.params.get("bias"), act)
        elif isinstance(layer, L.Residual):
            skip = x if layer.shortcut is None else run_sequential(layer.shortcut, x, qops, f"{name}.shortcut.")
            x = run_sequential(layer.body, x, qops, f"{name}.body.") + skip
        elif isinstance(layer, L.Sequential):
            x = run_sequential(layer, x, qops, f"{name}.")
        else:
            x = layer.forward(x, train=False)
    return x


def fold_batchnorm(model: L.Sequential) -> L.Sequential:
    """A copy of ``model`` with every ``Conv2d`` directly followed by ``BatchNorm2d`` folded into one conv."""
    out, layers, i = [], model.layers, 0
    while i < len(layers):
        layer = layers[i]
        if isinstance(layer, L.Conv2d) and i + 1 < len(layers) and isinstance(layers[i + 1], L.BatchNorm2d):
            out.append(layers[i + 1].fold_into(layer))
            i += 2
            continue
        if isinstance(layer, L.Residual):
            shortcut = fold_batchnorm(layer.shortcut) if layer.shortcut is not None else None
            layer = L.Residual(fold_batchnorm(layer.body), shortcut)
        elif isinstance(layer, L.Sequential):
            layer = fold_batchnorm(layer)
        out.append(layer)
        i += 1
    return L.Sequential(*out)


def efficientnet_adapters(qops):
    """``(conv, linear)`` for :func:`accelsim.nn.efficientnet.efficientnet_forward`, named by the conv unit."""
    def conv(x, w, b, stride=1, padding=0, dilation=1, groups=1, unit=None):
        return qops.conv(unit.name, x, w, b, int(stride), onnx_pads(padding), int(dilation), groups, unit.act)

    def linear(x, w, b):
        return qops.linear("_fc", x, w, b)

    return conv, linear
