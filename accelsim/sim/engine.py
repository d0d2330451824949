"""Graph × hardware → RunReport: per-layer cycles, utilization and SRAM traffic, plus totals.

For each GEMM layer at precision p with ``f = macs_per_pe_cycle`` (see :mod:`accelsim.hw.mac`):

* ``scalesim_cycles`` — SCALE-Sim 3.0.0's ``Total Cycles`` for the unpacked GEMM (1-byte words, no
  precision), summed over ``count`` (groups/heads) as SCALE-Sim sums its per-channel ``DP`` layers;
* ``compute_cycles`` — accelsim's count: the fold model on ``K' = ceil(K/f)`` without SCALE-Sim's −1,
  times ``count``;
* ``vector_cycles`` — ``ceil(elements · ops_per_element / lanes)`` on the vector unit (no overlap with the
  array is assumed);
* ``cycles`` = compute + vector.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np

from ..config.hw import HWConfig
from ..graph import Model
from ..hw.dataflow import fold_timing
from ..hw.mac import Precision, macs_per_pe_cycle, parse_precision
from ..lowering import Work, lower


@dataclass(frozen=True, slots=True)
class LayerCost:
    name: str
    op: str
    precision: str
    m: int
    n: int
    k: int
    count: int
    macs: int
    params: int
    folds: int
    compute_cycles: int
    scalesim_cycles: int
    vector_cycles: int
    cycles: int
    utilization: float
    mapping_efficiency: float
    sram_ifmap_reads: int
    sram_filter_reads: int
    sram_ofmap_writes: int

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class RunReport:
    model: str
    hw: str
    precision: str
    layers: tuple[LayerCost, ...]
    totals: dict = field(default_factory=dict)
    config: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"model": self.model, "hw": self.hw, "precision": self.precision, "config": self.config,
                "layers": [c.to_dict() for c in self.layers], "totals": self.totals}


def _layer_precision(work: Work, default: Precision) -> Precision:
    return parse_precision(work.layer.precision) if work.layer.precision else default


def simulate(model: Model, hw: HWConfig, precision: str = "w8a8") -> RunReport:
    """Cost every layer of ``model`` on ``hw`` (closed form, vectorized over layers)."""
    default = parse_precision(precision)
    works = lower(model)
    precs = [_layer_precision(w, default) for w in works]
    gemm_idx = [i for i, w in enumerate(works) if w.gemm is not None]
    rows, cols, flow = hw.array.rows, hw.array.cols, hw.array.dataflow
    g = [works[i].gemm for i in gemm_idx]
    m, n, k, count = (np.array([getattr(x, a) for x in g], dtype=np.int64) for a in ("m", "n", "k", "count"))
    rate = np.array([macs_per_pe_cycle(hw.pe, precs[i], works[i].gemm.b_is_weight) for i in gemm_idx])
    compat = fold_timing(m, n, k, rows, cols, flow)
    k_packed = np.ceil(k / rate - 1e-9).astype(np.int64) if len(g) else k
    own = fold_timing(m, n, k_packed, rows, cols, flow)
    slot = {i: j for j, i in enumerate(gemm_idx)}
    lanes, table = hw.vector.lanes, hw.vector.ops_per_element
    layers = []
    for i, w in enumerate(works):
        j = slot.get(i)
        vec = math.ceil(w.vector_elements * table.get(w.vector_op, 1.0) / lanes) if w.vector_op else 0
        if j is None:
            layers.append(LayerCost(w.layer.name, w.layer.op, precs[i].name, 0, 0, 0, 0, 0, w.layer.params, 0, 0, 0,
                                    vec, vec, 0.0, 0.0, 0, 0, 0))
            continue
        c = int(count[j])
        layers.append(LayerCost(
            w.layer.name, w.layer.op, precs[i].name, int(m[j]), int(n[j]), int(k[j]), c, w.gemm.macs, w.layer.params,
            int(own.row_folds[j] * own.col_folds[j]) * c, int(own.cycles[j]) * c, int(compat.scalesim_cycles[j]) * c,
            vec, int(own.cycles[j]) * c + vec, float(compat.utilization[j]), float(compat.mapping_efficiency[j]),
            int(compat.sram_ifmap_reads[j]) * c, int(compat.sram_filter_reads[j]) * c,
            int(compat.sram_ofmap_writes[j]) * c))
    return RunReport(model.name, hw.name, default.name, tuple(layers), _totals(layers, hw, default),
                     {"rows": rows, "cols": cols, "dataflow": flow.name.lower(), "clock_mhz": hw.clock_mhz})


def _totals(layers: list[LayerCost], hw: HWConfig, precision: Precision) -> dict:
    cycles = sum(c.cycles for c in layers)
    compute = sum(c.compute_cycles for c in layers)
    macs = sum(c.macs for c in layers)
    params = sum(c.params for c in layers)
    w_bytes = params * (precision.w_bits / 8)
    return {
        "layers": len(layers), "macs": macs, "params": params, "cycles": cycles, "compute_cycles": compute,
        "vector_cycles": sum(c.vector_cycles for c in layers),
        "scalesim_cycles": sum(c.scalesim_cycles for c in layers),
        "latency_ms": cycles / (hw.clock_mhz * 1e3),
        "array_utilization": macs / (compute * hw.array.rows * hw.array.cols) if compute else 0.0,
        "model_size_mb": w_bytes / 1e6,
    }
