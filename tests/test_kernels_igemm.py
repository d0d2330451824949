"""Integer GEMM / conv kernels (fast and checked paths, both requantization modes) against numpy twins."""
import numpy as np
import pytest
import reference_quant as ref
from numpy.testing import assert_array_equal

from accelsim.kernels import igemm as kg
from accelsim.kernels import im2col as ki
from accelsim.quant import qlinear_conv, qlinear_matmul

TYPES = {"u8": (np.uint8, 0, 255), "s8": (np.int8, -128, 127), "u4": (np.uint8, 0, 15), "s4": (np.int8, -8, 7)}


def _rand(rng, shape, t):
    dt, lo, hi = TYPES[t]
    return rng.integers(lo, hi + 1, shape).astype(dt)


def _zp(rng, t, n=None):
    dt, lo, hi = TYPES[t]
    return (rng.integers(lo, hi + 1) if n is None else rng.integers(lo, hi + 1, n)).astype(dt)


def _bits(t):
    return 4 if t[1] == "4" else None


def test_pack_sub_zp_pads_rows_with_zero():
    src = np.arange(12, dtype=np.uint8).reshape(1, 3, 4)
    out = np.full((1, 4, 4), 99, np.int16)
    kg.pack_sub_zp(src, np.array([[1, 2, 3]], np.int64), 4, out)
    want = np.zeros((1, 4, 4), np.int16)
    want[0, :3] = src[0].astype(np.int16) - np.array([[1], [2], [3]])
    assert_array_equal(out, want)


def test_im2col_matches_twin():
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (1, 4, 7, 6)).astype(np.uint8)
    ho, wo = (7 + 1 + 2 - 2 * 2 - 1) // 2 + 1, (6 + 0 + 1 - 1 * 2 - 1) // 1 + 1
    out = np.full((2, ho * wo + 1, 2 * 3 * 3), 7, np.int16)
    ki.im2col_sub_zp(x, 5, 2, 3, 3, 2, 1, 1, 0, 2, 1, ho, wo, out)
    xp = np.pad(x.astype(np.int64) - 5, ((0, 0), (0, 0), (1, 2), (0, 1)))
    for g in range(2):
        for oh in range(ho):
            for ow in range(wo):
                patch = xp[0, 2 * g:2 * g + 2, oh * 2:oh * 2 + 5:2, ow:ow + 3]
                assert_array_equal(out[g, oh * wo + ow], patch.reshape(-1))
    assert not out[:, -1].any()


def test_im2col3d_matches_twin_with_depth_stride_padding_and_dilation():
    rng = np.random.default_rng(1)
    x = rng.integers(-128, 128, (2, 4, 6, 5, 4)).astype(np.int8)          # (B, C, D, H, W)
    kd, kh, kw, sd, sh, sw, dd, dh, dw = 2, 3, 2, 2, 1, 2, 2, 1, 1
    pf, pbk, pt, pb, pl, pr = 1, 2, 1, 0, 0, 1                              # front/back, top/bottom, left/right
    do = (6 + pf + pbk - dd * (kd - 1) - 1) // sd + 1
    ho = (5 + pt + pb - dh * (kh - 1) - 1) // sh + 1
    wo = (4 + pl + pr - dw * (kw - 1) - 1) // sw + 1
    rows = 2 * do * ho * wo
    out = np.full((2, rows + 3, 2 * kd * kh * kw), 7, np.int16)
    ki.im2col3d_sub_zp(x, -3, 2, kd, kh, kw, sd, sh, sw, pf, pt, pl, dd, dh, dw, do, ho, wo, out)
    xp = np.pad(x.astype(np.int64) + 3, ((0, 0), (0, 0), (pf, pbk), (pt, pb), (pl, pr)))
    for g in range(2):
        for b in range(2):
            for od in range(do):
                for oh in range(ho):
                    for ow in range(wo):
                        patch = xp[b, 2 * g:2 * g + 2, od * sd:od * sd + dd * (kd - 1) + 1:dd,
                                   oh * sh:oh * sh + dh * (kh - 1) + 1:dh, ow * sw:ow * sw + dw * (kw - 1) + 1:dw]
                        assert_array_equal(out[g, ((b * do + od) * ho + oh) * wo + ow], patch.reshape(-1))
    assert not out[:, rows:].any()


@pytest.mark.parametrize("ta,tb,ty", [("u8", "s8", "u8"), ("u8", "u8", "u8"), ("s8", "s8", "s8"),
                                      ("u8", "s8", "s8"), ("s4", "s4", "s4"), ("u4", "s4", "u4")])
@pytest.mark.parametrize("mode", ["float", "fixed_point"])
def test_qlinear_matmul_matches_twin(ta, tb, ty, mode):
    rng = np.random.default_rng(hash((ta, tb, ty, mode)) % 2**32)
    for m, k, n in [(1, 1, 1), (5, 17, 3), (2, 33, 9), (3, 4, 37)]:
        a, b = _rand(rng, (2, m, k), ta), _rand(rng, (k, n), tb)
        za, zb, zy = _zp(rng, ta), _zp(rng, tb, n), _zp(rng, ty)
        sa, sy = np.float32(rng.uniform(0.01, 0.1)), np.float32(rng.uniform(0.05, 2))
        sb = rng.uniform(0.001, 0.05, n).astype(np.float32)
        bias = rng.integers(-5000, 5000, n).astype(np.int32)
        y = qlinear_matmul(a, sa, za, b, sb, zb, sy, zy, bias=bias, requant=mode, a_bits=_bits(ta),
                           b_bits=_bits(tb), y_bits=_bits(ty))
        _, qmin, qmax = TYPES[ty]
        want, _, _ = ref.qlinear_matmul(a, sa, za, b, sb, zb, sy, zy, TYPES[ty][0], qmin, qmax, bias, mode)
        assert y.dtype == TYPES[ty][0]
        assert_array_equal(y, want)


@pytest.mark.parametrize("acc_bits,overflow", [(16, "wrap"), (16, "saturate"), (24, "saturate"), (12, "wrap")])
def test_accumulator_emulation_matches_twin(acc_bits, overflow):
    rng = np.random.default_rng(acc_bits)
    k = 300 if acc_bits == 24 else 40
    a = rng.integers(0, 256, (6, k)).astype(np.uint8)
    b = rng.integers(-128, 128, (k, 5)).astype(np.int8)
    bias = rng.integers(-2**15, 2**15, 5).astype(np.int32)
    if acc_bits == 24:  # 300 * 252 * 128 > 2**23: a few saturating rows among random ones
        a[:2], b[:, :2] = 255, -128
    args = (np.float32(0.02), np.uint8(3), b, np.float32(0.01), np.int8(0), np.float32(4.0), np.uint8(128))
    y, ovf = qlinear_matmul(a, *args, bias=bias, acc_bits=acc_bits, overflow=overflow, return_overflow=True)
    want, ev, outs = ref.qlinear_matmul(a, *args[:-1], np.uint8(128), np.uint8, 0, 255, bias,
                                        acc_bits=acc_bits, saturate=overflow == "saturate")
    assert_array_equal(y, want)
    assert (ovf.events, ovf.outputs) == (ev, outs)
    assert ev > 0


def test_fast_path_reports_no_overflow_and_wraps_like_int32():
    rng = np.random.default_rng(5)
    a = rng.integers(0, 256, (3, 8)).astype(np.uint8)
    b = rng.integers(-128, 128, (8, 4)).astype(np.int8)
    y, ovf = qlinear_matmul(a, 0.1, np.uint8(0), b, 0.1, np.int8(0), 0.5, np.uint8(0), return_overflow=True)
    assert (ovf.events, ovf.outputs) == (0, 0)
    # 32-bit wrap with an int32 bias close to the limit: the checked path runs and matches int32 arithmetic
    bias = np.full(4, 2**31 - 10, np.int32)
    y, ovf = qlinear_matmul(a, 1e-6, np.uint8(0), b, 1e-3, np.int8(0), 1.0, np.uint8(0), bias=bias,
                            return_overflow=True)
    want, ev, _outs = ref.qlinear_matmul(a, np.float32(1e-6), 0, b, np.float32(1e-3), 0, np.float32(1.0), 0,
                                        np.uint8, 0, 255, bias.astype(np.int64))
    assert_array_equal(y, want)
    assert ovf.events == ev


CONVS = [  # (B, C, H, W, Cout, R, S, strides, pads, dilations, group)
    (1, 3, 7, 7, 4, 3, 3, (1, 1), (1, 1, 1, 1), (1, 1), 1),
    (2, 4, 9, 8, 6, 3, 2, (2, 1), (0, 1, 2, 0), (1, 2), 2),
    (1, 6, 6, 6, 6, 3, 3, (1, 1), (1, 1, 1, 1), (2, 2), 6),   # depthwise, dilated
    (2, 5, 9, 8, 5, 5, 3, (2, 1), (2, 1, 0, 2), (1, 1), 5),   # depthwise, batch 2, unequal strides and pads
    (1, 8, 5, 7, 4, 1, 1, (2, 2), (0, 0, 0, 0), (1, 1), 4),   # grouped 1x1, strided
    (1, 2, 4, 4, 12, 4, 4, (3, 3), (2, 2, 2, 2), (1, 1), 2),  # depth multiplier 6, large kernel
]


@pytest.mark.parametrize("case", CONVS)
@pytest.mark.parametrize("types,mode", [(("u8", "s8", "u8"), "float"), (("s8", "s8", "s8"), "fixed_point"),
                                        (("u8", "u8", "u8"), "float"), (("u4", "s4", "u4"), "float")])
def test_qlinear_conv_matches_twin(case, types, mode):
    nb, c, h, w_, cout, r, s, st, pads, dil, group = case
    tx, tw, ty = types
    rng = np.random.default_rng(sum(map(hash, types)) % 2**32)
    x, w = _rand(rng, (nb, c, h, w_), tx), _rand(rng, (cout, c // group, r, s), tw)
    zx, zw, zy = _zp(rng, tx), _zp(rng, tw, cout), _zp(rng, ty)
    sx, sy = np.float32(0.05), np.float32(rng.uniform(0.1, 3))
    sw = rng.uniform(0.001, 0.05, cout).astype(np.float32)
    bias = rng.integers(-3000, 3000, cout).astype(np.int32)
    y = qlinear_conv(x, sx, zx, w, sw, zw, sy, zy, bias, st, pads, dil, group, requant=mode,
                     x_bits=_bits(tx), w_bits=_bits(tw), y_bits=_bits(ty))
    _, qmin, qmax = TYPES[ty]
    want, _, _ = ref.qlinear_conv(x, sx, zx, w, sw, zw, sy, zy, TYPES[ty][0], qmin, qmax, bias, st, pads, dil, group,
                                  mode)
    assert_array_equal(y, want)


def test_qlinear_conv_accumulator_emulation_matches_twin():
    rng = np.random.default_rng(9)
    x = rng.integers(200, 256, (1, 4, 5, 5)).astype(np.uint8)
    w = rng.integers(100, 128, (4, 2, 3, 3)).astype(np.int8)
    args = (np.float32(0.02), np.uint8(0), w, np.float32(0.01), np.int8(0), np.float32(8.0), np.uint8(0))
    for overflow in ("wrap", "saturate"):
        y, ovf = qlinear_conv(x, *args, None, (1, 1), (1, 1, 1, 1), (1, 1), 2, acc_bits=18, overflow=overflow,
                              return_overflow=True)
        want, ev, outs = ref.qlinear_conv(x, *args, np.uint8, 0, 255, None, (1, 1), (1, 1, 1, 1), (1, 1), 2,
                                          acc_bits=18, saturate=overflow == "saturate")
        assert_array_equal(y, want)
        assert (ovf.events, ovf.outputs) == (ev, outs) and ev > 0
