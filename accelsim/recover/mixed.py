"""Hessian-aware, hardware-in-the-loop mixed precision (HAWQ-v2 sensitivity × HAQ-style emulator objective).

* **Sensitivity** of a conv/linear layer ``l`` at ``b`` weight bits: ``Ω_l(b) = Tr(H_l)/n_l · ‖Q_b(W_l) − W_l‖²``
  (HAWQ-v2), ``H_l`` the Hessian block of the distillation loss ``L(W) = ½‖f(W) − f(W₀)‖²/N`` on calibration
  data (at ``W₀`` it equals the Gauss–Newton matrix ``JᵀJ/N``). Hutchinson: ``Tr(H_l) ≈ mean_v v_lᵀ(Hv)_l`` over
  Rademacher ``v``, ``Hv ≈ (∇L(W₀ + εv) − ∇L(W₀ − εv)) / 2ε`` (two backward passes per sample give every layer's
  estimate; gradients from :mod:`accelsim.nn.autograd`). Also reported: the layer's measured output SQNR when
  every layer runs at low bits (one integer pass).
* **Cost** from the emulator itself: :func:`accelsim.sim.engine.simulate` on the task's hw config, per graph
  layer, at ``w8a8`` and at the low precision; a layer's saving ``Δ_l`` is its latency/energy difference (layers
  run one after another, so savings add; every final plan is re-simulated whole).
* **Allocation** under a budget (average weight bits, energy or latency): start from all-8-bit and move layers
  to low bits in ascending ``Ω_l(low) / Δ_l`` (least damage per unit saved) until the budget holds.
* **Plan file**: one ``NAME=wXaY`` per line — what ``--layer-precision`` takes (``--layer-precision @FILE``).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import AccelsimError
from ..nn import autograd
from ..quant import weight_qparams
from ..sim.engine import simulate
from .overrides import Overrides, Recovered
from .ptq import _dequantized


def graph_layer_names(graph, qname: str) -> list[str]:
    """Graph layers the executor calls ``qname`` (its weight binding, or its own name)."""
    return [lay.name for lay in graph.layers if (lay.weight or lay.name) == qname]


def plan_precisions(graph, bits: dict) -> dict[str, str]:
    """``{qname: (w, a)}`` → ``{graph layer: "wXaY"}`` for :func:`simulate`'s ``layer_precision``."""
    return {g: f"w{w}a{a}" for q, (w, a) in bits.items() for g in graph_layer_names(graph, q)}


def hw_cost(graph, hw, bits: dict, default: str = "w8a8") -> dict:
    """Emulated totals of a per-layer plan: latency (ms), energy (mJ), model size (MB)."""
    t = simulate(graph, hw, default, plan_precisions(graph, bits)).totals
    return {"latency_ms": t["latency_ms"], "energy_mj": t["energy_mj"], "model_size_mb": t["model_size_mb"]}


def layer_savings(graph, hw, names, low: str = "w4a8", high: str = "w8a8") -> dict:
    """Per quantized layer: ``{"latency_ms", "energy_mj"}`` saved by running it at ``low`` instead of ``high``."""
    hi, lo = simulate(graph, hw, high), simulate(graph, hw, low)
    clock = hw.clock_mhz * 1e3
    cost = {c.name: (c.timing.cycles / clock, c.energy_pj * 1e-9) for c in hi.layers}
    cost_lo = {c.name: (c.timing.cycles / clock, c.energy_pj * 1e-9) for c in lo.layers}
    out = {}
    for q in names:
        g = graph_layer_names(graph, q)
        out[q] = {"latency_ms": sum(cost[n][0] - cost_lo[n][0] for n in g),
                  "energy_mj": sum(cost[n][1] - cost_lo[n][1] for n in g)}
    return out


def hutchinson_traces(session, samples: int = 4, eps: float = 1e-3, batch: int = 8, seed: int = 0) -> dict:
    """``Tr(H_l)/n_l`` per conv/linear layer (module docstring) on the first ``batch`` calibration inputs."""
    task = session.task
    graph, weights = task.graph, task._setup()["weights"]
    feed, out_name = next(iter(graph.inputs)), graph.layers[-1].name
    x = np.concatenate(task.calibration())[:batch]
    folded = session.folded()
    f0 = autograd.forward(graph, weights, {feed: x})[0][out_name]
    rng = np.random.default_rng(seed)
    acc = {n: 0.0 for n in folded}

    def grads(delta: dict) -> dict:
        rec = Recovered(weights={n: (d["w"] + delta[n], d["b"]) for n, d in folded.items()})
        inner = autograd.GradOps()
        ops = Overrides(inner, rec)
        out, tape = autograd.forward(graph, weights, {feed: x}, ops)
        autograd.backward(graph, weights, tape, {out_name: (out[out_name] - f0) / len(x)}, ops)
        return {n: inner.weight_grads[n][0] for n in folded}

    for _ in range(samples):
        v = {n: rng.choice(np.array([-1.0, 1.0], np.float32), d["w"].shape) for n, d in folded.items()}
        scale = {n: eps * max(float(np.abs(d["w"]).mean()), 1e-8) for n, d in folded.items()}
        gp = grads({n: scale[n] * v[n] for n in folded})
        gm = grads({n: -scale[n] * v[n] for n in folded})
        for n in folded:
            hv = (gp[n].astype(np.float64) - gm[n]) / (2 * scale[n])
            acc[n] += float((v[n] * hv).sum()) / v[n].size
    return {n: acc[n] / samples for n in folded}


def sensitivities(session, scheme, traces: dict, low_bits: int = 4, rec: Recovered | None = None) -> dict:
    """``Ω_l(low_bits)`` per layer from the traces and each layer's weight perturbation on its grid."""
    rec = rec or Recovered()
    out = {}
    for n, d in session.folded().items():
        w = rec.weights.get(n, (d["w"], d["b"]))[0]
        dw = _dequantized(w, weight_qparams(w, scheme.weight_spec(low_bits))) - w
        out[n] = traces[n] * float((dw.astype(np.float64) ** 2).sum())
    return out


def avg_weight_bits(folded: dict, bits: dict, default: int = 8) -> float:
    """``Σ n_l·b_l / Σ n_l`` over the conv/linear weights."""
    n = {k: d["w"].size for k, d in folded.items()}
    return sum(n[k] * bits.get(k, (default,))[0] for k in n) / sum(n.values())


def allocate(folded: dict, omega: dict, savings: dict, budget: str, limit: float, total_high: float = 0.0,
             low=(4, 8), high=(8, 8)) -> dict:
    """Per-layer ``(w, a)`` bits: all ``high``, then layers to ``low`` in ascending ``Ω/Δ`` until the budget
    holds — ``budget="bits"``: average weight bits ≤ ``limit``; ``"energy_mj"``/``"latency_ms"``: the all-high
    total ``total_high`` minus the savings ≤ ``limit``."""
    if budget not in ("bits", "energy_mj", "latency_ms"):
        raise AccelsimError(f"budget must be 'bits', 'energy_mj' or 'latency_ms', got {budget!r}")
    n = {k: d["w"].size for k, d in folded.items()}
    saving = (lambda k: n[k] * (high[0] - low[0])) if budget == "bits" else (lambda k: savings[k][budget])
    order = sorted(folded, key=lambda k: omega[k] / max(saving(k), 1e-12))
    bits = {k: high for k in folded}
    current = high[0] * sum(n.values()) if budget == "bits" else total_high
    target = limit * sum(n.values()) if budget == "bits" else limit
    for k in order:
        if current <= target:
            break
        bits[k] = low
        current -= saving(k)
    return bits


def first_last_heuristic(folded: dict, low=(4, 8), high=(8, 8)) -> dict:
    """The documented baseline: first and last quantized layers at 8 bits, the rest at ``low``."""
    names = list(folded)
    return {k: (high if k in (names[0], names[-1]) else low) for k in names}


def write_plan(bits: dict, path) -> Path:
    """One ``NAME=wXaY`` per line (``--layer-precision @FILE``)."""
    path = Path(path)
    path.write_text("".join(f"{k}=w{w}a{a}\n" for k, (w, a) in bits.items()))
    return path
