"""Integer GEMMs of a quantized model executed *on the systolic array*: ``QLinearConv``/``QLinearMatMul`` whose
accumulators come from :func:`accelsim.sim.emulate.systolic_gemm` instead of the integer GEMM kernel.

:class:`ArrayQuantOps` is ``QuantOps(plan, "int")`` with the GEMM table of :func:`array_kinds` (like
:data:`accelsim.ops.gemm.KINDS`) for the layers matching a glob: everything around the GEMM is
:mod:`accelsim.quant.qlinear`'s own code (validation, the int32 bias, the output grid and its requantization
stage), only the accumulation moves onto an R × C array with the hw
config's dataflow and Bit-Fusion packing (``macs_per_pe_cycle`` at the layer's bits). The array's accumulator
steps are the integer kernel's (products in k order, bias last, the same ``acc_bits``/``overflow``), so the
codes — and a whole model's logits — are bit-identical to int mode (tested on the MNIST CNN).

A conv runs as one GEMM per group with M = B·Ho·Wo (im2col of all images; the M tiling changes no value).
The dynamic (float-rescale) output stage stays on the integer kernels.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from fnmatch import fnmatchcase

import numpy as np

from ..hw.dataflow import DataflowSpec
from ..hw.mac import Precision, macs_per_pe_cycle
from ..kernels import im2col as _im
from ..nn.qexec import QuantOps
from ..ops.gemm import KINDS
from ..quant import qlinear as _ql
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

    def gemm(self, name: str, a, b, bias, f: int, acc_bits: int, overflow: str):
        run = systolic_gemm(a, b, self.rows, self.cols, self.dataflow, bias=bias, macs_per_cycle=f,
                            acc_bits=acc_bits, overflow=overflow)
        s = self.stats.setdefault(name, ArrayStats())
        s.gemms += 1
        s.cycles += run.cycles
        s.pe_cycles += run.pe_cycles
        s.macs += a.shape[0] * a.shape[1] * b.shape[1]
        return run


def _gemms(cfg: ArrayConfig, name, a16, b16, stage, f, acc_bits, overflow):
    """``acc[g] = a16[g] @ b16[g] + bias[g]`` on the array for each group g → ((G, M, N) int64, AccOverflow)."""
    g, m, _ = a16.shape
    n = b16.shape[2]
    acc = np.empty((g, m, n), dtype=np.int64)
    events = outputs = 0
    for i in range(g):
        run = cfg.gemm(name, a16[i], b16[i], stage.bias[i], f, acc_bits, overflow)
        acc[i] = run.acc
        events += run.overflow_events
        outputs += run.overflow_outputs
    return acc, _ql.AccOverflow(events, outputs)


def qlinear_conv_array(cfg: ArrayConfig, name: str, x, x_scale, x_zp, w, w_scale, w_zp, y_scale, y_zp, bias=None,
                       strides=(1, 1), pads=(0, 0, 0, 0), dilations=(1, 1), group=1, *, requant="float",
                       acc_bits=32, overflow="wrap", x_bits=None, w_bits=None, y_bits=None):
    """:func:`accelsim.quant.qlinear_conv` (``return_overflow=True``) with the accumulation on the array."""
    x, w = _ql._codes(x, "x"), _ql._codes(w, "w")
    geo, g = _ql._conv_geometry(x, w, group, strides, pads, dilations, "qlinear_conv")
    cout, kk = w.shape[0], w.shape[1] * w.shape[2] * w.shape[3]
    (sx, swt), (zx, zw), (xb, wb) = _ql._operands(x, x_scale, x_zp, w, w_scale, w_zp, cout, (x_bits, w_bits),
                                                  ("x", "w"))
    sy, zy, y_dtype, yb = _ql._out_grid(y_scale, y_zp, y_bits)
    bias64, _ = _ql._bias(bias, cout)
    nbits, _ = _ql._acc_args(acc_bits, overflow)
    cg = cout // g
    stage = _ql._requant_stage(sx, swt, sy, g, cg, requant, yb, y_dtype, zy, bias64)
    r, s, sh, sw, (pt, pl, _, _), dh, dw, ho, wo = geo
    nb = x.shape[0]
    cols = np.empty((g, nb * ho * wo, kk), dtype=np.int16)
    _im.im2col_sub_zp(np.ascontiguousarray(x), zx[0], g, r, s, sh, sw, pt, pl, dh, dw, ho, wo, cols)
    wz = np.broadcast_to(zw.reshape(-1), (cout,)).reshape(g, cg, 1)
    wmat = (w.reshape(g, cg, kk).astype(np.int32) - wz).transpose(0, 2, 1)      # (G, K, N)
    acc, ovf = _gemms(cfg, name, cols, wmat, stage, cfg.rate(xb, wb), nbits, overflow)
    s_ = cfg.stats[name]
    s_.calls += 1
    y = np.empty((nb, cout, ho, wo), dtype=y_dtype)
    out = np.empty((g, nb * ho * wo, cg), dtype=y_dtype)
    stage.after_checked(acc, out)
    y[...] = out.reshape(g, nb, ho * wo, cg).transpose(1, 0, 3, 2).reshape(nb, cout, ho, wo)
    return y, ovf


def qlinear_matmul_array(cfg: ArrayConfig, name: str, a, a_scale, a_zp, b, b_scale, b_zp, y_scale, y_zp, *,
                         bias=None, requant="float", acc_bits=32, overflow="wrap", a_bits=None, b_bits=None,
                         y_bits=None):
    """:func:`accelsim.quant.qlinear_matmul` (``return_overflow=True``) with the accumulation on the array."""
    a, b, g, n = _ql._matmul_shapes(a, b, "qlinear_matmul")
    (sa, sb), (za, zb), (ab, bb) = _ql._operands(a, a_scale, a_zp, b, b_scale, b_zp, n, (a_bits, b_bits),
                                                 ("a", "b"))
    sy, zy, y_dtype, yb = _ql._out_grid(y_scale, y_zp, y_bits)
    nbits, _ = _ql._acc_args(acc_bits, overflow)
    bias64, _ = _ql._bias(bias, n)
    stage = _ql._requant_stage(sa, sb, sy, g, n, requant, yb, y_dtype, zy, bias64)
    k = a.shape[-1]
    m = math.prod(a.shape[:-1]) // g
    a16 = a.reshape(g, m, k).astype(np.int32) - int(za[0])
    b16 = b.reshape(g, k, n).astype(np.int32) - np.broadcast_to(zb.reshape(-1), (n,)).reshape(1, 1, n)
    acc, ovf = _gemms(cfg, name, a16, b16, stage, cfg.rate(ab, bb), nbits, overflow)
    cfg.stats[name].calls += 1
    y = np.empty(a.shape[:-1] + (n,), dtype=y_dtype)
    stage.after_checked(acc, y.reshape(g, m, n))
    return y, ovf


def array_kinds(cfg: ArrayConfig) -> dict:
    """``QuantOps`` GEMM kinds whose requantizing integer path runs on ``cfg``'s array (module docstring) for the
    layers :meth:`ArrayConfig.selects`; the others keep the integer kernels."""
    def conv(*a):
        if not cfg.selects():
            return KINDS["conv"].requant(*a)
        xq, xs, xz, wq, ws, wz, ys, yz, bias, g, kw = a
        return qlinear_conv_array(cfg, cfg.layer, xq, xs, xz, wq, ws, wz, ys, yz, bias, **g,
                                  x_bits=kw.pop("a_bits"), w_bits=kw.pop("b_bits"), **kw)

    def matmul(kind):
        def run(*a):
            if not cfg.selects():
                return KINDS[kind].requant(*a)
            xq, xs, xz, wq, ws, wz, ys, yz, bias, g, kw = a
            return qlinear_matmul_array(cfg, cfg.layer, xq, xs, xz, wq, ws, wz, ys, yz,
                                        bias=bias if kind == "linear" else None, **kw)
        return run

    return {"conv": replace(KINDS["conv"], requant=conv), "linear": replace(KINDS["linear"], requant=matmul("linear")),
            "matmul": replace(KINDS["matmul"], requant=matmul("matmul"))}


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
