"""Integer GEMM with fused requantization: ``Y[g, m, n] = requant(sum_k A[g, m, k] * B[g, n, k] + bias[g, n])``.

Both operands are *packed* int16 with the zero points already subtracted (``a - a_zp``, ``b - b_zp`` lie in
[-255, 255] for 8-bit inputs) and laid out with K contiguous (B is stored transposed, one row per output
column). Rows of A are padded to a multiple of 4 and rows of B to a multiple of 4 with zeros, so the 4x4
register-blocked micro-kernel needs no edge cases; padded outputs are never stored.

Two accumulation paths:

* :func:`gemm_fast` - exact int32 accumulation. Products of int16 values are summed in int32 (LLVM turns the
  inner loop into ``vpmaddwd``/``vpdpwssd``); used only when no partial sum can leave the accumulator range,
  so the result is the exact sum.
* :func:`gemm_checked` - emulates a W-bit accumulator step by step (products in k order, then the bias),
  wrapping or saturating on overflow and counting every overflowing step. Slow; used when an overflow is
  possible.

``g`` indexes groups (grouped convolution) or is 1. Requantization parameters are per output column ``n``.
"""
from __future__ import annotations

import numpy as np

from accelsim.kernels._jit import njit, njit_parallel, prange
from accelsim.kernels.requant import MODE_FIXED, requant_fixed, requant_float

ROW_BLOCK = 4      # rows of A per micro-kernel
COL_BLOCK = 4      # rows of B (output columns) per micro-kernel
MODE_ACC = 2       # gemm_fast output stage "none": store acc + bias (into an int32 ``out``) for a later epilogue
ROW_CHUNK = 64     # rows of A per parallel tile (kept in L2 while all column blocks pass over it)

i32 = np.int32


@njit_parallel
def pack_sub_zp(src, zp, rows_padded, out):
    """``out[g, r, k] = int16(src[g, r, k]) - zp[g, r]``; rows ``>= src.shape[1]`` are zero. ``src``: (G, R, K)."""
    n_g, n_r, n_k = src.shape
    for gr in prange(n_g * rows_padded):
        g = gr // rows_padded
        r = gr % rows_padded
        if r < n_r:
            z = zp[g, r]
            for k in range(n_k):
                out[g, r, k] = np.int64(src[g, r, k]) - z
        else:
            for k in range(n_k):
                out[g, r, k] = 0


@njit_parallel
def pack_transposed_sub_zp(src, zp, rows_padded, out):
    """``out[g, j, k] = int16(src[g, k, j]) - zp[j]`` (B of a matmul, (G, K, N) -> packed (G, Np, K)); rows >= N
    are 0. Blocked 16 x 64 so both the reads and the writes stay in cache lines."""
    n_g, n_k, n_n = src.shape
    n_jb = (rows_padded + 15) // 16
    for t in prange(n_g * n_jb):
        g = t // n_jb
        jb = t % n_jb
        j0, j1 = jb * 16, min(rows_padded, jb * 16 + 16)
        for k0 in range(0, n_k, 64):
            k1 = min(n_k, k0 + 64)
            for j in range(j0, j1):
                if j < n_n:
                    z = zp[j]
                    for k in range(k0, k1):
                        out[g, j, k] = np.int64(src[g, k, j]) - z
                else:
                    for k in range(k0, k1):
                        out[g, j, k] = 0


@njit
def _requant_one(acc, mode, m, qm, shift, lo, hi, qmin, qmax, zp):
    """Scalars only (array arguments in a per-element call cost more than the requantization itself)."""
    if mode == MODE_FIXED:
        return requant_fixed(acc, qm, shift, qmin, qmax, zp)
    if mode == MODE_ACC:
        return acc
    return requant_float(acc, m, lo, hi, zp)


@njit_parallel
def gemm_fast(a, b, bias, mode, mult, qm, shift, qmin, qmax, zp, m, n, out):
    """Fused exact int32 GEMM + requantization. ``a``: (G, Mp, K) int16, ``b``: (G, Np, K) int16,
    ``bias``/``mult``/``qm``/``shift``: (G, >= n); ``out``: (G, m, n) of the output dtype (any strides).
    ``mode``: MODE_FLOAT / MODE_FIXED (:mod:`accelsim.kernels.requant`) or MODE_ACC (``out = acc + bias``)."""
    n_g, mp, n_k = a.shape
    np_ = b.shape[1]
    n_ic = (mp + ROW_CHUNK - 1) // ROW_CHUNK
    n_jb = np_ // COL_BLOCK
    lo = np.float32(qmin - zp)
    hi = np.float32(qmax - zp)
    for t in prange(n_g * n_ic * n_jb):
        g = t // (n_ic * n_jb)
        ic = (t // n_jb) % n_ic
        j = (t % n_jb) * COL_BLOCK
        b0 = b[g, j]
        b1 = b[g, j + 1]
        b2 = b[g, j + 2]
        b3 = b[g, j + 3]
        blk = np.empty(ROW_BLOCK * COL_BLOCK, dtype=np.int64)
        for i in range(ic * ROW_CHUNK, min(mp, ic * ROW_CHUNK + ROW_CHUNK), ROW_BLOCK):
            x0, x1, x2, x3 = a[g, i], a[g, i + 1], a[g, i + 2], a[g, i + 3]
            c00 = c01 = c02 = c03 = c10 = c11 = c12 = c13 = i32(0)
            c20 = c21 = c22 = c23 = c30 = c31 = c32 = c33 = i32(0)
            for k in range(n_k):
                u0, u1, u2, u3 = i32(x0[k]), i32(x1[k]), i32(x2[k]), i32(x3[k])
                z0, z1, z2, z3 = i32(b0[k]), i32(b1[k]), i32(b2[k]), i32(b3[k])
                c00 = i32(c00 + u0 * z0); c01 = i32(c01 + u0 * z1); c02 = i32(c02 + u0 * z2); c03 = i32(c03 + u0 * z3)
                c10 = i32(c10 + u1 * z0); c11 = i32(c11 + u1 * z1); c12 = i32(c12 + u1 * z2); c13 = i32(c13 + u1 * z3)
                c20 = i32(c20 + u2 * z0); c21 = i32(c21 + u2 * z1); c22 = i32(c22 + u2 * z2); c23 = i32(c23 + u2 * z3)
                c30 = i32(c30 + u3 * z0); c31 = i32(c31 + u3 * z1); c32 = i32(c32 + u3 * z2); c33 = i32(c33 + u3 * z3)
            blk[0] = c00; blk[1] = c01; blk[2] = c02; blk[3] = c03; blk[4] = c10; blk[5] = c11; blk[6] = c12
            blk[7] = c13; blk[8] = c20; blk[9] = c21; blk[10] = c22; blk[11] = c23; blk[12] = c30; blk[13] = c31
            blk[14] = c32; blk[15] = c33
            for r in range(ROW_BLOCK):
                if i + r < m:
                    for q in range(COL_BLOCK):
                        jj = j + q
                        if jj < n:
                            out[g, i + r, jj] = _requant_one(blk[r * COL_BLOCK + q] + bias[g, jj], mode, mult[g, jj],
                                                             qm[g, jj], shift[g, jj], lo, hi, qmin, qmax, zp)


@njit
def _acc_step(acc, add, acc_lo, acc_hi, saturate):
    """One accumulation into a W-bit register: returns (new value, 1 if it overflowed else 0)."""
    s = acc + add
    if acc_lo <= s <= acc_hi:
        return s, 0
    if saturate:
        return (acc_lo if s < acc_lo else acc_hi), 1
    span = acc_hi - acc_lo + 1
    return (s - acc_lo) % span + acc_lo, 1


@njit_parallel
def gemm_checked(a, b, bias, acc_lo, acc_hi, saturate, m, n, acc_out, events, outputs):
    """Step-by-step W-bit accumulation (``acc_lo``/``acc_hi`` = the register's range).

    ``acc_out[g, i, j]`` (int64) gets the final register value; ``events[g, i]`` the number of overflowing
    accumulation steps of row i; ``outputs[g, i]`` how many of its outputs overflowed at least once."""
    n_g, _, n_k = a.shape
    for gi in prange(n_g * m):
        g = gi // m
        i = gi % m
        ev = 0
        hit = 0
        for j in range(n):
            acc = np.int64(0)
            nov = 0
            for k in range(n_k):
                acc, o = _acc_step(acc, np.int64(a[g, i, k]) * np.int64(b[g, j, k]), acc_lo, acc_hi, saturate)
                nov += o
            acc, o = _acc_step(acc, np.int64(bias[g, j]), acc_lo, acc_hi, saturate)
            nov += o
            acc_out[g, i, j] = acc
            ev += nov
            hit += 1 if nov > 0 else 0
        events[g, i] = ev
        outputs[g, i] = hit


@njit_parallel
def requant_acc(acc, mode, mult, qm, shift, qmin, qmax, zp, out):
    """Requantize an int64 accumulator array ``acc`` (G, M, N) into ``out`` (G, M, N)."""
    n_g, m, n = acc.shape
    lo = np.float32(qmin - zp)
    hi = np.float32(qmax - zp)
    for gi in prange(n_g * m):
        g = gi // m
        i = gi % m
        for j in range(n):
            if mode == MODE_FIXED:
                out[g, i, j] = requant_fixed(acc[g, i, j], qm[g, j], shift[g, j], qmin, qmax, zp)
            else:
                out[g, i, j] = requant_float(acc[g, i, j], mult[g, j], lo, hi, zp)
