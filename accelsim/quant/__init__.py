"""Quantization: specs, calibration observers, ONNX-semantics integer ops and single-layer PTQ.

Specs and parameters: :class:`QuantSpec`, :class:`QParams`, :class:`QTensor`, :func:`qparams_from_range`
(the one range -> (scale, zero point) function, ONNX Runtime conventions), :func:`quantize`,
:func:`dequantize`, :func:`quantize_bias`, :func:`pack_int4` / :func:`unpack_int4`.

ONNX operator semantics, bit-exact with ONNX Runtime's CPU kernels: :func:`quantize_linear`,
:func:`dequantize_linear`, :func:`qlinear_matmul`, :func:`qlinear_conv`; ONNX Runtime ``quantize_dynamic``
(MatMulInteger/ConvInteger + float rescale): :func:`matmul_integer_rescale`, :func:`conv_integer_rescale`.

Calibration: :class:`MinMaxObserver`, :class:`PercentileObserver`, :class:`KLObserver`,
:class:`EntropyObserver`, :class:`MSEObserver`, :class:`PerChannelMinMaxObserver`, :class:`PerChannelObserver`
and :func:`calibrate`. PTQ of one layer: :func:`ptq_linear`, :func:`ptq_conv`, :func:`sqnr_db`.
"""
from accelsim.quant.calibration import (
    METHODS,
    PerChannelMinMaxObserver,
    PerChannelObserver,
    calibrate,
    make_observer,
)
from accelsim.quant.histogram import LinearHistogram
from accelsim.quant.observers import (
    EntropyObserver,
    KLObserver,
    MinMaxObserver,
    MSEObserver,
    Observer,
    PercentileObserver,
)
from accelsim.quant.ptq import PTQResult, ptq_conv, ptq_linear, sqnr_db
from accelsim.quant.qdq import (
    QTensor,
    dequantize,
    dequantize_linear,
    pack_int4,
    quantize,
    quantize_linear,
    unpack_int4,
)
from accelsim.quant.qconv import (conv_integer_rescale, conv_transpose_integer_rescale, qlinear_conv,
                                  qlinear_conv_transpose)
from accelsim.quant.qlinear import AccOverflow, matmul_integer_rescale, qlinear_matmul
from accelsim.quant.spec import QParams, QuantSpec, qparams_from_range, quantize_bias, weight_qparams

__all__ = [
    "METHODS",
    "AccOverflow",
    "EntropyObserver",
    "KLObserver",
    "LinearHistogram",
    "MSEObserver",
    "MinMaxObserver",
    "Observer",
    "PTQResult",
    "PerChannelMinMaxObserver",
    "PerChannelObserver",
    "PercentileObserver",
    "QParams",
    "QTensor",
    "QuantSpec",
    "calibrate",
    "conv_integer_rescale",
    "conv_transpose_integer_rescale",
    "dequantize",
    "dequantize_linear",
    "make_observer",
    "matmul_integer_rescale",
    "pack_int4",
    "ptq_conv",
    "ptq_linear",
    "qlinear_conv",
    "qlinear_conv_transpose",
    "qlinear_matmul",
    "qparams_from_range",
    "quantize",
    "quantize_bias",
    "weight_qparams",
    "quantize_linear",
    "sqnr_db",
    "unpack_int4",
]
