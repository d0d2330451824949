"""Lowering: every compute op becomes GEMMs for the array; everything else becomes vector-unit work.

What each op lowers to is part of its registry entry (:mod:`accelsim.ops`): a :class:`~accelsim.ops.Gemm`
(``conv2d``: one GEMM per group, M = Ho·Wo, N = Cout/g, K = (Cin/g)·kh·kw, so a depthwise conv is Cin tiny
GEMMs exactly as SCALE-Sim splits ``DP`` layers — its poor array utilization is real and reported as such;
``linear``: M = rows of the input, N = out_features, K = in_features; ``matmul``: one GEMM per leading index,
both operands activations), vector work ``elements × ops_per_element``, or nothing (layout changes).

**Fusion**: a ``fusable`` op (batchnorm, relu, relu6) whose input is a conv/linear output with no other
consumer is folded into that layer's weights or applied in the array's output stage (as inference
compilers and NPUs do). Fused layers cost nothing and their intermediate tensors never reach memory.

**Batch** (:func:`batched`): shapes describe one inference (:attr:`accelsim.graph.Model.batch_axis`); a batch of
``n`` inferences scales each layer's work, never its weights: a GEMM against weights stacks the batch along M
(``m · n``: every weight tile is fetched once and reused by all n samples, as a stationary tile is reused along
the time dimension), a GEMM of two activations (attention) runs once per sample (``count · n``), and vector work
covers ``elements · n``.

**Bounds**: a layer over the model size bounds (:func:`accelsim.graph.size_problem`: dimensions ≤ 2**31, work
≤ 2**48 MACs or vector elements) raises :class:`~accelsim.errors.MappingError` here, whatever built the
:class:`~accelsim.graph.Model`, so the cost model's int64 closed forms never wrap.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

from .errors import MappingError, short
from .config.fields import MAX_DIM, MAX_MACS, bound_text
from .graph import Layer, Model, size_problem
from .ops import OPS, Gemm

__all__ = ["Gemm", "Work", "batched", "lower", "lower_layer"]


@dataclass(frozen=True, slots=True)
class Work:
    """What one layer asks of the hardware: a GEMM for the array, or ``vector_elements`` of ``vector_op``."""
    layer: Layer
    gemm: Gemm | None
    vector_op: str | None
    vector_elements: int
    fused: bool = False


def lower_layer(layer: Layer, fused: bool = False) -> Work:
    problem = size_problem(layer.op, layer.attrs, list(layer.in_shapes), layer.out_shape)
    if problem:
        raise MappingError(f"layer {short(layer.name)!r}: {layer.op}: {problem}")
    d = OPS[layer.op]
    if d.gemm is not None:
        return Work(layer, d.gemm(layer.attrs, list(layer.in_shapes), layer.out_shape), None, 0)
    if fused or not d.vector_ops:
        return Work(layer, None, None, 0, fused)
    return Work(layer, None, layer.op, d.elements(layer.attrs, list(layer.in_shapes), layer.out_shape))


def is_gemm_with_weights(layer: Layer) -> bool:
    """A conv/linear: an op the array runs against a weight tensor (what fusable ops fold into)."""
    return OPS[layer.op].gemm is not None and bool(OPS[layer.op].weights(layer.attrs, list(layer.in_shapes)))


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
        fused = OPS[layer.op].fusable and src in gemm_rooted and consumers.get(src) == 1
        if fused or is_gemm_with_weights(layer):
            gemm_rooted.add(layer.name)
        works.append(lower_layer(layer, fused))
    return works


def batched(works: list[Work], n: int) -> list[Work]:
    """The works of a batch of ``n`` inferences (module docstring); the model size bounds apply to the batch."""
    if n == 1:
        return works
    out = []
    for w in works:
        g = w.gemm
        if g is not None:
            g = replace(g, m=g.m * n) if g.b_is_weight else replace(g, count=g.count * n)
            if max(g.m, g.count) > MAX_DIM or g.macs > MAX_MACS:
                raise MappingError(f"layer {short(w.layer.name)!r}: batch {n}: GEMM m={g.m}, count={g.count}: each "
                                   f"must be ≤ {bound_text(MAX_DIM)} and the MACs ≤ {bound_text(MAX_MACS)}")
        elements = w.vector_elements * n
        if elements > MAX_MACS:
            raise MappingError(f"layer {short(w.layer.name)!r}: batch {n}: more than {bound_text(MAX_MACS)} "
                               "vector elements")
        out.append(replace(w, gemm=g, vector_elements=elements))
    return out
