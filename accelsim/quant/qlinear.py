"""Bit-exact quantized MatMul and Conv with ONNX operator semantics (``QLinearMatMul``, ``QLinearConv``).

Per output element (DESIGN section 5.3):

1. ``acc = sum_k (x[k] - x_zp) * (w[k] - w_zp[c]) (+ bias[c])`` exactly, in a W-bit accumulator
   (``acc_bits``, default 32; on overflow ``overflow="wrap"`` or ``"saturate"``; products in k order, bias last);
2. ``requant="float"`` (default, ONNX Runtime CPU bit for bit): ``m = float32(x_scale * w_scale[c]) / y_scale``
   in float32, ``f = float32(acc) * m``, clamp to ``[qmin - y_zp, qmax - y_zp]``, round half to even, ``+ y_zp``;
   ``requant="fixed_point"``: the TFLite/gemmlowp integer path (see :mod:`accelsim.kernels.requant`).

Types: uint8 x int8, uint8 x uint8, int8 x int8 (any 8-bit combination), and narrower values held in 8-bit
containers (``a_bits``/``b_bits``/``y_bits``/``x_bits``/``w_bits`` = 4 for INT4: inputs are range-checked,
outputs clamp to the 4-bit range). The output dtype is ``y_zp``'s dtype.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from accelsim.errors import QuantError
from accelsim.kernels import igemm as _g
from accelsim.kernels import im2col as _im
from accelsim.kernels.requant import MODE_FIXED, MODE_FLOAT, float_multiplier, quantize_multiplier
from accelsim.quant import _validate as v


@dataclass(frozen=True, slots=True)
class AccOverflow:
    """Accumulator overflow report: ``events`` = accumulation steps that left the W-bit range,
    ``outputs`` = output elements whose accumulation overflowed at least once."""

    events: int
    outputs: int


@dataclass(frozen=True, slots=True)
class _Requant:
    mode: int
    mult: np.ndarray   # (G, Np) float32
    qm: np.ndarray     # (G, Np) int32
    shift: np.ndarray  # (G, Np) int32
    qmin: int
    qmax: int
    zp: int


def _round_up(x: int, m: int) -> int:
    return (x + m - 1) // m * m


def _requant_params(x_scale, w_scale, y_scale, groups, n, requant, y_bits, y_dtype, y_zp):
    if requant not in ("float", "fixed_point"):
        raise QuantError(f"requant: expected 'float' or 'fixed_point', got {requant!r}")
    ws = np.broadcast_to(w_scale, (groups * n,)).reshape(groups, n)
    mult = float_multiplier(x_scale[0], ws, y_scale[0])
    if not np.all(np.isfinite(mult)):
        raise QuantError(f"scales: x_scale * w_scale / y_scale overflows float32 ({x_scale[0]}, {y_scale[0]})")
    m64 = np.float64(x_scale[0]) * ws.astype(np.float64) / np.float64(y_scale[0])
    if requant == "fixed_point" and np.any(m64 >= 2.0**30):
        raise QuantError(f"requant='fixed_point': multiplier {m64.max():g} >= 2**30 cannot be represented")
    qm, shift = quantize_multiplier(m64)
    padded = [np.zeros((groups, _round_up(n, _g.COL_BLOCK)), dtype=arr.dtype) for arr in (mult, qm, shift)]
    for dst, src in zip(padded, (mult, qm, shift)):
        dst[:, :n] = src
    qmin, qmax = v.qtype_range(y_bits, y_dtype.kind == "i")
    return _Requant(MODE_FIXED if requant == "fixed_point" else MODE_FLOAT, *padded, qmin, qmax, int(y_zp[0]))


def _acc_args(acc_bits, overflow):
    if isinstance(acc_bits, bool) or not isinstance(acc_bits, (int, np.integer)) or not 8 <= acc_bits <= 64:
        raise QuantError(f"acc_bits: expected an int in [8, 64], got {acc_bits!r}")
    if overflow not in ("wrap", "saturate"):
        raise QuantError(f"overflow: expected 'wrap' or 'saturate', got {overflow!r}")
    return int(acc_bits), overflow == "saturate"


def _max_abs_sub(x: np.ndarray, zp: np.ndarray) -> int:
    if x.size == 0:
        return 0
    lo, hi = int(x.min()), int(x.max())
    return max(abs(lo - int(zp.min())), abs(hi - int(zp.min())), abs(lo - int(zp.max())), abs(hi - int(zp.max())))


def _gemm(a16, b16, bias, rq: _Requant, m, n, out, acc_bits, saturate, bound) -> AccOverflow:
    """Run the fast exact path when no partial sum can overflow, else the step-by-step emulation."""
    if bound <= min((1 << (acc_bits - 1)) - 1, (1 << 31) - 1):
        _g.gemm_fast(a16, b16, bias, rq.mode, rq.mult, rq.qm, rq.shift, rq.qmin, rq.qmax, rq.zp, m, n, out)
        return AccOverflow(0, 0)
    acc = np.empty((a16.shape[0], m, n), dtype=np.int64)
    events = np.zeros((a16.shape[0], m), dtype=np.int64)
    hits = np.zeros((a16.shape[0], m), dtype=np.int64)
    lo, hi = -(1 << (acc_bits - 1)), (1 << (acc_bits - 1)) - 1
    _g.gemm_checked(a16, b16, bias, lo, hi, saturate, m, n, acc, events, hits)
    _g.requant_acc(acc, rq.mode, rq.mult, rq.qm, rq.shift, rq.qmin, rq.qmax, rq.zp, out)
    return AccOverflow(int(events.sum()), int(hits.sum()))


def _operands(a, a_scale, a_zp, b, b_scale, b_zp, y_scale, y_zp, n: int, bits, names):
    """Validate two integer operands (``b`` per-column/-channel over ``n``) and the output grid; return
    ``(scales, zero points, y dtype, y bits)``. ``names`` label the operands in error messages."""
    na, nb = names
    ab, bb = v.bits_arg(bits[0], f"{na}_bits", a.dtype), v.bits_arg(bits[1], f"{nb}_bits", b.dtype)
    y_dtype = v.int_array(np.asarray(y_zp), "y_zp").dtype
    yb = v.bits_arg(bits[2], "y_bits", y_dtype)
    v.values_in_range(a, na, ab)
    v.values_in_range(b, nb, bb)
    scales = v.scales(a_scale, f"{na}_scale"), v.scales(b_scale, f"{nb}_scale", n), v.scales(y_scale, "y_scale")
    zps = (v.zero_points(a_zp, f"{na}_zp", a.dtype, ab),
           np.broadcast_to(v.zero_points(b_zp, f"{nb}_zp", b.dtype, bb, n), (n,)),
           v.zero_points(y_zp, "y_zp", y_dtype, yb))
    return scales, zps, y_dtype, yb


def qlinear_matmul(a, a_scale, a_zp, b, b_scale, b_zp, y_scale, y_zp, *, bias=None, requant="float",
                   acc_bits=32, overflow="wrap", return_overflow=False, a_bits=None, b_bits=None, y_bits=None):
    """ONNX ``QLinearMatMul``: ``a`` (..., M, K) @ ``b`` (K, N) -> (..., M, N) in ``y_zp``'s dtype.

    ``a_scale``/``a_zp``/``y_scale``/``y_zp`` are scalars; ``b_scale``/``b_zp`` scalars or per-column (N,).
    ``bias`` (extension, as in QLinearConv): int32 (N,) added to the accumulator before requantization.
    With ``return_overflow=True`` returns ``(y, AccOverflow)``.
    """
    a = v.int_array(a, "a")
    b = v.int_array(b, "b")
    if a.ndim < 2 or b.ndim != 2:
        raise QuantError(f"qlinear_matmul: a must be (..., M, K) and b (K, N), got shapes {a.shape} and {b.shape}")
    if a.shape[-1] != b.shape[0]:
        raise QuantError(f"qlinear_matmul: inner dimensions differ: a {a.shape} vs b {b.shape}")
    k, n = b.shape
    m = int(np.prod(a.shape[:-1], dtype=np.int64))
    (sa, sb, sy), (za, zb, zy), y_dtype, yb = _operands(a, a_scale, a_zp, b, b_scale, b_zp, y_scale, y_zp, n,
                                                         (a_bits, b_bits, y_bits), ("a", "b"))
    nbits, saturate = _acc_args(acc_bits, overflow)
    rq = _requant_params(sa, sb, sy, 1, n, requant, yb, y_dtype, zy)
    a16 = np.empty((1, _round_up(m, _g.ROW_BLOCK), k), dtype=np.int16)
    _g.pack_sub_zp(np.ascontiguousarray(a).reshape(1, m, k), np.full((1, m), za[0], np.int64), a16.shape[1], a16)
    b16 = np.empty((1, _round_up(n, _g.COL_BLOCK), k), dtype=np.int16)
    _g.pack_transposed_sub_zp(np.ascontiguousarray(b), np.ascontiguousarray(zb, dtype=np.int64), b16.shape[1], b16)
    bias64 = _bias(bias, n)
    bias_p = np.zeros((1, b16.shape[1]), dtype=np.int64)
    bias_p[0, :n] = bias64
    y = np.empty(a.shape[:-1] + (n,), dtype=y_dtype)
    bound = k * _max_abs_sub(a, za) * _max_abs_sub(b, zb) + int(np.abs(bias64).max(initial=0))
    ovf = _gemm(a16, b16, bias_p, rq, m, n, y.reshape(1, m, n), nbits, saturate, bound)
    return (y, ovf) if return_overflow else y


def _conv_geometry(x, w, group, strides, pads, dilations):
    if x.ndim != 4 or w.ndim != 4:
        raise QuantError(f"qlinear_conv: x must be NCHW and w (Cout, Cin/group, R, S), got {x.shape}, {w.shape}")
    if isinstance(group, bool) or not isinstance(group, (int, np.integer)) or group < 1:
        raise QuantError(f"group: expected an int >= 1, got {group!r}")
    c, cout = x.shape[1], w.shape[0]
    if c % group or cout % group or w.shape[1] * group != c:
        raise QuantError(f"qlinear_conv: channels do not match group={group}: x has {c}, w is {w.shape} "
                         f"(need Cin = w.shape[1] * group and Cout divisible by group)")
    sh, sw = v.int_tuple(strides, "strides", 2, 1)
    pt, pl, pb, pr = v.int_tuple(pads, "pads", 4, 0)
    dh, dw = v.int_tuple(dilations, "dilations", 2, 1)
    r, s = w.shape[2], w.shape[3]
    ho = (x.shape[2] + pt + pb - dh * (r - 1) - 1) // sh + 1
    wo = (x.shape[3] + pl + pr - dw * (s - 1) - 1) // sw + 1
    if ho < 1 or wo < 1:
        raise QuantError(f"qlinear_conv: dilated kernel {dh * (r - 1) + 1}x{dw * (s - 1) + 1} is larger than the "
                         f"padded input {x.shape[2] + pt + pb}x{x.shape[3] + pl + pr}")
    return (sh, sw), (pt, pl), (dh, dw), ho, wo


def qlinear_conv(x, x_scale, x_zp, w, w_scale, w_zp, y_scale, y_zp, bias=None, strides=(1, 1), pads=(0, 0, 0, 0),
                 dilations=(1, 1), group=1, *, requant="float", acc_bits=32, overflow="wrap", return_overflow=False,
                 x_bits=None, w_bits=None, y_bits=None):
    """ONNX ``QLinearConv`` (2-D, NCHW): ``x`` (B, C, H, W), ``w`` (Cout, C/group, R, S), int32 ``bias`` (Cout,).

    ``pads`` = (top, left, bottom, right), the input is padded with ``x_zp``; ``w_scale``/``w_zp`` are scalars
    or per output channel. Depthwise is ``group == C``. Returns (B, Cout, Ho, Wo) in ``y_zp``'s dtype
    (``(y, AccOverflow)`` with ``return_overflow=True``).
    """
    x = v.int_array(x, "x")
    w = v.int_array(w, "w")
    (sh, sw), (pt, pl), (dh, dw), ho, wo = _conv_geometry(x, w, group, strides, pads, dilations)
    nb, cout, kk = x.shape[0], w.shape[0], w.shape[1] * w.shape[2] * w.shape[3]
    g, cg_out = int(group), w.shape[0] // int(group)
    (sx, swt, sy), (zx, zw, zy), y_dtype, yb = _operands(x, x_scale, x_zp, w, w_scale, w_zp, y_scale, y_zp, cout,
                                                          (x_bits, w_bits, y_bits), ("x", "w"))
    bias64 = _bias(bias, cout)
    nbits, saturate = _acc_args(acc_bits, overflow)
    rq = _requant_params(sx, swt, sy, g, cg_out, requant, yb, y_dtype, zy)
    w16 = np.empty((g, _round_up(cg_out, _g.COL_BLOCK), kk), dtype=np.int16)
    _g.pack_sub_zp(np.ascontiguousarray(w).reshape(g, cg_out, kk), zw.reshape(g, cg_out).copy(), w16.shape[1], w16)
    bias_p = np.zeros((g, w16.shape[1]), dtype=np.int64)
    bias_p[:, :cg_out] = bias64.reshape(g, cg_out)
    bound = kk * _max_abs_sub(x, zx) * _max_abs_sub(w, zw) + int(np.abs(bias64).max(initial=0))
    y = np.empty((nb, cout, ho, wo), dtype=y_dtype)
    p = ho * wo
    cols = np.empty((g, _round_up(p, _g.ROW_BLOCK), kk), dtype=np.int16)
    events = outputs = 0
    xc = np.ascontiguousarray(x)
    for i in range(nb):
        _im.im2col_sub_zp(xc[i:i + 1], zx[0], g, w.shape[2], w.shape[3], sh, sw, pt, pl, dh, dw, ho, wo, cols)
        view = y[i].reshape(g, cg_out, p).transpose(0, 2, 1)
        ovf = _gemm(cols, w16, bias_p, rq, p, cg_out, view, nbits, saturate, bound)
        events, outputs = events + ovf.events, outputs + ovf.outputs
    return (y, AccOverflow(events, outputs)) if return_overflow else y


def _bias(bias, cout: int) -> np.ndarray:
    if bias is None:
        return np.zeros(cout, dtype=np.int64)
    b = v.int_array(bias, "bias", ("int32",))
    if b.shape != (cout,):
        raise QuantError(f"bias: expected shape ({cout},), got {b.shape}")
    return b.astype(np.int64)
