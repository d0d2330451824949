"""Decoder architectures: the hyperparameters of a llama-style LLM and the accelsim graph built from them.

:class:`DecoderConfig` holds what the graph needs (read from GGUF metadata by :func:`config_from_metadata`
through the table :data:`ARCHITECTURES`, or written down for a bundled model by ``tools/zoo``), and
:func:`graph_dict` turns it into a model description (the same mapping a model YAML holds) with the parameters

* ``seq_len`` — tokens this call feeds (a prefill: the prompt; a decode step: 1);
* ``past_len`` — tokens already in the KV cache (declared 0, so it may be 0: a prefill).

Graph inputs: ``input_ids [seq_len]`` (token ids), ``positions [seq_len]`` (absolute positions, normally
``past_len + 0..seq_len−1``) and per layer ``l`` the cache ``past_k.<l>``, ``past_v.<l>`` ``[kv_heads, past_len,
head_dim]``; each layer's ``present_k.<l>``/``present_v.<l>`` ``[kv_heads, past_len + seq_len, head_dim]`` is the
cache after the call. The output is ``logits`` — ``[seq_len, vocab]`` (``logits="all"``) or ``[1, vocab]`` for
the last token only (``logits="last"``: generation and costing, as inference engines skip the other rows).
Weight bindings are the GGUF tensor names (``blk.<l>.attn_q`` ...; docs/llm.md lists the graph layer by layer).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..errors import AccelsimError, short


@dataclass(frozen=True, slots=True)
class DecoderConfig:
    """A llama-style decoder: ``layers`` blocks of width ``dim`` with ``heads`` query and ``kv_heads`` key/value
    heads of ``head_dim``, a SwiGLU FFN of ``ffn``, RMSNorm ``eps``, RoPE base ``rope_theta`` over ``rope_dims``
    channels in ``rope_style`` pairs (:data:`accelsim.ops.decoder.ROPE_STYLES`), ``vocab`` tokens, and an output
    projection ``tied`` to the token embedding (or its own ``output`` tensor)."""
    arch: str
    vocab: int
    dim: int
    layers: int
    heads: int
    kv_heads: int
    ffn: int
    eps: float
    rope_theta: float
    head_dim: int
    rope_dims: int
    rope_style: str = "adjacent"
    tied: bool = True
    context: int = 2048

    @property
    def groups(self) -> int:
        """Query heads per KV head (grouped-query attention)."""
        return self.heads // self.kv_heads

    def problems(self) -> list[str]:
        """What makes the hyperparameters unusable (empty when they are consistent)."""
        out = []
        for key in ("vocab", "dim", "layers", "heads", "kv_heads", "ffn", "head_dim", "rope_dims"):
            v = getattr(self, key)
            if isinstance(v, bool) or not isinstance(v, int) or v <= 0:
                out.append(f"{key}: expected a positive integer, got {short(v)}")
        if out:
            return out
        if self.heads % self.kv_heads:
            out.append(f"head_count {self.heads} is not a multiple of head_count_kv {self.kv_heads}")
        if self.rope_dims % 2 or self.rope_dims > self.head_dim:
            out.append(f"rope dimension_count {self.rope_dims} must be even and ≤ the head size {self.head_dim}")
        if not (0 < self.eps < 1) or not (self.rope_theta > 0):
            out.append(f"rms epsilon {self.eps} must lie in (0, 1) and rope freq_base {self.rope_theta} be positive")
        return out


# GGUF metadata keys (after "<arch>.") → config field, with the default when the key is absent (None: required).
_LLAMA_KEYS = {
    "block_count": ("layers", None), "embedding_length": ("dim", None), "feed_forward_length": ("ffn", None),
    "attention.head_count": ("heads", None), "attention.head_count_kv": ("kv_heads", "heads"),
    "attention.layer_norm_rms_epsilon": ("eps", None), "rope.freq_base": ("rope_theta", 10000.0),
    "attention.key_length": ("head_dim", "dim/heads"), "rope.dimension_count": ("rope_dims", "head_dim"),
    "context_length": ("context", 2048), "vocab_size": ("vocab", "tokens"),
}

ARCHITECTURES = {"llama": dict(keys=_LLAMA_KEYS, rope_style="adjacent")}
"""Architectures accelsim builds a graph for (``general.architecture``): their metadata keys and RoPE pairing
(GGUF's llama tensors are stored for llama.cpp's ``NORM`` RoPE mode: adjacent channel pairs)."""


def config_from_metadata(meta: dict, n_tokens: int | None, tied: bool, where: str) -> DecoderConfig:
    """A :class:`DecoderConfig` from GGUF metadata (key → value); AccelsimError naming every missing or bad key,
    or the architecture when accelsim has no table for it (:data:`ARCHITECTURES`)."""
    arch = meta.get("general.architecture")
    if arch not in ARCHITECTURES:
        raise AccelsimError(f"{where}: general.architecture {short(arch)!r} is not supported "
                            f"(supported: {', '.join(ARCHITECTURES)})")
    spec, values, missing = ARCHITECTURES[arch], {}, []
    for key, (field, default) in spec["keys"].items():
        full = f"{arch}.{key}"
        if full in meta:
            values[field] = meta[full]
        elif default is None:
            missing.append(full)
        else:
            values[field] = default
    if missing:
        raise AccelsimError(f"{where}: metadata key(s) {', '.join(missing)} missing")
    values = {k: _number(v) for k, v in values.items()}
    if values["kv_heads"] == "heads":
        values["kv_heads"] = values["heads"]
    if values["head_dim"] == "dim/heads":
        ok = isinstance(values["dim"], int) and isinstance(values["heads"], int) and values["heads"] > 0
        values["head_dim"] = values["dim"] // values["heads"] if ok else 0
    if values["rope_dims"] == "head_dim":
        values["rope_dims"] = values["head_dim"]
    if values["vocab"] == "tokens":
        values["vocab"] = n_tokens or 0
    cfg = DecoderConfig(arch=arch, rope_style=spec["rope_style"], tied=tied, **values)
    problems = cfg.problems()
    if problems:
        raise AccelsimError(f"{where}: {'; '.join(problems)}")
    return cfg


def _number(v):
    """A GGUF scalar as a Python int/float (numpy scalars and 1-element arrays included); a float is the shortest
    decimal of its float32 value (GGUF stores float32: ε ``9.99999975e-06`` reads as ``1e-05``, the same float32)."""
    if hasattr(v, "tolist"):
        v = v.tolist()
    if isinstance(v, list) and len(v) == 1:
        v = v[0]
    if isinstance(v, float):
        v = float(str(np.float32(v)))
    return v


# ---- the graph ---------------------------------------------------------------------------------------------

def _block(cfg: DecoderConfig, i: int, x: str) -> tuple[list[dict], str]:
    """Layers of decoder block ``i`` reading hidden states ``x``; returns them and the block's output name."""
    p, kv, g, hd = f"blk.{i}", cfg.kv_heads, cfg.groups, cfg.head_dim
    def lin(name, n, src, w):
        return dict(name=f"{p}.{name}", op="linear", input=src, out_features=n, bias=False, weight=f"{p}.{w}")
    rope = dict(op="rope", theta=cfg.rope_theta, dims=cfg.rope_dims, style=cfg.rope_style)
    return [
        dict(name=f"{p}.attn_norm", op="rmsnorm", input=x, eps=cfg.eps, weight=f"{p}.attn_norm"),
        lin("q", cfg.heads * hd, f"{p}.attn_norm", "attn_q"),
        lin("k", kv * hd, f"{p}.attn_norm", "attn_k"),
        lin("v", kv * hd, f"{p}.attn_norm", "attn_v"),
        dict(name=f"{p}.q_heads", op="split_heads", input=f"{p}.q", heads=cfg.heads),
        dict(name=f"{p}.k_heads", op="split_heads", input=f"{p}.k", heads=kv),
        dict(name=f"{p}.v_heads", op="split_heads", input=f"{p}.v", heads=kv),
        dict(name=f"{p}.q_rope", inputs=[f"{p}.q_heads", "positions"], **rope),
        dict(name=f"{p}.k_rope", inputs=[f"{p}.k_heads", "positions"], **rope),
        dict(name=f"present_k.{i}", op="concat", axis=1, inputs=[f"past_k.{i}", f"{p}.k_rope"]),
        dict(name=f"present_v.{i}", op="concat", axis=1, inputs=[f"past_v.{i}", f"{p}.v_heads"]),
        dict(name=f"{p}.q_groups", op="group_heads", input=f"{p}.q_rope", groups=g),
        dict(name=f"{p}.scores", op="matmul", inputs=[f"{p}.q_groups", f"present_k.{i}"], transpose_b=True),
        dict(name=f"{p}.probs", op="causal_softmax", input=f"{p}.scores", scale=1 / math.sqrt(hd), groups=g),
        dict(name=f"{p}.context_groups", op="matmul", inputs=[f"{p}.probs", f"present_v.{i}"]),
        dict(name=f"{p}.context_heads", op="ungroup_heads", input=f"{p}.context_groups", groups=g),
        dict(name=f"{p}.context", op="merge_heads", input=f"{p}.context_heads"),
        lin("attn_out", cfg.dim, f"{p}.context", "attn_output"),
        dict(name=f"{p}.attn_res", op="add", inputs=[x, f"{p}.attn_out"]),
        dict(name=f"{p}.ffn_norm", op="rmsnorm", input=f"{p}.attn_res", eps=cfg.eps, weight=f"{p}.ffn_norm"),
        lin("gate", cfg.ffn, f"{p}.ffn_norm", "ffn_gate"),
        lin("up", cfg.ffn, f"{p}.ffn_norm", "ffn_up"),
        dict(name=f"{p}.swiglu", op="swiglu", inputs=[f"{p}.gate", f"{p}.up"]),
        lin("down", cfg.dim, f"{p}.swiglu", "ffn_down"),
        dict(name=f"{p}.out", op="add", inputs=[f"{p}.attn_res", f"{p}.down"]),
    ], f"{p}.out"


LOGITS = ("all", "last")


def graph_dict(cfg: DecoderConfig, name: str, logits: str = "last", seq_len: int = 128,
               weights: dict | None = None) -> dict:
    """The model description of ``cfg`` (module docstring): parameters ``seq_len`` (default ``seq_len``) and
    ``past_len`` (0), logits for ``"all"`` positions or the ``"last"`` one, optional ``weights`` section."""
    if logits not in LOGITS:
        raise AccelsimError(f"logits: expected one of {', '.join(LOGITS)}, got {logits!r}")
    cache = [dict(name=f"past_{t}.{i}", shape=[cfg.kv_heads, "past_len", cfg.head_dim])
             for i in range(cfg.layers) for t in "kv"]
    layers = [dict(name="embed", op="embedding", input="input_ids", num_embeddings=cfg.vocab, dim=cfg.dim,
                   weight="token_embd")]
    x = "embed"
    for i in range(cfg.layers):
        block, x = _block(cfg, i, x)
        layers += block
    layers.append(dict(name="output_norm", op="rmsnorm", input=x, eps=cfg.eps, weight="output_norm"))
    if logits == "last":
        layers.append(dict(name="last_token", op="last_token", input="output_norm"))
    head = dict(op="tied_linear", weight="token_embd") if cfg.tied else dict(op="linear", weight="output")
    layers.append(dict(name="logits", out_features=cfg.vocab, bias=False, **head))
    out = dict(name=name, params=dict(seq_len=seq_len, past_len=0),
               inputs=[dict(name="input_ids", shape=["seq_len"], dtype="int64"),
                       dict(name="positions", shape=["seq_len"], dtype="int64"), *cache],
               layers=layers)
    if weights:
        out["weights"] = dict(weights)
    return out
