"""Quantize / dequantize / INT4 packing kernels (arrays and scalars in, arrays out; no validation here).

Tensors are viewed as ``(outer, channels, inner)`` so one kernel serves per-tensor (``channels == 1``) and
per-axis parameters. Formulas (ONNX Runtime's MLAS, DESIGN section 5.3):

* quantize: ``q = clamp(float32(x) / float32(scale), qmin - zp, qmax - zp)`` -> round half to even -> ``+ zp``
  (a float32 division, never a multiply by the reciprocal; clamping before rounding equals saturating after,
  because the bounds are integers);
* dequantize: ``x = float32(q - zp) * scale`` in float32.
"""
from __future__ import annotations

import numpy as np

from accelsim.kernels._jit import njit, njit_parallel, prange


@njit_parallel
def quantize_3d(x, scale, zp, qmin, qmax, out):
    """``out[o, c, i] = sat(rne(x[o, c, i] / scale[c]) + zp[c])`` with float32 arithmetic."""
    n_outer, n_ch, n_inner = x.shape
    for oc in prange(n_outer * n_ch):
        o = oc // n_ch
        c = oc % n_ch
        s = scale[c]
        z = zp[c]
        lo = np.float32(qmin - z)
        hi = np.float32(qmax - z)
        for i in range(n_inner):
            f = x[o, c, i] / s
            if f < lo:
                f = lo
            elif f > hi:
                f = hi
            out[o, c, i] = np.int64(np.rint(f)) + z


@njit_parallel
def dequantize_3d(q, scale, zp, out):
    """``out[o, c, i] = float32(q[o, c, i] - zp[c]) * scale[c]``."""
    n_outer, n_ch, n_inner = q.shape
    for oc in prange(n_outer * n_ch):
        o = oc // n_ch
        c = oc % n_ch
        s = scale[c]
        z = zp[c]
        for i in range(n_inner):
            out[o, c, i] = np.float32(np.int64(q[o, c, i]) - z) * s


@njit
def pack_int4(q, out):
    """Two 4-bit values per byte, ONNX order: element ``2i`` in the low nibble, ``2i+1`` in the high nibble.

    ``q`` is a flat int8/uint8 array of 4-bit values; an odd count leaves the last high nibble 0.
    """
    n = q.shape[0]
    for b in range(out.shape[0]):
        lo = np.int64(q[2 * b]) & 0xF
        hi = np.int64(q[2 * b + 1]) & 0xF if 2 * b + 1 < n else 0
        out[b] = lo | (hi << 4)


@njit
def unpack_int4(packed, n, signed, out):
    """Inverse of :func:`pack_int4`: ``n`` nibbles, sign-extended when ``signed``."""
    for i in range(n):
        byte = np.int64(packed[i // 2])
        v = (byte >> 4) & 0xF if i % 2 else byte & 0xF
        if signed and v >= 8:
            v -= 16
        out[i] = v


@njit
def finite_count(x):
    """Number of finite values in a flat float array (NaN/Inf screening without temporaries)."""
    n = 0
    for i in range(x.shape[0]):
        v = x[i]
        if v - v == 0:
            n += 1
    return n
