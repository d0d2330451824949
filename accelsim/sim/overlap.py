"""Vector work that overlaps the array: a pipelined vector unit running a GEMM's epilogue.

With ``timing.vector_overlap: epilogue`` the vector unit works on a GEMM layer's output while the array is
still producing it, as TPU v1's activation pipeline does on the accumulators' outputs (Jouppi et al.,
ISCA 2017 §2: the matrix unit writes into the accumulators and the activation unit applies the
nonlinearity, normalization or pooling on their outputs, the stages running concurrently).

**Dependency rule.** A vector layer joins the chain of the GEMM ``G`` that precedes it when

1. its op can run as an epilogue (the registry's ``OpDef.epilogue``: ``element`` — element-wise ops, which
   can work on any finished output tile; ``row`` — softmax and layernorm over the last axis, which need every
   tile of an output row),
2. it reads, as its first input, the tensor the chain ends in (``G``'s output or the previous chain layer's),
3. nothing but layout changes or fused layers stand between it and the chain in execution order.

Other inputs (a residual, an attention mask) were produced earlier and are ready. Any other layer ends the
chain.

**Cost.** ``G`` completes its output in ``t`` equal pieces, one after another: its output tiles (``reps``
repetitions × the tiles of the array dimensions that are not the reduction K) for an all-``element`` chain;
for a chain with a ``row`` op, those tiles grouped by output row (÷ the tiles of N). The chain's vector
layers, ``V`` cycles in all, work piece by piece behind ``G`` (``g`` cycles), a two-stage pipeline::

    makespan = max(g, V) + min(g, V) / t

so the vector layers add ``makespan − g`` cycles to the run, shared among them in proportion to their own
cycles (``bound`` = ``overlapped``). ``vector_cycles`` keeps each layer's busy time.
"""
from __future__ import annotations

from dataclasses import replace

from ..config.hw import HWConfig
from ..hw import energy as E
from ..hw import xp
from ..ops import OPS


def _pieces(cost, compat: dict, own: dict, row: bool):
    """Pieces of output a GEMM completes one after another (module docstring)."""
    flow = compat["flow"]
    tiles = {flow.rows: own["row_folds"], flow.cols: own["col_folds"]}
    pieces = compat["reps"]
    for dim, n_tiles in tiles.items():
        if dim != "k" and not (row and dim == "n"):
            pieces = pieces * n_tiles
    return pieces


def overlap(works, layers: list, times: dict, hw: HWConfig) -> list:
    """The layer costs with each epilogue chain's vector layers reduced to the cycles they add (module
    docstring); layers outside a chain are unchanged."""
    layers = list(layers)
    chain: list[int] = []
    head, tail = None, None         # the chain's GEMM index and the tensor its last layer produces
    for i, w in enumerate(works):
        cost = layers[i]
        if w.gemm is not None:
            _settle(works, layers, times, head, chain, hw)
            head, tail, chain = i, w.layer.name, []
        elif w.fused or (w.vector_op is None and cost.cycles == 0):
            if tail is not None and w.layer.inputs and w.layer.inputs[0] == tail:
                tail = w.layer.name          # fused batchnorm/relu or a layout change: the chain ends in its output
        elif head is not None and OPS[w.layer.op].epilogue and w.layer.inputs and w.layer.inputs[0] == tail:
            chain.append(i)
            tail = w.layer.name
        else:
            _settle(works, layers, times, head, chain, hw)
            head, tail, chain = None, None, []
    _settle(works, layers, times, head, chain, hw)
    return layers


def _settle(works, layers: list, times: dict, head, chain: list[int], hw: HWConfig) -> None:
    """Rewrite the chain's vector layers with their exposed cycles."""
    if head is None or not chain:
        return
    compat, own, _ = times[head]
    row = any(OPS[works[i].layer.op].epilogue == "row" for i in chain)
    g = layers[head].cycles
    v = xp.total(layers[i].cycles for i in chain)
    t = xp.maximum(_pieces(layers[head], compat, own, row), 1)
    added = xp.maximum(g, v) + xp.minimum(g, v) / t - g
    for i in chain:
        c = layers[i]
        share = xp.ceil(xp.ratio(added * c.cycles, v))
        energy = replace(c.energy, static_pj=E.static_pj(hw, share))
        timing = replace(c.timing, cycles=share, stall_cycles=0, bound="overlapped", stall_by_level={})
        layers[i] = replace(c, timing=timing, energy=energy)
