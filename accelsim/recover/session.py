"""One task's recovery experiments: the FP32 reference once, folded weights, calibration and int evaluation.

A :class:`Session` wraps an evaluation task (:mod:`accelsim.eval.tasks`) and evaluates any ``(scheme,
Recovered)`` pair the same way the PTQ pipeline does — calibrate on the task's calibration split through
:class:`~accelsim.recover.overrides.Overrides` (so recovered weights shape the activation grids), then run the
bit-exact integer model — against an FP32 reference computed once.
"""
from __future__ import annotations

import time
from types import MappingProxyType

import numpy as np

from ..nn.qexec import Calibrator, FloatOps, QuantPlan, QuantScheme
from .overrides import Overrides, Recovered, recovered_quant_ops


class Recorder(FloatOps):
    """FP32 forward that keeps, per conv/linear layer, its folded ``(W, b)``, its call geometry and — when
    ``keep_inputs`` — its inputs (a list per layer, one entry per call)."""

    def __init__(self, keep_inputs: bool = False):
        self.layers: dict[str, dict] = {}
        self.keep_inputs = keep_inputs

    def _run(self, kind, name, x, w, b, act, geo):
        if kind != "matmul":
            rec = self.layers.setdefault(name, {"kind": kind, "w": w, "b": b, "geo": geo, "act": act, "x": []})
            if self.keep_inputs:
                rec["x"].append(x)
        return super()._run(kind, name, x, w, b, act, geo)


class Session:
    """Evaluate quantization configurations of one task (``task.run``/``task.metrics``) against FP32."""

    def __init__(self, task, progress=None):
        self.task = task
        self.say = progress or (lambda msg: None)
        self._ref = None
        self._folded = None

    @property
    def ref(self) -> np.ndarray:
        if self._ref is None:
            self.say(f"{self.task.name}: FP32 reference")
            self._ref = self.task.run(None, self.task.eval_data())
        return self._ref

    def folded(self) -> dict:
        """Per conv/linear layer: ``{"kind", "w", "b", "geo", "act"}`` with BN folded (one calibration batch)."""
        if self._folded is None:
            rec = Recorder()
            self.task.run(rec, self.task.calibration()[0])
            self._folded = rec.layers
        return self._folded

    def calibrate(self, scheme: QuantScheme, rec: Recovered | None = None) -> QuantPlan:
        cal = Calibrator(scheme)
        ops = Overrides(cal, rec or Recovered())
        batches = self.task.calibration()
        for i, batch in enumerate(batches):
            self.say(f"{self.task.name}: calibrating batch {i + 1}/{len(batches)}")
            self.task.run(ops, batch)
            cal.samples += len(batch)
        return cal.plan()

    def evaluate(self, scheme: QuantScheme, rec: Recovered | None = None, plan: QuantPlan | None = None,
                 mode: str = "int") -> dict:
        """``{"metrics", "plan", "layers" (per-layer SQNR dB), "seconds"}`` of the quantized model."""
        rec = rec or Recovered()
        t0 = time.perf_counter()
        plan = plan or self.calibrate(scheme, rec)
        ops = recovered_quant_ops(plan, rec, mode)
        self.say(f"{self.task.name}: quantized run")
        out = self.task.run(ops, self.task.eval_data())
        return {"metrics": self.task.metrics(self.ref, out), "plan": plan, "seconds": time.perf_counter() - t0,
                "layers": {n: s.sqnr_db for n, s in ops.inner.stats.items()}}


def with_layer_bits(plan: QuantPlan, bits: dict) -> QuantPlan:
    """``plan`` with some layers' (w_bits, a_bits) replaced (activation grids must then be recalibrated)."""
    from dataclasses import replace
    layers = {n: (replace(lq, w_bits=bits[n][0], a_bits=bits[n][1]) if n in bits else lq)
              for n, lq in plan.layers.items()}
    return QuantPlan(plan.scheme, MappingProxyType(layers), plan.calib_samples)
