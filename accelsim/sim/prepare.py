"""The model's side of a run: what :func:`accelsim.sim.engine.simulate` takes from the model, the layers'
precisions and the batch alone, computed once per Model object (a frozen dataclass) for the last few models
(a sweep or a comparison costs one model many times): the lowering and each layer's output tensor
(:func:`lowered`), the precisions, tensor and parameter bytes and the layers' hw-independent inputs
(:func:`precisions`), the GEMMs' shapes as arrays (:func:`gemm_columns`), and the GEMM layers' inputs of the
cost model as far as the model decides them, per layer and as a group's columns (:func:`gemm_statics`).
"""
from __future__ import annotations

import math
from bisect import bisect_left
from dataclasses import replace

import numpy as np

from ..graph import Model
from ..hw.mac import Precision, parse_precision
from ..lowering import Work, batched, lower
from ..ops import OPS, Gemm
from ..memo import remember
from .columns import Columns
from .report_types import model_bytes

TOKEN_BYTES = 4  # token ids are read as int32

_GEMMS: dict = {}


def gemm_columns(works: list[Work]) -> tuple:
    """(work indices of the GEMMs, their Gemm, then m, n, k, count and grouped as read-only arrays over them), for
    the last few lowerings."""
    def make():
        idx = [i for i, w in enumerate(works) if w.gemm is not None]
        g = [works[i].gemm for i in idx]
        arrays = [np.array([getattr(x, a) for x in g], dtype=np.int64) for a in ("m", "n", "k", "count")]
        arrays.append(np.array([x.grouped for x in g], dtype=bool))
        for x in arrays:
            x.flags.writeable = False
        return (idx, g, *arrays)
    return remember(_GEMMS, works, None, make)


_RATES: dict = {}


def rate_kinds(works: list[Work], precs: list[Precision]) -> tuple:
    """(the GEMMs' distinct (Precision, B is weights) in order of first appearance, keyed by the precision's name,
    then per GEMM of :func:`gemm_columns` the position of its own in that list as an array): what a GEMM's MACs per
    PE-cycle depend on, for the last few plans (``precs``)."""
    def make():
        idx, gemms = gemm_columns(works)[:2]
        kinds, at, which = [], {}, []
        for i, g in zip(idx, gemms):
            key = (precs[i].name, g.b_is_weight)
            if key not in at:
                at[key] = len(kinds)
                kinds.append((precs[i], g.b_is_weight))
            which.append(at[key])
        which = np.array(which, dtype=np.intp)
        which.flags.writeable = False
        return kinds, which
    return remember(_RATES, precs, None, make)


def tensor_bytes(model: Model, precs: list[Precision], batch: int) -> dict[str, float]:
    """Bytes of every tensor of a batch (layer outputs and model inputs)."""
    sizes = {}
    first_use = {}
    for layer, p in zip(model.layers, precs):
        for t in layer.inputs:
            first_use.setdefault(t, p)
        sizes[layer.name] = math.prod(layer.out_shape) * batch * p.act_bytes
    ids = {layer.inputs[0] for layer in model.layers if layer.op == "embedding"}   # token ids
    for name, shape in model.inputs.items():
        p = first_use.get(name)
        sizes[name] = math.prod(shape) * batch * (TOKEN_BYTES if name in ids or p is None else p.act_bytes)
    return sizes


def sinks_of(works: list[Work]) -> dict[str, str]:
    """Layer → the tensor its fused chain materializes (itself, unless relu/bn were fused after it)."""
    root: dict[str, str] = {}
    sink: dict[str, str] = {}
    for w in works:
        name = w.layer.name
        root[name] = root[w.layer.inputs[0]] if w.fused else name
        sink[root[name]] = name
    return {name: sink[r] for name, r in root.items()}


_LOWERED: dict = {}
_PLANS: dict = {}


def lowered(model: Model, batch: int) -> tuple[list[Work], dict[str, str]]:
    """``batched(lower(model), batch)`` and its :func:`sinks_of`, computed once per Model object (a frozen
    dataclass: its lowering cannot change) for the last few models; a sweep or a comparison costs one model
    many times."""
    def make():
        works = batched(lower(model), batch)
        return works, sinks_of(works)
    return remember(_LOWERED, model, batch, make)


def precisions(model: Model, works: list[Work], sinks: dict, precision, layer_precision, batch: int) -> tuple:
    """(the default Precision, every layer's Precision, the tensors' bytes (:func:`tensor_bytes`), the
    parameters' bytes (:func:`~accelsim.sim.report_types.model_bytes`), the layers' :func:`static_inputs`, the
    sums of the layers' ``macs`` and ``params`` in layer order) for ``model`` lowered as ``works``:
    ``layer_precision`` wins over the model's per-layer precision, which wins over ``precision``. A function of
    the model, the precision names and the batch alone, remembered for the last few."""
    def make():
        default = parse_precision(precision)
        chosen = {w.layer.name: w.layer.precision for w in works if w.layer.precision} | dict(layer_precision or {})
        precs = [parse_precision(chosen[w.layer.name]) if w.layer.name in chosen else default for w in works]
        sizes = tensor_bytes(model, precs, batch)
        inputs = static_inputs(works, precs, sizes, sinks, batch)
        macs = (w.gemm.macs if w.gemm is not None and x is not None else 0 for w, x in zip(works, inputs))
        fixed = {"macs": sum(macs), "params": sum(w.layer.params for w in works)}
        return default, precs, sizes, model_bytes(model, precs), inputs, fixed
    plan = tuple((name, str(p)) for name, p in dict(layer_precision or {}).items())
    return remember(_PLANS, model, (str(precision), plan, batch), make)


def static_inputs(works: list[Work], precs: list[Precision], sizes, sinks: dict, n: int) -> list:
    """Per layer, what the engine's ``_gemm_layer`` or ``_vector_inputs`` take from the model, its precisions
    and the batch ``n`` alone (None for a layer that does no work)."""
    out: list = []
    for w, p in zip(works, precs):
        layer, g = w.layer, w.gemm
        if w.fused or (g is None and w.vector_op is None):
            out.append(None)
        elif g is not None:
            b_b = g.k * g.n * g.count * p.weight_bytes if g.b_is_weight else sizes[layer.inputs[1]]
            b_elem = p.weight_bytes if g.b_is_weight else p.act_bytes
            out.append((layer, OPS[layer.op].footprint, g.b_is_weight, sizes[layer.inputs[0]], b_b,
                        sizes[sinks[layer.name]], p.act_bytes, b_elem))
        else:
            ceils = [math.ceil(sizes[t]) for t in layer.inputs]
            dram_w = math.ceil(math.prod(layer.out_shape) * n * p.weight_bytes) if layer.op == "embedding" else 0
            out.append((layer.inputs, ceils, w.vector_elements, w.vector_op, OPS[w.vector_op].vector_ops,
                        sum(sizes[t] for t in layer.inputs), sizes[layer.name], dram_w, math.ceil(sizes[layer.name])))
    return out


_STATICS: dict = {}


def gemm_statics(works: list[Work], inputs: list, precs: list[Precision], n: int, gather: bool) -> "GemmStatics":
    """:class:`GemmStatics` of the GEMM layers of ``works`` (a batch of ``n``) with :func:`static_inputs`
    ``inputs`` under ``memory.strided_gather`` = ``gather``, remembered for the last few (``inputs``: one plan
    of one model)."""
    return remember(_STATICS, inputs, gather, lambda: GemmStatics(works, inputs, precs, n, gather), keep=16)


class GemmStatics:
    """What the engine's ``_gemm_layer`` takes from the model, its precisions and the batch alone, for every GEMM
    layer of one plan: ``layers[i]`` = (``values``, the tensor A is read from, the tensor B is read from or None
    when B is weights, ``key``), ``values`` = (A's bytes, the bytes of A the layer reads — fewer when
    ``gather`` and a strided or dilated conv reads fewer pixels —, B's bytes, the output's bytes, A's and B's
    element bytes), ``key`` = (B is weights, the precision's name, the Python types of ``values``): what of
    the layer's grouping the model decides. :meth:`columns` gives a group's columns."""

    def __init__(self, works: list[Work], inputs: list, precs: list[Precision], n: int, gather: bool):
        self.works = works
        self.layers: dict[int, tuple] = {}
        for i, static in enumerate(inputs):
            if static is None or works[i].gemm is None:
                continue
            layer, foot, b_is_weight, a_b, b_b, o_b, act, b_elem = static
            a_used = min(foot(layer.attrs, list(layer.in_shapes), layer.out_shape) * n * act, a_b) \
                if gather and foot is not None else a_b
            values = (a_b, a_used, b_b, o_b, act, b_elem)
            key = (b_is_weight, precs[i].name, *map(type, values))
            self.layers[i] = (values, layer.inputs[0], None if b_is_weight else layer.inputs[1], key)
        self._groups: dict = {}

    def columns(self, idx: list[int], cols: Columns) -> tuple:
        """(the six ``values`` of the layers ``idx`` (ascending) as columns (``cols``), the first layer's Work
        with the group's Gemm: m, n, k and count as columns), for the last few groups."""
        key = (tuple(idx), cols.configs is None)
        got = self._groups.get(key)
        if got is None:
            if len(self._groups) >= 16:
                self._groups.clear()
            gidx, g, *shape = gemm_columns(self.works)
            at = [bisect_left(gidx, i) for i in idx]                # (gidx ascending)
            take = slice(None) if len(at) == len(gidx) else at     # (all of them: in order)
            work = replace(self.works[idx[0]], gemm=Gemm(*(cols.of_ints(x[take]) for x in shape[:4]),
                                                          g[at[0]].b_is_weight))
            values = [cols(list(column)) for column in zip(*(self.layers[i][0] for i in idx))]
            for v in values:
                if type(v) is np.ndarray:
                    v.flags.writeable = False
            got = self._groups[key] = (values, work)
        return got
