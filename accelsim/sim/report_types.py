"""Result types of a simulation: per-layer costs and the run's totals (model size, latency, energy, power)."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields

from ..config.hw import HWConfig
from ..graph import Model
from ..ops import OPS



@dataclass(frozen=True, slots=True)
class LayerCost:
    name: str
    op: str
    precision: str
    a_bits: int
    w_bits: int
    m: int
    n: int
    k: int
    count: int
    macs: int
    params: int
    folds: int
    macs_per_pe_cycle: float
    compute_cycles: int
    scalesim_cycles: int
    vector_cycles: int
    memory_cycles: int
    cycles: int
    stall_cycles: int
    bound: str
    utilization: float
    mapping_efficiency: float
    sram_ifmap_reads: int
    sram_filter_reads: int
    sram_ofmap_writes: int
    dram_ifmap_bytes: int
    dram_filter_bytes: int
    dram_ofmap_bytes: int
    dram_psum_bytes: int
    energy_mac_pj: float
    energy_sram_pj: float
    energy_dram_pj: float
    energy_vector_pj: float
    energy_static_pj: float

    @classmethod
    def idle(cls, name: str, op: str, precision: str, a_bits: int, w_bits: int, params: int,
             bound: str = "none") -> "LayerCost":
        """A layer that costs nothing (layout change; ``bound="fused"``: folded/fused into its producer)."""
        zero = {f.name: (0.0 if f.type == "float" else 0) for f in fields(cls)}
        zero.update(name=name, op=op, precision=precision, a_bits=a_bits, w_bits=w_bits, params=params, bound=bound)
        return cls(**zero)

    @property
    def dram_bytes(self) -> int:
        return self.dram_ifmap_bytes + self.dram_filter_bytes + self.dram_ofmap_bytes + self.dram_psum_bytes

    @property
    def energy_pj(self) -> float:
        return (self.energy_mac_pj + self.energy_sram_pj + self.energy_dram_pj + self.energy_vector_pj
                + self.energy_static_pj)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["dram_bytes"], d["energy_pj"] = self.dram_bytes, self.energy_pj
        return d



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


def totals(layers, hw: HWConfig, model: Model, precs) -> dict:
    cycles = sum(c.cycles for c in layers)
    compute = sum(c.compute_cycles for c in layers)
    macs = sum(c.macs for c in layers)
    size = 0.0
    for layer, p in zip(model.layers, precs):   # norm parameters and biases stay 32-bit in a quantized model
        wide = OPS[layer.op].wide_params(layer.attrs, list(layer.in_shapes))
        size += (layer.params - wide) * p.weight_bytes + wide * (4 if not p.is_float else p.weight_bytes)
    seconds = cycles / (hw.clock_mhz * 1e6)
    slots = sum(c.compute_cycles * c.macs_per_pe_cycle for c in layers) * hw.array.rows * hw.array.cols
    energy = {k: sum(getattr(c, f"energy_{k}_pj") for c in layers) for k in ("mac", "sram", "dram", "vector", "static")}
    energy_pj = sum(energy.values())
    return {
        "layers": len(layers), "macs": macs, "params": sum(c.params for c in layers), "model_size_mb": size / 1e6,
        "cycles": cycles, "compute_cycles": compute, "vector_cycles": sum(c.vector_cycles for c in layers),
        "stall_cycles": sum(c.stall_cycles for c in layers), "scalesim_cycles": sum(c.scalesim_cycles for c in layers),
        "memory_bound_layers": sum(c.bound == "memory" for c in layers),
        "latency_ms": seconds * 1e3, "inferences_per_s": 1 / seconds if seconds else 0.0,
        "array_utilization": macs / slots if slots else 0.0,
        "dram_mb": sum(c.dram_bytes for c in layers) / 1e6,
        "energy_mj": energy_pj * 1e-9, "energy_breakdown_mj": {k: v * 1e-9 for k, v in energy.items()},
        "avg_power_w": energy_pj * 1e-12 / seconds if seconds else 0.0,
        "inferences_per_j": 1 / (energy_pj * 1e-12) if energy_pj else 0.0,
    }
