"""Layout ops — ``flatten`` and the imported ``constant``, ``reshape``, ``transpose``, ``concat``, ``slice``,
``pad``, ``gather``, ``tile``, ``expand`` — which move data without vector work (``vector_ops`` 0: they cost
nothing).

Axes count in the shapes (one inference; a model YAML's axis 0 is the first non-batch dimension); at run time
each array has the batch axis in front.
"""
from __future__ import annotations

import math

import numpy as np

from . import attrs as A
from ._common import layout, one, unbroadcast
from .registry import OpDef, Shape, ShapeError


def _reshape_shape(a: dict, shapes: list[Shape]) -> Shape:
    x, out = one(shapes), tuple(a["shape"])
    if any(d <= 0 for d in out) or math.prod(out) != math.prod(x):
        raise ShapeError(f"cannot reshape {list(x)} ({math.prod(x)} elements) to {list(out)}")
    return out


def _transpose_shape(a: dict, shapes: list[Shape]) -> Shape:
    x, perm = one(shapes), a["perm"]
    if sorted(perm) != list(range(len(x))):
        raise ShapeError(f"perm {perm} is not a permutation of the {len(x)} axes of {list(x)}")
    return tuple(x[p] for p in perm)


def _concat_shape(a: dict, shapes: list[Shape]) -> Shape:
    ax = a["axis"]
    if not shapes or not 0 <= ax < len(shapes[0]) or any(
            len(s) != len(shapes[0]) or s[:ax] + s[ax + 1:] != shapes[0][:ax] + shapes[0][ax + 1:] for s in shapes):
        raise ShapeError(f"cannot concatenate {[list(s) for s in shapes]} along axis {ax}")
    return shapes[0][:ax] + (sum(s[ax] for s in shapes),) + shapes[0][ax + 1:]


def _slices(a: dict) -> tuple:
    return tuple(slice(b, e, s) for b, e, s in zip(a["starts"], a["ends"], a["steps"]))


def _slice_shape(a: dict, shapes: list[Shape]) -> Shape:
    """``x[starts:ends:steps]`` per axis (lists as long as the rank; an end of ``None`` runs to the edge)."""
    x = one(shapes)
    if not len(a["starts"]) == len(a["ends"]) == len(a["steps"]) == len(x) or 0 in a["steps"]:
        raise ShapeError(f"starts/ends/steps must give one non-zero step per axis of {list(x)}")
    out = tuple(len(range(*sl.indices(d))) for sl, d in zip(_slices(a), x))
    if 0 in out:
        raise ShapeError(f"slice of {list(x)} is empty")
    return out


def _pad_shape(a: dict, shapes: list[Shape]) -> Shape:
    x, p = one(shapes), a["pads"]
    if len(p) != 2 * len(x):
        raise ShapeError(f"pads needs {2 * len(x)} values (begins then ends) for {list(x)}, got {len(p)}")
    out = tuple(d + p[i] + p[i + len(x)] for i, d in enumerate(x))
    if min(out) <= 0:
        raise ShapeError(f"pads {p} leave nothing of {list(x)}")
    return out


def _run_pad(a: dict, xs: list, ctx):
    x, p, n = xs[0], a["pads"], xs[0].ndim - 1
    cut = (slice(None),) + tuple(slice(max(0, -p[i]), d - max(0, -p[i + n]))
                                     for i, d in enumerate(x.shape[1:]))
    widths = [(0, 0)] + [(max(0, p[i]), max(0, p[i + n])) for i in range(n)]
    kw = {"constant_values": a["value"]} if a["mode"] == "constant" else {}
    return np.pad(x[cut], widths, mode=a["mode"], **kw)


def _tile_shape(a: dict, shapes: list[Shape]) -> Shape:
    x, reps = one(shapes), a["repeats"]
    if len(reps) != len(x) or min(reps, default=1) < 1:
        raise ShapeError(f"repeats {reps} must give one positive count per axis of {list(x)}")
    return tuple(d * r for d, r in zip(x, reps))


def _tile_back(a, xs, y, dy, ctx):
    """Each input element is read once per repetition: sum the repetitions back."""
    x = xs[0]
    split = [dy.shape[0]] + [v for r, d in zip(a["repeats"], x.shape[1:]) for v in (r, d)]
    return [dy.reshape(split).sum(axis=tuple(range(1, len(split), 2)))]


def _expand_shape(a: dict, shapes: list[Shape]) -> Shape:
    """ONNX Expand: ``x`` broadcast with ``shape`` (numpy rules, both ways)."""
    x, target = one(shapes), tuple(a["shape"])
    try:
        return tuple(np.broadcast_shapes(x, target))
    except ValueError:
        raise ShapeError(f"{list(x)} does not broadcast with {list(target)}") from None


def _gather_shape(a: dict, shapes: list[Shape]) -> Shape:
    x, ax, idx = one(shapes), a["axis"], np.asarray(a["indices"])
    if not 0 <= ax < len(x) or idx.size == 0 or idx.min() < -x[ax] or idx.max() >= x[ax]:
        raise ShapeError(f"indices {a['indices']} out of range for axis {ax} of {list(x)}")
    return x[:ax] + idx.shape + x[ax + 1:]


# ---- gradient rules ----------------------------------------------------------------------------------------

def _reshape_back(a, xs, y, dy, ctx):
    """``dx = dy`` in ``x``'s shape."""
    return [dy.reshape(xs[0].shape)]


def _slice_back(a, xs, y, dy, ctx):
    dx = np.zeros_like(xs[0])
    dx[(slice(None), *_slices(a))] = dy
    return [dx]


def _pad_back(a, xs, y, dy, ctx):
    if a["mode"] != "constant" or min(a["pads"]) < 0:
        ctx.unsupported("no gradient rule for non-constant or negative padding")
    return [dy[(slice(None), *(slice(a["pads"][i], a["pads"][i] + d) for i, d in enumerate(xs[0].shape[1:])))]]


def _concat_back(a, xs, y, dy, ctx):
    cuts = np.cumsum([x.shape[a["axis"] + 1] for x in xs])[:-1]
    return np.split(dy, cuts, axis=a["axis"] + 1)


def _run_expand(a: dict, xs: list, ctx):
    x = xs[0]
    out = np.broadcast_shapes(x.shape[1:], tuple(a["shape"]))
    return np.ascontiguousarray(np.broadcast_to(x.reshape((len(x),) + (1,) * (len(out) - x.ndim + 1) + x.shape[1:]),
                                                (len(x), *out)))


def _expand_back(a, xs, y, dy, ctx):
    """Sum ``dy`` over the axes the expansion added (after the batch axis) and those it stretched from 1."""
    extra = dy.ndim - xs[0].ndim
    return [unbroadcast(dy.sum(axis=tuple(range(1, 1 + extra))) if extra else dy, xs[0].shape)]


def _run_concat(a: dict, xs: list, ctx):
    """``np.concatenate`` along ``axis``; a constant input (batch axis 1) is repeated over the batch."""
    n = max(len(x) for x in xs)
    return np.concatenate([x if len(x) == n else np.broadcast_to(x, (n, *x.shape[1:])) for x in xs],
                          axis=a["axis"] + 1)


def _constant_back(a, xs, y, dy, ctx):
    ctx.add_grad("value", dy.sum(axis=0))
    return [None]


OPS = {
    "flatten": OpDef(A.none, lambda a, s: (math.prod(one(s)),), layout(lambda a, x: x.reshape(len(x), -1)),
                     backward=_reshape_back),
}

IMPORTED = {
    # a weight tensor as a graph tensor (binding ``prefix.value``); at run time it gains a batch axis of 1
    "constant": OpDef(lambda r: dict(shape=A.int_list(r, "shape", [])), lambda a, s: tuple(a["shape"]),
                      lambda a, xs, ctx: ctx.param("value")[None], params=lambda a, s: math.prod(a["shape"]),
                      weights=lambda a, s: {"value": tuple(a["shape"])}, backward=_constant_back),
    "reshape": OpDef(lambda r: dict(shape=A.int_list(r, "shape")), _reshape_shape,
                     layout(lambda a, x: x.reshape((len(x), *a["shape"]))), backward=_reshape_back),
    "transpose": OpDef(lambda r: dict(perm=A.int_list(r, "perm")), _transpose_shape,
                       layout(lambda a, x: x.transpose(0, *(p + 1 for p in a["perm"]))),
                       backward=lambda a, xs, y, dy, ctx: [dy.transpose(0, *(int(i) + 1 for i in np.argsort(a["perm"])))]),
    "concat": OpDef(lambda r: dict(axis=r.nonneg_int("axis")), _concat_shape,
                    _run_concat, backward=_concat_back),
    "slice": OpDef(lambda r: dict(starts=A.int_list(r, "starts"), ends=A.int_list(r, "ends", nullable=True),
                                  steps=A.int_list(r, "steps")), _slice_shape,
                   layout(lambda a, x: x[(slice(None), *_slices(a))]), backward=_slice_back),
    "pad": OpDef(lambda r: dict(pads=A.int_list(r, "pads"), mode=r.choice("mode", ("constant", "reflect", "edge"))
                                if "mode" in r.data else "constant", value=A.number(r, "value", 0.0)),
                 _pad_shape, _run_pad, backward=_pad_back),
    "gather": OpDef(lambda r: dict(axis=r.nonneg_int("axis"), indices=r.raw("indices")), _gather_shape,
                    layout(lambda a, x: np.take(x, np.asarray(a["indices"]), axis=a["axis"] + 1))),
    # copies: costed as moves (no vector work), like the other layout ops
    "tile": OpDef(lambda r: dict(repeats=A.int_list(r, "repeats")), _tile_shape,
                  layout(lambda a, x: np.tile(x, (1, *a["repeats"]))), backward=_tile_back),
    "expand": OpDef(lambda r: dict(shape=A.int_list(r, "shape")), _expand_shape, _run_expand, backward=_expand_back),
}
