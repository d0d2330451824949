"""Block-wise quantization kernels (GGUF/ggml Q4_0, Q4_1, Q8_0 and their generalisations; arrays and scalars in,
arrays out; no validation here — call :mod:`accelsim.quant.blocks`).

A row of ``K`` weights splits into blocks of ``B`` along K; block ``j`` of row ``r`` has a scale ``d[r, j]`` (and,
for the ``minmax`` rule, a min ``m[r, j]``). Every product and sum is float32, in ggml's order (its reference
``quantize_row_q*_ref`` / ``dequantize_row_q*``, and the ``gguf`` package's numpy port):

* ``RULE_SIGNED_MAX`` (Q4_0): ``max`` = the element of largest magnitude, with its sign; ``d = max / −2^(b−1)``,
  ``q = min(2^b − 1, trunc(x·(1/d) + 2^(b−1) + ½))``; value ``d·(q − 2^(b−1))``;
* ``RULE_MINMAX`` (Q4_1): ``d = (max − min) / (2^b − 1)``, ``q = min(2^b − 1, trunc((x − min)·(1/d) + ½))``,
  ``m = min``; value ``d·q + m``;
* ``RULE_ABSMAX`` (Q8_0): ``d = max|x| / (2^(b−1) − 1)``, ``q = roundf(x·(1/d))`` (half away from zero); value
  ``q·d``.

``1/d`` is 0 for ``d = 0``. The codes come from the float32 ``d``; the caller stores ``d`` and ``m`` in float16
(as GGUF does) and dequantizes with the stored values. Codes are unsigned ``[0, 2^b)`` for the first two rules
(the offset ``2^(b−1)`` is subtracted at dequantization), signed for ``RULE_ABSMAX``.
"""
from __future__ import annotations

import numpy as np

from accelsim.kernels._jit import njit_parallel, prange

RULE_SIGNED_MAX, RULE_MINMAX, RULE_ABSMAX = 0, 1, 2


@njit_parallel
def quantize_blocks(x, block, rule, bits, codes, d_out, m_out):
    """``x [R, K]`` float32 → ``codes [R, K]`` (int32), ``d_out``/``m_out [R, K/block]`` float32 (module
    docstring; ``m_out`` is 0 except for ``RULE_MINMAX``)."""
    rows, k = x.shape
    nb = k // block
    levels = (1 << bits) - 1
    half = np.float32(1 << (bits - 1))
    for rb in prange(rows * nb):
        r = rb // nb
        j = rb % nb
        lo = j * block
        if rule == RULE_MINMAX:
            mn = x[r, lo]
            mx = x[r, lo]
            for i in range(lo, lo + block):
                mn = min(mn, x[r, i])
                mx = max(mx, x[r, i])
            d = (mx - mn) / np.float32(levels)
            inv = np.float32(0) if d == 0 else np.float32(1) / d
            for i in range(lo, lo + block):
                q = np.int64(np.trunc((x[r, i] - mn) * inv + np.float32(0.5)))
                codes[r, i] = min(max(q, 0), levels)
            m_out[r, j] = mn
        elif rule == RULE_SIGNED_MAX:
            big = x[r, lo]
            for i in range(lo, lo + block):
                if abs(x[r, i]) > abs(big):
                    big = x[r, i]
            d = big / -half
            inv = np.float32(0) if d == 0 else np.float32(1) / d
            for i in range(lo, lo + block):
                q = np.int64(np.trunc(x[r, i] * inv + (half + np.float32(0.5))))
                codes[r, i] = min(max(q, 0), levels)
            m_out[r, j] = np.float32(0)
        else:
            amax = np.float32(0)
            for i in range(lo, lo + block):
                amax = max(amax, abs(x[r, i]))
            d = amax / (half - np.float32(1))
            inv = np.float32(0) if d == 0 else np.float32(1) / d
            for i in range(lo, lo + block):
                v = x[r, i] * inv
                a = abs(v)
                fl = np.floor(a)
                q = fl + np.floor(np.float32(2) * (a - fl))
                codes[r, i] = np.int64(-q) if v < 0 else np.int64(q)
            m_out[r, j] = np.float32(0)
        d_out[r, j] = d


@njit_parallel
def dequantize_blocks(codes, d, m, block, offset, has_min, out):
    """``out[r, i] = d[r, j]·float32(codes[r, i] − offset)`` (``+ m[r, j]`` when ``has_min``), ``j = i // block``,
    float32 (ggml's order: the product, then the min)."""
    rows, k = codes.shape
    nb = k // block
    for rb in prange(rows * nb):
        r = rb // nb
        j = rb % nb
        s = d[r, j]
        mn = m[r, j]
        for i in range(j * block, (j + 1) * block):
            v = s * np.float32(np.int64(codes[r, i]) - offset)
            out[r, i] = v + mn if has_min else v


@njit_parallel
def unpack_nibbles(qs, out):
    """GGUF 4-bit blocks ``qs [n, B/2]`` (uint8) → codes ``[n, B]``: byte ``i`` holds element ``i`` in its low
    nibble and element ``i + B/2`` in its high nibble."""
    n, h = qs.shape
    for b in prange(n):
        for i in range(h):
            out[b, i] = qs[b, i] & 0xF
            out[b, i + h] = qs[b, i] >> 4
