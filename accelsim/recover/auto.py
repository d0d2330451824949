"""``accelsim quantize --auto``: the reference checklist as a command.

Measure the FP32 baseline, then escalate until the primary metric drops by at most ``max_drop`` points
(100 × the metric's fraction), cheapest first; every step is measured on the bit-exact integer model and costed
by the emulator on the given hw config:

1. PTQ, MinMax calibration (per-channel weights);
2. other calibrations (percentile 99.999, MSE, KL) — the best one is kept for what follows;
3. weight-side PTQ switches: per-channel MSE clipping + bias correction; for transformers (linear layers only)
   output-side scale migration of outlier channels (:func:`~.ptq.output_smoothing`); for conv nets AdaRound
   with sequential empirical bias correction;
4. mixed precision (only when some layers are below 8 bits): the most sensitive layers (Hutchinson-trace
   sensitivity, :mod:`.mixed`) back to 8 bits, in budget steps of average weight bits;
5. QAT with distillation from the FP32 teacher (image tasks; MNIST also uses the labels of its training split).

It stops at the first configuration within the bound; if none is, it returns the best one it measured and says
so. Each step is a dict with its metrics, drop, size, latency and energy (:func:`run_auto`).
"""
from __future__ import annotations

import time

import numpy as np

from ..errors import AccelsimError
from ..eval.pipeline import scheme_for
from .mixed import allocate, avg_weight_bits, hutchinson_traces, hw_cost, sensitivities
from .overrides import Recovered
from .session import Session

CALIBS = ("percentile", "mse", "kl")


def _drop(task, fp32: dict, q: dict) -> float:
    return 100.0 * (fp32[task.primary] - q[task.primary])


def _bits_of(session, scheme) -> dict:
    return {n: scheme.bits(n) for n in session.folded() if scheme.bits(n) is not None}


class _Ladder:
    """Runs and records the steps."""

    def __init__(self, session: Session, hw, max_drop: float, say):
        self.s, self.hw, self.max_drop, self.say = session, hw, max_drop, say
        self.steps: list[dict] = []
        self.fp32 = session.task.metrics(session.ref, session.ref)

    def measure(self, name: str, scheme, rec: Recovered | None = None, plan=None, bits: dict | None = None) -> dict:
        self.say(f"auto: {name}")
        t0 = time.perf_counter()
        ev = self.s.evaluate(scheme, rec, plan)
        bits = bits or _bits_of(self.s, scheme)
        try:
            cost = hw_cost(self.s.task.graph, self.hw, bits, f"w{scheme.w_bits}a{scheme.a_bits}")
        except AccelsimError as exc:   # e.g. 2-bit operands on a PE without them: accuracy only
            cost = {"latency_ms": None, "energy_mj": None, "model_size_mb": None, "cost_error": str(exc)}
        step = {"step": name, "metrics": ev["metrics"], "drop_points": _drop(self.s.task, self.fp32, ev["metrics"]),
                "avg_weight_bits": avg_weight_bits(self.s.folded(), bits), **cost,
                "seconds": time.perf_counter() - t0,
                "plan": {n: f"w{w}a{a}" for n, (w, a) in bits.items()},
                "methods": dict((rec or Recovered()).notes), "calibration": scheme.calib}
        step["within_bound"] = step["drop_points"] <= self.max_drop
        self.steps.append(step)
        return step

    @property
    def done(self) -> bool:
        return bool(self.steps) and self.steps[-1]["within_bound"]


def run_auto(task, hw, precision: str = "w8a8", max_drop: float = 1.0, progress=None, qat_steps: int = 500) -> dict:
    """The escalation (module docstring); returns ``{"fp32", "steps", "chosen", "within_bound"}``."""
    say = progress or (lambda msg: None)
    s = Session(task, say)
    lad = _Ladder(s, hw, max_drop, say)
    scheme = scheme_for(precision)
    lad.measure("ptq minmax", scheme)
    best_calib = "minmax"
    if not lad.done:
        for c in CALIBS:
            st = lad.measure(f"ptq {c}", scheme_for(precision, c))
            if st["drop_points"] < min(x["drop_points"] for x in lad.steps[:-1]):
                best_calib = c
            if lad.done:
                break
    scheme = scheme_for(precision, best_calib)
    rec = Recovered()
    if not lad.done:
        rec = _weight_switches(s, lad, scheme)
    if not lad.done and scheme.w_bits < 8:
        _mixed(s, lad, precision, best_calib, rec)
    if not lad.done and task.name in ("mnist", "photos"):
        _qat_distill(s, lad, scheme, rec, qat_steps)
    inside = [x for x in lad.steps if x["within_bound"]]
    chosen = inside[0] if inside else min(lad.steps, key=lambda x: x["drop_points"])
    return {"fp32": lad.fp32, "primary_metric": task.primary, "max_drop_points": max_drop, "steps": lad.steps,
            "chosen": chosen, "within_bound": bool(inside)}


def _weight_switches(s: Session, lad: _Ladder, scheme) -> Recovered:
    from . import ptq
    clip = ptq.mse_clipping(s.folded(), scheme)
    rec = clip.merged(ptq.bias_correction(s, scheme, clip))
    lad.measure("+ mse clipping + bias correction", scheme, rec)
    if lad.done:
        return rec
    kinds = {d["kind"] for d in s.folded().values()}
    if kinds == {"linear"}:
        rec = ptq.output_smoothing(s, scheme, ("*output.dense",))
        lad.measure("+ output smoothing (outlier channels)", scheme, rec)
    else:
        from .adaround import adaround
        rec = adaround(s, scheme, None, 300)
        lad.measure("+ adaround + empirical bias correction", scheme, rec)
    return rec


def _mixed(s: Session, lad: _Ladder, precision: str, calib: str, rec: Recovered) -> None:
    low = scheme_for(precision, calib)
    folded = s.folded()
    traces = hutchinson_traces(s, samples=2, batch=4)
    omega = sensitivities(s, low, traces, low.w_bits, rec)
    for budget in (5.0, 6.0, 7.0):
        bits = allocate(folded, omega, {}, "bits", budget, low=(low.w_bits, low.a_bits), high=(8, low.a_bits))
        scheme = scheme_for(precision, calib, layer_bits=bits)
        lad.measure(f"mixed ≤{budget:g} avg weight bits (Hutchinson sensitivity)", scheme,
                    Recovered(notes={"mixed": f"HAWQ-v2 sensitivity, budget {budget} bits"}), bits=bits)
        if lad.done:
            return


def _qat_distill(s: Session, lad: _Ladder, scheme, rec: Recovered, steps: int) -> None:
    """MNIST: its 4k training split with labels + KL distillation (α = ½), batch 64, lr 1e-3 (1/3 of training's:
    1/100 did not recover W2A4 in the time budget, see benchmarks/RESULTS.md); photos: distillation only on
    the calibration photos, batch 8, lr 1e-4. Never the evaluation data."""
    from .qat import QATConfig, qat
    task = s.task
    plan = s.calibrate(scheme, rec)
    if task.name == "mnist":
        from ..data.mnist import mnist_split
        split = mnist_split()
        x, y, where = split.x_train, split.y_train, "MNIST train split, labels + distillation"
        cfg = QATConfig(epochs=8, batch_size=64, lr=1e-3, scale_lr=1e-2, distill="kl", alpha=0.5, max_steps=steps)
    else:
        x, y, where = np.concatenate(task.calibration()), None, "calibration inputs, distillation"
        cfg = QATConfig(epochs=max(1, steps), batch_size=8, lr=1e-4, scale_lr=1e-3, distill="kl", max_steps=steps)
    new_plan, qrec, hist = qat(task.graph, task._setup()["weights"], plan, s.folded(), x, y, cfg, rec, lad.say)
    lad.measure(f"+ QAT ({hist.steps} steps; {where})", scheme, qrec, new_plan)
