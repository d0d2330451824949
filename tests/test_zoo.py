"""Model zoo sanity: parameter and MAC counts against the published architectures."""
from __future__ import annotations

import pytest

from accelsim.config.loader import bundled_names, load_model
from accelsim.lowering import lower


def macs(model) -> int:
    return sum(w.gemm.macs for w in lower(model) if w.gemm is not None)


@pytest.mark.parametrize("name, params, gmac, tol", [
    ("resnet50", 25_557_032, 4.09, 0.01),          # torchvision resnet50: 25,557,032 params, 4.09 GMAC
    ("mobilenet_v2", 3_504_872, 0.30, 0.01),       # torchvision mobilenet_v2: 3,504,872 params, 0.30 GMAC
    ("efficientnet_lite0", 4_652_008, 0.385, 0.01),
    ("bert_base", 109_482_240, None, 0),           # HF bert-base-uncased: 109,482,240
    ("bert_large", 335_141_888, None, 0),          # HF bert-large-uncased: 335,141,888
    ("minilm_l6", 22_565_376, None, 0),            # all-MiniLM-L6-v2 without its unused pooler (147,840)
    ("smollm2_135m", 134_515_008, None, 0),        # HF SmolLM2-135M: 134,515,008 (tied embeddings)
])
def test_zoo_params_and_macs(name, params, gmac, tol):
    model = load_model(name)
    assert model.params == params
    if gmac is not None:
        assert macs(model) / 1e9 == pytest.approx(gmac, abs=tol)


def test_every_bundled_model_infers_shapes():
    for name in bundled_names("model"):
        model = load_model(name)
        assert all(all(d > 0 for d in layer.out_shape) for layer in model.layers)


def test_bert_attention_is_per_head_gemms():
    model = load_model("bert_large", {"seq_len": 128})
    work = {w.layer.name: w for w in lower(model)}
    scores = work["layer0.scores"].gemm
    assert (scores.m, scores.n, scores.k, scores.count, scores.b_is_weight) == (128, 128, 64, 16, False)
    ctx = work["layer0.context"].gemm
    assert (ctx.m, ctx.n, ctx.k, ctx.count) == (128, 64, 128, 16)


def test_depthwise_lowers_per_channel():
    model = load_model("mobilenet_v2")
    dw = next(w for w in lower(model) if w.layer.name == "block1.0.dw.conv").gemm
    assert (dw.m, dw.n, dw.k, dw.count) == (56 * 56, 1, 9, 96)
    folded = [w for w in lower(model) if w.layer.op == "batchnorm"]
    assert folded and all(w.vector_op is None for w in folded)
