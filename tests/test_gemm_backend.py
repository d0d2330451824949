"""The exact integer GEMM backends: ONNX Runtime's MLAS (``accelsim.quant.ort_gemm``) and the Numba twin, each
against a plain-numpy int64 reference, bit for bit (``assert_array_equal``), for QLinearMatMul/QLinearConv and the
float-rescale variants (MatMulInteger/ConvInteger + rescale); the backend's self-test and its switches."""
import numpy as np
import pytest
import reference_quant as ref
from numpy.testing import assert_array_equal

from accelsim.errors import QuantError
from accelsim.quant import conv_integer_rescale, matmul_integer_rescale, ort_gemm, qlinear_conv, qlinear_matmul

HAVE_ORT = ort_gemm.choose() is not None
PAIRS = [(np.uint8, np.int8), (np.int8, np.int8), (np.uint8, np.uint8)]
SHAPES = [(1, 1, 1), (3, 17, 5), (17, 3, 1), (1, 300, 33), (40, 64, 19)]


@pytest.fixture(params=["ort", "numba"])
def backend(request, monkeypatch):
    """Run the test once on each backend (``ACCELSIM_GEMM_BACKEND``)."""
    if request.param == "ort" and not HAVE_ORT:
        pytest.skip("no exact ONNX Runtime integer GEMM on this machine")
    monkeypatch.setenv(ort_gemm.ENV, request.param)
    return request.param


def _rand(rng, dt, shape):
    info = np.iinfo(dt)
    return rng.integers(info.min, info.max + 1, shape).astype(dt)


def _acc(a, za, b, zb):
    """Plain numpy: exact int64 ``sum_k (a - za)(b - zb)`` (batched via matmul)."""
    return np.matmul(a.astype(np.int64) - int(za), b.astype(np.int64) - np.asarray(zb, np.int64))


def _conv_acc(x, zx, w, zw, strides, pads, dilations, group):
    """Plain numpy: exact int64 NCHW conv of ``x - zx`` (padded with zx) and ``w - zw[c]``."""
    nb, _, h, wd = x.shape
    cout, cg, r, s = w.shape
    pt, pl, pb, pr = pads
    xp = np.pad(x.astype(np.int64) - int(zx), ((0, 0), (0, 0), (pt, pb), (pl, pr)))
    w64 = w.astype(np.int64) - np.broadcast_to(np.asarray(zw, np.int64), (cout,))[:, None, None, None]
    ho = (h + pt + pb - dilations[0] * (r - 1) - 1) // strides[0] + 1
    wo = (wd + pl + pr - dilations[1] * (s - 1) - 1) // strides[1] + 1
    acc = np.zeros((nb, cout, ho, wo), np.int64)
    go = cout // group
    for i in range(r):
        for j in range(s):
            hs, ws = i * dilations[0], j * dilations[1]
            patch = xp[:, :, hs:hs + strides[0] * (ho - 1) + 1:strides[0], ws:ws + strides[1] * (wo - 1) + 1:strides[1]]
            for g in range(group):
                acc[:, g * go:(g + 1) * go] += np.einsum("bchw,oc->bohw", patch[:, g * cg:(g + 1) * cg],
                                                         w64[g * go:(g + 1) * go, :, i, j])
    return acc


def _rescale_ref(acc, sx, sw, bias, act, axis):
    shape = [1] * acc.ndim
    shape[axis] = -1
    y = acc.astype(np.float32) * (np.float32(sx) * np.asarray(sw, np.float32)).reshape(shape)
    if bias is not None:
        y = y + np.asarray(bias, np.float32).reshape(shape)
    return {None: y, "relu": np.maximum(y, 0), "relu6": np.clip(y, 0, 6)}[act].astype(np.float32)


def _grid(rng, ta, tb, n, per_channel):
    sb = rng.uniform(0.001, 0.05, n).astype(np.float32) if per_channel else np.float32(0.02)
    zb = _rand(rng, tb, n) if per_channel else _rand(rng, tb, ())
    return np.float32(rng.uniform(0.01, 0.1)), _rand(rng, ta, ()), sb, zb


# ------------------------------------------------------------------------------------------- QLinearMatMul
@pytest.mark.parametrize("ta,tb", PAIRS)
@pytest.mark.parametrize("per_channel", [False, True])
@pytest.mark.parametrize("mode", ["float", "fixed_point"])
def test_qlinear_matmul_bit_exact(backend, ta, tb, per_channel, mode):
    rng = np.random.default_rng(1)
    for m, k, n in SHAPES:
        a, b = _rand(rng, ta, (m, k)), _rand(rng, tb, (k, n))
        sa, za, sb, zb = _grid(rng, ta, tb, n, per_channel)
        sy, zy = np.float32(rng.uniform(0.5, 40)), _rand(rng, ta, ())
        bias = rng.integers(-30000, 30000, n).astype(np.int32)
        info = np.iinfo(ta)
        want = ref._requant(_acc(a, za, b, zb) + bias, mode, sa, sb, sy, info.min, info.max, int(zy)).astype(ta)
        got = qlinear_matmul(a, sa, za, b, sb, zb, sy, zy, bias=bias, requant=mode)
        assert got.dtype == ta
        assert_array_equal(got, want)


@pytest.mark.parametrize("ta,tb", PAIRS)
def test_qlinear_matmul_batched_b_and_leading_dims(backend, ta, tb):
    rng = np.random.default_rng(2)
    a, b = _rand(rng, ta, (2, 3, 7, 9)), _rand(rng, tb, (2, 3, 9, 5))
    sa, za, sb, zb = _grid(rng, ta, tb, 5, True)
    want = ref._requant(_acc(a, za, b, zb), "float", sa, sb, np.float32(3.0), 0, 255, 7).astype(np.uint8)
    assert_array_equal(qlinear_matmul(a, sa, za, b, sb, zb, np.float32(3.0), np.uint8(7)), want)
    b2 = b[0, 0]  # (..., M, K) @ (K, N): one GEMM over all rows
    want2 = ref._requant(_acc(a, za, b2, zb), "float", sa, sb, np.float32(3.0), 0, 255, 7).astype(np.uint8)
    assert_array_equal(qlinear_matmul(a, sa, za, b2, sb, zb, np.float32(3.0), np.uint8(7)), want2)


def test_qlinear_matmul_extremes_large_k(backend):
    """K = 2000 of the farthest values: sums near 2**27 (float32(acc) rounds) and int16 pair sums would saturate."""
    a = np.full((4, 2000), 255, np.uint8)
    b = np.full((2000, 3), -128, np.int8)
    b[:, 1] = 127
    acc = _acc(a, 0, b, 0)
    for sy in (np.float32(2.0**20), np.float32(2.0**19 * 1.37)):
        want = ref._requant(acc, "float", np.float32(1), np.float32(1), sy, -128, 127, 0).astype(np.int8)
        assert_array_equal(qlinear_matmul(a, 1.0, np.uint8(0), b, 1.0, np.int8(0), sy, np.int8(0)), want)


def test_fast_path_with_a_narrow_accumulator_still_checks_the_data(backend):
    """acc_bits=16: the type bound fails, the data bound (small values) fits -> the exact path, no overflow."""
    rng = np.random.default_rng(3)
    a, b = rng.integers(0, 4, (5, 12)).astype(np.uint8), rng.integers(-3, 4, (12, 6)).astype(np.int8)
    y, ovf = qlinear_matmul(a, 0.1, np.uint8(0), b, 0.1, np.int8(0), 0.05, np.uint8(100), acc_bits=16,
                            return_overflow=True)
    assert (ovf.events, ovf.outputs) == (0, 0)
    assert_array_equal(y, ref._requant(_acc(a, 0, b, 0), "float", 0.1, 0.1, 0.05, 0, 255, 100).astype(np.uint8))


def test_empty_operands(backend):
    """K = 0 gives acc = 0 (ONNX Runtime would leave such outputs unset); M = 0 and B = 0 give empty outputs."""
    a, b = np.zeros((3, 0), np.uint8), np.zeros((0, 4), np.int8)
    assert_array_equal(qlinear_matmul(a, 0.1, np.uint8(3), b, 0.1, np.int8(0), 0.5, np.uint8(7)), np.full((3, 4), 7))
    assert_array_equal(matmul_integer_rescale(a, 0.1, np.uint8(3), b, 0.1, np.int8(0)), np.zeros((3, 4)))
    y = qlinear_matmul(np.zeros((0, 5), np.uint8), 0.1, np.uint8(3), np.zeros((5, 2), np.int8), 0.1, np.int8(0), 0.5,
                       np.uint8(7))
    assert y.shape == (0, 2)
    x, w = np.zeros((0, 2, 4, 4), np.uint8), np.zeros((3, 2, 3, 3), np.int8)
    assert qlinear_conv(x, 0.1, np.uint8(3), w, 0.1, np.int8(0), 0.5, np.uint8(7)).shape == (0, 3, 2, 2)


# --------------------------------------------------------------------------------------------- QLinearConv
CONVS = [  # (B, C, H, W, Cout, R, S, strides, pads, dilations, group)
    (1, 3, 9, 9, 8, 3, 3, (1, 1), (1, 1, 1, 1), (1, 1), 1),
    (2, 5, 10, 7, 6, 3, 2, (2, 1), (0, 1, 2, 0), (1, 2), 1),
    (1, 6, 12, 12, 4, 5, 5, (3, 2), (1, 2, 0, 1), (2, 1), 1),
    (3, 4, 6, 6, 5, 1, 1, (1, 1), (0, 0, 0, 0), (1, 1), 1),
    (1, 8, 7, 9, 12, 3, 3, (2, 2), (1, 1, 1, 1), (1, 1), 4),  # grouped: the Numba kernel on both backends
]


@pytest.mark.parametrize("case", CONVS)
@pytest.mark.parametrize("tx,tw", PAIRS)
def test_qlinear_conv_bit_exact(backend, case, tx, tw):
    nb, c, h, w_, cout, r, s, st, pads, dil, group = case
    rng = np.random.default_rng(4)
    x, w = _rand(rng, tx, (nb, c, h, w_)), _rand(rng, tw, (cout, c // group, r, s))
    sx, zx, sw, zw = _grid(rng, tx, tw, cout, True)
    bias = rng.integers(-20000, 20000, cout).astype(np.int32)
    acc = _conv_acc(x, zx, w, zw, st, pads, dil, group) + bias[:, None, None]
    for mode in ("float", "fixed_point"):
        info = np.iinfo(tx)
        want = ref._requant(acc.transpose(0, 2, 3, 1), mode, sx, sw, np.float32(9.0), info.min, info.max, int(zx))
        got = qlinear_conv(x, sx, zx, w, sw, zw, np.float32(9.0), zx, bias, st, pads, dil, group, requant=mode)
        assert_array_equal(got, want.transpose(0, 3, 1, 2).astype(tx))


# ------------------------------------------------------------------------------- MatMulInteger/ConvInteger
@pytest.mark.parametrize("ta,tb", PAIRS)
@pytest.mark.parametrize("act", [None, "relu", "relu6"])
def test_matmul_integer_rescale_bit_exact(backend, ta, tb, act):
    rng = np.random.default_rng(5)
    for (m, k, n), per_channel in zip(SHAPES, [True, False, True, False, True]):
        a, b = _rand(rng, ta, (2, m, k)), _rand(rng, tb, (k, n))
        sa, za, sb, zb = _grid(rng, ta, tb, n, per_channel)
        bias = rng.standard_normal(n).astype(np.float32) if per_channel else None
        got = matmul_integer_rescale(a, sa, za, b, sb, zb, bias=bias, act=act)
        assert got.dtype == np.float32
        assert_array_equal(got, _rescale_ref(_acc(a, za, b, zb), sa, sb, bias, act, -1))
    a, b = _rand(rng, ta, (2, 4, 6, 8)), _rand(rng, tb, (2, 4, 8, 6))  # attention: batched b, one call
    got = matmul_integer_rescale(a, np.float32(0.03), ta(1), b, np.float32(0.07), tb(2))
    assert_array_equal(got, _rescale_ref(_acc(a, 1, b, 2), 0.03, 0.07, None, None, -1))


@pytest.mark.parametrize("case", CONVS)
@pytest.mark.parametrize("act", [None, "relu6"])
def test_conv_integer_rescale_bit_exact(backend, case, act):
    nb, c, h, w_, cout, r, s, st, pads, dil, group = case
    rng = np.random.default_rng(6)
    x, w = _rand(rng, np.uint8, (nb, c, h, w_)), _rand(rng, np.int8, (cout, c // group, r, s))
    sw = rng.uniform(0.001, 0.01, cout).astype(np.float32)
    bias = rng.standard_normal(cout).astype(np.float32)
    got = conv_integer_rescale(x, np.float32(0.02), np.uint8(117), w, sw, np.zeros(cout, np.int8), bias, st, pads,
                               dil, group, act=act)
    want = _rescale_ref(_conv_acc(x, 117, w, 0, st, pads, dil, group), 0.02, sw, bias, act, 1)
    assert_array_equal(got, want)


def test_rescale_signed_zeros_match_numpy(backend):
    """An underflowing product gives -0.0: relu maps it to +0.0 (numpy maximum), relu6 keeps it (numpy clip)."""
    a = np.array([[0, 1, 2]], np.uint8).T.copy()  # acc = -1, 0, 1 with b - zb = -1
    b = np.array([[0]], np.uint8)
    for act in (None, "relu", "relu6"):
        got = matmul_integer_rescale(a, np.float32(1e-30), np.uint8(1), b, np.float32(1e-30), np.uint8(1), act=act)
        want = _rescale_ref(_acc(a, 1, b, 1), 1e-30, 1e-30, None, act, -1)
        assert_array_equal(np.signbit(got), np.signbit(want))
        assert_array_equal(got, want)


@pytest.mark.parametrize("bad,match", [
    (dict(act="gelu"), "act"),
    (dict(bias=np.zeros(3, np.float32)), "bias"),
    (dict(bias=np.array([0, np.nan, 0, 0], np.float32)), "NaN"),
    (dict(b=np.zeros((2, 5, 4), np.int8)), "leading dims"),
    (dict(b_scale=np.ones(3, np.float32)), "b_scale"),
])
def test_rescale_validation_errors(bad, match):
    args = dict(a=np.zeros((3, 5), np.uint8), a_scale=0.1, a_zp=np.uint8(0), b=np.zeros((5, 4), np.int8),
                b_scale=0.1, b_zp=np.int8(0))
    args.update(bad)
    with pytest.raises(QuantError, match=match):
        matmul_integer_rescale(**args)


# ------------------------------------------------------------------------------------------ the backend itself
def _saturating_u8s8(a, za, b, zb):
    """x86 AVX2 without VNNI: vpmaddubsw sums pairs of u8*s8 products with int16 saturation."""
    p = a.astype(np.int64)[..., :, :, None] * b.astype(np.int64)[..., None, :, :]
    k = p.shape[-2]
    if k % 2:
        p = np.concatenate([p, np.zeros(p.shape[:-2] + (1, p.shape[-1]), np.int64)], axis=-2)
    pairs = np.clip(p[..., 0::2, :] + p[..., 1::2, :], -32768, 32767)
    raw = pairs.sum(axis=-2)
    za, zb = int(za), np.asarray(zb, np.int64)
    corr = -za * b.astype(np.int64).sum(axis=-2) - zb * a.astype(np.int64).sum(axis=-1)[..., None] + k * za * zb
    return (raw + corr).astype(np.int32)


def _exact(a, za, b, zb):
    return _acc(a, za, b, zb).astype(np.int32)


def test_self_test_rejects_saturating_pair_sums_and_accepts_exact():
    assert not ort_gemm.self_test(_saturating_u8s8, np.uint8, np.int8)
    assert ort_gemm.self_test(_exact, np.uint8, np.int8)
    assert ort_gemm.self_test(_exact, np.uint8, np.uint8)
    assert not ort_gemm.self_test(lambda *args: 1 / 0, np.uint8, np.int8)  # a crashing kernel is not usable


def test_choose_falls_back_to_u8u8_then_to_none():
    runners = {"u8s8": _saturating_u8s8, "u8u8": _exact}
    assert ort_gemm.choose(runners.__getitem__).variant == "u8u8"
    assert ort_gemm.choose(lambda v: _saturating_u8s8) is None

    def missing(_variant):
        raise ImportError("No module named 'onnxruntime'")
    assert ort_gemm.choose(missing) is None


def test_no_backend_runs_numba(monkeypatch):
    monkeypatch.setattr(ort_gemm, "_chosen", [None])
    monkeypatch.setenv(ort_gemm.ENV, "auto")
    assert ort_gemm.backend() is None and ort_gemm.describe() == "numba"
    rng = np.random.default_rng(7)
    a, b = _rand(rng, np.uint8, (5, 7)), _rand(rng, np.int8, (7, 3))
    want = ref._requant(_acc(a, 2, b, 0), "float", 0.1, 0.1, 0.5, 0, 255, 9).astype(np.uint8)
    assert_array_equal(qlinear_matmul(a, 0.1, np.uint8(2), b, 0.1, np.int8(0), 0.5, np.uint8(9)), want)
    monkeypatch.setenv(ort_gemm.ENV, "ort")
    with pytest.raises(QuantError, match="ACCELSIM_GEMM_BACKEND=ort"):
        ort_gemm.backend()


def test_env_switch(monkeypatch):
    monkeypatch.setenv(ort_gemm.ENV, "numba")
    assert ort_gemm.backend() is None
    monkeypatch.setenv(ort_gemm.ENV, "cuda")
    with pytest.raises(QuantError, match="ACCELSIM_GEMM_BACKEND"):
        ort_gemm.backend()
    monkeypatch.setenv(ort_gemm.ENV, "numba")
    with pytest.raises(QuantError, match="no ONNX Runtime backend"):
        ort_gemm.matmul_integer(np.zeros((1, 1), np.uint8), 0, np.zeros((1, 1), np.int8), 0)


@pytest.mark.skipif(not HAVE_ORT, reason="onnxruntime unavailable")
@pytest.mark.parametrize("variant", ["u8s8", "u8u8"])
def test_every_pair_through_each_variant(monkeypatch, variant):
    """The zero-point shifts that map every type pair onto one kernel, for both kernels."""
    monkeypatch.setattr(ort_gemm, "_chosen", [ort_gemm.Backend(variant, ort_gemm._ort_runner(variant))])
    monkeypatch.setenv(ort_gemm.ENV, "auto")
    rng = np.random.default_rng(8)
    for ta, tb in PAIRS + [(np.int8, np.uint8)]:
        a, b = _rand(rng, ta, (2, 6, 33)), _rand(rng, tb, (2, 33, 5))
        za, zb = _rand(rng, ta, ()), _rand(rng, tb, 5)
        assert_array_equal(ort_gemm.matmul_integer(a, za, b, zb), _acc(a, za, b, zb))
        assert_array_equal(ort_gemm.matmul_integer(a[0], za, b[0], zb[0]), _acc(a[0], za, b[0], zb[0]))


def test_model_bytes_parse_as_the_intended_onnx_model():
    """The hand-encoded protobuf is what onnx.helper would build (unranked inputs: onnx's checker wants shapes,
    ONNX Runtime accepts unknown rank, which lets one session serve 2-D and batched operands)."""
    onnx = pytest.importorskip("onnx")
    model = onnx.load_from_string(ort_gemm.model_bytes(np.int8, np.uint8))
    assert (model.ir_version, [(o.domain, o.version) for o in model.opset_import]) == (7, [("", 13)])
    node = model.graph.node[0]
    assert (len(model.graph.node), node.op_type, list(node.input), list(node.output)) == \
        (1, "MatMulInteger", ["a", "b", "za", "zb"], ["y"])
    types = [(i.name, i.type.tensor_type.elem_type, i.type.tensor_type.HasField("shape"))
             for i in list(model.graph.input) + list(model.graph.output)]
    T = onnx.TensorProto
    assert types == [("a", T.INT8, False), ("b", T.UINT8, False), ("za", T.INT8, False), ("zb", T.UINT8, False),
                     ("y", T.INT32, False)]


def test_requant_float32_equals_requant_float():
    """The exact path's 32-bit requantization against the reference one, on ties, float32 rounding of |acc| > 2**24,
    both clamps and the int32 extremes."""
    from accelsim.kernels.epilogue import requant_float32
    from accelsim.kernels.requant import requant_float

    accs = [0, 1, -1, 3, -3, 2**24 + 1, -(2**24) - 3, 2**25 + 2**17 + 1, 2**31 - 1, -(2**31), 12345, -98765]
    for m in (np.float32(0.5), np.float32(2.0**-18), np.float32(0.0371), np.float32(1.0)):
        for zp, qmin, qmax in ((128, 0, 255), (0, -128, 127), (-3, -8, 7)):
            lo, hi = np.float32(qmin - zp), np.float32(qmax - zp)
            for acc in accs:
                assert requant_float32(acc, m, lo, hi, np.int32(zp)) == requant_float(acc, m, lo, hi, zp)


# ------------------------------------------------------------------------- the fused QLinearMatMul (plain case)
def _fused_with(requant):
    """A fused runner in plain numpy: exact accumulation, then ``requant(acc, mult, zy)`` → float."""
    def run(a, za, b, mult, zb, zy):
        acc = np.matmul(a.astype(np.int64) - int(za), b.astype(np.int64) - zb.astype(np.int64))
        f = np.clip(requant(acc, mult), np.float32(-int(zy)), np.float32(255 - int(zy)))
        return (np.rint(f) if requant is not _half_away else f).astype(np.int64).__add__(int(zy)).astype(np.uint8)
    return run


def _half_away(acc, mult):      # wrong on ties: rounds half away from zero (applied before the clamp here)
    f = acc.astype(np.float32) * mult
    return np.sign(f) * np.floor(np.abs(f) + np.float32(0.5))


def test_fused_self_test_accepts_exact_and_rejects_near_misses():
    assert ort_gemm.fused_self_test(_fused_with(lambda acc, m: acc.astype(np.float32) * m))
    assert not ort_gemm.fused_self_test(_fused_with(_half_away))
    assert not ort_gemm.fused_self_test(_fused_with(lambda acc, m: acc * np.float64(m)))   # float64 above 2**24
    assert not ort_gemm.fused_self_test(_saturating_fused)
    assert not ort_gemm.fused_self_test(lambda *args: 1 / 0)


def _saturating_fused(a, za, b, mult, zb, zy):
    """MLAS's plain-AVX2 uint8 × int8 kernel: int16 pair sums saturate."""
    acc = _saturating_u8s8(a, int(za), b, zb.astype(np.int64))
    return np.clip(np.rint(np.clip(acc.astype(np.float32) * mult, -int(zy), 255 - int(zy))) + int(zy), 0,
                   255).astype(np.uint8)


FUSED_TYPES = [(np.uint8, np.int8, np.uint8), (np.int8, np.int8, np.int8), (np.uint8, np.uint8, np.uint8),
               (np.int8, np.uint8, np.int8), (np.uint8, np.int8, np.int8), (np.int8, np.int8, np.uint8)]


@pytest.mark.skipif(not HAVE_ORT, reason="onnxruntime unavailable")
@pytest.mark.parametrize("ta,tb,ty", FUSED_TYPES)
@pytest.mark.parametrize("per_channel", [False, True])
def test_fused_path_bit_exact(monkeypatch, ta, tb, ty, per_channel):
    """The plain case runs on ONNX Runtime's QLinearMatMul (when its self-test passed) and equals the reference:
    every type pair and output type, 2-D and batched ``a``, per-tensor and per-column grids, K up to 700; the
    caller's operands are left as they were."""
    monkeypatch.setenv(ort_gemm.ENV, "auto")
    if ort_gemm.fused() is None:
        pytest.skip("the fused kernel failed its self-test here: the general path runs")
    rng = np.random.default_rng(11)
    for shape in [(1, 1, 1), (3, 17, 5), (40, 700, 19), (2, 3, 7, 9, 5)]:
        a, b = _rand(rng, ta, shape[:-1]), _rand(rng, tb, shape[-2:])
        a0, b0 = a.copy(), b.copy()
        sa, za, sb, zb = _grid(rng, ta, tb, shape[-1], per_channel)
        sy, zy = np.float32(rng.uniform(0.5, 40)), _rand(rng, ty, ())
        assert ort_gemm.qlinear_matmul(a, sa, za, b, sb, zb, sy, zy) is not None
        info = np.iinfo(ty)
        want = ref._requant(_acc(a, za, b, zb), "float", sa, sb, sy, info.min, info.max, int(zy)).astype(ty)
        y, ovf = qlinear_matmul(a, sa, za, b, sb, zb, sy, zy, return_overflow=True)
        assert y.dtype == ty and ovf.events == 0
        assert_array_equal(y, want)
        assert_array_equal(a, a0) and assert_array_equal(b, b0)


def test_fused_path_declines_what_it_does_not_cover(monkeypatch):
    """None (the general path) for everything outside the plain case; the general path's errors still raise."""
    monkeypatch.setenv(ort_gemm.ENV, "auto")
    rng = np.random.default_rng(12)
    a, b = _rand(rng, np.uint8, (4, 6)), _rand(rng, np.int8, (6, 3))
    ok = (a, 0.1, np.uint8(3), b, 0.2, np.int8(0), 0.5, np.uint8(7))
    q = ort_gemm.qlinear_matmul
    for i, bad in [(0, a.astype(np.int16)), (0, a.tolist()), (3, b[:, None]), (3, b.astype(np.int32)),
                   (2, 3), (2, np.int8(3)), (5, np.uint8(0)), (7, np.int16(7)), (1, -0.1), (1, np.inf), (1, 1e39),
                   (4, np.zeros(3, np.float32)), (4, np.ones(2, np.float32)), (6, 0), (5, np.zeros(2, np.int8))]:
        args = list(ok)
        args[i] = bad
        assert q(*args) is None, (i, bad)
    assert q(*ok[:3], np.zeros((0, 3), np.int8), *ok[4:]) is None                        # K = 0
    assert q(np.zeros((2, ort_gemm.K_MAX + 1), np.uint8), *ok[1:3], np.zeros((ort_gemm.K_MAX + 1, 1), np.int8),
             *ok[4:]) is None                                                           # partial sums could overflow
    assert q(a, 3e38, np.uint8(3), b, 3e38, np.int8(0), 1e-30, np.uint8(7)) is None     # multiplier overflows
    with pytest.raises(QuantError):
        qlinear_matmul(a, 3e38, np.uint8(3), b, 3e38, np.int8(0), 1e-30, np.uint8(7))
    with pytest.raises(QuantError):
        qlinear_matmul(a, -0.1, np.uint8(3), b, 0.2, np.int8(0), 0.5, np.uint8(7))
    monkeypatch.setenv(ort_gemm.ENV, "numba")
    assert q(*ok) is None


def test_qlinear_model_bytes_parse_as_the_intended_onnx_model():
    onnx = pytest.importorskip("onnx")
    model = onnx.load_from_string(ort_gemm.qlinear_model_bytes(np.uint8, np.int8, np.uint8))
    node = model.graph.node[0]
    assert (node.op_type, list(node.input)) == ("QLinearMatMul", ["a", "sa", "za", "b", "sb", "zb", "sy", "zy"])
    T = onnx.TensorProto
    assert [i.type.tensor_type.elem_type for i in model.graph.input] == \
        [T.UINT8, T.FLOAT, T.UINT8, T.INT8, T.FLOAT, T.INT8, T.FLOAT, T.UINT8]
    assert model.graph.output[0].type.tensor_type.elem_type == T.UINT8
