"""Lowering: every compute op becomes GEMMs for the array; everything else becomes vector-unit work.

* ``conv2d`` (groups g): g GEMMs with M = Ho·Wo, N = Cout/g, K = (Cin/g)·kh·kw. A depthwise conv
  (g = Cin) is Cin tiny GEMMs with K = kh·kw, exactly as SCALE-Sim splits ``DP`` layers per channel —
  its poor array utilization is real and is reported as such.
* ``linear``: M = rows of the input (e.g. sequence length), N = out_features, K = in_features.
* ``matmul`` ``[..., S, K] @ [..., K, T]``: one GEMM M=S, N=T, K=K per leading index (e.g. per attention
  head); both operands are activations.
* ``batchnorm`` directly after a conv/linear is folded into its weights (zero cost, as every inference
  compiler does); elsewhere, and all other ops, run on the vector unit as ``elements × ops_per_element``.
* ``flatten``/``split_heads``/``merge_heads``/``first_token`` are layout changes and cost nothing.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from .graph import Layer, Model

FREE_OPS = frozenset({"flatten", "split_heads", "merge_heads", "first_token"})
GEMM_OPS = frozenset({"conv2d", "linear", "matmul"})


@dataclass(frozen=True, slots=True)
class Gemm:
    """``count`` independent GEMMs ``(m×k) @ (k×n)``, run one after another on the array."""
    m: int
    n: int
    k: int
    count: int
    b_is_weight: bool

    @property
    def macs(self) -> int:
        return self.m * self.n * self.k * self.count


@dataclass(frozen=True, slots=True)
class Work:
    """What one layer asks of the hardware: a GEMM for the array, or ``vector_elements`` of ``vector_op``."""
    layer: Layer
    gemm: Gemm | None
    vector_op: str | None
    vector_elements: int


def lower_layer(layer: Layer, folded_bn: bool = False) -> Work:
    a, op = layer.attrs, layer.op
    if op == "conv2d":
        g, (kh, kw) = a["groups"], a["kernel"]
        m = layer.out_shape[1] * layer.out_shape[2]
        gemm = Gemm(m, a["out_channels"] // g, layer.in_shapes[0][0] // g * kh * kw, g, True)
        return Work(layer, gemm, None, 0)
    if op == "linear":
        x = layer.in_shapes[0]
        return Work(layer, Gemm(math.prod(x[:-1]), a["out_features"], x[-1], 1, True), None, 0)
    if op == "matmul":
        x, out = layer.in_shapes[0], layer.out_shape
        return Work(layer, Gemm(x[-2], out[-1], x[-1], math.prod(x[:-2]), False), None, 0)
    if op in FREE_OPS or folded_bn:
        return Work(layer, None, None, 0)
    elements = math.prod(layer.out_shape)
    if op in ("maxpool", "avgpool"):
        elements *= a["kernel"][0] * a["kernel"][1]
    elif op in ("global_avgpool", "mean_pool"):
        elements = math.prod(layer.in_shapes[0])
    elif op in ("add", "mul"):
        elements *= len(layer.inputs) - 1
    return Work(layer, None, op, elements)


def lower(model: Model) -> list[Work]:
    """Lower every layer; a batchnorm whose only input is a conv/linear output is folded."""
    producers = {layer.name: layer.op for layer in model.layers}
    return [lower_layer(layer, layer.op == "batchnorm" and producers.get(layer.inputs[0]) in ("conv2d", "linear"))
            for layer in model.layers]
