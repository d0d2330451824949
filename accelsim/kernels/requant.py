"""Requantization of an integer accumulator to the output grid (scalar ``@njit`` helpers + multiplier prep).

Two modes:

* ``float`` - ONNX Runtime CPU QLinearMatMul/QLinearConv (MLAS ``MlasRequantizeOutput``), bit for bit:
  ``m = float32(float32(x_scale * w_scale[c]) / y_scale)``; ``f = float32(acc) * m`` in float32 (float32(acc)
  rounds to nearest even once |acc| > 2**24); ``f = clamp(f, qmin - zp, qmax - zp)``; ``q = rne(f) + zp``.
* ``fixed_point`` - TFLite / gemmlowp integer-only path (``reference/integer_ops``):
  ``m = float64(x_scale) * float64(w_scale[c]) / float64(y_scale)`` is split by :func:`quantize_multiplier`
  into an int32 ``qm`` in [2**30, 2**31) and a power-of-two ``shift``;
  ``q = clamp(RoundingDivideByPOT(SaturatingRoundingDoublingHighMul(acc << left, qm), right) + zp, qmin, qmax)``
  with ``left = max(shift, 0)``, ``right = max(-shift, 0)``. ``acc << left`` wraps to int32 as the C++ does.
  This is gemmlowp's double rounding (TFLite's default build), not the ``TFLITE_SINGLE_ROUNDING`` variant.

Numba's on-disk cache does not track functions inlined from another module: after editing this file, delete
``accelsim/kernels/__pycache__`` (or set ``NUMBA_CACHE_DIR``) so the GEMM kernels recompile.
"""
from __future__ import annotations

import numpy as np

from accelsim.kernels._jit import njit

INT32_MIN = -(1 << 31)
INT32_MAX = (1 << 31) - 1
MODE_FLOAT = 0
MODE_FIXED = 1


@njit
def wrap_int32(x):
    """Two's-complement wrap of an int64 to the int32 range."""
    return ((x + (1 << 31)) & 0xFFFFFFFF) - (1 << 31)


@njit
def requant_float(acc, m, lo, hi, zp):
    """ONNX Runtime requantization of one accumulator (``lo = float32(qmin - zp)``, ``hi = float32(qmax - zp)``)."""
    f = min(max(np.float32(acc) * m, lo), hi)  # branch-free: signs of random data defeat branch prediction
    return np.int64(np.rint(f)) + zp


@njit
def srdhm(a, b):
    """gemmlowp ``SaturatingRoundingDoublingHighMul`` on int32 values held in int64."""
    if a == INT32_MIN and b == INT32_MIN:
        return INT32_MAX
    ab = a * b
    nudge = (1 << 30) if ab >= 0 else 1 - (1 << 30)
    num = ab + nudge
    q = abs(num) >> 31  # C++ '/' truncates toward zero
    return -q if num < 0 else q


@njit
def rounding_divide_by_pot(x, exponent):
    """gemmlowp ``RoundingDivideByPOT``: x / 2**exponent rounded to nearest, ties away from zero."""
    mask = (1 << exponent) - 1
    remainder = x & mask
    threshold = (mask >> 1) + (1 if x < 0 else 0)
    return (x >> exponent) + (1 if remainder > threshold else 0)


@njit
def requant_fixed(acc, qm, shift, qmin, qmax, zp):
    """TFLite ``MultiplyByQuantizedMultiplier(acc, qm, shift) + zp`` clamped to [qmin, qmax]."""
    left = max(0, shift)
    right = -shift if shift < 0 else 0
    x = wrap_int32(wrap_int32(acc) << left)
    v = rounding_divide_by_pot(srdhm(x, np.int64(qm)), right) + zp
    return min(max(v, qmin), qmax)


def float_multiplier(x_scale, w_scale, y_scale) -> np.ndarray:
    """ONNX Runtime's output multiplier ``float32(x_scale * w_scale) / y_scale`` (float32, left to right)."""
    with np.errstate(over="ignore", under="ignore"):  # callers reject non-finite multipliers
        return (np.float32(x_scale) * np.asarray(w_scale, dtype=np.float32)) / np.float32(y_scale)


def quantize_multiplier(m) -> tuple[np.ndarray, np.ndarray]:
    """TFLite ``QuantizeMultiplier``: ``m = qm * 2**(shift - 31)`` with int32 ``qm`` in [2**30, 2**31).

    ``frexp`` gives ``m = f * 2**shift`` (f in [0.5, 1)); ``qm = round_half_away(f * 2**31)``; ``qm == 2**31``
    becomes ``2**30`` with ``shift + 1``; ``shift < -31`` flushes to ``qm = shift = 0``; ``m == 0`` gives (0, 0).
    """
    m = np.asarray(m, dtype=np.float64)
    f, shift = np.frexp(m)
    q = np.floor(np.abs(f) * 2.0**31 + 0.5) * np.sign(f)
    carry = q == 2.0**31
    q = np.where(carry, q / 2, q)
    shift = np.where(carry, shift + 1, shift)
    tiny = shift < -31
    q = np.where(tiny, 0, q)
    shift = np.where(tiny, 0, shift)
    return q.astype(np.int32), shift.astype(np.int32)
