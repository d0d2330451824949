"""Attribute readers shared by the op families: each takes a :class:`~accelsim.config.fields.Reader` (which
collects every problem with its field path) and returns plain values, falling back to a harmless value after
reporting a problem so that the rest of the layer is still checked."""
from __future__ import annotations

from ..config.fields import Reader
from ._geometry import pads4


def none(r: Reader) -> dict:
    """An op without attributes."""
    return {}


def pair(r: Reader, key: str, default, minimum: int) -> tuple[int, int]:
    """An integer ≥ ``minimum`` or a pair of them → ``(h, w)``."""
    value = r.raw(key, default)
    vals = value if isinstance(value, list) else [value, value]
    ok = len(vals) == 2 and all(isinstance(v, int) and not isinstance(v, bool) and v >= minimum for v in vals)
    if not ok:
        r.bad(key, f"an integer ≥ {minimum} or a pair of them", value)
        return (max(minimum, 1), max(minimum, 1))
    return int(vals[0]), int(vals[1])


def padding(r: Reader) -> tuple[int, int, int, int]:
    """Padding as int, [ph, pw] or [top, left, bottom, right] (ONNX order) → (top, left, bottom, right)."""
    value = r.raw("padding", 0)
    vals = value if isinstance(value, list) else [value]
    if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in vals) or len(vals) not in (1, 2, 4):
        r.bad("padding", "a non-negative integer, [ph, pw] or [top, left, bottom, right]", value)
        return (0, 0, 0, 0)
    return pads4(vals[0] if len(vals) == 1 else vals)


def window(r: Reader) -> dict:
    """A pooling window: ``kernel``, ``stride`` (default the kernel), ``padding``, ``ceil_mode``."""
    kernel = pair(r, "kernel", None, 1)
    return dict(kernel=kernel, stride=pair(r, "stride", list(kernel), 1), padding=padding(r),
                dilation=(1, 1), ceil_mode=r.boolean("ceil_mode", False))


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
