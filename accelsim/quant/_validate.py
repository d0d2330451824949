"""Input validation shared by the public quantization functions (every failure is a precise QuantError)."""
from __future__ import annotations

import numpy as np

from accelsim.errors import QuantError

_QTYPES = {
    "int4": (4, True), "uint4": (4, False), "int8": (8, True), "uint8": (8, False),
    "int16": (16, True), "uint16": (16, False),
}


def qtype_range(bits: int, signed: bool) -> tuple[int, int]:
    """Full integer range of a (bits, signed) type."""
    return (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)


def container_dtype(bits: int, signed: bool) -> np.dtype:
    if bits <= 8:
        return np.dtype(np.int8 if signed else np.uint8)
    return np.dtype(np.int16 if signed else np.uint16)


def resolve_qtype(dtype, zero_point=None, name: str = "dtype") -> tuple[int, bool]:
    """(bits, signed) from ``dtype`` ("int4", "uint8", np.int8, ...) or, when None, from the zero point's dtype
    (default uint8, as in ONNX). ``dtype="int4"``/``"uint4"`` values live in int8/uint8 containers."""
    if dtype is None:
        if zero_point is None:
            return 8, False
        zdt = np.asarray(zero_point).dtype
        key = zdt.name
        if key not in _QTYPES:
            raise QuantError(f"zero_point: dtype must be int8, uint8, int16 or uint16 (or pass dtype=), got {zdt}")
        return _QTYPES[key]
    key = dtype if isinstance(dtype, str) else np.dtype(dtype).name if _is_dtype(dtype) else None
    if key not in _QTYPES:
        raise QuantError(f"{name}: expected one of {sorted(_QTYPES)}, got {dtype!r}")
    return _QTYPES[key]


def _is_dtype(d) -> bool:
    try:
        np.dtype(d)
    except TypeError:
        return False
    return True


def int_array(x, name: str, allowed=("uint8", "int8")) -> np.ndarray:
    """A numpy array whose dtype is one of ``allowed`` (no silent casts of integer data)."""
    if not isinstance(x, np.ndarray):
        raise QuantError(f"{name}: expected a numpy array of {' or '.join(allowed)}, got {type(x).__name__}")
    if x.dtype.name not in allowed:
        raise QuantError(f"{name}: expected dtype {' or '.join(allowed)}, got {x.dtype}")
    return x


def float_array(x, name: str) -> np.ndarray:
    """float32 view/copy of a real array; rejects non-float dtypes and NaN (Inf saturates, as in ONNX)."""
    arr = np.asarray(x)
    if arr.dtype.kind != "f":
        raise QuantError(f"{name}: expected a float array, got dtype {arr.dtype}")
    arr = np.ascontiguousarray(arr, dtype=np.float32)
    if np.isnan(arr).any():
        raise QuantError(f"{name}: contains {int(np.isnan(arr).sum())} NaN value(s); NaN has no quantized value")
    return arr


def scales(s, name: str, n: int | None = None) -> np.ndarray:
    """float32 scales: a scalar (returned 1-d of length 1) or, if ``n`` is given, optionally a 1-d array of n."""
    arr = np.asarray(s)
    if arr.dtype.kind not in "fiu" or arr.dtype.kind == "b":
        raise QuantError(f"{name}: expected float scale(s), got dtype {arr.dtype}")
    arr = arr.astype(np.float32)
    if arr.size != 1 and (n is None or arr.ndim != 1 or arr.shape[0] != n):
        want = "a scalar" if n is None else f"a scalar or a 1-d array of {n}"
        raise QuantError(f"{name}: expected {want}, got shape {arr.shape}")
    arr = arr.reshape(-1)
    bad = ~np.isfinite(arr) | (arr <= 0)
    if bad.any():
        raise QuantError(f"{name}: scales must be finite and > 0, got {arr[bad][:4].tolist()}")
    return arr


def zero_points(z, name: str, dtype: np.dtype, bits: int, n: int | None = None) -> np.ndarray:
    """int64 zero points with the tensor's dtype (ONNX requires equal types) and inside the ``bits`` range;
    a scalar (returned 1-d of length 1) or, when ``n`` is given, optionally a 1-d array of n."""
    arr = np.asarray(z)
    if arr.dtype != dtype:
        raise QuantError(f"{name}: dtype must match its tensor ({dtype}), got {arr.dtype}")
    if arr.size != 1 and (n is None or arr.ndim != 1 or arr.shape[0] != n):
        want = "a scalar" if n is None else f"a scalar or a 1-d array of {n}"
        raise QuantError(f"{name}: expected {want}, got shape {arr.shape}")
    arr = arr.reshape(-1).astype(np.int64)
    lo, hi = qtype_range(bits, dtype.kind == "i")
    if arr.min() < lo or arr.max() > hi:
        raise QuantError(f"{name}: zero point(s) must lie in [{lo}, {hi}] for {bits}-bit values, "
                         f"got {arr[(arr < lo) | (arr > hi)][:4].tolist()}")
    return arr


def bits_arg(bits, name: str, container: np.dtype) -> int:
    """Value width held in an 8-bit container: None means 8; otherwise an int in [2, 8]."""
    if bits is None:
        return 8
    if isinstance(bits, bool) or not isinstance(bits, (int, np.integer)) or not 2 <= int(bits) <= 8:
        raise QuantError(f"{name}: expected an int in [2, 8] (values held in {container}), got {bits!r}")
    return int(bits)


def values_in_range(x: np.ndarray, name: str, bits: int) -> None:
    """Narrow values (e.g. INT4 held in int8) must lie inside their ``bits`` range."""
    if bits >= 8 * x.dtype.itemsize or x.size == 0:
        return
    lo, hi = qtype_range(bits, x.dtype.kind == "i")
    xmin, xmax = int(x.min()), int(x.max())
    if xmin < lo or xmax > hi:
        raise QuantError(f"{name}: {bits}-bit values must lie in [{lo}, {hi}], got range [{xmin}, {xmax}]")


def axis_arg(axis, ndim: int, name: str = "axis") -> int:
    if isinstance(axis, bool) or not isinstance(axis, (int, np.integer)) or not -ndim <= int(axis) < ndim:
        raise QuantError(f"{name}: expected an int in [{-ndim}, {ndim - 1}], got {axis!r}")
    return int(axis) % ndim


def int_tuple(v, name: str, length: int, minimum: int) -> tuple[int, ...]:
    try:
        t = tuple(int(e) for e in v)
    except (TypeError, ValueError):
        raise QuantError(f"{name}: expected {length} ints, got {v!r}") from None
    if len(t) != length or any(e < minimum for e in t):
        raise QuantError(f"{name}: expected {length} ints >= {minimum}, got {v!r}")
    return t
