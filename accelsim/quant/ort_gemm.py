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
"""
from __future__ import annotations

import os
import threading
from dataclasses import dataclass

import numpy as np

from accelsim.errors import QuantError

ENV = "ACCELSIM_GEMM_BACKEND"
VARIANTS = ("u8s8", "u8u8")  # fastest first
_TYPES = {"u8s8": (np.dtype(np.uint8), np.dtype(np.int8)), "u8u8": (np.dtype(np.uint8), np.dtype(np.uint8))}
_ONNX_ELEM = {np.dtype(np.uint8): 2, np.dtype(np.int8): 3, np.dtype(np.int32): 6}


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


def model_bytes(a_dtype, b_dtype) -> bytes:
    """A ModelProto (IR 7, opset 13) holding ``y = MatMulInteger(a, b, a_zp, b_zp)`` with int32 ``y``."""
    a_dt, b_dt = np.dtype(a_dtype), np.dtype(b_dtype)
    node = b"".join(_field(1, n) for n in ("a", "b", "za", "zb")) + _field(2, "y") + _field(4, "MatMulInteger")
    graph = (_field(1, node) + _field(2, "accelsim_matmul_integer")
             + b"".join(_field(11, _value_info(n, t)) for n, t in (("a", a_dt), ("b", b_dt), ("za", a_dt),
                                                                  ("zb", b_dt)))
             + _field(12, _value_info("y", np.dtype(np.int32))))
    return _field(1, 7) + _field(7, graph) + _field(8, _field(1, "") + _field(2, 13))


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


def _ort_runner(variant: str):
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.log_severity_level = 3
    so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    sess = ort.InferenceSession(model_bytes(*_TYPES[variant]), so, providers=["CPUExecutionProvider"])
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
