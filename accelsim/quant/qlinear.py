"""Bit-exact quantized MatMul with ONNX operator semantics (``QLinearMatMul``, and ``MatMulInteger`` followed by a
float rescale, as ONNX Runtime's ``quantize_dynamic`` emits), and the accumulation paths and output stages the
convolutions share (:mod:`accelsim.quant.qconv`: ``QLinearConv``, ``ConvInteger``).

Per output element (docs/quantization.md):

1. ``acc = sum_k (x[k] - x_zp) * (w[k] - w_zp[c]) (+ bias[c])`` exactly, in a W-bit accumulator
   (``acc_bits``, default 32; on overflow ``overflow="wrap"`` or ``"saturate"``; products in k order, bias last);
2. output stage, one of
   * ``requant="float"`` (default, ONNX Runtime CPU bit for bit): ``m = float32(x_scale * w_scale[c]) / y_scale``
     in float32, ``f = float32(acc) * m``, clamp to ``[qmin - y_zp, qmax - y_zp]``, round half to even, ``+ y_zp``;
     ``requant="fixed_point"``: the TFLite/gemmlowp integer path (see :mod:`accelsim.kernels.requant`);
   * rescale (:func:`matmul_integer_rescale`, :func:`conv_integer_rescale`): float32
     ``y = act(float32(acc) * float32(x_scale * w_scale[c]) + bias[c])`` (int32 accumulator, wrapping).

Types: any uint8/int8 combination, and narrower values in 8-bit containers (``*_bits`` = 4 for INT4: inputs are
range-checked, outputs clamp to the 4-bit range). The output dtype is ``y_zp``'s dtype.

Accumulation: when no partial sum can leave the accumulator (a bound from the types, else from the data), the
exact int32 GEMM runs on ONNX Runtime's MLAS (:mod:`accelsim.quant.ort_gemm`, if available; grouped convs
excepted; a plain ``qlinear_matmul`` — no bias, float requantization, 8-bit codes — as ONNX Runtime's own fused
QLinearMatMul, self-tested against this module's semantics) followed by a fused Numba output stage
(:mod:`accelsim.kernels.epilogue`), or on the Numba kernels
(:mod:`accelsim.kernels.igemm`); otherwise the W-bit accumulator is emulated step by step. All paths give
identical results; every public function shares that one accumulation path and differs only in its output stage.

**Accumulator hook.** ``qlinear_conv``/``qlinear_matmul(..., accumulate=fn)`` keep everything around the GEMM
(validation, zero points, the int32 bias, the output grid and its requantization) and take the accumulators
from ``fn(a, b, bias, acc_bits=, overflow=, a_bits=, b_bits=) -> (acc, AccOverflow)``: ``a`` (G, M, K) and ``b``
(G, K, N) int operands with their zero points subtracted (a conv: im2col of all images, M = B·Ho·Wo, one GEMM per
group), ``bias`` (G, N) int64, ``acc`` (G, M, N) int64 ``= a @ b + bias`` in the ``acc_bits`` accumulator
(products in k order, bias last; ``overflow`` "wrap"/"saturate"), ``a_bits``/``b_bits`` the operand widths.
The systolic-array emulation plugs in here (:mod:`accelsim.sim.array_ops`).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, fields, replace

import numpy as np

from accelsim.errors import QuantError
from accelsim.kernels import epilogue as _ep
from accelsim.kernels import igemm as _g
from accelsim.kernels.requant import MODE_FIXED, MODE_FLOAT, float_multiplier, quantize_multiplier
from accelsim.quant import _validate as v
from accelsim.quant import ort_gemm

ACTS = {None: _ep.ACT_NONE, "relu": _ep.ACT_RELU, "relu6": _ep.ACT_RELU6}


@dataclass(frozen=True, slots=True)
class AccOverflow:
    """Accumulator overflow report: ``events`` = accumulation steps that left the W-bit range,
    ``outputs`` = output elements whose accumulation overflowed at least once."""

    events: int
    outputs: int


NO_OVERFLOW = AccOverflow(0, 0)


def _int_in(x, lo: int, hi: int) -> bool:
    return isinstance(x, (int, np.integer)) and not isinstance(x, bool) and lo <= x <= hi


def _per_out(x, groups: int, n: int, dtype) -> np.ndarray:
    """A per-output-column parameter (scalar, (n,) or (groups*n,)) as a contiguous (groups, n) array."""
    x = np.asarray(x, dtype=dtype).reshape(-1)
    if x.size == groups * n:
        return x.reshape(groups, n)
    if x.size == 1:
        return np.full((groups, n), x[0], dtype=dtype)
    return np.ascontiguousarray(np.broadcast_to(x.reshape(-1, n), (groups, n)))  # batched matmul: (n,) per batch


@dataclass(frozen=True, slots=True)
class _Requant:
    """Output stage: integer ``acc + bias`` requantized to the output grid."""

    mode: int
    mult: np.ndarray   # (G, N) float32
    qm: np.ndarray     # (G, N) int32
    shift: np.ndarray  # (G, N) int32
    bias: np.ndarray   # (G, N) int64, added to the accumulator
    bias32: np.ndarray  # the same as int32 (the exact path's epilogue)
    qmin: int
    qmax: int
    zp: int

    def fused(self, a16, b16, m, n, out):
        _g.gemm_fast(a16, b16, self.bias, self.mode, self.mult, self.qm, self.shift, self.qmin, self.qmax, self.zp,
                     m, n, out)

    def exact(self, acc, out3):
        _ep.requant(acc, self.bias32[0], self.mode, self.mult[0], self.qm[0], self.shift[0], self.qmin, self.qmax,
                    self.zp, out3)

    def after_checked(self, acc, out):
        _g.requant_acc(acc, self.mode, self.mult, self.qm, self.shift, self.qmin, self.qmax, self.zp, out)


@dataclass(frozen=True, slots=True)
class _Rescale:
    """Output stage: float32 ``act(float32(acc) * scale + fbias)`` (``fbias`` -0.0 when there is no bias)."""

    scale: np.ndarray  # (G, N) float32
    fbias: np.ndarray  # (G, N) float32
    act: int
    bias: np.ndarray   # (G, N) int64 zeros: no integer bias in the accumulator

    def fused(self, a16, b16, m, n, out):
        acc = np.empty(out.shape, dtype=np.int32)
        zero = np.zeros(self.bias.shape, dtype=np.int32)
        _g.gemm_fast(a16, b16, self.bias, _g.MODE_ACC, self.scale, zero, zero, 0, 0, 0, m, n, acc)
        self.after_checked(acc, out)

    def exact(self, acc, out3):
        _ep.rescale(acc, self.scale[0], self.fbias[0], self.act, out3)

    def after_checked(self, acc, out):
        for g in range(acc.shape[0]):
            _ep.rescale(acc[g], self.scale[g], self.fbias[g], self.act, out[g:g + 1], parallel=True)


def _one_group(stage):
    """The same output stage with its per-(group, column) arrays seen as one group of G·N columns."""
    return replace(stage, **{f.name: getattr(stage, f.name).reshape(1, -1) for f in fields(stage)
                             if isinstance(getattr(stage, f.name), np.ndarray)})


def _requant_stage(x_scale, w_scale, y_scale, groups, n, requant, y_bits, y_dtype, y_zp, bias64) -> _Requant:
    if requant not in ("float", "fixed_point"):
        raise QuantError(f"requant: expected 'float' or 'fixed_point', got {requant!r}")
    mult = float_multiplier(x_scale[0], w_scale, y_scale[0])  # 1, n or groups * n values
    if not np.all(np.isfinite(mult)):
        raise QuantError(f"scales: x_scale * w_scale / y_scale overflows float32 ({x_scale[0]}, {y_scale[0]})")
    if requant == "fixed_point":
        m64 = np.float64(x_scale[0]) * w_scale.astype(np.float64) / np.float64(y_scale[0])
        if np.any(m64 >= 2.0**30):
            raise QuantError(f"requant='fixed_point': multiplier {m64.max():g} >= 2**30 cannot be represented")
        qm, shift = (_per_out(t, groups, n, np.int32) for t in quantize_multiplier(m64))
    else:
        qm = shift = np.zeros((groups, n), dtype=np.int32)
    mult = _per_out(mult, groups, n, np.float32)
    qmin, qmax = v.qtype_range(y_bits, y_dtype.kind == "i")
    bias = _per_out(bias64, groups, n, np.int64)
    return _Requant(MODE_FIXED if requant == "fixed_point" else MODE_FLOAT, mult, qm, shift, bias,
                    bias.astype(np.int32), qmin, qmax, int(y_zp[0]))


def _rescale_stage(x_scale, w_scale, groups, n, bias, act, cout: int) -> _Rescale:
    if not isinstance(act, (str, type(None))) or act not in ACTS:
        raise QuantError(f"act: expected None, 'relu' or 'relu6', got {act!r}")
    with np.errstate(over="ignore", under="ignore"):   # an underflow to 0 gives signed zeros (tested)
        scale = _per_out(np.float32(x_scale[0]) * w_scale, groups, n, np.float32)
    if not np.all(np.isfinite(scale)):
        raise QuantError(f"scales: x_scale * w_scale overflows float32 ({x_scale[0]}, "
                         f"{w_scale.reshape(-1)[:4].tolist()})")
    if bias is None:
        fbias = np.full((groups, n), -0.0, dtype=np.float32)  # y + (-0.0) == y bit for bit
    else:
        fb = v.float_array(bias, "bias")
        if fb.shape != (cout,):
            raise QuantError(f"bias: expected shape ({cout},), got {fb.shape}")
        fbias = _per_out(fb, groups, n, np.float32)
    return _Rescale(scale, fbias, ACTS[act], np.zeros((groups, n), dtype=np.int64))


def _acc_args(acc_bits, overflow):
    if isinstance(acc_bits, bool) or not isinstance(acc_bits, (int, np.integer)) or not 8 <= acc_bits <= 64:
        raise QuantError(f"acc_bits: expected an int in [8, 64], got {acc_bits!r}")
    if overflow not in ("wrap", "saturate"):
        raise QuantError(f"overflow: expected 'wrap' or 'saturate', got {overflow!r}")
    return int(acc_bits), overflow == "saturate"


def _max_abs_diff(lo: int, hi: int, zp: np.ndarray) -> int:
    """``max |v - z|`` over v in [lo, hi] and z in ``zp``."""
    zlo, zhi = int(zp.min()), int(zp.max())
    return max(abs(lo - zlo), abs(hi - zlo), abs(lo - zhi), abs(hi - zhi))


def _fits(kk: int, x, zx, x_bits: int, w, zw, w_bits: int, bias_bound: int, acc_bits: int) -> bool:
    """True when no partial sum can leave the accumulator (nor int32): first from the value ranges alone
    (``|v - zp| <= 2**bits - 1``: values and zero points are validated to lie in the ``bits`` range; no pass
    over the data), then from the data's actual ranges."""
    limit = min((1 << (acc_bits - 1)) - 1, (1 << 31) - 1)
    if kk * ((1 << x_bits) - 1) * ((1 << w_bits) - 1) + bias_bound <= limit:
        return True
    if x.size == 0 or w.size == 0:
        return bias_bound <= limit
    return kk * _max_abs_diff(int(x.min()), int(x.max()), zx) * _max_abs_diff(int(w.min()), int(w.max()), zw) \
        + bias_bound <= limit


def _gemm(a16, b16, stage, m, n, out, fits: bool, acc_bits, saturate) -> AccOverflow:
    """Numba path: the fused exact kernel when nothing can overflow, else the step-by-step emulation."""
    if fits:
        stage.fused(a16, b16, m, n, out)
        return NO_OVERFLOW
    acc = np.empty((a16.shape[0], m, n), dtype=np.int64)
    events = np.zeros((a16.shape[0], m), dtype=np.int64)
    hits = np.zeros((a16.shape[0], m), dtype=np.int64)
    lo, hi = -(1 << (acc_bits - 1)), (1 << (acc_bits - 1)) - 1
    _g.gemm_checked(a16, b16, stage.bias, lo, hi, saturate, m, n, acc, events, hits)
    stage.after_checked(acc, out)
    return AccOverflow(int(events.sum()), int(hits.sum()))


def _round_up(x: int, m: int) -> int:
    return (x + m - 1) // m * m


def _matmul_core(a, za, b, zb, stage, y, fits, acc_bits, saturate) -> AccOverflow:
    """``y = stage(sum_k (a - za)(b - zb))`` for a (..., M, K) and b (K, N) or (..., K, N) (batch = groups)."""
    k, n = b.shape[-2:]
    g = math.prod(b.shape[:-2])
    be = ort_gemm.backend() if fits and y.size and k else None  # (ONNX Runtime leaves K = 0 outputs unset)
    if be is not None:
        rows = math.prod(a.shape[:-1])
        acc = be.matmul_integer(a.reshape(rows, k) if b.ndim == 2 else a, int(za[0]), b, zb)
        stage.exact(acc.reshape(rows, n), y.reshape(1, rows, n))
        return NO_OVERFLOW
    m = math.prod(a.shape[:-1]) // g
    a16 = np.empty((g, _round_up(m, _g.ROW_BLOCK), k), dtype=np.int16)
    _g.pack_sub_zp(np.ascontiguousarray(a).reshape(g, m, k), np.full((g, m), za[0], np.int64), a16.shape[1], a16)
    b16 = np.empty((g, _round_up(n, _g.COL_BLOCK), k), dtype=np.int16)
    _g.pack_transposed_sub_zp(np.ascontiguousarray(b).reshape(g, k, n), _per_out(zb, 1, n, np.int64)[0],
                              b16.shape[1], b16)
    return _gemm(a16, b16, stage, m, n, y.reshape(g, m, n), fits, acc_bits, saturate)


def _operands(a, a_scale, a_zp, b, b_scale, b_zp, n: int, bits, names):
    """Validate two integer operands (``b`` per-column/-channel over ``n``); return ``(scales, zero points,
    bits)``. ``names`` label the operands in error messages. 8-bit values need no pass over the data."""
    na, nb = names
    ab, bb = v.bits_arg(bits[0], f"{na}_bits", a.dtype), v.bits_arg(bits[1], f"{nb}_bits", b.dtype)
    v.values_in_range(a, na, ab)
    v.values_in_range(b, nb, bb)
    scales = _scale(a_scale, f"{na}_scale"), _scale(b_scale, f"{nb}_scale", n)
    zps = _zp(a_zp, f"{na}_zp", a.dtype, ab), _zp(b_zp, f"{nb}_zp", b.dtype, bb, n)
    return scales, zps, (ab, bb)


def _out_grid(y_scale, y_zp, y_bits):
    """Validate the output grid: ``(y_scale, y_zp, y dtype, y bits)``."""
    y_dtype = y_zp.dtype if isinstance(y_zp, np.generic) and y_zp.dtype in _CODES else \
        v.int_array(np.asarray(y_zp), "y_zp").dtype
    yb = v.bits_arg(y_bits, "y_bits", y_dtype)
    return _scale(y_scale, "y_scale"), _zp(y_zp, "y_zp", y_dtype, yb), y_dtype, yb


# Fast acceptance of the common cases (8-bit arrays, scalar scales and zero points) without the array round
# trips of the validators; everything else goes through :mod:`accelsim.quant._validate`, which owns the checks
# and their messages (the per-call overhead matters: a 3136 x 576 x 64 GEMM takes ~0.15 ms).
_CODES = (np.dtype(np.uint8), np.dtype(np.int8))


def _codes(x, name: str) -> np.ndarray:
    return x if type(x) is np.ndarray and x.dtype in _CODES else v.int_array(x, name)


def _scale(s, name: str, n: int | None = None) -> np.ndarray:
    if isinstance(s, (float, np.floating)):
        with np.errstate(over="ignore"):   # beyond float32: inf, refused by v.scales below
            f = np.float32(s)
        if 0 < f < np.inf:
            return np.array([f], dtype=np.float32)
    return v.scales(s, name, n)


def _zp(z, name: str, dtype: np.dtype, bits: int, n: int | None = None) -> np.ndarray:
    """int64 zero point(s), 1 or ``n`` of them (an 8-bit scalar of the tensor's dtype is in range by type)."""
    if bits == 8 and isinstance(z, np.generic) and z.dtype == dtype:
        return np.array([int(z)], dtype=np.int64)
    return v.zero_points(z, name, dtype, bits, n)


def _matmul_shapes(a, b, fn: str):
    a = _codes(a, "a")
    b = _codes(b, "b")
    if a.ndim < 2 or b.ndim < 2 or (b.ndim > 2 and b.shape[:-2] != a.shape[:-2]):
        raise QuantError(f"{fn}: a must be (..., M, K) and b (K, N) or (..., K, N) with a's leading dims, "
                         f"got shapes {a.shape} and {b.shape}")
    if a.shape[-1] != b.shape[-2]:
        raise QuantError(f"{fn}: inner dimensions differ: a {a.shape} vs b {b.shape}")
    return a, b, math.prod(b.shape[:-2]), b.shape[-1]


def qlinear_matmul(a, a_scale, a_zp, b, b_scale, b_zp, y_scale, y_zp, *, bias=None, requant="float",
                   acc_bits=32, overflow="wrap", return_overflow=False, a_bits=None, b_bits=None, y_bits=None,
                   accumulate=None):
    """ONNX ``QLinearMatMul``: ``a`` (..., M, K) @ ``b`` (K, N) or (..., K, N) -> (..., M, N) in ``y_zp``'s dtype.

    ``a_scale``/``a_zp``/``y_scale``/``y_zp`` are scalars; ``b_scale``/``b_zp`` scalars or per-column (N,).
    A batched ``b`` has ``a``'s leading dims (attention: one call for all heads).
    ``bias`` (extension, as in QLinearConv): int32 (N,) added to the accumulator before requantization.
    With ``return_overflow=True`` returns ``(y, AccOverflow)``; ``accumulate``: the accumulator hook (module
    docstring).
    """
    if bias is None and accumulate is None and requant == "float" and _int_in(acc_bits, 32, 64) and \
            overflow in ("wrap", "saturate") and all(x is None or _int_in(x, 8, 8) for x in (a_bits, b_bits, y_bits)):
        # the plain case on ONNX Runtime's fused kernel
        y = ort_gemm.qlinear_matmul(a, a_scale, a_zp, b, b_scale, b_zp, y_scale, y_zp)
        if y is not None:
            return (y, NO_OVERFLOW) if return_overflow else y
    a, b, g, n = _matmul_shapes(a, b, "qlinear_matmul")
    (sa, sb), (za, zb), (ab, bb) = _operands(a, a_scale, a_zp, b, b_scale, b_zp, n, (a_bits, b_bits), ("a", "b"))
    sy, zy, y_dtype, yb = _out_grid(y_scale, y_zp, y_bits)
    nbits, saturate = _acc_args(acc_bits, overflow)
    bias64, bias_bound = _bias(bias, n)
    stage = _requant_stage(sa, sb, sy, g, n, requant, yb, y_dtype, zy, bias64)
    y = np.empty(a.shape[:-1] + (n,), dtype=y_dtype)
    if accumulate is not None:
        k, m = a.shape[-1], math.prod(a.shape[:-1]) // g
        a32 = a.reshape(g, m, k).astype(np.int32) - int(za[0])
        b32 = b.reshape(g, k, n).astype(np.int32) - np.broadcast_to(zb.reshape(-1), (n,)).reshape(1, 1, n)
        ovf = _hooked(accumulate, a32, b32, stage, y.reshape(g, m, n), nbits, overflow, ab, bb)
    else:
        fits = _fits(a.shape[-1], a, za, ab, b, zb, bb, bias_bound, nbits)
        ovf = _matmul_core(a, za, b, zb, stage, y, fits, nbits, saturate)
    return (y, ovf) if return_overflow else y


def _hooked(accumulate, a, b, stage, out, acc_bits, overflow, a_bits, b_bits) -> AccOverflow:
    """``out = stage(accumulate(a, b, bias))`` for the accumulator hook (module docstring)."""
    acc, ovf = accumulate(a, b, stage.bias, acc_bits=acc_bits, overflow=overflow, a_bits=a_bits, b_bits=b_bits)
    stage.after_checked(acc, out)
    return ovf


def matmul_integer_rescale(a, a_scale, a_zp, b, b_scale, b_zp, *, bias=None, act=None):
    """ONNX Runtime ``quantize_dynamic`` MatMul: ``MatMulInteger`` then float32
    ``y = act(float32(acc) * float32(a_scale * b_scale[j]) + bias[j])``, ``acc`` the exact int32 sum.

    ``a`` (..., M, K) and ``b`` (K, N) or (..., K, N) uint8/int8; ``a_scale``/``a_zp`` scalars,
    ``b_scale``/``b_zp`` scalars or per-column (N,); ``bias`` float (N,); ``act`` None, ``"relu"`` or ``"relu6"``.
    Returns float32 (..., M, N).
    """
    a, b, g, n = _matmul_shapes(a, b, "matmul_integer_rescale")
    (sa, sb), (za, zb), (ab, bb) = _operands(a, a_scale, a_zp, b, b_scale, b_zp, n, (None, None), ("a", "b"))
    stage = _rescale_stage(sa, sb, g, n, bias, act, n)
    y = np.empty(a.shape[:-1] + (n,), dtype=np.float32)
    fits = _fits(a.shape[-1], a, za, ab, b, zb, bb, 0, 32)
    _matmul_core(a, za, b, zb, stage, y, fits, 32, False)
    return y


def _bias(bias, cout: int) -> tuple[np.ndarray, int]:
    """The int32 bias as int64 (zeros without one) and ``max |bias|``."""
    if bias is None:
        return np.zeros(cout, dtype=np.int64), 0
    b = v.int_array(bias, "bias", ("int32",))
    if b.shape != (cout,):
        raise QuantError(f"bias: expected shape ({cout},), got {b.shape}")
    b = b.astype(np.int64)
    return b, int(np.abs(b).max(initial=0))
