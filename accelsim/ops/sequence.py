"""Sequence and attention ops — ``embedding``, ``softmax``, ``mask_bias``, ``mean_pool``, ``first_token``,
``split_heads``, ``merge_heads`` and imported ``softmax_axes``, ``log_softmax`` — with their numerics and
gradients.

Shapes: token sequences ``[S]``, hidden states ``[S, D]``, per-head tensors ``[heads, S, d]`` (batch axis
excluded). Padded batches carry an attention mask ``[S]`` (1 = token, 0 = padding): ``mask_bias`` turns it into
the additive bias of the attention ``softmax`` and ``mean_pool`` takes it as a second input.
"""
from __future__ import annotations

import numpy as np

from ..errors import AccelsimError
from . import attrs as A
from ._common import axes_ok, broadcasts, input_elements, layout, no_grad, one
from .registry import OpDef, Shape, ShapeError

# ---- numerics ----------------------------------------------------------------------------------------------


def softmax(x: np.ndarray, axis: int = -1, scale=None, bias=None) -> np.ndarray:
    """Numerically stable ``softmax(z)_i = exp(z_i − max z) / Σ_j exp(z_j − max z)`` along ``axis`` of
    ``z = x · scale + bias`` (attention: scores, 1/√d, the mask's additive bias); ``scale``/``bias`` optional.
    One temporary, worked on in place (the same float operations in the same order as the plain formula)."""
    z = x * x.dtype.type(scale) if scale is not None else None
    if bias is not None:
        z = z + bias if z is None else np.add(z, bias, out=z)
    if z is None:
        z = x - x.max(axis=axis, keepdims=True)
    else:
        z -= z.max(axis=axis, keepdims=True)
    np.exp(z, out=z)
    z /= z.sum(axis=axis, keepdims=True)
    return z


def log_softmax(x: np.ndarray, axis=-1) -> np.ndarray:
    """``log softmax(x)_i = (x_i − max x) − log Σ_j exp(x_j − max x)`` along ``axis`` (an int or a tuple)."""
    z = x - x.max(axis=axis, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=axis, keepdims=True))


def softmax_backward(dy, p, scale=None):
    """``p = softmax(x·scale + bias)`` along the last axis: ``dz = p ⊙ (dy − Σ_j p_j dy_j)``, ``dx = scale·dz``
    (the additive bias is a mask, not a parameter)."""
    dz = p * (dy - (p * dy).sum(axis=-1, keepdims=True))
    return dz * dz.dtype.type(scale) if scale is not None else dz


def embedding(ids: np.ndarray, table: np.ndarray) -> np.ndarray:
    """Row lookup ``table[ids]`` (shape ``ids.shape + (dim,)``); ids outside ``[0, rows)`` raise."""
    ids = np.asarray(ids)
    if ids.size and (ids.min() < 0 or ids.max() >= table.shape[0]):
        raise AccelsimError(f"embedding: ids must lie in [0, {table.shape[0]}), got range "
                            f"[{ids.min()}, {ids.max()}]")
    return table[ids]


def embedding_backward(dy, ids, rows: int):
    """``table[ids]``: scatter-add ``dy`` into the rows that were read (``np.add.at``)."""
    dt = np.zeros((rows, dy.shape[-1]), dtype=dy.dtype)
    np.add.at(dt, np.asarray(ids).reshape(-1), dy.reshape(-1, dy.shape[-1]))
    return dt


def split_heads(x: np.ndarray, heads: int) -> np.ndarray:
    """``[B, S, heads·d] → [B, heads, S, d]`` (contiguous copy, so the attention matmuls hit BLAS)."""
    b, s, hd = x.shape
    return np.ascontiguousarray(x.reshape(b, s, heads, hd // heads).transpose(0, 2, 1, 3))


def merge_heads(x: np.ndarray) -> np.ndarray:
    """``[B, heads, S, d] → [B, S, heads·d]`` (inverse of :func:`split_heads`)."""
    b, h, s, d = x.shape
    return np.ascontiguousarray(x.transpose(0, 2, 1, 3)).reshape(b, s, h * d)


def mask_bias(mask: np.ndarray, dtype=np.float32) -> np.ndarray:
    """Additive attention bias ``[B, 1, 1, S]`` from a key mask ``[B, S]``: 0 where ``mask`` ≠ 0, the dtype's most
    negative finite value where it is 0 (as Hugging Face BERT), so masked keys get probability exactly 0."""
    mask = np.asarray(mask)
    return np.where(mask[:, None, None, :] != 0, dtype(0), np.finfo(dtype).min).astype(dtype)


def mean_pool(hidden: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    """Mean over the sequence axis of ``hidden [B, S, D]``; with a mask ``[B, S]`` the masked mean
    ``Σ_t m_t·h_t / max(Σ_t m_t, 1e-9)`` (sentence-transformers' mean pooling)."""
    if mask is None:
        return hidden.mean(axis=1)
    m = mask.astype(hidden.dtype)[:, :, None]
    return (hidden * m).sum(axis=1) / np.maximum(m.sum(axis=1), hidden.dtype.type(1e-9))


def mean_pool_backward(dy, hidden_shape, mask=None):
    """:func:`mean_pool`: ``dh_t = dy / S`` unmasked; with a mask ``dh_t = m_t·dy / max(Σ m, 1e-9)``."""
    b, s, _ = hidden_shape
    if mask is None:
        return np.broadcast_to(dy[:, None, :] / dy.dtype.type(s), hidden_shape).copy()
    m = mask.astype(dy.dtype)[:, :, None]
    return m * (dy[:, None, :] / np.maximum(m.sum(axis=1, keepdims=True), dy.dtype.type(1e-9)))


def l2_normalize(x: np.ndarray, eps: float = 1e-12) -> np.ndarray:
    """``x / max(‖x‖₂, eps)`` along the last axis (torch ``F.normalize``)."""
    n = np.linalg.norm(x, axis=-1, keepdims=True)
    return x / np.maximum(n, x.dtype.type(eps))


# ---- the registry entries ----------------------------------------------------------------------------------

def _softmax_shape(a: dict, shapes: list[Shape]) -> Shape:
    """``softmax(x · scale [+ bias])``: one input, or a second (additive bias) that broadcasts against x."""
    if len(shapes) not in (1, 2):
        raise ShapeError(f"expects 1 input (+ an optional additive bias), got {len(shapes)}")
    if len(shapes) == 2 and not broadcasts(shapes[0], shapes[1]):
        raise ShapeError(f"bias {list(shapes[1])} does not broadcast against {list(shapes[0])}")
    return shapes[0]


def _softmax_axes_shape(a: dict, shapes: list[Shape]) -> Shape:
    x = one(shapes)
    if not a["axes"] or not axes_ok(a["axes"], len(x)):
        raise ShapeError(f"axes {a['axes']} are not distinct axes of {list(x)}")
    return x


def _softmax_axes_back(a, xs, y, dy, ctx):
    axes = tuple(i + 1 for i in a["axes"])
    return [y * (dy - (dy * y).sum(axis=axes, keepdims=True))]


def _log_softmax_back(a, xs, y, dy, ctx):
    """``y = log softmax(x)``: ``dx = dy − e^y · Σ dy`` over the axes."""
    axes = tuple(i + 1 for i in a["axes"])
    return [dy - np.exp(y) * dy.sum(axis=axes, keepdims=True)]


def _mask_bias_shape(a: dict, shapes: list[Shape]) -> Shape:
    x = one(shapes)
    if len(x) != 1:
        raise ShapeError(f"expects a mask [S], got {list(x)}")
    return (1, 1, x[0])


def _split_heads_shape(a: dict, shapes: list[Shape]) -> Shape:
    x = one(shapes)
    if len(x) != 2 or x[1] % a["heads"]:
        raise ShapeError(f"expects [S, D] with D divisible by heads={a['heads']}, got {list(x)}")
    return (a["heads"], x[0], x[1] // a["heads"])


def _merge_heads_shape(a: dict, shapes: list[Shape]) -> Shape:
    x = one(shapes)
    if len(x) != 3:
        raise ShapeError(f"expects [heads, S, d], got {list(x)}")
    return (x[1], x[0] * x[2])


def _seq_to_vector(a: dict, shapes: list[Shape]) -> Shape:
    x = one(shapes)
    if len(x) != 2:
        raise ShapeError(f"expects an [S, D] input, got {list(x)}")
    return (x[1],)


def _mean_pool_shape(a: dict, shapes: list[Shape]) -> Shape:
    """Mean over the sequence of ``[S, D]``; an optional second input is the mask ``[S]``."""
    if len(shapes) == 2:
        if shapes[1] != shapes[0][:1]:
            raise ShapeError(f"mask {list(shapes[1])} does not match the sequence of {list(shapes[0])}")
        return _seq_to_vector(a, shapes[:1])
    return _seq_to_vector(a, shapes)


def _embedding_back(a, xs, y, dy, ctx):
    ctx.add_grad("weight", embedding_backward(dy, xs[0], a["num_embeddings"]))
    return [None]


def _first_token_back(a, xs, y, dy, ctx):
    dx = np.zeros_like(xs[0])
    dx[:, 0] = dy
    return [dx]


OPS = {
    "embedding": OpDef(lambda r: dict(num_embeddings=r.pos_int("num_embeddings"), dim=r.pos_int("dim")),
                       lambda a, s: one(s) + (a["dim"],), lambda a, xs, ctx: embedding(xs[0], ctx.param("weight")),
                       params=lambda a, s: a["num_embeddings"] * a["dim"],
                       weights=lambda a, s: {"weight": (a["num_embeddings"], a["dim"])},
                       vector_ops=1.0, backward=_embedding_back),
    "softmax": OpDef(lambda r: dict(scale=r.pos_float("scale", 1.0)), _softmax_shape,
                     lambda a, xs, ctx: softmax(xs[0], -1, a["scale"], xs[1] if len(xs) == 2 else None),
                     vector_ops=5.0, epilogue="row",
                     backward=lambda a, xs, y, dy, ctx: [softmax_backward(dy, y, a["scale"])] + [None] * (len(xs) - 1)),
    "mask_bias": OpDef(A.none, _mask_bias_shape, lambda a, xs, ctx: mask_bias(xs[0]), vector_ops=1.0,
                       backward=no_grad),
    "mean_pool": OpDef(A.none, _mean_pool_shape, lambda a, xs, ctx: mean_pool(*xs), vector_ops=1.0,
                       elements=input_elements,
                       backward=lambda a, xs, y, dy, ctx: [mean_pool_backward(dy, xs[0].shape, xs[1] if len(xs) == 2
                                                                              else None)] + [None] * (len(xs) - 1)),
    "first_token": OpDef(A.none, _seq_to_vector, layout(lambda a, x: x[:, 0]), backward=_first_token_back),
    "split_heads": OpDef(lambda r: dict(heads=r.pos_int("heads")), _split_heads_shape,
                         layout(lambda a, x: split_heads(x, a["heads"])),
                         backward=lambda a, xs, y, dy, ctx: [merge_heads(dy)]),
    "merge_heads": OpDef(A.none, _merge_heads_shape, layout(lambda a, x: merge_heads(x)),
                         backward=lambda a, xs, y, dy, ctx: [split_heads(dy, xs[0].shape[1])]),
}

IMPORTED = {
    "softmax_axes": OpDef(lambda r: dict(axes=A.int_list(r, "axes")), _softmax_axes_shape,
                          lambda a, xs, ctx: softmax(xs[0], tuple(i + 1 for i in a["axes"])), vector_ops=5.0,
                          backward=_softmax_axes_back),
    "log_softmax": OpDef(lambda r: dict(axes=A.int_list(r, "axes")), _softmax_axes_shape,
                         lambda a, xs, ctx: log_softmax(xs[0], tuple(i + 1 for i in a["axes"])), vector_ops=6.0,
                         backward=_log_softmax_back),
}
