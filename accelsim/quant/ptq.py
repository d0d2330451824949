"""Post-training quantization of a single layer, end to end, against its float32 reference.

1. Calibrate the input activations over ``calib`` batches (``method``: minmax | percentile | kl | entropy | mse)
   -> per-tensor activation params (asymmetric unsigned by default, the ONNX Runtime default);
2. quantize the weights per output channel with the model pipeline's rule (:func:`weight_qparams`: symmetric
   signed params from their min/max, INT8 narrow ``[-127, 127]``, INT4 ``[-8, 7]``, scales raised where the int32
   bias would lack headroom), so a layer gets the same weight scales here as inside a quantized model;
3. calibrate the output range the same way on the float outputs of the calibration batches;
4. quantize the bias to int32 (``round(b / (x_scale * w_scale))``), run the bit-exact integer kernel on the
   ``evaluate`` input and dequantize; report ``SQNR = 10 log10(sum y^2 / sum (y - y_hat)^2)`` in dB.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from accelsim.data.metrics import sqnr_db
from accelsim.errors import QuantError
from accelsim.quant.calibration import calibrate
from accelsim.quant.qdq import dequantize_linear, quantize
from accelsim.quant.qconv import qlinear_conv
from accelsim.quant.qlinear import AccOverflow, qlinear_matmul
from accelsim.quant.spec import QParams, QuantSpec, qparams_from_range, quantize_bias, weight_qparams


@dataclass(frozen=True, slots=True, eq=False)
class PTQResult:
    """Float reference, integer output (and its dequantized value), the parameters used and the SQNR."""

    y_float: np.ndarray
    y_int: np.ndarray
    y_dequant: np.ndarray
    sqnr_db: float
    x_params: QParams
    w_params: QParams
    y_params: QParams
    bias_int32: np.ndarray | None
    overflow: AccOverflow


def _act_params(batches, method, bits, signed, **kw) -> QParams:
    spec = QuantSpec(bits=bits, signed=signed, symmetric=signed)
    lo, hi = calibrate(batches, method=method, symmetric=signed, **kw)
    return qparams_from_range(lo, hi, spec)


def _weight_params(w_out_in, bits, bias, x_scale, acc_bits) -> QParams:
    spec = QuantSpec(bits=bits, signed=True, symmetric=True, granularity="channel", axis=0)
    return weight_qparams(w_out_in, spec, bias, x_scale, acc_bits)


def _check_batches(calib, name="calib") -> list:
    if isinstance(calib, np.ndarray) or not isinstance(calib, Sequence) or len(calib) == 0:
        raise QuantError(f"{name}: expected a non-empty list of float arrays")
    return [np.asarray(b, dtype=np.float32) for b in calib]


def _finish(y_float, y_int, xp, wp, yp, bq, ovf) -> PTQResult:
    y_deq = dequantize_linear(y_int, yp.scale, yp.zero_point.astype(y_int.dtype),
                              dtype="int4" if yp.spec.bits == 4 and yp.spec.signed else
                              "uint4" if yp.spec.bits == 4 else None)
    return PTQResult(y_float, y_int, y_deq, sqnr_db(y_float, y_deq), xp, wp, yp, bq, ovf)


def _bits_kw(bits: int):
    return None if bits == 8 else bits


def ptq_linear(calib, w, bias=None, evaluate=None, *, method="minmax", act_bits=8, w_bits=8, act_signed=False,
               requant="float", acc_bits=32, overflow="wrap", **calib_kw) -> PTQResult:
    """PTQ of ``y = x @ w + bias`` (``w``: (K, N), i.e. the transpose of torch's [out, in]; ``w_params`` are per
    column, axis 1); ``calib``: list of (..., K) batches; ``evaluate`` defaults to
    the concatenation of ``calib``. ``act_bits``/``w_bits`` in [2, 8]; ``calib_kw`` go to :func:`calibrate`."""
    batches = _check_batches(calib)
    w = np.asarray(w, dtype=np.float32)
    if w.ndim != 2:
        raise QuantError(f"w: expected (K, N), got shape {w.shape}")
    b = None if bias is None else np.asarray(bias, dtype=np.float32)
    x_eval = np.concatenate([x.reshape(-1, w.shape[0]) for x in batches]) if evaluate is None else \
        np.asarray(evaluate, dtype=np.float32)
    xp = _act_params(batches, method, act_bits, act_signed, **calib_kw)
    wp_out_in = _weight_params(w.T, w_bits, b, xp.scale, acc_bits)
    wp = QParams(wp_out_in.scale, wp_out_in.zero_point, replace(wp_out_in.spec, axis=1))   # for w as (K, N)

    def fwd(x):
        return x @ w + (0 if b is None else b)

    yp = _act_params([fwd(x) for x in batches], method, act_bits, act_signed, **calib_kw)
    bq = None if b is None else quantize_bias(b, xp.scale, wp.scale)
    xq, wq = quantize(x_eval, xp).q, quantize(w, wp).q
    y_int, ovf = qlinear_matmul(xq, xp.scale, xp.zero_point.astype(xq.dtype), wq, wp.scale, wp.zero_point.astype(wq.dtype),
                                yp.scale, yp.zero_point.astype(yp.spec.dtype), bias=bq, requant=requant,
                                acc_bits=acc_bits, overflow=overflow, return_overflow=True, a_bits=_bits_kw(act_bits),
                                b_bits=_bits_kw(w_bits), y_bits=_bits_kw(act_bits))
    return _finish(fwd(x_eval), y_int, xp, wp, yp, bq, ovf)


def _conv_float(x, w, b, strides, pads, dilations, group):
    from accelsim.ops._conv import conv2d   # the op's FP32 numerics (the registry sits above quant/)
    return conv2d(x, w, b, strides, pads, dilations, group)


def ptq_conv(calib, w, bias=None, evaluate=None, *, strides=(1, 1), pads=(0, 0, 0, 0), dilations=(1, 1), group=1,
             method="minmax", act_bits=8, w_bits=8, act_signed=False, requant="float", acc_bits=32,
             overflow="wrap", **calib_kw) -> PTQResult:
    """PTQ of a 2-D NCHW convolution (``w``: (Cout, Cin/group, R, S), per-output-channel weight scales)."""
    batches = _check_batches(calib)
    w = np.asarray(w, dtype=np.float32)
    if w.ndim != 4:
        raise QuantError(f"w: expected (Cout, Cin/group, R, S), got shape {w.shape}")
    b = None if bias is None else np.asarray(bias, dtype=np.float32)
    x_eval = np.concatenate(batches) if evaluate is None else np.asarray(evaluate, dtype=np.float32)
    geo = {"strides": tuple(strides), "pads": tuple(pads), "dilations": tuple(dilations), "group": int(group)}
    xp = _act_params(batches, method, act_bits, act_signed, **calib_kw)
    wp = _weight_params(w, w_bits, b, xp.scale, acc_bits)
    yp = _act_params([_conv_float(x, w, b, **geo) for x in batches], method, act_bits, act_signed, **calib_kw)
    bq = None if b is None else quantize_bias(b, xp.scale, wp.scale)
    xq, wq = quantize(x_eval, xp).q, quantize(w, wp).q
    y_int, ovf = qlinear_conv(xq, xp.scale, xp.zero_point.astype(xq.dtype), wq, wp.scale, wp.zero_point.astype(wq.dtype),
                              yp.scale, yp.zero_point.astype(yp.spec.dtype), bq, **geo, requant=requant,
                              acc_bits=acc_bits, overflow=overflow, return_overflow=True, x_bits=_bits_kw(act_bits),
                              w_bits=_bits_kw(w_bits), y_bits=_bits_kw(act_bits))
    return _finish(_conv_float(x_eval, w, b, **geo), y_int, xp, wp, yp, bq, ovf)
