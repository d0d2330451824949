"""Input validation shared by the public quantization functions (every failure is a precise QuantError).

Rules: arrays are converted without raising anything but :class:`QuantError` (:func:`as_array`); integer data
keeps its dtype (no silent casts) and must be in native byte order (a byte-swapped ``>i2`` array is refused, as
the kernels cannot read it); float data is read as float32 (values beyond float32's range become ±inf without a
warning, and saturate where the operator saturates); scales must be finite and > 0 *in float32* (``1e300``
and ``1e-50`` are refused); shapes, 0-d included, are kept.
"""
from __future__ import annotations

import numbers

import numpy as np

from accelsim.errors import QuantError, short

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
        zdt = as_array(zero_point, "zero_point").dtype
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
    except (TypeError, ValueError, SyntaxError):
        return False
    return True


def as_array(x, name: str) -> np.ndarray:
    """``np.asarray(x)``, with a QuantError for what numpy cannot make an array of (ragged lists ...)."""
    try:
        return np.asarray(x)
    except (ValueError, TypeError, OverflowError) as exc:
        raise QuantError(f"{name}: not an array ({short(exc)})") from None


def real_array(x, name: str) -> np.ndarray:
    """An array of a real dtype (float, int or uint; not bool, complex, object or text)."""
    arr = as_array(x, name)
    if arr.dtype.kind not in "fiu":
        raise QuantError(f"{name}: expected real numbers, got dtype {arr.dtype}")
    return arr


def to_float32(arr: np.ndarray) -> np.ndarray:
    """float32 C-contiguous array of the same shape (0-d stays 0-d); values beyond float32 become ±inf."""
    with np.errstate(over="ignore"):
        return np.asarray(arr, dtype=np.float32, order="C")


def int_array(x, name: str, allowed=("uint8", "int8")) -> np.ndarray:
    """A numpy array (or numpy scalar, as 0-d) whose dtype is one of ``allowed`` in native byte order (no silent
    casts of integer data)."""
    if isinstance(x, np.generic):
        x = np.asarray(x)
    if not isinstance(x, np.ndarray):
        raise QuantError(f"{name}: expected a numpy array of {' or '.join(allowed)}, got {type(x).__name__}")
    if x.dtype.name not in allowed:
        raise QuantError(f"{name}: expected dtype {' or '.join(allowed)}, got {x.dtype}")
    if not x.dtype.isnative:
        raise QuantError(f"{name}: byte-swapped {x.dtype.name} ({x.dtype.str}); convert it with "
                         f"x.astype(x.dtype.newbyteorder('='))")
    return x


def float_array(x, name: str) -> np.ndarray:
    """float32 copy/view of a float array (shape kept, 0-d included); rejects other dtypes and NaN (Inf
    saturates, as in ONNX)."""
    arr = as_array(x, name)
    if arr.dtype.kind != "f":
        raise QuantError(f"{name}: expected a float array, got dtype {arr.dtype}")
    arr = to_float32(arr)
    if np.isnan(arr).any():
        raise QuantError(f"{name}: contains {int(np.isnan(arr).sum())} NaN value(s); NaN has no quantized value")
    return arr


def scalar(x, name: str) -> float:
    """A real scalar (Python or numpy number, or a 1-element real array) as a Python float."""
    if isinstance(x, (bool, np.bool_)):
        raise QuantError(f"{name}: expected a number, got {x!r}")
    if isinstance(x, numbers.Real):
        return float(x)
    arr = real_array(x, name)
    if arr.size != 1:
        raise QuantError(f"{name}: expected a scalar, got shape {arr.shape}")
    return float(arr.reshape(-1)[0])


def flag(x, name: str) -> bool:
    """A bool (Python or numpy)."""
    if not isinstance(x, (bool, np.bool_)):
        raise QuantError(f"{name}: expected True or False, got {short(repr(x))}")
    return bool(x)


def scales(s, name: str, n: int | None = None) -> np.ndarray:
    """float32 scales: a scalar (returned 1-d of length 1) or, if ``n`` is given, optionally a 1-d array of n."""
    arr = as_array(s, name)
    if arr.dtype.kind not in "fiu" or arr.dtype.kind == "b":
        raise QuantError(f"{name}: expected float scale(s), got dtype {arr.dtype}")
    arr = to_float32(arr)
    if arr.size != 1 and (n is None or arr.ndim != 1 or arr.shape[0] != n):
        want = "a scalar" if n is None else f"a scalar or a 1-d array of {n}"
        raise QuantError(f"{name}: expected {want}, got shape {arr.shape}")
    arr = arr.reshape(-1)
    bad = ~np.isfinite(arr) | (arr <= 0)
    if bad.any():
        raise QuantError(f"{name}: scales must be finite and > 0, got {arr[bad][:4].tolist()} (as float32)")
    return arr


def zero_points(z, name: str, dtype: np.dtype, bits: int, n: int | None = None) -> np.ndarray:
    """int64 zero points with the tensor's dtype (ONNX requires equal types) and inside the ``bits`` range;
    a scalar (returned 1-d of length 1) or, when ``n`` is given, optionally a 1-d array of n."""
    arr = as_array(z, name)
    if arr.dtype != dtype:
        raise QuantError(f"{name}: dtype must match its tensor ({dtype}), got {arr.dtype}")
    if arr.size != 1 and (n is None or arr.ndim != 1 or arr.shape[0] != n):
        want = "a scalar" if n is None else f"a scalar or a 1-d array of {n}"
        raise QuantError(f"{name}: expected {want}, got shape {arr.shape}")
    arr = arr.reshape(-1).astype(np.int64)
    lo, hi = qtype_range(bits, dtype.kind == "i")
    if np.any(arr < lo) or np.any(arr > hi):
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


def int_tuple(v, name: str, length: int, minimum: int, maximum: int = 1 << 16) -> tuple[int, ...]:
    """``length`` integers in ``[minimum, maximum]`` (ints or integral numpy values; no floats, no bools)."""
    want = f"{name}: expected {length} ints >= {minimum} and <= {maximum}, got {short(repr(v))}"
    try:
        items = list(v)
    except TypeError:
        raise QuantError(want) from None
    if len(items) != length or not all(isinstance(e, (int, np.integer)) and not isinstance(e, (bool, np.bool_))
                                       for e in items):
        raise QuantError(want)
    t = tuple(int(e) for e in items)
    if any(not minimum <= e <= maximum for e in t):
        raise QuantError(want)
    return t
