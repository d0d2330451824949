"""Quantized execution of real models: fp32 reference, calibration, fake-quant and bit-exact integer modes.

A model's forward pass calls three ops with a layer name, and the ops object it is given decides the mode:

* ``conv(name, x, w, b, stride, pads, dilation, groups, act)`` — NCHW, ``w`` [Cout, Cin/g, R, S],
  ``pads`` = (top, left, bottom, right) as in ONNX;
* ``linear(name, x, w, b, act)`` — ``x`` [..., K] @ ``w``ᵀ with ``w`` [N, K] (torch layout);

``act`` (``None``, ``"relu"``, ``"relu6"``) is a fused activation: the output grid is calibrated *after* it,
as on integer hardware where the clamp is the requantization's saturation (a pre-activation grid would
spend most of its levels on values the ReLU6 throws away).
* ``matmul(name, a, b)`` — two activations ``a`` [..., M, K] @ ``b`` [..., K, N] (attention).

:class:`FloatOps` is the FP32 reference. :class:`Calibrator` runs FP32 and feeds every quantized layer's
input (and ``b``) and output to an observer; :meth:`Calibrator.plan` turns them into a :class:`QuantPlan`.
:class:`QuantOps` runs a plan as

* ``fake``: ``y = Q(op(Q(x), Q(w)) + b_q)`` in float32, where ``Q`` = quantize then dequantize
  (simulated quantization, what QAT trains against);
* ``int``: the same layer on the integer datapath — ``qlinear_conv`` / ``qlinear_matmul`` with int32
  accumulation, int32 bias ``round(b / (s_x·s_w))`` and ONNX Runtime requantization — then dequantized.

Both quantize the input with the calibrated input grid, weights per output channel (symmetric, signed,
narrow INT8 ``[-127, 127]``; INT4 ``[-8, 7]``) and the output to the calibrated output grid, so ``int``
and ``fake`` differ only where float32 accumulation/rounding differs from exact integer arithmetic
(documented bound: output codes differ by at most 1 LSB except where float rounding of a product sum
sits exactly on a quantization tie). Everything else (BN folded, activations, residual adds, softmax,
layernorm, GELU) runs in float32 on dequantized values.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from types import MappingProxyType
from typing import Mapping

import numpy as np

from ..errors import QuantError
from ..quant import (QParams, QuantSpec, dequantize, make_observer, qlinear_conv, qlinear_matmul,
                     qparams_from_range, quantize, quantize_bias)
from . import functional as F


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
    dynamic: bool = False      # per-call activation grids, float outputs (see accelsim.nn.qdynamic)

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


ACTIVATIONS = {None: lambda y: y, "relu": F.relu, "relu6": F.relu6}


def _conv_float(x, w, b, stride, pads, dilation, groups, act=None):
    t, l, bo, r = pads
    return ACTIVATIONS[act](F.conv2d(x, w, b, stride=stride, padding=(t, bo, l, r), dilation=dilation, groups=groups))


def _linear_float(x, w, b, act=None):
    y = x.reshape(-1, x.shape[-1]) @ w.T
    if b is not None:
        y += b
    return ACTIVATIONS[act](y.reshape(x.shape[:-1] + (w.shape[0],)))


class FloatOps:
    """The FP32 reference."""
    mode = "fp32"

    def conv(self, name, x, w, b, stride=1, pads=(0, 0, 0, 0), dilation=1, groups=1, act=None):
        return _conv_float(x, w, b, stride, pads, dilation, groups, act)

    def linear(self, name, x, w, b=None, act=None):
        return _linear_float(x, w, b, act)

    def matmul(self, name, a, b):
        return np.matmul(a, b)


class Calibrator(FloatOps):
    """FP32 forward that observes every quantized layer's inputs and output."""
    mode = "calibrate"

    def __init__(self, scheme: QuantScheme):
        self.scheme = scheme
        self.observers: dict[str, dict] = {}
        self.samples = 0

    def _observe(self, name, **tensors):
        if self.scheme.bits(name) is None:
            return
        obs = self.observers.setdefault(name, {k: self.scheme.observer() for k in tensors})
        for k, t in tensors.items():
            obs[k].observe(t)

    def conv(self, name, x, w, b, stride=1, pads=(0, 0, 0, 0), dilation=1, groups=1, act=None):
        y = super().conv(name, x, w, b, stride, pads, dilation, groups, act)
        self._observe(name, x=x, y=y)
        return y

    def linear(self, name, x, w, b=None, act=None):
        y = super().linear(name, x, w, b, act)
        self._observe(name, x=x, y=y)
        return y

    def matmul(self, name, a, b):
        y = super().matmul(name, a, b)
        self._observe(name, x=a, b=b, y=y)
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
        if self.noise == 0.0:
            return float("inf")
        return 10.0 * np.log10(self.signal / self.noise) if self.signal > 0 else float("-inf")


class QuantOps:
    """Runs a :class:`QuantPlan` in ``fake`` (simulated) or ``int`` (bit-exact integer) mode."""

    def __init__(self, plan: QuantPlan, mode: str = "int", measure: bool = True, acc_bits: int = 32,
                 overflow: str = "wrap"):
        if mode not in ("fake", "int"):
            raise QuantError(f"mode: expected 'fake' or 'int', got {mode!r}")
        self.plan, self.mode, self.measure = plan, mode, measure
        self.acc = dict(acc_bits=acc_bits, overflow=overflow)
        self.stats: dict[str, LayerStats] = {}
        self._weights: dict[str, tuple] = {}

    def _layer(self, name) -> LayerQ | None:
        return self.plan.layers.get(name)

    def _weight(self, name, w, w_bits, b=None, x_scale=None):
        """``(codes, per-channel scales, dequantized weights)``, cached per layer: per output channel (axis 0) or
        per tensor, symmetric.

        With a bias, each weight scale is raised where needed so the int32 bias ``b / (s_x·s_w)`` stays within
        ``2**(acc_bits − 2)`` (headroom for the sum): a channel with near-zero weights but a large folded-BN
        bias would otherwise saturate its bias (ONNX Runtime's quantizer adjusts weight scales the same way).
        """
        if name not in self._weights:
            spec = self.plan.scheme.weight_spec(w_bits)
            flat = w.reshape(w.shape[0], -1)
            lo, hi = (flat.min(axis=1), flat.max(axis=1)) if spec.granularity == "channel" else (w.min(), w.max())
            p = qparams_from_range(lo, hi, spec)
            if b is not None:
                need = np.abs(b).astype(np.float64) / (float(x_scale) * 2.0 ** (self.acc["acc_bits"] - 2))
                need = need if spec.granularity == "channel" else need.max()
                if np.any(need > p.scale):
                    p = QParams(np.maximum(p.scale, need).astype(np.float32), p.zero_point, spec)
            q = quantize(w, p)
            self._weights[name] = (q.q, np.broadcast_to(p.scale.reshape(-1), (w.shape[0],)).astype(np.float32),
                                   dequantize(q))
        return self._weights[name]

    def _record(self, name, ref, y, events=0):
        if not self.measure:
            return
        s = self.stats.setdefault(name, LayerStats())
        r64, e64 = ref.astype(np.float64), (y.astype(np.float64) - ref)
        s.signal += float(np.sum(r64 * r64))
        s.noise += float(np.sum(e64 * e64))
        s.overflow_events += events

    def _bias(self, b, lq, w_scale):
        if b is None:
            return None, None
        bq = quantize_bias(b, lq.x.scale, w_scale)
        return bq, (bq.astype(np.float32) * (np.float32(lq.x.scale) * w_scale)).astype(np.float32)

    def conv(self, name, x, w, b, stride=1, pads=(0, 0, 0, 0), dilation=1, groups=1, act=None):
        lq = self._layer(name)
        if lq is None:
            return _conv_float(x, w, b, stride, pads, dilation, groups, act)
        wq, ws, w_dq = self._weight(name, w, lq.w_bits, b, lq.x.scale)
        bq, bf = self._bias(b, lq, ws)
        xq = quantize(x, lq.x)
        events = 0
        if self.mode == "fake":
            y = _qdq(_conv_float(dequantize(xq), w_dq, bf, stride, pads, dilation, groups, act),
                     lq.y)
        else:
            yq, ovf = qlinear_conv(xq.q, lq.x.scale, _zp(lq.x), wq, ws, np.zeros(len(ws), np.int8), lq.y.scale,
                                   _zp(lq.y), bq, (stride, stride), pads, (dilation, dilation), groups,
                                   requant=self.plan.scheme.requant, return_overflow=True, x_bits=lq.a_bits,
                                   w_bits=lq.w_bits, y_bits=lq.a_bits, **self.acc)
            y, events = ACTIVATIONS[act](dequantize_codes(yq, lq.y)), ovf.events
        if self.measure:
            self._record(name, _conv_float(x, w, b, stride, pads, dilation, groups, act), y, events)
        return y

    def linear(self, name, x, w, b=None, act=None):
        lq = self._layer(name)
        if lq is None:
            return _linear_float(x, w, b, act)
        wq, ws, w_dq = self._weight(name, w, lq.w_bits, b, lq.x.scale)
        bq, bf = self._bias(b, lq, ws)
        xq = quantize(x, lq.x)
        events = 0
        if self.mode == "fake":
            y = _qdq(_linear_float(dequantize(xq), w_dq, bf, act), lq.y)
        else:
            yq, ovf = qlinear_matmul(xq.q, lq.x.scale, _zp(lq.x), np.ascontiguousarray(wq.T), ws,
                                     np.zeros(len(ws), np.int8), lq.y.scale, _zp(lq.y), bias=bq,
                                     requant=self.plan.scheme.requant, return_overflow=True, a_bits=lq.a_bits,
                                     b_bits=lq.w_bits, y_bits=lq.a_bits, **self.acc)
            y, events = ACTIVATIONS[act](dequantize_codes(yq, lq.y)), ovf.events
        if self.measure:
            self._record(name, _linear_float(x, w, b, act), y, events)
        return y

    def matmul(self, name, a, b):
        lq = self._layer(name)
        if lq is None:
            return np.matmul(a, b)
        aq, bq = quantize(a, lq.x), quantize(b, lq.b)
        events = 0
        if self.mode == "fake":
            y = _qdq(np.matmul(dequantize(aq), dequantize(bq)), lq.y)
        else:
            lead = a.shape[:-2]
            a3, b3 = aq.q.reshape((-1,) + a.shape[-2:]), bq.q.reshape((-1,) + b.shape[-2:])
            out = np.empty((a3.shape[0], a.shape[-2], b.shape[-1]), dtype=lq.y.spec.dtype)
            for i in range(a3.shape[0]):
                out[i], ovf = qlinear_matmul(a3[i], lq.x.scale, _zp(lq.x), b3[i], lq.b.scale, _zp(lq.b),
                                             lq.y.scale, _zp(lq.y), requant=self.plan.scheme.requant,
                                             return_overflow=True, a_bits=lq.a_bits, b_bits=lq.a_bits,
                                             y_bits=lq.a_bits, **self.acc)
                events += ovf.events
            y = dequantize_codes(out.reshape(lead + out.shape[1:]), lq.y)
        if self.measure:
            self._record(name, np.matmul(a, b), y, events)
        return y


def dequantize_codes(q: np.ndarray, p: QParams) -> np.ndarray:
    """``float32(q − zp) · scale`` for integer codes on a per-tensor grid."""
    return ((q.astype(np.int32) - np.int32(p.zero_point)).astype(np.float32) * np.float32(p.scale)).astype(np.float32)
