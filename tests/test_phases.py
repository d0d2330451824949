"""Prefill and decode costed apart (accelsim.sim.phases) on a small llama-like decoder graph built here, and the
weight-only / block precisions of the cost model."""
from __future__ import annotations

import math

import pytest

from accelsim import load_hw
from accelsim.errors import ConfigError, MappingError
from accelsim.graph import Model
from accelsim.hw.mac import parse_precision
from accelsim.sim.engine import simulate
from accelsim.sim.phases import phases

D, HEADS, KV, FFN, LAYERS, VOCAB = 256, 4, 2, 768, 3, 4096


def decoder(dims: dict) -> Model:
    """A decoder in existing ops: per layer q/k/v linears, the KV cache as graph inputs past_k.<l>/past_v.<l>
    concatenated with the new keys/values, attention (per KV head), an FFN; seq_len new tokens, past_len cached."""
    s, past = dims.get("seq_len", 8), dims.get("past_len", 0)
    d = D // HEADS
    inputs = [{"name": "tokens", "shape": ["seq_len"]}]
    layers = [{"name": "emb", "op": "embedding", "input": "tokens", "num_embeddings": VOCAB, "dim": D}]
    x = "emb"
    for i in range(LAYERS):
        p = f"l{i}"
        layers += [{"name": f"{p}.norm", "op": "layernorm", "input": x},
                   {"name": f"{p}.q", "op": "linear", "out_features": KV * d, "bias": False},
                   {"name": f"{p}.qh", "op": "split_heads", "heads": KV},
                   {"name": f"{p}.k", "op": "linear", "input": f"{p}.norm", "out_features": KV * d, "bias": False},
                   {"name": f"{p}.kh", "op": "split_heads", "heads": KV},
                   {"name": f"{p}.v", "op": "linear", "input": f"{p}.norm", "out_features": KV * d, "bias": False},
                   {"name": f"{p}.vh", "op": "split_heads", "heads": KV}]
        k, v = f"{p}.kh", f"{p}.vh"
        if past:
            inputs += [{"name": f"past_k.{i}", "shape": [KV, "past_len", d]},
                       {"name": f"past_v.{i}", "shape": [KV, "past_len", d]}]
            layers += [{"name": f"present_k.{i}", "op": "concat", "inputs": [f"past_k.{i}", k], "axis": 1},
                       {"name": f"present_v.{i}", "op": "concat", "inputs": [f"past_v.{i}", v], "axis": 1}]
            k, v = f"present_k.{i}", f"present_v.{i}"
        layers += [{"name": f"{p}.scores", "op": "matmul", "inputs": [f"{p}.qh", k], "transpose_b": True},
                   {"name": f"{p}.softmax", "op": "softmax"},
                   {"name": f"{p}.ctx", "op": "matmul", "inputs": [f"{p}.softmax", v]},
                   {"name": f"{p}.merge", "op": "merge_heads"},
                   {"name": f"{p}.o", "op": "linear", "out_features": D, "bias": False},
                   {"name": f"{p}.add", "op": "add", "inputs": [f"{p}.o", x]},
                   {"name": f"{p}.up", "op": "linear", "out_features": FFN, "bias": False},
                   {"name": f"{p}.act", "op": "gelu"},
                   {"name": f"{p}.down", "op": "linear", "out_features": D, "bias": False},
                   {"name": f"{p}.out", "op": "add", "inputs": [f"{p}.down", f"{p}.add"]}]
        x = f"{p}.out"
    layers += [{"name": "head", "op": "linear", "input": x, "out_features": VOCAB, "bias": False}]
    return Model.from_dict({"name": "tiny_decoder", "params": {"seq_len": s, "past_len": past}, "inputs": inputs,
                            "layers": layers})


def test_weight_only_and_block_precisions():
    bits = {n: parse_precision(n).weight_bytes * 8 for n in ("w8a16", "w4a16", "w4a16g128", "q4_0", "q4_1", "q8_0")}
    assert bits == {"w8a16": 8, "w4a16": 4, "w4a16g128": 4.25, "q4_0": 4.5, "q4_1": 5.0, "q8_0": 8.5}
    p = parse_precision("w4a16")
    assert p.weight_only and not p.is_float and p.act_bytes == 2 and p.float_mode == "fp16"
    assert not parse_precision("w16a16").weight_only                  # a 16-bit integer mode, as before
    for bad in ("w4a16g0", "q5_0", "w4a16g"):
        with pytest.raises(MappingError, match="precision"):
            parse_precision(bad)


def test_weight_only_moves_its_real_bytes_at_the_fp16_rate():
    model, hw = decoder({"seq_len": 1}), load_hw("edge")
    fp16, w4 = (simulate(model, hw, p) for p in ("fp16", "q4_0"))
    head16, head4 = fp16.layers[-1], w4.layers[-1]
    assert head4.dram_filter_bytes == pytest.approx(D * VOCAB * 18 / 32, rel=1e-6)   # 4.5 bits per weight
    assert head16.dram_filter_bytes == D * VOCAB * 2
    assert head4.compute_cycles == head16.compute_cycles                              # the same FP16 MACs


def test_prefill_and_decode_costed_apart():
    hw = load_hw("edge")
    r = phases(decoder, hw, "fp16", seq_len=16, decode=4)
    t = r.totals
    assert t["prefill_ms"] == pytest.approx(simulate(decoder({"seq_len": 16}), hw, "fp16").totals["latency_ms"])
    assert [s["past_len"] for s in r.steps] == [16, 17, 18, 19]
    step = simulate(decoder({"seq_len": 1, "past_len": 16}), hw, "fp16").totals
    kv_row = LAYERS * 2 * KV * (D // HEADS) * 2                           # K and V, fp16
    assert r.steps[0]["kv_read_mb"] == pytest.approx(16 * kv_row / 1e6)
    assert r.steps[0]["kv_append_mb"] == pytest.approx(kv_row / 1e6)
    assert r.steps[0]["latency_ms"] == pytest.approx(step["latency_ms"] + kv_row / 17e9 * 1e3, rel=1e-9)
    assert t["kv_cache_mb"] == pytest.approx(20 * kv_row / 1e6)
    assert t["tokens_per_s"] == pytest.approx(4 / (sum(s["latency_ms"] for s in r.steps) * 1e-3))
    assert r.decode is not None and r.decode.layers[-1].m == 1                   # one token per decode step


@pytest.mark.parametrize("precision", ["fp16", "w8a16", "w4a16", "q4_0"])
def test_decode_never_beats_the_bandwidth_bound(precision):
    t = phases(decoder, load_hw("edge"), precision, seq_len=32, decode=3).totals
    assert t["tokens_per_s"] <= t["decode_bound_tokens_per_s"] * (1 + 1e-9)


def test_w4a16_decode_is_faster_but_not_beyond_the_byte_ratio():
    hw = load_hw("edge")
    fp16, w4 = (phases(decoder, hw, p, seq_len=32, decode=3).totals for p in ("fp16", "w4a16"))
    speedup = w4["tokens_per_s"] / fp16["tokens_per_s"]
    assert 1 < speedup <= fp16["dram_mb_per_token"] / w4["dram_mb_per_token"] * (1 + 1e-9)


def test_batch_of_sequences_shares_weight_fetches():
    hw = load_hw("edge")
    one, four = (phases(decoder, hw, "fp16", seq_len=16, decode=2, batch=b).totals for b in (1, 4))
    # every weight matrix is fetched once for the 4 sequences; only the embedding rows are gathered per token
    row = D * 2 / 1e6
    assert four["weight_mb_per_token"] - row == pytest.approx((one["weight_mb_per_token"] - row) / 4)
    assert four["kv_mb_per_token"] == pytest.approx(one["kv_mb_per_token"])
    assert four["tokens_per_s"] > one["tokens_per_s"]


def test_phases_refuses_a_model_without_decoder_parameters():
    with pytest.raises(ConfigError, match="seq_len and past_len"):
        phases("resnet50", "edge", decode=2)
    with pytest.raises(ConfigError, match="--decode: expected an integer"):
        phases(decoder, "edge", decode=-1)


def test_the_bundled_llm_decodes_within_its_bandwidth_bound_on_edge():
    from accelsim.reporting.llm import runs
    rows = runs(chips=("edge",), precisions=("fp16", "w4a16", "w4a8"), prompt=32, new=2)
    by = {r["precision"]: r for r in rows}
    for r in rows:
        assert r["tokens_per_s"] <= r["decode_bound_tokens_per_s"] * (1 + 1e-9)
    # on edge's weight-stationary array (no second weight buffer) decode is limited by loading weight tiles into
    # the array: FP16 weights (w4a16 dequantizes to FP16) take it in at the same rate whatever their DRAM bytes
    assert by["w4a16"]["tokens_per_s"] == pytest.approx(by["fp16"]["tokens_per_s"], rel=0.01)
    assert by["w4a8"]["tokens_per_s"] > 3 * by["fp16"]["tokens_per_s"]       # INT4 weights fuse on the INT8 PE
