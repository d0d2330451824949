"""Quantization ops of imported graphs — ONNX ``QuantizeLinear``/``DequantizeLinear`` and ONNX Runtime's fused
integer kernels ``QLinearAdd``/``QLinearGlobalAveragePool`` — run with the exact integer semantics of
:mod:`accelsim.quant` (:func:`~accelsim.quant.quantize_linear`, :mod:`accelsim.quant.ort_fused`).

Between a QuantizeLinear and a DequantizeLinear the tensors are integer codes on one grid. The Q/DQ pair is free
in the cost model (on the integer datapath it is the requantization of the neighbouring GEMMs); the fused kernels
cost one vector operation per element.
"""
from __future__ import annotations

import math

import numpy as np

from . import attrs as A
from ._common import broadcast_shape, input_elements, same
from .pooling import OPS as _POOLS
from .registry import OpDef


def _qdq_attrs(r) -> dict:
    return dict(scale=r.pos_float("scale", maximum=3.5e38), zero_point=int(A.number(r, "zero_point", 0)),
                bits=r.pos_int("bits", 8), signed=r.boolean("signed", False))


def _qdq_run(a: dict, x, quantize: bool):
    """ONNX Runtime-exact ``QuantizeLinear`` (x → codes) or ``DequantizeLinear`` (codes → float32)."""
    from ..quant.qdq import dequantize_linear, quantize_linear
    dtype = f"{'' if a['signed'] else 'u'}int{a['bits']}"
    zp = np.asarray(a["zero_point"], dtype=np.dtype(dtype) if a["bits"] in (8, 16) else np.int8)
    scale = np.float32(a["scale"])
    return quantize_linear(x, scale, zp, dtype=dtype) if quantize else dequantize_linear(x, scale, zp, dtype=dtype)


def _grid(r, names: str) -> dict:
    """``<k>_scale`` and ``<k>_zero_point`` for each letter ``k`` of ``names``."""
    out = {f"{k}_scale": r.pos_float(f"{k}_scale", maximum=3.5e38) for k in names}
    return out | {f"{k}_zero_point": int(A.number(r, f"{k}_zero_point", 0)) for k in names}


def _qadd_run(a: dict, xs: list):
    from ..quant.ort_fused import qlinear_add
    return qlinear_add(xs[0], a["a_scale"], a["a_zero_point"], xs[1], a["b_scale"], a["b_zero_point"],
                       a["c_scale"], a["c_zero_point"], np.int8 if a["signed"] else np.uint8)


def _qgap_run(a: dict, x):
    """The kernel on ``[B·lead, C, prod(spatial), 1]`` (channels on ``channel_axis``), shaped back."""
    from ..quant.ort_fused import qlinear_global_avgpool
    front = x.shape[:a["channel_axis"] + 2]
    y = qlinear_global_avgpool(x.reshape(-1, front[-1], x[0].size // math.prod(front[1:]), 1), a["x_scale"],
                               a["x_zero_point"], a["y_scale"], a["y_zero_point"])
    return y.reshape(front + (1,) * (x.ndim - len(front)))


IMPORTED = {
    "quantize_linear": OpDef(_qdq_attrs, same, lambda a, xs, ctx: _qdq_run(a, xs[0], True)),
    "dequantize_linear": OpDef(_qdq_attrs, same, lambda a, xs, ctx: _qdq_run(a, xs[0], False)),
    # ONNX Runtime's QLinearAdd on two code tensors (what it fuses DQ → Add → Q into)
    "qlinear_add": OpDef(lambda r: _grid(r, "abc") | dict(signed=r.boolean("signed", False)), broadcast_shape,
                         lambda a, xs, ctx: _qadd_run(a, xs), vector_ops=1.0),
    "qlinear_global_avgpool": OpDef(lambda r: _grid(r, "xy") | dict(channel_axis=r.nonneg_int("channel_axis", 0)),
                                    _POOLS["global_avgpool"].shape,
                                    lambda a, xs, ctx: _qgap_run(a, xs[0]), vector_ops=1.0, elements=input_elements),
}
