"""im2col for quantized NCHW / NCDHW convolution, with the input zero point subtracted on the fly.

``cols[g, (b*Ho + oh)*Wo + ow, (c*R + r)*S + s] = x[b, g*Cg + c, ih, iw] - x_zp`` with
``ih = oh*stride_h - pad_top + r*dilation_h`` and ``iw = ow*stride_w - pad_left + s*dilation_w``; positions in
the padding are 0, i.e. the input is padded with ``x_zp`` as ONNX QLinearConv specifies. The K order
``(c, r, s)`` matches ``w.reshape(Cout, Cg*R*S)``; rows beyond ``B*Ho*Wo`` (padding to a multiple of the
GEMM row block) are zero (:func:`im2col_sub_zp`, the Numba GEMM's int16 operand). Three spatial dims add the
depth ``(d, t)`` outermost (:func:`im2col3d_sub_zp`, of which the 2-D kernel is the depth-1 case).

The ``MatMulInteger`` operand keeps the 8-bit codes instead: :func:`nhwc_codes` pads channels-last codes with
``x_zp`` and :func:`im2col_nhwc` gathers the windows with K in ``(r, s, c)`` order (numpy strided copies of
whole (S, C) runs, faster here than a byte loop in Numba, which LLVM does not vectorize).
"""
from __future__ import annotations

import numpy as np

from accelsim.kernels._jit import njit_parallel, prange


@njit_parallel
def im2col3d_sub_zp(x, x_zp, groups, kd, kh, kw, sd, sh, sw, pf, pt, pl, dd, dh, dw, do, ho, wo, out):
    """Fill ``out`` (G, rows_padded, Cg*kd*kh*kw) int16 from ``x`` (B, C, D, H, W) uint8/int8: row
    ``((b*Do + od)*Ho + oh)*Wo + ow``, column ``((c*kd + t)*kh + r)*kw + s`` (the 3-D module formula, depth
    ``id = od*sd - pf + t*dd``)."""
    n_b, n_c, d, h, w = x.shape
    cg = n_c // groups
    rows = n_b * do * ho * wo
    rows_padded = out.shape[1]
    for gbo in prange(groups * n_b * do * ho):
        g = gbo // (n_b * do * ho)
        bo = gbo % (n_b * do * ho)
        bi = bo // (do * ho)
        od = (bo // ho) % do
        oh = bo % ho
        for ow in range(wo):
            row = ((bi * do + od) * ho + oh) * wo + ow
            col = 0
            for c in range(cg):
                ch = g * cg + c
                for t in range(kd):
                    i_d = od * sd - pf + t * dd
                    for r in range(kh):
                        ih = oh * sh - pt + r * dh
                        for s in range(kw):
                            iw = ow * sw - pl + s * dw
                            if 0 <= i_d < d and 0 <= ih < h and 0 <= iw < w:
                                out[g, row, col] = np.int64(x[bi, ch, i_d, ih, iw]) - x_zp
                            else:
                                out[g, row, col] = 0
                            col += 1
    for g in range(groups):
        for row in range(rows, rows_padded):
            for col in range(out.shape[2]):
                out[g, row, col] = 0


def im2col_sub_zp(x, x_zp, groups, kh, kw, sh, sw, pt, pl, dh, dw, ho, wo, out):
    """The 2-D case of :func:`im2col3d_sub_zp`: ``x`` (B, C, H, W), ``out`` (G, rows_padded, Cg*kh*kw)."""
    im2col3d_sub_zp(x[:, :, None], x_zp, groups, 1, kh, kw, 1, sh, sw, 0, pt, pl, 1, dh, dw, 1, ho, wo, out)


def nhwc_codes(x, pad: int, pads, flip: bool) -> np.ndarray:
    """Channels-last uint8 codes padded with ``pad``: ``(B, C, H, W) -> (B, pt + H + pb, pl + W + pr, C)``;
    ``flip`` maps int8 codes to uint8 by ``x ^ 0x80 = x + 128`` (the caller adds 128 to the zero point)."""
    n_b, n_c, h, w = x.shape
    pt, pl, pb, pr = pads
    out = np.full((n_b, pt + h + pb, pl + w + pr, n_c), pad, dtype=np.uint8)
    src = np.bitwise_xor(x.view(np.uint8), np.uint8(0x80)) if flip else x.view(np.uint8)
    out[:, pt:pt + h, pl:pl + w] = src.transpose(0, 2, 3, 1)
    return out


def im2col_nhwc(xp, kh, kw, sh, sw, dh, dw, ho, wo, out) -> None:
    """``out[b, oh, ow, r, s, c] = xp[b, oh*sh + r*dh, ow*sw + s*dw, c]`` from padded channels-last codes: the
    rows of a ``MatMulInteger`` operand with K in (r, s, c) order (the weights reordered to match); one strided
    copy per kernel row, whose inner runs are whole (S, C) blocks when the dilation is 1."""
    span = dw * (kw - 1) + 1
    win = np.lib.stride_tricks.sliding_window_view(xp, (span,), axis=2)  # (B, Hp, Wp - span + 1, C, span)
    win = win[:, :, :sw * (wo - 1) + 1:sw, :, ::dw].transpose(0, 1, 2, 4, 3)  # (B, Hp, Wo, S, C)
    for r in range(kh):
        out[:, :, :, r] = win[:, r * dh:r * dh + sh * (ho - 1) + 1:sh]


@njit_parallel
def depthwise_acc(x, x_zp, w, w_zp, sh, sw, pt, pl, dh, dw, ho, wo, acc):
    """Exact depthwise accumulator, channels last: ``acc[(b*Ho + oh)*Wo + ow, c] = Σ_{r,s} (x[b, c, ih, iw] −
    x_zp)·(w[c, 0, r, s] − w_zp[c])`` in int32 (the caller guarantees it fits), positions in the padding
    contributing 0 (the input is padded with ``x_zp``); ``ih``/``iw`` as in :func:`im2col_sub_zp`. One GEMM
    column per channel, so a depthwise conv skips the G tiny GEMMs of a grouped conv."""
    n_b, n_c, h, w_in = x.shape
    kh, kw = w.shape[2], w.shape[3]
    for bc in prange(n_b * n_c):
        b = bc // n_c
        c = bc % n_c
        z = np.int32(w_zp[c])
        taps = np.empty((kh, kw), dtype=np.int32)
        for r in range(kh):
            for s in range(kw):
                taps[r, s] = np.int32(w[c, 0, r, s]) - z
        for oh in range(ho):
            for ow in range(wo):
                total = np.int32(0)
                for r in range(kh):
                    ih = oh * sh - pt + r * dh
                    if 0 <= ih < h:
                        for s in range(kw):
                            iw = ow * sw - pl + s * dw
                            if 0 <= iw < w_in:
                                total += (np.int32(x[b, c, ih, iw]) - np.int32(x_zp)) * taps[r, s]
                acc[(b * ho + oh) * wo + ow, c] = total
