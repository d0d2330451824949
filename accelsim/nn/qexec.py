"""Quantization modes of the one executor: fp32 reference, calibration, fake-quant and bit-exact integer.

:func:`accelsim.nn.graph_exec.run_graph` calls three GEMM ops with a layer name; the ops object decides the mode:

* ``conv(name, x, w, b, stride, pads, dilation, groups, act)`` — ``[N, C, *spatial]`` (1 to 3 spatial dims), ``w``
  [Cout, Cin/g, *kernel], ``stride`` and ``dilation`` ints or one per spatial dim, ``pads`` = begins then ends as
  in ONNX (2-D: top, left, bottom, right); ``conv_transpose(..., output_padding, act)`` likewise, ``w`` [Cout, Cin/g,
  *kernel] (output channel first, :func:`accelsim.ops._conv.conv_transpose`);
* ``linear(name, x, w, b, act)`` — ``x`` [..., K] @ ``w``ᵀ with ``w`` [N, K] (torch layout);
* ``matmul(name, a, b)`` — two activations ``a`` [..., M, K] @ ``b`` [..., K, N] (attention).

``act`` (``None``, ``"relu"``, ``"relu6"``) is a fused activation: the output grid is calibrated *after* it, as
on integer hardware where the clamp is the requantization's saturation.

:class:`FloatOps` is the FP32 reference. :class:`Calibrator` runs FP32 and feeds every quantized layer's input
(and ``b``) and output to an observer (a tensor that several layers read — Q, K and V share their input, a conv's
output is the next conv's input — is observed once); :meth:`Calibrator.plan` turns them into a
:class:`QuantPlan`. :class:`QuantOps` runs a plan through ONE quantized-GEMM skeleton (gemmlowp's output
pipeline): quantize the input on its grid, quantize the weights (:func:`accelsim.quant.weight_qparams`, cached per
layer), run the integer GEMM (how each GEMM kind computes: :data:`accelsim.ops.gemm.KINDS`), then an *output
stage*:

* static (calibrated grids): **requantize** — int32 bias ``round(b / (s_x·s_w))``, ONNX Runtime requantization to
  the calibrated output grid (``qlinear_conv`` / ``qlinear_matmul``), dequantized;
* dynamic (``scheme.dynamic``, ONNX Runtime ``quantize_dynamic``): the input grid comes from each call's own range
  (:func:`dynamic_qparams`) and the stage **rescales to float**: ``act(float32(acc)·float32(s_x·s_w[c]) + b[c])``.

``mode="fake"`` computes the same in float32 on dequantized values (``y = Q(op(Q(x), Q(w)) + b_q)``, what QAT
trains against); ``int`` and ``fake`` output codes differ by at most 1 LSB (float32 vs exact integer sums).
Everything else (activations, residual adds, softmax, layernorm, GELU) runs in float32 on dequantized values.
"""
from __future__ import annotations

import weakref
from dataclasses import dataclass, field, replace
from fnmatch import fnmatchcase
from types import MappingProxyType
from typing import Mapping

import numpy as np

from ..data.metrics import sqnr_from_energy
from ..errors import QuantError
from ..kernels.stats import energies
from ..ops.gemm import ACTIVATIONS, KINDS, GemmKind, conv_geometry
from ..quant import (QParams, QTensor, QuantSpec, dequantize, make_observer, qparams_from_range, quantize,
                     quantize_bias, weight_qparams)


@dataclass(frozen=True, slots=True)
class QuantScheme:
    """How a model is quantized (the reproducible part of the quantization card)."""
    w_bits: int = 8
    a_bits: int = 8
    per_channel: bool = True
    act_symmetric: bool = False
    calib: str = "minmax"
    percentile: float = 99.999
    layer_bits: Mapping[str, tuple[int, int]] = field(default_factory=lambda: MappingProxyType({}))  # glob → (w, a)
    float_layers: frozenset = frozenset()
    requant: str = "float"
    dynamic: bool = False      # per-call activation grids, float outputs

    def bits(self, name: str) -> tuple[int, int] | None:
        """(w_bits, a_bits) of a layer, or None if it stays float (``float_layers`` holds glob patterns)."""
        if any(fnmatchcase(name, pattern) for pattern in self.float_layers):
            return None
        for pattern, bits in self.layer_bits.items():   # exact names and glob patterns, first match wins
            if fnmatchcase(name, pattern):
                return tuple(bits)
        return (self.w_bits, self.a_bits)

    def act_spec(self, bits: int) -> QuantSpec:
        return QuantSpec(bits, signed=self.act_symmetric, symmetric=self.act_symmetric)

    def weight_spec(self, bits: int) -> QuantSpec:
        if self.per_channel:
            return QuantSpec(bits, signed=True, symmetric=True, granularity="channel", axis=0)
        return QuantSpec(bits, signed=True, symmetric=True)

    def observer(self):
        return make_observer(self.calib, symmetric=self.act_symmetric, percentile=self.percentile)


@dataclass(frozen=True, slots=True)
class LayerQ:
    """Calibrated grids of one layer: input ``x``, second input ``b`` (matmul only), output ``y``."""
    name: str
    w_bits: int
    a_bits: int
    x: QParams
    y: QParams
    b: QParams | None = None


@dataclass(frozen=True, slots=True)
class QuantPlan:
    scheme: QuantScheme
    layers: Mapping[str, LayerQ]
    calib_samples: int


class FloatOps:
    """The FP32 reference."""
    mode = "fp32"
    train = None   # inference; a training mode (accelsim.nn.graph_exec.TrainMode) in accelsim.nn.autograd.GradOps

    def _run(self, kind: str, name, x, w, b, act, geo):
        return ACTIVATIONS[act](KINDS[kind].float(x, w, b, geo))

    def conv(self, name, x, w, b, stride=1, pads=(0, 0, 0, 0), dilation=1, groups=1, act=None):
        return self._run("conv", name, x, w, b, act, conv_geometry(stride, pads, dilation, groups, w.ndim - 2))

    def conv_transpose(self, name, x, w, b, stride=1, pads=0, dilation=1, groups=1, output_padding=0, act=None):
        return self._run("conv_transpose", name, x, w, b, act,
                         conv_geometry(stride, pads, dilation, groups, w.ndim - 2, output_padding))

    def linear(self, name, x, w, b=None, act=None):
        return self._run("linear", name, x, w, b, act, None)

    def matmul(self, name, a, b):
        return self._run("matmul", name, a, b, None, None, None)


class Calibrator(FloatOps):
    """FP32 forward that observes every quantized layer's inputs and output (each tensor once)."""
    mode = "calibrate"

    def __init__(self, scheme: QuantScheme):
        self.scheme = scheme
        self.observers: dict[str, dict] = {}
        self.samples = 0
        self._seen: dict[int, tuple] = {}   # id(tensor) → (weakref to it, its observer), while it lives

    def _observe(self, name, **tensors):
        if self.scheme.bits(name) is None:
            return
        obs = self.observers.setdefault(name, {})
        for k, t in tensors.items():
            seen = self._seen.get(id(t))
            if seen is not None and seen[0]() is t:     # the same array, already observed
                if k not in obs:
                    obs[k] = seen[1]                     # share its observer: identical statistics
                if obs[k] is seen[1]:
                    continue
            o = obs.setdefault(k, self.scheme.observer())
            o.observe(t)
            key = id(t)
            self._seen[key] = (weakref.ref(t, lambda _, key=key: self._seen.pop(key, None)), o)

    def _run(self, kind, name, x, w, b, act, geo):
        y = super()._run(kind, name, x, w, b, act, geo)
        self._observe(name, x=x, **({"b": w} if kind == "matmul" else {}), y=y)
        return y

    def plan(self) -> QuantPlan:
        if not self.observers:
            raise QuantError("calibration saw no quantizable layer: run the model on calibration data first")
        layers = {}
        for name, obs in self.observers.items():
            w_bits, a_bits = self.scheme.bits(name)
            spec = self.scheme.act_spec(a_bits)
            grid = {k: qparams_from_range(*o.range(), spec) for k, o in obs.items()}
            layers[name] = LayerQ(name, w_bits, a_bits, grid["x"], grid["y"], grid.get("b"))
        return QuantPlan(self.scheme, MappingProxyType(layers), self.samples)


def dynamic_qparams(x, bits: int = 8) -> QParams:
    """ONNX ``DynamicQuantizeLinear`` grid of ``x``, float32 throughout: unsigned, ``lo = min(x, 0)``,
    ``hi = max(x, 0)``, ``scale = (hi − lo) / (2^bits − 1)``, ``zp = rne(clamp(−lo / scale))`` (scale 1, zp 0 for
    an all-zero tensor); bit-exact with ONNX Runtime (tested)."""
    qmax = np.float32(2 ** bits - 1)
    lo, hi = np.minimum(np.float32(x.min()), np.float32(0)), np.maximum(np.float32(x.max()), np.float32(0))
    scale = np.float32((hi - lo) / qmax)
    if scale == 0:
        return QParams(np.float32(1), np.int32(0), QuantSpec(bits, signed=False))
    zp = np.rint(np.clip(np.float32(0) - lo / scale, np.float32(0), qmax))
    return QParams(np.asarray(scale, np.float32), np.asarray(zp, np.int32), QuantSpec(bits, signed=False))


def _qdq(x, p: QParams) -> np.ndarray:
    return dequantize(quantize(x, p))


def _zp(p: QParams) -> np.ndarray:
    return np.asarray(p.zero_point, dtype=p.spec.dtype).reshape(())


@dataclass
class LayerStats:
    """Per-layer fidelity: the layer's own SQNR (quantized output vs FP32 op on the same float input)."""
    signal: float = 0.0
    noise: float = 0.0
    overflow_events: int = 0

    @property
    def sqnr_db(self) -> float:
        return sqnr_from_energy(self.signal, self.noise)


@dataclass(frozen=True, slots=True)
class LayerResult:
    """The integer view of a layer's last call (``QuantOps(keep_last=True)``): codes, grids, bias, overflow."""
    codes: np.ndarray | None
    x: QParams
    w: QParams
    y: QParams | None
    bias_int32: np.ndarray | None
    overflow: object


class QuantOps(FloatOps):
    """Runs a :class:`QuantPlan` in ``fake`` (simulated) or ``int`` (bit-exact integer) mode through one skeleton;
    ``plan.scheme.dynamic`` selects per-call input grids and the float-rescale output stage."""

    def __init__(self, plan: QuantPlan, mode: str = "int", measure: bool = True, acc_bits: int = 32,
                 overflow: str = "wrap", keep_last: bool = False, weight_params: Mapping[str, QParams] | None = None,
                 kinds: Mapping[str, GemmKind] | None = None):
        if mode not in ("fake", "int"):
            raise QuantError(f"mode: expected 'fake' or 'int', got {mode!r}")
        self.plan, self.mode, self.measure, self.keep_last = plan, mode, measure, keep_last
        self.dynamic = plan.scheme.dynamic
        self.acc = dict(acc_bits=acc_bits, overflow=overflow)
        self.stats: dict[str, LayerStats] = {}
        self.last: dict[str, LayerResult] = {}
        self._weights: dict[str, tuple] = {}
        self.weight_params = dict(weight_params or {})
        self.kinds = KINDS if kinds is None else kinds   # e.g. accelsim.sim.array_ops: the GEMMs on the array

    def weight_codes(self, name, w, w_bits, b=None, x_scale=None):
        """``(codes, per-channel scales, dequantized weights, params)`` cached per layer
        (:func:`accelsim.quant.weight_qparams`, or the layer's ``weight_params`` grid — clipped or learned —
        with the same bias headroom; headroom only where an int32 bias is formed); a linear layer's codes are
        stored transposed, ``[in, out]``, as its GEMM reads them."""
        if name not in self._weights:
            p = self.weight_params.get(name)
            if p is None:
                p = weight_qparams(w, self.plan.scheme.weight_spec(w_bits), b, x_scale, self.acc["acc_bits"])
            elif b is not None:
                need = np.abs(np.asarray(b, np.float64)) / (float(x_scale) * 2.0 ** (self.acc["acc_bits"] - 2))
                need = need if p.spec.granularity == "channel" else need.max()
                if np.any(need > p.scale):
                    p = QParams(np.maximum(p.scale, need).astype(np.float32), p.zero_point, p.spec)
            q = quantize(w, p)
            codes = np.ascontiguousarray(q.q.T) if w.ndim == 2 else q.q   # linear: [in, out] for the GEMM
            self._weights[name] = (codes, np.broadcast_to(p.scale.reshape(-1), (w.shape[0],)).astype(np.float32),
                                   dequantize(q), p)
        return self._weights[name]

    def _operand_b(self, kind, name, lq, w, b, xp):
        """The second GEMM operand as (codes, scales, zero points, dequantized, params): the layer's weights, or
        for a matmul the second activation on its grid."""
        if kind != "matmul":   # the weight grid's zero points (0 for accelsim's symmetric grids)
            wq, ws, w_dq, wp = self.weight_codes(name, w, lq.w_bits, None if self.dynamic else b, xp.scale)
            return wq, ws, np.broadcast_to(wp.zero_point.reshape(-1), ws.shape).astype(wq.dtype), w_dq, wp
        bp = dynamic_qparams(w, lq.a_bits) if self.dynamic else lq.b
        bq = quantize(w, bp)
        return bq.q, bp.scale, _zp(bp), dequantize(bq), bp

    def _run(self, kind: str, name, x, w, b, act, geo):
        lq = self.plan.layers.get(name)
        k = self.kinds[kind]
        if lq is None:
            return ACTIVATIONS[act](k.float(x, w, b, geo))
        xp = dynamic_qparams(x, lq.a_bits) if self.dynamic else lq.x
        xq = quantize(x, xp)
        wq, ws, wz, w_dq, wp = self._operand_b(kind, name, lq, w, b, xp)
        codes, bq, events, ovf = None, None, 0, None
        if self.dynamic:     # output stage: rescale the exact accumulator to float
            if self.mode == "fake":
                y = ACTIVATIONS[act](k.float(dequantize(xq), w_dq, b, geo))
            else:
                y = k.rescale(xq.q, xp.scale, _zp(xp), wq, ws, wz, b, act, geo)
        else:                # output stage: requantize to the calibrated output grid
            bq = None if b is None else quantize_bias(b, lq.x.scale, ws)
            if self.mode == "fake":
                bf = None if bq is None else (bq.astype(np.float32) * (np.float32(lq.x.scale) * ws)).astype(np.float32)
                y = _qdq(ACTIVATIONS[act](k.float(dequantize(xq), w_dq, bf, geo)), lq.y)
            else:
                codes, ovf = k.requant(xq.q, xp.scale, _zp(xp), wq, ws, wz, lq.y.scale, _zp(lq.y), bq, geo,
                                       dict(requant=self.plan.scheme.requant, a_bits=lq.a_bits,
                                            b_bits=lq.a_bits if kind == "matmul" else lq.w_bits,
                                            y_bits=lq.a_bits, **self.acc))
                y, events = ACTIVATIONS[act](dequantize(QTensor(codes, lq.y))), ovf.events
        if self.keep_last:
            self.last[name] = LayerResult(codes, xp, wp, None if self.dynamic else lq.y, bq, ovf)
        if self.measure:
            self._record(name, ACTIVATIONS[act](k.float(x, w, b, geo)), y, events)
        return y

    def _record(self, name, ref, y, events=0):
        s = self.stats.setdefault(name, LayerStats())
        signal, noise = energies(np.ascontiguousarray(ref).reshape(-1), np.ascontiguousarray(y).reshape(-1))
        s.signal += signal
        s.noise += noise
        s.overflow_events += events


def DynamicQuantOps(plan: QuantPlan, mode: str = "int", **kw) -> QuantOps:
    """:class:`QuantOps` with per-call input grids and float outputs (ONNX Runtime ``quantize_dynamic``), whatever
    ``plan.scheme.dynamic`` says."""
    if not plan.scheme.dynamic:
        plan = QuantPlan(replace(plan.scheme, dynamic=True), plan.layers, plan.calib_samples)
    return QuantOps(plan, mode, **kw)
