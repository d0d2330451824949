"""Optional exact integer GEMM backend: ONNX Runtime's MLAS through a one-node ``MatMulInteger`` session.

:func:`matmul_integer` returns the exact int32 ``acc[..., i, j] = sum_k (a[..., i, k] - a_zp) * (b[..., k, j] -
b_zp[j])`` for any uint8/int8 pair. Every pair is mapped onto ONE kernel with zero-point shifts that leave each
difference unchanged: an int8 operand becomes uint8 by ``a ^ 0x80 = a + 128`` with ``zp + 128``, a uint8 one
becomes int8 by ``b ^ 0x80 = b - 128`` with ``zp - 128``. The kernel ("variant") is chosen once, at first use,
by a self-test against exact int64 numpy (:func:`self_test`): MLAS's uint8 x int8 kernel is exact with AVX-VNNI /
AVX512-VNNI and on ARM but saturates int16 pair sums (``vpmaddubsw``) on plain AVX2, so the candidates are tried
fastest first: ``u8s8``, then ``u8u8`` (widened to int16, exact), else no backend. No CPU flags are parsed.

The result is exact whenever the true sum fits int32 (MLAS accumulates modulo 2**32); callers check the bound.
The backend is off when onnxruntime is not importable, when no variant passes, or with the environment variable
``ACCELSIM_GEMM_BACKEND=numba`` (read on every call; ``auto``/unset: use it if available; ``ort``: require it).
The session has symbolic (unranked) inputs, so one session serves every shape, batched (..., M, K) @ (..., K, N)
included; intra-op threads are ONNX Runtime's default, with spinning off so that its pool does not compete with
numba's threads for the cores between calls. The ONNX model is encoded here (a few protobuf fields), so only
``onnxruntime`` is needed (``pip install accelsim[fast]``).

**The fused plain case** (:func:`qlinear_matmul`): ``accelsim.quant.qlinear_matmul`` without bias, with float
requantization to an 8-bit output, runs as ONE ``QLinearMatMul`` session call (accumulation and requantization in
MLAS, no int32 matrix in between, a few microseconds of Python). Every uint8/int8 pair and output type runs on
the uint8 × int8 → uint8 kernel, flipped as above (ONNX Runtime's own s8 × s8 and u8 × u8 QLinearMatMul are
several times slower). Its output stage is docs/quantization.md's (integer arithmetic) bit for bit — checked by
:func:`fused_self_test` (edge cases against :func:`requant_reference`) before first use; if that fails, the
MatMulInteger + Numba epilogue path runs. The multiplier is accelsim's own (``float32(x_scale · w_scale) /
y_scale``), fed as ``b_scale`` with ``a_scale = y_scale = 1``, so ONNX Runtime's arithmetic on it is exact.
"""
from __future__ import annotations

import os
import threading
from dataclasses import dataclass

import numpy as np

from accelsim.errors import QuantError
from accelsim.kernels.requant import float_multiplier

ENV = "ACCELSIM_GEMM_BACKEND"
VARIANTS = ("u8s8", "u8u8")  # fastest first
_TYPES = {"u8s8": (np.dtype(np.uint8), np.dtype(np.int8)), "u8u8": (np.dtype(np.uint8), np.dtype(np.uint8))}
_ONNX_ELEM = {np.dtype(np.float32): 1, np.dtype(np.uint8): 2, np.dtype(np.int8): 3, np.dtype(np.int32): 6}


# --------------------------------------------------------------------------------- the model, protobuf-encoded
def _varint(v: int) -> bytes:
    out = bytearray()
    while True:
        b, v = v & 0x7F, v >> 7
        out.append(b | (0x80 if v else 0))
        if not v:
            return bytes(out)


def _field(num: int, payload) -> bytes:
    """One protobuf field: an int becomes a varint (wire type 0), bytes/str a length-delimited field (type 2)."""
    if isinstance(payload, int):
        return _varint(num << 3) + _varint(payload)
    data = payload.encode() if isinstance(payload, str) else payload
    return _varint(num << 3 | 2) + _varint(len(data)) + data


def _value_info(name: str, dtype: np.dtype) -> bytes:
    """ValueInfoProto{name, type{tensor_type{elem_type}}} without a shape: any rank, any dims."""
    return _field(1, name) + _field(2, _field(1, _field(1, _ONNX_ELEM[dtype])))


def _model(op: str, inputs, out_dtype) -> bytes:
    """A ModelProto (IR 7, opset 13) holding ``y = op(*inputs)``; ``inputs`` (name, dtype) pairs, no shapes."""
    node = b"".join(_field(1, n) for n, _ in inputs) + _field(2, "y") + _field(4, op)
    graph = (_field(1, node) + _field(2, "accelsim_" + op.lower())
             + b"".join(_field(11, _value_info(n, np.dtype(t))) for n, t in inputs)
             + _field(12, _value_info("y", np.dtype(out_dtype))))
    return _field(1, 7) + _field(7, graph) + _field(8, _field(1, "") + _field(2, 13))


def model_bytes(a_dtype, b_dtype) -> bytes:
    """``y = MatMulInteger(a, b, a_zp, b_zp)`` with int32 ``y`` (:func:`_model`)."""
    a_dt, b_dt = np.dtype(a_dtype), np.dtype(b_dtype)
    return _model("MatMulInteger", [("a", a_dt), ("b", b_dt), ("za", a_dt), ("zb", b_dt)], np.int32)


def qlinear_model_bytes(a_dtype, b_dtype, y_dtype) -> bytes:
    """``y = QLinearMatMul(a, a_scale, a_zp, b, b_scale, b_zp, y_scale, y_zp)`` (:func:`_model`)."""
    a_dt, b_dt, f32 = np.dtype(a_dtype), np.dtype(b_dtype), np.dtype(np.float32)
    return _model("QLinearMatMul", [("a", a_dt), ("sa", f32), ("za", a_dt), ("b", b_dt), ("sb", f32), ("zb", b_dt),
                                    ("sy", f32), ("zy", np.dtype(y_dtype))], y_dtype)


# ---------------------------------------------------------------------------------------------- the backend
@dataclass(frozen=True)
class Backend:
    """A checked MLAS kernel: ``run(a, a_zp, b, b_zp)`` on operands already of ``variant``'s types."""

    variant: str
    run: object

    def matmul_integer(self, a, a_zp: int, b, b_zp) -> np.ndarray:
        """Map the operands onto the variant's types (zero-point shifts) and run; see the module docstring."""
        ta, tb = _TYPES[self.variant]
        if a.dtype != ta:
            a, a_zp = np.bitwise_xor(a.view(np.uint8), np.uint8(0x80)).view(ta), a_zp + 128
        b_zp = np.asarray(b_zp, dtype=np.int64)
        if b.dtype != tb:
            shift = 128 if tb.kind == "u" else -128
            b, b_zp = np.bitwise_xor(b.view(np.uint8), np.uint8(0x80)).view(tb), b_zp + shift
        zb = np.asarray(b_zp, dtype=np.int64).astype(tb)
        if zb.size > 1 and b.ndim > 2:
            zb = np.ascontiguousarray(np.broadcast_to(zb, b.shape[:-2] + (1, zb.size)))  # ORT's batched layout
        return self.run(np.ascontiguousarray(a), np.asarray(a_zp, dtype=ta), np.ascontiguousarray(b), zb)


def _session(model: bytes):
    """A CPU session of ``model``: ONNX Runtime's default intra-op threads, spinning off (module docstring)."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.log_severity_level = 3
    so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(model, so, providers=["CPUExecutionProvider"])


def _ort_runner(variant: str):
    sess = _session(model_bytes(*_TYPES[variant]))
    names = ["y"]

    def run(a, za, b, zb):
        return sess.run(names, {"a": a, "b": b, "za": za, "zb": zb})[0]

    return run


def self_test(run, a_dtype, b_dtype) -> bool:
    """True iff ``run(a, a_zp, b, b_zp)`` equals exact int64 numpy on (1) every pairing of the types' extremes
    over K = 300 (255 * 127 * 2 > 2**15 catches int16-saturating pair sums) and (2) random odd-shaped data
    with nonzero and per-column zero points, 2-D and batched."""
    ta, tb = np.dtype(a_dtype), np.dtype(b_dtype)
    ia, ib = np.iinfo(ta), np.iinfo(tb)
    k = 300
    a = np.array([[ia.min] * k, [ia.max] * k, [ia.max, ia.min] * (k // 2)], dtype=ta)
    b = np.array([[ib.min] * k, [ib.max] * k, [ib.max, ib.min] * (k // 2), [ib.min, ib.max] * (k // 2)]).T.astype(tb)
    rng = np.random.default_rng(12345)
    cases = [(a, ta.type(0), b, np.zeros(1, tb)), (a, ta.type(ia.max), b, np.full(4, ib.min, tb))]
    for m, kk, n in ((1, 1, 1), (7, 37, 13), (33, 300, 17)):
        ar = rng.integers(ia.min, ia.max + 1, (m, kk)).astype(ta)
        br = rng.integers(ib.min, ib.max + 1, (kk, n)).astype(tb)
        zr = rng.integers(ib.min, ib.max + 1, n).astype(tb)
        cases.append((ar, ta.type(rng.integers(ia.min, ia.max + 1)), br, zr))
    a3, b3 = rng.integers(ia.min, ia.max + 1, (3, 5, 9)).astype(ta), rng.integers(ib.min, ib.max + 1, (3, 9, 4))
    cases.append((a3, ta.type(ia.max // 2), b3.astype(tb), np.asarray(ib.max // 3, tb)))
    try:
        for x, zx, w, zw in cases:
            want = (x.astype(np.int64) - int(zx)) @ (w.astype(np.int64) - zw.astype(np.int64))
            got = run(x, np.asarray(zx, ta), w, zw if zw.size > 1 else zw.reshape(()))
            if got.shape != want.shape or not np.array_equal(got, want):
                return False
    except Exception:  # noqa: BLE001 - any failure of the candidate means "not usable"
        return False
    return True


def choose(make_runner=None, variants=VARIANTS) -> Backend | None:
    """The first variant whose runner builds and passes :func:`self_test` (None if none does)."""
    make_runner = make_runner or _ort_runner
    for variant in variants:
        try:
            run = make_runner(variant)
        except Exception:  # noqa: BLE001 - onnxruntime missing or unable to build the session
            continue
        if self_test(run, *_TYPES[variant]):
            return Backend(variant, run)
    return None


_lock = threading.Lock()
_chosen: list = []  # [] = not initialised yet, [Backend | None] afterwards


def reset() -> None:
    """Forget the chosen backend (tests); the next call re-runs initialisation and the self-test."""
    with _lock:
        _chosen.clear()


def backend() -> Backend | None:
    """The active backend, or None when the Numba kernels must run (see ``ACCELSIM_GEMM_BACKEND``)."""
    mode = os.environ.get(ENV, "auto").strip().lower() or "auto"
    if mode == "numba":
        return None
    if mode not in ("auto", "ort"):
        raise QuantError(f"{ENV}: expected 'auto', 'ort' or 'numba', got {os.environ[ENV]!r}")
    if not _chosen:
        with _lock:
            if not _chosen:
                _chosen.append(choose())
    if _chosen[0] is None and mode == "ort":
        raise QuantError(f"{ENV}=ort: no exact ONNX Runtime integer GEMM here "
                         f"(onnxruntime missing or its self-test failed)")
    return _chosen[0]


def describe() -> str:
    """``"onnxruntime MLAS (u8s8)"`` or ``"numba"``: which kernel the exact int32 GEMMs run on."""
    b = backend()
    return "numba" if b is None else f"onnxruntime MLAS ({b.variant})"


def matmul_integer(a, a_zp, b, b_zp) -> np.ndarray:
    """Exact int32 ``sum_k (a[..., i, k] - a_zp) * (b[..., k, j] - b_zp[j])`` on the active backend.

    ``a`` uint8/int8 (..., M, K); ``b`` uint8/int8 (K, N) or with ``a``'s leading dims; ``a_zp`` an int,
    ``b_zp`` an int or (N,) ints (in the operands' ranges). Exact when the true sums fit int32."""
    be = backend()
    if be is None:
        raise QuantError(f"matmul_integer: no ONNX Runtime backend ({describe()} is active)")
    return be.matmul_integer(a, int(a_zp), b, b_zp)


# ------------------------------------------------------------------------- the fused QLinearMatMul (plain case)
U8, S8 = np.dtype(np.uint8), np.dtype(np.int8)
K_MAX = ((1 << 31) - 1) // (255 * 255)  # 8-bit codes: below this K no partial sum can leave int32
_ONE = np.array(1.0, np.float32)


def _fused_runner():
    """``run(a, a_zp, b, mult, b_zp, y_zp)``: QLinearMatMul on uint8 ``a``, int8 ``b``, uint8 ``y`` with
    ``a_scale = y_scale = 1`` and ``b_scale = mult``, so that ONNX Runtime's multiplier ``a_scale · b_scale /
    y_scale`` is ``mult`` exactly, whatever its order of operations."""
    sess = _session(qlinear_model_bytes(U8, S8, U8))
    names = ["y"]

    def run(a, za, b, mult, zb, zy):
        return sess.run(names, {"a": a, "sa": _ONE, "za": za, "b": b, "sb": mult, "zb": zb, "sy": _ONE, "zy": zy})[0]

    return run


def requant_reference(acc, mult, y_zp: int, qmin: int, qmax: int) -> np.ndarray:
    """docs/quantization.md's requantization in plain numpy (int64):
    ``rint(clamp(float32(acc) · mult, qmin − zp, qmax − zp)) + zp``."""
    f = np.clip(np.asarray(acc).astype(np.float32) * np.asarray(mult, np.float32), np.float32(qmin - y_zp),
                np.float32(qmax - y_zp))
    return np.rint(f).astype(np.int64) + y_zp


def fused_self_test(run) -> bool:
    """True iff ``run`` (:func:`_fused_runner`) equals exact int64 accumulation + :func:`requant_reference` on:
    every pairing of the types' extremes over K = 300 (int16-saturating pair sums would show), with both clamps;
    a sum of 2**25 + 2**18 + 1 (float32(acc) rounds it: a float64 product lands on the other side of a tie);
    small sums times 0.5 (ties to even); random data with per-tensor and per-column multipliers and zero
    points; a batched ``a``."""
    rng = np.random.default_rng(54321)
    ext_a = np.array([[0] * 300, [255] * 300, [255, 0] * 150], dtype=U8)
    ext_b = np.array([[-128] * 300, [127] * 300, [127, -128] * 150, [-128, 127] * 150]).T.astype(S8)
    big = (1 << 25) + (1 << 18) + 1                    # times 2**-19: 64.5 + 2**-19, float32(acc) gives 64.5
    n1, r = divmod(big, 255 * 127)
    big_a = np.array([[255] * (n1 + 1) + [r % 255]], dtype=U8)
    big_b = np.array([[127] * n1 + [r // 255, 1]], dtype=S8).T
    zero = np.zeros((), S8)
    cases = [(ext_a, 0, ext_b, zero, np.float32(2.0**-17), 128), (ext_a, 255, ext_b, np.full(4, -128, S8),
                                                                   np.float32(3.0), 128),
             (big_a, 0, big_b, zero, np.float32(2.0**-19), 10),
             ((128 + rng.integers(-3, 4, (9, 5))).astype(U8), 128, rng.integers(-3, 4, (5, 11)).astype(S8), zero,
              np.float32(0.5), 128)]
    for shape, per_column in (((7, 37, 13), False), ((33, 300, 17), False), ((5, 9, 4), True), ((3, 5, 9, 4), False)):
        spread = np.float32(40.0 / (90.0 * 90.0 * np.sqrt(shape[-2])))      # outputs of some ±40 steps
        mult = (spread * rng.uniform(0.5, 2, shape[-1])).astype(np.float32) if per_column else spread
        zb = rng.integers(-128, 128, shape[-1]).astype(S8) if per_column else zero
        cases.append((rng.integers(0, 256, shape[:-1]).astype(U8), 128, rng.integers(-128, 128, shape[-2:]).astype(S8),
                      zb, mult, int(rng.integers(64, 192))))
    try:
        for a, za, b, zb, mult, zy in cases:
            acc = np.matmul(a.astype(np.int64) - za, b.astype(np.int64) - zb.astype(np.int64))
            want = requant_reference(acc, mult, zy, 0, 255)
            got = run(a, np.asarray(za, U8), b, np.asarray(mult, np.float32), zb, np.asarray(zy, U8))
            if got.dtype != U8 or got.shape != want.shape or not np.array_equal(got, want):
                return False
    except Exception:  # noqa: BLE001 - any failure of the candidate means "not usable"
        return False
    return True


_fused: list = []  # [] = not built yet, [checked runner | None] afterwards


def fused():
    """The fused QLinearMatMul runner once it passed :func:`fused_self_test`, else None (also when no exact
    backend is active, e.g. ``ACCELSIM_GEMM_BACKEND=numba``)."""
    if backend() is None:
        return None
    if not _fused:
        with _lock:
            if not _fused:
                try:
                    run = _fused_runner()
                except Exception:  # noqa: BLE001 - onnxruntime unable to build the session
                    run = None
                _fused.append(run if run is not None and fused_self_test(run) else None)
    return _fused[0]


_F32_MAX = float(np.finfo(np.float32).max)


def _positive_scale(s):
    """``s`` as float32 when it is a float scalar whose float32 is finite and positive (what the general path
    accepts; a few values just below float32's overflow threshold are left to it), else None. No
    ``np.errstate`` (microseconds per call): a double below float32's maximum converts without overflow."""
    if type(s) is np.ndarray and s.ndim == 0:
        s = s[()]
    if isinstance(s, (float, np.floating)) and 0 < s < _F32_MAX:
        f = np.float32(s)
        return f if f > 0 else None
    return None


def _scalar_of(z, dtypes) -> bool:
    """``z`` is a numpy scalar or 0-d array of one of ``dtypes``."""
    return (isinstance(z, np.generic) or (type(z) is np.ndarray and z.ndim == 0)) and z.dtype in dtypes


def _multiplier(sa, sb, sy):
    """:func:`accelsim.kernels.requant.float_multiplier` of float32 scales, or None when it is not finite. The
    float32 operations cannot overflow once their double counterparts (exact product, quotient) stay below
    float32's maximum, so no ``np.errstate`` is needed; underflow warnings are off by numpy's default."""
    if type(sb) is np.ndarray:
        m = float_multiplier(sa, sb, sy)       # (it ignores over/underflow itself)
        return m if np.all(np.isfinite(m)) else None
    if float(sa) * float(sb) >= _F32_MAX or float(sa) * float(sb) / float(sy) >= _F32_MAX / 2:
        return None
    return np.asarray((sa * sb) / sy)


def _flip(x, dtype):
    """``x ^ 0x80`` seen as ``dtype``: uint8 ↔ int8 with every difference to a zero point shifted by 128 kept."""
    return np.bitwise_xor(x.view(np.uint8), np.uint8(0x80)).view(dtype)


def qlinear_matmul(a, a_scale, a_zp, b, b_scale, b_zp, y_scale, y_zp):
    """:func:`accelsim.quant.qlinear_matmul` on ONNX Runtime's fused QLinearMatMul in the plain case, or None.

    The plain case: ``a`` (..., M, K) and ``b`` (K, N) uint8/int8 arrays, ``0 < K <= K_MAX`` (no partial sum can
    leave int32), ``M, N > 0``, zero points of the operands' dtypes (``b_zp`` also (N,)), a uint8/int8 ``y_zp``,
    float scales (``b_scale`` also a float (N,) array), all finite and positive, with a finite multiplier
    ``float32(a_scale · b_scale) / y_scale``; zero points and scalar scales as numpy scalars or 0-d arrays
    (scales also Python floats). The caller adds the rest of its conditions (no bias, float requantization,
    8-bit ranges). Every type pair runs on the uint8 × int8 → uint8 kernel (the fastest, and the one
    :func:`fused_self_test` checked): int8 ``a`` and ``y`` and uint8 ``b`` are flipped (``^ 0x80``) with their zero
    points shifted by 128, which leaves every difference and every output the same. Anything else gives None:
    the general path handles it or raises."""
    if type(a) is not np.ndarray or type(b) is not np.ndarray or b.ndim != 2 or a.ndim < 2:
        return None
    k, n = b.shape
    if a.dtype not in (U8, S8) or b.dtype not in (U8, S8) or a.shape[-1] != k or not 0 < k <= K_MAX or n == 0 \
            or a.size == 0:
        return None
    if not (_scalar_of(a_zp, (a.dtype,)) and _scalar_of(y_zp, (U8, S8))
            and (_scalar_of(b_zp, (b.dtype,)) or (type(b_zp) is np.ndarray and b_zp.shape == (n,)
                                                  and b_zp.dtype == b.dtype))):
        return None
    sa, sy = _positive_scale(a_scale), _positive_scale(y_scale)
    if type(b_scale) is np.ndarray and b_scale.shape == (n,) and b_scale.dtype.kind == "f":
        sb = b_scale.astype(np.float32)
        if not np.all((sb > 0) & (sb < np.inf)):
            return None
    else:
        sb = _positive_scale(b_scale)
    mult = None if sa is None or sb is None or sy is None else _multiplier(sa, sb, sy)
    run = None if mult is None else fused()
    if run is None:
        return None
    za, zy = np.asarray(a_zp, np.int64), np.asarray(y_zp, np.int64)
    if a.dtype == S8:
        a, za = _flip(a, U8), za + 128
    zb = np.asarray(b_zp)
    if b.dtype == U8:
        b, zb = _flip(b, S8), np.asarray(zb.astype(np.int16) - 128, S8)
    y = run(np.ascontiguousarray(a), np.asarray(za, U8), np.ascontiguousarray(b), mult, zb,
            np.asarray(zy + (128 if y_zp.dtype == S8 else 0), U8))
    return np.bitwise_xor(y, np.uint8(0x80), out=y).view(S8) if y_zp.dtype == S8 else y
