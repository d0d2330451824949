"""Autoregressive decoding with a KV cache, on the one executor (:func:`accelsim.nn.graph_exec.run_graph`).

A decoder graph (docs/llm.md; :func:`accelsim.llm.architecture.graph_dict`) takes ``input_ids`` and
``positions`` of the new tokens and, per layer ``l``, the cache ``past_k.<l>`` / ``past_v.<l>``; it returns the
logits and the grown cache ``present_k.<l>`` / ``present_v.<l>``. :func:`forward` runs one call: the positions
are ``cache.length + 0..S−1`` and the returned :class:`KVCache` holds the presents. A prefill is a call on the
prompt with :meth:`KVCache.empty`; each decode step is a call on one token, so it costs one token's work (every
weight once, the attention over the cached keys) instead of re-running the prefix. :func:`greedy` generates
with argmax decoding.

The executor takes every shape from the arrays it is fed, so one graph serves every prompt length and cache
length (its ``seq_len``/``past_len`` parameters size the costing only); ``qops`` selects the quantization mode
(``None``: FP32), exactly as for any model. A call on at most :data:`GEMV_ROWS` tokens (a decode step) runs its
GEMMs on one BLAS thread: they are matrix-vector products bound by memory bandwidth, and a multi-threaded
OpenBLAS sharing the cores with other work was several times slower on them (measured here: 430 ms vs 60 ms per
SmolLM2 step on 2 busy cores).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import AccelsimError, short
from ..graph import Model
from .graph_exec import run_graph
from .qweight import GEMV_ROWS
from .train import blas_threads


@dataclass(frozen=True, slots=True)
class KVCache:
    """Per layer the cached keys and values, ``[N, kv_heads, T, head_dim]`` float32 (T = tokens so far)."""
    k: tuple
    v: tuple

    @property
    def length(self) -> int:
        return int(self.k[0].shape[2]) if self.k else 0

    @classmethod
    def empty(cls, graph: Model, batch: int) -> KVCache:
        """No tokens yet: zero-length caches shaped for ``graph``'s layers."""
        shapes = [graph.inputs[f"past_k.{i}"] for i in range(n_layers(graph))]
        zeros = tuple(np.zeros((batch, s[0], 0, s[2]), np.float32) for s in shapes)
        return cls(zeros, zeros)


def n_layers(graph: Model) -> int:
    """Decoder layers of a graph (its ``past_k.<l>`` inputs); AccelsimError if it has no KV-cache inputs."""
    n = sum(1 for name in graph.inputs if name.startswith("past_k."))
    if not n or any(f"past_{t}.{i}" not in graph.inputs for i in range(n) for t in "kv"):
        raise AccelsimError(f"model {short(graph.name)}: not a decoder graph (needs past_k.<l>/past_v.<l> inputs "
                            "for l = 0, 1, ...; docs/llm.md)")
    return n


def forward(graph: Model, weights: dict, ids, cache: KVCache | None = None, qops=None) -> tuple[np.ndarray, KVCache]:
    """Logits of the new tokens ``ids [N, S]`` (int) after ``cache`` (default empty) and the grown cache; the
    logits are the graph's output (all S positions or the last one, as the graph was built)."""
    ids = np.asarray(ids)
    if ids.ndim != 2 or ids.dtype.kind not in "iu" or ids.shape[1] == 0:
        raise AccelsimError(f"input_ids: expected a non-empty integer array [N, S], got {ids.dtype} {list(ids.shape)}")
    n = n_layers(graph)
    cache = KVCache.empty(graph, len(ids)) if cache is None else cache
    if len(cache.k[0]) != len(ids):
        raise AccelsimError(f"input_ids: {len(ids)} sequences, but the cache holds {len(cache.k[0])}")
    feeds = {"input_ids": ids, "positions": np.broadcast_to(cache.length + np.arange(ids.shape[1]), ids.shape)}
    for i in range(n):
        feeds[f"past_k.{i}"], feeds[f"past_v.{i}"] = cache.k[i], cache.v[i]
    logits = graph.layers[-1].name
    names = [logits] + [f"present_{t}.{i}" for i in range(n) for t in "kv"]
    with blas_threads(1 if ids.size <= GEMV_ROWS else None):
        out = run_graph(graph, weights, feeds, qops, outputs=names)
    return out[logits], KVCache(tuple(out[f"present_k.{i}"] for i in range(n)),
                                tuple(out[f"present_v.{i}"] for i in range(n)))


def greedy(graph: Model, weights: dict, prompt, max_new_tokens: int, eos: int | None = None, qops=None,
           on_token=None) -> list[int]:
    """Greedy decoding: prefill ``prompt`` (token ids), then up to ``max_new_tokens`` steps of one token each,
    every step taking the argmax of the last logits; stops after ``eos``. ``on_token(i, token)`` is called
    after each step. Returns the new token ids."""
    if max_new_tokens < 1:
        raise AccelsimError(f"max_new_tokens: expected a positive integer, got {max_new_tokens}")
    logits, cache = forward(graph, weights, np.asarray([prompt]), None, qops)
    new: list[int] = []
    while True:
        token = int(np.argmax(logits[0, -1]))
        new.append(token)
        if on_token is not None:
            on_token(len(new), token)
        if len(new) == max_new_tokens or token == eos:
            return new
        logits, cache = forward(graph, weights, np.asarray([[token]]), cache, qops)
