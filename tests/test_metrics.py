"""accelsim.data.metrics against scipy.stats (tests only) and hand-computed cases."""
from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.stats

from accelsim.data import metrics as M
from accelsim.errors import AccelsimError


@pytest.mark.parametrize("seed", range(5))
def test_correlations_match_scipy_with_ties(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(5, 400))
    x = rng.integers(0, 12, n).astype(float)  # many ties
    y = 0.3 * x + rng.standard_normal(n)
    y[: n // 3] = np.round(y[: n // 3])
    np.testing.assert_allclose(M.rankdata(x), scipy.stats.rankdata(x), rtol=0, atol=0)
    assert M.spearman(x, y) == pytest.approx(scipy.stats.spearmanr(x, y).statistic, abs=1e-12)
    assert M.pearson(x, y) == pytest.approx(scipy.stats.pearsonr(x, y).statistic, abs=1e-12)


def test_correlation_edge_cases():
    assert M.spearman([1, 2, 3, 4], [10, 20, 30, 1000]) == pytest.approx(1.0)
    assert M.pearson([1, 2, 3], [3, 2, 1]) == pytest.approx(-1.0)
    assert math.isnan(M.pearson([1, 1, 1], [1, 2, 3]))
    with pytest.raises(AccelsimError, match="differ in size"):
        M.pearson([1, 2], [1, 2, 3])
    with pytest.raises(AccelsimError, match="NaN"):
        M.spearman([1, np.nan], [1, 2])
    with pytest.raises(AccelsimError, match="at least 2"):
        M.pearson([1], [1])


def _ndcg_reference(scores, gains, k):
    """Independent loop implementation of linear-gain nDCG@k for one query."""
    order = sorted(range(len(scores)), key=lambda i: (-scores[i], i))
    dcg = sum(gains[i] / math.log2(r + 2) for r, i in enumerate(order[:k]))
    ideal = sorted(gains, reverse=True)
    idcg = sum(g / math.log2(r + 2) for r, g in enumerate(ideal[:k]))
    return dcg / idcg


def test_ndcg_hand_case_and_reference():
    # perfect ranking → 1; reversed ranking of gains [3, 2, 1, 0] at k=2 → (0/1 + 1/log2 3) / (3 + 2/log2 3)
    assert M.ndcg_at_k([4, 3, 2, 1], [3, 2, 1, 0], k=2) == pytest.approx(1.0)
    expected = (0 + 1 / math.log2(3)) / (3 + 2 / math.log2(3))
    assert M.ndcg_at_k([1, 2, 3, 4], [3, 2, 1, 0], k=2) == pytest.approx(expected)
    rng = np.random.default_rng(1)
    s, g = rng.standard_normal((7, 30)), rng.random((7, 30))
    ref = np.mean([_ndcg_reference(list(a), list(b), 10) for a, b in zip(s, g)])
    assert M.ndcg_at_k(s, g, 10) == pytest.approx(ref, abs=1e-12)
    assert math.isnan(M.ndcg_at_k([1, 2], [0, 0]))
    with pytest.raises(AccelsimError, match="non-negative"):
        M.ndcg_at_k([1, 2], [-1, 0])


def test_topk_overlap():
    ref = np.array([[5, 4, 3, 2, 1.0], [1, 2, 3, 4, 5.0]])
    assert M.topk_overlap(ref, ref, k=2) == 1.0
    test = np.array([[5, 1, 3, 2, 4.0], [5, 4, 3, 2, 1.0]])  # query 0: {0,4} vs {0,1} → 1/2; query 1: 0/2
    assert M.topk_overlap(test, ref, k=2) == pytest.approx(0.25)
    with pytest.raises(AccelsimError, match="k must be in"):
        M.topk_overlap(ref, ref, k=6)


def test_sqnr_and_cosine():
    x = np.array([3.0, 4.0])
    assert M.sqnr_db(x, x) == math.inf
    assert M.sqnr_db(x, x + [0.5, 0.0]) == pytest.approx(10 * math.log10(25 / 0.25))  # = 20 dB
    cos = M.cosine_similarity(np.array([[1.0, 0], [1, 1], [0, 0]]), np.array([[0.0, 2], [2, 2], [1, 1]]))
    np.testing.assert_allclose(cos[:2], [0.0, 1.0], atol=1e-15)
    assert math.isnan(cos[2])
    with pytest.raises(AccelsimError, match="differ in shape"):
        M.sqnr_db([1.0], [1.0, 2.0])
