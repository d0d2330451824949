"""Window geometry shared by convolution and pooling numerics (``[N, C, *spatial]`` arrays, 1 to 3 spatial dims).

* **One padding order, ONNX's**: ``padding`` is an int (all sides), one value per spatial dim, or the begin
  values then the end values (2-D: ``(top, left, bottom, right)``). Strides, dilations and kernels are an int or
  one value per spatial dim. Output size per dim: ``(size + begin + end − d·(k − 1) − 1) // s + 1``.
* A window tap (one offset per spatial dim) of every output position is one strided view of the padded input
  (:func:`window_nd`); the 2-D helpers (:func:`pair`, :func:`pads4`, :func:`window`, :func:`unpad`,
  :func:`conv_output_size`) are the same rules with two spatial dims.
"""
from __future__ import annotations

import numpy as np

from ..errors import AccelsimError


def ntuple(v, d: int, what: str = "value") -> tuple[int, ...]:
    """An int or ``d`` ints ≥ 1 → a ``d``-tuple."""
    p = (v,) * d if np.isscalar(v) else tuple(v)
    if len(p) != d or any(int(e) != e or e < 1 for e in p):
        raise AccelsimError(f"{what} must be an int or {d} ints >= 1, got {v!r}")
    return tuple(int(e) for e in p)


def pair(v, what: str = "value") -> tuple[int, int]:
    """An int or an ``(h, w)`` pair of ints ≥ 1 → ``(h, w)``."""
    return ntuple(v, 2, what)


def pads_nd(padding, d: int) -> tuple[int, ...]:
    """Normalise ``padding`` to ONNX's ``(begin_1..begin_d, end_1..end_d)``."""
    p = (padding,) * (2 * d) if np.isscalar(padding) else tuple(padding)
    if len(p) == d:
        p = p + p
    if len(p) != 2 * d or any(int(v) != v or v < 0 for v in p):
        raise AccelsimError(f"padding must be an int, {d} values or {2 * d} (begins, then ends) >= 0, "
                            f"got {padding!r}")
    return tuple(int(v) for v in p)


def pads4(padding) -> tuple[int, int, int, int]:
    """Normalise 2-D ``padding`` to ONNX's ``(top, left, bottom, right)``."""
    return pads_nd(padding, 2)


def same_padding(h: int, w: int, kh: int, kw: int, stride: int = 1, dilation: int = 1):
    """TF "SAME" padding ``(top, left, bottom, right)``: output ``ceil(H/s)``, total pad
    ``max((ceil(H/s) − 1)·s + (k − 1)·d + 1 − H, 0)``, the odd pixel at the bottom/right."""
    def one(n, k):
        total = max((-(-n // stride) - 1) * stride + (k - 1) * dilation + 1 - n, 0)
        return total // 2, total - total // 2
    (t, b), (l, r) = one(h, kh), one(w, kw)
    return t, l, b, r


def out_sizes(sizes, kernel, stride, pads, dilation) -> tuple[int, ...]:
    """Output size per spatial dim: ``(size + begin + end − d·(k − 1) − 1) // s + 1`` (an error below 1)."""
    d = len(sizes)
    out = tuple((n + pads[i] + pads[i + d] - dilation[i] * (kernel[i] - 1) - 1) // stride[i] + 1
                for i, n in enumerate(sizes))
    if min(out, default=1) < 1:
        raise AccelsimError(f"conv/pool window {'×'.join(map(str, kernel))} (dilation "
                            f"{'×'.join(map(str, dilation))}) does not fit the padded input "
                            f"{'×'.join(str(n + pads[i] + pads[i + d]) for i, n in enumerate(sizes))}")
    return out


def conv_output_size(h: int, w: int, kh: int, kw: int, stride, pads, dilation) -> tuple[int, int]:
    """``(Ho, Wo)`` with ``Ho = (H + top + bottom − dh·(R − 1) − 1) // sh + 1`` (likewise Wo)."""
    return out_sizes((h, w), (kh, kw), pair(stride, "stride"), pads, pair(dilation, "dilation"))


def pad(x, pads, value=0.0):
    """``x [N, C, *spatial]`` padded by ``pads`` (begins then ends) with ``value`` (no copy without pads)."""
    if not any(pads):
        return x
    d = len(pads) // 2
    return np.pad(x, [(0, 0)] * (x.ndim - d) + [(pads[i], pads[i + d]) for i in range(d)], constant_values=value)


def window_nd(xp, tap, out, stride, dilation):
    """The strided slice of padded ``xp`` that kernel tap ``tap`` sees: ``[N, C, *out]`` (a view)."""
    lead = (slice(None),) * (xp.ndim - len(tap))
    return xp[lead + tuple(slice(t * d, t * d + s * (o - 1) + 1, s)
                           for t, o, s, d in zip(tap, out, stride, dilation))]


def window(xp, r, s, ho, wo, stride, dilation):
    """The 2-D :func:`window_nd`: tap (r, s), output [N, C, Ho, Wo]."""
    return window_nd(xp, (r, s), (ho, wo), stride, dilation)


def unpad_nd(xp, pads, sizes):
    """The ``sizes`` interior of a padded array (inverse of :func:`pad`)."""
    lead = (slice(None),) * (xp.ndim - len(sizes))
    return xp[lead + tuple(slice(p, p + n) for p, n in zip(pads, sizes))]


def unpad(xp, pads, h, w):
    """The 2-D :func:`unpad_nd`: the ``[H, W]`` interior."""
    return unpad_nd(xp, pads, (h, w))
