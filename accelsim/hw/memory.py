"""Memory traffic of a GEMM layer: DRAM bytes from on-chip capacities, then bytes read and written at every
memory level for every operand.

Bytes are counted at each operand's real width (INT4 packed two per byte, FP32 four bytes). Operands: A
(``input``: the raw ifmap — the on-chip buffer provides the im2col reuse), B (``weight``, or a second
activation for attention matmuls) and O (``output``). ``cap(X)`` is the usable on-chip capacity for X
(:meth:`~accelsim.config.memory.MemoryConfig.usable_bytes` of the outermost on-chip level serving X).

**DRAM** (:func:`dram_traffic`):

* compulsory: A is read unless it stayed on chip, B is read once (unless it is an on-chip activation),
  O is written unless it stays on chip. A strided or dilated conv reads only the input pixels it uses when
  ``memory.strided_gather`` is set (``a_used_bytes``).
* re-fetch: if A fits ``cap(A)`` or B fits ``cap(B)``, the other streams through once. If neither fits, one
  is cut into capacity-sized chunks in the outer loop and the other is streamed again for every chunk; the
  cheaper order is taken (as a tiling compiler would): ``extra = min(A·(ceil(B/cap_B) − 1), B·(ceil(A/cap_A) − 1))``.
* partial sums, when K is spread over ``k_folds = ceil(K/R)`` row folds (WS, IS): the schedule keeps one
  column tile of partial sums on chip (WS: M·min(N, C), IS: min(M, C)·N accumulators of ``acc_bits``), or
  else the stationary slab of one column tile (WS: K·min(N, C) weights; IS: K·min(M, C) inputs). Only when
  neither fits do they spill: ``2 · M·N·(k_folds − 1) · acc_bytes``.

**Levels** (:func:`level_traffic`), for operand X with levels ``registers…, buffers…, DRAM``:

* a register level: every MAC reads its operand (``MACs · elem``); a stationary operand is written once per
  delivery from the buffer (the SRAM words), a moving one once per MAC; an output register is read and
  written once per MAC at ``acc_bits`` (read-modify-write of the accumulator).
* partial sums: a PE whose stationary register holds ``h = floor(size_bytes / elem)`` folds' elements and
  that has an output register accumulates ``h`` row folds in place, so only ``groups = ceil(k_folds / h)``
  groups hand partial sums on; without such registers every fold does (``groups = k_folds``). They are
  written to and read back from the innermost buffer serving O: ``M·N·(groups − 1) · acc_bytes`` each way.
* the innermost buffer of A/B is read for every SRAM word the array takes (SCALE-Sim's counts) and written by
  every fill from the level above; outer buffers pass fills inwards. Output: the innermost buffer is
  written with the final outputs (+ partial sums) and read for what goes outwards. Without any buffer, the
  array reads DRAM directly (``max(fill, SRAM words)``).
* DRAM: reads of A and B, writes of O, partial-sum spills half each way.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from ..config.memory import OPERANDS, MemoryConfig, MemoryLevel
from . import xp
from .dataflow import DataflowSpec


@dataclass(frozen=True, slots=True)
class DramTraffic:
    """DRAM bytes of one layer by operand; ``*_extra`` is the re-fetch part of ``input``/``weight``."""
    input: int
    weight: int
    output: int
    psum: int
    input_extra: float = 0.0
    weight_extra: float = 0.0

    @property
    def total(self) -> int:
        return self.input + self.weight + self.output + self.psum


@dataclass(frozen=True, slots=True)
class LevelTraffic:
    """Bytes one operand reads from and writes into one memory level during one layer."""
    level: str
    operand: str
    read_bytes: float
    write_bytes: float


@dataclass(frozen=True, slots=True)
class GemmTensors:
    """Whole-layer tensor sizes (bytes, all ``count`` GEMMs), element widths and where each tensor lives."""
    a_bytes: float          # the input tensor as stored
    a_used_bytes: float     # the part of it the layer reads (strided/dilated convs read fewer pixels)
    b_bytes: float
    o_bytes: float
    a_elem: float
    b_elem: float
    acc_bytes: float
    read_a: bool            # A comes from DRAM (not resident on chip)
    read_b: bool
    write_o: bool


def capacity(mem: MemoryConfig, operand: str, pes: int, reserved=0.0) -> float:
    """Usable bytes for ``operand`` in the outermost on-chip level that serves it (0 if only DRAM does);
    ``reserved``: bytes of the level holding weights across inferences that are taken (by those weights)."""
    on_chip = mem.registers[operand] + mem.buffers[operand]
    if not on_chip:
        return 0.0
    return mem.usable_bytes(on_chip[-1], pes, reserved if on_chip[-1].resident else 0.0)


def dram_traffic(m: int, n: int, k: int, count: int, t: GemmTensors, rows, cols, flow: DataflowSpec,
                 caps: dict, gather: bool) -> DramTraffic:
    """DRAM bytes of one GEMM layer (module docstring); ``rows``/``cols``/``caps`` may be arrays over
    configurations (:mod:`accelsim.hw.xp`)."""
    a_bytes = t.a_used_bytes if gather else t.a_bytes
    cap_a, cap_b, cap_o = caps["input"], caps["weight"], caps["output"]
    a_again = xp.where(cap_b > 0, a_bytes * (xp.ceil(xp.ratio(t.b_bytes, cap_b)) - 1), math.inf)
    b_again = xp.where(cap_a > 0, t.b_bytes * (xp.ceil(xp.ratio(a_bytes, cap_a)) - 1), math.inf)
    # nothing on chip for either: each operand streams from DRAM exactly once per use
    a_again = xp.where(xp.both(xp.isinf(a_again), xp.isinf(b_again)), 0.0, a_again)
    spill = xp.both(a_bytes > cap_a, t.b_bytes > cap_b)
    extra_a = xp.where(xp.both(spill, a_again <= b_again), a_again, 0.0)
    extra_b = xp.where(xp.both(spill, a_again > b_again), b_again, 0.0)
    k_folds = xp.ceil(k / rows)
    psum = 0
    if flow.reduction_spatial:
        slab, slab_cap = ((k * xp.minimum(n, cols) * t.b_elem, cap_b) if flow.stationary == "weight"
                          else (k * xp.minimum(m, cols) * t.a_elem, cap_a))
        tile = (m * xp.minimum(n, cols) if flow.stationary == "weight" else xp.minimum(m, cols) * n) * t.acc_bytes
        spills = xp.both(k_folds > 1, xp.both(tile > cap_o, slab > slab_cap))
        psum = xp.where(spills, xp.trunc(2 * m * n * count * (k_folds - 1) * t.acc_bytes), 0)
    read_a = xp.where(t.read_a, a_bytes, 0.0) + extra_a
    read_b = xp.where(t.read_b, t.b_bytes, 0.0) + extra_b
    return DramTraffic(xp.ceil(read_a), xp.ceil(read_b), xp.where(t.write_o, xp.ceil(t.o_bytes), 0), psum,
                       extra_a, extra_b)


def psum_groups(mem: MemoryConfig, flow: DataflowSpec, k_folds, elem: dict):
    """Row folds whose partial sums leave the PEs (module docstring): ``ceil(k_folds / h)`` when the output
    has a register level and the stationary operand's register holds ``h ≥ 1`` folds' elements, else
    ``k_folds`` (every fold hands its partial sums to the buffer)."""
    if not flow.reduction_spatial:
        return 1
    held = 0
    if mem.registers["output"]:
        for lv in mem.registers[flow.stationary]:
            held = xp.maximum(held, xp.floor(lv.size_bytes / elem[flow.stationary]))
    return xp.where(held >= 1, xp.ceil(k_folds / xp.maximum(held, 1)), k_folds)


def level_traffic(mem: MemoryConfig, flow: DataflowSpec, macs: int, words: dict[str, int], psum_words: int,
                  t: GemmTensors, dram: DramTraffic, o_final_bytes: float,
                  k_folds: int) -> tuple[list[LevelTraffic], DramTraffic]:
    """Bytes read/written per level and operand (module docstring), and the DRAM traffic once operands with
    no on-chip buffer are fed from DRAM directly. ``words``: SCALE-Sim SRAM words per operand (input/weight
    reads); ``psum_words``: partial sums the row folds leave for each other."""
    elem = {"input": t.a_elem, "weight": t.b_elem, "output": t.acc_bytes}
    groups = psum_groups(mem, flow, k_folds, elem)
    psum_bytes = xp.ratio(psum_words * t.acc_bytes * (groups - 1), k_folds - 1)
    demand = {"input": words["input"] * t.a_elem, "weight": words["weight"] * t.b_elem,
              "output": o_final_bytes + psum_bytes}
    buffers = mem.buffers
    io = {"input": dram.input, "weight": dram.weight, "output": dram.output, "psum": dram.psum}
    for op, read in (("input", t.read_a), ("weight", t.read_b)):
        if not buffers[op]:
            io[op] = xp.where(read, xp.maximum(io[op], xp.ceil(demand[op])), io[op])
    if not buffers["output"]:
        io["psum"] = io["psum"] + xp.ceil(2 * psum_bytes)
    out: list[LevelTraffic] = []
    for op in OPERANDS:
        out += [_register(lv, op, macs, elem[op], words, flow) for lv in mem.registers[op]]
        for i, lv in enumerate(buffers[op]):
            inner = demand[op] if i == 0 else io[op]
            if op == "output":
                out.append(LevelTraffic(lv.name, op, io[op] + (psum_bytes if i == 0 else 0.0), inner))
            else:
                out.append(LevelTraffic(lv.name, op, inner, io[op]))
        out.append(LevelTraffic(mem.dram.name, op, 0.0 if op == "output" else io[op], io[op] if op == "output" else 0.0))
    if not isinstance(io["psum"], (int, float)) or io["psum"]:
        out.append(LevelTraffic(mem.dram.name, "psum", io["psum"] / 2, io["psum"] / 2))
    return out, DramTraffic(io["input"], io["weight"], io["output"], io["psum"], dram.input_extra, dram.weight_extra)


def _register(lv: MemoryLevel, op: str, macs: int, elem: float, words: dict[str, int], flow: DataflowSpec):
    per_mac = macs * elem
    if op == "output":
        return LevelTraffic(lv.name, op, per_mac, per_mac)
    writes = words[op] * elem if op == flow.stationary else per_mac
    return LevelTraffic(lv.name, op, per_mac, writes)
