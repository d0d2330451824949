"""Transformer (BERT-family) operators in plain numpy: pure functions, arrays in, arrays out.

Token activations are kept **2-D**, ``[tokens, features]`` with ``tokens = batch · seq``, so every linear
layer is one 2-D GEMM (a numpy ``@`` on 3-D stacks is much slower). Only the two attention products
(``Q·Kᵀ`` and ``P·V``), which are genuinely one small GEMM per (sequence, head), use stacked ``matmul``.
A graph-driven executor can wrap fake-quant / integer emulation around :func:`linear`,
:func:`attention_scores` and :func:`attention_context` separately. Computation is float32 (like torch on
CPU) except :func:`erf`, which evaluates its rational approximation in float64.
"""
from __future__ import annotations

import numpy as np

from accelsim.errors import AccelsimError

__all__ = [
    "attention_context",
    "attention_scores",
    "embedding",
    "erf",
    "gelu",
    "l2_normalize",
    "layer_norm",
    "linear",
    "mask_to_bias",
    "mean_pool",
    "merge_heads",
    "self_attention",
    "softmax",
    "split_heads",
]

# erf(z) ≈ z·P(z²)/Q(z²) on |z| ≤ 4 and ±1 beyond (Eigen's float erf, degrees 6/4 in z²); evaluated in
# float64 the max abs error vs the exact erf is 6.5e-8 (tests check ≤ 1e-7 against scipy.special.erf).
_ERF_P = (-2.72614225801306e-10, 2.77068142495902e-08, -2.10102402082508e-06, -5.69250639462346e-05,
          -7.34990630326855e-04, -2.95459980854025e-03, -1.60960333262415e-02)
_ERF_Q = (-1.45660718464996e-05, -2.13374055278905e-04, -1.68282697438203e-03, -7.37332916720468e-03,
          -1.42647390514189e-02)
_ERF_CLAMP = 4.0
_CHUNK = 16384  # elements per elementwise block: keeps the float64 temporaries in L2 cache
_INV_SQRT2 = 0.7071067811865476


def linear(x: np.ndarray, weight: np.ndarray, bias: np.ndarray | None = None) -> np.ndarray:
    """``y = x · Wᵀ + b`` with ``W`` shaped ``[out, in]`` as in torch; leading dims of ``x`` are flattened
    into one 2-D GEMM ``[M, in] · [in, out]`` and restored."""
    if weight.ndim != 2 or x.shape[-1] != weight.shape[1]:
        raise AccelsimError(f"linear: x has {x.shape[-1]} input features but weight is {weight.shape} ([out, in])")
    if bias is not None and bias.shape != (weight.shape[0],):
        raise AccelsimError(f"linear: bias shape {bias.shape} does not match weight rows {weight.shape[0]}")
    y = x.reshape(-1, x.shape[-1]) @ weight.T
    if bias is not None:
        y += bias
    return y.reshape(*x.shape[:-1], weight.shape[0])


def layer_norm(x: np.ndarray, gamma: np.ndarray, beta: np.ndarray, eps: float = 1e-12) -> np.ndarray:
    """``y = (x − μ) / √(σ² + eps) · γ + β`` over the last axis (biased variance, as torch)."""
    mu = x.mean(axis=-1, keepdims=True)
    xc = x - mu
    var = np.mean(xc * xc, axis=-1, keepdims=True)
    y = xc / np.sqrt(var + x.dtype.type(eps))
    y *= gamma
    y += beta
    return y


def _erf_block(z: np.ndarray) -> np.ndarray:
    """``z·P(z²)/Q(z²)`` on a float64 block with ``z`` clipped to ``[−4, 4]`` (in place on a copy)."""
    z = np.clip(z, -_ERF_CLAMP, _ERF_CLAMP)
    z2 = z * z
    p = np.full_like(z, _ERF_P[0])
    for c in _ERF_P[1:]:
        p *= z2
        p += c
    q = np.full_like(z, _ERF_Q[0])
    for c in _ERF_Q[1:]:
        q *= z2
        q += c
    p *= z
    p /= q
    return p


def erf(x: np.ndarray) -> np.ndarray:
    """The error function ``erf(x) = 2/√π ∫₀ˣ e^(−t²) dt``, elementwise, max abs error ≤ 1e-7.

    Rational approximation ``x·P(x²)/Q(x²)`` for ``|x| ≤ 4`` and ``sign(x)`` beyond (``1 − erf(4) = 1.5e-8``),
    evaluated in float64 blocks; the result has the input's float dtype (float64 for integer input).
    """
    x = np.asarray(x)
    dtype = x.dtype if np.issubdtype(x.dtype, np.floating) else np.dtype(np.float64)
    flat = x.reshape(-1)
    out = np.empty(flat.shape, dtype=dtype)
    for s in range(0, flat.size, _CHUNK):
        out[s:s + _CHUNK] = _erf_block(flat[s:s + _CHUNK].astype(np.float64))
    return out.reshape(x.shape)


def gelu(x: np.ndarray) -> np.ndarray:
    """Exact (erf) GELU: ``gelu(x) = x · ½ · (1 + erf(x/√2))`` (torch ``nn.GELU()``, BERT ``"gelu"``)."""
    x = np.asarray(x)
    if not np.issubdtype(x.dtype, np.floating):
        x = x.astype(np.float64)
    flat = x.reshape(-1)
    out = np.empty_like(flat)
    for s in range(0, flat.size, _CHUNK):
        v = flat[s:s + _CHUNK].astype(np.float64)
        e = _erf_block(v * _INV_SQRT2)
        e += 1.0
        e *= v
        e *= 0.5
        out[s:s + _CHUNK] = e
    return out.reshape(x.shape)


def softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    """Numerically stable ``softmax(x)_i = exp(x_i − max x) / Σ_j exp(x_j − max x)`` along ``axis``."""
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    e /= e.sum(axis=axis, keepdims=True)
    return e


def embedding(ids: np.ndarray, table: np.ndarray) -> np.ndarray:
    """Row lookup ``table[ids]`` (shape ``ids.shape + (dim,)``); ids outside ``[0, rows)`` raise."""
    ids = np.asarray(ids)
    if ids.size and (ids.min() < 0 or ids.max() >= table.shape[0]):
        raise AccelsimError(f"embedding: ids must lie in [0, {table.shape[0]}), got range "
                            f"[{ids.min()}, {ids.max()}]")
    return table[ids]


def split_heads(x: np.ndarray, batch: int, seq: int, heads: int) -> np.ndarray:
    """``[batch·seq, heads·d] → [batch, heads, seq, d]`` (contiguous copy)."""
    d = x.shape[-1] // heads
    return np.ascontiguousarray(x.reshape(batch, seq, heads, d).transpose(0, 2, 1, 3))


def merge_heads(x: np.ndarray) -> np.ndarray:
    """``[batch, heads, seq, d] → [batch·seq, heads·d]`` (inverse of :func:`split_heads`)."""
    b, h, s, d = x.shape
    return np.ascontiguousarray(x.transpose(0, 2, 1, 3)).reshape(b * s, h * d)


def mask_to_bias(mask: np.ndarray, dtype=np.float32) -> np.ndarray:
    """Additive attention bias ``[batch, 1, 1, seq]``: 0 where ``mask`` is 1, the dtype's most negative
    finite value where it is 0 (as Hugging Face BERT), so masked keys get probability exactly 0."""
    mask = np.asarray(mask)
    neg = np.finfo(dtype).min
    return np.where(mask[:, None, None, :] != 0, dtype(0), neg).astype(dtype)


def attention_scores(q: np.ndarray, k: np.ndarray, bias: np.ndarray | None = None) -> np.ndarray:
    """``softmax(Q·Kᵀ / √d + bias)`` over keys, for ``q, k`` of shape ``[batch, heads, seq, d]``.

    ``Kᵀ`` is materialized contiguously: a stacked ``matmul`` on a transposed view misses BLAS (≈7× slower).
    """
    s = q @ np.ascontiguousarray(k.swapaxes(-1, -2))
    s *= s.dtype.type(1.0 / np.sqrt(q.shape[-1]))
    if bias is not None:
        s += bias
    return softmax(s, axis=-1)


def attention_context(probs: np.ndarray, v: np.ndarray) -> np.ndarray:
    """``P·V``: ``[batch, heads, seq, seq] · [batch, heads, seq, d] → [batch, heads, seq, d]``."""
    return probs @ v


def self_attention(q: np.ndarray, k: np.ndarray, v: np.ndarray, mask: np.ndarray, heads: int) -> np.ndarray:
    """Multi-head scaled dot-product attention on projected ``q, k, v`` (each ``[batch·seq, hidden]``) with
    a key mask ``[batch, seq]`` (1 = token, 0 = padding); returns the merged context ``[batch·seq, hidden]``."""
    batch, seq = mask.shape
    if q.shape != (batch * seq, q.shape[-1]) or q.shape[-1] % heads:
        raise AccelsimError(f"self_attention: q {q.shape} does not fit mask {mask.shape} with {heads} heads")
    qh, kh, vh = (split_heads(t, batch, seq, heads) for t in (q, k, v))
    probs = attention_scores(qh, kh, mask_to_bias(mask, q.dtype.type))
    return merge_heads(attention_context(probs, vh))


def mean_pool(hidden: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Masked mean over tokens: ``Σ_t m_t·h_t / max(Σ_t m_t, 1e-9)`` for ``hidden [batch, seq, dim]``."""
    m = mask.astype(hidden.dtype)[:, :, None]
    return (hidden * m).sum(axis=1) / np.maximum(m.sum(axis=1), hidden.dtype.type(1e-9))


def l2_normalize(x: np.ndarray, eps: float = 1e-12) -> np.ndarray:
    """``x / max(‖x‖₂, eps)`` along the last axis (torch ``F.normalize``)."""
    n = np.linalg.norm(x, axis=-1, keepdims=True)
    return x / np.maximum(n, x.dtype.type(eps))
