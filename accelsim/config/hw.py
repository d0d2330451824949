"""Hardware configuration: frozen dataclasses and their validating ``from_dict``.

Every number in a bundled ``hw_configs/*.yaml`` carries a comment naming its source or saying it is an
assumption; this module only checks types and ranges and reports *all* problems at once with field paths.

Physical bounds (on top of the generic rules of :mod:`accelsim.config.fields`: finite numbers, positive ones in
[1e-15, 1e12], integers ≤ 2**31): ``clock_mhz`` in [1e-3, 1e6] (1 kHz to 1 THz); ``array.rows``/``cols`` ≤ 2**16;
``pe.base_bits`` ≤ 64, ``pe.acc_bits`` ≤ 128; ``pe.float_macs_per_cycle`` in [2**-10, 2**10];
``energy.sram_size_exponent`` ≤ 4; ``vector.lanes`` ≤ 2**20 and ``vector.ops_per_element`` ≤ 1e6. Together with
the model bounds (:mod:`accelsim.graph`) they keep every closed form of the cost model finite and its int64
arithmetic exact.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Mapping

import numpy as np

from ..errors import ConfigError
from ..hw.dataflow import DATAFLOWS, GROUPED_MAPPINGS, DataflowSpec, GroupedMapping
from ..ops import VECTOR_OPS
from .fields import MISSING, Reader
from .memory import MemoryConfig, is_shorthand, read_memory

MAX_CLOCK_MHZ, MIN_CLOCK_MHZ = 1e6, 1e-3
MAX_ARRAY_DIM = 1 << 16
MAX_BASE_BITS, MAX_ACC_BITS = 64, 128
MIN_FLOAT_RATE, MAX_FLOAT_RATE = 2.0 ** -10, 2.0 ** 10
MAX_SRAM_EXPONENT = 4.0
MAX_LANES = 1 << 20
MAX_OPS_PER_ELEMENT = 1e6
MAX_OVERHEAD_CYCLES = 1e9
FLOAT_PRECISIONS = ("fp16", "bf16", "fp32")
INT_PRECISIONS = ("int2", "int4", "int8", "int16")
PRECISIONS = INT_PRECISIONS + FLOAT_PRECISIONS
#: Vector-unit operations per element for each elementwise op kind (assumption, overridable per hw YAML).
DEFAULT_VECTOR_OPS = MappingProxyType(VECTOR_OPS)   # per-op defaults live in the op registry



@dataclass(frozen=True, slots=True)
class ArrayConfig:
    rows: int
    cols: int
    dataflow: DataflowSpec
    grouped: GroupedMapping = GROUPED_MAPPINGS["serial"]


@dataclass(frozen=True, slots=True)
class PEConfig:
    """A processing element of ``base_bits`` integer width (Bit Fusion style, DESIGN §5.2).

    ``int_bits``: integer operand widths the PE can fuse (each must divide ``base_bits``).
    ``float_macs_per_cycle``: MACs per PE per cycle for each supported float mode (absent = unsupported).
    """
    base_bits: int
    acc_bits: int
    overflow: str
    int_bits: tuple[int, ...]
    float_macs_per_cycle: Mapping[str, float]


@dataclass(frozen=True, slots=True)
class TimingConfig:
    """Timing options real arrays have (DESIGN §5.1 "beyond SCALE-Sim"); the defaults are SCALE-Sim's fold
    model with a per-layer roofline.

    ``stationary_double_buffer``: the next fold's stationary tile loads while this fold computes
    (:mod:`accelsim.hw.dataflow`). ``dram_overlap``: ``layer`` — one roofline per layer,
    ``max(busy, transfer)``; ``fold`` — transfers run ahead of the folds that need them
    (:mod:`accelsim.hw.schedule`). ``load_store_phases``: the first fold waits for its operands and the last
    output tile is written after the last fold, instead of overlapping the neighbouring layers.
    ``vector_overlap``: ``none`` — vector work runs after the array; ``epilogue`` — element-wise and row-wise
    vector work runs on a GEMM's output tiles as they drain (:mod:`accelsim.sim.overlap`).
    Fixed costs (:mod:`accelsim.sim.engine`): ``layer_overhead_cycles`` for every layer that does work
    (instruction issue and synchronisation), ``dma_overhead_cycles`` for every transfer to or from the
    outermost level (one per operand stream of a layer), ``run_overhead_cycles`` once per run (a batch).
    """
    stationary_double_buffer: bool = False
    dram_overlap: str = "layer"
    load_store_phases: bool = False
    vector_overlap: str = "none"
    layer_overhead_cycles: float = 0.0
    dma_overhead_cycles: float = 0.0
    run_overhead_cycles: float = 0.0


@dataclass(frozen=True, slots=True)
class EnergyTable:
    """Energy per event in picojoules.

    ``mac_pj`` (keyed by precision: ``int8``, ``int4``, ``fp16`` ...), ``sram_pj_per_byte`` (for an SRAM of
    ``sram_ref_kib``) and ``vector_op_pj`` are given at the reference node (Horowitz 45 nm) and multiplied by
    ``tech_scale`` for the chip's node. An SRAM of S KiB built from banks of ``sram_bank_kib`` (an access
    touches one bank) costs ``sram_pj_per_byte · (min(S, bank) / sram_ref_kib) ** sram_size_exponent`` per byte. ``dram_pj_per_byte`` (per DRAM type) and ``leakage_mw`` are absolute.
    """
    mac_pj: Mapping[str, float]
    sram_pj_per_byte: float
    sram_ref_kib: float
    sram_size_exponent: float
    sram_bank_kib: float
    tech_scale: float
    dram_pj_per_byte: float
    vector_op_pj: float
    leakage_mw: float


@dataclass(frozen=True, slots=True)
class VectorConfig:
    """Vector unit for elementwise work: ``lanes`` operations per cycle; ``ops_per_element`` per op kind."""
    lanes: int
    ops_per_element: Mapping[str, float]


@dataclass(frozen=True, slots=True)
class AreaModel:
    """First-order area (:mod:`accelsim.hw.area`): mm² per 8-bit PE and per KiB of SRAM at a reference node,
    and ``node_scale`` = area at this chip's node / area at the reference node."""
    pe_mm2: float
    sram_mm2_per_kib: float
    node_scale: float


@dataclass(frozen=True, slots=True)
class HWConfig:
    name: str
    clock_mhz: float
    array: ArrayConfig
    pe: PEConfig
    memory: MemoryConfig
    energy: EnergyTable
    vector: VectorConfig
    timing: TimingConfig = TimingConfig()
    area: AreaModel | None = None
    source: str = field(default="", compare=False)
    data: Mapping | None = field(default=None, compare=False, repr=False)   # the fields from_dict validated

    @classmethod
    def from_dict(cls, data, path: str = "hw", source: str = "") -> "HWConfig":
        """Validate ``data``; raise one ConfigError listing every problem with its field path."""
        problems: list[str] = []
        r = Reader(data, path, problems)
        name = r.string("name", "custom")
        clock = r.pos_float("clock_mhz", minimum=MIN_CLOCK_MHZ, maximum=MAX_CLOCK_MHZ)
        array = _array(r.mapping("array"))
        pe = _pe(r.mapping("pe"))
        mem = r.mapping("memory")
        energy = _energy(r.mapping("energy"), shorthand=is_shorthand(mem.data))
        memory = read_memory(mem, energy)
        vector = _vector(r.mapping("vector", {}))
        timing = _timing(r.mapping("timing", {}))
        area = _area(r.mapping("area")) if "area" in (data if isinstance(data, dict) else {}) else None
        r.reject_unknown()
        if problems:
            raise ConfigError(problems, source)
        return cls(name, clock, array, pe, memory, energy, vector, timing, area, source, data)


def _array(r: Reader) -> ArrayConfig:
    rows, cols = r.pos_int("rows", maximum=MAX_ARRAY_DIM), r.pos_int("cols", maximum=MAX_ARRAY_DIM)
    flow = r.choice("dataflow", list(DATAFLOWS))
    grouped = r.choice("grouped", list(GROUPED_MAPPINGS), "serial")
    r.reject_unknown()
    return ArrayConfig(rows, cols, DATAFLOWS[flow], GROUPED_MAPPINGS[grouped])


def _pe(r: Reader) -> PEConfig:
    base = r.pos_int("base_bits", 8, maximum=MAX_BASE_BITS)
    acc = r.pos_int("acc_bits", 32, maximum=MAX_ACC_BITS)
    overflow = r.choice("overflow", ["saturate", "wrap"], "saturate")
    raw_bits = r.raw("int_bits", [b for b in (8, 4, 2) if b <= base and base % b == 0])
    bits: list[int] = []
    if not isinstance(raw_bits, list) or not raw_bits:
        r.bad("int_bits", "a non-empty list of integer widths that divide base_bits", raw_bits)
    else:
        for i, b in enumerate(raw_bits):
            if isinstance(b, bool) or not isinstance(b, int) or b < 2 or base % b:
                r.problems.append(f"{r.path}.int_bits[{i}]: expected a width ≥ 2 dividing base_bits={base}, got {b}")
            else:
                bits.append(b)
    low = np.asarray(acc) < 2 * base      # in a sweep, acc_bits is an array over configurations
    if low.any():
        r.bad("acc_bits", f"at least 2·base_bits = {2 * base}", acc if not low.ndim else int(acc[low][0]))
    floats = r.mapping("float_macs_per_cycle", {})
    float_rates = {k: floats.pos_float(k, minimum=MIN_FLOAT_RATE, maximum=MAX_FLOAT_RATE)
                   for k in FLOAT_PRECISIONS if k in floats.data}
    floats.reject_unknown()
    r.reject_unknown()
    return PEConfig(base, acc, overflow, tuple(sorted(set(bits), reverse=True)), MappingProxyType(float_rates))


def _area(r: Reader) -> AreaModel:
    a = AreaModel(r.pos_float("pe_mm2"), r.pos_float("sram_mm2_per_kib"), r.pos_float("node_scale", 1.0))
    r.reject_unknown()
    return a


def _timing(r: Reader) -> TimingConfig:
    t = TimingConfig(r.boolean("stationary_double_buffer", False), r.choice("dram_overlap", ["layer", "fold"], "layer"),
                     r.boolean("load_store_phases", False), r.choice("vector_overlap", ["none", "epilogue"], "none"),
                     r.nonneg_float("layer_overhead_cycles", 0.0, maximum=MAX_OVERHEAD_CYCLES),
                     r.nonneg_float("dma_overhead_cycles", 0.0, maximum=MAX_OVERHEAD_CYCLES),
                     r.nonneg_float("run_overhead_cycles", 0.0, maximum=MAX_OVERHEAD_CYCLES))
    r.reject_unknown()
    return t


def _energy(r: Reader, shorthand: bool = True) -> EnergyTable:
    """``sram_pj_per_byte`` and ``dram_pj_per_byte`` are required only by the shorthand memory form."""
    macs = r.mapping("mac_pj")
    mac_pj = {k: macs.pos_float(k) for k in PRECISIONS if k in macs.data}
    macs.reject_unknown()
    if "int8" not in mac_pj and not r.problems:
        macs.bad("int8", "a positive number (the reference MAC energy)", None)
    e = EnergyTable(MappingProxyType(mac_pj), r.nonneg_float("sram_pj_per_byte", MISSING if shorthand else 0.0), r.pos_float("sram_ref_kib", 8.0),
                    r.nonneg_float("sram_size_exponent", 0.5, maximum=MAX_SRAM_EXPONENT),
                    r.pos_float("sram_bank_kib", 1e12),
                    r.pos_float("tech_scale", 1.0),
                    r.nonneg_float("dram_pj_per_byte", MISSING if shorthand else 0.0), r.nonneg_float("vector_op_pj", 0.0),
                    r.nonneg_float("leakage_mw", 0.0))
    r.reject_unknown()
    return e


def _vector(r: Reader) -> VectorConfig:
    lanes = r.pos_int("lanes", 64, maximum=MAX_LANES)
    ops = r.mapping("ops_per_element", {})
    table = dict(DEFAULT_VECTOR_OPS)
    for k in list(ops.data):
        if k in DEFAULT_VECTOR_OPS:
            table[k] = ops.nonneg_float(k, maximum=MAX_OPS_PER_ELEMENT)
    ops.reject_unknown()
    r.reject_unknown()
    return VectorConfig(lanes, MappingProxyType(table))
