"""Output stages (gemmlowp style) applied to an exact integer accumulator ``acc`` (M, N) from a GEMM.

Row ``i`` of ``acc`` is output position ``p = i % P`` of batch ``b = i // P``; results go to ``out[b, p, j]``
(any strides: a contiguous (1, M, N) view for a matmul, ``y.reshape(B, N, P).transpose(0, 2, 1)`` for NCHW
conv output). :func:`requant` and :func:`rescale` run serially by default: after an ONNX Runtime GEMM its thread
pool is parked, and waking numba's pool (whose threads then spin for a while) would steal the cores from the
next ONNX Runtime call; ``parallel=True`` (large outputs) after numba's own kernels.

* :func:`requant` - ``out = requant(acc + bias[j])`` with the ``float`` (ONNX Runtime) or ``fixed_point``
  (gemmlowp) semantics of :mod:`accelsim.kernels.requant`, identical to :func:`accelsim.kernels.igemm.gemm_fast`;
  ``acc + bias`` must fit int32 (the exact path guarantees it), so the float mode runs in 32-bit lanes
  (:func:`requant_float32`).
* :func:`rescale` - ``out = act(float32(acc) * scale[j] + bias[j])`` in float32 (ONNX Runtime
  ``quantize_dynamic``: MatMulInteger/ConvInteger then Cast, Mul, Add), ``scale[j] = float32(s_x * s_w[j])``.
  ``act``: :data:`ACT_NONE`; :data:`ACT_RELU` ``max(y, 0)`` (numpy's ``maximum``: ``-0.0 -> +0.0``, NaN kept);
  :data:`ACT_RELU6` ``min(max(y, 0), 6)`` (numpy's ``clip``: ``-0.0`` kept, NaN kept). Without a bias pass
  ``-0.0`` everywhere: ``y + (-0.0) == y`` bit for bit, signed zeros included.
"""
from __future__ import annotations

import numpy as np

from accelsim.kernels._jit import njit, njit_parallel, prange
from accelsim.kernels.requant import MODE_FIXED, requant_fixed

ACT_NONE = 0
ACT_RELU = 1
ACT_RELU6 = 2
ROWS = 32              # rows per parallel task (a conv's NCHW writes then fill whole cache lines per channel)
PARALLEL_MIN = 1 << 15  # outputs below which the serial kernel runs even when parallel=True


@njit
def requant_float32(acc, m, lo, hi, zp):
    """:func:`accelsim.kernels.requant.requant_float` for an ``acc`` that fits int32, in 32-bit arithmetic:
    ``float32(int32(acc))`` is ``float32(acc)``, and the clamped, rounded value fits int32 (vectors of 16)."""
    f = min(max(np.float32(np.int32(acc)) * m, lo), hi)
    return np.int32(np.rint(f)) + zp


@njit
def _requant_block(acc, bias, mode, mult, qm, shift, qmin, qmax, zp, out, i0, i1):
    n = acc.shape[1]
    n_p = out.shape[1]
    lo = np.float32(qmin - zp)
    hi = np.float32(qmax - zp)
    for i in range(i0, i1):
        b = i // n_p
        p = i - b * n_p
        if mode == MODE_FIXED:
            for j in range(n):
                out[b, p, j] = requant_fixed(np.int64(acc[i, j]) + bias[j], qm[j], shift[j], qmin, qmax, zp)
        else:
            for j in range(n):
                out[b, p, j] = requant_float32(acc[i, j] + bias[j], mult[j], lo, hi, np.int32(zp))


@njit
def _rescale_block(acc, scale, bias, act, out, i0, i1):
    n = acc.shape[1]
    n_p = out.shape[1]
    zero = np.float32(0.0)
    six = np.float32(6.0)
    for i in range(i0, i1):
        b = i // n_p
        p = i - b * n_p
        for j in range(n):
            y = np.float32(np.float32(acc[i, j]) * scale[j]) + bias[j]
            if act == ACT_RELU:
                y = y if (y > zero or y != y) else zero
            elif act == ACT_RELU6:
                y = zero if y < zero else y
                y = six if y > six else y
            out[b, p, j] = y


@njit_parallel
def _requant_par(acc, bias, mode, mult, qm, shift, qmin, qmax, zp, out):
    m = acc.shape[0]
    for t in prange((m + ROWS - 1) // ROWS):
        _requant_block(acc, bias, mode, mult, qm, shift, qmin, qmax, zp, out, t * ROWS, min(m, t * ROWS + ROWS))


@njit
def _requant_ser(acc, bias, mode, mult, qm, shift, qmin, qmax, zp, out):
    _requant_block(acc, bias, mode, mult, qm, shift, qmin, qmax, zp, out, 0, acc.shape[0])


@njit_parallel
def _rescale_par(acc, scale, bias, act, out):
    m = acc.shape[0]
    for t in prange((m + ROWS - 1) // ROWS):
        _rescale_block(acc, scale, bias, act, out, t * ROWS, min(m, t * ROWS + ROWS))


@njit
def _rescale_ser(acc, scale, bias, act, out):
    _rescale_block(acc, scale, bias, act, out, 0, acc.shape[0])


def requant(acc, bias, mode, mult, qm, shift, qmin, qmax, zp, out, parallel=False):
    """``out[i // P, i % P, j] = requant(acc[i, j] + bias[j])``: ``acc`` (M, N) and ``bias`` int32 (their sum
    fits int32), ``mult`` (float32) / ``qm`` / ``shift`` (int32) per column; ``out`` (B, P, N), output dtype."""
    kernel = _requant_par if parallel and acc.size >= PARALLEL_MIN else _requant_ser
    kernel(acc, bias, mode, mult, qm, shift, qmin, qmax, zp, out)


def rescale(acc, scale, bias, act, out, parallel=False):
    """``out[i // P, i % P, j] = act(float32(acc[i, j]) * scale[j] + bias[j])``, float32 (module docstring)."""
    kernel = _rescale_par if parallel and acc.size >= PARALLEL_MIN else _rescale_ser
    kernel(acc, scale, bias, act, out)
