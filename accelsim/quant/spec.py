"""Quantization specs, parameters and the one range -> (scale, zero point) function.

Affine quantization maps a real value r to an integer q with ``r = scale * (q - zero_point)``.

* :class:`QuantSpec` - the integer grid: bit width, signedness, symmetric/asymmetric, per-tensor or per-channel
  (with ``axis``) and narrow range. ``qmin``/``qmax`` follow from it.
* :class:`QParams` - a concrete (scale, zero_point) for a spec (arrays of one entry per channel when per-channel).
* :func:`qparams_from_range` - the single place where a real range becomes (scale, zero point), with the
  ONNX Runtime conventions (``onnxruntime.quantization.quant_utils.compute_scale_zp``, DESIGN section 5.4).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from accelsim.errors import QuantError

_GRANULARITIES = ("tensor", "channel")


@dataclass(frozen=True, slots=True)
class QuantSpec:
    """An integer grid.

    ``qmin = -2**(bits-1) (+1 if narrow_range)``, ``qmax = 2**(bits-1) - 1`` when signed;
    ``qmin = 0``, ``qmax = 2**bits - 1`` when unsigned.

    ``narrow_range=None`` resolves to ONNX Runtime's choice: narrow (e.g. INT8 ``[-127, 127]``) for symmetric
    signed 8- and 16-bit grids, full range otherwise (INT4 symmetric stays ``[-8, 7]``, scale ``2*absmax/15``).
    The resolved value is stored, so the choice is always explicit on the object. Narrow range is only
    defined for signed grids (it drops the most negative code).
    """

    bits: int = 8
    signed: bool = True
    symmetric: bool = False
    granularity: str = "tensor"
    axis: int | None = None
    narrow_range: bool | None = None

    def __post_init__(self):
        if isinstance(self.bits, bool) or not isinstance(self.bits, (int, np.integer)):
            raise QuantError(f"QuantSpec.bits: expected an int in [2, 16], got {self.bits!r}")
        if not 2 <= int(self.bits) <= 16:
            raise QuantError(f"QuantSpec.bits: expected an int in [2, 16], got {self.bits}")
        for name in ("signed", "symmetric"):
            if not isinstance(getattr(self, name), (bool, np.bool_)):
                raise QuantError(f"QuantSpec.{name}: expected a bool, got {getattr(self, name)!r}")
        if self.granularity not in _GRANULARITIES:
            raise QuantError(f"QuantSpec.granularity: expected 'tensor' or 'channel', got {self.granularity!r}")
        if self.granularity == "channel":
            if isinstance(self.axis, bool) or not isinstance(self.axis, (int, np.integer)):
                raise QuantError(f"QuantSpec.axis: per-channel specs need an int axis, got {self.axis!r}")
        elif self.axis is not None:
            raise QuantError(f"QuantSpec.axis: must be None for per-tensor specs, got {self.axis!r}")
        narrow = self.narrow_range
        if narrow is None:
            narrow = bool(self.signed and self.symmetric and int(self.bits) in (8, 16))
        elif not isinstance(narrow, (bool, np.bool_)):
            raise QuantError(f"QuantSpec.narrow_range: expected a bool or None, got {narrow!r}")
        if narrow and not self.signed:
            raise QuantError("QuantSpec.narrow_range: only defined for signed grids (drops the most negative code)")
        object.__setattr__(self, "bits", int(self.bits))
        object.__setattr__(self, "signed", bool(self.signed))
        object.__setattr__(self, "symmetric", bool(self.symmetric))
        object.__setattr__(self, "narrow_range", bool(narrow))

    @property
    def qmin(self) -> int:
        if not self.signed:
            return 0
        return -(1 << (self.bits - 1)) + (1 if self.narrow_range else 0)

    @property
    def qmax(self) -> int:
        return (1 << (self.bits - 1)) - 1 if self.signed else (1 << self.bits) - 1

    @property
    def dtype(self) -> np.dtype:
        """Container dtype: int8/uint8 up to 8 bits (INT4 is held one value per int8), int16/uint16 above."""
        if self.bits <= 8:
            return np.dtype(np.int8 if self.signed else np.uint8)
        return np.dtype(np.int16 if self.signed else np.uint16)


@dataclass(frozen=True, slots=True, eq=False)
class QParams:
    """``scale`` (float32) and ``zero_point`` (int32): 0-d arrays per-tensor, 1-d (one per channel) per-channel."""

    scale: np.ndarray
    zero_point: np.ndarray
    spec: QuantSpec

    def __post_init__(self):
        if not isinstance(self.spec, QuantSpec):
            raise QuantError(f"QParams.spec: expected a QuantSpec, got {type(self.spec).__name__}")
        from accelsim.quant._validate import as_array, to_float32

        scale = as_array(self.scale, "QParams.scale")
        zp = as_array(self.zero_point, "QParams.zero_point")
        if scale.dtype.kind != "f":
            raise QuantError(f"QParams.scale: expected floats, got dtype {scale.dtype}")
        if zp.dtype.kind not in "iu":
            raise QuantError(f"QParams.zero_point: expected integers, got dtype {zp.dtype}")
        want_ndim = 1 if self.spec.granularity == "channel" else 0
        if scale.ndim != want_ndim or zp.shape != scale.shape:
            raise QuantError(f"QParams: {self.spec.granularity} granularity needs {want_ndim}-d scale and zero_point "
                             f"of equal shape, got {scale.shape} and {zp.shape}")
        scale = to_float32(scale)
        if not np.all(np.isfinite(scale)) or np.any(scale <= 0):
            raise QuantError(f"QParams.scale: every scale must be finite and > 0, got {scale}")
        if np.any(zp < self.spec.qmin) or np.any(zp > self.spec.qmax):
            raise QuantError(f"QParams.zero_point: must lie in [{self.spec.qmin}, {self.spec.qmax}], got {zp}")
        object.__setattr__(self, "scale", scale)
        object.__setattr__(self, "zero_point", zp.astype(np.int32))


def qparams_from_range(rmin, rmax, spec: QuantSpec) -> QParams:
    """The one function turning a real range into (scale, zero point) - ONNX Runtime's ``compute_scale_zp``.

    With ranges cast to float32 first:

    1. ``rmin = min(rmin, 0)``, ``rmax = max(rmax, 0)`` (zero is always representable);
    2. symmetric: ``rmin, rmax = -absmax, absmax`` with ``absmax = max(|rmin|, |rmax|)``;
    3. ``scale64 = (float64(rmax) - float64(rmin)) / (qmax - qmin)``; ``scale = float32(scale64)``;
    4. ``zero_point = round_half_even((qmin + qmax) / 2)`` when symmetric (0 for signed, 128 for uint8),
       else ``round_half_even(qmin - rmin / scale64)``;
    5. degenerate range (``scale64 < float32 tiny``, e.g. all zeros): ``scale = 1``, ``zero_point = 0``.

    Where torch differs: torch computes the scale in float32, clamps it to ``eps``, uses ``zp = qmin -
    round(rmin / scale)`` and its symmetric INT8 uses the full ``[-128, 127]`` grid with ``scale = absmax/127.5``.

    ``rmin``/``rmax`` are real scalars (per-tensor) or 1-d arrays (per-channel specs). Raises :class:`QuantError`
    on other types, ranges that are not finite in float32, or ``rmin > rmax``.
    """
    from accelsim.quant._validate import real_array, to_float32

    if not isinstance(spec, QuantSpec):
        raise QuantError(f"spec: expected a QuantSpec, got {type(spec).__name__}")
    lo = to_float32(real_array(rmin, "rmin"))
    hi = to_float32(real_array(rmax, "rmax"))
    want_ndim = 1 if spec.granularity == "channel" else 0
    if lo.ndim != want_ndim or hi.shape != lo.shape:
        raise QuantError(f"qparams_from_range: a {spec.granularity} spec needs {want_ndim}-d rmin/rmax of equal "
                         f"shape, got {lo.shape} and {hi.shape}")
    if not (np.all(np.isfinite(lo)) and np.all(np.isfinite(hi))):
        raise QuantError(f"qparams_from_range: range must be finite, got rmin={lo}, rmax={hi}")
    if np.any(lo > hi):
        raise QuantError(f"qparams_from_range: rmin > rmax (rmin={lo}, rmax={hi})")
    qmin, qmax = spec.qmin, spec.qmax
    lo = np.minimum(lo, np.float32(0))
    hi = np.maximum(hi, np.float32(0))
    if spec.symmetric:
        absmax = np.maximum(np.abs(lo), np.abs(hi))
        lo, hi = -absmax, absmax
    scale64 = (hi.astype(np.float64) - lo.astype(np.float64)) / float(qmax - qmin)
    degenerate = scale64 < np.finfo(np.float32).tiny
    safe = np.where(degenerate, 1.0, scale64)
    if spec.symmetric:
        zp = np.full(lo.shape, np.round((qmin + qmax) / 2.0))
    else:
        zp = np.round(qmin - lo.astype(np.float64) / safe)
    zp = np.where(degenerate, 0.0, np.clip(zp, qmin, qmax)).astype(np.int32)
    scale = np.where(degenerate, 1.0, scale64).astype(np.float32)
    return QParams(scale=scale, zero_point=zp, spec=spec)


def quantize_bias(bias, x_scale, w_scale) -> np.ndarray:
    """int32 bias for a quantized layer: ``round_half_even(float32(b) / float32(x_scale * w_scale))``, saturated.

    ``bias`` is 1-d and finite, ``x_scale`` a scalar and ``w_scale`` a scalar or one scale per output channel, all
    finite and > 0 in float32; the product and division are float32, as in ONNX Runtime's
    ``quantize_bias_static``. A product that underflows float32 to 0 or overflows it raises :class:`QuantError`
    (it would send every non-zero bias to ±2**31, or every bias to 0); a quotient beyond the int32 range
    saturates (documented, not an error).
    """
    from accelsim.quant._validate import real_array, scalar, to_float32

    b = to_float32(real_array(bias, "bias"))
    if b.ndim != 1:
        raise QuantError(f"quantize_bias: bias must be 1-d, got shape {b.shape}")
    if not np.all(np.isfinite(b)):
        raise QuantError("quantize_bias: bias contains NaN or Inf (or values beyond float32's range)")
    xs = to_float32(np.asarray(scalar(x_scale, "x_scale")))
    ws = to_float32(real_array(w_scale, "w_scale"))
    if ws.ndim > 1 or (ws.ndim == 1 and ws.shape[0] not in (1, b.shape[0])):
        raise QuantError(f"quantize_bias: w_scale must be a scalar or have {b.shape[0]} entries, got {ws.shape}")
    if not np.isfinite(xs) or xs <= 0 or not np.all(np.isfinite(ws)) or np.any(ws <= 0):
        raise QuantError(f"quantize_bias: scales must be finite and > 0 in float32, got x_scale={xs}, w_scale={ws}")
    with np.errstate(under="ignore", over="ignore"):
        prod = xs * ws
    if np.any(prod == 0) or not np.all(np.isfinite(prod)):
        how = "underflows float32 to 0" if np.any(prod == 0) else "overflows float32"
        raise QuantError(f"quantize_bias: x_scale * w_scale {how} (x_scale={xs}, "
                         f"w_scale={ws.reshape(-1)[:4].tolist()})")
    with np.errstate(over="ignore"):
        q = np.rint(b / prod).astype(np.float64)
    return np.clip(q, np.iinfo(np.int32).min, np.iinfo(np.int32).max).astype(np.int32)


def weight_qparams(w, spec: QuantSpec, bias=None, x_scale=None, acc_bits: int = 32) -> QParams:
    """The one weight-quantization rule (model pipeline and single-layer PTQ alike): symmetric grid from the
    weight's min/max per output channel (axis 0, ``spec.granularity == "channel"``) or per tensor; with a bias,
    each scale is raised where needed so the int32 bias ``b / (s_x·s_w)`` stays within ``2**(acc_bits − 2)``
    (headroom for the sum): ``s_w[c] = max(s_w[c], |b[c]| / (s_x · 2**(acc_bits − 2)))``. A channel with near-zero
    weights but a large folded-BN bias would otherwise saturate its bias (ONNX Runtime's quantizer adjusts
    weight scales the same way).

    ``w``: a non-empty real array ``[Cout, ...]``; with ``bias`` (finite, one per output channel) ``x_scale`` must
    be finite and > 0 and ``acc_bits`` an int in [8, 64]; else :class:`QuantError`."""
    from accelsim.quant._validate import real_array, scalar, to_float32

    if not isinstance(spec, QuantSpec):
        raise QuantError(f"spec: expected a QuantSpec, got {type(spec).__name__}")
    w = real_array(w, "w")
    if w.ndim < 1 or w.size == 0:
        raise QuantError(f"w: expected a non-empty array [Cout, ...], got shape {w.shape}")
    flat = w.reshape(w.shape[0], -1)
    per_channel = spec.granularity == "channel"
    lo, hi = (flat.min(axis=1), flat.max(axis=1)) if per_channel else (w.min(), w.max())
    p = qparams_from_range(lo, hi, spec)
    if bias is None:
        return p
    b = to_float32(real_array(bias, "bias")).astype(np.float64)
    if b.shape != (w.shape[0],) or not np.all(np.isfinite(b)):
        raise QuantError(f"bias: expected {w.shape[0]} finite values, got shape {b.shape}")
    xs = float(to_float32(np.asarray(scalar(x_scale, "x_scale"))))
    if not (np.isfinite(xs) and xs > 0):
        raise QuantError(f"x_scale: expected a scale finite and > 0 in float32, got {x_scale!r}")
    if isinstance(acc_bits, bool) or not isinstance(acc_bits, (int, np.integer)) or not 8 <= acc_bits <= 64:
        raise QuantError(f"acc_bits: expected an int in [8, 64], got {acc_bits!r}")
    with np.errstate(over="ignore", under="ignore"):
        need = np.abs(b) / (xs * 2.0 ** (int(acc_bits) - 2))
    need = need if per_channel else need.max()
    if np.any(need > p.scale):
        p = QParams(to_float32(np.maximum(p.scale, need)), p.zero_point, spec)
    return p
