"""GGUF file → accelsim decoder graph + decoded weights + tokenizer.

:func:`open_gguf` reads and checks a file (:mod:`.gguf_file`), derives its :class:`~.architecture.DecoderConfig`
from the metadata (unknown architectures are an error), and checks that its tensors are exactly the ones the
graph binds, each with the shape the graph needs — a vocabulary or shape mismatch is one error listing every
tensor. :meth:`GgufModel.graph` builds the graph for given parameters (``seq_len``, ``past_len``) and logits
(``"last"`` for costing and generation, ``"all"`` for ``accelsim infer``); :meth:`GgufModel.weights` decodes every
tensor to float32 (:func:`accelsim.quant.blocks.decode_gguf`, bit for bit as ``gguf.quants.dequantize``).

A model YAML may name a GGUF file as its weights (``weights: {format: gguf, ...}``, as the bundled
``smollm2_135m`` does): :func:`for_model` finds the file and checks that the YAML's graph is the file's.
The last few opened files are cached by path, modification time and size.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..data import weights as files
from ..errors import AccelsimError, ConfigError, short
from ..graph import Model
from .architecture import DecoderConfig, config_from_metadata, graph_dict
from .gguf_file import GgufFile, read_gguf


class GgufModel:
    """An opened, checked GGUF decoder (module docstring)."""

    def __init__(self, f: GgufFile):
        self.file = f
        self.path = f.path
        where = short(str(f.path))
        tied = "output.weight" not in f.tensors
        self.config: DecoderConfig = config_from_metadata(f.meta, len(f.tokens) or None, tied, where)
        if f.tokens and len(f.tokens) != self.config.vocab:
            raise AccelsimError(f"{where}: the tokenizer has {len(f.tokens)} tokens but the model's vocabulary is "
                                f"{self.config.vocab}")
        self.name = Path(f.path).stem
        self._graphs: dict = {}
        self._weights: dict | None = None
        self._blocks: dict | None = None
        self._tokenizer = None
        _check_tensors(self.graph(logits="all"), f)

    def graph(self, params: dict | None = None, logits: str = "last", name: str | None = None) -> Model:
        """The decoder graph with these model parameters (docs/llm.md)."""
        key = (tuple(sorted((params or {}).items())), logits, name)
        if key not in self._graphs:
            while len(self._graphs) >= 16:          # a decode costed step by step asks for many cache lengths
                self._graphs.pop(next(iter(self._graphs)))
            source = {"format": "gguf", "file": str(self.path.resolve())}
            d = graph_dict(self.config, name or self.name, logits, weights=source)
            self._graphs[key] = Model.from_dict(d, "model", source=str(self.path), overrides=params)
        return self._graphs[key]

    def weights(self) -> dict[str, np.ndarray]:
        """Every tensor decoded to float32, by GGUF name (cached); the GEMM weights from their :meth:`blocks` when
        those are unpacked already (the same values: :func:`~accelsim.quant.blocks.decode_gguf` unpacks them so)."""
        if self._weights is None:
            from ..quant.blocks import block_dequantize, decode_gguf
            unpacked = {f"{name}.weight": b for name, b in (self._blocks or {}).items()}
            self._weights = {n: block_dequantize(unpacked[n]).reshape(t.shape) if n in unpacked
                             else decode_gguf(t.data, t.fmt, t.shape) for n, t in self.file.tensors.items()}
        return self._weights

    def blocks(self) -> dict:
        """The block-quantized tensors of the GEMM layers, by the executor's layer name (the weight binding):
        ``{"blk.0.attn_q": BlockTensor, ...}`` — what the FP32 mode computes from
        (:class:`accelsim.nn.qweight.BlockOps`)."""
        if self._blocks is None:
            from ..quant.blocks import GGUF_FORMATS, gguf_blocks
            out = {}
            for layer in self.graph(logits="all").layers:
                t = self.file.tensors.get(f"{layer.weight}.weight") if layer.op in ("linear", "tied_linear") else None
                if t is not None and t.fmt in GGUF_FORMATS:
                    out[layer.weight] = gguf_blocks(t.data, t.fmt, t.shape)
            self._blocks = out
        return self._blocks

    def tokenizer(self):
        if self._tokenizer is None:
            from .tokenizer import GgufTokenizer
            self._tokenizer = GgufTokenizer(self.file)
        return self._tokenizer


def _check_tensors(model: Model, f: GgufFile) -> None:
    """Every tensor the graph binds is in the file with its shape, and the file has no other tensor."""
    stand_ins = {n: np.broadcast_to(np.float32(0), t.shape) for n, t in f.tensors.items()}
    files.check_weights(model, stand_ins)
    bound = {f"{layer.weight}.{s}" for layer in model.layers if layer.weight
             for s in files.expected_shapes(layer)}
    extra = sorted(set(f.tensors) - bound)
    if extra:
        raise ConfigError([f"tensor(s) {short(', '.join(extra))} not used by accelsim's {model.name} graph "
                           f"({len(extra)} unexpected)"], str(f.path))


_CACHE: dict = {}
_CACHE_SIZE = 2


def open_gguf(path: str | Path) -> GgufModel:
    """The checked model of a GGUF file (cached by path, modification time and size)."""
    p = Path(path)
    try:
        st = p.stat()
    except OSError as exc:
        raise AccelsimError(f"{short(str(path))}: {exc.strerror or 'cannot read'}") from None
    key = (str(p.resolve()), st.st_mtime_ns, st.st_size)
    if key not in _CACHE:
        model = GgufModel(read_gguf(p))
        while len(_CACHE) >= _CACHE_SIZE:
            _CACHE.pop(next(iter(_CACHE)))
        _CACHE[key] = model
    return _CACHE[key]


def load_gguf(path: str | Path, params: dict | None = None) -> Model:
    """The costable graph of a GGUF file (last-token logits, as ``accelsim run`` costs it)."""
    return open_gguf(path).graph(params)


def for_model(model: Model) -> GgufModel:
    """The GGUF file behind a decoder graph: the file it was imported from, or the one its YAML's ``weights:``
    names (whose graph must then be the YAML's, layer for layer)."""
    if not model.weights or model.weights.get("format") != "gguf":
        raise AccelsimError(f"model {short(model.name)}: not a decoder with GGUF weights (weights: {{format: gguf}})")
    g = open_gguf(files.weights_path(model))
    if not any(m is model for m in g._graphs.values()):
        params = {"seq_len": model.inputs["input_ids"][0], "past_len": model.inputs["past_k.0"][1]} \
            if "input_ids" in model.inputs and "past_k.0" in model.inputs else {}
        if g.graph(params, "last", model.name).layers != model.layers:
            raise AccelsimError(f"model {short(model.name)}: its graph differs from the one accelsim builds for "
                                f"{short(str(g.path))} (regenerate it with tools/gen_zoo.py)")
    return g


def weights_for(model: Model) -> dict[str, np.ndarray]:
    """The decoded weights of a decoder graph (:func:`for_model`)."""
    return for_model(model).weights()
