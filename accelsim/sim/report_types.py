"""Result types of a simulation: per-layer costs and the run's totals (model size, latency, energy, power)."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
import threading
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


@dataclass(frozen=True)
class RunReport:
    """A run's per-layer costs and totals. ``layers`` may be built on first access (:meth:`lazy`): the same
    tuple of records every time, so the report reads, compares and serializes as if it had been given them."""
    model: str
    hw: str
    precision: str
    layers: tuple[LayerCost, ...]
    totals: dict = field(default_factory=dict)
    config: dict = field(default_factory=dict)

    @classmethod
    def lazy(cls, model: str, hw: str, precision: str, layers, totals: dict, config: dict) -> "RunReport":
        """A report whose ``layers`` is ``tuple(layers())``, called once, on first access."""
        report = object.__new__(cls)
        for name, value in (("model", model), ("hw", hw), ("precision", precision), ("totals", totals),
                            ("config", config), ("_pending", layers)):
            object.__setattr__(report, name, value)
        return report

    def __getattr__(self, name: str):          # only for a field not yet set: a lazy report's ``layers``
        state = self.__dict__
        if name != "layers" or "_pending" not in state:
            raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")
        with _BUILDING:
            if "layers" not in state:
                object.__setattr__(self, "layers", tuple(state["_pending"]()))
                del state["_pending"]
        return state["layers"]

    def __getstate__(self) -> dict:
        self.layers                             # noqa: B018 (built before the state is copied)
        return dict(self.__dict__)

    def to_dict(self) -> dict:
        return {"model": self.model, "hw": self.hw, "precision": self.precision, "config": self.config,
                "layers": [c.to_dict() for c in self.layers], "totals": self.totals}


_BUILDING = threading.Lock()


def totals(layers, hw: HWConfig, model: Model, precs, batch: int = 1, size: float | None = None) -> dict:
    """The run's totals of the records ``layers`` (:func:`run_totals`); ``size``: the :func:`model_bytes` of
    ``model`` at ``precs`` when the caller has it."""
    def column(part, name):
        return map(attrgetter(f"{part}.{name}" if part else name), layers)
    names = [lv.name for lv in hw.memory.levels]
    return run_totals(lambda part, name: sum(column(part, name)), column, len(layers), level_totals(layers, names),
                      model_bytes(model, precs) if size is None else size, hw, batch)


def model_bytes(model: Model, precs) -> float:
    """Bytes of the model's parameters at the layers' precisions ``precs``: norm parameters and biases stay
    32-bit (or the float mode) in a quantized model."""
    size = 0.0
    for layer, p in zip(model.layers, precs):
        if layer.params:                        # (a layer without parameters adds nothing)
            wide = OPS[layer.op].wide_params(layer.attrs, list(layer.in_shapes))
            size += (layer.params - wide) * p.weight_bytes + wide * p.wide_bytes
    return size


def run_totals(total, column, count: int, levels: dict, size: float, hw: HWConfig, batch: int = 1) -> dict:
    """The run's totals from ``column(part, name)``, every layer's value of a record field in layer order
    (``part``: ``timing``, ``traffic``, ``energy``, or None for the LayerCost's own), ``total(part, name)``, the
    ``sum`` of that column (the same number, however it is added up), the ``count`` layers' :func:`level_totals`
    and the :func:`model_bytes` ``size``. Cycles, traffic and energy of the layers are for the whole batch;
    ``latency_ms`` is the batch's latency, ``inferences_per_s`` counts every inference of it, and the energies
    and ``dram_mb`` are per inference (at batch 1 the same numbers)."""
    run_overhead = xp.ceil(hw.timing.run_overhead_cycles)
    cycles = total("timing", "cycles") + run_overhead
    compute = total("timing", "compute_cycles")
    macs = total(None, "macs")
    seconds = cycles / (hw.clock_mhz * 1e6)
    slots = (sum(map(mul, column("timing", "compute_cycles"), column("timing", "macs_per_pe_cycle")))
             * hw.array.rows * hw.array.cols)
    energy = {k: total("energy", f"{k}_pj") for k in _ENERGY_KINDS}
    energy["static"] = energy["static"] + hw.energy.leakage_mw * 1e-3 * run_overhead / (hw.clock_mhz * 1e6) * 1e12
    energy_pj = sum(energy.values())
    streams = [total("traffic", f"dram_{k}_bytes") for k in _DRAM]
    if all(type(s) is int for s in streams):      # ints: the layers' sums added up in any order
        dram = sum(streams)
    else:
        dram = sum(map(_sum4, *(column("traffic", f"dram_{k}_bytes") for k in _DRAM)))
    return {
        "layers": count, "macs": macs // batch, "params": total(None, "params"),
        "model_size_mb": size / 1e6,
        "cycles": cycles, "compute_cycles": compute, "vector_cycles": total("timing", "vector_cycles"),
        "stall_cycles": total("timing", "stall_cycles"),
        "scalesim_cycles": total("timing", "scalesim_cycles"),
        "memory_bound_layers": sum(b == "memory" for b in column("timing", "bound")),
        "overhead_cycles": total("timing", "overhead_cycles") + run_overhead,
        "latency_ms": seconds * 1e3, "inferences_per_s": xp.ratio(batch, seconds),
        "array_utilization": xp.ratio(macs, slots),
        "dram_mb": dram / batch / 1e6,
        "energy_mj": energy_pj / batch * 1e-9,
        "energy_breakdown_mj": {k: v / batch * 1e-9 for k, v in energy.items()},
        "avg_power_w": xp.ratio(energy_pj * 1e-12, seconds),
        "inferences_per_j": xp.ratio(batch, energy_pj * 1e-12),
        "batch": batch, "batch_energy_mj": energy_pj * 1e-9,
        "resident_weight_mb": total("traffic", "resident_weight_bytes") / 1e6,
        "streamed_weight_mb": total("traffic", "streamed_weight_bytes") / batch / 1e6,
        "memory_levels": levels,
    }


def _sum4(a, b, c, d):
    """``Traffic.dram_bytes`` of one layer's four DRAM streams (the same additions)."""
    return a + b + c + d


_ENERGY_KINDS = ("mac", "register", "sram", "dram", "vector", "static")
_DRAM = ("ifmap", "filter", "ofmap", "psum")


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
