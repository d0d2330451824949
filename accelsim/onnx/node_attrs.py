"""What the converters (:mod:`.ops_map`, :mod:`.ops_window`, :mod:`.ops_qdq`) share: reading ONNX node
attributes — integer lists, axes (ONNX axis ``a`` is accelsim axis ``a − off``, ``off`` = 1 when the batch axis is
in front), the padding of a window op in 1 to 3 spatial dims — and the element-wise converter."""
from __future__ import annotations

import numpy as np


def ints(v) -> list[int]:
    """Any integer array or list → a list of ints."""
    return [int(x) for x in np.asarray(v).reshape(-1)]


def axis(n, a: int, rank: int) -> int:
    """ONNX axis ``a`` (negative counts from the end) of a rank-``rank`` tensor → the accelsim axis; the batch axis
    (with one in front) and axes out of range are an error naming the node."""
    v = a + rank if a < 0 else a
    if not n.off <= v < rank:
        n.fail(f"axis {a} is {'the batch axis' if n.off and v == 0 else 'out of range'} for rank {rank}")
    return v - n.off


def spatial_pads(n, k, s, d, out=None) -> list[int]:
    """Begins then ends from ``pads``/``auto_pad`` for the spatial dims of input 0 (``[N, C, *spatial]``); ``out``
    (the output's spatial sizes) adds ceil_mode's extra end pads."""
    sp = n.full(0)[2:]
    nd = len(k)
    auto = n.attr("auto_pad", "NOTSET")
    if auto in ("SAME_UPPER", "SAME_LOWER"):
        total = [max((-(-sp[i] // s[i]) - 1) * s[i] + (k[i] - 1) * d[i] + 1 - sp[i], 0) for i in range(nd)]
        lo = [t // 2 if auto == "SAME_UPPER" else t - t // 2 for t in total]
        pads = lo + [t - b for t, b in zip(total, lo)]
    elif auto == "VALID":
        pads = [0] * (2 * nd)
    else:
        pads = ints(n.attr("pads", [0] * (2 * nd)))
    if out is not None:   # ceil_mode: pad the end until floor mode gives ONNX's output size
        for i in range(nd):
            need = (out[i] - 1) * s[i] + (k[i] - 1) * d[i] + 1 - (sp[i] + pads[i] + pads[i + nd])
            pads[i + nd] += max(0, need)
    return pads


def elementwise(same_op: str, bcast_op: str):
    """An n-ary element-wise node: ``same_op`` when every input is an activation of the output's shape (e.g.
    ``add``, which fuses as a residual join), else ``bcast_op`` (numpy broadcasting); one input is an alias."""
    def convert(n):
        ins = [i for i in range(len(n.node.input)) if n.has(i)]
        if len(ins) == 1:
            return n.alias(n.x(0))
        same = all(not n.is_const(i) and n.full(i) == n.full_out() for i in ins)
        n.emit(same_op if same else bcast_op, [n.x(i) for i in ins], {})
    return convert
