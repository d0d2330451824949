"""The memory system as a list of levels (per-PE registers, SRAMs, DRAM), and its validating reader.

A level serves some of the three GEMM operands (``input``, ``weight``, ``output``) and has a size, an
optional bandwidth and an energy per byte read and written. Levels are listed from the PEs outwards and
the last one is DRAM, which serves every operand::

    memory:
      double_buffer: true        # an on-chip level keeps half its capacity for the next tile
      strided_gather: true       # the DMA fetches only the input pixels a strided/dilated conv reads
      levels:
        - {name: w_rf, kind: register, size_bytes: 128, operands: [weight], access_bits: 8, read_pj: 0.095, write_pj: 0.095}
        - {name: buf, kind: sram, size_kib: 2048, operands: [input, output], access_bits: 2048,
           read_pj: 416.16, write_pj: 378.4, bytes_per_cycle: 256}
        - {name: dram, kind: dram, operands: [input, weight, output], access_bits: 64,
           read_pj: 700, write_pj: 750, bytes_per_cycle: 8}

**Weights held across inferences** (``resident: weights``, on an on-chip level, with an optional budget
``resident_kib``, default the level's size): the level keeps model parameters from one inference to the next
(the Coral Edge TPU's parameter cache; TPU v1's unified buffer). Which layers' weights stay is decided by
:mod:`accelsim.hw.placement` (execution order until the budget is used); the rest is streamed from the levels
outside on every inference. ``activation_placement`` chooses how activations share on-chip capacity with them
(:data:`accelsim.hw.placement.ACTIVATION_PLACEMENTS`: ``fits`` — today's per-tensor rule, the resident budget
set aside first; ``live`` — the Edge TPU compiler's: activations allocated first by liveness, the weights
get what they leave).

What varies by kind lives in :data:`LEVEL_KINDS`. Energies of listed levels are per access of
``access_bits`` at the chip's node (``pj · 8 / access_bits`` per byte; not multiplied by
``energy.tech_scale``). A register's size is per PE.

**Shorthand** (the original form): ``ifmap_sram_kib``, ``filter_sram_kib``, ``ofmap_sram_kib`` and
``dram_gbps`` are three single-operand SRAM levels plus DRAM, whose energies come from the energy table:
``sram_pj_per_byte · (min(S, sram_bank_kib) / sram_ref_kib) ** sram_size_exponent · tech_scale`` for an SRAM
of S KiB (read = write) and ``dram_pj_per_byte``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Mapping

import numpy as np

from ..hw import xp
from .fields import Reader

OPERANDS = ("input", "weight", "output")
#: the rows of :data:`accelsim.hw.placement.ACTIVATION_PLACEMENTS` (named here: config is read before hw/)
ACTIVATION_PLACEMENTS = ("fits", "live")


@dataclass(frozen=True, slots=True)
class LevelKind:
    order: int              # levels are listed in non-decreasing order (PEs outwards)
    size_key: str | None    # the YAML field giving the size, None = unbounded
    size_unit: int          # bytes per unit of size_key
    per_pe: bool            # one instance in every PE (size is per PE)
    needs_bandwidth: bool


LEVEL_KINDS = MappingProxyType({
    "register": LevelKind(0, "size_bytes", 1, True, False),
    "sram": LevelKind(1, "size_kib", 1024, False, False),
    "dram": LevelKind(2, None, 1, False, True),
})


@dataclass(frozen=True, slots=True)
class MemoryLevel:
    name: str
    kind: str
    size_bytes: float                 # per PE for registers; math.inf for DRAM
    operands: tuple[str, ...]
    read_pj_per_byte: float
    write_pj_per_byte: float
    bytes_per_cycle: float | None = None   # None: never the bottleneck
    gbps: float | None = None              # alternative to bytes_per_cycle (converted with the clock)
    resident: tuple[str, ...] = ()         # operands kept across inferences (only "weight")
    resident_bytes: float = 0.0            # the budget for them (≤ size_bytes)
    per_pe: bool = field(init=False, compare=False, repr=False)    # from LEVEL_KINDS
    is_dram: bool = field(init=False, compare=False, repr=False)

    def __post_init__(self):
        object.__setattr__(self, "per_pe", LEVEL_KINDS[self.kind].per_pe)
        object.__setattr__(self, "is_dram", LEVEL_KINDS[self.kind].size_key is None)

    @property
    def category(self) -> str:
        """register | sram | dram: where its energy is reported (every on-chip non-register level is 'sram')."""
        return "register" if self.per_pe else "dram" if self.is_dram else "sram"

    def bandwidth(self, clock_mhz: float) -> float:
        """Bytes per array cycle (math.inf when unbounded)."""
        if self.gbps is not None:
            return self.gbps * 1e3 / clock_mhz
        return self.bytes_per_cycle if self.bytes_per_cycle is not None else math.inf


@dataclass(frozen=True, slots=True)
class MemoryConfig:
    levels: tuple[MemoryLevel, ...]
    double_buffer: bool
    strided_gather: bool = False
    activation_placement: str = "fits"
    #: per operand, the register levels and the on-chip buffer levels serving it (PEs outwards)
    registers: Mapping[str, tuple[MemoryLevel, ...]] = field(init=False, compare=False, repr=False)
    buffers: Mapping[str, tuple[MemoryLevel, ...]] = field(init=False, compare=False, repr=False)
    by_name: Mapping[str, MemoryLevel] = field(init=False, compare=False, repr=False)

    def __post_init__(self):
        serving = {op: tuple(lv for lv in self.levels if op in lv.operands) for op in OPERANDS}
        object.__setattr__(self, "registers", MappingProxyType({op: tuple(lv for lv in ch if lv.per_pe)
                                                                for op, ch in serving.items()}))
        object.__setattr__(self, "buffers", MappingProxyType({op: tuple(lv for lv in ch if not lv.per_pe and not lv.is_dram)
                                                              for op, ch in serving.items()}))
        object.__setattr__(self, "by_name", MappingProxyType({lv.name: lv for lv in self.levels}))

    @property
    def dram(self) -> MemoryLevel:
        return self.levels[-1]

    @property
    def dram_gbps(self) -> float | None:
        return self.dram.gbps

    def _shorthand_kib(self, operand: str) -> float | None:
        named = [lv for lv in self.buffers[operand] if lv.name == f"{SHORTHAND_NAMES[operand]}_sram"]
        return named[0].size_bytes / 1024 if named else None

    # the shorthand's field names, kept for scripts that read them (None for a list-form config)
    ifmap_sram_kib = property(lambda self: self._shorthand_kib("input"))
    filter_sram_kib = property(lambda self: self._shorthand_kib("weight"))
    ofmap_sram_kib = property(lambda self: self._shorthand_kib("output"))

    @property
    def resident_level(self) -> MemoryLevel | None:
        """The level that holds weights across inferences (at most one), or None."""
        return next((lv for lv in self.levels if lv.resident), None)

    def serving(self, operand: str) -> tuple[MemoryLevel, ...]:
        """The levels that hold ``operand``, from the PEs outwards (the last is DRAM)."""
        return tuple(lv for lv in self.levels if operand in lv.operands)

    def usable_bytes(self, level: MemoryLevel, pes: int, reserved=0.0) -> float:
        """Capacity of ``level`` for one operand: what ``reserved`` bytes (weights held across inferences)
        leave, halved when double-buffered, shared evenly by its operands; all PEs' registers together for a
        register level."""
        size = level.size_bytes * (pes if level.per_pe else 1) - reserved
        return size * (0.5 if self.double_buffer and not level.per_pe else 1.0) / len(level.operands)


def scaled_sram_pj_per_byte(energy, size_kib: float) -> float:
    """Shorthand SRAM energy per byte from the energy table (module docstring)."""
    e = energy
    return (e.sram_pj_per_byte * (xp.minimum(size_kib, e.sram_bank_kib) / e.sram_ref_kib) ** e.sram_size_exponent
            * e.tech_scale)


SHORTHAND = (("ifmap_sram_kib", "input"), ("filter_sram_kib", "weight"), ("ofmap_sram_kib", "output"))
SHORTHAND_NAMES = {"input": "ifmap", "weight": "filter", "output": "ofmap"}


def is_shorthand(data) -> bool:
    return not (isinstance(data, dict) and "levels" in data)


def read_memory(r: Reader, energy) -> MemoryConfig:
    """Validate the ``memory`` section (list or shorthand form); problems go to ``r.problems``."""
    double_buffer = r.boolean("double_buffer", True)
    gather = r.boolean("strided_gather", False)
    placement = r.choice("activation_placement", ACTIVATION_PLACEMENTS, "fits")
    if is_shorthand(r.data):
        levels = [MemoryLevel(key.split("_")[0] + "_sram", "sram", r.pos_float(key) * 1024, (op,),
                              *(2 * [scaled_sram_pj_per_byte(energy, r.pos_float(key))]))
                  for key, op in SHORTHAND]
        levels.append(MemoryLevel("dram", "dram", math.inf, OPERANDS, energy.dram_pj_per_byte,
                                  energy.dram_pj_per_byte, gbps=r.pos_float("dram_gbps")))
    else:
        levels = _levels(r)
    r.reject_unknown()
    return MemoryConfig(tuple(levels), double_buffer, gather, placement)


def _levels(r: Reader) -> list[MemoryLevel]:
    raw = r.raw("levels")
    path = f"{r.path}.levels"
    if not isinstance(raw, list) or not raw:
        r.bad("levels", "a non-empty list of memory levels (the last one DRAM)", raw)
        return [MemoryLevel("dram", "dram", math.inf, OPERANDS, 0.0, 0.0, 1.0)]
    levels = [_level(Reader(item, f"{path}[{i}]", r.problems)) for i, item in enumerate(raw)]
    names = [lv.name for lv in levels]
    for i, lv in enumerate(levels):
        if names.index(lv.name) != i:
            r.problems.append(f"{path}[{i}].name: expected a unique level name, got {lv.name!r} again")
        if i and LEVEL_KINDS[lv.kind].order < LEVEL_KINDS[levels[i - 1].kind].order:
            r.problems.append(f"{path}[{i}].kind: expected levels ordered register, sram, dram (PEs outwards), "
                              f"got {lv.kind!r} after {levels[i - 1].kind!r}")
    holders = [i for i, lv in enumerate(levels) if lv.resident]
    if len(holders) > 1:
        r.problems.append(f"{path}[{holders[1]}].resident: expected at most one level holding weights across "
                          f"inferences, got another after {levels[holders[0]].name!r}")
    drams = [i for i, lv in enumerate(levels) if lv.is_dram]
    if drams != [len(levels) - 1]:
        r.problems.append(f"{path}: expected exactly one level of kind 'dram', listed last, got {len(drams)}")
    elif set(levels[-1].operands) != set(OPERANDS):
        r.problems.append(f"{path}[{len(levels) - 1}].operands: expected the DRAM level to serve "
                          f"{', '.join(OPERANDS)}, got {', '.join(levels[-1].operands)}")
    return levels


def _level(r: Reader) -> MemoryLevel:
    name = r.string("name")
    kind_name = r.choice("kind", list(LEVEL_KINDS))
    kind = LEVEL_KINDS[kind_name]
    size = r.pos_float(kind.size_key) * kind.size_unit if kind.size_key else math.inf
    operands = r.raw("operands")
    if not isinstance(operands, list) or not operands or any(o not in OPERANDS for o in operands) \
            or len(set(operands)) != len(operands):
        r.bad("operands", "a non-empty list of distinct operands from " + " | ".join(OPERANDS), operands)
        operands = list(OPERANDS)
    per_byte = 8 / r.pos_int("access_bits", 8)
    read_pj, write_pj = r.nonneg_float("read_pj"), r.nonneg_float("write_pj")
    bpc = r.pos_float("bytes_per_cycle", None)
    gbps = r.pos_float("gbps", None)
    if bpc is not None and gbps is not None:
        r.bad("gbps", "either bytes_per_cycle or gbps, not both", gbps)
    elif kind.needs_bandwidth and bpc is None and gbps is None:
        r.bad("bytes_per_cycle", f"a bandwidth (bytes_per_cycle or gbps) for a {kind_name} level", None)
        bpc = 1.0
    resident, budget = _resident(r, kind_name, size, operands)
    r.reject_unknown()
    return MemoryLevel(name, kind_name, size, tuple(operands), read_pj * per_byte, write_pj * per_byte, bpc, gbps,
                       resident, budget)


def _resident(r: Reader, kind: str, size: float, operands: list) -> tuple[tuple[str, ...], float]:
    """``resident: weights`` and its budget ``resident_kib`` (default: the whole level)."""
    if "resident" not in r.data:
        if "resident_kib" in r.data:
            r.bad("resident_kib", "no budget without 'resident: weights'", r.raw("resident_kib"))
        return (), 0.0
    r.choice("resident", ["weights"])
    if kind != "sram" or "weight" not in operands:
        r.bad("resident", "'weights' only on an sram level that serves weight", r.raw("resident"))
        return (), 0.0
    budget = r.pos_float("resident_kib", size / 1024) * 1024
    if not np.all(np.asarray(budget) <= np.asarray(size)):
        r.bad("resident_kib", f"at most the level's size_kib", r.raw("resident_kib"))
    return ("weight",), budget
