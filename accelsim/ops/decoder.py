"""Decoder-LLM ops — ``rmsnorm``, ``rope``, ``swiglu``, ``group_heads``/``ungroup_heads`` (grouped-query
attention), ``causal_softmax``, ``last_token`` and ``tied_linear`` — with their numerics and gradients.

Shapes (batch axis excluded): hidden states ``[S, D]``, per-head tensors ``[heads, S, d]``, positions ``[S]``
(absolute token positions, ints). A llama-style block (:mod:`accelsim.llm.architecture` builds it) runs

* ``rmsnorm`` → q/k/v ``linear`` → ``split_heads`` → ``rope`` on q and k (positions = past_len + 0..S−1);
* the KV cache: ``concat`` (axis 1) of the graph input ``past_k.<l>`` ``[kv_heads, past_len, d]`` and the new
  keys → ``present_k.<l>`` ``[kv_heads, past_len + S, d]`` (the same for v);
* grouped-query attention without copying K/V: ``group_heads`` stacks the ``groups = heads / kv_heads`` query
  heads that share one KV head along the rows, ``[heads, S, d] → [kv_heads, groups·S, d]`` (row ``g·S + i`` is
  query head ``kv·groups + g``, token i), so the score and context ``matmul`` are ``kv_heads`` GEMMs of
  ``(groups·S × d) @ (d × (past_len + S))`` and ``(groups·S × (past_len+S)) @ ((past_len+S) × d)`` that read
  each cached K/V head once; ``causal_softmax`` masks key ``j > past_len + i`` (past_len = keys − queries);
  ``ungroup_heads`` undoes the grouping before ``merge_heads``;
* ``swiglu(gate, up) = silu(gate) ⊙ up`` between the FFN's ``linear`` layers; residual ``add``.

``tied_linear`` is a ``linear`` whose weight is another layer's (a tied output projection reads the token
embedding): the same GEMM, with no parameters of its own, so a model's size counts the shared tensor once.
"""
from __future__ import annotations

import math
from dataclasses import replace

import numpy as np

from . import attrs as A
from ._common import float_dtype, layout, one
from .gemm import OPS as _GEMM_OPS
from .registry import OpDef, Shape, ShapeError
from .sequence import softmax_backward

# ---- numerics ----------------------------------------------------------------------------------------------


def rms_norm(x: np.ndarray, gamma: np.ndarray, eps: float) -> np.ndarray:
    """``y = x · r · γ`` with ``r = 1/√(mean(x²) + eps)`` over the last axis (llama's RMSNorm; the mean is
    ``np.mean``'s: the sum in x's dtype divided by the count)."""
    r = 1.0 / np.sqrt(np.add.reduce(x * x, axis=-1, keepdims=True) / x.shape[-1] + x.dtype.type(eps))
    return (x * r.astype(x.dtype)) * np.asarray(gamma, x.dtype)


def rms_norm_backward(dy, x, gamma, eps: float):
    """:func:`rms_norm`: with ``g = dy·γ``, ``dx = r·g − x·r³·mean(g·x)``, ``dγ = Σ dy·x·r`` (leading axes)."""
    r = 1.0 / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + x.dtype.type(eps))
    g = dy * gamma
    dx = r * g - x * r ** 3 * np.mean(g * x, axis=-1, keepdims=True)
    return dx.astype(dy.dtype), (dy * x * r).reshape(-1, x.shape[-1]).sum(axis=0)


ROPE_STYLES = ("adjacent", "half")
"""Which channels RoPE rotates together: ``adjacent`` pairs ``(2i, 2i+1)`` (GGUF llama, llama.cpp's ``NORM``
mode) or ``half`` pairs ``(i, i + d/2)`` (GPT-NeoX / Hugging Face ``rotate_half``)."""


def rope_angles(positions: np.ndarray, dims: int, theta: float):
    """``(cos, sin)`` of ``pos · θ^(−2i/dims)`` for ``i < dims/2`` in float64, shape ``positions + [dims/2]``."""
    inv = float(theta) ** (-np.arange(0, dims, 2, dtype=np.float64) / dims)
    ang = np.asarray(positions, np.float64)[..., None] * inv
    return np.cos(ang), np.sin(ang)


def _rope_tables(positions: np.ndarray, dims: int, theta: float, dtype) -> tuple[np.ndarray, np.ndarray]:
    """:func:`rope_angles` of ``positions [B, S]`` in ``dtype``, shaped ``[B, 1, S, dims/2]`` (read-only), remembered
    for the last few calls: every layer of a decoder rotates at the same positions."""
    positions = np.asarray(positions)
    key = (positions.shape, positions.dtype.str, positions.tobytes(), int(dims), float(theta), np.dtype(dtype).str)
    hit = _TABLES.get(key)
    if hit is None:
        while len(_TABLES) >= 8:
            _TABLES.pop(next(iter(_TABLES)))
        hit = _TABLES[key] = tuple(a[:, None].astype(dtype) for a in rope_angles(positions, dims, theta))
        for a in hit:
            a.flags.writeable = False
    return hit


_TABLES: dict = {}


def _pairs(x: np.ndarray, dims: int, style: str):
    """The two channel sets RoPE rotates into each other (views of ``x``)."""
    if style == "adjacent":
        return x[..., 0:dims:2], x[..., 1:dims:2]
    return x[..., : dims // 2], x[..., dims // 2: dims]


def rope(x: np.ndarray, positions: np.ndarray, theta: float, dims: int | None = None, style: str = "adjacent",
         inverse: bool = False) -> np.ndarray:
    """Rotary position embedding of ``x [B, heads, S, d]`` at ``positions [B, S]``: each pair ``(a, b)`` of the
    first ``dims`` channels (:data:`ROPE_STYLES`) becomes ``(a·cos − b·sin, a·sin + b·cos)`` with angle
    ``pos · θ^(−2i/dims)`` (computed in float64, applied in x's dtype); the other channels pass through.
    ``inverse`` rotates by the negative angle (the transpose: the gradient rule)."""
    dims = x.shape[-1] if dims is None else dims
    cos, sin = _rope_tables(positions, dims, theta, x.dtype)                     # [B, 1, S, dims/2]
    if inverse:
        sin = -sin
    y = x.copy()
    a, b = _pairs(x, dims, style)
    ya, yb = _pairs(y, dims, style)
    ya[...] = a * cos - b * sin
    yb[...] = a * sin + b * cos
    return y


def silu(x: np.ndarray) -> np.ndarray:
    """``x · σ(x) = x / (1 + e^(−x))``."""
    return x / (x.dtype.type(1) + np.exp(-x))


def swiglu(gate: np.ndarray, up: np.ndarray) -> np.ndarray:
    """``silu(gate) ⊙ up`` (llama's FFN activation)."""
    return silu(gate) * up


def swiglu_backward(dy, gate, up):
    """``d/dgate = dy·up·σ(g)·(1 + g·(1 − σ(g)))``, ``d/dup = dy·silu(g)``."""
    s = 1.0 / (1.0 + np.exp(-gate))
    return dy * up * s * (1.0 + gate * (1.0 - s)), dy * gate * s


def group_heads(x: np.ndarray, groups: int) -> np.ndarray:
    """``[B, heads, S, d] → [B, heads/groups, groups·S, d]``: the query heads sharing one KV head stacked along
    the rows (a reshape: head ``kv·groups + g``, token i → row ``g·S + i`` of group ``kv``)."""
    b, h, s, d = x.shape
    return x.reshape(b, h // groups, groups * s, d)


def ungroup_heads(x: np.ndarray, groups: int) -> np.ndarray:
    """Inverse of :func:`group_heads`: ``[B, kv, groups·S, d] → [B, kv·groups, S, d]``."""
    b, kv, gs, d = x.shape
    return x.reshape(b, kv * groups, gs // groups, d)


def causal_mask(rows: int, keys: int, groups: int = 1) -> np.ndarray:
    """``[rows, keys]`` bool, True where row ``r`` (query ``i = r mod (rows/groups)``) may see key ``j``:
    ``j ≤ past + i`` with ``past = keys − rows/groups`` (the tokens already in the KV cache)."""
    s = rows // groups
    i = np.arange(rows) % s
    return np.arange(keys)[None, :] <= (keys - s + i)[:, None]


def causal_softmax(x: np.ndarray, scale: float, groups: int = 1) -> np.ndarray:
    """``softmax(x·scale)`` over the keys (last axis) with the causal mask (:func:`causal_mask`): masked keys get
    probability exactly 0. ``x`` is ``[B, kv, groups·S, keys]`` (or ``[..., S, keys]`` with ``groups = 1``)."""
    if x.shape[-2] == groups:          # one query (a decode step): it sees every key
        z = x * x.dtype.type(scale)
    else:
        z = np.where(causal_mask(x.shape[-2], x.shape[-1], groups), x * x.dtype.type(scale), x.dtype.type(-np.inf))
    z -= z.max(axis=-1, keepdims=True)
    np.exp(z, out=z)
    z /= z.sum(axis=-1, keepdims=True)
    return z


# ---- the registry entries ----------------------------------------------------------------------------------

def _rope_attrs(r) -> dict:
    return dict(theta=r.pos_float("theta", 10000.0, maximum=1e12), dims=r.pos_int("dims", None),
                style=r.choice("style", ROPE_STYLES, "adjacent"))


def _rope_shape(a: dict, shapes: list[Shape]) -> Shape:
    """``rope(x [heads, S, d], positions [S])`` → x's shape; ``dims`` (default d) even and ≤ d."""
    if len(shapes) != 2 or len(shapes[0]) != 3 or shapes[1] != shapes[0][1:2]:
        raise ShapeError(f"expects x [heads, S, d] and positions [S], got {[list(s) for s in shapes]}")
    dims = a["dims"] or shapes[0][2]
    if dims % 2 or dims > shapes[0][2]:
        raise ShapeError(f"rotary dims {dims} must be even and ≤ the head size {shapes[0][2]}")
    return shapes[0]


def _rope_back(a, xs, y, dy, ctx):
    return [rope(dy, xs[1], a["theta"], a["dims"], a["style"], inverse=True), None]


def _rmsnorm_back(a, xs, y, dy, ctx):
    dx, dg = rms_norm_backward(dy, xs[0], ctx.param("weight"), a["eps"])
    ctx.add_grad("weight", dg)
    return [dx]


def _swiglu_shape(a: dict, shapes: list[Shape]) -> Shape:
    if len(shapes) != 2 or shapes[0] != shapes[1]:
        raise ShapeError(f"expects gate and up of one shape, got {[list(s) for s in shapes]}")
    return shapes[0]


def _group_shape(a: dict, shapes: list[Shape]) -> Shape:
    x, g = one(shapes), a["groups"]
    if len(x) != 3 or x[0] % g:
        raise ShapeError(f"expects [heads, S, d] with heads divisible by groups={g}, got {list(x)}")
    return (x[0] // g, g * x[1], x[2])


def _ungroup_shape(a: dict, shapes: list[Shape]) -> Shape:
    x, g = one(shapes), a["groups"]
    if len(x) != 3 or x[1] % g:
        raise ShapeError(f"expects [kv_heads, groups·S, d] with rows divisible by groups={g}, got {list(x)}")
    return (x[0] * g, x[1] // g, x[2])


def _causal_shape(a: dict, shapes: list[Shape]) -> Shape:
    """Scores ``[kv_heads, groups·S, keys]`` with ``keys ≥ S`` (the new tokens are among the keys)."""
    x = one(shapes)
    if len(x) < 2 or x[-2] % a["groups"] or x[-1] < x[-2] // a["groups"]:
        raise ShapeError(f"expects scores [..., groups·S, keys] with rows divisible by groups={a['groups']} "
                         f"and keys ≥ S, got {list(x)}")
    return x


def _last_token_shape(a: dict, shapes: list[Shape]) -> Shape:
    x = one(shapes)
    if len(x) != 2:
        raise ShapeError(f"expects an [S, D] input, got {list(x)}")
    return (1, x[1])


def _last_token_back(a, xs, y, dy, ctx):
    dx = np.zeros_like(xs[0])
    dx[:, -1:] = dy
    return [dx]


_LINEAR = _GEMM_OPS["linear"]

OPS = {
    "rmsnorm": OpDef(lambda r: dict(eps=r.pos_float("eps", 1e-6)), lambda a, s: one(s),
                     lambda a, xs, ctx: rms_norm(xs[0], ctx.param("weight"), a["eps"]),
                     params=lambda a, s: s[0][-1], wide_params=lambda a, s: s[0][-1],
                     weights=lambda a, s: {"weight": (s[0][-1],)}, vector_ops=4.0, backward=_rmsnorm_back,
                     epilogue="row"),
    "rope": OpDef(_rope_attrs, _rope_shape,
                  lambda a, xs, ctx: rope(xs[0], xs[1], a["theta"], a["dims"], a["style"]).astype(
                      float_dtype(xs[0]), copy=False),
                  vector_ops=3.0, elements=lambda a, s, out: math.prod(s[0][:2]) * (a["dims"] or s[0][2]),
                  backward=_rope_back),
    "swiglu": OpDef(A.none, _swiglu_shape, lambda a, xs, ctx: swiglu(xs[0], xs[1]), vector_ops=6.0,
                    backward=lambda a, xs, y, dy, ctx: list(swiglu_backward(dy, xs[0], xs[1])), epilogue="element"),
    "group_heads": OpDef(lambda r: dict(groups=r.pos_int("groups")), _group_shape,
                         layout(lambda a, x: group_heads(x, a["groups"])),
                         backward=lambda a, xs, y, dy, ctx: [ungroup_heads(dy, a["groups"])]),
    "ungroup_heads": OpDef(lambda r: dict(groups=r.pos_int("groups")), _ungroup_shape,
                           layout(lambda a, x: ungroup_heads(x, a["groups"])),
                           backward=lambda a, xs, y, dy, ctx: [group_heads(dy, a["groups"])]),
    "causal_softmax": OpDef(lambda r: dict(scale=r.pos_float("scale", 1.0), groups=r.pos_int("groups", 1)),
                            _causal_shape, lambda a, xs, ctx: causal_softmax(xs[0], a["scale"], a["groups"]),
                            vector_ops=5.0, epilogue="row",
                            backward=lambda a, xs, y, dy, ctx: [softmax_backward(dy, y, a["scale"])]),
    "last_token": OpDef(A.none, _last_token_shape, layout(lambda a, x: x[:, -1:]), backward=_last_token_back),
    # the output projection that reads another layer's weight (tied embeddings): counted once, at that layer
    "tied_linear": replace(_LINEAR, params=lambda a, s: 0, wide_params=lambda a, s: 0),
}
