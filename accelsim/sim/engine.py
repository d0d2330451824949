"""Graph × hardware → RunReport: per-layer cycles, traffic, stalls and energy, plus totals.

For each GEMM layer at precision p with ``f = macs_per_pe_cycle`` (see :mod:`accelsim.hw.mac`):

* ``scalesim_cycles`` — SCALE-Sim 3.0.0's ``Total Cycles`` for the unpacked GEMM (1-byte words, no
  precision), summed over ``count`` (groups/heads) as SCALE-Sim's per-channel ``DP`` rows sum;
* ``compute_cycles`` — accelsim's array time: the fold model on ``K' = ceil(K/f)`` without SCALE-Sim's −1;
* ``vector_cycles`` — ``ceil(elements · ops_per_element / lanes)`` on the vector unit (for non-GEMM layers);
* ``cycles`` — the roofline of busy (compute + vector) cycles against DRAM transfer cycles
  (:mod:`accelsim.hw.memory`); ``stall_cycles = cycles − busy``.
Energy follows :mod:`accelsim.hw.energy`. Layers run one after another (no inter-layer overlap).
"""
from __future__ import annotations

import math

import numpy as np

from ..config.hw import HWConfig
from ..graph import Model
from ..hw import energy as E
from ..hw.dataflow import fold_timing
from ..hw.mac import Precision, macs_per_pe_cycle, parse_precision
from ..hw.memory import Traffic, gemm_traffic, roofline, usable_bytes
from ..lowering import Work, lower
from .report_types import LayerCost, RunReport, totals

TOKEN_BYTES = 4  # token ids are read as int32


def _timings(works: list[Work], precs: list[Precision], hw: HWConfig) -> dict[int, tuple]:
    """Vectorized fold timing for every GEMM: index → (compat row, own row, macs_per_cycle)."""
    idx = [i for i, w in enumerate(works) if w.gemm is not None]
    if not idx:
        return {}
    g = [works[i].gemm for i in idx]
    m, n, k = (np.array([getattr(x, a) for x in g], dtype=np.int64) for a in ("m", "n", "k"))
    rate = np.array([macs_per_pe_cycle(hw.pe, precs[i], works[i].gemm.b_is_weight) for i in idx], dtype=float)
    a = hw.array
    compat = fold_timing(m, n, k, a.rows, a.cols, a.dataflow)
    own = fold_timing(m, n, np.ceil(k / rate - 1e-9).astype(np.int64), a.rows, a.cols, a.dataflow)
    return {i: (compat, own, j, float(rate[j])) for j, i in enumerate(idx)}


def _tensor_bytes(model: Model, precs: list[Precision]) -> dict[str, float]:
    sizes = {}
    first_use = {}
    for layer, p in zip(model.layers, precs):
        for t in layer.inputs:
            first_use.setdefault(t, p)
        sizes[layer.name] = math.prod(layer.out_shape) * p.act_bytes
    for name, shape in model.inputs.items():
        p = first_use.get(name)
        is_ids = any(l.op == "embedding" and l.inputs[0] == name for l in model.layers)
        sizes[name] = math.prod(shape) * (TOKEN_BYTES if is_ids or p is None else p.act_bytes)
    return sizes


def _sinks(works: list[Work]) -> dict[str, str]:
    """Layer → the tensor its fused chain materializes (itself, unless relu/bn were fused after it)."""
    root: dict[str, str] = {}
    sink: dict[str, str] = {}
    for w in works:
        name = w.layer.name
        root[name] = root[w.layer.inputs[0]] if w.fused else name
        sink[root[name]] = name
    return {name: sink[r] for name, r in root.items()}


def _on_chip(works: list[Work], sizes: dict[str, float], hw: HWConfig) -> set[str]:
    """Materialized tensors that stay on chip between producer and consumers (fit ifmap and ofmap SRAM)."""
    mem = hw.memory
    cap = min(usable_bytes(mem.ifmap_sram_kib, mem.double_buffer), usable_bytes(mem.ofmap_sram_kib, mem.double_buffer))
    consumed = {t for w in works if not w.fused for t in w.layer.inputs}
    return {w.layer.name for w in works if w.layer.name in consumed and sizes[w.layer.name] <= cap}


def simulate(model: Model, hw: HWConfig, precision: str = "w8a8", layer_precision=None) -> RunReport:
    """Cost every layer of ``model`` on ``hw`` at ``precision``; ``layer_precision`` (layer name → precision)
    wins over the model YAML's per-layer ``precision:``, which wins over ``precision``."""
    default = parse_precision(precision)
    works = lower(model)
    chosen = {w.layer.name: w.layer.precision for w in works if w.layer.precision} | dict(layer_precision or {})
    precs = [parse_precision(chosen[w.layer.name]) if w.layer.name in chosen else default for w in works]
    timing = _timings(works, precs, hw)
    sizes = _tensor_bytes(model, precs)
    resident = _on_chip(works, sizes, hw)
    sinks = _sinks(works)
    layers = tuple(_layer_cost(w, p, timing.get(i), sizes, resident, sinks[w.layer.name], hw)
                   for i, (w, p) in enumerate(zip(works, precs)))
    config = {"rows": hw.array.rows, "cols": hw.array.cols, "dataflow": hw.array.dataflow.name.lower(),
              "clock_mhz": hw.clock_mhz, "dram_gbps": hw.memory.dram_gbps, "double_buffer": hw.memory.double_buffer,
              "on_chip_activations": "tensors that fit in min(ifmap, ofmap) usable SRAM stay on chip"}
    return RunReport(model.name, hw.name, default.name, layers, totals(layers, hw, model, precs), config)


def _layer_cost(w: Work, p: Precision, t, sizes, resident, sink: str, hw: HWConfig) -> LayerCost:
    layer, mem = w.layer, hw.memory
    if w.fused:
        return LayerCost.idle(layer.name, layer.op, p.name, p.a_bits, p.w_bits, layer.params, "fused")
    reads_a = {name: name not in resident for name in layer.inputs}
    write_o = sink not in resident
    bpc = mem.dram_gbps * 1e3 / hw.clock_mhz
    if t is None:
        return _vector_cost(w, p, sizes, reads_a, write_o, bpc, hw)
    compat, own, j, rate = t
    g, c = w.gemm, w.gemm.count
    a_b, o_b = sizes[layer.inputs[0]], sizes[sink]
    b_b = g.k * g.n * c * p.weight_bytes if g.b_is_weight else sizes[layer.inputs[1]]
    caps = tuple(usable_bytes(s, mem.double_buffer) for s in (mem.ifmap_sram_kib, mem.filter_sram_kib, mem.ofmap_sram_kib))
    tr = gemm_traffic(g.m, g.n, g.k, c, a_b, b_b, o_b, reads_a[layer.inputs[0]], write_o, hw.pe.acc_bits / 8,
                      hw.array.rows, hw.array.cols, hw.array.dataflow, caps,
                      (p.act_bytes, p.weight_bytes if g.b_is_weight else p.act_bytes))
    if not g.b_is_weight and not reads_a[layer.inputs[1]]:
        tr = Traffic(tr.dram_ifmap_bytes, max(0, tr.dram_filter_bytes - int(b_b)), tr.dram_ofmap_bytes, tr.dram_psum_bytes)
    busy = int(own.cycles[j]) * c
    memory, cycles = roofline(busy, tr.total, bpc, mem.double_buffer)
    words = [int(x[j]) * c for x in (compat.sram_ifmap_reads, compat.sram_filter_reads, compat.sram_ofmap_writes)]
    b_width = p.weight_bytes if g.b_is_weight else p.act_bytes
    partial = max(0, words[2] - g.m * g.n * c)
    e_sram = (E.sram_pj_per_byte(hw, mem.ifmap_sram_kib) * (words[0] * p.act_bytes + tr.dram_ifmap_bytes)
              + E.sram_pj_per_byte(hw, mem.filter_sram_kib) * (words[1] * b_width + tr.dram_filter_bytes)
              + E.sram_pj_per_byte(hw, mem.ofmap_sram_kib) * (o_b + 2 * partial * hw.pe.acc_bits / 8))
    e_mac = g.macs * E.mac_energy_pj(hw, p, rate)
    return LayerCost(
        layer.name, layer.op, p.name, p.a_bits, p.w_bits, g.m, g.n, g.k, c, g.macs, layer.params,
        int(own.row_folds[j] * own.col_folds[j]) * c, rate, busy, int(compat.scalesim_cycles[j]) * c, 0, memory,
        cycles, cycles - busy, "memory" if memory > busy else "compute",
        float(compat.utilization[j]), float(compat.mapping_efficiency[j]), *words,
        tr.dram_ifmap_bytes, tr.dram_filter_bytes, tr.dram_ofmap_bytes, tr.dram_psum_bytes,
        e_mac, e_sram, tr.total * hw.energy.dram_pj_per_byte, 0.0, E.static_pj(hw, cycles))


def _vector_cost(w: Work, p: Precision, sizes, reads_a, write_o, bpc: float, hw: HWConfig) -> LayerCost:
    layer = w.layer
    ops = w.vector_elements * hw.vector.ops_per_element.get(w.vector_op, 1.0) if w.vector_op else 0.0
    busy = math.ceil(ops / hw.vector.lanes)
    if w.vector_op is None:  # layout change or folded batchnorm: no work, no traffic
        return LayerCost.idle(layer.name, layer.op, p.name, p.a_bits, p.w_bits, layer.params)
    dram_in = int(sum(math.ceil(sizes[t]) for t in layer.inputs if reads_a[t]))
    dram_w = int(math.ceil(math.prod(layer.out_shape) * p.weight_bytes)) if layer.op == "embedding" else 0
    dram_out = int(math.ceil(sizes[layer.name])) if write_o else 0
    total = dram_in + dram_w + dram_out
    memory, cycles = roofline(busy, total, bpc, hw.memory.double_buffer)
    sram_bytes = sum(sizes[t] for t in layer.inputs) + sizes[layer.name] + total
    e_sram = sram_bytes * E.sram_pj_per_byte(hw, hw.memory.ofmap_sram_kib)
    e_vec = ops * hw.energy.vector_op_pj * hw.energy.tech_scale
    return LayerCost(
        layer.name, layer.op, p.name, p.a_bits, p.w_bits, 0, 0, 0, 0, 0, layer.params, 0, 0.0, 0, 0, busy, memory,
        cycles, cycles - busy, "memory" if memory > busy else "vector", 0.0, 0.0, 0, 0, 0,
        dram_in, dram_w, dram_out, 0, 0.0, e_sram, total * hw.energy.dram_pj_per_byte, e_vec, E.static_pj(hw, cycles))
