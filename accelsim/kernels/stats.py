"""Fidelity statistics in one pass: ``signal = Σ ref²`` and ``noise = Σ (test − ref)²``, float64 accumulators.

The per-layer SQNR of the quantized executors (``10·log₁₀(signal / noise)``) needs both sums for every
quantized layer on every call; numpy would materialize three float64 copies of each tensor. Each thread sums
one contiguous chunk (float64, in index order), then the chunk sums are added in chunk order, so the result
does not depend on the number of threads.
"""
from __future__ import annotations

import numpy as np

from accelsim.kernels._jit import njit_parallel, prange

CHUNK = 1 << 16


@njit_parallel
def energies(ref, test):
    """``(Σ ref², Σ (test − ref)²)`` over two equal-size 1-D float arrays, in float64."""
    n = ref.shape[0]
    n_chunks = (n + CHUNK - 1) // CHUNK
    sig = np.zeros(n_chunks)
    err = np.zeros(n_chunks)
    for c in prange(n_chunks):
        s = 0.0
        e = 0.0
        for i in range(c * CHUNK, min(n, (c + 1) * CHUNK)):
            r = np.float64(ref[i])
            d = np.float64(test[i]) - r
            s += r * r
            e += d * d
        sig[c] = s
        err[c] = e
    total_s = 0.0
    total_e = 0.0
    for c in range(n_chunks):
        total_s += sig[c]
        total_e += err[c]
    return total_s, total_e
