"""Decoder ops (accelsim/ops/decoder.py) and the decoder graph's contract with the cost model: numerics against
naive loops, every gradient rule against finite differences (float64), and the shapes the lowering sees."""
from __future__ import annotations

import math

import numpy as np
import pytest

from accelsim.config.loader import load_model
from accelsim.errors import ConfigError
from accelsim.graph import Model
from accelsim.llm.architecture import DecoderConfig, graph_dict
from accelsim.lowering import lower
from accelsim.ops import OPS
from accelsim.ops import decoder as D
from test_autograd import _check, _random_weights

TINY = DecoderConfig("llama", vocab=11, dim=8, layers=2, heads=4, kv_heads=2, ffn=12, eps=1e-5, rope_theta=100.0,
                     head_dim=2, rope_dims=2)


def naive_rope(x, pos, theta, style):
    """One head vector at a time, as complex numbers: pair (a, b) ↦ (a + ib)·e^(i·pos·θ^(−2k/d))."""
    d = x.shape[-1]
    y = np.array(x, dtype=np.float64)
    for idx in np.ndindex(x.shape[:-1]):
        p = pos[idx[0], idx[2]]
        for k in range(d // 2):
            i, j = (2 * k, 2 * k + 1) if style == "adjacent" else (k, k + d // 2)
            z = complex(x[idx + (i,)], x[idx + (j,)]) * complex(math.cos(p * theta ** (-2 * k / d)),
                                                              math.sin(p * theta ** (-2 * k / d)))
            y[idx + (i,)], y[idx + (j,)] = z.real, z.imag
    return y


@pytest.mark.parametrize("style", D.ROPE_STYLES)
def test_rope_is_a_complex_rotation_and_its_inverse_undoes_it(style):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3, 5, 8))
    pos = np.array([[0, 1, 2, 3, 4], [7, 8, 9, 10, 11]])
    y = D.rope(x, pos, 1000.0, style=style)
    np.testing.assert_allclose(y, naive_rope(x, pos, 1000.0, style), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(D.rope(y, pos, 1000.0, style=style, inverse=True), x, atol=1e-12)
    part = D.rope(x, pos, 1000.0, dims=4, style=style)        # partial rotary dims: the rest passes through
    assert np.array_equal(part[..., 4:], x[..., 4:])


def test_rmsnorm_swiglu_and_causal_softmax_match_plain_loops():
    rng = np.random.default_rng(1)
    x, g = rng.standard_normal((2, 3, 6)), rng.standard_normal(6)
    ref = np.array([[v / math.sqrt(sum(t * t for t in v) / 6 + 1e-5) * g for v in row] for row in x])
    np.testing.assert_allclose(D.rms_norm(x, g, 1e-5), ref, rtol=1e-12)
    a, b = rng.standard_normal(7), rng.standard_normal(7)
    np.testing.assert_allclose(D.swiglu(a, b), [u / (1 + math.exp(-t)) * w for t, w, u in zip(a, b, a)], rtol=1e-12)
    # 2 KV heads, 3 query heads per group, 2 new tokens after 3 cached ones: 5 keys
    s, past, groups = 2, 3, 3
    scores = rng.standard_normal((1, 2, groups * s, past + s))
    p = D.causal_softmax(scores, 0.5, groups)
    for r in range(groups * s):
        i = r % s
        seen = [j for j in range(past + s) if j <= past + i]
        z = np.exp(0.5 * scores[0, 1, r, seen] - (0.5 * scores[0, 1, r, seen]).max())
        np.testing.assert_allclose(p[0, 1, r, seen], z / z.sum(), rtol=1e-12)
        assert np.all(p[0, 1, r, past + i + 1:] == 0)


def test_group_heads_stacks_the_query_heads_of_one_kv_head():
    x = np.arange(2 * 6 * 3 * 4).reshape(2, 6, 3, 4)
    g = D.group_heads(x, 3)
    assert g.shape == (2, 2, 9, 4)
    assert np.array_equal(g[1, 1, 2 * 3 + 1], x[1, 1 * 3 + 2, 1])   # kv head 1, query head 5, token 1
    assert np.array_equal(D.ungroup_heads(g, 3), x)


def test_every_decoder_rule_matches_finite_differences():
    """A 2-block GQA decoder continuing a 2-token cache with 3 tokens: gradients of every weight and of the
    cache inputs."""
    rng = np.random.default_rng(2)
    model = Model.from_dict(graph_dict(TINY, "tiny", logits="all"), overrides={"seq_len": 3, "past_len": 2})
    weights = _random_weights(model, rng)
    feeds = {"input_ids": np.array([[1, 5, 7], [2, 0, 10]]), "positions": np.array([[2, 3, 4], [2, 3, 4]])}
    for name in model.inputs:
        if name.startswith("past_"):
            feeds[name] = rng.standard_normal((2,) + model.inputs[name])
    past = [n for n in model.inputs if n.startswith("past_")]
    assert _check(model, weights, feeds, rng, past, n_coords=4, atol=1e-6) > 80


def test_decoder_graph_lowering_is_the_costing_contract():
    """docs/llm.md: the bundled SmolLM2 graph; a decode step after 200 tokens reads each cached K/V head once
    through kv_heads GEMMs of (groups·1 × 64) @ (64 × 201)."""
    model = load_model("smollm2_135m", {"seq_len": 1, "past_len": 200})
    assert model.params == 134_515_008          # HF SmolLM2-135M, tied embeddings counted once
    assert model.inputs["past_k.29"] == (3, 200, 64) and model.inputs["input_ids"] == (1,)
    work = {w.layer.name: w for w in lower(model)}
    s = work["blk.0.scores"].gemm
    assert (s.m, s.n, s.k, s.count, s.b_is_weight) == (3, 201, 64, 3, False)
    c = work["blk.0.context_groups"].gemm
    assert (c.m, c.n, c.k, c.count) == (3, 64, 201, 3)
    head = work["logits"].gemm
    assert (head.m, head.n, head.k, head.b_is_weight) == (1, 49152, 576, True)
    assert work["present_k.0"].vector_op is None and work["blk.0.q_groups"].vector_op is None   # layout: free
    prefill = load_model("smollm2_135m", {"seq_len": 128})
    assert prefill.inputs["past_v.0"] == (3, 0, 64)          # past_len declared 0: an empty cache
    assert prefill.layer("present_k.3").out_shape == (3, 128, 64)


def test_only_a_parameter_declared_zero_may_be_zero():
    with pytest.raises(ConfigError, match="seq_len: expected a positive integer, got 0"):
        load_model("smollm2_135m", {"seq_len": 0})
    with pytest.raises(ConfigError, match="past_len: expected a non-negative integer, got -1"):
        load_model("smollm2_135m", {"past_len": -1})
    bad = {"name": "t", "params": {"n": 0}, "inputs": [{"name": "x", "shape": ["n", 4]}],
           "layers": [{"name": "y", "op": "linear", "out_features": 3}]}
    with pytest.raises(ConfigError, match=r"output \[0, 3\] is empty"):
        Model.from_dict(bad)


def test_tied_linear_is_a_linear_without_parameters_of_its_own():
    assert OPS["tied_linear"].gemm is OPS["linear"].gemm and OPS["tied_linear"].run is OPS["linear"].run
    assert OPS["tied_linear"].params({"out_features": 5, "bias": False}, [(3, 4)]) == 0
