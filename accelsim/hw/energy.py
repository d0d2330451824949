"""Energy per layer: MACs, SRAM, DRAM, vector unit and static (leakage) power.

With ``s = energy.tech_scale`` (reference node → chip node):

* MAC: ``macs · e_mac · s``. Integer MACs on a Bit Fusion PE of base width B: the fused unit spends about
  the same energy per cycle whatever it computes, so ``e_mac = mac_pj[int{B}] / f`` with
  ``f = (B/a_bits)·(B/w_bits)`` MACs per cycle (INT4×INT4 on an 8-bit PE: ¼ of an INT8 MAC). A table entry
  for the exact width (``int4`` for w4a4) overrides this. Float modes: ``mac_pj[mode]``.
* memory: ``Σ over levels and operands of read_bytes · read_pj_per_byte + write_bytes · write_pj_per_byte``
  (:mod:`accelsim.config.memory` gives each level's energies; :mod:`accelsim.hw.memory` the bytes), reported
  as register, SRAM (every other on-chip level) and DRAM energy.
* vector: ``ops · vector_op_pj · s``.
* static: ``leakage_mw · 1e-3 · seconds · 1e12`` pJ, for the layer's whole latency.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Iterable

from .mac import Precision

if TYPE_CHECKING:
    from ..config.hw import HWConfig
    from .memory import LevelTraffic


def mac_energy_pj(hw: HWConfig, precision: Precision, macs_per_cycle: float) -> float:
    """Energy of one MAC at this precision on this chip (pJ), node-scaled."""
    table, scale = hw.energy.mac_pj, hw.energy.tech_scale
    if precision.float_mode:      # float and weight-only precisions: a float MAC
        return table[precision.float_mode] * scale
    if precision.a_bits == precision.w_bits and f"int{precision.a_bits}" in table:
        return table[f"int{precision.a_bits}"] * scale
    base = table.get(f"int{hw.pe.base_bits}", table["int8"] * (hw.pe.base_bits / 8) ** 2)
    return base / macs_per_cycle * scale


def level_energy_pj(hw: HWConfig, traffic: Iterable[LevelTraffic]) -> dict[str, float]:
    """Energy of each memory level (pJ), keyed by level name, from its bytes read and written."""
    levels = hw.memory.by_name
    out = dict.fromkeys(levels, 0.0)
    for t in traffic:     # no in-place +=: an entry may be a number, an array over layers or over configurations
        lv = levels[t.level]
        out[t.level] = out[t.level] + (t.read_bytes * lv.read_pj_per_byte + t.write_bytes * lv.write_pj_per_byte)
    return out


def by_kind(hw: HWConfig, per_level: dict[str, float]) -> tuple[float, float, float]:
    """(register, sram, dram) energy from per-level energy."""
    levels = hw.memory.by_name
    total = {"register": 0.0, "sram": 0.0, "dram": 0.0}
    for name, pj in per_level.items():
        kind = levels[name].category
        total[kind] = total[kind] + pj
    return total["register"], total["sram"], total["dram"]


def static_pj(hw: HWConfig, cycles: int) -> float:
    seconds = cycles / (hw.clock_mhz * 1e6)
    return hw.energy.leakage_mw * 1e-3 * seconds * 1e12
