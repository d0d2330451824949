"""API fuzz cases for the public ``accelsim.quant`` functions: hypothesis strategies that mix valid arguments with
wrong dtypes (byte-swapped included), shapes (0-d and empty included), NaN/Inf, bad scales, zero points and bin
counts, plus a checker per function that recomputes a valid call's result independently.

Outcome classes (:func:`run_call`): ``ok`` (returned, and the checker agrees), ``error`` (raised an
:class:`~accelsim.errors.AccelsimError`: QuantError/ConfigError), ``raw`` (any other exception, including a
numpy RuntimeWarning/ComplexWarning or UserWarning escaping library code, which are turned into errors here),
``wrong`` (returned a result the checker refutes).
"""
from __future__ import annotations

import math
import traceback
import warnings

import numpy as np
import reference_quant as ref
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from accelsim.errors import AccelsimError
from accelsim import quant as Q

BAD = {"raw", "wrong"}
QTYPES = {"int4": (4, True, np.int8), "uint4": (4, False, np.uint8), "int8": (8, True, np.int8),
          "uint8": (8, False, np.uint8), "int16": (16, True, np.int16), "uint16": (16, False, np.uint16)}


def chance(p: float):
    """True with probability about ``p``; the simplest draw gives True only for p > 1/2 (see cli_cases)."""
    return st.integers(0, 996).map(lambda v: (v * 7919 + 498) % 997 < 997 * p)


def f32(values) -> np.ndarray:
    with np.errstate(over="ignore"):
        return np.array(values, np.float32)


def run_call(fn, args, kwargs, check) -> tuple[str, str]:
    """Call ``fn`` with numeric warnings as errors; classify; run ``check(result)`` on a return."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", RuntimeWarning)
            warnings.simplefilter("error", UserWarning)
            result = fn(*args, **kwargs)
    except AccelsimError as exc:
        if not str(exc) or len(str(exc)) > 2000:
            return "wrong", f"error message of {len(str(exc))} characters"
        return "error", ""
    except Exception:   # noqa: BLE001 - the very thing we look for
        return "raw", traceback.format_exc(limit=-2)[-1500:]
    try:
        with np.errstate(all="ignore"):
            check(result)
    except AssertionError as exc:
        return "wrong", f"{exc}"[:1500]
    return "ok", ""


# ------------------------------------------------------------------------------------------------ values
def _shape(max_dims=3, max_side=5):
    return st.lists(st.integers(0, max_side), min_size=0, max_size=max_dims).map(tuple)


finite32 = st.floats(-1e6, 1e6, allow_nan=False, width=32)
wild_float = st.one_of(st.floats(allow_nan=True, allow_infinity=True),
                       st.sampled_from([0.0, -0.0, 1e-30, 1e30, 3e38, 1e300, -1e300, 5e-324, 1e-45, 65504.0]))


@st.composite
def float_array(draw, shape=None, wild=0.1):
    shape = draw(_shape()) if shape is None else shape
    dtype = draw(st.sampled_from(["float32"] * 6 + ["float64", "float16", ">f4", ">f8"]))
    elements = st.one_of(finite32, wild_float) if draw(chance(wild)) else finite32
    scale = 10.0 ** draw(st.integers(-30, 30)) if draw(chance(0.2)) else 1.0
    with np.errstate(all="ignore"):
        return (draw(hnp.arrays(np.float64, shape, elements=elements)) * scale).astype(dtype)


def junk():
    return st.sampled_from([None, "a", [1, [2, 3]], np.array(["x"]), np.array([1 + 2j]), np.array([True]),
                            np.array([1.0], dtype=object), {"a": 1}, 3 + 4j, b"\x00"])


scale_value = st.one_of(st.floats(1e-6, 1e3), st.floats(1e-6, 1e3), wild_float, st.just(-1.0), st.just(0.0))


def _per_axis(shape, axis):
    if axis is None or not shape:
        return None
    ax = axis % len(shape) if -len(shape) <= axis < len(shape) else None
    return ax


# ------------------------------------------------------------------------------------------------ targets
@st.composite
def quantize_linear_case(draw):
    x = draw(float_array()) if draw(chance(0.9)) else draw(st.one_of(junk(), hnp.arrays(np.int32, (3,))))
    shape = getattr(x, "shape", ())
    axis = draw(st.one_of(st.none(), st.integers(-4, 4), st.just(True))) if draw(chance(0.5)) else None
    ax = _per_axis(shape, 1 if axis is None else axis)
    n = shape[ax] if ax is not None and not isinstance(axis, bool) else None
    per = n is not None and draw(chance(0.5))
    dtype = draw(st.sampled_from([None, None, "int4", "uint4", "int8", "uint8", "int16", "uint16", np.int8,
                                  "float32", "bogus", np.dtype(">i2")]))
    if per:
        scale = f32([draw(scale_value) for _ in range(n + draw(st.sampled_from([0, 0, 0, 1])))])
    else:
        scale = draw(st.one_of(scale_value, st.just(np.float32(0.5)), junk())) if draw(chance(0.95)) else \
            np.ones((2, 2), np.float32)
    zp = None
    if draw(chance(0.5)):
        bits, signed, cdt = QTYPES.get(dtype if isinstance(dtype, str) else "uint8", (8, False, np.uint8))
        lo, hi = ref_range(bits, signed)
        zdt = draw(st.sampled_from([cdt, cdt, cdt, np.int32, np.uint8, np.int8]))
        info = np.iinfo(zdt)
        vals = [draw(st.integers(max(lo - 2, info.min), min(hi + 2, info.max))) for _ in range(n if per else 1)]
        zp = np.array(vals, dtype=zdt) if per else zdt(vals[0])
    return Q.quantize_linear, (x, scale, zp, axis, dtype), {}


def ref_range(bits, signed):
    return (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)


def _resolve(dtype, zp):
    if dtype is None:
        if zp is None:
            return QTYPES["uint8"]
        return QTYPES[np.asarray(zp).dtype.name]
    key = dtype if isinstance(dtype, str) else np.dtype(dtype).name
    return QTYPES[key]


def check_quantize_linear(args):
    x, scale, zp, axis, dtype = args

    def check(q):
        bits, signed, cdt = _resolve(dtype, zp)
        x32 = np.asarray(x).astype(np.float32)
        assert not np.isnan(x32).any(), "NaN input was quantized"
        s = np.asarray(scale, np.float32)
        assert np.all(np.isfinite(s)) and np.all(s > 0), f"bad scale accepted: {s}"
        per = s.ndim == 1 and not (s.size == 1 and axis is None)
        ax = (1 if axis is None else axis) % x32.ndim if per else None
        z = np.zeros(s.size, np.int64) if zp is None else np.asarray(zp).astype(np.int64).reshape(-1)
        lo, hi = ref_range(bits, signed)
        want = ref.quantize_linear(x32, s.reshape(-1), np.broadcast_to(z, (s.size,)) if per else z[0],
                                   ax, lo, hi, cdt)
        assert q.shape == x32.shape and q.dtype == np.dtype(cdt), f"shape/dtype {q.shape} {q.dtype}"
        np.testing.assert_array_equal(q, want.reshape(x32.shape))
    return check


@st.composite
def dequantize_linear_case(draw):
    dt = draw(st.sampled_from(["uint8", "int8", "int16", "uint16", ">i2", "int32", "float32"]))
    shape = draw(_shape())
    if np.dtype(dt).kind == "f":
        x = np.zeros(shape, dt)
    else:
        info = np.iinfo(np.dtype(dt))
        x = draw(hnp.arrays(np.dtype(dt).newbyteorder("="), shape, elements=st.integers(info.min, info.max)))
        x = x.astype(dt)
    if draw(chance(0.1)):
        x = x.reshape(-1)[:1].reshape(()) if x.size else x
        if draw(chance(0.5)) and x.size:
            x = x.reshape(-1)[0]   # a numpy scalar
    axis = draw(st.one_of(st.none(), st.integers(-3, 3))) if draw(chance(0.4)) else None
    n = np.shape(x)[axis] if np.ndim(x) and axis is not None and -np.ndim(x) <= axis < np.ndim(x) else None
    per = n is not None and draw(chance(0.6))
    scale = f32([draw(scale_value) for _ in range(n)]) if per else draw(
        st.one_of(scale_value, junk()) if draw(chance(0.95)) else st.just(np.ones((2, 1))))
    zp = None
    if draw(chance(0.5)) and np.dtype(dt).kind in "iu":
        info = np.iinfo(np.dtype(dt))
        vals = [draw(st.integers(info.min, info.max)) for _ in range(n if per else 1)]
        zp = np.array(vals, np.dtype(dt)) if per else np.dtype(dt).type(vals[0])
    dtype = draw(st.sampled_from([None, None, None, "int4", "uint4", "int8", "bogus"]))
    return Q.dequantize_linear, (x, scale, zp, axis, dtype), {}


def check_dequantize_linear(args):
    x, scale, zp, axis, dtype = args

    def check(y):
        q = np.asarray(x)
        assert q.dtype.isnative, "byte-swapped input accepted"
        s = np.asarray(scale, np.float32)
        assert np.all(np.isfinite(s)) and np.all(s > 0), f"bad scale accepted: {s}"
        if dtype in ("int4", "uint4") and q.size:
            lo, hi = ref_range(4, dtype == "int4")
            assert lo <= q.min() and q.max() <= hi, "out-of-range 4-bit values accepted"
        per = s.ndim == 1 and not (s.size == 1 and axis is None)
        ax = (1 if axis is None else axis) % q.ndim if per else None
        z = np.zeros(s.size, np.int64) if zp is None else np.asarray(zp).astype(np.int64).reshape(-1)
        want = ref.dequantize_linear(q, s.reshape(-1) if per else s.reshape(-1)[0], z if per else z[0], ax)
        assert y.shape == q.shape and y.dtype == np.float32
        np.testing.assert_array_equal(y, np.asarray(want, np.float32).reshape(q.shape))
    return check


specs = st.builds(lambda b, s, y, nr: (b, s, y, nr), st.one_of(st.integers(2, 16), st.sampled_from([1, 17, True])),
                  st.booleans(), st.booleans(), st.sampled_from([None, None, True, False]))


def _spec(draw, channel=False):
    b, s, y, nr = draw(specs)
    try:
        return Q.QuantSpec(b, s, y, "channel" if channel else "tensor", 0 if channel else None, nr)
    except AccelsimError:
        return Q.QuantSpec(8, s, y, "channel" if channel else "tensor", 0 if channel else None)


range_value = st.one_of(finite32, wild_float, st.integers(-(2 ** 70), 2 ** 70))


@st.composite
def qparams_case(draw):
    channel = draw(chance(0.3))
    spec = _spec(draw, channel)
    if channel:
        n = draw(st.integers(0, 4))
        lo = np.array([draw(range_value) for _ in range(n)]) if draw(chance(0.9)) else draw(junk())
        hi = np.array([draw(range_value) for _ in range(n + draw(st.sampled_from([0, 0, 0, 1])))])
    else:
        lo, hi = (draw(range_value) if draw(chance(0.93)) else draw(junk())), draw(range_value)
    if draw(chance(0.6)) and not channel and isinstance(lo, (int, float)) and isinstance(hi, (int, float)):
        lo, hi = sorted([lo, hi], key=lambda v: (v != v, v))
    return Q.qparams_from_range, (lo, hi, spec if draw(chance(0.97)) else "spec"), {}


def check_qparams(args):
    rmin, rmax, spec = args

    def check(p):
        lo = np.minimum(np.asarray(rmin, np.float64).astype(np.float32), 0)
        hi = np.maximum(np.asarray(rmax, np.float64).astype(np.float32), 0)
        s, z = p.scale.astype(np.float64), p.zero_point.astype(np.int64)
        assert np.all(np.isfinite(lo)) and np.all(np.isfinite(hi)) and np.all(lo <= hi), "bad range accepted"
        assert np.all(np.isfinite(s)) and np.all(s > 0), "bad scale"
        assert np.all(z >= spec.qmin) and np.all(z <= spec.qmax), "zero point out of range"
        assert p.scale.shape == np.shape(lo), "per-channel shape"
        if spec.symmetric:
            lo = hi = np.maximum(-lo, hi)
            lo = -lo
        degenerate = (hi.astype(np.float64) - lo) / (spec.qmax - spec.qmin) < np.finfo(np.float32).tiny
        for r in (lo, hi):   # each end of the range quantizes within one step (float32 rounding of the scale)
            q = np.clip(np.rint(r.astype(np.float64) / s) + z, spec.qmin, spec.qmax)
            err = np.abs((q - z) * s - r)
            assert np.all(degenerate | (err <= s * 1.001)), f"range end {r} off by {err} (scale {s})"
    return check


@st.composite
def quantize_bias_case(draw):
    n = draw(st.integers(0, 5))
    bias = draw(float_array(shape=(n,), wild=0.1)) if draw(chance(0.9)) else draw(
        st.one_of(junk(), float_array(shape=(2, 2))))
    xs = draw(st.one_of(scale_value, st.sampled_from([1e-30, 1e-20, np.float32(0.02), np.array([0.1])]))) \
        if draw(chance(0.95)) else draw(st.one_of(junk(), st.just(np.ones((2, 2)))))
    ws = draw(scale_value) if draw(chance(0.5)) else np.array(
        [draw(st.one_of(scale_value, st.just(1e-30))) for _ in range(n + draw(st.sampled_from([0, 0, 0, 1])))])
    return Q.quantize_bias, (bias, xs, ws), {}


def check_quantize_bias(args):
    bias, xs, ws = args

    def check(q):
        b = np.asarray(bias).astype(np.float32)
        prod = np.float32(np.asarray(xs, np.float32).reshape(-1)[0]) * np.asarray(ws, np.float32)
        assert np.all(np.isfinite(b)), "non-finite bias accepted"
        assert np.all(prod > 0) and np.all(np.isfinite(prod)), f"scale product {prod} accepted"
        want = np.clip(np.rint(b / prod).astype(np.float64), -(2 ** 31), 2 ** 31 - 1).astype(np.int32)
        assert q.dtype == np.int32 and q.shape == b.shape
        np.testing.assert_array_equal(q, want)
    return check


@st.composite
def batch(draw):
    kind = draw(st.sampled_from(["normal", "normal", "positive", "far", "const", "spike", "zeros", "tiny", "huge",
                                 "int", "empty", "nan"]))
    n = draw(st.integers(1, 300))
    rng = np.random.default_rng(draw(st.integers(0, 2 ** 32 - 1)))
    scale = 10.0 ** draw(st.integers(-8, 8))
    x = {"normal": lambda: rng.standard_normal(n) * scale, "positive": lambda: np.abs(rng.standard_normal(n)) * scale,
         "far": lambda: (100 + rng.random(n)) * scale, "const": lambda: np.full(n, draw(finite32)),
         "spike": lambda: np.concatenate([np.zeros(n), [draw(finite32)]]), "zeros": lambda: np.zeros(n),
         "tiny": lambda: rng.standard_normal(n) * 1e-30, "huge": lambda: rng.standard_normal(n) * 1e37,
         "int": lambda: rng.integers(-5, 300, n), "empty": lambda: np.zeros(0),
         "nan": lambda: np.where(rng.random(n) < 0.1, np.nan, rng.standard_normal(n))}[kind]()
    dtype = draw(st.sampled_from(["float32", "float32", "float64", "float16"])) if x.dtype.kind == "f" else x.dtype
    with np.errstate(all="ignore"):
        x = x.astype(dtype)
    return x.reshape(draw(st.sampled_from([(-1,), (1, -1), (-1, 1)]))) if x.size else x


@st.composite
def calibrate_case(draw):
    batches = draw(st.lists(batch(), min_size=1, max_size=4)) if draw(chance(0.95)) else draw(
        st.one_of(junk(), st.just([]), st.just(np.ones(3))))
    method = draw(st.sampled_from(list(Q.METHODS) + ["histogram", 3]))
    kw = {"symmetric": draw(st.booleans()) if draw(chance(0.95)) else "yes"}
    if draw(chance(0.2)):
        kw["num_bins"] = draw(st.sampled_from([1, 2, 16, 127, 128, 256, 4096, 16384, 16385, 10 ** 6, 2.5]))
    if draw(chance(0.15)):
        kw["num_quantized_bins"] = draw(st.sampled_from([1, 2, 16, 128, 255, 4096]))
    if method == "percentile" and draw(chance(0.5)):
        kw["percentile"] = draw(st.one_of(st.floats(0, 100), st.sampled_from([-1, 101, float("nan"), "x"])))
    if draw(chance(0.3)):
        kw["nan_policy"] = draw(st.sampled_from(["ignore", "raise", "bogus"]))
    once = draw(chance(0.3)) and isinstance(batches, list)
    return Q.calibrate, (iter(batches) if once else batches, method), kw, batches


def check_calibrate(batches, method, kw):
    def check(r):
        lo, hi = r
        data = np.concatenate([np.asarray(b).astype(np.float32).reshape(-1) for b in batches])
        data = data[np.isfinite(data)]
        assert isinstance(lo, float) and isinstance(hi, float), f"types {type(lo)}, {type(hi)}"
        assert math.isfinite(lo) and math.isfinite(hi) and lo <= 0 <= hi, f"range ({lo}, {hi})"
        amax = float(np.abs(data).max()) if data.size else 0.0
        dmin, dmax = float(min(data.min(), 0)), float(max(data.max(), 0))
        tol = 1e-6 * amax
        if kw.get("symmetric"):   # Percentile clamps (-a, a) to the data's [min, max], as ONNX Runtime does
            assert (lo == -hi or method == "percentile") and -amax - tol <= lo and hi <= amax + tol, \
                f"symmetric range ({lo}, {hi}), max|x| {amax}"
        else:
            assert lo >= dmin - tol and hi <= dmax + tol, f"({lo}, {hi}) beyond the data [{dmin}, {dmax}]"
        if method == "minmax":
            want = (-amax, amax) if kw.get("symmetric") else (dmin, dmax)
            assert (lo, hi) == want, f"minmax ({lo}, {hi}) != {want}"
        if method in ("kl", "entropy", "mse") and data.size:
            w = 2 * amax / kw.get("num_bins", 2048) + tol
            inside = np.mean((data >= lo - w) & (data <= hi + w))
            assert inside >= 0.5, f"({lo}, {hi}) holds only {inside:.0%} of the data"
    return check


@st.composite
def weight_qparams_case(draw):
    channel = draw(chance(0.6))
    spec = _spec(draw, channel)
    w = draw(float_array(shape=draw(st.lists(st.integers(0, 4), min_size=0, max_size=3).map(tuple)), wild=0.05))
    bias = x_scale = None
    kw = {}
    if draw(chance(0.6)):
        cout = w.shape[0] if w.ndim else 1
        bias = draw(float_array(shape=(cout + draw(st.sampled_from([0, 0, 0, 1])),), wild=0.05))
        x_scale = draw(st.one_of(scale_value, st.just(1e-30)))
        if draw(chance(0.3)):
            kw["acc_bits"] = draw(st.sampled_from([8, 16, 24, 32, 64, 4, 65, 32.0]))
    return Q.weight_qparams, (w, spec, bias, x_scale), kw


def check_weight_qparams(args, kw):
    w, spec, bias, x_scale = args

    def check(p):
        s = p.scale.astype(np.float64)
        assert np.all(np.isfinite(s)) and np.all(s > 0) and np.all(p.zero_point >= spec.qmin) \
            and np.all(p.zero_point <= spec.qmax)
        if bias is not None:
            need = np.abs(np.asarray(bias, np.float64)) / (float(np.float32(x_scale)) * s)
            assert np.all(need <= 2.0 ** (kw.get("acc_bits", 32) - 2) * (1 + 1e-5)), "bias headroom"
    return check


@st.composite
def qdq_case(draw):
    spec = _spec(draw, draw(chance(0.3)))
    x = draw(float_array())
    if spec.granularity == "channel":
        n = x.shape[0] if x.ndim else 1
        lo = np.array([draw(finite32) for _ in range(n)], np.float32)
        hi = np.maximum(lo, np.array([draw(finite32) for _ in range(n)], np.float32))
    else:
        lo, hi = sorted([draw(finite32), draw(finite32)])
    try:
        params = Q.qparams_from_range(lo, hi, spec)
    except AccelsimError:
        params = Q.qparams_from_range(-1.0, 1.0, Q.QuantSpec())
    return (lambda x, p: Q.dequantize(Q.quantize(x, p))), (x, params), {}


def check_qdq(args):
    x, p = args

    def check(y):
        x32 = np.asarray(x).astype(np.float32)
        assert not np.isnan(x32).any() and y.shape == x32.shape and y.dtype == np.float32
        ax = None if p.spec.granularity == "tensor" else p.spec.axis % x32.ndim
        q = ref.quantize_linear(x32, p.scale.reshape(-1), p.zero_point.reshape(-1) if ax is not None else
                                int(p.zero_point), ax, p.spec.qmin, p.spec.qmax, p.spec.dtype)
        want = ref.dequantize_linear(q, p.scale.reshape(-1) if ax is not None else p.scale,
                                     p.zero_point.reshape(-1) if ax is not None else int(p.zero_point), ax)
        np.testing.assert_array_equal(y, np.asarray(want, np.float32).reshape(x32.shape))
    return check


@st.composite
def int4_case(draw):
    signed = draw(st.booleans())
    lo, hi = (-8, 7) if signed else (0, 15)
    hi = hi + 1 if draw(chance(0.1)) else hi   # sometimes a value outside the 4-bit range
    q = np.array(draw(st.lists(st.integers(lo, hi), max_size=9)), np.int8 if signed else np.uint8)
    count = q.size if draw(chance(0.9)) else draw(st.sampled_from([-1, q.size + 2, 2.5, True]))
    return (lambda q, count, signed: Q.unpack_int4(Q.pack_int4(q), count, signed)), (q, count, signed), {}


def check_int4(args):
    q, count, signed = args

    def check(u):
        np.testing.assert_array_equal(u, q[:count])
        np.testing.assert_array_equal(ref.unpack_int4(ref.pack_int4(q), count, signed), u)
    return check


@st.composite
def qlinear_matmul_case(draw):
    m, k, n = draw(st.integers(0, 4)), draw(st.integers(0, 6)), draw(st.integers(1, 4))
    adt, bdt, ydt = (draw(st.sampled_from([np.uint8, np.int8])) for _ in range(3))
    a = draw(hnp.arrays(adt, (m, k)))
    b = draw(hnp.arrays(bdt, (k, n)))
    sa, sy = draw(st.floats(1e-4, 10)), draw(st.floats(1e-4, 10))
    sb = draw(st.floats(1e-4, 10)) if draw(chance(0.5)) else np.array([draw(st.floats(1e-4, 10)) for _ in range(n)],
                                                                      np.float32)
    za, zb, zy = (t(draw(st.integers(np.iinfo(t).min, np.iinfo(t).max))) for t in (adt, bdt, ydt))
    kw = {"requant": draw(st.sampled_from(["float", "fixed_point"])), "acc_bits": draw(st.sampled_from([32, 16, 24])),
          "overflow": draw(st.sampled_from(["wrap", "saturate"]))}
    if draw(chance(0.4)):
        kw["bias"] = np.array([draw(st.integers(-(2 ** 20), 2 ** 20)) for _ in range(n)], np.int32)
    args = [a, sa, za, b, sb, zb, sy, zy]
    if draw(chance(0.15)):   # one wild argument
        i = draw(st.integers(0, 7))
        args[i] = draw(st.one_of(junk(), wild_float, st.just(np.zeros(3, np.float32))))
    return Q.qlinear_matmul, tuple(args), kw


def check_qlinear_matmul(args, kw):
    a, sa, za, b, sb, zb, sy, zy = args

    def check(y):
        ydt = np.asarray(zy).dtype
        lo, hi = ref_range(8, ydt.kind == "i")
        want, _, _ = ref.qlinear_matmul(a, np.float32(sa), za, b, sb, zb, np.float32(sy), zy, ydt, lo, hi,
                                        kw.get("bias"), kw["requant"].replace("fixed_point", "fixed"), kw["acc_bits"],
                                        kw["overflow"] == "saturate")
        np.testing.assert_array_equal(y, want)
    return check


@st.composite
def qlinear_conv_case(draw):
    nb, c, g = draw(st.integers(1, 2)), draw(st.integers(1, 3)), draw(st.sampled_from([1, 1, 2]))
    c *= g
    cout = g * draw(st.integers(1, 2))
    r, s = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    h, wd = draw(st.integers(1, 5)), draw(st.integers(1, 5))
    x = draw(hnp.arrays(np.uint8, (nb, c, h, wd)))
    w = draw(hnp.arrays(np.int8, (cout, c // g, r, s)))
    geo = {"strides": (draw(st.integers(1, 2)), draw(st.integers(1, 2))),
           "pads": tuple(draw(st.integers(0, 2)) for _ in range(4)),
           "dilations": (draw(st.integers(1, 2)), draw(st.integers(1, 2))), "group": g}
    if draw(chance(0.15)):
        key = draw(st.sampled_from(sorted(geo)))
        geo[key] = draw(st.sampled_from([(0, 1), (1.5, 1), (1, 2, 3), "x", 10 ** 9, (10 ** 9, 1), -1, None]))
    ws = np.array([draw(st.floats(1e-4, 1)) for _ in range(cout)], np.float32)
    args = (x, np.float32(0.05), np.uint8(draw(st.integers(0, 255))), w, ws, np.int8(0), np.float32(0.1),
            np.uint8(draw(st.integers(0, 255))))
    return Q.qlinear_conv, args, geo


def check_qlinear_conv(args, kw):
    x, sx, zx, w, sw, zw, sy, zy = args

    def check(y):
        want, _, _ = ref.qlinear_conv(x, sx, zx, w, sw, zw, sy, zy, np.uint8, 0, 255, None, kw["strides"], kw["pads"],
                                      kw["dilations"], kw["group"])
        np.testing.assert_array_equal(y, want)
    return check


@st.composite
def rescale_case(draw):
    m, k, n = draw(st.integers(1, 4)), draw(st.integers(1, 6)), draw(st.integers(1, 4))
    a, b = draw(hnp.arrays(np.uint8, (m, k))), draw(hnp.arrays(np.int8, (k, n)))
    sa = draw(st.one_of(st.floats(1e-4, 10), wild_float)) if draw(chance(0.9)) else draw(junk())
    sb = np.array([draw(st.floats(1e-4, 10)) for _ in range(n)], np.float32)
    bias = np.array([draw(finite32) for _ in range(n)], np.float32) if draw(chance(0.5)) else None
    act = draw(st.sampled_from([None, "relu", "relu6", "gelu"]))
    return Q.matmul_integer_rescale, (a, sa, np.uint8(draw(st.integers(0, 255))), b, sb, np.int8(0)), \
        {"bias": bias, "act": act}


def check_rescale(args, kw):
    a, sa, za, b, sb, zb = args

    def check(y):
        acc = (a.astype(np.int64) - int(za)) @ (b.astype(np.int64) - int(zb))
        m = np.float32(sa) * sb
        want = acc.astype(np.float32) * m + (np.float32(-0.0) if kw["bias"] is None else kw["bias"])
        if kw["act"] == "relu":
            want = np.maximum(want, np.float32(0))
        elif kw["act"] == "relu6":
            want = np.minimum(np.maximum(want, np.float32(0)), np.float32(6))
        np.testing.assert_allclose(y, want, rtol=1e-6, atol=0)
    return check


@st.composite
def sqnr_case(draw):
    shape = draw(_shape(2, 6))
    r = draw(float_array(shape=shape, wild=0.1))
    t = draw(float_array(shape=shape if draw(chance(0.9)) else (7,), wild=0.1))
    return Q.sqnr_db, (r, t), {}


def check_sqnr(args):
    def check(v):
        assert isinstance(v, float) and not math.isnan(v), f"sqnr {v!r}"
    return check


# (name, case strategy, checker factory taking (args, kwargs))
TARGETS = {
    "quantize_linear": (quantize_linear_case(), lambda a, k: check_quantize_linear(a)),
    "dequantize_linear": (dequantize_linear_case(), lambda a, k: check_dequantize_linear(a)),
    "qparams_from_range": (qparams_case(), lambda a, k: check_qparams(a)),
    "quantize_bias": (quantize_bias_case(), lambda a, k: check_quantize_bias(a)),
    "weight_qparams": (weight_qparams_case(), lambda a, k: check_weight_qparams(a, k)),
    "quantize_dequantize": (qdq_case(), lambda a, k: check_qdq(a)),
    "pack_unpack_int4": (int4_case(), lambda a, k: check_int4(a)),
    "qlinear_matmul": (qlinear_matmul_case(), check_qlinear_matmul),
    "qlinear_conv": (qlinear_conv_case(), check_qlinear_conv),
    "matmul_integer_rescale": (rescale_case(), check_rescale),
    "sqnr_db": (sqnr_case(), lambda a, k: check_sqnr(a)),
}
