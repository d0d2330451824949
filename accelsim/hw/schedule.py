"""Layer latency from array busy time and DRAM transfers: a per-layer roofline, or transfers that run ahead of
the folds that need them.

``bw`` is the DRAM bandwidth in bytes per array cycle and ``D`` the layer's DRAM bytes; ``memory_cycles =
ceil(D / bw)``. Without double buffering nothing overlaps: ``cycles = busy + memory_cycles``. Otherwise:

**Per layer** (``timing.dram_overlap: layer``): ``cycles = max(busy, memory_cycles)``; with
``timing.load_store_phases`` the first fold's operands (``L0``) are loaded before it starts and the last
output tile (``S``) is written after it ends: ``cycles = L0/bw + max(busy, (D − L0 − S)/bw) + S/bw``.

**Per fold** (``timing.dram_overlap: fold``; the DMA runs ahead of the array, limited only by the
double-buffered capacity): folds run column tile by column tile, the row tiles of one column tile back to
back (so a column of partial sums completes before the next starts), and the ``count`` GEMMs one after
another. Fold ``f`` needs its operand tiles: an operand spanning both the rows and the cols dimension brings
``X/F`` per fold; one spanning only the rows dimension brings ``X/I`` per fold of the first column tile; one
spanning only the cols dimension brings ``X/J`` at the start of each column tile; re-fetches and partial-sum
spills are spread evenly. With ``Lcum(f)`` the loads up to and including fold ``f`` (``I`` row and ``J``
column tiles, ``F = I·J`` folds per GEMM, each taking ``c`` cycles, ``o`` cycles of one-off fill/drain)::

    compute_end = max over f of ( Lcum(f)/bw + (count·F − f)·c ) + o
    cycles      = max(compute_end + S/bw, D/bw)                   with load_store_phases
                = max(compute_end', (D − L0 − S)/bw)              without (L0 prefetched during the previous
                                                                  layer, S written during the next)

``S`` is the output tile the last fold completes. ``Lcum(f)/bw − f·c`` is piecewise linear in ``f``, so the
maximum is taken over the ends of the first and last column tile of the first and last GEMM (exact).
"""
from __future__ import annotations

from dataclasses import dataclass

from . import xp
from .dataflow import OPERAND_DIMS, DataflowSpec


@dataclass(frozen=True, slots=True)
class FoldShape:
    row_folds: int      # I      (numbers, or arrays over configurations)
    col_folds: int      # J
    count: int          #        (a property of the layer: a number, or an array over a group of layers)
    fold_cycles: float  # c
    overhead: float     # o: one-off cycles outside the folds (first preload, fill and drain)


def roofline(busy, dram_bytes, bw, double_buffer: bool, first=0.0, last=0.0):
    """(memory_cycles, cycles) of the per-layer model; ``first``/``last``: load/store phase bytes. Numbers or
    arrays over configurations (:mod:`accelsim.hw.xp`); ``bw`` may be ``math.inf``."""
    memory = xp.ceil(dram_bytes / bw)
    if not double_buffer:
        return memory, busy + memory
    phases = first + last
    phased = 0.0 if xp.is_zero(phases) else \
        xp.ceil(first / bw + xp.maximum(busy, (dram_bytes - first - last) / bw) + last / bw)   # (else never taken)
    return memory, xp.where(xp.both(phases > 0, memory > 0), phased, xp.maximum(busy, memory))


def _share(flow: DataflowSpec, operand: str) -> str:
    dims = OPERAND_DIMS[operand]
    on_rows, on_cols = flow.rows in dims, flow.cols in dims
    return "both" if on_rows and on_cols else "rows" if on_rows else "cols"


def fold_schedule(shape: FoldShape, flow: DataflowSpec, loads: dict, extra, output, bw, phases: bool):
    """(cycles, first-fold load bytes, last store bytes) of the per-fold model (module docstring); the fold
    counts, bytes and ``bw`` may be arrays over configurations.

    ``loads``: compulsory DRAM bytes of ``input``/``weight`` for the whole layer; ``extra``: re-fetch and
    partial-sum bytes; ``output``: output bytes written to DRAM."""
    i_n, j_n, g_n, c = shape.row_folds, shape.col_folds, shape.count, shape.fold_cycles
    folds = i_n * j_n
    per = {"both": 0.0, "rows": 0.0, "cols": 0.0}
    for op, amount in loads.items():
        kind = _share(flow, op)
        per[kind] = per[kind] + amount / g_n / {"both": folds, "rows": i_n, "cols": j_n}[kind]
    uniform = per["both"] + extra / g_n / folds
    gemm_loads = (xp.total(loads.values()) + extra) / g_n

    def lcum(g: int, f):
        return (g * gemm_loads + (f + 1) * uniform + xp.minimum(f + 1, i_n) * per["rows"]
                + (f // i_n + 1) * per["cols"])

    out_kind = _share(flow, "output")
    last = output / g_n / {"both": folds, "rows": i_n, "cols": j_n}[out_kind]
    first = lcum(0, 0)
    dram = xp.total(loads.values()) + extra + output
    offset = 0.0 if phases else first
    end = None
    for g in (0, g_n - 1):                        # the first and last GEMM (the same one when count = 1)
        for f in (0, i_n - 1, i_n, 2 * i_n - 1, (j_n - 1) * i_n, folds - 1):
            f = xp.minimum(f, folds - 1)          # past the last fold: the last fold (the max is unchanged)
            e = (lcum(g, f) - offset) / bw + ((g_n - g) * folds - f) * c
            end = e if end is None else xp.maximum(end, e)
    end = end + shape.overhead
    if phases:
        return xp.maximum(end + last / bw, dram / bw), first, last
    return xp.maximum(end, (dram - first - last) / bw), first, last
