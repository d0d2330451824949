"""Result types of a simulation: per-layer costs and the run's totals (model size, latency, energy, power)."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from operator import attrgetter, mul
from typing import Mapping

from ..config.hw import HWConfig
from ..hw import xp
from ..hw.memory import LevelTraffic
from ..graph import Model
from ..ops import OPS



@dataclass(frozen=True, slots=True)
class Timing:
    """Cycles of one layer (see :mod:`accelsim.sim.engine` for each field's formula)."""
    folds: int = 0
    macs_per_pe_cycle: float = 0.0
    compute_cycles: int = 0
    scalesim_cycles: int = 0
    vector_cycles: int = 0
    memory_cycles: int = 0
    cycles: int = 0
    stall_cycles: int = 0
    bound: str = "none"
    utilization: float = 0.0
    mapping_efficiency: float = 0.0
    stall_by_level: Mapping[str, int] = field(default_factory=dict)
    overhead_cycles: int = 0                  # fixed per-layer and per-transfer costs (timing.*_overhead_cycles)
    emulated_cycles: int | None = None        # cycle-level array, SCALE-Sim convention (accelsim.sim.emulate)
    emulation_match: bool | None = None       # emulated cycles and SRAM words == the closed form


@dataclass(frozen=True, slots=True)
class Traffic:
    """SCALE-Sim's SRAM words, DRAM bytes by operand, and bytes per memory level and operand."""
    sram_ifmap_reads: int = 0
    sram_filter_reads: int = 0
    sram_ofmap_writes: int = 0
    dram_ifmap_bytes: int = 0
    dram_filter_bytes: int = 0
    dram_ofmap_bytes: int = 0
    dram_psum_bytes: int = 0
    levels: tuple[LevelTraffic, ...] = ()
    resident_weight_bytes: float = 0.0      # weights held on chip across inferences (no traffic from outside)
    streamed_weight_bytes: int = 0          # weights brought from the outermost level during this run

    @property
    def dram_bytes(self) -> int:
        return self.dram_ifmap_bytes + self.dram_filter_bytes + self.dram_ofmap_bytes + self.dram_psum_bytes


@dataclass(frozen=True, slots=True)
class Energy:
    """Energy of one layer in pJ, by where it is spent; ``by_level`` splits register + SRAM + DRAM."""
    mac_pj: float = 0.0
    register_pj: float = 0.0
    sram_pj: float = 0.0
    dram_pj: float = 0.0
    vector_pj: float = 0.0
    static_pj: float = 0.0
    by_level: Mapping[str, float] = field(default_factory=dict)

    @property
    def total_pj(self) -> float:
        return self.mac_pj + self.register_pj + self.sram_pj + self.dram_pj + self.vector_pj + self.static_pj


@dataclass(frozen=True, slots=True)
class LayerCost:
    """One layer's cost: its GEMM (if any), and its timing, traffic and energy records. The flat attribute
    names of the JSON (``cycles``, ``dram_ifmap_bytes``, ``energy_mac_pj`` ...) read through to the records."""
    name: str
    op: str
    precision: str
    a_bits: int
    w_bits: int
    m: int = 0
    n: int = 0
    k: int = 0
    count: int = 0
    macs: int = 0
    params: int = 0
    timing: Timing = Timing()
    traffic: Traffic = Traffic()
    energy: Energy = Energy()

    @classmethod
    def idle(cls, name: str, op: str, precision: str, a_bits: int, w_bits: int, params: int,
             bound: str = "none") -> "LayerCost":
        """A layer that costs nothing (layout change; ``bound="fused"``: folded/fused into its producer)."""
        return cls(name, op, precision, a_bits, w_bits, params=params, timing=Timing(bound=bound))

    @property
    def dram_bytes(self) -> int:
        return self.traffic.dram_bytes

    @property
    def energy_pj(self) -> float:
        return self.energy.total_pj

    def to_dict(self) -> dict:
        """The flat JSON record (field names are stable; ``levels``/``stall_by_level``/``energy_by_level_pj``
        and ``energy_register_pj`` extend it)."""
        d = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in ("timing", "traffic", "energy")}
        for name in _TIMING + _TRAFFIC:
            d[name] = getattr(self, name)
        for name in _ENERGY:
            d[f"energy_{name}"] = getattr(self.energy, name)
        d["dram_bytes"], d["energy_pj"] = self.dram_bytes, self.energy_pj
        d["stall_by_level"] = dict(self.timing.stall_by_level)
        d["energy_by_level_pj"] = dict(self.energy.by_level)
        d["levels"] = [asdict(t) for t in self.traffic.levels]
        return d


_TIMING = tuple(f.name for f in fields(Timing) if f.name != "stall_by_level")
_TRAFFIC = tuple(f.name for f in fields(Traffic) if f.name != "levels")
_ENERGY = ("mac_pj", "register_pj", "sram_pj", "dram_pj", "vector_pj", "static_pj")
for _name in _TIMING:
    setattr(LayerCost, _name, property(lambda self, n=_name: getattr(self.timing, n)))
for _name in _TRAFFIC:
    setattr(LayerCost, _name, property(lambda self, n=_name: getattr(self.traffic, n)))
for _name in _ENERGY:
    setattr(LayerCost, f"energy_{_name}", property(lambda self, n=_name: getattr(self.energy, n)))


@dataclass(frozen=True, slots=True)
class RunReport:
    model: str
    hw: str
    precision: str
    layers: tuple[LayerCost, ...]
    totals: dict = field(default_factory=dict)
    config: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"model": self.model, "hw": self.hw, "precision": self.precision, "config": self.config,
                "layers": [c.to_dict() for c in self.layers], "totals": self.totals}


def totals(layers, hw: HWConfig, model: Model, precs, batch: int = 1) -> dict:
    """The run's totals. Cycles, traffic and energy of the layers are for the whole batch; ``latency_ms`` is the
    batch's latency, ``inferences_per_s`` counts every inference of it, and the energies and ``dram_mb`` are
    per inference (at batch 1 the same numbers)."""
    tim = [c.timing for c in layers]
    traffic = [c.traffic for c in layers]
    run_overhead = xp.ceil(hw.timing.run_overhead_cycles)
    cycles = sum(map(_get.cycles, tim)) + run_overhead
    compute = sum(map(_get.compute_cycles, tim))
    macs = sum(map(_get.macs, layers))
    size = 0.0
    for layer, p in zip(model.layers, precs):   # norm parameters and biases stay 32-bit in a quantized model
        if layer.params:                        # (a layer without parameters adds nothing)
            wide = OPS[layer.op].wide_params(layer.attrs, list(layer.in_shapes))
            size += (layer.params - wide) * p.weight_bytes + wide * p.wide_bytes
    seconds = cycles / (hw.clock_mhz * 1e6)
    slots = (sum(map(mul, map(_get.compute_cycles, tim), map(_get.macs_per_pe_cycle, tim)))
             * hw.array.rows * hw.array.cols)
    energies = [c.energy for c in layers]
    energy = {k: sum(map(get, energies)) for k, get in _ENERGY_KINDS}
    energy["static"] = energy["static"] + hw.energy.leakage_mw * 1e-3 * run_overhead / (hw.clock_mhz * 1e6) * 1e12
    energy_pj = sum(energy.values())
    dram = sum(map(_get.dram_bytes, traffic))
    return {
        "layers": len(layers), "macs": macs // batch, "params": sum(map(_get.params, layers)),
        "model_size_mb": size / 1e6,
        "cycles": cycles, "compute_cycles": compute, "vector_cycles": sum(map(_get.vector_cycles, tim)),
        "stall_cycles": sum(map(_get.stall_cycles, tim)), "scalesim_cycles": sum(map(_get.scalesim_cycles, tim)),
        "memory_bound_layers": sum(t.bound == "memory" for t in tim),
        "overhead_cycles": sum(map(_get.overhead_cycles, tim)) + run_overhead,
        "latency_ms": seconds * 1e3, "inferences_per_s": xp.ratio(batch, seconds),
        "array_utilization": xp.ratio(macs, slots),
        "dram_mb": dram / batch / 1e6,
        "energy_mj": energy_pj / batch * 1e-9,
        "energy_breakdown_mj": {k: v / batch * 1e-9 for k, v in energy.items()},
        "avg_power_w": xp.ratio(energy_pj * 1e-12, seconds),
        "inferences_per_j": xp.ratio(batch, energy_pj * 1e-12),
        "batch": batch, "batch_energy_mj": energy_pj * 1e-9,
        "resident_weight_mb": sum(map(_get.resident_weight_bytes, traffic)) / 1e6,
        "streamed_weight_mb": sum(map(_get.streamed_weight_bytes, traffic)) / batch / 1e6,
        "memory_levels": level_totals(layers, [lv.name for lv in hw.memory.levels]),
    }


class _Getters:
    """``_get.name`` is ``operator.attrgetter(name)`` (sums over layers with ``map``, same order as a loop)."""

    def __getattr__(self, name: str):
        getter = attrgetter(name)
        setattr(self, name, getter)
        return getter


_get = _Getters()
_ENERGY_KINDS = tuple((k, attrgetter(f"{k}_pj")) for k in ("mac", "register", "sram", "dram", "vector", "static"))


def level_totals(layers, names) -> dict:
    """Per memory level (in ``names`` order, PEs outwards): bytes read/written by operand, energy (mJ) and
    stall cycles, summed over layers."""
    out: dict = {name: _no_level() for name in names}
    for c in layers:
        for t in c.traffic.levels:
            lv = out.get(t.level) or out.setdefault(t.level, _no_level())
            op = lv["operands"].get(t.operand) or lv["operands"].setdefault(t.operand, {"read_bytes": 0.0,
                                                                                        "write_bytes": 0.0})
            op["read_bytes"] += t.read_bytes
            op["write_bytes"] += t.write_bytes
        for name, pj in c.energy.by_level.items():
            (out.get(name) or out.setdefault(name, _no_level()))["energy_mj"] += pj * 1e-9
        for name, cyc in c.timing.stall_by_level.items():
            (out.get(name) or out.setdefault(name, _no_level()))["stall_cycles"] += cyc
    return out


def _no_level() -> dict:
    return {"operands": {}, "energy_mj": 0.0, "stall_cycles": 0}
