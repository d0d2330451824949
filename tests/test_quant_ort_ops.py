"""Bit-exactness against ONNX Runtime's CPU kernels: QuantizeLinear, DequantizeLinear, QLinearMatMul, QLinearConv.

Each case builds a one-node ONNX graph with ``onnx.helper`` and runs it with ``CPUExecutionProvider``; integer
outputs are compared with ``assert_array_equal`` (bit for bit). 4-bit outputs go through a Cast to int8/uint8
(ORT cannot hand INT4 tensors to numpy).
"""
import numpy as np
import pytest
from numpy.testing import assert_array_equal

ort = pytest.importorskip("onnxruntime")
onnx = pytest.importorskip("onnx")
from onnx import TensorProto as TP
from onnx import helper

from accelsim.quant import dequantize_linear, qlinear_conv, qlinear_matmul, quantize_linear


def _ort_u8s8_is_exact() -> bool:
    """ORT's x86 AVX2 u8 x s8 GEMM sums pairs of products with vpmaddubsw, which saturates at int16 (a documented
    MLAS limitation, hence ORT's reduce_range advice); with AVX-VNNI/AVX512-VNNI or on ARM it is exact."""
    import platform

    if platform.machine().lower() not in ("x86_64", "amd64", "i386", "i686"):
        return True
    try:
        with open("/proc/cpuinfo") as f:
            flags = f.read()
    except OSError:
        return False
    return "avx512_vnni" in flags or "avx_vnni" in flags


U8S8_EXACT = _ort_u8s8_is_exact()
NP2ONNX = {np.dtype(np.uint8): TP.UINT8, np.dtype(np.int8): TP.INT8, np.dtype(np.uint16): TP.UINT16,
           np.dtype(np.int16): TP.INT16, np.dtype(np.float32): TP.FLOAT, np.dtype(np.int32): TP.INT32}


def _run(nodes, feeds, outputs, opset=21, initializers=()):
    ins = [helper.make_tensor_value_info(k, NP2ONNX[np.asarray(v).dtype], None) for k, v in feeds.items()]
    outs = [helper.make_tensor_value_info(name, t, None) for name, t in outputs]
    g = helper.make_graph(nodes, "g", ins, outs, initializer=list(initializers))
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = 10
    sess = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
    return sess.run(None, {k: np.asarray(v) for k, v in feeds.items()})


def _ties_and_noise(rng, shape, scale):
    """Values whose x / scale are exact .5 ties (scale a power of two) mixed with random and saturating ones."""
    x = (rng.integers(-300, 300, shape) + 0.5).astype(np.float32) * np.float32(scale)
    noise = rng.standard_normal(shape).astype(np.float32) * np.float32(scale * 80)
    return np.where(rng.random(shape) < 0.5, x, noise).astype(np.float32)


# ------------------------------------------------------------------------------------------- QuantizeLinear
@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.uint16, np.int16])
@pytest.mark.parametrize("axis", [None, 0, 1, -1])
def test_quantize_linear_bit_exact(dtype, axis):
    rng = np.random.default_rng(0)
    x = _ties_and_noise(rng, (4, 5, 6), 0.25)
    x[0, 0, :3] = [np.inf, -np.inf, 1e30]
    info = np.iinfo(dtype)
    if axis is None:
        scale, zp = np.float32(0.25), dtype(rng.integers(info.min, info.max // 2))
    else:
        n = x.shape[axis]
        scale = np.where(rng.random(n) < 0.5, 0.25, rng.uniform(0.01, 2, n)).astype(np.float32)
        zp = rng.integers(info.min, info.max // 2, n).astype(dtype)
    kw = {} if axis is None else {"axis": axis}
    (want,) = _run([helper.make_node("QuantizeLinear", ["x", "s", "z"], ["y"], **kw)], {"x": x, "s": scale, "z": zp},
                   [("y", NP2ONNX[np.dtype(dtype)])])
    got = quantize_linear(x, scale, zp, axis=axis)
    assert got.dtype == want.dtype
    assert_array_equal(got, want)


@pytest.mark.parametrize("qtype,cast", [("int4", TP.INT8), ("uint4", TP.UINT8)])
@pytest.mark.parametrize("per_axis", [False, True])
def test_quantize_linear_int4_bit_exact(qtype, cast, per_axis):
    rng = np.random.default_rng(1)
    x = _ties_and_noise(rng, (3, 8), 0.5) / np.float32(16)
    onnx_t = TP.INT4 if qtype == "int4" else TP.UINT4
    zps = rng.integers(-8, 8, 8) if qtype == "int4" else rng.integers(0, 16, 8)
    scale = rng.uniform(0.01, 0.2, 8).astype(np.float32) if per_axis else np.float32(1 / 32)
    zp_vals = zps.tolist() if per_axis else [int(zps[0])]
    zp_init = helper.make_tensor("z", onnx_t, [8] if per_axis else [], zp_vals)
    nodes = [helper.make_node("QuantizeLinear", ["x", "s", "z"], ["q"], axis=1),
             helper.make_node("Cast", ["q"], ["y"], to=cast)]
    (want,) = _run(nodes, {"x": x, "s": scale}, [("y", cast)], initializers=[zp_init])
    zp = np.array(zp_vals if per_axis else zp_vals[0], dtype=np.int8 if qtype == "int4" else np.uint8)
    got = quantize_linear(x, scale, zp, axis=1 if per_axis else None, dtype=qtype)
    assert_array_equal(got, want)


# ----------------------------------------------------------------------------------------- DequantizeLinear
@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.int16])
def test_dequantize_linear_bit_exact(dtype):
    rng = np.random.default_rng(2)
    info = np.iinfo(dtype)
    q = rng.integers(info.min, info.max, (3, 4, 5)).astype(dtype)
    for axis, scale, zp in [(None, np.float32(0.0371), dtype(3)),
                            (1, rng.uniform(0.001, 3, 4).astype(np.float32), rng.integers(0, 100, 4).astype(dtype))]:
        kw = {} if axis is None else {"axis": axis}
        (want,) = _run([helper.make_node("DequantizeLinear", ["q", "s", "z"], ["y"], **kw)],
                       {"q": q, "s": scale, "z": zp}, [("y", TP.FLOAT)])
        assert_array_equal(dequantize_linear(q, scale, zp, axis=axis), want)


def test_dequantize_linear_int4_bit_exact():
    rng = np.random.default_rng(3)
    q = rng.integers(-8, 8, (4, 6)).astype(np.int8)
    nodes = [helper.make_node("Cast", ["q"], ["q4"], to=TP.INT4),
             helper.make_node("DequantizeLinear", ["q4", "s", "z"], ["y"])]
    z = helper.make_tensor("z", TP.INT4, [], [-3])
    (want,) = _run(nodes, {"q": q, "s": np.float32(0.173)}, [("y", TP.FLOAT)], initializers=[z])
    assert_array_equal(dequantize_linear(q, np.float32(0.173), np.int8(-3), dtype="int4"), want)


# -------------------------------------------------------------------------------------------- QLinearMatMul
def _ort_matmul(a, sa, za, b, sb, zb, sy, zy):
    names = ["a", "sa", "za", "b", "sb", "zb", "sy", "zy"]
    feeds = dict(zip(names, [a, np.float32(sa), za, b, np.asarray(sb, np.float32), zb, np.float32(sy), zy]))
    (y,) = _run([helper.make_node("QLinearMatMul", names, ["y"])], feeds, [("y", NP2ONNX[np.asarray(zy).dtype])])
    return y


def _extremes(rng, dt, shape):
    """Mostly the value farthest from zero (so sums of products exceed 2**24), some of the other extreme."""
    info = np.iinfo(dt)
    big, other = (info.min, info.max) if info.min < 0 else (info.max, info.min)
    return np.where(rng.random(shape) < 0.9, big, other).astype(dt)


_U8S8 = pytest.param(np.uint8, np.int8, marks=pytest.mark.skipif(
    not U8S8_EXACT, reason="ORT's non-VNNI x86 u8s8 kernel saturates int16 pair sums (vpmaddubsw)"))
MATMUL_TYPES = [_U8S8, (np.uint8, np.uint8), (np.int8, np.int8)]  # ORT's output type = a's type


def _rand_t(rng, dt, shape):
    info = np.iinfo(dt)
    return rng.integers(info.min, info.max + 1, shape).astype(dt)


@pytest.mark.parametrize("ta,tb", MATMUL_TYPES)
@pytest.mark.parametrize("per_column", [False, True])
def test_qlinear_matmul_bit_exact_random(ta, tb, per_column):
    rng = np.random.default_rng(4)
    for m, k, n in [(1, 1, 1), (7, 33, 5), (2, 64, 17), (31, 9, 40)]:
        a, b = _rand_t(rng, ta, (2, m, k)), _rand_t(rng, tb, (k, n))
        sb = rng.uniform(0.001, 0.05, n).astype(np.float32) if per_column else np.float32(0.02)
        zb = _rand_t(rng, tb, n) if per_column else _rand_t(rng, tb, ())
        args = (a, np.float32(rng.uniform(0.01, 0.1)), _rand_t(rng, ta, ()), b, sb, zb,
                np.float32(rng.uniform(0.05, 3)), _rand_t(rng, ta, ()))
        assert_array_equal(qlinear_matmul(*args), _ort_matmul(*args))


def _straddling_targets(sign=1):
    """Accumulators above 2**24 whose exact product with 2**-18 lies just off a .5 tie while float32(acc) lands
    on it (or the other way round): float32(acc) rounding decides the result."""
    out = []
    for base in (2**24, 2**25, 2**26 - 2**20, 2**29 + 2**21):
        for j in (0, 3):
            for d in (-3, -2, -1, 1, 2, 3, 5):
                out.append(sign * (base + (2 * j + 1) * 2**17 + d))
    return out


def _row_col_for(targets, ta, tb):
    """a (len, K) and b (K, len) with ``a[i] @ b[:, i] == targets[i]`` exactly (zero points 0)."""
    amax = int(np.iinfo(ta).max)
    cols = []
    for t in targets:
        bbig = int(np.iinfo(tb).max) if t >= 0 else int(np.iinfo(tb).min)
        unit = 1 if t >= 0 else -1
        n, rem = divmod(abs(t), amax * abs(bbig))
        m, last = divmod(rem, amax)
        cols.append(([amax] * (n + m) + [last], [bbig] * n + [unit] * (m + 1)))
    k = max(len(c[0]) for c in cols)
    a = np.zeros((len(targets), k), ta)
    b = np.zeros((k, len(targets)), tb)
    for i, (acol, bcol) in enumerate(cols):
        a[i, :len(acol)] = acol
        b[:len(bcol), i] = bcol
    return a, b


@pytest.mark.parametrize("ta,tb", MATMUL_TYPES)
def test_qlinear_matmul_bit_exact_ties(ta, tb):
    rng = np.random.default_rng(5)
    # multiplier exactly 1/2: every odd accumulator is a .5 tie, resolved to even
    lo = 0 if ta is np.uint8 else -3
    a, b = rng.integers(lo, 4, (16, 24)).astype(ta), rng.integers(0 if tb is np.uint8 else -3, 4, (24, 8)).astype(tb)
    y0 = ta(0) if ta is np.int8 else ta(128)
    args = (a, np.float32(0.5), ta(0), b, np.float32(0.25), tb(0), np.float32(0.25), y0)
    acc = a.astype(np.int64) @ b.astype(np.int64)
    assert (acc % 2 == 1).sum() > 20
    assert_array_equal(qlinear_matmul(*args), _ort_matmul(*args))


@pytest.mark.parametrize("ta,tb", MATMUL_TYPES)
def test_qlinear_matmul_bit_exact_large_acc(ta, tb):
    targets = _straddling_targets() + ([] if tb is np.uint8 else _straddling_targets(-1)[:12])
    if ta is np.int8:
        targets = [t // 2 + (t % 2) for t in targets if abs(t) < 2**29]  # keep K small for int8 x int8
    a, b = _row_col_for(targets, ta, tb)
    y0 = ta(0) if ta is np.int8 else ta(128)
    acc = np.diag(a.astype(np.int64) @ b.astype(np.int64))
    assert_array_equal(acc, targets)
    assert np.abs(acc).max() > 2**24
    for sa, sb, sy in [(1.0, 2.0**-10, 2.0**8), (1.0, 2.0**-10, 2.0**8 * 1.37), (0.75, 2.0**-11, 2.0**6)]:
        args = (a, np.float32(sa), ta(0), b, np.float32(sb), tb(0), np.float32(sy), y0)
        assert_array_equal(qlinear_matmul(*args), _ort_matmul(*args))


def test_qlinear_matmul_int4_values_bit_exact():
    rng = np.random.default_rng(6)
    a = rng.integers(-8, 8, (5, 40)).astype(np.int8)
    b = rng.integers(-8, 8, (40, 6)).astype(np.int8)
    args = (a, np.float32(0.3), np.int8(1), b, rng.uniform(0.05, 0.2, 6).astype(np.float32), np.zeros(6, np.int8),
            np.float32(0.7), np.int8(-2))
    assert_array_equal(qlinear_matmul(*args, a_bits=4, b_bits=4), _ort_matmul(*args))


# --------------------------------------------------------------------------------------------- QLinearConv
def _ort_conv(x, sx, zx, w, sw, zw, sy, zy, bias, strides, pads, dilations, group):
    names = ["x", "sx", "zx", "w", "sw", "zw", "sy", "zy"] + (["b"] if bias is not None else [])
    vals = [x, np.float32(sx), zx, w, np.asarray(sw, np.float32), zw, np.float32(sy), zy] + ([bias] if bias is not None else [])
    node = helper.make_node("QLinearConv", names, ["y"], strides=list(strides), pads=list(pads),
                            dilations=list(dilations), group=group)
    (y,) = _run([node], dict(zip(names, vals)), [("y", NP2ONNX[np.asarray(zy).dtype])], opset=10)
    return y


CONV_CASES = [  # (B, C, H, W, Cout, R, S, strides, pads, dilations, group)
    (1, 3, 9, 9, 8, 3, 3, (1, 1), (1, 1, 1, 1), (1, 1), 1),
    (2, 8, 10, 7, 6, 3, 2, (2, 1), (0, 1, 2, 0), (1, 2), 2),
    (1, 16, 8, 8, 16, 3, 3, (1, 1), (1, 1, 1, 1), (1, 1), 16),     # depthwise
    (1, 12, 11, 11, 12, 3, 3, (2, 2), (2, 2, 2, 2), (2, 2), 12),   # depthwise, strided, dilated
    (1, 8, 7, 9, 12, 1, 1, (2, 2), (0, 0, 0, 0), (1, 1), 4),       # grouped 1x1
    (1, 6, 12, 12, 4, 5, 5, (3, 2), (1, 2, 0, 1), (1, 1), 1),
]


@pytest.mark.parametrize("case", CONV_CASES)
@pytest.mark.parametrize("tx,tw", MATMUL_TYPES)
def test_qlinear_conv_bit_exact(case, tx, tw):
    nb, c, h, w_, cout, r, s, st, pads, dil, group = case
    rng = np.random.default_rng(7)
    x, w = _rand_t(rng, tx, (nb, c, h, w_)), _rand_t(rng, tw, (cout, c // group, r, s))
    sw = rng.uniform(0.001, 0.03, cout).astype(np.float32)
    zw = _rand_t(rng, tw, cout) // 2 if tw is np.uint8 else np.zeros(cout, tw)
    bias = rng.integers(-20000, 20000, cout).astype(np.int32)
    for b in (None, bias):
        args = (x, np.float32(0.03), _rand_t(rng, tx, ()), w, sw, zw, np.float32(rng.uniform(0.05, 1.5)),
                _rand_t(rng, tx, ()), b, st, pads, dil, group)
        assert_array_equal(qlinear_conv(*args), _ort_conv(*args))


@pytest.mark.parametrize("tx,tw", MATMUL_TYPES)
def test_qlinear_conv_bit_exact_ties_and_large_acc(tx, tw):
    rng = np.random.default_rng(8)
    # accumulators set exactly through the bias: products are 0 where x == x_zp (interior) and small at one pixel
    targets = np.array(_straddling_targets() + _straddling_targets(-1), np.int64)
    cout = targets.size
    x = np.full((1, 2, 4, 4), 3, tx)
    x[0, :, 0, 0] = 7
    w = rng.integers(0, 3, (cout, 2, 1, 1)).astype(tw)
    zx = tx(3)
    zw = np.zeros(cout, tw)
    y0 = tx(0) if tx is np.int8 else tx(128)
    sw = np.full(cout, 2.0**-10, np.float32)
    sw[::3] = 2.0**-11
    for sx, sy in [(1.0, 2.0**8), (1.0, 2.0**8 * 0.913), (2.0, 2.0**9)]:
        args = (x, np.float32(sx), zx, w, sw, zw, np.float32(sy), y0, targets.astype(np.int32), (1, 1), (0, 0, 0, 0),
                (1, 1), 1)
        assert_array_equal(qlinear_conv(*args), _ort_conv(*args))
    # ties: multiplier 1/2 and small odd accumulators, grouped conv
    x = rng.integers(0, 5, (1, 4, 6, 6)).astype(tx)
    w = rng.integers(0, 3, (4, 2, 3, 3)).astype(tw)
    args = (x, np.float32(0.5), tx(0), w, np.full(4, 0.25, np.float32), np.zeros(4, tw), np.float32(0.25), y0,
            None, (1, 1), (1, 1, 1, 1), (1, 1), 2)
    assert_array_equal(qlinear_conv(*args), _ort_conv(*args))
