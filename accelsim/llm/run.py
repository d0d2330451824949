"""Run a GGUF decoder: logits for given token ids (``accelsim infer``) and greedy generation with a KV cache
(``accelsim generate``), in FP32 or any precision of :mod:`.requant`.

``infer`` takes ``input_ids`` (int, ``[N, S]``) and returns ``logits`` ``[N, S, vocab]`` float32 (one prefill
call per batch of sequences, logits for every position). ``generate`` tokenizes a prompt with the file's own
tokenizer, prefills it and decodes greedily one token per step on the KV cache (:mod:`accelsim.nn.decode`).
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from ..errors import AccelsimError, short
from ..graph import Model
from ..nn import decode
from .importer import GgufModel, for_model, open_gguf

BATCH = 8


def decoder(spec) -> GgufModel:
    """The GGUF decoder behind a ``.gguf`` path, a loaded decoder graph, or a model name/YAML with GGUF weights."""
    if isinstance(spec, GgufModel):
        return spec
    if isinstance(spec, Model):
        return for_model(spec)
    if Path(str(spec)).suffix.lower() == ".gguf":
        return open_gguf(spec)
    from ..config.loader import load_model
    return for_model(load_model(spec))


def check_ids(inputs: dict, vocab: int) -> np.ndarray:
    """``inputs`` holds exactly ``input_ids``: integer token ids ``[N, S]`` in ``[0, vocab)``."""
    extra = [k for k in inputs if k != "input_ids"]
    if "input_ids" not in inputs or extra:
        raise AccelsimError(f"inputs: a decoder takes exactly 'input_ids' (int [N, S]); got "
                            f"{short(', '.join(inputs) or 'none')}")
    ids = np.asarray(inputs["input_ids"])
    if ids.ndim != 2 or ids.dtype.kind not in "iu" or 0 in ids.shape:
        raise AccelsimError(f"inputs: 'input_ids' must be a non-empty integer array [N, S], got {ids.dtype} "
                            f"{list(ids.shape)}")
    if ids.min() < 0 or ids.max() >= vocab:
        raise AccelsimError(f"inputs: token ids must lie in [0, {vocab}), got [{ids.min()}, {ids.max()}]")
    return ids.astype(np.int64)


def infer(spec, inputs: dict, precision: str | None = None, calib: str = "minmax", method: str = "rtn") -> dict:
    """``{"logits": [N, S, vocab] float32}`` of the token ids ``inputs["input_ids"]`` (module docstring)."""
    gm = decoder(spec)
    ids = check_ids(inputs, gm.config.vocab)
    graph = gm.graph(logits="all")
    qops = qops_for(gm, precision, calib, method)
    parts = [decode.forward(graph, gm.weights(), ids[i:i + BATCH], None, qops)[0] for i in range(0, len(ids), BATCH)]
    return {"logits": np.concatenate(parts).astype(np.float32, copy=False)}


def qops_for(gm: GgufModel, precision: str | None, calib: str = "minmax", method: str = "rtn",
             layers: dict | None = None):
    """The executor mode of a precision name: None / ``fp32`` is the FP32 model of the decoded weights, computed
    from the file's blocks (:class:`accelsim.nn.qweight.BlockOps` with ``dense_is_weight``); others:
    :func:`.requant.precision_ops` (``method``: rtn or gptq; ``layers``: per-layer weight-only precisions)."""
    if (precision is None or precision.strip().lower() == "fp32") and method == "rtn" and not layers:
        from ..nn.qweight import BlockOps
        return BlockOps(gm.blocks(), act="fp32", dense_is_weight=True)
    from .requant import precision_ops
    return precision_ops(gm, precision or "fp32", method, layers, calib=calib)


def generate(spec, prompt: str, max_new_tokens: int = 32, precision: str | None = None, method: str = "rtn",
             on_token=None) -> dict:
    """Greedy continuation of ``prompt``: ``text`` (the new tokens decoded), ``new_token_ids``, ``prompt_ids``,
    the precision and the wall-clock seconds of the prefill and of the decode steps."""
    gm = decoder(spec)
    tok = gm.tokenizer()
    prompt_ids = tok.encode(prompt)
    if not prompt_ids:
        raise AccelsimError("--prompt: the prompt has no tokens")
    qops = qops_for(gm, precision, method=method)
    graph, weights = gm.graph(logits="last"), gm.weights()
    marks = [time.perf_counter()]
    new = decode.greedy(graph, weights, prompt_ids, max_new_tokens, tok.eos_id, qops,
                        on_token=lambda i, t: (marks.append(time.perf_counter()), on_token and on_token(i, t)))
    prefill, steps = marks[1] - marks[0], marks[-1] - marks[1]
    return {"model": gm.name, "precision": precision or "fp32", "weight_method": method, "prompt": prompt,
            "prompt_ids": list(prompt_ids),
            "text": tok.decode(new), "new_token_ids": new,
            "seconds": {"prefill": prefill, "decode": steps,
                        "decode_per_token": steps / max(len(new) - 1, 1)}}
