"""GPTQ (Frantar et al., ICLR 2023): weight-only quantization with second-order error feedback, onto the block
grids of :mod:`accelsim.quant.blocks`.

A linear layer ``y = x·Wᵀ`` (``W [N, K]``) sees calibration inputs ``X [n, K]``; :class:`HessianStats`
accumulates ``H = 2·XᵀX`` (float64). GPTQ quantizes W column by column (K order) and, after each column,
spreads that column's rounding error over the columns not yet quantized so that ``‖X·Wᵀ − X·Qᵀ‖²`` stays
small: with ``U`` the upper Cholesky factor of ``H⁻¹`` (after dampening ``H += λ·mean(diag H)·I``),

    e = (w_k − q_k) / U[k, k];   W[:, j] −= e · U[k, j]   for j > k,

applied lazily per batch of ``batch`` columns (the trailing columns get one GEMM per batch), exactly the
reference implementation's order. The grid of each block (its ``d`` and ``m``) is computed, by the format's
rule, from the block's weights as they are when its first column is reached (already corrected by the earlier
columns' errors), rounded to float16 as stored; each column is then rounded to the nearest code of its block's
grid (:func:`~accelsim.quant.blocks.grid_codes`). Columns no input ever excites (``H[k, k] = 0``) are zeroed. The
result is a :class:`~accelsim.quant.blocks.BlockTensor` like round-to-nearest's, so it runs and costs the same.
"""
from __future__ import annotations

import numpy as np

from ..errors import QuantError
from .blocks import BlockFormat, BlockTensor, grid_codes


class HessianStats:
    """``H = 2·Σ xᵀx`` over calibration rows ``x [n, K]`` (float64) and the number of rows seen."""

    def __init__(self, k: int):
        self.h = np.zeros((k, k), np.float64)
        self.rows = 0

    def add(self, x: np.ndarray) -> None:
        x2 = np.asarray(x, np.float64).reshape(-1, self.h.shape[0])
        self.h += 2.0 * (x2.T @ x2)
        self.rows += len(x2)


def _grid(w: np.ndarray, fmt: BlockFormat) -> tuple[np.ndarray, np.ndarray]:
    """``(d, m)`` float32 ``[N, 1]`` of the block ``w [N, b]`` by the format's rule, rounded to float16."""
    half = 2.0 ** (fmt.bits - 1)
    if fmt.rule == "minmax":
        lo, hi = w.min(axis=1, keepdims=True), w.max(axis=1, keepdims=True)
        d, m = (hi - lo) / (2 ** fmt.bits - 1), lo
    elif fmt.rule == "signed_max":
        big = np.take_along_axis(w, np.abs(w).argmax(axis=1)[:, None], axis=1)
        d, m = big / -half, np.zeros_like(big)
    else:
        d, m = np.abs(w).max(axis=1, keepdims=True) / (half - 1), np.zeros((len(w), 1))
    return (d.astype(np.float16).astype(np.float32), m.astype(np.float16).astype(np.float32))


def inverse_factor(h: np.ndarray, damp: float = 0.01) -> tuple[np.ndarray, np.ndarray]:
    """``(U, dead)``: the upper Cholesky factor of the dampened ``H⁻¹`` (module docstring) and the columns no
    input excites — computed once per Hessian (layers reading the same input share it)."""
    h = np.array(h, np.float64)
    k = h.shape[0]
    dead = np.diag(h) == 0
    h[dead, dead] = 1.0
    h[np.diag_indices(k)] += damp * np.mean(np.diag(h))
    try:
        return np.linalg.cholesky(np.linalg.inv(h)).T, dead
    except np.linalg.LinAlgError:
        raise QuantError("gptq: the dampened Hessian is not positive definite (too little calibration data?)") from None


def gptq_quantize(w: np.ndarray, factor: tuple[np.ndarray, np.ndarray], fmt: BlockFormat,
                  batch: int = 128) -> BlockTensor:
    """GPTQ of ``w [N, K]`` onto ``fmt`` with ``factor = inverse_factor(H)`` (module docstring)."""
    u, dead = factor
    w = np.array(w, np.float64)
    n, k = w.shape
    g = fmt.block_size(k)
    if u.shape != (k, k) or k % g:
        raise QuantError(f"gptq: weight [{n}, {k}] needs a [{k}, {k}] Hessian and K a multiple of the block {g}")
    if g < k and batch % g:
        batch = g * max(1, batch // g)            # a batch holds whole blocks
    w[:, dead] = 0.0
    codes = np.empty((n, k), fmt.code_dtype)
    d = np.empty((n, k // g), np.float32)
    m = np.empty_like(d)
    if g == k:
        d[:, :1], m[:, :1] = _grid(w, fmt)
    for i1 in range(0, k, batch):
        i2 = min(i1 + batch, k)
        w1, err = w[:, i1:i2].copy(), np.zeros((n, i2 - i1))
        for i in range(i2 - i1):
            col = i1 + i
            if g < k and col % g == 0:
                d[:, col // g:col // g + 1], m[:, col // g:col // g + 1] = _grid(w1[:, i:i + g], fmt)
            dj, mj = d[:, col // g:col // g + 1], m[:, col // g:col // g + 1]
            q = grid_codes(w1[:, i:i + 1], dj, mj, fmt)
            codes[:, col] = q[:, 0]
            value = (dj * (q.astype(np.float32) - np.float32(fmt.offset)) + (mj if fmt.has_min else 0))[:, 0]
            e = (w1[:, i] - value) / u[col, col]
            w1[:, i:] -= np.outer(e, u[col, col:i2])
            err[:, i] = e
        w[:, i2:] -= err @ u[i1:i2, i2:]
    return BlockTensor(codes, d.astype(np.float16), m.astype(np.float16), fmt)
