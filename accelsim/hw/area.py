"""A first-order silicon area model, so design-space fronts are not trivially "bigger is better".

With the hw config's ``area`` section (each number sourced in the YAML)::

    area_mm2 = node_scale · ( R·C · pe_mm2 · (base_bits / 8)²                    PEs (a multiplier grows as bits²)
                              + Σ on-chip levels · bytes / 1024 · sram_mm2_per_kib )   SRAMs and per-PE registers

Per-PE register levels count R·C copies at SRAM density (a lower bound for flip-flop register files). The
vector unit, NoC and I/O are not modelled. Without an ``area`` section the area is not computed (``None``).
"""
from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..config.hw import HWConfig


def area_mm2(hw: HWConfig):
    """Silicon area in mm² (a number, or an array over configurations in a sweep); None without ``area``."""
    a = hw.area
    if a is None:
        return None
    pes = hw.array.rows * hw.array.cols
    logic = pes * a.pe_mm2 * (hw.pe.base_bits / 8) ** 2
    sram = 0.0
    for lv in hw.memory.levels[:-1]:
        sram = sram + lv.size_bytes * (pes if lv.per_pe else 1) / 1024 * a.sram_mm2_per_kib
    return a.node_scale * (logic + sram)
