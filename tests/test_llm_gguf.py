"""GGUF import on a tiny llama file written by llama.cpp's own writer (every tensor type accelsim decodes):
bit-exact decoding, logits against an independent float64 forward, the KV cache against full re-runs, the CLI
(infer, generate, run) and its one-line errors."""
from __future__ import annotations

import json

import numpy as np
import pytest

from accelsim.cli import main
from accelsim.config.loader import load_model
from accelsim.llm.importer import open_gguf
from accelsim.nn import decode
from llm_fixtures import TINY, TYPES, reference_forward, write_tiny_gguf

gguf = pytest.importorskip("gguf")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return write_tiny_gguf(tmp_path_factory.mktemp("gguf") / "tiny.gguf")


def test_every_tensor_type_decodes_bit_exact_to_gguf_dequantize(tiny):
    g = open_gguf(tiny)
    reader = gguf.GGUFReader(tiny)
    kinds = set()
    for t in reader.tensors:
        ref = gguf.quants.dequantize(t.data, t.tensor_type).reshape(g.file.tensors[t.name].shape)
        ours = g.weights()[t.name]
        assert ours.dtype == np.float32
        assert np.array_equal(ours.view(np.uint32), ref.astype(np.float32).view(np.uint32)), t.name
        kinds.add(t.tensor_type.name)
    assert kinds == {"F32", "F16", "Q4_0", "Q4_1", "Q8_0"} == set(TYPES.values())


def test_logits_match_an_independent_float64_forward(tiny):
    g = open_gguf(tiny)
    ids = np.array([[5, 70, 200, 3, 9, 11, 250, 1, 42], [7, 7, 7, 100, 259, 0, 31, 8, 2]])
    logits = decode.forward(g.graph(logits="all"), g.weights(), ids)[0]
    assert logits.shape == (2, 9, TINY["vocab"]) and logits.dtype == np.float32
    for row, seq in zip(logits, ids):
        ref = reference_forward(g.weights(), seq, **TINY)
        assert np.abs(row - ref).max() <= 1e-5 * np.abs(ref).max()
        assert np.array_equal(row.argmax(-1), ref.argmax(-1))


def test_kv_cache_steps_give_the_logits_of_full_reruns(tiny):
    """Prefill 5 tokens, then 4 single-token steps: each step's logits equal the last row of a full run over
    the whole prefix (float32; the cache holds exactly the keys/values a full run computes)."""
    g = open_gguf(tiny)
    w, last, full = g.weights(), g.graph(logits="last"), g.graph(logits="all")
    ids = np.array([[12, 99, 3, 250, 17, 64, 8, 140, 77], [1, 2, 3, 4, 5, 6, 7, 8, 9]])
    logits, cache = decode.forward(last, w, ids[:, :5])
    assert cache.length == 5 and cache.k[0].shape == (2, TINY["kv_heads"], 5, TINY["dim"] // TINY["heads"])
    ref = decode.forward(full, w, ids)[0]
    np.testing.assert_allclose(logits[:, 0], ref[:, 4], rtol=0, atol=2e-5)
    for t in range(5, 9):
        logits, cache = decode.forward(last, w, ids[:, t:t + 1], cache)
        np.testing.assert_allclose(logits[:, 0], ref[:, t], rtol=0, atol=2e-5)
    assert cache.length == 9
    np.testing.assert_allclose(cache.v[1], decode.forward(full, w, ids)[1].v[1], atol=1e-6)


def test_greedy_generation_feeds_each_argmax_back(tiny):
    g = open_gguf(tiny)
    w, full = g.weights(), g.graph(logits="all")
    new = decode.greedy(g.graph(), w, [5, 70, 200], 6)
    seq = [5, 70, 200]
    for _ in range(6):                                           # the same tokens by full re-runs
        seq.append(int(decode.forward(full, w, np.array([seq]))[0][0, -1].argmax()))
    assert new == seq[3:]


def test_cli_infer_writes_logits_and_generate_writes_json(tiny, tmp_path, capsys):
    ids = tmp_path / "ids.npz"
    np.savez(ids, input_ids=np.array([[5, 70, 200, 3], [9, 11, 250, 1]]))
    out = tmp_path / "out.npz"
    assert main(["infer", tiny, "--inputs", str(ids), "--out", str(out)]) == 0
    with np.load(out) as f:
        assert f["logits"].shape == (2, 4, TINY["vocab"]) and f["logits"].dtype == np.float32
    js = tmp_path / "g.json"
    assert main(["generate", tiny, "--prompt", "the theory", "--max-new-tokens", "3", "--json", str(js)]) == 0
    data = json.loads(js.read_text())
    assert len(data["new_token_ids"]) <= 3 and isinstance(data["text"], str)
    assert data["prompt_ids"] == open_gguf(tiny).tokenizer().encode("the theory")
    assert "\nthe theory" in capsys.readouterr().out


def test_run_costs_a_gguf_file_as_its_graph(tiny, capsys):
    model = load_model(tiny, {"seq_len": 1, "past_len": 7})
    assert model.inputs["past_k.1"] == (TINY["kv_heads"], 7, TINY["dim"] // TINY["heads"])
    assert main(["run", tiny, "--hw", "edge", "--param", "seq_len=16", "--quiet"]) == 0
    assert "latency" in capsys.readouterr().out


@pytest.mark.parametrize("bad, message", [
    ("truncated", "not a readable GGUF file, or cut short"),
    ("arch", "general.architecture 'gpt2' is not supported (supported: llama)"),
    ("tensor_type", "tensor 'blk.0.ffn_down.weight' has type Q5_0, which accelsim does not decode"),
    ("vocab", "the tokenizer has 260 tokens but the model's vocabulary is 261"),
    ("shape", "tensor 'blk.1.attn_q.weight' has shape [24, 32], the graph needs [32, 32]"),
    ("extra", "tensor(s) rope_freqs.weight not used by accelsim's"),
])
@pytest.mark.parametrize("command", ["infer", "run", "generate"])
def test_bad_files_are_one_line_errors_and_leave_no_output(bad, message, command, tmp_path, tiny, capsys):
    path = tmp_path / f"{bad}.gguf"
    if bad == "truncated":
        path.write_bytes(open(tiny, "rb").read()[:-100])
    else:
        write_tiny_gguf(path, arch="gpt2" if bad == "arch" else "llama", bad=None if bad == "arch" else bad)
    out = tmp_path / "out.json"
    ids = tmp_path / "ids.npz"
    np.savez(ids, input_ids=np.array([[1, 2]]))
    argv = {"infer": ["infer", str(path), "--inputs", str(ids), "--out", str(tmp_path / "out.npz")],
            "run": ["run", str(path), "--hw", "edge", "--json", str(out)],
            "generate": ["generate", str(path), "--prompt", "hi", "--json", str(out)]}[command]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("accelsim: error: ") and err.count("\n") == 1 and message in err
    assert not out.exists() and not (tmp_path / "out.npz").exists()


def test_bad_token_ids_are_one_line_errors(tiny, tmp_path, capsys):
    ids = tmp_path / "ids.npz"
    np.savez(ids, input_ids=np.array([[1, 260]]))
    assert main(["infer", tiny, "--inputs", str(ids), "--out", str(tmp_path / "o.npz")]) == 2
    assert "token ids must lie in [0, 260)" in capsys.readouterr().err
    np.savez(ids, tokens=np.array([[1, 2]]))
    assert main(["infer", tiny, "--inputs", str(ids), "--out", str(tmp_path / "o.npz")]) == 2
    assert "a decoder takes exactly 'input_ids'" in capsys.readouterr().err


def test_cli_eval_scores_perplexity_on_the_lee_corpus(tiny, tmp_path, capsys):
    js = tmp_path / "e.json"
    assert main(["eval", tiny, "--eval", "lee", "--precision", "q4_0", "--eval-size", "1", "--calib-size", "1",
                 "--json", str(js)]) == 0
    data = json.loads(js.read_text())
    assert data["task"] == "lee_perplexity" and data["eval_size"] == 1 and data["config"]["predicted_tokens"] == 255
    assert data["fp32"]["top1_agreement"] == 1.0 and 0 < data["quantized"]["top1_agreement"] <= 1
    assert data["config"]["bits_per_weight"] == 4.5
    assert "perplexity" in capsys.readouterr().out
    assert main(["eval", tiny, "--eval", "mnist"]) == 2
    assert "a decoder LLM is evaluated with --eval lee" in capsys.readouterr().err


@pytest.mark.parametrize("precision, method", [("w8a16", "rtn"), ("w4a16g32", "gptq"), ("q4_0", "rtn"), ("q8_0", "rtn"),
                                               ("fp16", "rtn"), ("w8a8", "rtn")])
def test_generate_and_infer_run_every_kind_of_precision(tiny, precision, method):
    """Weight-only and FP16 precisions stay close to FP32 on the tiny model; W8A8 runs the integer kernels."""
    from accelsim.llm.run import generate, infer
    ids = np.array([[5, 70, 200, 3, 9, 11]])
    ref = infer(tiny, {"input_ids": ids})["logits"]
    out = infer(tiny, {"input_ids": ids}, precision, method=method)["logits"]
    assert out.shape == ref.shape and np.isfinite(out).all()
    assert np.abs(out - ref).max() < (0.02 if precision == "fp16" else 0.35) * np.abs(ref).max()
    assert len(generate(tiny, "the theory", 2, precision, method)["new_token_ids"]) <= 2


def test_missing_extra_and_unknown_precision_are_one_line_errors(tiny, tmp_path, capsys, monkeypatch):
    ids = tmp_path / "ids.npz"
    np.savez(ids, input_ids=np.array([[1, 2]]))
    assert main(["generate", tiny, "--prompt", "hi", "--precision", "w4a16-gptq"]) == 2
    assert "unknown precision 'w4a16-gptq'" in capsys.readouterr().err
    assert main(["generate", tiny, "--prompt", "hi", "--precision", "bf16"]) == 2
    assert "a decoder runs fp32, fp16, weight-only or integer precisions" in capsys.readouterr().err
    import accelsim.llm.importer as imp
    monkeypatch.setattr(imp, "_CACHE", {})
    monkeypatch.setitem(__import__("sys").modules, "gguf", None)        # as if accelsim[llm] were not installed
    assert main(["infer", tiny, "--inputs", str(ids), "--out", str(tmp_path / "o.npz")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "needs the 'gguf' library" in err and 'pip install "accelsim[llm]"' in err
    assert not (tmp_path / "o.npz").exists()
