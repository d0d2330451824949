"""Plain-numpy twins of the quantization kernels (slow, obvious, used only by the tests).

Each twin restates the formula of its kernel without sharing code with it, so a kernel bug cannot hide in a
shared helper.
"""
from __future__ import annotations

import math

import numpy as np


# ----------------------------------------------------------------------------------------------- quantize
def quantize_linear(x, scale, zp, axis, qmin, qmax, dtype):
    """``sat(rne(float32(x) / scale) + zp)``: float32 division, numpy's round-half-even."""
    x = np.asarray(x, dtype=np.float32)
    s = np.asarray(scale, dtype=np.float32)
    z = np.asarray(zp, dtype=np.int64)
    if axis is not None:
        shape = [1] * x.ndim
        shape[axis] = -1
        s, z = s.reshape(shape), z.reshape(shape)
    q = np.rint(x / s).astype(np.float64) + z
    return np.clip(q, qmin, qmax).astype(dtype)


def dequantize_linear(q, scale, zp, axis):
    s = np.asarray(scale, dtype=np.float32)
    z = np.asarray(zp, dtype=np.int64)
    if axis is not None:
        shape = [1] * q.ndim
        shape[axis] = -1
        s, z = s.reshape(shape), z.reshape(shape)
    return (q.astype(np.int64) - z).astype(np.float32) * s


def pack_int4(q):
    flat = q.reshape(-1).astype(np.int64) & 0xF
    if flat.size % 2:
        flat = np.append(flat, 0)
    return (flat[0::2] | (flat[1::2] << 4)).astype(np.uint8)


def unpack_int4(packed, n, signed):
    b = packed.astype(np.int64)
    nib = np.stack([b & 0xF, b >> 4], axis=1).reshape(-1)[:n]
    if signed:
        nib = np.where(nib >= 8, nib - 16, nib)
    return nib.astype(np.int8 if signed else np.uint8)


# ------------------------------------------------------------------------------------------------ requant
def requant_float(acc, m, qmin, qmax, zp):
    """ONNX Runtime: ``rne(clamp(float32(acc) * m, qmin - zp, qmax - zp)) + zp`` (m broadcast on the last axis)."""
    f = acc.astype(np.float32) * np.asarray(m, dtype=np.float32)
    f = np.clip(f, np.float32(qmin - zp), np.float32(qmax - zp))
    return np.rint(f).astype(np.int64) + zp


def quantize_multiplier(m):
    """TFLite QuantizeMultiplier, scalar Python (math.frexp, round half away from zero)."""
    if m == 0:
        return 0, 0
    f, shift = math.frexp(m)
    q = math.floor(abs(f) * 2**31 + 0.5) * (1 if f > 0 else -1)
    if q == 2**31:
        q //= 2
        shift += 1
    if shift < -31:
        return 0, 0
    return q, shift


def _srdhm(a, b):
    a = a.astype(object)
    out = []
    for x in a.reshape(-1):
        if x == -2**31 and b == -2**31:
            out.append(2**31 - 1)
            continue
        ab = x * b
        nudge = 2**30 if ab >= 0 else 1 - 2**30
        num = ab + nudge
        q = abs(num) // 2**31
        out.append(-q if num < 0 else q)
    return np.array(out, dtype=np.int64).reshape(a.shape)


def _rdbypot(x, e):
    mask = (1 << e) - 1
    rem = x & mask
    thr = (mask >> 1) + (x < 0)
    return (x >> e) + (rem > thr)


def _wrap32(x):
    return ((x.astype(np.int64) + 2**31) % 2**32) - 2**31


def requant_fixed(acc, qm, shift, qmin, qmax, zp):
    """gemmlowp/TFLite integer requantization for one (qm, shift) applied to an int64 array."""
    left, right = max(shift, 0), max(-shift, 0)
    x = _wrap32(_wrap32(acc) * (1 << left))
    v = _rdbypot(_srdhm(x, qm), right) + zp
    return np.clip(v, qmin, qmax)


# ------------------------------------------------------------------------------------------- accumulation
def accumulate(products, bias, acc_bits, saturate):
    """Sequential W-bit accumulation over the last axis of ``products`` (then + bias): (acc, events, outputs)."""
    lo, hi = -(1 << (acc_bits - 1)), (1 << (acc_bits - 1)) - 1
    acc = np.zeros(products.shape[:-1], dtype=np.int64)
    nov = np.zeros(products.shape[:-1], dtype=np.int64)
    steps = [products[..., k] for k in range(products.shape[-1])] + [np.broadcast_to(bias, acc.shape)]
    for p in steps:
        s = acc + p
        bad = (s < lo) | (s > hi)
        nov += bad
        acc = np.clip(s, lo, hi) if saturate else (s - lo) % (hi - lo + 1) + lo
    return acc, int(nov.sum()), int((nov > 0).sum())


def _requant(acc, mode, x_scale, w_scale, y_scale, qmin, qmax, zp):
    w_scale = np.broadcast_to(np.asarray(w_scale, np.float32), (acc.shape[-1],))
    if mode == "float":
        m = (np.float32(x_scale) * w_scale) / np.float32(y_scale)
        return requant_float(acc, m, qmin, qmax, zp)
    out = np.empty(acc.shape, dtype=np.int64)
    for c in range(acc.shape[-1]):
        qm, sh = quantize_multiplier(float(np.float64(x_scale) * np.float64(w_scale[c]) / np.float64(y_scale)))
        out[..., c] = requant_fixed(acc[..., c], qm, sh, qmin, qmax, zp)
    return out


def qlinear_matmul(a, sa, za, b, sb, zb, sy, zy, y_dtype, qmin, qmax, bias=None, mode="float", acc_bits=32,
                   saturate=False):
    """(y, events, outputs) of the quantized matmul, via explicit int64 products summed step by step."""
    a64 = a.astype(np.int64) - int(za)
    b64 = b.astype(np.int64) - np.asarray(zb, np.int64)
    prods = a64[..., :, None, :] * b64.T[None, :, :] if a64.ndim == 2 else \
        a64[..., :, None, :] * b64.T
    bias = np.zeros(b.shape[1], np.int64) if bias is None else bias.astype(np.int64)
    acc, ev, outs = accumulate(prods, bias, acc_bits, saturate)
    y = _requant(acc, mode, sa, sb, sy, qmin, qmax, int(zy))
    return y.astype(y_dtype), ev, outs


def qlinear_conv(x, sx, zx, w, sw, zw, sy, zy, y_dtype, qmin, qmax, bias=None, strides=(1, 1), pads=(0, 0, 0, 0),
                 dilations=(1, 1), group=1, mode="float", acc_bits=32, saturate=False):
    """Direct NCHW convolution: input padded with ``zx``, products taken in (c, r, s) order per group."""
    nb, _c, h, wd = x.shape
    cout, cg, r, s = w.shape
    pt, pl, pb, pr = pads
    xp = np.pad(x.astype(np.int64), ((0, 0), (0, 0), (pt, pb), (pl, pr)), constant_values=int(zx)) - int(zx)
    w64 = w.astype(np.int64) - np.broadcast_to(np.asarray(zw, np.int64), (cout,)).reshape(-1, 1, 1, 1)
    ho = (h + pt + pb - dilations[0] * (r - 1) - 1) // strides[0] + 1
    wo = (wd + pl + pr - dilations[1] * (s - 1) - 1) // strides[1] + 1
    go = cout // group
    prods = np.zeros((nb, ho, wo, cout, cg * r * s), dtype=np.int64)
    for co in range(cout):
        g = co // go
        k = 0
        for ci in range(cg):
            for i in range(r):
                for j in range(s):
                    hs, ws = i * dilations[0], j * dilations[1]
                    patch = xp[:, g * cg + ci, hs:hs + strides[0] * (ho - 1) + 1:strides[0],
                               ws:ws + strides[1] * (wo - 1) + 1:strides[1]]
                    prods[..., co, k] = patch * w64[co, ci, i, j]
                    k += 1
    bias = np.zeros(cout, np.int64) if bias is None else bias.astype(np.int64)
    acc, ev, outs = accumulate(prods, bias, acc_bits, saturate)
    y = _requant(acc, mode, sx, sw, sy, qmin, qmax, int(zy))
    return y.transpose(0, 3, 1, 2).astype(y_dtype), ev, outs


# ---------------------------------------------------------------------------------------------- calibration
def kl_divergences(h, start, nq, eps=1e-4):
    """TensorRT KL for i = start..len(h) (levels j*nq//i, spread over non-zero bins, eps where Q=0<P)."""
    h = np.asarray(h, dtype=np.float64)
    out = []
    for i in range(start, h.size + 1):
        p = h[:i].copy()
        p[-1] += h[i:].sum()
        lv = np.arange(i) * nq // i
        mass = np.bincount(lv, weights=h[:i], minlength=nq)
        nz = np.bincount(lv, weights=(h[:i] != 0).astype(float), minlength=nq)
        q = np.where(h[:i] != 0, mass[lv] / np.maximum(nz[lv], 1), 0.0)
        if q.sum() == 0:
            out.append(np.inf)
            continue
        q = np.where((q == 0) & (p > 0), eps, q)
        pn, qn = p / p.sum(), q / q.sum()
        m = pn > 0
        out.append(float(np.sum(pn[m] * np.log(pn[m] / qn[m]))))
    return np.array(out)


def code_entropies(h, first, w, thresholds, nq):
    cum = np.concatenate([[0.0], np.cumsum(np.asarray(h, np.float64))])
    grid = first + w * np.arange(h.size + 1)
    out = []
    for t in thresholds:
        s = t / (nq - 1)
        bounds = np.interp((np.arange(nq - 1) + 0.5) * s, grid, cum)
        masses = np.diff(np.concatenate([[0.0], bounds, [cum[-1]]])) / cum[-1]
        masses = masses[masses > 0]
        out.append(float(-np.sum(masses * np.log(masses))))
    return np.array(out)


def mse_errors(h, centers, thresholds, nq):
    out = []
    for t in thresholds:
        s = t / (nq - 1)
        qv = np.minimum(np.rint(centers / s), nq - 1) * s
        out.append(float(np.sum(h * (centers - qv) ** 2)))
    return np.array(out)


def kl_threshold_variant(x, nbins=2048, nq=128, *, signed_hist, int_q, q_all_bins, nonzero_of_p, drop_tail,
                         ort_smoothing, one_sided=False):
    """KL calibration with each departure of ONNX Runtime's port from TensorRT as a switch (all True = ORT's
    ``HistogramCollector.get_entropy_threshold`` on ``collect_value``'s histogram; all False = TensorRT as in
    docs/quantization.md = :func:`accelsim.quant.thresholds.kl_threshold`). Returns the upper threshold (before ORT's
    clamp to max).

    * ``signed_hist``: signed histogram over [-a, a] (bins twice as wide), windows ``[z-i, z+i]`` around the zero
      bin (``i`` from nq/2 to nbins/2, so 2i+1 bins for nq levels), outliers folded into both ends, threshold =
      the window's upper edge ``(i+1) * 2a/nbins``; else |x| over [0, a], the first ``i`` bins (i from nq to
      nbins), threshold ``(i + 0.5) * a/nbins``.
    * ``int_q``: Q held in int64 (each level's count / its non-zero bins truncated).
    * ``q_all_bins``: the level's share written to all of its bins, zero ones included.
    * ``nonzero_of_p``: non-zero bins counted on P (outliers included) instead of the window.
    * ``drop_tail``: levels of ``size // nq`` bins; the remainder's counts join the last level but its bins get
      no Q; else bin j belongs to level ``j * nq // size``.
    * ``ort_smoothing``: ORT's ``smooth_distribution`` on P and Q + float32 ``entropy``; else eps on Q only.
    * ``one_sided`` (|x| histogram only): NVIDIA pytorch-quantization's treatment of non-negative data —
      ``hist[0] = hist[1]`` and ``2·nq`` levels (accelsim's asymmetric KL on one-sided data).
    """
    from onnxruntime.quantization.calibrate import entropy as ort_entropy
    from onnxruntime.quantization.quant_utils import smooth_distribution

    x = np.asarray(x, np.float32).reshape(-1)
    a = np.float32(np.abs(x).max())
    if signed_hist:
        hist, edges = np.histogram(x, nbins, range=(-a, a))
        cands = range(nq // 2, nbins // 2 + 1)
    else:
        hist, edges = np.histogram(np.abs(x), nbins, range=(np.float32(0), a))
        if one_sided:
            hist[0], nq = hist[1], 2 * nq
        cands = range(nq, nbins + 1)
    best, arg = np.inf, None
    for i in cands:
        if signed_hist:
            z = nbins // 2
            st, en = z - i, min(z + i + 1, nbins)
            win = hist[st:en].astype(np.int64)
            p = win.copy()
            p[0] += hist[:st].sum()
            p[-1] += hist[en:].sum()
        else:
            st, en = 0, i
            win = hist[:i].astype(np.int64)
            p = win.copy()
            p[-1] += hist[i:].sum()
        q = _variant_q(win, p, nq, int_q, q_all_bins, nonzero_of_p, drop_tail)
        if ort_smoothing:
            ps, qs = smooth_distribution(p), smooth_distribution(q)
            div = np.inf if ps is None or qs is None else float(ort_entropy(ps, qs))
        else:
            div = _kl_q_eps(p, q)
        if div < best:
            best = div
            arg = float(edges[en]) if signed_hist else (i + 0.5) * (float(a) / nbins)
    return arg


def _variant_q(win, p, nq, int_q, q_all_bins, nonzero_of_p, drop_tail):
    size = win.size
    nz = ((p if nonzero_of_p else win) != 0).astype(np.int64)
    if drop_tail:  # levels of size // nq bins; the remainder's counts join the last level, its bins get no Q
        per = size // nq
        lv = np.full(size, -1)
        lv[:nq * per] = np.arange(nq * per) // per
        masses = win[:nq * per].reshape(nq, per).sum(axis=1)
        masses[-1] += win[nq * per:].sum()
        norm = nz[:nq * per].reshape(nq, per).sum(axis=1)
    else:
        lv = np.arange(size) * nq // size
        masses = np.bincount(lv, weights=win, minlength=nq)
        norm = np.bincount(lv, weights=nz, minlength=nq)
    with np.errstate(divide="ignore", invalid="ignore"):
        share = np.where(norm != 0, masses / np.maximum(norm, 1), 0.0)
    q = np.where(lv >= 0, share[np.maximum(lv, 0)], 0.0)
    if not q_all_bins:
        q = np.where(nz != 0, q, 0.0)
    return q.astype(np.int64) if int_q else q


def _kl_q_eps(p, q, eps=1e-4):
    p = p.astype(np.float64)
    q = q.astype(np.float64)
    if q.sum() == 0:
        return np.inf
    q = np.where((q == 0) & (p > 0), eps, q)
    pn, qn = p / p.sum(), q / q.sum()
    m = pn > 0
    return float(np.sum(pn[m] * np.log(pn[m] / qn[m])))
