"""Helpers for the decoder-LLM tests: a tiny llama GGUF written with llama.cpp's own writer (``gguf``), covering
every tensor type accelsim decodes, and an independent float64 forward of a llama decoder.

The reference forward is written apart from the executor on purpose: float64, one attention head at a time
with an explicit causal loop, RoPE as complex multiplication, the KV heads indexed per query head (no
grouping reshape), no graph and no registry.
"""
from __future__ import annotations

import math

import numpy as np

TINY = dict(vocab=260, dim=32, layers=2, heads=4, kv_heads=2, ffn=64, eps=1e-5, theta=10000.0)
TYPES = {"token_embd": "Q8_0", "attn_q": "Q4_1", "attn_k": "Q4_0", "attn_v": "Q8_0", "attn_output": "F16",
         "ffn_gate": "Q4_1", "ffn_up": "Q4_0", "ffn_down": "F16", "attn_norm": "F32", "ffn_norm": "F32",
         "output_norm": "F32"}


def byte_tokens() -> list[str]:
    """GPT-2's byte → printable character table (the byte-level BPE alphabet)."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs, n = bs[:], 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return [chr(c) for _, c in sorted(zip(bs, cs))]


def tiny_tensors(rng, vocab: int, dim: int, layers: int, heads: int, kv_heads: int, ffn: int, **_) -> dict:
    """Random weights by GGUF name, numpy ``[out, in]`` shapes."""
    hd = dim // heads
    w = {"token_embd.weight": rng.standard_normal((vocab, dim)),
         "output_norm.weight": 1 + 0.1 * rng.standard_normal(dim)}
    for i in range(layers):
        p = f"blk.{i}."
        w.update({p + "attn_norm.weight": 1 + 0.1 * rng.standard_normal(dim),
                  p + "ffn_norm.weight": 1 + 0.1 * rng.standard_normal(dim),
                  p + "attn_q.weight": rng.standard_normal((heads * hd, dim)) / math.sqrt(dim),
                  p + "attn_k.weight": rng.standard_normal((kv_heads * hd, dim)) / math.sqrt(dim),
                  p + "attn_v.weight": rng.standard_normal((kv_heads * hd, dim)) / math.sqrt(dim),
                  p + "attn_output.weight": rng.standard_normal((dim, heads * hd)) / math.sqrt(dim),
                  p + "ffn_gate.weight": rng.standard_normal((ffn, dim)) / math.sqrt(dim),
                  p + "ffn_up.weight": rng.standard_normal((ffn, dim)) / math.sqrt(dim),
                  p + "ffn_down.weight": rng.standard_normal((dim, ffn)) / math.sqrt(ffn)})
    return {k: v.astype(np.float32) for k, v in w.items()}


def write_tiny_gguf(path, arch: str = "llama", seed: int = 0, bad: str | None = None, **over) -> str:
    """A tiny llama GGUF at ``path``. ``bad``: ``"tensor_type"`` (one Q5_0 tensor), ``"vocab"`` (vocab_size ≠ the
    tokenizer), ``"shape"`` (attn_q with too few rows), ``"extra"`` (a tensor the graph does not use)."""
    import gguf
    from gguf import GGMLQuantizationType as Q
    cfg = {**TINY, **over}
    rng = np.random.default_rng(seed)
    tensors = tiny_tensors(rng, **cfg)
    if bad == "shape":
        tensors["blk.1.attn_q.weight"] = tensors["blk.1.attn_q.weight"][:24].copy()
    tokens = ["<|endoftext|>"] + byte_tokens() + ["Ġt", "he", "Ġthe"]
    tokens = (tokens + [f"<extra_{i}>" for i in range(cfg["vocab"] - len(tokens))])[:cfg["vocab"]]
    w = gguf.GGUFWriter(str(path), arch)
    w.add_block_count(cfg["layers"])
    w.add_context_length(128)
    w.add_embedding_length(cfg["dim"])
    w.add_feed_forward_length(cfg["ffn"])
    w.add_head_count(cfg["heads"])
    w.add_head_count_kv(cfg["kv_heads"])
    w.add_layer_norm_rms_eps(cfg["eps"])
    w.add_rope_freq_base(cfg["theta"])
    w.add_vocab_size(cfg["vocab"] + (1 if bad == "vocab" else 0))
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("smollm")
    w.add_token_list(tokens)
    w.add_token_merges(["Ġ t", "h e", "Ġt he"])
    w.add_token_types([3] + [1] * (len(tokens) - 1))
    w.add_eos_token_id(0)
    for name, x in tensors.items():
        kind = TYPES[name.split(".")[-2]]
        if bad == "tensor_type" and name == "blk.0.ffn_down.weight":
            w.add_tensor(name, np.zeros((x.shape[0], x.shape[1] // 32 * 22), np.uint8), raw_dtype=Q.Q5_0)
        elif kind in ("F32", "F16"):
            w.add_tensor(name, x.astype(np.float16 if kind == "F16" else np.float32))
        else:
            w.add_tensor(name, gguf.quants.quantize(x, Q[kind]), raw_dtype=Q[kind])
    if bad == "extra":
        w.add_tensor("rope_freqs.weight", np.ones(4, np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return str(path)


def reference_forward(w: dict, ids, heads: int, kv_heads: int, eps: float, theta: float, **_) -> np.ndarray:
    """Logits ``[S, vocab]`` of one sequence, float64 (module docstring)."""
    x = w["token_embd.weight"].astype(np.float64)[list(ids)]
    s, dim = x.shape
    hd, layers = dim // heads, sum(1 for k in w if k.endswith("attn_q.weight"))

    def norm(v, g):
        return v / np.sqrt((v * v).mean(axis=-1, keepdims=True) + eps) * g

    def rotate(vec, pos):                                    # vec [hd]: pairs (2i, 2i+1) as complex numbers
        z = vec[0::2] + 1j * vec[1::2]
        z = z * np.exp(1j * pos * theta ** (-np.arange(0, hd, 2) / hd))
        out = np.empty(hd)
        out[0::2], out[1::2] = z.real, z.imag
        return out

    for layer in range(layers):
        p = lambda n: w[f"blk.{layer}.{n}.weight"].astype(np.float64)  # noqa: E731
        h = norm(x, p("attn_norm"))
        q, k, v = h @ p("attn_q").T, h @ p("attn_k").T, h @ p("attn_v").T
        ctx = np.zeros((s, heads * hd))
        for head in range(heads):
            kvh = head // (heads // kv_heads)
            qs = np.array([rotate(q[t, head * hd:(head + 1) * hd], t) for t in range(s)])
            ks = np.array([rotate(k[t, kvh * hd:(kvh + 1) * hd], t) for t in range(s)])
            vs = v[:, kvh * hd:(kvh + 1) * hd]
            for t in range(s):
                a = ks[: t + 1] @ qs[t] / math.sqrt(hd)
                a = np.exp(a - a.max())
                ctx[t, head * hd:(head + 1) * hd] = (a / a.sum()) @ vs[: t + 1]
        x = x + ctx @ p("attn_output").T
        h = norm(x, p("ffn_norm"))
        g, u = h @ p("ffn_gate").T, h @ p("ffn_up").T
        x = x + (g / (1 + np.exp(-g)) * u) @ p("ffn_down").T
    out = w.get("output.weight", w["token_embd.weight"]).astype(np.float64)
    return norm(x, w["output_norm.weight"]) @ out.T
