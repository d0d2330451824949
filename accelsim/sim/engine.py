"""Graph × hardware → RunReport: per-layer cycles, traffic per memory level, stalls and energy, plus totals.

For each GEMM layer at precision p with ``f = macs_per_pe_cycle`` (see :mod:`accelsim.hw.mac`):

* ``scalesim_cycles`` — SCALE-Sim 3.0.0's ``Total Cycles`` for the unpacked GEMM (1-byte words, no
  precision), summed over ``count`` (groups/heads) as SCALE-Sim's per-channel ``DP`` rows sum; always the
  closed form, whatever the timing strategy;
* ``compute_cycles`` — the array's busy time from the timing strategy (default :class:`AnalyticalTiming`: the
  fold model of :mod:`accelsim.hw.dataflow` on ``K' = ceil(K/f)`` without SCALE-Sim's −1, with the hw
  config's ``timing.stationary_double_buffer``), raised to what any on-chip level with a bandwidth can feed
  (``ceil(bytes moved / bytes_per_cycle)``; the difference is that level's stall);
* ``vector_cycles`` — ``ceil(elements · ops_per_element / lanes)`` on the vector unit (for non-GEMM layers);
* ``cycles`` — busy time combined with DRAM transfers per :mod:`accelsim.hw.schedule` (per layer or per
  fold, with or without load/store phases); ``stall_cycles = cycles − busy``.

Traffic per level and energy follow :mod:`accelsim.hw.memory` and :mod:`accelsim.hw.energy`. Layers run one
after another (no inter-layer overlap). A timing strategy is any object with ``fold_timing(m, n, k, hw) ->
FoldTiming`` (the cycle-level emulator plugs in here).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Protocol

import numpy as np

from ..config.hw import HWConfig
from ..config.memory import OPERANDS
from ..graph import Model
from ..hw import energy as E
from ..hw import xp
from ..hw.dataflow import FoldTiming, fold_timing, grouped_input_words
from ..hw.mac import Precision, macs_per_pe_cycle, parse_precision
from ..errors import ConfigError
from ..hw.memory import GemmTensors, LevelTraffic, capacity, dram_traffic, level_traffic
from ..hw.placement import Placement, place
from ..hw.schedule import FoldShape, fold_schedule, roofline
from ..lowering import Work, batched, lower
from ..ops import OPS
from .overlap import overlap
from .report_types import Energy, LayerCost, RunReport, Timing, Traffic, totals

TOKEN_BYTES = 4  # token ids are read as int32
MAX_BATCH = 1 << 20


class TimingModel(Protocol):
    def fold_timing(self, m: np.ndarray, n: np.ndarray, k: np.ndarray, hw: HWConfig) -> FoldTiming: ...


@dataclass(frozen=True, slots=True)
class AnalyticalTiming:
    """The closed-form fold model (:func:`accelsim.hw.dataflow.fold_timing`) with the config's options."""

    def fold_timing(self, m, n, k, hw: HWConfig) -> FoldTiming:
        a = hw.array
        return fold_timing(m, n, k, a.rows, a.cols, a.dataflow, hw.timing.stationary_double_buffer)


ANALYTICAL = AnalyticalTiming()


def _timings(works: list[Work], precs: list[Precision], hw: HWConfig, timing: TimingModel) -> dict[int, tuple]:
    """Timing of every GEMM at once: work index → (SCALE-Sim timing row, own timing row, MACs/PE-cycle). Each
    row holds one repetition of the layer's ``reps`` identical GEMMs (``count``, or 1 for a grouped conv the
    config spreads across the array: :data:`accelsim.hw.dataflow.GROUPED_MAPPINGS`) and the ``flow`` it runs.
    With hw fields that are arrays over configurations (a sweep), every value in a row is such an array."""
    idx = [i for i, w in enumerate(works) if w.gemm is not None]
    if not idx:
        return {}
    g = [works[i].gemm for i in idx]
    m, n, k, c = (np.array([getattr(x, a) for x in g], dtype=np.int64) for a in ("m", "n", "k", "count"))
    rates = [macs_per_pe_cycle(hw.pe, precs[i], works[i].gemm.b_is_weight) for i in idx]
    a = hw.array
    configs = np.broadcast_shapes(np.shape(a.rows), np.shape(a.cols), *{np.shape(r) for r in rates})
    if configs:                       # a sweep: GEMMs along axis 0, configurations along axis 1
        m, n, k, c = m[:, None], n[:, None], k[:, None], c[:, None]
        rate = np.stack([np.broadcast_to(np.asarray(r, dtype=float), configs) for r in rates])
    else:
        rate = np.array(rates, dtype=float)
    packed = np.ceil(k / rate - 1e-9).astype(np.int64)
    spread = a.grouped.flow
    sel = np.array([x.grouped and spread is not None for x in g])
    dense = np.flatnonzero(~sel)
    compat, own = [None] * len(idx), [None] * len(idx)
    own_all = timing.fold_timing(m, n, packed, hw)          # every GEMM, as a timing strategy expects them
    for rows, part in ((compat, fold_timing(m[dense], n[dense], k[dense], a.rows, a.cols, a.dataflow)),
                       (own, FoldTiming(*(np.asarray(getattr(own_all, f))[dense] for f in FoldTiming.__slots__)))):
        for j, row in zip(dense, _rows(part, len(dense), bool(configs))):
            rows[j] = row | {"reps": g[j].count, "flow": a.dataflow}
    if sel.any():                     # grouped convs spread across the array: one GEMM m × (groups·n)
        js = np.flatnonzero(sel)
        ms, ns, ks, cs = m[js], n[js] * c[js], k[js], c[js]
        serial = _rows(fold_timing(ms, n[js], ks, a.rows, a.cols, a.dataflow), len(js), bool(configs))
        spread_hw = replace(hw, array=replace(a, dataflow=spread))
        words = grouped_input_words(ms, n[js], ks, cs)
        grouped = getattr(timing, "grouped_fold_timing", None)    # a strategy may run the spread mapping itself
        mine = (grouped(js, ms, n[js], packed[js], cs, spread_hw) if grouped is not None
                else timing.fold_timing(ms, ns, packed[js], spread_hw))
        for j, row, mine, ser, wd in zip(js, _rows(fold_timing(ms, ns, ks, a.rows, a.cols, spread), len(js), bool(configs)),
                                         _rows(mine, len(js), bool(configs)), serial, words):
            compat[j] = row | {"scalesim_cycles": ser["scalesim_cycles"] * g[j].count, "sram_ifmap_reads":
                               wd if configs else int(wd), "reps": 1, "flow": spread}
            own[j] = mine | {"reps": 1, "flow": spread}
    return {i: (compat[j], own[j], rate[j] if configs else float(rate[j])) for j, i in enumerate(idx)}


def _rows(t: FoldTiming, count: int, batch: bool) -> list[dict]:
    """One dict per GEMM: Python numbers (one configuration) or arrays over configurations."""
    names = ("row_folds", "col_folds", "cycles_per_fold", "cycles", "scalesim_cycles", "utilization",
             "mapping_efficiency", "sram_ifmap_reads", "sram_filter_reads", "sram_ofmap_writes")
    if batch:
        cols = [np.broadcast_to(np.asarray(getattr(t, name)), (count,) + np.shape(getattr(t, name))[1:])
                for name in names]
        return [{name: col[j] for name, col in zip(names, cols)} for j in range(count)]
    cols = [np.asarray(getattr(t, name)).tolist() for name in names]
    return [dict(zip(names, vals)) for vals in zip(*cols)]


def _stall(stalls: dict, name: str, amount) -> None:
    """Record a stall (numbers: only when positive, so one configuration's JSON lists real stalls)."""
    if not isinstance(amount, (int, float)) or amount > 0:
        stalls[name] = amount


def _tensor_bytes(model: Model, precs: list[Precision], batch: int) -> dict[str, float]:
    """Bytes of every tensor of a batch (layer outputs and model inputs)."""
    sizes = {}
    first_use = {}
    for layer, p in zip(model.layers, precs):
        for t in layer.inputs:
            first_use.setdefault(t, p)
        sizes[layer.name] = math.prod(layer.out_shape) * batch * p.act_bytes
    for name, shape in model.inputs.items():
        p = first_use.get(name)
        is_ids = any(l.op == "embedding" and l.inputs[0] == name for l in model.layers)
        sizes[name] = math.prod(shape) * batch * (TOKEN_BYTES if is_ids or p is None else p.act_bytes)
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


def check_batch(batch) -> int:
    """The batch size, or a ConfigError naming the expected value."""
    if isinstance(batch, bool) or not isinstance(batch, int) or not 1 <= batch <= MAX_BATCH:
        raise ConfigError([f"batch: expected a positive integer ≤ {MAX_BATCH}, got {batch!r}"[:200]])
    return batch


def simulate(model: Model, hw: HWConfig, precision: str = "w8a8", layer_precision=None,
             timing: TimingModel = ANALYTICAL, batch: int = 1) -> RunReport:
    """Cost every layer of ``model`` on ``hw`` at ``precision``; ``layer_precision`` (layer name → precision)
    wins over the model YAML's per-layer ``precision:``, which wins over ``precision``. ``timing`` gives the
    array's busy time (module docstring). ``batch``: inferences run together (:func:`accelsim.lowering.batched`);
    per-layer figures are for the whole batch, totals give per-batch latency and per-inference energy."""
    n = check_batch(batch)
    default = parse_precision(precision)
    works = batched(lower(model), n)
    chosen = {w.layer.name: w.layer.precision for w in works if w.layer.precision} | dict(layer_precision or {})
    precs = [parse_precision(chosen[w.layer.name]) if w.layer.name in chosen else default for w in works]
    times = _timings(works, precs, hw, timing)
    sizes = _tensor_bytes(model, precs, n)
    sinks = _sinks(works)
    placed = place(works, precs, sizes, sinks, hw.memory, hw.array.rows * hw.array.cols)
    layers = [_layer_cost(w, p, times.get(i), sizes, placed, i, sinks[w.layer.name], hw, n)
              for i, (w, p) in enumerate(zip(works, precs))]
    if hw.timing.vector_overlap == "epilogue":
        layers = overlap(works, layers, times, hw)
    layers = tuple(_with_overheads(c, hw) for c in layers)
    mem, bw = hw.memory, hw.memory.dram.bandwidth(hw.clock_mhz)
    config = {"rows": hw.array.rows, "cols": hw.array.cols, "dataflow": hw.array.dataflow.name,
              "clock_mhz": hw.clock_mhz, "dram_gbps": bw * hw.clock_mhz / 1e3, "double_buffer": mem.double_buffer,
              "on_chip_activations": _PLACEMENT_TEXT[mem.activation_placement],
              "activation_placement": mem.activation_placement, "batch": n,
              "memory_levels": [lv.name for lv in mem.levels], "strided_gather": mem.strided_gather,
              "timing": {"model": type(timing).__name__, "stationary_double_buffer": hw.timing.stationary_double_buffer,
                         "dram_overlap": hw.timing.dram_overlap, "load_store_phases": hw.timing.load_store_phases,
                         "vector_overlap": hw.timing.vector_overlap, "grouped": hw.array.grouped.name,
                         "layer_overhead_cycles": hw.timing.layer_overhead_cycles,
                         "dma_overhead_cycles": hw.timing.dma_overhead_cycles,
                         "run_overhead_cycles": hw.timing.run_overhead_cycles}}
    return RunReport(model.name, hw.name, default.name, layers, totals(layers, hw, model, precs, n), config)


def _with_overheads(c: LayerCost, hw: HWConfig) -> LayerCost:
    """A working layer's cost plus ``timing.layer_overhead_cycles`` and ``timing.dma_overhead_cycles`` per
    transfer from or to the outermost level (each operand stream with bytes); fused, layout and overlapped
    layers issue nothing of their own."""
    t = hw.timing
    if not (t.layer_overhead_cycles or t.dma_overhead_cycles) or c.bound in ("none", "fused", "overlapped"):
        return c
    f = c.traffic
    streams = sum(xp.where(b > 0, 1, 0) for b in (f.dram_ifmap_bytes, f.dram_filter_bytes, f.dram_ofmap_bytes,
                                                   f.dram_psum_bytes))
    extra = xp.ceil(t.layer_overhead_cycles + t.dma_overhead_cycles * streams)
    timing = replace(c.timing, cycles=c.cycles + extra, overhead_cycles=extra)
    return replace(c, timing=timing, energy=replace(c.energy, static_pj=E.static_pj(hw, timing.cycles)))


_PLACEMENT_TEXT = {"fits": "tensors that fit the usable input and output capacity stay on chip",
                   "live": "tensors stay on chip in execution order while all live ones fit; weights get the rest"}


def _layer_cost(w: Work, p: Precision, t, sizes, placed: Placement, i: int, sink: str, hw: HWConfig,
                n: int) -> LayerCost:
    layer = w.layer
    if w.fused:
        return LayerCost.idle(layer.name, layer.op, p.name, p.a_bits, p.w_bits, layer.params, "fused")
    reads = {name: xp.negate(placed.on_chip.get(name, False)) for name in layer.inputs}
    write_o = xp.negate(placed.on_chip.get(sink, False))
    if t is None:
        return _vector_cost(w, p, sizes, reads, write_o, hw, n)
    return _gemm_cost(w, p, t, sizes, reads, sink, write_o, hw, placed, placed.resident[i], n)


def _gemm_tensors(w: Work, p: Precision, sizes, reads, sink: str, write_o: bool, hw: HWConfig, resident,
                  n: int) -> GemmTensors:
    layer, g = w.layer, w.gemm
    a_b = sizes[layer.inputs[0]]
    foot = OPS[layer.op].footprint
    gather = foot is not None and hw.memory.strided_gather
    a_used = foot(layer.attrs, list(layer.in_shapes), layer.out_shape) * n * p.act_bytes if gather else a_b
    b_elem = p.weight_bytes if g.b_is_weight else p.act_bytes
    b_b = g.k * g.n * g.count * p.weight_bytes if g.b_is_weight else sizes[layer.inputs[1]]
    read_b = xp.negate(resident > 0) if g.b_is_weight else reads[layer.inputs[1]]
    return GemmTensors(a_b, min(a_used, a_b), b_b, sizes[sink], p.act_bytes, b_elem, hw.pe.acc_bits / 8,
                       reads[layer.inputs[0]], read_b, write_o)


def _busy_with_levels(busy, levels: list[LevelTraffic], hw: HWConfig) -> tuple:
    """Busy cycles raised to what each bandwidth-limited on-chip level can move (its stall, by name)."""
    moved: dict = {}
    for t in levels:
        moved[t.level] = moved.get(t.level, 0.0) + t.read_bytes + t.write_bytes
    stalls, floor = {}, busy
    for lv in hw.memory.levels[:-1]:
        need = xp.ceil(moved.get(lv.name, 0.0) / lv.bandwidth(hw.clock_mhz))   # an unbounded level: 0
        raised = xp.maximum(floor, need)
        _stall(stalls, lv.name, raised - floor)
        floor = raised
    return floor, stalls


def _gemm_cost(w: Work, p: Precision, t, sizes, reads, sink: str, write_o: bool, hw: HWConfig, placed: Placement,
               resident, n: int) -> LayerCost:
    compat, own, rate = t
    layer, g, mem = w.layer, w.gemm, hw.memory
    c, flow, n_per = compat["reps"], compat["flow"], g.n * g.count // compat["reps"]
    rows, cols = hw.array.rows, hw.array.cols
    tensors = _gemm_tensors(w, p, sizes, reads, sink, write_o, hw, resident, n)
    caps = {op: capacity(mem, op, rows * cols, placed.reserved) for op in OPERANDS}
    caps["weight"] = xp.where(resident > 0, math.inf, caps["weight"])   # held on chip: never re-fetched
    dram = dram_traffic(g.m, n_per, g.k, c, tensors, rows, cols, flow, caps, mem.strided_gather)
    words = [compat[x] * c for x in ("sram_ifmap_reads", "sram_filter_reads", "sram_ofmap_writes")]
    psum_words = xp.maximum(0, words[2] - g.m * n_per * c) if flow.reduction_spatial else 0
    levels, dram = level_traffic(mem, flow, g.macs, {"input": words[0], "weight": words[1]}, psum_words, tensors,
                                 dram, sizes[sink], xp.ceil(g.k / rows))
    busy = own["cycles"] * c
    floor, stalls = _busy_with_levels(busy, levels, hw)
    bw = mem.dram.bandwidth(hw.clock_mhz)
    folds = own["row_folds"] * own["col_folds"]
    shape = FoldShape(own["row_folds"], own["col_folds"], c, own["cycles_per_fold"] * floor / busy,
                      (own["cycles"] - folds * own["cycles_per_fold"]) * floor / busy)
    loads = {"input": dram.input - dram.input_extra, "weight": dram.weight - dram.weight_extra}
    extra = dram.input_extra + dram.weight_extra + dram.psum
    fold_mode, phases = hw.timing.dram_overlap == "fold" and mem.double_buffer, hw.timing.load_store_phases
    if fold_mode or phases:     # the per-fold schedule (also gives the load/store phase bytes)
        fold_cycles, first, last = fold_schedule(shape, flow, loads, extra, dram.output, bw, phases)
    if fold_mode:
        memory = xp.ceil(dram.total / bw)
        cycles = xp.maximum(floor, xp.ceil(fold_cycles))
    else:
        memory, cycles = roofline(floor, dram.total, bw, mem.double_buffer, first if phases else 0.0,
                                  last if phases else 0.0)
    _stall(stalls, mem.dram.name, cycles - floor)
    by_level = E.level_energy_pj(hw, levels)
    reg, sram, dram_pj = E.by_kind(hw, by_level)
    timing = Timing(folds * c, rate, busy, compat["scalesim_cycles"] * c, 0, memory, cycles, cycles - busy,
                    xp.where(xp.maximum(memory, floor) > busy, "memory", "compute"), compat["utilization"],
                    compat["mapping_efficiency"], stalls)
    streamed = dram.weight if g.b_is_weight else 0
    traffic = Traffic(*words, dram.input, dram.weight, dram.output, dram.psum, tuple(levels), resident, streamed)
    energy = Energy(g.macs * E.mac_energy_pj(hw, p, rate), reg, sram, dram_pj, 0.0, E.static_pj(hw, cycles), by_level)
    return LayerCost(layer.name, layer.op, p.name, p.a_bits, p.w_bits, g.m, g.n, g.k, g.count, g.macs, layer.params,
                     timing, traffic, energy)


def _vector_cost(w: Work, p: Precision, sizes, reads, write_o: bool, hw: HWConfig, n: int) -> LayerCost:
    """Vector work reads its inputs (and embedding rows) from the innermost buffer serving inputs and writes
    its output to the innermost buffer serving outputs (DRAM directly where there is none); its busy time is
    raised to what bandwidth-limited on-chip levels can move, then a per-layer roofline against DRAM."""
    layer, mem = w.layer, hw.memory
    if w.vector_op is None:  # layout change or folded batchnorm: no work, no traffic
        return LayerCost.idle(layer.name, layer.op, p.name, p.a_bits, p.w_bits, layer.params)
    ops = w.vector_elements * hw.vector.ops_per_element.get(w.vector_op, OPS[w.vector_op].vector_ops)
    busy = xp.ceil(ops / hw.vector.lanes)
    dram_in = xp.total(xp.where(reads[t], math.ceil(sizes[t]), 0) for t in layer.inputs)
    dram_w = math.ceil(math.prod(layer.out_shape) * n * p.weight_bytes) if layer.op == "embedding" else 0
    dram_out = xp.where(write_o, math.ceil(sizes[layer.name]), 0)
    total = dram_in + dram_w + dram_out
    moved = {"input": (sum(sizes[t] for t in layer.inputs), dram_in, 0.0), "weight": (0.0, dram_w, 0.0),
             "output": (dram_out, sizes[layer.name], dram_out)}
    levels = []
    for op, (reads, writes, dram_writes) in moved.items():
        if isinstance(reads, (int, float)) and isinstance(writes, (int, float)) and not (reads or writes):
            continue
        buffers = mem.buffers[op if op != "weight" else "input"]
        if buffers:
            levels.append(LevelTraffic(buffers[0].name, op, reads, writes))
        dram = writes if op != "output" else 0.0
        levels.append(LevelTraffic(mem.dram.name, op, dram, dram_writes))
    floor, stalls = _busy_with_levels(busy, levels, hw)
    memory, cycles = roofline(floor, total, mem.dram.bandwidth(hw.clock_mhz), mem.double_buffer)
    by_level = E.level_energy_pj(hw, levels)
    reg, sram, dram_pj = E.by_kind(hw, by_level)
    _stall(stalls, mem.dram.name, cycles - floor)
    timing = Timing(vector_cycles=busy, memory_cycles=memory, cycles=cycles, stall_cycles=cycles - busy,
                    bound=xp.where(xp.maximum(memory, floor) > busy, "memory", "vector"), stall_by_level=stalls)
    traffic = Traffic(dram_ifmap_bytes=dram_in, dram_filter_bytes=dram_w, dram_ofmap_bytes=dram_out, levels=tuple(levels),
                      streamed_weight_bytes=dram_w)
    energy = Energy(0.0, reg, sram, dram_pj, ops * hw.energy.vector_op_pj * hw.energy.tech_scale,
                    E.static_pj(hw, cycles), by_level)
    return LayerCost(layer.name, layer.op, p.name, p.a_bits, p.w_bits, params=layer.params, timing=timing,
                     traffic=traffic, energy=energy)
