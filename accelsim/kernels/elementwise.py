"""Elementwise float kernels of the FP32 forward, each the exact operation sequence of its numpy definition.

:func:`gelu` evaluates ``x · ½ · (1 + erf(x/√2))`` with the rational ``erf`` of :mod:`accelsim.ops.elementwise`
(``z·P(z²)/Q(z²)`` on ``z = clip(x/√2, −4, 4)``, Horner steps ``p = p·z² + c`` as separate multiply and add), in
float64 per element, rounded once to the output dtype: the same IEEE operations in the same order as the numpy
block code (compiled without fast-math flags, so no fused multiply-adds), hence bit-identical to it (tested), in one pass and
without float64 temporaries.
"""
from __future__ import annotations

import numpy as np

from accelsim.kernels._jit import njit_parallel, prange

ERF_P = np.array([-2.72614225801306e-10, 2.77068142495902e-08, -2.10102402082508e-06, -5.69250639462346e-05,
                  -7.34990630326855e-04, -2.95459980854025e-03, -1.60960333262415e-02])
ERF_Q = np.array([-1.45660718464996e-05, -2.13374055278905e-04, -1.68282697438203e-03, -7.37332916720468e-03,
                  -1.42647390514189e-02])
CHUNK = 16384


@njit_parallel
def gelu(x, p_coef, q_coef, out):
    """``out[i] = x[i] · 0.5 · (1 + erf(x[i] · 0.7071067811865476))`` over 1-D ``x``/``out`` (float64 inside)."""
    n = x.shape[0]
    for c in prange((n + CHUNK - 1) // CHUNK):
        for i in range(c * CHUNK, min(n, (c + 1) * CHUNK)):
            v = np.float64(x[i])
            z = v * 0.7071067811865476
            if z < -4.0:
                z = -4.0
            elif z > 4.0:
                z = 4.0
            z2 = z * z
            p = p_coef[0]
            for k in range(1, p_coef.shape[0]):
                p = p * z2
                p = p + p_coef[k]
            q = q_coef[0]
            for k in range(1, q_coef.shape[0]):
                q = q * z2
                q = q + q_coef[k]
            e = p * z
            e = e / q
            e = e + 1.0
            e = e * v
            out[i] = e * 0.5
