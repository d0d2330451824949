"""DRAM traffic from SRAM capacities, and the per-layer roofline.

Bytes are counted at each operand's real width (INT4 packed two per byte, FP32 four bytes). Per GEMM
layer with operands A (input activations, the raw ifmap — the on-chip buffer provides the im2col reuse),
B (weights, or a second activation for attention matmuls) and O (outputs), on an array R × C with usable
SRAM capacity ``cap = size · (½ if double-buffered else 1)`` per operand:

* **compulsory**: A is read from DRAM unless it stayed on chip (see below); weights are always read once;
  O is written unless it stays on chip.
* **re-fetch**: if A fits its SRAM or B fits its SRAM, the other streams through once (the resident one is
  reused from SRAM). If neither fits, one is cut into SRAM-sized chunks in the outer loop and the other is
  streamed again for every chunk; the cheaper order is taken (as a tiling compiler would):
  ``extra = min(A · (ceil(B / cap_f) − 1), B · (ceil(A / cap_i) − 1))``.
* **partial sums** (WS, IS: K is split over ceil(K/R) row folds): the schedule chunks the temporal
  dimension so one column tile of partial sums fits the ofmap SRAM and finishes all K folds of a chunk
  before the next, which needs the stationary slab of one column tile (WS: K·min(N, C) weights; IS:
  K·min(M, C) inputs) to fit its SRAM. Only when neither the psum tile (WS: M·min(N, C), IS: min(M, C)·N
  accumulators of ``acc_bits``) nor that slab fits do partial sums spill: ``2 · M·N·(ceil(K/R) − 1) · acc_bytes``.

**On-chip activations**: a tensor that fits in both the ofmap and ifmap SRAMs (usable capacity) stays on
chip from its producer to its consumers; model inputs and outputs always cross DRAM. This assumes each such
tensor has the buffers to itself (optimistic for long-lived residual tensors).

**Roofline**: ``memory_cycles = ceil(dram_bytes / bytes_per_cycle)`` with ``bytes_per_cycle =
dram_gbps·1e9 / (clock_mhz·1e6)``. With double buffering transfers overlap compute:
``cycles = max(busy, memory_cycles)``; without, ``cycles = busy + memory_cycles``; ``stall = cycles − busy``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from .dataflow import Dataflow


@dataclass(frozen=True, slots=True)
class Traffic:
    dram_ifmap_bytes: int
    dram_filter_bytes: int
    dram_ofmap_bytes: int
    dram_psum_bytes: int

    @property
    def total(self) -> int:
        return self.dram_ifmap_bytes + self.dram_filter_bytes + self.dram_ofmap_bytes + self.dram_psum_bytes


def usable_bytes(kib: float, double_buffer: bool) -> float:
    return kib * 1024 * (0.5 if double_buffer else 1.0)


def gemm_traffic(m: int, n: int, k: int, count: int, a_bytes: float, b_bytes: float, o_bytes: float,
                 read_a: bool, write_o: bool, acc_bytes: float, rows: int, cols: int, flow: Dataflow,
                 caps: tuple[float, float, float], elem_bytes: tuple[float, float]) -> Traffic:
    """DRAM bytes of one GEMM layer (module docstring); ``*_bytes`` are whole-tensor sizes at real width,
    ``elem_bytes`` the (A, B) bytes per element."""
    cap_i, cap_f, cap_o = caps
    extra_a = extra_b = 0.0
    if a_bytes > cap_i and b_bytes > cap_f:
        a_again = a_bytes * (math.ceil(b_bytes / cap_f) - 1)   # B chunked outside, A re-streamed per chunk
        b_again = b_bytes * (math.ceil(a_bytes / cap_i) - 1)   # A chunked outside, B re-streamed per chunk
        extra_a, extra_b = (a_again, 0.0) if a_again <= b_again else (0.0, b_again)
    psum = 0
    k_folds = math.ceil(k / rows)
    if flow != Dataflow.OS and k_folds > 1:
        slab, slab_cap = ((k * min(n, cols) * elem_bytes[1], cap_f) if flow == Dataflow.WS
                          else (k * min(m, cols) * elem_bytes[0], cap_i))
        tile = (m * min(n, cols) if flow == Dataflow.WS else min(m, cols) * n) * acc_bytes
        if tile > cap_o and slab > slab_cap:
            psum = int(2 * m * n * count * (k_folds - 1) * acc_bytes)
    return Traffic(int(math.ceil((a_bytes if read_a else 0.0) + extra_a)), int(math.ceil(b_bytes + extra_b)),
                   int(math.ceil(o_bytes)) if write_o else 0, psum)


def roofline(busy_cycles: int, dram_bytes: int, bytes_per_cycle: float, double_buffer: bool) -> tuple[int, int]:
    """Return (memory_cycles, total_cycles) for a layer that keeps the array/vector unit busy ``busy_cycles``."""
    memory = math.ceil(dram_bytes / bytes_per_cycle) if dram_bytes else 0
    total = max(busy_cycles, memory) if double_buffer else busy_cycles + memory
    return memory, total
