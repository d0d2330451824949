"""Where tensors live: activations between producer and consumers, and weights across inferences.

**Activations** (``memory.activation_placement``, a row of :data:`ACTIVATION_PLACEMENTS`). A materialized
tensor (a layer's output after any fused batchnorm/activation) that a later layer reads either stays on chip
or goes to the outermost level (DRAM, or host memory behind a link) and is read back from there:

* ``fits`` — a tensor stays on chip when it fits the usable capacity for inputs and for outputs
  (:func:`accelsim.hw.memory.capacity`: the outermost on-chip level serving each, halved when double-buffered,
  shared by its operands), after the resident-weight budget has been set aside. Each tensor is judged alone.
* ``live`` — the Edge TPU compiler's order (coral.ai, "Edge TPU Compiler: parameter data caching": the
  executable and activations are allocated first and "the parameter data uses whatever space remains"; its
  report's "on-chip memory available for caching model parameters" varies from model to model): tensors are
  allocated in execution order, each kept on chip when the bytes of every live on-chip tensor (produced and
  still to be read) plus its own fit the on-chip level, otherwise spilled; a tensor dies after its last
  reader. ``reserved`` is the peak of live on-chip bytes.

**Weights held across inferences** (a level with ``resident: weights``): the level keeps model parameters
from one inference to the next, so they cost no traffic from outside. Placement follows the Edge TPU
compiler's rule (coral.ai, "parameter data caching": it caches parameters in execution order until the
space is used and streams the rest "from external memory" on every inference): each GEMM layer's weights, in
execution order, are kept when they fit what is left of the budget (first fit, so a large layer that does
not fit is streamed and smaller later ones may still be kept). The budget is ``resident_kib`` under ``fits``
and ``min(resident_kib, level size − reserved)`` under ``live``.

Every function takes numbers or, in a sweep, arrays over configurations (:mod:`accelsim.hw.xp`).
"""
from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType

from ..config.memory import MemoryConfig
from ..memo import remember
from . import xp
from .memory import capacity


@dataclass(frozen=True, slots=True)
class Placement:
    """``on_chip``: tensor name → kept on chip (bool, or a boolean array over configurations; absent = no);
    ``resident``: per work, the weight bytes held across inferences; ``reserved``: bytes of the resident level
    taken by resident weights (what activations and tiles cannot use)."""
    on_chip: dict
    resident: list
    reserved: float | object = 0.0


def _consumers(works) -> tuple[set, dict, list]:
    """Tensors read by a non-fused layer, each one's last reader (index into ``works``), and the layers whose
    output is such a tensor, in order; remembered for the last few lists of works (the engine's lowerings,
    which never change)."""
    def make():
        last: dict[str, int] = {}
        for i, w in enumerate(works):
            if not w.fused:
                for t in w.layer.inputs:
                    last[t] = i
        return set(last), last, [w.layer.name for w in works if w.layer.name in last]
    return remember(_CONSUMERS, works, None, make)


_CONSUMERS: dict = {}


def _fits(works, sizes: dict, sinks: dict, mem: MemoryConfig, pes: int, budget) -> tuple[dict, object]:
    """Per-tensor rule (module docstring); the budget of resident weights is set aside first."""
    reserved = budget if mem.resident_level is not None else 0.0
    cap = xp.minimum(capacity(mem, "input", pes, reserved), capacity(mem, "output", pes, reserved))
    out = {}
    for name in _consumers(works)[2]:
        fits = sizes[name] <= cap
        if not isinstance(fits, bool) or fits:
            out[name] = fits
    return out, reserved


def _live(works, sizes: dict, sinks: dict, mem: MemoryConfig, pes: int, budget) -> tuple[dict, object]:
    """Liveness-ordered allocation (module docstring); returns (on_chip, peak live on-chip bytes)."""
    levels = [mem.buffers[op][-1] for op in ("input", "output") if mem.buffers[op]]
    if len(levels) < 2:
        return {}, 0.0
    cap = xp.minimum(levels[0].size_bytes, levels[1].size_bytes)
    consumed, last, _ = _consumers(works)
    out: dict = {}
    live: dict[str, int] = {}
    used, peak = 0.0, 0.0
    for i, w in enumerate(works):
        name = w.layer.name
        if name in consumed and name == sinks[name]:
            keep = used + sizes[name] <= cap
            if not isinstance(keep, bool) or keep:
                out[name] = keep
                used = used + xp.where(keep, sizes[name], 0.0)
                peak = xp.maximum(peak, used)
                live[name] = last[name]
        for t in [t for t, end in live.items() if end <= i]:
            used = used - xp.where(out[t], sizes[t], 0.0)
            del live[t]
    return out, peak


#: name → (rule, source); the rule maps (works, sizes, sinks, memory, PEs, weight budget) to
#: (on-chip tensors, bytes the activations reserve in the resident level under ``live``, or the weights under ``fits``)
ACTIVATION_PLACEMENTS = MappingProxyType({
    "fits": (_fits, "each tensor alone against the usable capacity (accelsim's default)"),
    "live": (_live, "Edge TPU compiler: activations first, by liveness; parameters in what remains (coral.ai)"),
})


def weight_bytes(work, precision) -> float:
    """Bytes of a layer's weights as the array reads them (a GEMM against weights; 0 otherwise)."""
    g = work.gemm
    return g.k * g.n * g.count * precision.weight_bytes if g is not None and g.b_is_weight and not work.fused else 0.0


def place(works, precs, sizes: dict, sinks: dict, mem: MemoryConfig, pes: int) -> Placement:
    """Activations per ``mem.activation_placement``, then resident weights (module docstring)."""
    level = mem.resident_level
    budget = level.resident_bytes if level is not None else 0.0
    rule, _ = ACTIVATION_PLACEMENTS[mem.activation_placement]
    on_chip, reserved = rule(works, sizes, sinks, mem, pes, budget)
    if level is None:
        return Placement(on_chip, [0.0] * len(works))
    if mem.activation_placement == "live":
        budget = xp.minimum(budget, xp.maximum(level.size_bytes - reserved, 0.0))
    resident, left = [], budget
    for w, p in zip(works, precs):
        need = weight_bytes(w, p)
        keep = xp.both(need > 0, need <= left)
        held = xp.where(keep, need, 0.0)
        left = left - held
        resident.append(held)
    used = budget - left
    return Placement(on_chip, resident, budget if mem.activation_placement == "fits" else used)
