"""Quantize / dequantize with ONNX operator semantics, the :class:`QTensor` they produce, and INT4 packing.

Every function keeps the input's shape (0-d included) and raises :class:`~accelsim.errors.QuantError` for bad
dtypes (byte-swapped integers included), shapes, NaN, scales that are not finite and > 0 in float32 and zero
points outside their type (see :mod:`accelsim.quant._validate`) before any Numba code runs.

``quantize_linear`` = ONNX ``QuantizeLinear`` as ONNX Runtime's CPU kernel computes it:
``q = saturate(round_half_even(float32(x) / float32(scale)) + zero_point)``; ``dequantize_linear`` =
``float32(q - zero_point) * scale``. ``dtype="int4"``/``"uint4"`` quantize to 4-bit values held one per
int8/uint8 (use :func:`pack_int4` for the two-per-byte storage format).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from accelsim.errors import QuantError
from accelsim.kernels import quantize as _k
from accelsim.quant import _validate as v
from accelsim.quant.spec import QParams


@dataclass(frozen=True, slots=True, eq=False)
class QTensor:
    """Integer values ``q`` (container dtype of the spec) and their parameters; ``dequantize()`` gives float32."""

    q: np.ndarray
    params: QParams

    def dequantize(self) -> np.ndarray:
        return dequantize(self)


def _per_axis(x_shape, scale, axis, name="scale"):
    """Resolve (axis, n_channels) for per-tensor (scale of one element) or per-axis parameters."""
    s = v.as_array(scale, name)
    if s.ndim == 0 or (s.size == 1 and axis is None):
        return None, 1
    if s.ndim != 1:
        raise QuantError(f"{name}: expected a scalar or a 1-d array, got shape {s.shape}")
    ax = v.axis_arg(1 if axis is None else axis, len(x_shape))
    if s.shape[0] != x_shape[ax]:
        raise QuantError(f"{name}: has {s.shape[0]} entries but axis {ax} of the input has {x_shape[ax]}")
    return ax, s.shape[0]


def _view3(shape, ax):
    if ax is None:
        return (1, 1, int(np.prod(shape, dtype=np.int64)))
    return (int(np.prod(shape[:ax], dtype=np.int64)), shape[ax], int(np.prod(shape[ax + 1:], dtype=np.int64)))


def _quantize(x32, scale, zp, ax, qmin, qmax, dtype):
    out = np.empty(x32.shape, dtype=dtype)
    shape3 = _view3(x32.shape, ax)
    _k.quantize_3d(x32.reshape(shape3), scale, zp, qmin, qmax, out.reshape(shape3))
    return out


def _dequantize(q, scale, zp, ax):
    out = np.empty(q.shape, dtype=np.float32)
    shape3 = _view3(q.shape, ax)
    _k.dequantize_3d(np.ascontiguousarray(q).reshape(shape3), scale, zp, out.reshape(shape3))
    return out


def quantize_linear(x, scale, zero_point=None, axis=None, dtype=None) -> np.ndarray:
    """ONNX ``QuantizeLinear``: ``sat(rne(float32(x) / scale) + zero_point)`` (float32 division).

    ``scale``/``zero_point``: scalars, or 1-d with one entry per slice along ``axis`` (ONNX default 1).
    The output type is ``dtype`` ("int4", "uint4", "int8", "uint8", "int16", "uint16" or a numpy dtype), else
    the zero point's dtype, else uint8; 4-bit types return int8/uint8 containers. NaN input raises
    :class:`QuantError` (ONNX Runtime maps NaN to an arbitrary code); +-Inf saturates.
    """
    bits, signed = v.resolve_qtype(dtype, zero_point)
    cdt = v.container_dtype(bits, signed)
    x32 = v.float_array(x, "x")
    ax, n = _per_axis(x32.shape, scale, axis)
    s = v.scales(scale, "scale", n if ax is not None else None)
    if zero_point is None:
        zp = np.zeros(s.shape, dtype=np.int64)
    else:
        zp = v.zero_points(zero_point, "zero_point", cdt, bits, n if ax is not None else None)
        zp = np.broadcast_to(zp, s.shape).copy()
    qmin, qmax = v.qtype_range(bits, signed)
    return _quantize(x32, s, zp, ax, qmin, qmax, cdt)


def dequantize_linear(x, scale, zero_point=None, axis=None, dtype=None) -> np.ndarray:
    """ONNX ``DequantizeLinear``: ``float32(x - zero_point) * scale``.

    ``x``: int8/uint8/int16/uint16 (``dtype="int4"``/``"uint4"`` checks 4-bit values in 8-bit containers).
    """
    x = v.int_array(x, "x", ("uint8", "int8", "uint16", "int16"))
    bits = 8 * x.dtype.itemsize
    if dtype is not None:
        bits, signed = v.resolve_qtype(dtype, None)
        if v.container_dtype(bits, signed) != x.dtype:
            raise QuantError(f"dtype: {dtype!r} values are held in {v.container_dtype(bits, signed)}, x is {x.dtype}")
    v.values_in_range(x, "x", bits)
    ax, n = _per_axis(x.shape, scale, axis)
    s = v.scales(scale, "scale", n if ax is not None else None)
    if zero_point is None:
        zp = np.zeros(s.shape, dtype=np.int64)
    else:
        zp = np.broadcast_to(v.zero_points(zero_point, "zero_point", x.dtype, bits, n if ax is not None else None),
                             s.shape).copy()
    return _dequantize(x, s, zp, ax)


def _spec_axis(params: QParams, ndim: int):
    if params.spec.granularity == "tensor":
        return None
    return v.axis_arg(params.spec.axis, ndim, "spec.axis")


def quantize(x, params: QParams) -> QTensor:
    """Quantize to a :class:`QuantSpec` grid: ``clamp(rne(float32(x) / scale) + zp, spec.qmin, spec.qmax)``
    (the QuantizeLinear formula, saturating to the spec's range, e.g. [-127, 127] for narrow INT8)."""
    if not isinstance(params, QParams):
        raise QuantError(f"params: expected QParams, got {type(params).__name__}")
    x32 = v.float_array(x, "x")
    ax = _spec_axis(params, x32.ndim)
    s = params.scale.reshape(-1)
    if ax is not None and s.shape[0] != x32.shape[ax]:
        raise QuantError(f"params: {s.shape[0]} channel scales but axis {ax} of x has {x32.shape[ax]}")
    zp = params.zero_point.reshape(-1).astype(np.int64)
    spec = params.spec
    return QTensor(_quantize(x32, s, zp, ax, spec.qmin, spec.qmax, spec.dtype), params)


def dequantize(qt: QTensor) -> np.ndarray:
    """``float32(q - zp) * scale`` for a :class:`QTensor`."""
    if not isinstance(qt, QTensor):
        raise QuantError(f"dequantize: expected a QTensor, got {type(qt).__name__}")
    p = qt.params
    q = v.int_array(qt.q, "q", (p.spec.dtype.name,))
    ax = _spec_axis(p, q.ndim)
    s = p.scale.reshape(-1)
    if ax is not None and s.shape[0] != q.shape[ax]:
        raise QuantError(f"params: {s.shape[0]} channel scales but axis {ax} of q has {q.shape[ax]}")
    return _dequantize(q, s, p.zero_point.reshape(-1).astype(np.int64), ax)


def pack_int4(q) -> np.ndarray:
    """Pack 4-bit values (int8 in [-8, 7] or uint8 in [0, 15]) two per byte, ONNX order: element ``2i`` in
    the low nibble, ``2i+1`` in the high nibble, flattened in C order; returns ``ceil(q.size / 2)`` uint8."""
    q = v.int_array(q, "q")
    v.values_in_range(q, "q", 4)
    flat = np.ascontiguousarray(q).reshape(-1)
    out = np.empty((flat.size + 1) // 2, dtype=np.uint8)
    _k.pack_int4(flat, out)
    return out


def unpack_int4(packed, count: int, signed: bool = True) -> np.ndarray:
    """Inverse of :func:`pack_int4`: the first ``count`` nibbles as int8 (``signed``) or uint8 values."""
    packed = v.int_array(packed, "packed", ("uint8",)).reshape(-1)
    if isinstance(count, bool) or not isinstance(count, (int, np.integer)) or not 0 <= count <= 2 * packed.size:
        raise QuantError(f"count: expected an int in [0, {2 * packed.size}], got {count!r}")
    out = np.empty(int(count), dtype=np.int8 if signed else np.uint8)
    _k.unpack_int4(packed, int(count), bool(signed), out)
    return out
