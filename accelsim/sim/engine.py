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

**How it runs.** Each formula is written once, per layer, over :mod:`accelsim.hw.xp`: on numbers it costs one
layer of one configuration. Layers that share everything structural (dataflow, operand kinds, precision) are
costed together, the same code running once over arrays of the group's layers, and split back into per-layer
records identical to one call per layer (:mod:`accelsim.sim.columns`; tested against it). In a sweep the hw
fields are arrays over configurations too, and the same calls cost every (layer, configuration) pair.
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from itertools import count, repeat
from typing import Protocol

import numpy as np

from ..config.hw import HWConfig
from ..config.memory import OPERANDS
from ..graph import Model
from ..hw import energy as E
from ..hw import xp
from ..hw.dataflow import FoldTiming, fold_timing, grouped_input_words
from ..hw.mac import Precision, macs_per_pe_cycle
from ..errors import ConfigError
from ..hw.memory import GemmTensors, LevelTraffic, capacity, dram_traffic, level_traffic
from ..hw.placement import Placement, place
from ..hw.schedule import FoldShape, fold_schedule, roofline
from ..lowering import Work
from .columns import Columns, configs
from .overlap import overlap
from .prepare import gemm_columns, gemm_statics, lowered, precisions, rate_kinds
from .report_types import Energy, LayerCost, RunReport, Timing, Traffic, run_totals, totals
from .table import LayerTable

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


def _timings(works: list[Work], precs: list[Precision], hw: HWConfig, timing: TimingModel,
             cols: Columns) -> "GemmTimes":
    """Timing of every GEMM at once, as :class:`GemmTimes`: per work index the SCALE-Sim timing row, the own timing
    row and the MACs/PE-cycle. Each row holds one repetition of the layer's ``reps`` identical GEMMs (``count``,
    or 1 for a grouped conv the config spreads across the array: :data:`accelsim.hw.dataflow.GROUPED_MAPPINGS`)
    and the ``flow`` it runs. In a sweep every value is an array over the configurations."""
    idx, g, m, n, k, c, grouped = gemm_columns(works)
    if not idx:
        return GemmTimes([], cols)
    kinds, which = rate_kinds(works, precs)     # MappingError for the first GEMM the PE cannot run
    rates = [macs_per_pe_cycle(hw.pe, p, b_is_weight) for p, b_is_weight in kinds]
    a = hw.array
    if cols.configs is not None:      # a sweep: GEMMs along axis 0, configurations along axis 1
        m, n, k, c = m[:, None], n[:, None], k[:, None], c[:, None]
        rate = np.stack([np.broadcast_to(np.asarray(r, dtype=float), (cols.configs,)) for r in rates])[which]
    else:
        rate = np.array(rates, dtype=float)[which]
    packed = np.ceil(k / rate - 1e-9).astype(np.int64)
    spread = a.grouped.flow
    spreads = spread is not None and np.count_nonzero(grouped) > 0     # grouped convs the config spreads
    parts = []
    dense = np.flatnonzero(~grouped) if spreads else slice(None)     # (none: all of them, no copies)
    analytical = type(timing) is AnalyticalTiming
    if not analytical:                # a strategy gets every GEMM, as it expects them
        own_all = _fields(timing.fold_timing(m, n, packed, hw))
    dense_idx = idx if type(dense) is slice else [idx[j] for j in dense]
    if dense_idx:
        if analytical and not hw.timing.stationary_double_buffer and np.array_equal(packed, k):
            compat = _fields(fold_timing(m[dense], n[dense], k[dense], a.rows, a.cols, a.dataflow))
            own = dict(compat)            # one MAC per PE-cycle: K' = K, the own rows are the SCALE-Sim rows
        elif analytical and not hw.timing.stationary_double_buffer:   # one call for the SCALE-Sim rows on K and
            both = _fields(fold_timing(*(_stacked(x[dense], y[dense])                            # the own rows
                                         for x, y in ((m, m), (n, n), (k, packed))), a.rows, a.cols, a.dataflow))
            half = len(dense_idx)
            compat, own = ({name: v[:half] for name, v in both.items()},                 # on K' (the same form)
                           {name: v[half:] for name, v in both.items()})
        else:
            compat = _fields(fold_timing(m[dense], n[dense], k[dense], a.rows, a.cols, a.dataflow))
            own = (_fields(timing.fold_timing(m[dense], n[dense], packed[dense], hw)) if analytical
                   else {name: v[dense] for name, v in own_all.items()})
        parts.append((dense_idx, a.dataflow, compat, own, rate[dense], c[dense]))
    if spreads:                       # grouped convs spread across the array: one GEMM m × (groups·n)
        js = np.flatnonzero(grouped)
        ms, ns, ks, cs = m[js], n[js] * c[js], k[js], c[js]
        compat = _fields(fold_timing(ms, ns, ks, a.rows, a.cols, spread))
        compat["scalesim_cycles"] = fold_timing(ms, n[js], ks, a.rows, a.cols, a.dataflow).scalesim_cycles * cs
        compat["sram_ifmap_reads"] = grouped_input_words(ms, n[js], ks, cs)
        spread_hw = replace(hw, array=replace(a, dataflow=spread))
        runs = getattr(timing, "grouped_fold_timing", None)       # a strategy may run the spread mapping itself
        own = _fields(runs(js, ms, n[js], packed[js], cs, spread_hw) if runs is not None
                      else timing.fold_timing(ms, ns, packed[js], spread_hw))
        parts.append(([idx[j] for j in js], spread, compat, own, rate[js], np.ones_like(cs)))
    return GemmTimes(parts, cols)


def _stacked(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """``x`` then ``y`` along axis 0, broadcast to one shape first (a sweep's config-independent columns)."""
    return np.concatenate((x, y) if x.shape == y.shape else np.broadcast_arrays(x, y))


_ROW = ("row_folds", "col_folds", "cycles_per_fold", "cycles", "scalesim_cycles", "utilization",
        "mapping_efficiency", "sram_ifmap_reads", "sram_filter_reads", "sram_ofmap_writes")


def _fields(t: FoldTiming) -> dict:
    return {name: np.asarray(getattr(t, name)) for name in _ROW}


class GemmTimes(Mapping):
    """Work index → (SCALE-Sim row, own row, MACs/PE-cycle) as the per-layer code reads them (Python numbers for one
    configuration, arrays over configurations in a sweep); :meth:`columns` gives the same for a group of layers
    that run with one flow, as columns (:mod:`accelsim.sim.columns`)."""

    def __init__(self, parts: list, cols: Columns):
        self.parts, self.cols = parts, cols
        self.where = {}
        for p, part in enumerate(parts):
            self.where.update(zip(part[0], zip(repeat(p), count())))
        self._rows: dict[int, tuple] = {}

    def __len__(self) -> int:
        return len(self.where)

    def __iter__(self):
        return iter(self.where)

    def __getitem__(self, i: int) -> tuple:
        if i not in self._rows:
            p, j = self.where[i]
            _, flow, compat, own, rate, reps = self.parts[p]
            if self.cols.configs is None:
                row = lambda d: {name: d[name].item(j) for name in _ROW}
                tail = {"reps": int(reps[j]), "flow": flow}
                self._rows[i] = (row(compat) | tail, row(own) | tail, float(rate[j]))
            else:
                size = (self.cols.configs,)
                row = lambda d: {name: np.broadcast_to(d[name][j], size) for name in _ROW}
                tail = {"reps": int(reps[j, 0]), "flow": flow}
                self._rows[i] = (row(compat) | tail, row(own) | tail, rate[j])
        return self._rows[i]

    def columns(self, members: list[int]) -> tuple:
        """(SCALE-Sim columns, own columns, MACs/PE-cycle column) of the GEMMs of ``members`` (one flow)."""
        p = self.where[members[0]][0]
        gemms, flow, compat, own, rate, reps = self.parts[p]
        at = slice(None) if members == gemms else [self.where[i][1] for i in members]   # all of them, in order
        if at == list(range(len(rate))):                                                # (the usual case): no copies
            at = slice(None)
        if type(at) is slice:               # (compat and own hold the _ROW names: _fields)
            tail = {"reps": reps, "flow": flow}
            return compat | tail, own | tail, rate
        sub = lambda d: {name: d[name][at] for name in _ROW} | {"reps": reps[at], "flow": flow}
        return sub(compat), sub(own), rate[at]


def _stall(stalls: dict, name: str, amount) -> None:
    """Record a stall (numbers: only when positive, so one configuration's JSON lists real stalls)."""
    if not isinstance(amount, (int, float)) or amount > 0:
        stalls[name] = amount


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
    works, sinks = lowered(model, n)
    default, precs, sizes, size, inputs, fixed = precisions(model, works, sinks, precision, layer_precision, n)
    cols = Columns(configs(hw))
    times = _timings(works, precs, hw, timing, cols)
    placed = place(works, precs, sizes, sinks, hw.memory, hw.array.rows * hw.array.cols)
    table = _layer_costs(works, precs, times, inputs, placed, sinks, hw, n, cols, fixed)
    epilogue = hw.timing.vector_overlap == "epilogue"
    overheads = not (xp.is_zero(hw.timing.layer_overhead_cycles) and xp.is_zero(hw.timing.dma_overhead_cycles))
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
    if cols.configs is None and not (epilogue or overheads):     # the records wait until someone reads them
        levels = table.level_totals([lv.name for lv in mem.levels])
        if levels is not None:
            sums = run_totals(table.total, table.column, table.count, levels, size, hw, n)
            return RunReport.lazy(model.name, hw.name, default.name, table.records, sums, config)
    layers = table.records()
    if epilogue:
        layers = overlap(works, layers, times, hw)
    if overheads:
        layers = [_with_overheads(c, hw) for c in layers]
    layers = tuple(layers)
    return RunReport(model.name, hw.name, default.name, layers, totals(layers, hw, model, precs, n, size), config)


def _with_overheads(c: LayerCost, hw: HWConfig) -> LayerCost:
    """A working layer's cost plus ``timing.layer_overhead_cycles`` and ``timing.dma_overhead_cycles`` per
    transfer from or to the outermost level (each operand stream with bytes); fused, layout and overlapped
    layers issue nothing of their own."""
    t = hw.timing
    if isinstance(c.bound, str) and c.bound in ("none", "fused", "overlapped"):   # in a sweep, a working layer's
        return c                                                                 # bound is an array
    f = c.traffic
    streams = sum(xp.where(b > 0, 1, 0) for b in (f.dram_ifmap_bytes, f.dram_filter_bytes, f.dram_ofmap_bytes,
                                                   f.dram_psum_bytes))
    extra = xp.ceil(t.layer_overhead_cycles + t.dma_overhead_cycles * streams)
    timing = replace(c.timing, cycles=c.cycles + extra, overhead_cycles=extra)
    return replace(c, timing=timing, energy=replace(c.energy, static_pj=E.static_pj(hw, timing.cycles)))


_PLACEMENT_TEXT = {"fits": "tensors that fit the usable input and output capacity stay on chip",
                   "live": "tensors stay on chip in execution order while all live ones fit; weights get the rest"}
#: groups with fewer layers are costed layer by layer (one call per layer is cheaper than a column pass)
MIN_COLUMN_GROUP = 4


def _layer_costs(works: list[Work], precs: list[Precision], times: GemmTimes, inputs: list, placed: Placement,
                 sinks: dict, hw: HWConfig, n: int, cols: Columns, fixed: dict | None = None) -> LayerTable:
    """Every layer's cost (module docstring): layers that do no work directly; GEMM and vector layers gathered
    (:class:`~accelsim.sim.prepare.GemmStatics`, :func:`_vector_inputs`) into groups that share everything structural, each group
    costed in one call over columns, to be split into its layers (:mod:`accelsim.sim.columns`), as a
    :class:`~accelsim.sim.table.LayerTable`."""
    out = LayerTable(cols, works, precs, fixed)
    groups: dict[tuple, list] = {}
    on_chip, resident, negate, where = placed.on_chip, placed.resident, xp.negate, times.where
    per_element = hw.vector.ops_per_element
    statics = gemm_statics(works, inputs, precs, n, hw.memory.strided_gather)
    caps = {op: capacity(hw.memory, op, hw.array.rows * hw.array.cols, placed.reserved) for op in OPERANDS}
    for i, static in enumerate(inputs):
        w = works[i]
        if static is None:
            out.add_idle(i, "fused" if w.fused else "none")
            continue
        write_o = negate(on_chip.get(sinks[w.layer.name], False))
        if w.gemm is not None:             # what the placement decides of the layer's inputs
            _, a_name, b_name, model_key = statics.layers[i]
            held = resident[i]
            read_a = negate(on_chip.get(a_name, False))
            read_b = negate(held > 0) if b_name is None else negate(on_chip.get(b_name, False))
            key = ("gemm", where[i][0], model_key, type(read_a), type(read_b), type(write_o), type(held))
            groups.setdefault(key, []).append((i, (read_a, read_b, write_o, held)))
        else:
            args = _vector_inputs(static, on_chip, write_o, per_element)
            key = ("vector", tuple(map(type, args)), _moves_nothing(*args[1:]))
            groups.setdefault(key, []).append((i, args))
    for key, members in groups.items():
        gemm = key[0] == "gemm"
        if len(members) < MIN_COLUMN_GROUP:
            for i, args in members:
                out.add_record(i, _gemm_layer(works[i], precs[i], times[i], statics.layers[i][0], *args, hw, caps)
                               if gemm else _vector_layer(works[i], precs[i], *args, hw))
            continue
        idx = [i for i, _ in members]
        first, p = works[idx[0]], precs[idx[0]]
        if gemm:
            values, group = statics.columns(idx, cols)
            placed_cols = (cols(list(column)) for column in zip(*(a for _, a in members)))
            proto = _gemm_layer(group, p, times.columns(idx), values, *placed_cols, hw, caps)
            probe = None if cols.configs is not None else _gemm_layer(
                first, p, times[idx[0]], statics.layers[idx[0]][0], *members[0][1], hw, caps)
        else:
            stacked = [cols(column) for column in zip(*(a for _, a in members))]
            proto = _vector_layer(first, p, *stacked, hw)
            probe = None if cols.configs is not None else _vector_layer(first, p, *members[0][1], hw)
        out.add_group(idx, proto, probe, [placed.resident[i] for i in idx] if gemm else None)
    return out


def _busy_with_levels(busy, levels: list[LevelTraffic], hw: HWConfig) -> tuple:
    """Busy cycles raised to what each bandwidth-limited on-chip level can move (its stall, by name)."""
    moved: dict = {}
    outermost = hw.memory.dram.name             # (no bandwidth limit of its own here: the roofline's)
    for t in levels:
        if t.level != outermost:
            moved[t.level] = moved.get(t.level, 0.0) + t.read_bytes + t.write_bytes
    stalls, floor = {}, busy
    for lv in hw.memory.levels[:-1]:
        need = xp.ceil(moved.get(lv.name, 0.0) / lv.bandwidth(hw.clock_mhz))   # an unbounded level: 0
        raised = xp.maximum(floor, need)
        _stall(stalls, lv.name, raised - floor)
        floor = raised
    return floor, stalls


def _gemm_layer(w: Work, p: Precision, t, values: tuple, read_a, read_b, write_o, resident, hw: HWConfig,
                caps: dict) -> LayerCost:
    """One GEMM layer's cost (or, over columns, a group's: :mod:`accelsim.sim.columns`); ``t``: its timing rows,
    ``values``: its :class:`~accelsim.sim.prepare.GemmStatics` values (A's bytes, the bytes of A read, B's and the
    output's bytes, A's and B's element bytes), ``read_a``, ``read_b``, ``write_o``: whether A and B come from and
    the output goes to the outermost level, ``resident``: the bytes of its weights held on chip, ``caps``:
    :func:`~accelsim.hw.memory.capacity` per operand (with the resident weights' bytes reserved)."""
    compat, own, rate = t
    a_b, a_used, b_b, o_b, a_elem, b_elem = values
    acc_bytes = hw.pe.acc_bits / 8
    layer, g, mem = w.layer, w.gemm, hw.memory
    c, flow, n_per, macs = compat["reps"], compat["flow"], g.n * g.count // compat["reps"], g.macs
    rows, cols = hw.array.rows, hw.array.cols
    tensors = GemmTensors(a_b, a_used, b_b, o_b, a_elem, b_elem, acc_bytes, read_a, read_b, write_o)
    caps = caps | {"weight": xp.where(resident > 0, math.inf, caps["weight"])}   # held on chip: never re-fetched
    dram = dram_traffic(g.m, n_per, g.k, c, tensors, rows, cols, flow, caps, mem.strided_gather)
    words = [compat[x] * c for x in ("sram_ifmap_reads", "sram_filter_reads", "sram_ofmap_writes")]
    psum_words = xp.maximum(0, words[2] - g.m * n_per * c) if flow.reduction_spatial else 0
    levels, dram = level_traffic(mem, flow, macs, {"input": words[0], "weight": words[1]}, psum_words, tensors,
                                 dram, o_b, xp.ceil(g.k / rows))
    busy = own["cycles"] * c
    floor, stalls = _busy_with_levels(busy, levels, hw)
    bw = mem.dram.bandwidth(hw.clock_mhz)
    folds = own["row_folds"] * own["col_folds"]
    fold_mode, phases = hw.timing.dram_overlap == "fold" and mem.double_buffer, hw.timing.load_store_phases
    if fold_mode or phases:     # the per-fold schedule (also gives the load/store phase bytes)
        shape = FoldShape(own["row_folds"], own["col_folds"], c, own["cycles_per_fold"] * floor / busy,
                          (own["cycles"] - folds * own["cycles_per_fold"]) * floor / busy)
        loads = {"input": dram.input - dram.input_extra, "weight": dram.weight - dram.weight_extra}
        extra = dram.input_extra + dram.weight_extra + dram.psum
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
    energy = Energy(macs * E.mac_energy_pj(hw, p, rate), reg, sram, dram_pj, 0.0, E.static_pj(hw, cycles), by_level)
    return LayerCost(layer.name, layer.op, p.name, p.a_bits, p.w_bits, g.m, g.n, g.k, g.count, macs, layer.params,
                     timing, traffic, energy)


def _vector_inputs(static: tuple, on_chip: dict, write_o, per_element: Mapping) -> tuple:
    """A vector layer's per-layer inputs of :func:`_vector_layer`: (ops, bytes read, bytes written, DRAM bytes of
    inputs, embedding rows and output); ``static``: its :func:`static_inputs`, ``per_element``:
    ``vector.ops_per_element``."""
    names, ceils, elements, op, default_ops, in_bytes, out_bytes, dram_w, out_ceil = static
    ops = elements * per_element.get(op, default_ops)
    dram_in = xp.total(xp.where(xp.negate(on_chip.get(t, False)), c, 0) for t, c in zip(names, ceils))
    return ops, in_bytes, out_bytes, dram_in, dram_w, xp.where(write_o, out_ceil, 0)


def _moves_nothing(in_bytes, out_bytes, dram_in, dram_w, dram_out) -> tuple:
    """Per operand, whether a vector layer moves no bytes of it (numbers; ``None`` when an array decides)."""
    pairs = ((in_bytes, dram_in), (0.0, dram_w), (dram_out, out_bytes))
    return tuple(not (r or wr) if xp.is_number(r) and xp.is_number(wr) else None for r, wr in pairs)


def _vector_layer(w: Work, p: Precision, ops, in_bytes, out_bytes, dram_in, dram_w, dram_out,
                  hw: HWConfig) -> LayerCost:
    """Vector work reads its inputs (and embedding rows) from the innermost buffer serving inputs and writes
    its output to the innermost buffer serving outputs (DRAM directly where there is none); its busy time is
    raised to what bandwidth-limited on-chip levels can move, then a per-layer roofline against DRAM."""
    layer, mem = w.layer, hw.memory
    busy = xp.ceil(ops / hw.vector.lanes)
    total = dram_in + dram_w + dram_out
    moved = {"input": (in_bytes, dram_in, 0.0), "weight": (0.0, dram_w, 0.0), "output": (dram_out, out_bytes, dram_out)}
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
    traffic = Traffic(dram_ifmap_bytes=dram_in, dram_filter_bytes=dram_w, dram_ofmap_bytes=dram_out,
                      levels=tuple(levels), streamed_weight_bytes=dram_w)
    energy = Energy(0.0, reg, sram, dram_pj, ops * hw.energy.vector_op_pj * hw.energy.tech_scale,
                    E.static_pj(hw, cycles), by_level)
    return LayerCost(layer.name, layer.op, p.name, p.a_bits, p.w_bits, params=layer.params, timing=timing,
                     traffic=traffic, energy=energy)
