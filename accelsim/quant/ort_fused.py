"""ONNX Runtime's integer kernels for ops that have no exact float equivalent, emulated in numpy.

``qlinear_add`` is MLAS's AVX2 ``MlasQLinearAddKernelAvx2Helper`` (QLinearAdd, and ONNX Runtime's fusion of
DequantizeLinear → Add → QuantizeLinear; chosen by ONNX Runtime on x86-64 CPUs with AVX2), float32 throughout:

    r_ac = s_a / s_c,  r_bc = s_b / s_c
    fixed = float(z_c) − fma(r_ac, z_a, r_bc·z_b)          (the compiler contracts r_ac·z_a + r_bc·z_b)
    c = sat(rne(fma(a, r_ac, fma(b, r_bc, fixed))))        (a scalar b: fixed += b·r_bc, then fma(a, r_ac, fixed))

The zero points are folded into ``fixed`` and the products are fused, so it is *not* ``Q(DQ(a) + DQ(b))``: the two
differ by one code on a few values in 10⁴. A fused multiply-add is emulated in float64 (exact when the addends'
magnitudes are within 2²⁹ of each other, as they are for codes and scale ratios) and rounded once to float32.
Checked against onnxruntime on every (a, b) code pair for 60 random scale/zero-point sets
(``tests/test_onnx_quantized.py``); the SSE2 and NEON kernels of other CPUs round differently.
"""
from __future__ import annotations

import numpy as np

_F, _D = np.float32, np.float64


def _fma(x, y, z) -> np.ndarray:
    """float32(x·y + z) with one rounding (float64 exact product and sum, see module docstring)."""
    return (np.asarray(x, _D) * _D(y) + np.asarray(z, _D)).astype(_F)


def qlinear_add(a, a_scale, a_zp, b, b_scale, b_zp, c_scale, c_zp, dtype) -> np.ndarray:
    """``QLinearAdd(a, b)`` codes as ONNX Runtime's AVX2 kernel computes them (module docstring)."""
    r_ac, r_bc = _F(_F(a_scale) / _F(c_scale)), _F(_F(b_scale) / _F(c_scale))
    fixed = _F(_F(c_zp) - _fma(r_ac, _F(a_zp), _F(r_bc * _F(b_zp))))
    if np.size(b) == 1:
        v = _fma(np.asarray(a, _F), r_ac, _F(fixed + _F(_F(np.asarray(b).reshape(())) * r_bc)))
    else:
        v = _fma(np.asarray(a, _F), r_ac, _fma(np.asarray(b, _F), r_bc, fixed))
    info = np.iinfo(dtype)
    return np.clip(np.rint(v), info.min, info.max).astype(dtype)


def qlinear_global_avgpool(x, x_scale, x_zp, y_scale, y_zp) -> np.ndarray:
    """``QLinearGlobalAveragePool`` (NCHW, uint8) as MLAS's x86 kernel computes it: the int32 sum of each channel's
    codes, ``acc = Σ x − z_x·N``, ``s = s_x / (s_y · float(N))`` in float32, ``y = rne(clamp(float32(acc)·s,
    −z_y, 255 − z_y)) + z_y``."""
    x = np.asarray(x)
    n = x.shape[2] * x.shape[3]
    acc = x.reshape(*x.shape[:2], -1).astype(np.int64).sum(-1) - int(x_zp) * n
    scale = _F(_F(x_scale) / _F(_F(y_scale) * _F(n)))
    v = np.clip(acc.astype(_F) * scale, _F(-int(y_zp)), _F(255 - int(y_zp)))
    return (np.rint(v).astype(np.int32) + int(y_zp)).astype(np.uint8)[..., None, None]
