"""Dynamic quantization (ONNX Runtime's ``quantize_dynamic``, the usual INT8 recipe for transformers).

Per call, each activation input gets its own grid from its actual range — ONNX ``DynamicQuantizeLinear``,
all in float32 as the operator specifies (and ONNX Runtime computes it, tested bit for bit): unsigned,
``lo = min(x, 0)``, ``hi = max(x, 0)``, ``scale = (hi − lo) / (2^bits − 1)``, ``zp = rne(clamp(−lo / scale))``
(scale 1, zp 0 for an all-zero tensor). Weights
are quantized as in static PTQ (per output channel, symmetric). The GEMM accumulates exactly
(``MatMulInteger``/``ConvInteger``: int32 ``Σ (x_q − zp_x)·w_q``; here computed on integer-valued float64
arrays, exact since every partial sum stays far below 2^53) and the output stays float:
``y = float32(acc) · float32(s_x · s_w) + b`` — no output requantization, no calibration set.
``fake`` mode computes the same in float32 on dequantized values (they differ only by float rounding).
"""
from __future__ import annotations

import numpy as np

from ..quant import QParams, QuantSpec, dequantize, quantize
from .qexec import ACTIVATIONS, QuantOps, _conv_float, _linear_float


def dynamic_qparams(x, bits: int = 8) -> QParams:
    """ONNX ``DynamicQuantizeLinear`` grid of ``x`` (module docstring), float32 throughout."""
    qmax = np.float32(2 ** bits - 1)
    lo, hi = np.minimum(np.float32(x.min()), np.float32(0)), np.maximum(np.float32(x.max()), np.float32(0))
    scale = np.float32((hi - lo) / qmax)
    if scale == 0:
        return QParams(np.float32(1), np.int32(0), QuantSpec(bits, signed=False))
    zp = np.rint(np.clip(np.float32(0) - lo / scale, np.float32(0), qmax))
    return QParams(np.asarray(scale, np.float32), np.asarray(zp, np.int32), QuantSpec(bits, signed=False))


class DynamicQuantOps(QuantOps):
    """Runs a plan's layers (which layers and their bits) with per-call activation grids."""

    def _grid(self, x, bits: int) -> QParams:
        return dynamic_qparams(x, bits)

    def _centered(self, q, p: QParams) -> np.ndarray:
        return q.astype(np.float64) - float(p.zero_point)

    def conv(self, name, x, w, b, stride=1, pads=(0, 0, 0, 0), dilation=1, groups=1, act=None):
        lq = self._layer(name)
        if lq is None:
            return _conv_float(x, w, b, stride, pads, dilation, groups, act)
        xp = self._grid(x, lq.a_bits)
        wq, ws, w_dq = self._weight(name, w, lq.w_bits)
        xq = quantize(x, xp)
        if self.mode == "fake":
            y = _conv_float(dequantize(xq), w_dq, b, stride, pads, dilation, groups, act)
        else:
            acc = _conv_float(self._centered(xq.q, xp), wq.astype(np.float64), None, stride, pads, dilation, groups)
            y = self._rescale(acc, xp, ws, b, act, axis=1)
        self._record(name, _conv_float(x, w, b, stride, pads, dilation, groups, act), y)
        return y

    def linear(self, name, x, w, b=None, act=None):
        lq = self._layer(name)
        if lq is None:
            return _linear_float(x, w, b, act)
        xp = self._grid(x, lq.a_bits)
        wq, ws, w_dq = self._weight(name, w, lq.w_bits)
        xq = quantize(x, xp)
        if self.mode == "fake":
            y = _linear_float(dequantize(xq), w_dq, b, act)
        else:
            acc = _linear_float(self._centered(xq.q, xp), wq.astype(np.float64), None)
            y = self._rescale(acc, xp, ws, b, act, axis=-1)
        self._record(name, _linear_float(x, w, b, act), y)
        return y

    def matmul(self, name, a, b):
        lq = self._layer(name)
        if lq is None:
            return np.matmul(a, b)
        ap, bp = self._grid(a, lq.a_bits), self._grid(b, lq.a_bits)
        aq, bq = quantize(a, ap), quantize(b, bp)
        if self.mode == "fake":
            y = np.matmul(dequantize(aq), dequantize(bq))
        else:
            acc = np.matmul(self._centered(aq.q, ap), self._centered(bq.q, bp))
            y = (acc.astype(np.float32) * (np.float32(ap.scale) * np.float32(bp.scale))).astype(np.float32)
        self._record(name, np.matmul(a, b), y)
        return y

    @staticmethod
    def _rescale(acc, xp: QParams, ws, b, act, axis: int) -> np.ndarray:
        """``act(float32(acc) · float32(s_x · s_w[c]) + b[c])`` with channels on ``axis``."""
        shape = [1] * acc.ndim
        shape[axis] = -1
        scale = (np.float32(xp.scale) * ws).reshape(shape)
        y = acc.astype(np.float32) * scale
        if b is not None:
            y = y + np.asarray(b, np.float32).reshape(shape)
        return ACTIVATIONS[act](y.astype(np.float32))
