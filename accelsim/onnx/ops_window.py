"""ONNX window and per-channel ops → accelsim layers: Conv, ConvTranspose, MaxPool, AveragePool (1 to 3 spatial
dims), BatchNormalization, InstanceNormalization, LRN.

Conventions (the importer checks every layer's shape against ONNX shape inference):

* A conv is ``conv2d`` in two spatial dims (as in model YAMLs) and ``conv`` in one or three; ConvTranspose is
  ``conv_transpose`` with its weight regrouped output channel first, ``[Cout, Cin/g, *k]``
  (:func:`accelsim.ops._conv.transpose_weight_from_onnx`); its ``output_shape`` attribute becomes pads (ONNX's
  rule: the odd pad at the start unless ``auto_pad = SAME_UPPER``).
* Pools with ``ceil_mode`` get the extra end padding that gives ONNX's output size (−inf for MaxPool; not counted
  by AveragePool with ``count_include_pad = 0``, the ONNX default, which maps to ``avgpool_valid``); MaxPool keeps
  its dilations; its second output (indices) is refused.
* Per-channel ops take ``channel_axis`` 0 when the batch axis is in front (accelsim shapes drop it) and 1 when the
  graph runs as written (``[N, C, ...]``).
"""
from __future__ import annotations

from ..ops._conv import transpose_weight_from_onnx
from .node_attrs import ints, spatial_pads


def _spatial_rank(n, d: int, what: str):
    if not 1 <= d <= 3 or len(n.full(0)) != d + 2:
        n.fail(f"{what} needs an [N, C, *spatial] input with 1 to 3 spatial dims matching its kernel "
               f"({d}), got shape {list(n.full(0))}")


def _geometry(n, k):
    d = len(k)
    return ints(n.attr("strides", [1] * d)), ints(n.attr("dilations", [1] * d))


def conv(n):
    w_shape = n.weight_shape(1)
    k = list(w_shape[2:])
    _spatial_rank(n, len(k), "Conv")
    s, dl = _geometry(n, k)
    has_b = n.has(2)
    attrs = dict(out_channels=w_shape[0], kernel=k, stride=s, dilation=dl, groups=int(n.attr("group", 1)),
                 padding=spatial_pads(n, k, s, dl), bias=has_b)
    n.emit("conv2d" if len(k) == 2 else "conv", [n.x(0)], attrs,
           {"weight": n.weight(1), **({"bias": n.weight(2)} if has_b else {})})


def _transpose_pads(n, k, s, dl, out_pad) -> list[int]:
    """Pads from ``output_shape`` (or ``auto_pad`` SAME_*: output = input·stride), else ``pads``."""
    sp, d = n.full(0)[2:], len(k)
    auto = n.attr("auto_pad", "NOTSET")
    shape = n.attr("output_shape", None)
    if shape is None and auto not in ("SAME_UPPER", "SAME_LOWER"):
        return ints(n.attr("pads", [0] * (2 * d))) if auto != "VALID" else [0] * (2 * d)
    shape = ints(shape)[-d:] if shape is not None else [v * st for v, st in zip(sp, s)]
    total = [s[i] * (sp[i] - 1) + out_pad[i] + (k[i] - 1) * dl[i] + 1 - shape[i] for i in range(d)]
    if min(total) < 0:
        n.fail(f"output_shape {shape} is larger than the transposed conv gives without padding")
    begin = [t // 2 if auto == "SAME_UPPER" else t - t // 2 for t in total]
    return begin + [t - b for t, b in zip(total, begin)]


def conv_transpose(n):
    w_shape = n.weight_shape(1)
    k, g = list(w_shape[2:]), int(n.attr("group", 1))
    _spatial_rank(n, len(k), "ConvTranspose")
    s, dl = _geometry(n, k)
    out_pad = ints(n.attr("output_padding", [0] * len(k)))
    w = n.weight(1)
    has_b = n.has(2)
    attrs = dict(out_channels=w_shape[1] * g, kernel=k, stride=s, dilation=dl, groups=g, output_padding=out_pad,
                 padding=_transpose_pads(n, k, s, dl, out_pad), bias=has_b)
    n.emit("conv_transpose", [n.x(0)], attrs, {"weight": None if w is None else transpose_weight_from_onnx(w, g),
                                                 **({"bias": n.weight(2)} if has_b else {})})


def pool(op: str):
    def convert(n):
        k = ints(n.attr("kernel_shape"))
        _spatial_rank(n, len(k), n.node.op_type)
        s, dl = _geometry(n, k)
        if len(n.node.output) > 1 and n.node.output[1]:
            n.fail("MaxPool's indices output is not supported")
        ceil = bool(n.attr("ceil_mode", 0))
        pads = spatial_pads(n, k, s, dl, n.full_out()[2:] if ceil else None)
        kind = op
        if op == "avgpool" and not n.attr("count_include_pad", 0) and any(pads):
            kind = "avgpool_valid"
        elif op == "avgpool" and ceil and pads != spatial_pads(n, k, s, dl):
            n.fail("ceil_mode with count_include_pad=1 is not supported")
        n.emit(kind, [n.x(0)], dict(kernel=k, stride=s, padding=pads, dilation=dl))
    return convert


def batchnorm(n):
    if n.attr("training_mode", 0) or len([o for o in n.node.output if o]) > 1:
        n.fail("only inference BatchNormalization is supported")
    names = ("weight", "bias", "running_mean", "running_var")
    n.emit("batchnorm", [n.x(0)], dict(eps=float(n.attr("epsilon", 1e-5)), channel_axis=1 - n.off),
           {k: n.weight(i + 1) for i, k in enumerate(names)})


def instance_norm(n):
    if len(n.full(0)) < 3:
        n.fail(f"needs an [N, C, *spatial] input, got shape {list(n.full(0))}")
    n.emit("instance_norm", [n.x(0)], dict(eps=float(n.attr("epsilon", 1e-5)), channel_axis=1 - n.off),
           {"weight": n.weight(1), "bias": n.weight(2)})


def lrn(n):
    n.emit("lrn", [n.x(0)], dict(size=int(n.attr("size")), alpha=float(n.attr("alpha", 1e-4)),
                                 beta=float(n.attr("beta", 0.75)), bias=float(n.attr("bias", 1.0)),
                                 channel_axis=1 - n.off))


WINDOW = {"Conv": conv, "ConvTranspose": conv_transpose, "MaxPool": pool("maxpool"), "AveragePool": pool("avgpool"),
          "BatchNormalization": batchnorm, "InstanceNormalization": instance_norm, "LRN": lrn}
"""The converters of this module by ONNX op type (merged into :data:`accelsim.onnx.ops_map.CONVERTERS`)."""
