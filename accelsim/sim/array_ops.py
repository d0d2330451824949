"""Integer GEMMs of a quantized model executed *on the systolic array*: ``QLinearConv``/``QLinearMatMul`` whose
accumulators come from :func:`accelsim.sim.emulate.systolic_gemm` instead of the integer GEMM kernel.

:class:`ArrayQuantOps` is ``QuantOps(plan, "int")`` with the GEMM table of :func:`array_kinds` (like
:data:`accelsim.ops.gemm.KINDS`) for the layers matching a glob: everything around the GEMM is
:mod:`accelsim.quant.qlinear`'s own code (validation, the int32 bias, the output grid and its requantization
stage); only the accumulation moves — through the kernels' accumulator hook (``accumulate=``,
:meth:`ArrayConfig.accumulator`) — onto an R × C array with the hw config's dataflow and Bit-Fusion packing
(``macs_per_pe_cycle`` at the layer's bits). The array's accumulator steps are the integer kernel's (products in
k order, bias last, the same ``acc_bits``/``overflow``), so the codes — and a whole model's logits — are
bit-identical to int mode (tested on the MNIST CNN).

A conv runs as one GEMM per group with M = B·Ho·Wo (im2col of all images; the M tiling changes no value).
The dynamic (float-rescale) output stage stays on the integer kernels.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from fnmatch import fnmatchcase

import numpy as np

from ..hw.dataflow import DataflowSpec
from ..hw.mac import Precision, macs_per_pe_cycle
from ..nn.qexec import QuantOps
from ..ops.gemm import KINDS
from ..quant.qconv import qlinear_conv
from ..quant.qlinear import AccOverflow, qlinear_matmul
from .emulate import systolic_gemm


@dataclass
class ArrayStats:
    """What the array did for one layer name, summed over calls."""
    calls: int = 0
    gemms: int = 0
    cycles: int = 0
    pe_cycles: int = 0
    macs: int = 0


@dataclass
class ArrayConfig:
    """The array the GEMMs run on, and per-layer statistics (filled as the model runs)."""
    rows: int
    cols: int
    dataflow: DataflowSpec
    pe: object                      # accelsim.config.hw.PEConfig: Bit-Fusion rates per operand bits
    pattern: str | None = None      # glob over layer names (None: every GEMM layer)
    stats: dict = field(default_factory=dict)
    layer: str = ""                 # the layer running now (set by ArrayQuantOps)

    def selects(self) -> bool:
        return self.pattern is None or fnmatchcase(self.layer, self.pattern)

    def rate(self, a_bits: int, b_bits: int) -> int:
        f = macs_per_pe_cycle(self.pe, Precision(f"w{b_bits}a{a_bits}", b_bits, a_bits))
        return max(1, int(f))

    def accumulator(self, name: str):
        """The accumulator hook of :mod:`accelsim.quant.qlinear` for layer ``name``: ``acc[g] = a[g] @ b[g] +
        bias[g]`` on the array for each group g → ((G, M, N) int64, AccOverflow); counts one call."""
        def accumulate(a, b, bias, *, acc_bits, overflow, a_bits, b_bits):
            f = self.rate(a_bits, b_bits)
            acc = np.empty((a.shape[0], a.shape[1], b.shape[2]), dtype=np.int64)
            events = outputs = 0
            for i in range(a.shape[0]):
                run = self.gemm(name, a[i], b[i], bias[i], f, acc_bits, overflow)
                acc[i] = run.acc
                events += run.overflow_events
                outputs += run.overflow_outputs
            self.stats[name].calls += 1
            return acc, AccOverflow(events, outputs)
        return accumulate

    def gemm(self, name: str, a, b, bias, f: int, acc_bits: int, overflow: str):
        run = systolic_gemm(a, b, self.rows, self.cols, self.dataflow, bias=bias, macs_per_cycle=f,
                            acc_bits=acc_bits, overflow=overflow)
        s = self.stats.setdefault(name, ArrayStats())
        s.gemms += 1
        s.cycles += run.cycles
        s.pe_cycles += run.pe_cycles
        s.macs += a.shape[0] * a.shape[1] * b.shape[1]
        return run


def qlinear_conv_array(cfg: ArrayConfig, name: str, *args, **kw):
    """:func:`accelsim.quant.qlinear_conv` (``return_overflow=True``) with the accumulation on the array."""
    return qlinear_conv(*args, return_overflow=True, accumulate=cfg.accumulator(name), **kw)


def qlinear_matmul_array(cfg: ArrayConfig, name: str, *args, **kw):
    """:func:`accelsim.quant.qlinear_matmul` (``return_overflow=True``) with the accumulation on the array."""
    return qlinear_matmul(*args, return_overflow=True, accumulate=cfg.accumulator(name), **kw)


def array_kinds(cfg: ArrayConfig) -> dict:
    """``QuantOps`` GEMM kinds whose requantizing integer path runs on ``cfg``'s array (module docstring) for the
    layers :meth:`ArrayConfig.selects`; the others keep the integer kernels."""
    def on_array(kind: str):
        def requant(*a):
            if not cfg.selects():
                return KINDS[kind].requant(*a)
            *args, kw = a
            return KINDS[kind].requant(*args, {**kw, "accumulate": cfg.accumulator(cfg.layer)})
        return requant
    return {kind: replace(k, requant=on_array(kind)) for kind, k in KINDS.items()}


class ArrayQuantOps(QuantOps):
    """``QuantOps`` in int mode whose requantizing GEMMs of the layers matching ``cfg.pattern`` run on the array
    (it tells ``cfg`` which layer is running)."""

    def __init__(self, plan, cfg: ArrayConfig, **kw):
        super().__init__(plan, "int", kinds=array_kinds(cfg), **kw)
        self.cfg = cfg

    def _run(self, kind, name, x, w, b, act, geo):
        self.cfg.layer = name
        return super()._run(kind, name, x, w, b, act, geo)


def evaluate_on_array(task, scheme, hw, pattern: str | None = None) -> dict:
    """Calibrate ``task`` with ``scheme`` (as :func:`accelsim.eval.pipeline.evaluate` does), run it in int mode on
    the integer kernels and again with the requantizing GEMMs of the layers matching ``pattern`` (all: None) on
    ``hw``'s array, on the real quantized activations and weights; the metrics of the array run, whether its
    outputs equal int mode's bit for bit, and what ran on the array per layer."""
    import time
    from ..nn.qexec import Calibrator
    cal = Calibrator(scheme)
    for batch in task.calibration():
        task.run(cal, batch)
        cal.samples += len(batch)
    plan = cal.plan()
    data = task.eval_data()
    ref = task.run(None, data)
    int_out = task.run(QuantOps(plan, "int", measure=False), data)
    cfg = ArrayConfig(int(hw.array.rows), int(hw.array.cols), hw.array.dataflow, hw.pe, pattern)
    t0 = time.perf_counter()
    out = task.run(ArrayQuantOps(plan, cfg, measure=False), data)
    return {"array": f"{cfg.rows}x{cfg.cols} {cfg.dataflow.name.upper()}", "primary": task.primary,
            "metrics": task.metrics(ref, out), "outputs_equal_int_mode": bool(np.array_equal(out, int_out)),
            "gemms": sum(s.gemms for s in cfg.stats.values()), "cycles": sum(s.cycles for s in cfg.stats.values()),
            "pe_cycles": sum(s.pe_cycles for s in cfg.stats.values()), "seconds": time.perf_counter() - t0,
            "layers": {name: {"gemms": s.gemms, "cycles": s.cycles, "macs": s.macs} for name, s in cfg.stats.items()}}
