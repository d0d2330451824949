"""Window geometry shared by convolution and pooling numerics (NCHW arrays).

* **One padding order, ONNX's**: ``padding`` is an int (all sides), ``(ph, pw)`` or
  ``(top, left, bottom, right)`` — begin values, then end values. Strides, dilations and kernels are an int
  or an ``(h, w)`` pair. Output size per axis: ``(H + begin + end − d·(R − 1) − 1) // s + 1``.
* A window tap ``(r, s)`` of every output position is one strided view of the padded input (:func:`window`).
"""
from __future__ import annotations

import numpy as np

from ..errors import AccelsimError


def pair(v, what: str = "value") -> tuple[int, int]:
    """An int or an ``(h, w)`` pair of ints ≥ 1 → ``(h, w)``."""
    p = (v, v) if np.isscalar(v) else tuple(v)
    if len(p) != 2 or any(int(e) != e or e < 1 for e in p):
        raise AccelsimError(f"{what} must be an int or an (h, w) pair of ints >= 1, got {v!r}")
    return int(p[0]), int(p[1])


def pads4(padding) -> tuple[int, int, int, int]:
    """Normalise ``padding`` to ONNX's ``(top, left, bottom, right)``."""
    p = (padding,) * 4 if np.isscalar(padding) else tuple(padding)
    if len(p) == 2:
        p = (p[0], p[1], p[0], p[1])
    if len(p) != 4 or any(int(v) != v or v < 0 for v in p):
        raise AccelsimError(f"padding must be an int, (ph, pw) or (top, left, bottom, right) >= 0, got {padding!r}")
    return tuple(int(v) for v in p)


def same_padding(h: int, w: int, kh: int, kw: int, stride: int = 1, dilation: int = 1):
    """TF "SAME" padding ``(top, left, bottom, right)``: output ``ceil(H/s)``, total pad
    ``max((ceil(H/s) − 1)·s + (k − 1)·d + 1 − H, 0)``, the odd pixel at the bottom/right."""
    def one(n, k):
        total = max((-(-n // stride) - 1) * stride + (k - 1) * dilation + 1 - n, 0)
        return total // 2, total - total // 2
    (t, b), (l, r) = one(h, kh), one(w, kw)
    return t, l, b, r


def conv_output_size(h: int, w: int, kh: int, kw: int, stride, pads, dilation) -> tuple[int, int]:
    """``(Ho, Wo)`` with ``Ho = (H + top + bottom − dh·(R − 1) − 1) // sh + 1`` (likewise Wo)."""
    (sh, sw), (dh, dw) = pair(stride, "stride"), pair(dilation, "dilation")
    t, l, b, r = pads
    ho = (h + t + b - dh * (kh - 1) - 1) // sh + 1
    wo = (w + l + r - dw * (kw - 1) - 1) // sw + 1
    if ho < 1 or wo < 1:
        raise AccelsimError(f"conv/pool window {kh}×{kw} (dilation {dh}×{dw}) does not fit the padded "
                            f"input {h + t + b}×{w + l + r}")
    return ho, wo


def pad(x, pads, value=0.0):
    """``x [N, C, H, W]`` padded by ``pads`` (top, left, bottom, right) with ``value`` (no copy without pads)."""
    t, l, b, r = pads
    if not (t or b or l or r):
        return x
    return np.pad(x, ((0, 0), (0, 0), (t, b), (l, r)), constant_values=value)


def window(xp, r, s, ho, wo, stride, dilation):
    """The strided slice of padded ``xp`` that kernel tap (r, s) sees: [N, C, Ho, Wo] (a view)."""
    (sh, sw), (dh, dw) = stride, dilation
    y0, x0 = r * dh, s * dw
    return xp[:, :, y0:y0 + sh * (ho - 1) + 1:sh, x0:x0 + sw * (wo - 1) + 1:sw]


def unpad(xp, pads, h, w):
    """The ``[H, W]`` interior of a padded array (inverse of :func:`pad`)."""
    t, l = pads[0], pads[1]
    return xp[:, :, t:t + h, l:l + w]
