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

from accelsim.kernels._jit import njit, njit_float_dot, njit_parallel, njit_parallel_float_dot, prange

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
    """``out[r, i] = d[r, j]·(float32(codes[r, i]) − offset)`` (``+ m[r, j]`` when ``has_min``), ``j = i // block``,
    float32 (ggml's order: the product, then the min; ``offset`` is a power of two, so ``float32(q) − offset`` is
    exact and equals ``float32(q − offset)``)."""
    for r in prange(codes.shape[0]):
        _dequantize_row(codes[r], d[r], m[r], block, np.float32(offset), has_min, out[r])


@njit_float_dot
def block_gemm(x, codes, d, m, block, offset, out):
    """``out[i, n] = Σ_k x[i, k]·w[n, k]`` for ``w`` = the dequantized codes (:func:`dequantize_blocks`; ``m`` is
    zeros for the rules without a min), factored per block ``j`` of the row (``x_j``, ``q_j`` its elements):
    ``Σ_j d[n, j]·(x_j · q_j) + (m[n, j] − d[n, j]·offset)·Σ x_j``. The inner dot ``x_j · q_j`` multiplies the
    float32 activations by the codes widened to float32 (exact), so the weights stream as their codes and are
    never dequantized one by one; every sum is float32 with its order left to the compiler (vectorized, as a
    BLAS library's). Equal to ``x @ dequantize(codes).T`` up to float32 rounding of the sums."""
    _gemm_rows(x, _block_sums(x, block), codes, d, m, block, np.float32(offset), out, 0, codes.shape[0])


@njit_parallel_float_dot
def block_gemm_parallel(x, codes, d, m, block, offset, out, chunks):
    """:func:`block_gemm` with its rows split into ``chunks`` ranges run in parallel (the same sums per row)."""
    n = codes.shape[0]
    xs = _block_sums(x, block)
    for c in prange(chunks):
        _gemm_rows(x, xs, codes, d, m, block, np.float32(offset), out, c * n // chunks, (c + 1) * n // chunks)


@njit_float_dot
def block_gemm_columns(x, codes_t, d_t, m_t, block, offset, out):
    """:func:`block_gemm` on the transposed grids (``codes_t [K, N] = codesᵀ``, ``d_t``/``m_t [K/block, N]``): for
    each block ``j``, ``s[i, n] = Σ_{k ∈ j} x[i, k]·q[k, n]`` accumulates row by row of ``codes_t`` (a loop over
    the N outputs, vectorized across them with no horizontal sums; ``s`` stays in L1 for N up to a few
    thousand), then ``out[i, n] += d[j, n]·s[i, n] + (m[j, n] − d[j, n]·offset)·Σ x_j``."""
    n = codes_t.shape[1]
    off = np.float32(offset)
    xs = _block_sums(x, block)
    s = np.empty((x.shape[0], n), np.float32)
    out[:] = 0
    for j in range(d_t.shape[0]):
        s[:] = 0
        for k in range(j * block, (j + 1) * block):
            q = codes_t[k]
            for i in range(x.shape[0]):
                xk = x[i, k]
                si = s[i]
                for r in range(n):
                    si[r] += xk * np.float32(q[r])
        dj, mj = d_t[j], m_t[j]
        for i in range(x.shape[0]):
            oi, si, xsj = out[i], s[i], xs[i, j]
            for r in range(n):
                oi[r] += dj[r] * si[r] + (mj[r] - dj[r] * off) * xsj


@njit_float_dot
def _block_sums(x, block):
    """``xs[i, j] = Σ x[i, j·block : (j+1)·block]``."""
    xs = np.empty((x.shape[0], x.shape[1] // block), np.float32)
    for i in range(x.shape[0]):
        for j in range(xs.shape[1]):
            xs[i, j] = _dot_ones(x[i, j * block:(j + 1) * block])
    return xs


@njit_float_dot
def _gemm_rows(x, xs, codes, d, m, block, off, out, r0, r1):
    """Rows ``r0 ≤ n < r1`` of :func:`block_gemm` (``xs``: :func:`_block_sums` of x)."""
    for r in range(r0, r1):
        cr, dr, mr = codes[r], d[r], m[r]
        for i in range(x.shape[0]):
            xr, xsr = x[i], xs[i]
            acc = np.float32(0)
            for j in range(dr.shape[0]):
                qb, xb = cr[j * block:(j + 1) * block], xr[j * block:(j + 1) * block]
                s = np.float32(0)
                for c in range(block):
                    s += xb[c] * np.float32(qb[c])
                acc += dr[j] * s + (mr[j] - dr[j] * off) * xsr[j]
            out[i, r] = acc


@njit_float_dot
def _dot_ones(a):
    """``Σ_c a[c]`` in float32, summation order left to the compiler."""
    s = np.float32(0)
    for c in range(a.shape[0]):
        s += a[c]
    return s


@njit
def _dequantize_row(cr, dr, mr, block, off, has_min, orow):
    for j in range(dr.shape[0]):
        s = dr[j]
        mn = mr[j] if has_min else np.float32(0)
        base = j * block
        if has_min:
            for c in range(block):
                orow[base + c] = s * (np.float32(cr[base + c]) - off) + mn
        else:
            for c in range(block):
                orow[base + c] = s * (np.float32(cr[base + c]) - off)


@njit_parallel
def unpack_nibbles(qs, out):
    """GGUF 4-bit blocks ``qs [n, B/2]`` (uint8) → codes ``[n, B]``: byte ``i`` holds element ``i`` in its low
    nibble and element ``i + B/2`` in its high nibble."""
    n, h = qs.shape
    for b in prange(n):
        for i in range(h):
            out[b, i] = qs[b, i] & 0xF
            out[b, i + h] = qs[b, i] >> 4

