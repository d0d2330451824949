"""Fidelity and ranking metrics in pure numpy (no scipy at run time).

* :func:`pearson`, :func:`spearman` (Pearson of average ranks, so ties get their mean rank);
* :func:`ndcg_at_k` — graded relevance with linear gains;
* :func:`topk_overlap` — how many of a ranking's top k match a reference ranking's top k;
* :func:`sqnr_db` and :func:`cosine_similarity` — output-level agreement of a quantized model with FP32.

All are computed in float64. Degenerate inputs (zero variance, zero ideal DCG) give ``nan`` rather than an
exception so that a collapsed model in a sweep is reported, not fatal; malformed inputs raise
:class:`~accelsim.errors.AccelsimError`.
"""
from __future__ import annotations

import numpy as np

from accelsim.errors import AccelsimError

__all__ = ["cosine_similarity", "ndcg_at_k", "pearson", "rankdata", "spearman", "sqnr_db", "sqnr_from_energy", "topk_overlap"]


def _vector_pair(x, y, name: str) -> tuple[np.ndarray, np.ndarray]:
    x = np.asarray(x, dtype=np.float64).ravel()
    y = np.asarray(y, dtype=np.float64).ravel()
    if x.shape != y.shape:
        raise AccelsimError(f"{name}: inputs differ in size ({x.size} vs {y.size})")
    if x.size < 2:
        raise AccelsimError(f"{name}: needs at least 2 paired values, got {x.size}")
    if not (np.isfinite(x).all() and np.isfinite(y).all()):
        raise AccelsimError(f"{name}: inputs contain NaN or infinity")
    return x, y


def rankdata(x) -> np.ndarray:
    """Ranks ``1..n`` of a 1-D array; tied values share the mean of the ranks they span (scipy's "average")."""
    x = np.asarray(x, dtype=np.float64).ravel()
    order = np.argsort(x, kind="mergesort")
    xs = x[order]
    new_group = np.r_[True, xs[1:] != xs[:-1]]
    starts = np.flatnonzero(new_group)
    ends = np.r_[starts[1:], x.size]  # exclusive
    mean_rank = (starts + ends - 1) / 2.0 + 1.0
    ranks = np.empty(x.size, dtype=np.float64)
    ranks[order] = mean_rank[np.cumsum(new_group) - 1]
    return ranks


def pearson(x, y) -> float:
    """``r = Σ(x−x̄)(y−ȳ) / √(Σ(x−x̄)² · Σ(y−ȳ)²)``; ``nan`` if either input is constant."""
    x, y = _vector_pair(x, y, "pearson")
    xc, yc = x - x.mean(), y - y.mean()
    den = np.sqrt(np.dot(xc, xc) * np.dot(yc, yc))
    return float(np.dot(xc, yc) / den) if den > 0 else float("nan")


def spearman(x, y) -> float:
    """Spearman's ρ = Pearson correlation of the average ranks (:func:`rankdata`) of ``x`` and ``y``."""
    x, y = _vector_pair(x, y, "spearman")
    return pearson(rankdata(x), rankdata(y))


def _as_queries(a, name: str) -> np.ndarray:
    a = np.asarray(a, dtype=np.float64)
    if a.ndim == 1:
        a = a[None, :]
    if a.ndim != 2 or a.shape[1] == 0:
        raise AccelsimError(f"{name}: expected [candidates] or [queries, candidates], got shape {a.shape}")
    if not np.isfinite(a).all():
        raise AccelsimError(f"{name}: contains NaN or infinity")
    return a


def _ranking(scores: np.ndarray) -> np.ndarray:
    """Candidate indices per row by descending score; ties keep index order (stable sort)."""
    return np.argsort(-scores, axis=1, kind="stable")


def ndcg_at_k(scores, gains, k: int = 10) -> float:
    """Mean over queries of ``DCG@k / IDCG@k`` with linear gains.

    ``scores`` and ``gains`` are ``[candidates]`` or ``[queries, candidates]``; ``DCG@k = Σ_{r=1..k} g_(r) /
    log₂(r + 1)`` where ``g_(r)`` is the gain of the candidate ranked r-th by descending score (ties by
    index), and ``IDCG@k`` is the same sum with candidates sorted by descending gain. A query whose ideal DCG
    is 0 (no relevant candidate) yields ``nan``. Gains must be non-negative.
    """
    s, g = _as_queries(scores, "ndcg_at_k scores"), _as_queries(gains, "ndcg_at_k gains")
    if s.shape != g.shape:
        raise AccelsimError(f"ndcg_at_k: scores {s.shape} and gains {g.shape} differ in shape")
    if (g < 0).any():
        raise AccelsimError("ndcg_at_k: gains must be non-negative")
    if k < 1:
        raise AccelsimError(f"ndcg_at_k: k must be >= 1, got {k}")
    k = min(k, s.shape[1])
    discount = 1.0 / np.log2(np.arange(2, k + 2))
    dcg = (np.take_along_axis(g, _ranking(s)[:, :k], axis=1) * discount).sum(axis=1)
    idcg = (-np.sort(-g, axis=1)[:, :k] * discount).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        per_query = np.where(idcg > 0, dcg / np.where(idcg > 0, idcg, 1.0), np.nan)
    return float(per_query.mean())


def topk_overlap(scores, ref_scores, k: int = 10) -> float:
    """Mean over queries of ``|top_k(scores) ∩ top_k(ref_scores)| / k`` (1 = identical top-k sets).

    Inputs are ``[candidates]`` or ``[queries, candidates]``; top-k is by descending score, ties by index.
    """
    s, r = _as_queries(scores, "topk_overlap scores"), _as_queries(ref_scores, "topk_overlap ref_scores")
    if s.shape != r.shape:
        raise AccelsimError(f"topk_overlap: scores {s.shape} and ref_scores {r.shape} differ in shape")
    if not 1 <= k <= s.shape[1]:
        raise AccelsimError(f"topk_overlap: k must be in [1, {s.shape[1]}], got {k}")
    top_s, top_r = _ranking(s)[:, :k], _ranking(r)[:, :k]
    hits = [np.intersect1d(a, b).size for a, b in zip(top_s, top_r)]
    return float(np.mean(hits) / k)


def sqnr_from_energy(signal: float, noise: float) -> float:
    """``10·log₁₀(signal / noise)`` in dB from summed energies ``Σ ref²`` and ``Σ (ref − test)²``: ``inf`` when
    the noise is 0, ``−inf`` when the signal is 0 (and the noise is not); the one SQNR edge rule."""
    if noise == 0.0:
        return float("inf")
    if signal == 0.0:
        return float("-inf")
    return 10.0 * float(np.log10(signal / noise))


def sqnr_db(reference, test) -> float:
    """Signal-to-quantization-noise ratio ``10·log₁₀(Σ ref² / Σ (ref − test)²)`` in dB (``inf`` if equal;
    edge rules of :func:`sqnr_from_energy`); NaN or infinity in either input raises."""
    ref = np.asarray(reference, dtype=np.float64)
    tst = np.asarray(test, dtype=np.float64)
    if ref.shape != tst.shape:
        raise AccelsimError(f"sqnr_db: reference {ref.shape} and test {tst.shape} differ in shape")
    if not (np.isfinite(ref).all() and np.isfinite(tst).all()):
        raise AccelsimError("sqnr_db: inputs contain NaN or infinity")
    with np.errstate(over="ignore"):
        signal, noise = float(np.sum(ref * ref)), float(np.sum((ref - tst) ** 2))
    if not (np.isfinite(signal) and np.isfinite(noise)):  # energies beyond float64: the same ratio, rescaled
        s = max(float(np.abs(ref).max()), float(np.abs(tst).max()))
        r, t = ref / s, tst / s
        signal, noise = float(np.sum(r * r)), float(np.sum((r - t) ** 2))
    return sqnr_from_energy(signal, noise)


def cosine_similarity(a, b, axis: int = -1) -> np.ndarray:
    """``⟨a, b⟩ / (‖a‖·‖b‖)`` along ``axis`` (float64; ``nan`` where a vector is all zeros)."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise AccelsimError(f"cosine_similarity: shapes {a.shape} and {b.shape} differ")
    num = np.sum(a * b, axis=axis)
    den = np.linalg.norm(a, axis=axis) * np.linalg.norm(b, axis=axis)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)
