"""Bit-exact quantized convolutions with ONNX operator semantics: ``QLinearConv`` and ``ConvInteger`` + float
rescale (ONNX Runtime's ``quantize_dynamic``) in 1 to 3 spatial dims, and the transposed conv, on the accumulation
paths and output stages of :mod:`accelsim.quant.qlinear` (per output element: the exact sum of
``(x − x_zp)·(w − w_zp[c])`` over the window, + int32 bias, then the output stage; docs/quantization.md).

* **2-D** (``x`` (B, C, H, W), ``w`` (Cout, C/group, R, S)): ONNX Runtime's MLAS on channels-last im2col codes,
  a depthwise accumulator, or im2col + the Numba GEMMs (see :mod:`accelsim.quant.qlinear`); **1-D** runs as 2-D
  with a height of 1 (exact); **3-D** as im2col over depth, height and width (:func:`accelsim.kernels.im2col.
  im2col3d_sub_zp`) + the Numba GEMMs, one GEMM per group.
* **Transposed** (:func:`qlinear_conv_transpose`; ``w`` (Cout, Cin/g, *k), output channel first as
  :func:`accelsim.ops._conv.conv_transpose` takes it): per group the exact integer GEMM
  ``(W_g − w_zp) [Cout/g·prod(k), Cin/g] @ (x_g − x_zp) [Cin/g, B·prod(in)]``, its columns summed into the output
  (col2im, int64), + bias, then the output stage. A ``acc_bits`` accumulator is checked on the final sums only
  (wrapped or saturated there): the col2im sums are not emulated step by step.
* **Accumulator hook** (``accumulate=``, :mod:`accelsim.quant.qlinear`): the conv's GEMMs over the im2col of all
  images, a transposed conv's GEMMs before col2im.
"""
from __future__ import annotations

import math

import numpy as np

from accelsim.errors import QuantError
from accelsim.kernels import igemm as _g
from accelsim.kernels import im2col as _im
from accelsim.quant import _validate as v
from accelsim.quant import ort_gemm
from accelsim.quant.qlinear import (NO_OVERFLOW, AccOverflow, _acc_args, _bias, _codes, _fits, _gemm, _hooked,
                                    _one_group, _operands, _out_grid, _per_out, _requant_stage, _rescale_stage,
                                    _round_up)

CONV_ROWS_PER_CALL = 1 << 16  # im2col rows per MatMulInteger call (bounds the scratch buffer)


def _nd(value, name: str, n: int, minimum: int) -> tuple[int, ...]:
    """``n`` ints (an int: the same for all) in the validator's range."""
    if isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_)):
        value = (value,) * n
    return v.int_tuple(value, name, n, minimum)


def _conv_geometry(x, w, group, strides, pads, dilations, fn: str, transposed: bool = False, out_pad=None):
    """Validated geometry, 3-D (a 2-D conv has depth 1): ``dict(k, s, pb, pe, d, out)`` (triples: kernel, strides,
    begin/end pads, dilations, output sizes) and the group count."""
    if x.ndim != w.ndim or x.ndim not in (4, 5):
        raise QuantError(f"{fn}: x must be NCHW or NCDHW and w (Cout, Cin/group, *kernel) of the same rank, got "
                         f"{x.shape}, {w.shape}")
    if isinstance(group, bool) or not isinstance(group, (int, np.integer)) or group < 1:
        raise QuantError(f"group: expected an int >= 1, got {group!r}")
    c, cout = x.shape[1], w.shape[0]
    if c % group or cout % group or w.shape[1] * group != c:
        raise QuantError(f"{fn}: channels do not match group={group}: x has {c}, w is {w.shape} "
                         f"(need Cin = w.shape[1] * group and Cout divisible by group)")
    d = x.ndim - 2
    st = _nd(strides, "strides", d, 1)
    p = _nd(pads, "pads", 2 * d, 0)
    dl = _nd(dilations, "dilations", d, 1)
    k = w.shape[2:]
    if transposed:
        op = _nd(out_pad, "output_padding", d, 0)
        out = tuple((x.shape[2 + i] - 1) * st[i] + (k[i] - 1) * dl[i] + 1 - p[i] - p[i + d] + op[i] for i in range(d))
    else:
        out = tuple((x.shape[2 + i] + p[i] + p[i + d] - dl[i] * (k[i] - 1) - 1) // st[i] + 1 for i in range(d))
    if min(out) < 1:
        raise QuantError(f"{fn}: dilated kernel {'x'.join(str(dl[i] * (k[i] - 1) + 1) for i in range(d))} is larger "
                         f"than the padded input {'x'.join(str(x.shape[2 + i] + p[i] + p[i + d]) for i in range(d))}")
    one = (1,) * (3 - d)
    geo = dict(k=one + tuple(k), s=one + st, pb=(0,) * (3 - d) + p[:d], pe=(0,) * (3 - d) + p[d:], d=one + dl,
               out=one + out)
    return geo, int(group)


def _cols(x5, zx, g, geo, rows_padded, out=None) -> np.ndarray:
    """im2col of ``x5`` (B, C, D, H, W) with ``zx`` subtracted: (G, rows_padded, Cg·kd·kh·kw) int16, into ``out``
    when given (the kernel writes every element, padding rows included)."""
    kk = x5.shape[1] // g * math.prod(geo["k"])
    cols = np.empty((g, rows_padded, kk), dtype=np.int16) if out is None else out
    _im.im2col3d_sub_zp(np.ascontiguousarray(x5), zx[0], g, *geo["k"], *geo["s"], *geo["pb"], *geo["d"],
                        *geo["out"], cols)
    return cols


def _conv_hooked(accumulate, x5, zx, w, zw, stage, geo, g, y, acc_bits, overflow, bits) -> AccOverflow:
    """The conv as one GEMM per group over the im2col of all images (M = B·prod(out)) through the hook."""
    nb, cout = x5.shape[0], w.shape[0]
    kk, p = w[0].size, math.prod(geo["out"])
    cg = cout // g
    cols = _cols(x5, zx, g, geo, nb * p)
    wz = np.broadcast_to(zw.reshape(-1), (cout,)).reshape(g, cg, 1)
    wmat = (w.reshape(g, cg, kk).astype(np.int32) - wz).transpose(0, 2, 1)      # (G, K, N)
    out = np.empty((g, nb * p, cg), dtype=y.dtype)
    ovf = _hooked(accumulate, cols, wmat, stage, out, acc_bits, overflow, *bits)
    y[...] = out.reshape(g, nb, p, cg).transpose(1, 0, 3, 2).reshape(y.shape)
    return ovf


def _conv_core(x5, zx, w, zw, stage, geo, g, y, fits, acc_bits, saturate) -> AccOverflow:
    """``y[b, c] = stage(sum (x − zx)(w[c] − zw[c]))`` over each window (im2col, then GEMMs per group)."""
    nb, cout, kk = x5.shape[0], w.shape[0], w[0].size
    p, cg_out = math.prod(geo["out"]), cout // g
    flat = geo["k"][0] == geo["out"][0] == 1 and x5.shape[2] == 1      # a 2-D conv
    be = ort_gemm.backend() if flat and fits and g == 1 and y.size and kk else None
    (_, r, s), (_, sh, sw), (_, dh, dw), (_, ho, wo) = geo["k"], geo["s"], geo["d"], geo["out"]
    pads = (geo["pb"][1], geo["pb"][2], geo["pe"][1], geo["pe"][2])
    if be is not None:  # channels-last codes padded with x_zp -> MatMulInteger, K in (r, s, c) order
        x, w4 = x5[:, :, 0], w.reshape(w.shape[:2] + (r, s))
        flip = 128 if x.dtype.kind == "i" else 0  # int8 codes -> uint8 (x ^ 0x80 = x + 128, zero point + 128)
        wt = np.ascontiguousarray(w4.transpose(2, 3, 1, 0)).reshape(kk, cout)
        per = max(1, CONV_ROWS_PER_CALL // p)
        for i in range(0, nb, per):
            j = min(nb, i + per)
            xp = _im.nhwc_codes(x[i:j], int(zx[0]) + flip, pads, bool(flip))
            cols = np.empty((j - i, ho, wo, r, s, x.shape[1]), dtype=np.uint8)
            _im.im2col_nhwc(xp, r, s, sh, sw, dh, dw, ho, wo, cols)
            acc = be.matmul_integer(cols.reshape(-1, kk), int(zx[0]) + flip, wt, zw)
            stage.exact(acc, y[i:j].reshape(j - i, cout, p).transpose(0, 2, 1))
        return NO_OVERFLOW
    if flat and fits and g == cout == x5.shape[1] and y.size:   # depthwise: one channel-last accumulator
        acc = np.empty((nb * p, cout), dtype=np.int32)
        _im.depthwise_acc(np.ascontiguousarray(x5[:, :, 0]), zx[0], np.ascontiguousarray(w.reshape(cout, 1, r, s)),
                          np.broadcast_to(zw.reshape(-1), (cout,)).astype(np.int64), sh, sw, pads[0], pads[1], dh, dw,
                          ho, wo, acc)
        _one_group(stage).exact(acc, y.reshape(nb, cout, p).transpose(0, 2, 1))
        return NO_OVERFLOW
    w16 = np.empty((g, _round_up(cg_out, _g.COL_BLOCK), kk), dtype=np.int16)
    _g.pack_sub_zp(np.ascontiguousarray(w).reshape(g, cg_out, kk), _per_out(zw, g, cg_out, np.int64), w16.shape[1],
                   w16)
    events = outputs = 0
    cols = np.empty((g, _round_up(p, _g.ROW_BLOCK), kk), dtype=np.int16)     # refilled for every image
    for i in range(nb):
        _cols(x5[i:i + 1], zx, g, geo, cols.shape[1], cols)
        view = y[i].reshape(g, cg_out, p).transpose(0, 2, 1)
        ovf = _gemm(cols, w16, stage, p, cg_out, view, fits, acc_bits, saturate)
        events, outputs = events + ovf.events, outputs + ovf.outputs
    return AccOverflow(events, outputs)


def _lift_1d(x, w, strides, pads, dilations):
    """A 1-D conv as a 2-D one of height 1 (exact): ``(x, w, strides, pads, dilations)``."""
    one = lambda t, what, n, lo: (1,) + _nd(t, what, n, lo)  # noqa: E731
    p = _nd(pads, "pads", 2, 0)
    return x[:, :, None], w[:, :, None], one(strides, "strides", 1, 1), (0, p[0], 0, p[1]), \
        one(dilations, "dilations", 1, 1)


def _prepare(fn, x, w, group, strides, pads, dilations):
    """Codes, geometry (1-D lifted to 2-D) and the 5-D views of a conv's operands."""
    x, w = _codes(x, "x"), _codes(w, "w")
    if x.ndim == 3 and w.ndim == 3:
        x, w, strides, pads, dilations = _lift_1d(x, w, strides, pads, dilations)
    geo, g = _conv_geometry(x, w, group, strides, pads, dilations, fn)
    x5 = x if x.ndim == 5 else x[:, :, None]
    w5 = w if w.ndim == 5 else w[:, :, None]
    return x, w5, x5, geo, g


def _out_shape(x, w, geo, one_d: bool) -> tuple:
    spatial = geo["out"][2:] if one_d else geo["out"][3 - (x.ndim - 2):]
    return (x.shape[0], w.shape[0], *spatial)


def qlinear_conv(x, x_scale, x_zp, w, w_scale, w_zp, y_scale, y_zp, bias=None, strides=(1, 1), pads=(0, 0, 0, 0),
                 dilations=(1, 1), group=1, *, requant="float", acc_bits=32, overflow="wrap", return_overflow=False,
                 x_bits=None, w_bits=None, y_bits=None, accumulate=None):
    """ONNX ``QLinearConv`` in 1 to 3 spatial dims: ``x`` (B, C, *spatial), ``w`` (Cout, C/group, *kernel), int32
    ``bias`` (Cout,).

    ``pads`` = begins then ends (2-D: top, left, bottom, right), the input is padded with ``x_zp``;
    ``w_scale``/``w_zp`` are scalars or per output channel. Depthwise is ``group == C``. Returns (B, Cout, *out) in
    ``y_zp``'s dtype (``(y, AccOverflow)`` with ``return_overflow=True``); ``accumulate``: the accumulator hook
    (:mod:`accelsim.quant.qlinear`).
    """
    one_d = np.ndim(x) == 3
    x, w5, x5, geo, g = _prepare("qlinear_conv", x, w, group, strides, pads, dilations)
    cout, kk = w5.shape[0], w5[0].size
    (sx, swt), (zx, zw), (xb, wb) = _operands(x5, x_scale, x_zp, w5, w_scale, w_zp, cout, (x_bits, w_bits), ("x", "w"))
    sy, zy, y_dtype, yb = _out_grid(y_scale, y_zp, y_bits)
    bias64, bias_bound = _bias(bias, cout)
    nbits, saturate = _acc_args(acc_bits, overflow)
    stage = _requant_stage(sx, swt, sy, g, cout // g, requant, yb, y_dtype, zy, bias64)
    y = np.empty((x.shape[0], cout) + geo["out"], dtype=y_dtype)
    if accumulate is not None:
        ovf = _conv_hooked(accumulate, x5, zx, w5, zw, stage, geo, g, y, nbits, overflow, (xb, wb))
    else:
        fits = _fits(kk, x5, zx, xb, w5, zw, wb, bias_bound, nbits)
        ovf = _conv_core(x5, zx, w5, zw, stage, geo, g, y, fits, nbits, saturate)
    y = y.reshape(_out_shape(x, w5, geo, one_d))
    return (y, ovf) if return_overflow else y


def conv_integer_rescale(x, x_scale, x_zp, w, w_scale, w_zp, bias=None, strides=(1, 1), pads=(0, 0, 0, 0),
                         dilations=(1, 1), group=1, *, act=None):
    """ONNX Runtime ``quantize_dynamic`` Conv: ``ConvInteger`` then float32
    ``y = act(float32(acc) * float32(x_scale * w_scale[c]) + bias[c])``, ``acc`` the exact int32 sum.

    ``x`` (B, C, *spatial) and ``w`` (Cout, C/group, *kernel) uint8/int8, padded with ``x_zp``;
    ``w_scale``/``w_zp`` scalars or per output channel; ``bias`` float (Cout,); ``act`` None, ``"relu"`` or
    ``"relu6"``. Returns float32 (B, Cout, *out).
    """
    one_d = np.ndim(x) == 3
    x, w5, x5, geo, g = _prepare("conv_integer_rescale", x, w, group, strides, pads, dilations)
    cout, kk = w5.shape[0], w5[0].size
    (sx, swt), (zx, zw), (xb, wb) = _operands(x5, x_scale, x_zp, w5, w_scale, w_zp, cout, (None, None), ("x", "w"))
    stage = _rescale_stage(sx, swt, g, cout // g, bias, act, cout)
    y = np.empty((x.shape[0], cout) + geo["out"], dtype=np.float32)
    fits = _fits(kk, x5, zx, xb, w5, zw, wb, 0, 32)
    _conv_core(x5, zx, w5, zw, stage, geo, g, y, fits, 32, False)
    return y.reshape(_out_shape(x, w5, geo, one_d))


# ---- transposed convolution --------------------------------------------------------------------------------

def _transpose_acc(x, zx, w, zw, geo, g, accumulate, kw):
    """The exact int64 sums ``col2im((W_g − zw)·(x_g − zx))`` (B, Cout, *out) and the hook's overflow report."""
    from accelsim.ops._conv import col2im_nd
    nb, cin, cout, d = x.shape[0], x.shape[1], w.shape[0], x.ndim - 2
    cg, og, k = cin // g, cout // g, w.shape[2:]
    m = nb * math.prod(x.shape[2:])
    a = (np.moveaxis(x, 1, -1).reshape(m, g, cg).swapaxes(0, 1).astype(np.int32) - int(zx[0]))   # (G, M, Cin/g)
    wz = np.broadcast_to(zw.reshape(-1), (cout,)).reshape(g, og, *(1,) * (d + 1))
    b = np.moveaxis(w.reshape(g, og, cg, *k).astype(np.int32) - wz, 2, -1).reshape(g, og * math.prod(k), cg)
    if accumulate is not None:
        acc, ovf = accumulate(a, b.swapaxes(1, 2), np.zeros((g, b.shape[1]), np.int64), **kw)
    else:
        acc, ovf = np.matmul(a.astype(np.int64), b.swapaxes(1, 2).astype(np.int64)), NO_OVERFLOW
    st = [geo["s"][3 - d + i] for i in range(d)]
    pads = [geo["pb"][3 - d + i] for i in range(d)] + [geo["pe"][3 - d + i] for i in range(d)]
    dl = [geo["d"][3 - d + i] for i in range(d)]
    parts = [col2im_nd(acc[i].T.reshape(og * math.prod(k), m).astype(np.int64), (nb, og, *geo["out"][3 - d:]), k, st,
                       pads, dl) for i in range(g)]
    return (parts[0] if g == 1 else np.concatenate(parts, axis=1)), ovf


def _final_range(acc, acc_bits: int, saturate: bool):
    """Wrap or saturate the final sums to the ``acc_bits`` accumulator: ``(acc, AccOverflow)``."""
    lo, hi = -(1 << (acc_bits - 1)), (1 << (acc_bits - 1)) - 1
    bad = (acc < lo) | (acc > hi)
    if not bad.any():
        return acc, NO_OVERFLOW
    acc = np.clip(acc, lo, hi) if saturate else (acc - lo) % (hi - lo + 1) + lo
    return acc, AccOverflow(int(bad.sum()), int(bad.sum()))


def _output_stage(stage, acc, acc_dtype, out_dtype, lift: bool) -> np.ndarray:
    """``stage`` on the exact sums ``acc`` (B, Cout, *out) seen channels last, as the stages take them
    (``acc_dtype``: int64 for requantization, int32 for a rescale), shaped back (a lifted 1-D conv's height
    dropped)."""
    cout = acc.shape[1]
    rows = np.ascontiguousarray(np.moveaxis(acc, 1, -1)).reshape(1, -1, cout).astype(acc_dtype, copy=False)
    out = np.empty(rows.shape, dtype=out_dtype)
    stage.after_checked(rows, out)
    y = np.moveaxis(out.reshape(acc.shape[:1] + acc.shape[2:] + (cout,)), -1, 1)
    return np.ascontiguousarray(y[:, :, 0] if lift else y)


def _transposed(fn, x, x_scale, x_zp, w, w_scale, w_zp, strides, pads, dilations, group, output_padding, bits):
    x, w = _codes(x, "x"), _codes(w, "w")
    lift = x.ndim == 3 and w.ndim == 3
    if lift:
        x, w, strides, pads, dilations = _lift_1d(x, w, strides, pads, dilations)
        output_padding = (0,) + _nd(output_padding, "output_padding", 1, 0)
    geo, g = _conv_geometry(x, w, group, strides, pads, dilations, fn, True, output_padding)
    grids = _operands(x, x_scale, x_zp, w, w_scale, w_zp, w.shape[0], bits, ("x", "w"))
    return x, w, geo, g, grids, lift


def qlinear_conv_transpose(x, x_scale, x_zp, w, w_scale, w_zp, y_scale, y_zp, bias=None, strides=1, pads=0,
                           dilations=1, group=1, output_padding=0, *, requant="float", acc_bits=32, overflow="wrap",
                           return_overflow=False, x_bits=None, w_bits=None, y_bits=None, accumulate=None):
    """Quantized transposed conv (module docstring): ``x`` (B, Cin, *in), ``w`` (Cout, Cin/group, *kernel),
    ``w_scale``/``w_zp`` scalars or per output channel, int32 ``bias`` (Cout,), requantized to ``y_scale``/``y_zp``
    as :func:`qlinear_conv`. Returns (B, Cout, *out) (``(y, AccOverflow)`` with ``return_overflow=True``)."""
    x, w, geo, g, ((sx, swt), (zx, zw), (xb, wb)), lift = _transposed(
        "qlinear_conv_transpose", x, x_scale, x_zp, w, w_scale, w_zp, strides, pads, dilations, group,
        output_padding, (x_bits, w_bits))
    cout = w.shape[0]
    sy, zy, y_dtype, yb = _out_grid(y_scale, y_zp, y_bits)
    bias64, _ = _bias(bias, cout)
    nbits, saturate = _acc_args(acc_bits, overflow)
    stage = _requant_stage(sx, swt, sy, 1, cout, requant, yb, y_dtype, zy, bias64)
    acc, ovf = _transpose_acc(x, zx, w, zw, geo, g, accumulate,
                              dict(acc_bits=nbits, overflow=overflow, a_bits=xb, b_bits=wb))
    acc = acc + bias64.reshape((1, -1) + (1,) * (acc.ndim - 2))
    if accumulate is None:
        acc, ovf = _final_range(acc, nbits, saturate)
    y = _output_stage(stage, acc, np.int64, y_dtype, lift)
    return (y, ovf) if return_overflow else y


def conv_transpose_integer_rescale(x, x_scale, x_zp, w, w_scale, w_zp, bias=None, strides=1, pads=0, dilations=1,
                                   group=1, output_padding=0, *, act=None):
    """The transposed conv of ONNX Runtime's ``quantize_dynamic`` kind: the exact sums (module docstring), then
    float32 ``y = act(float32(acc) * float32(x_scale * w_scale[c]) + bias[c])``. Returns float32 (B, Cout, *out)."""
    x, w, geo, g, ((sx, swt), (zx, zw), _), lift = _transposed(
        "conv_transpose_integer_rescale", x, x_scale, x_zp, w, w_scale, w_zp, strides, pads, dilations, group,
        output_padding, (None, None))
    cout = w.shape[0]
    stage = _rescale_stage(sx, swt, 1, cout, bias, act, cout)
    acc, _ = _transpose_acc(x, zx, w, zw, geo, g, None, {})
    return _output_stage(stage, _final_range(acc, 32, False)[0], np.int32, np.float32, lift)
