"""Read a GGUF file with llama.cpp's own reader (the ``gguf`` package, ``pip install "accelsim[llm]"``): its
metadata, its tokenizer vocabulary and its tensors, checked before anything is built from them.

Every problem is one :class:`~accelsim.errors.AccelsimError` line naming the file: not a GGUF file or cut short
(the reader fails on a truncated file, or a tensor's data runs past the end), a tensor type accelsim does not
decode (:data:`TENSOR_TYPES`), or a tensor whose element count does not match its declared shape.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..data.packages import library
from ..errors import AccelsimError, short

LLM_EXTRA = 'pip install "accelsim[llm]"'

TENSOR_TYPES = {"F32": "f32", "F16": "f16", "Q4_0": "q4_0", "Q4_1": "q4_1", "Q8_0": "q8_0"}
"""GGUF tensor types accelsim decodes → the name :func:`accelsim.quant.blocks.decode_gguf` takes."""

_TOKENIZER = ("tokenizer.ggml.tokens", "tokenizer.ggml.merges", "tokenizer.ggml.token_type")


@dataclass(frozen=True, slots=True)
class TensorInfo:
    """One tensor of the file: its type (a :data:`TENSOR_TYPES` value), numpy shape (K last) and raw data (a
    read-only view of the memory-mapped file)."""
    name: str
    fmt: str
    shape: tuple[int, ...]
    data: np.ndarray = field(repr=False)

    @property
    def nbytes(self) -> int:
        return int(self.data.nbytes)


@dataclass(frozen=True, slots=True)
class GgufFile:
    """A checked GGUF file: scalar metadata by key, the tokenizer lists, and the tensors by name."""
    path: Path
    meta: dict
    tokens: list
    merges: list
    token_types: list
    tensors: dict


def _value(f):
    """A metadata field's value as plain Python (strings decoded, arrays as lists)."""
    v = f.contents()
    return v.tolist() if hasattr(v, "tolist") else v


def read_gguf(path: str | Path) -> GgufFile:
    """Open and check ``path`` (module docstring)."""
    gguf = library("gguf", "reading a GGUF file", extra=LLM_EXTRA)
    path = Path(path)
    where = short(str(path))
    try:
        reader = gguf.GGUFReader(path)
        fields = {k: _value(f) for k, f in reader.fields.items()}
        tensors = list(reader.tensors)
    except (OSError, ValueError, IndexError, KeyError, TypeError, UnicodeDecodeError, OverflowError) as exc:
        reason = getattr(exc, "strerror", None) or short(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
        raise AccelsimError(f"{where}: not a readable GGUF file, or cut short ({reason})") from None
    infos = {}
    for t in tensors:
        kind = t.tensor_type.name
        if kind not in TENSOR_TYPES:
            raise AccelsimError(f"{where}: tensor {short(t.name)!r} has type {kind}, which accelsim does not decode "
                                f"(supported: {', '.join(TENSOR_TYPES)})")
        shape = tuple(int(d) for d in reversed(t.shape.tolist()))
        if t.n_elements != int(np.prod(shape)):
            raise AccelsimError(f"{where}: tensor {short(t.name)!r} holds {t.n_elements} elements, not {list(shape)}")
        infos[t.name] = TensorInfo(t.name, TENSOR_TYPES[kind], shape, t.data)
    lists = [fields.pop(k, []) for k in _TOKENIZER]
    return GgufFile(path, fields, *lists, infos)
