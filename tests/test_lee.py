"""accelsim.data.lee: Lee corpus loaders and the embedding evaluation."""
from __future__ import annotations

import numpy as np
import pytest
from conftest import require_package

from accelsim.data import lee
from accelsim.errors import AccelsimError


@pytest.fixture(autouse=True)
def _gensim():
    require_package("gensim", "gensim==4.4.0")


def test_documents_and_background():
    docs, background = lee.load_lee_documents(), lee.load_lee_background()
    assert len(docs) == 50 and len(background) == 300
    assert all(d.strip() for d in docs + background)
    assert docs[0].startswith("The national executive of the strife-torn Democrats")
    assert sum("£" in d for d in docs) == 1  # Latin-1 0xA3 decoded, not mangled


def test_similarity_matrix_and_pairs():
    m = lee.load_lee_similarity_matrix()
    assert m.shape == (50, 50)
    np.testing.assert_array_equal(m, m.T)
    np.testing.assert_array_equal(np.diag(m), 1.0)
    i, j, r = lee.load_lee_pairs()
    assert len(r) == 1225 and np.all(i < j)
    assert 0.2 <= r.min() and r.max() <= 1.0
    assert r[0] == pytest.approx(0.3)  # first value of the file's upper triangle (pair 0, 1)


def test_missing_package_error_names_pip_command(monkeypatch):
    monkeypatch.setattr(lee, "LEE_MODULE", "gensim_not_installed_xyz")
    with pytest.raises(AccelsimError, match=r"pip install --no-deps gensim==4\.4\.0"):
        lee.load_lee_documents()


def test_evaluate_embeddings():
    human = lee.load_lee_similarity_matrix()
    # Embeddings whose cosine ranks documents like the humans do: rows of the (PSD-ified) human matrix.
    w, v = np.linalg.eigh(human)
    emb = v * np.sqrt(np.clip(w, 0, None))
    good = lee.evaluate_embeddings(emb, reference=emb)
    assert good["top10_overlap"] == 1.0
    assert good["spearman"] > 0.9 and good["pearson"] > 0.9 and good["ndcg@10"] > 0.95
    rand = lee.evaluate_embeddings(np.random.default_rng(0).standard_normal((50, 64)), reference=emb)
    assert abs(rand["spearman"]) < 0.2 and rand["top10_overlap"] < 0.5 and rand["ndcg@10"] < good["ndcg@10"]
    assert "top10_overlap" not in lee.evaluate_embeddings(emb)
    with pytest.raises(AccelsimError, match=r"expected \[50, dim\]"):
        lee.evaluate_embeddings(emb[:10])
