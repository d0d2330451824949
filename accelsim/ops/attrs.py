"""Attribute readers shared by the op families: each takes a :class:`~accelsim.config.fields.Reader` (which
collects every problem with its field path) and returns plain values, falling back to a harmless value after
reporting a problem so that the rest of the layer is still checked."""
from __future__ import annotations

from ..config.fields import Reader
from ._geometry import pads_nd


def none(r: Reader) -> dict:
    """An op without attributes."""
    return {}


def _ints_ok(vals, minimum: int) -> bool:
    return all(isinstance(v, int) and not isinstance(v, bool) and v >= minimum for v in vals)


def spatial(r: Reader, key: str, default, minimum: int, d: int | None) -> tuple[int, ...]:
    """One integer ≥ ``minimum`` per spatial dim: an integer (every dim; two dims when ``d`` is None) or a list
    of ``d`` of them (``d`` None: a list of 1 to 3 sets the number of spatial dims)."""
    value = r.raw(key, default)
    vals = value if isinstance(value, list) else [value] * (d or 2)
    if not _ints_ok(vals, minimum) or (len(vals) != d if d else not 1 <= len(vals) <= 3):
        what = "a pair of them" if d == 2 else f"a list of {d}" if d else "a list of 1 to 3 (one per spatial dim)"
        r.bad(key, f"an integer ≥ {minimum} or {what}", value)
        return (max(minimum, 1),) * (d or 2)
    return tuple(int(v) for v in vals)


def pair(r: Reader, key: str, default, minimum: int) -> tuple[int, int]:
    """An integer ≥ ``minimum`` or a pair of them → ``(h, w)``."""
    return spatial(r, key, default, minimum, 2)


def padding(r: Reader, d: int = 2) -> tuple[int, ...]:
    """Padding as an int, one value per spatial dim or begins then ends (ONNX order; 2-D: [top, left, bottom,
    right]) → ``(begin_1..begin_d, end_1..end_d)``."""
    value = r.raw("padding", 0)
    vals = value if isinstance(value, list) else [value]
    if not _ints_ok(vals, 0) or len(vals) not in (1, d, 2 * d):
        r.bad("padding", "a non-negative integer, [ph, pw] or [top, left, bottom, right]" if d == 2 else
              f"a non-negative integer, {d} of them or {2 * d} (begins, then ends)", value)
        return (0,) * (2 * d)
    return pads_nd(vals[0] if len(vals) == 1 else vals, d)


def window(r: Reader) -> dict:
    """A pooling window in 1 to 3 spatial dims (an integer ``kernel``: 2-D): ``kernel``, ``stride`` (default the
    kernel), ``padding``, ``dilation`` (default 1), ``ceil_mode``."""
    kernel = spatial(r, "kernel", None, 1, None)
    d = len(kernel)
    return dict(kernel=kernel, stride=spatial(r, "stride", list(kernel), 1, d), padding=padding(r, d),
                dilation=spatial(r, "dilation", 1, 1, d), ceil_mode=r.boolean("ceil_mode", False))


def int_list(r: Reader, key: str, default=None, nullable: bool = False) -> list:
    """A list of integers (negative allowed; ``None`` entries where ``nullable``)."""
    value = r.raw(key, default)
    ok = isinstance(value, (list, tuple)) and all(
        (v is None and nullable) or (isinstance(v, int) and not isinstance(v, bool)) for v in value)
    if not ok:
        r.bad(key, "a list of integers", value)
        return []
    return list(value)


def number(r: Reader, key: str, default=None) -> float:
    """Any finite number (negative allowed; ``±inf`` only as the default)."""
    value = r.raw(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:
        r.bad(key, "a number", value)
        return 0.0
    return float(value)
