"""Energy per layer: MACs, SRAM, DRAM, vector unit and static (leakage) power.

With ``s = energy.tech_scale`` (reference node → chip node):

* MAC: ``macs · e_mac · s``. Integer MACs on a Bit Fusion PE of base width B: the fused unit spends about
  the same energy per cycle whatever it computes, so ``e_mac = mac_pj[int{B}] / f`` with
  ``f = (B/a_bits)·(B/w_bits)`` MACs per cycle (INT4×INT4 on an 8-bit PE: ¼ of an INT8 MAC). A table entry
  for the exact width (``int4`` for w4a4) overrides this. Float modes: ``mac_pj[mode]``.
* SRAM: ``bytes · sram_pj_per_byte · (min(size_kib, sram_bank_kib) / sram_ref_kib) ** sram_size_exponent · s``.
* DRAM: ``bytes · dram_pj_per_byte`` (interface energy, not node-scaled).
* vector: ``ops · vector_op_pj · s``.
* static: ``leakage_mw · 1e-3 · seconds · 1e12`` pJ, for the layer's whole latency.
"""
from __future__ import annotations

from ..config.hw import HWConfig
from .mac import Precision


def mac_energy_pj(hw: HWConfig, precision: Precision, macs_per_cycle: float) -> float:
    """Energy of one MAC at this precision on this chip (pJ), node-scaled."""
    table, scale = hw.energy.mac_pj, hw.energy.tech_scale
    if precision.is_float:
        return table[precision.float_mode] * scale
    if precision.a_bits == precision.w_bits and f"int{precision.a_bits}" in table:
        return table[f"int{precision.a_bits}"] * scale
    base = table.get(f"int{hw.pe.base_bits}", table["int8"] * (hw.pe.base_bits / 8) ** 2)
    return base / macs_per_cycle * scale


def sram_pj_per_byte(hw: HWConfig, size_kib: float) -> float:
    e = hw.energy
    return e.sram_pj_per_byte * (min(size_kib, e.sram_bank_kib) / e.sram_ref_kib) ** e.sram_size_exponent * e.tech_scale


def static_pj(hw: HWConfig, cycles: int) -> float:
    seconds = cycles / (hw.clock_mhz * 1e6)
    return hw.energy.leakage_mw * 1e-3 * seconds * 1e12
