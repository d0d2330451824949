"""Lowering: every compute op becomes GEMMs for the array; everything else becomes vector-unit work.

* ``conv2d`` (groups g): g GEMMs with M = Ho·Wo, N = Cout/g, K = (Cin/g)·kh·kw. A depthwise conv
  (g = Cin) is Cin tiny GEMMs with K = kh·kw, exactly as SCALE-Sim splits ``DP`` layers per channel —
  its poor array utilization is real and is reported as such.
* ``linear``: M = rows of the input (e.g. sequence length), N = out_features, K = in_features.
* ``matmul`` ``[..., S, K] @ [..., K, T]``: one GEMM M=S, N=T, K=K per leading index (e.g. per attention
  head); both operands are activations.
* **fusion**: a ``batchnorm`` whose input is a conv/linear output is folded into its weights, and a
  ``relu``/``relu6`` on such an output is applied in the array's output stage (as inference compilers and
  NPUs do), when that output has no other consumer. Fused layers cost nothing and their intermediate
  tensors never reach memory. Everything else runs on the vector unit as ``elements × ops_per_element``.
* ``flatten``/``split_heads``/``merge_heads``/``first_token`` are layout changes and cost nothing.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from .graph import Layer, Model

FUSABLE_OPS = frozenset({"batchnorm", "relu", "relu6"})
FREE_OPS = frozenset({"flatten", "split_heads", "merge_heads", "first_token"})


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
    fused: bool = False


def lower_layer(layer: Layer, fused: bool = False) -> Work:
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
    if op in FREE_OPS or fused:
        return Work(layer, None, None, 0, fused)
    elements = math.prod(layer.out_shape)
    if op in ("maxpool", "avgpool"):
        elements *= a["kernel"][0] * a["kernel"][1]
    elif op in ("global_avgpool", "mean_pool"):
        elements = math.prod(layer.in_shapes[0])
    elif op in ("add", "mul"):
        elements *= len(layer.inputs) - 1
    return Work(layer, None, op, elements)


def lower(model: Model) -> list[Work]:
    """Lower every layer, fusing batchnorm/relu/relu6 into a preceding conv/linear (module docstring)."""
    consumers: dict[str, int] = {}
    for layer in model.layers:
        for t in layer.inputs:
            consumers[t] = consumers.get(t, 0) + 1
    gemm_rooted: set[str] = set()
    works = []
    for layer in model.layers:
        src = layer.inputs[0] if layer.inputs else ""
        fused = layer.op in FUSABLE_OPS and src in gemm_rooted and consumers.get(src) == 1
        if layer.op in ("conv2d", "linear") or fused:
            gemm_rooted.add(layer.name)
        works.append(lower_layer(layer, fused))
    return works
