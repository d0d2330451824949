"""The operator vocabulary of model graphs: attribute schemas, shape rules and parameter counts.

Shapes exclude the batch dimension (batch 1): images are ``[C, H, W]``, token sequences ``[S]``,
hidden states ``[S, D]``, per-head tensors ``[heads, S, d]``. Each op has

* ``attrs(reader)`` — read and validate its attributes (problems collected with field paths);
* ``shape(attrs, in_shapes)`` — the output shape, or raise :class:`ShapeError` with the reason;
* ``params(attrs, in_shapes)`` — its learnable parameter count (torch's convention: BN has 2·C, not 4·C).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

from .config.fields import Reader

Shape = tuple[int, ...]


class ShapeError(Exception):
    """An impossible shape; the message says which and why."""


def _pair(r: Reader, key: str, default, minimum: int) -> tuple[int, int]:
    value = r.raw(key, default)
    vals = value if isinstance(value, list) else [value, value]
    ok = len(vals) == 2 and all(isinstance(v, int) and not isinstance(v, bool) and v >= minimum for v in vals)
    if not ok:
        r.bad(key, f"an integer ≥ {minimum} or a pair of them", value)
        return (max(minimum, 1), max(minimum, 1))
    return int(vals[0]), int(vals[1])


def _padding(r: Reader) -> tuple[int, int, int, int]:
    """Padding as int, [ph, pw] or [top, left, bottom, right] → (top, left, bottom, right)."""
    value = r.raw("padding", 0)
    vals = value if isinstance(value, list) else [value]
    if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in vals) or len(vals) not in (1, 2, 4):
        r.bad("padding", "a non-negative integer, [ph, pw] or [top, left, bottom, right]", value)
        return (0, 0, 0, 0)
    if len(vals) == 1:
        vals = vals * 4
    elif len(vals) == 2:
        vals = [vals[0], vals[1], vals[0], vals[1]]
    return tuple(int(v) for v in vals)


def _conv_out(size: int, k: int, s: int, pad: int, d: int, what: str, ceil_mode: bool) -> int:
    """``floor((size + pad − span) / s) + 1`` (``ceil`` with ceil_mode, as SCALE-Sim), span = d·(k−1)+1."""
    span = d * (k - 1) + 1
    if size + pad < span:
        raise ShapeError(f"kernel {what} {k} (dilated span {span}) is larger than the padded input {size + pad}")
    return (-(-(size + pad - span) // s) if ceil_mode else (size + pad - span) // s) + 1


# ---- attribute readers -----------------------------------------------------------------------------------

def _conv_attrs(r: Reader) -> dict:
    return dict(out_channels=r.pos_int("out_channels"), kernel=_pair(r, "kernel", None, 1),
                stride=_pair(r, "stride", 1, 1), padding=_padding(r), dilation=_pair(r, "dilation", 1, 1),
                groups=r.pos_int("groups", 1), bias=r.boolean("bias", True), ceil_mode=r.boolean("ceil_mode", False))


def _pool_attrs(r: Reader) -> dict:
    kernel = _pair(r, "kernel", None, 1)
    return dict(kernel=kernel, stride=_pair(r, "stride", list(kernel), 1), padding=_padding(r),
                dilation=(1, 1), ceil_mode=r.boolean("ceil_mode", False))


def _none(r: Reader) -> dict:
    return {}


# ---- shape rules -----------------------------------------------------------------------------------------

def _one(shapes: list[Shape]) -> Shape:
    if len(shapes) != 1:
        raise ShapeError(f"expects 1 input, got {len(shapes)}")
    return shapes[0]


def _spatial(a: dict, shapes: list[Shape], channels: int) -> Shape:
    x = _one(shapes)
    if len(x) != 3:
        raise ShapeError(f"expects a [C, H, W] input, got {list(x)}")
    (kh, kw), (sh, sw), (dh, dw) = a["kernel"], a["stride"], a["dilation"]
    t, l, b, rr = a["padding"]
    ceil = a["ceil_mode"]
    return (channels, _conv_out(x[1], kh, sh, t + b, dh, "height", ceil), _conv_out(x[2], kw, sw, l + rr, dw, "width", ceil))


def _conv_shape(a: dict, shapes: list[Shape]) -> Shape:
    x = _one(shapes)
    g = a["groups"]
    if len(x) == 3 and (x[0] % g or a["out_channels"] % g):
        raise ShapeError(f"in_channels {x[0]} and out_channels {a['out_channels']} must both be divisible by groups {g}")
    return _spatial(a, shapes, a["out_channels"])


def _linear_shape(a: dict, shapes: list[Shape]) -> Shape:
    x = _one(shapes)
    return x[:-1] + (a["out_features"],)


def _matmul_shape(a: dict, shapes: list[Shape]) -> Shape:
    if len(shapes) != 2:
        raise ShapeError(f"expects 2 inputs, got {len(shapes)}")
    x, y = shapes
    if len(x) < 2 or len(y) < 2 or x[:-2] != y[:-2]:
        raise ShapeError(f"expects [..., S, K] and [..., K, T] with equal leading dims, got {list(x)} and {list(y)}")
    k_b, t = (y[-1], y[-2]) if a["transpose_b"] else (y[-2], y[-1])
    if x[-1] != k_b:
        raise ShapeError(f"inner dimensions differ: {x[-1]} vs {k_b} (transpose_b={a['transpose_b']})")
    return x[:-1] + (t,)


def _same_shapes(a: dict, shapes: list[Shape]) -> Shape:
    if len(shapes) < 2 or any(s != shapes[0] for s in shapes):
        raise ShapeError(f"expects ≥ 2 inputs of one shape, got {[list(s) for s in shapes]}")
    return shapes[0]


def _split_heads(a: dict, shapes: list[Shape]) -> Shape:
    x = _one(shapes)
    if len(x) != 2 or x[1] % a["heads"]:
        raise ShapeError(f"expects [S, D] with D divisible by heads={a['heads']}, got {list(x)}")
    return (a["heads"], x[0], x[1] // a["heads"])


def _merge_heads(a: dict, shapes: list[Shape]) -> Shape:
    x = _one(shapes)
    if len(x) != 3:
        raise ShapeError(f"expects [heads, S, d], got {list(x)}")
    return (x[1], x[0] * x[2])


def _embedding_shape(a: dict, shapes: list[Shape]) -> Shape:
    return _one(shapes) + (a["dim"],)


def _seq_to_vector(a: dict, shapes: list[Shape]) -> Shape:
    x = _one(shapes)
    if len(x) != 2:
        raise ShapeError(f"expects an [S, D] input, got {list(x)}")
    return (x[1],)


def _global_pool(a: dict, shapes: list[Shape]) -> Shape:
    x = _one(shapes)
    if len(x) != 3:
        raise ShapeError(f"expects a [C, H, W] input, got {list(x)}")
    return (x[0], 1, 1)


# ---- parameter counts ------------------------------------------------------------------------------------

def _conv_params(a: dict, shapes: list[Shape]) -> int:
    kh, kw = a["kernel"]
    return a["out_channels"] * (shapes[0][0] // a["groups"]) * kh * kw + (a["out_channels"] if a["bias"] else 0)


def _linear_params(a: dict, shapes: list[Shape]) -> int:
    return shapes[0][-1] * a["out_features"] + (a["out_features"] if a["bias"] else 0)


@dataclass(frozen=True, slots=True)
class OpDef:
    attrs: Callable[[Reader], dict]
    shape: Callable[[dict, list[Shape]], Shape]
    params: Callable[[dict, list[Shape]], int] = lambda a, s: 0


def _elementwise(a: dict, shapes: list[Shape]) -> Shape:
    return _one(shapes)


OPS: dict[str, OpDef] = {
    "conv2d": OpDef(_conv_attrs, _conv_shape, _conv_params),
    "linear": OpDef(lambda r: dict(out_features=r.pos_int("out_features"), bias=r.boolean("bias", True)),
                    _linear_shape, _linear_params),
    "matmul": OpDef(lambda r: dict(transpose_b=r.boolean("transpose_b", False)), _matmul_shape),
    "embedding": OpDef(lambda r: dict(num_embeddings=r.pos_int("num_embeddings"), dim=r.pos_int("dim")),
                       _embedding_shape, lambda a, s: a["num_embeddings"] * a["dim"]),
    "add": OpDef(_none, _same_shapes),
    "mul": OpDef(_none, _same_shapes),
    "batchnorm": OpDef(lambda r: dict(eps=r.pos_float("eps", 1e-5)), _elementwise, lambda a, s: 2 * s[0][0]),
    "layernorm": OpDef(lambda r: dict(eps=r.pos_float("eps", 1e-12)), _elementwise, lambda a, s: 2 * s[0][-1]),
    "softmax": OpDef(lambda r: dict(scale=r.pos_float("scale", 1.0)), _elementwise),
    "maxpool": OpDef(_pool_attrs, lambda a, s: _spatial(a, s, _one(s)[0] if len(_one(s)) == 3 else 0)),
    "avgpool": OpDef(_pool_attrs, lambda a, s: _spatial(a, s, _one(s)[0] if len(_one(s)) == 3 else 0)),
    "global_avgpool": OpDef(_none, _global_pool),
    "flatten": OpDef(_none, lambda a, s: (math.prod(_one(s)),)),
    "first_token": OpDef(_none, _seq_to_vector),
    "mean_pool": OpDef(_none, _seq_to_vector),
    "split_heads": OpDef(lambda r: dict(heads=r.pos_int("heads")), _split_heads),
    "merge_heads": OpDef(_none, _merge_heads),
    **{act: OpDef(_none, _elementwise) for act in ("relu", "relu6", "gelu", "sigmoid", "tanh", "hardswish")},
}
