"""im2col for quantized NCHW convolution, with the input zero point subtracted on the fly.

``cols[g, (b*Ho + oh)*Wo + ow, (c*R + r)*S + s] = x[b, g*Cg + c, ih, iw] - x_zp`` with
``ih = oh*stride_h - pad_top + r*dilation_h`` and ``iw = ow*stride_w - pad_left + s*dilation_w``; positions in
the padding are 0, i.e. the input is padded with ``x_zp`` as ONNX QLinearConv specifies. The K order
``(c, r, s)`` matches ``w.reshape(Cout, Cg*R*S)``; rows beyond ``B*Ho*Wo`` (padding to a multiple of the
GEMM row block) are zero.
"""
from __future__ import annotations

import numpy as np

from accelsim.kernels._jit import njit_parallel, prange


@njit_parallel
def im2col_sub_zp(x, x_zp, groups, kh, kw, sh, sw, pt, pl, dh, dw, ho, wo, out):
    """Fill ``out`` (G, rows_padded, Cg*kh*kw) int16 from ``x`` (B, C, H, W) uint8/int8."""
    n_b, n_c, h, w = x.shape
    cg = n_c // groups
    rows = n_b * ho * wo
    rows_padded = out.shape[1]
    for gbo in prange(groups * n_b * ho):
        g = gbo // (n_b * ho)
        bo = gbo % (n_b * ho)
        bi = bo // ho
        oh = bo % ho
        for ow in range(wo):
            row = (bi * ho + oh) * wo + ow
            col = 0
            for c in range(cg):
                ch = g * cg + c
                for r in range(kh):
                    ih = oh * sh - pt + r * dh
                    for s in range(kw):
                        iw = ow * sw - pl + s * dw
                        if 0 <= ih < h and 0 <= iw < w:
                            out[g, row, col] = np.int64(x[bi, ch, ih, iw]) - x_zp
                        else:
                            out[g, row, col] = 0
                        col += 1
    for g in range(groups):
        for row in range(rows, rows_padded):
            for col in range(out.shape[2]):
                out[g, row, col] = 0
