"""BERT WordPiece tokenizer in plain Python over a ``vocab.txt`` (no ``tokenizers`` dependency).

It reproduces the Hugging Face ``tokenizers`` pipeline that MiniLM's ``tokenizer.json`` declares
(``BertNormalizer`` → ``BertPreTokenizer`` → ``WordPiece`` → ``[CLS] A [SEP]``), including its small
differences from Google's original Python ``BertTokenizer``:

1. **Special tokens** (``[PAD] [UNK] [CLS] [SEP] [MASK]``) written literally in the raw text are kept whole
   and never normalized (the ``added_tokens`` with ``normalized: false``).
2. **Clean text**: drop U+0000, U+FFFD and control characters (Unicode category ``C*`` except ``\\t \\n \\r``);
   map whitespace (Rust ``char::is_whitespace``, i.e. the Unicode ``White_Space`` property) to a space.
3. **CJK**: put spaces around every CJK ideograph (the ranges of :data:`_CJK_RANGES`).
4. **Strip accents, then lowercase** (``strip_accents: null`` follows ``lowercase: true``): NFD, drop
   nonspacing marks (``Mn``), then lowercase *character by character* (no context-dependent final sigma).
5. **Pre-tokenize**: split on whitespace; every punctuation character (ASCII punctuation or Unicode ``P*``)
   becomes its own word.
6. **WordPiece**: a word longer than 100 characters is ``[UNK]``; otherwise greedy longest-match-first
   from the left, continuation pieces prefixed with ``##``; if any position has no match the whole word is
   ``[UNK]``.
7. ``[CLS] pieces[: max_length − 2] [SEP]`` (truncation keeps the head of the text).
"""
from __future__ import annotations

import re
import unicodedata
from functools import lru_cache
from pathlib import Path

import numpy as np

from accelsim.errors import AccelsimError

__all__ = ["WordPieceTokenizer", "load_vocab"]

_CJK_RANGES = (
    (0x4E00, 0x9FFF), (0x3400, 0x4DBF), (0x20000, 0x2A6DF), (0x2A700, 0x2B73F), (0x2B740, 0x2B81F),
    (0x2B920, 0x2CEAF), (0xF900, 0xFAFF), (0x2F800, 0x2FA1F),
)  # as in tokenizers' bert normalizer (note 0x2B920, where Google's Python BERT has 0x2B820)
#: Unicode White_Space property (what Rust's char::is_whitespace tests).
_WHITESPACE = frozenset("\t\n\x0b\x0c\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007"
                        "\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000")
_SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")


def load_vocab(path: str | Path) -> dict[str, int]:
    """Read a BERT ``vocab.txt``: one token per line, id = line number (0-based)."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").split("\n")
    except (OSError, UnicodeDecodeError) as exc:
        raise AccelsimError(f"{path}: cannot read WordPiece vocabulary ({exc})") from exc
    if lines and lines[-1] == "":
        lines.pop()
    vocab = {tok.rstrip("\r"): i for i, tok in enumerate(lines)}
    if len(vocab) != len(lines):
        raise AccelsimError(f"{path}: vocabulary has duplicate tokens ({len(lines)} lines, {len(vocab)} unique)")
    return vocab


def _is_control(ch: str) -> bool:
    return ch not in "\t\n\r" and unicodedata.category(ch)[0] == "C"


def _is_punctuation(ch: str) -> bool:
    cp = ord(ch)
    if 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126:
        return True
    return unicodedata.category(ch)[0] == "P"


def _is_cjk(cp: int) -> bool:
    return any(lo <= cp <= hi for lo, hi in _CJK_RANGES)


def normalize(text: str, lowercase: bool = True, strip_accents: bool | None = None) -> str:
    """BertNormalizer: clean text, pad CJK ideographs, strip accents (NFD, drop ``Mn``), lowercase per char."""
    out = []
    for ch in text:
        if ch == "\x00" or ch == "\ufffd" or _is_control(ch):
            continue
        if ch in _WHITESPACE:
            out.append(" ")
        elif _is_cjk(ord(ch)):
            out.append(f" {ch} ")
        else:
            out.append(ch)
    text = "".join(out)
    if strip_accents if strip_accents is not None else lowercase:
        text = "".join(c for c in unicodedata.normalize("NFD", text) if unicodedata.category(c) != "Mn")
    if lowercase:
        text = "".join(c.lower() for c in text)
    return text


def pre_tokenize(text: str) -> list[str]:
    """BertPreTokenizer: split on whitespace; each punctuation character is a word of its own."""
    words: list[str] = []
    for chunk in text.split():
        current: list[str] = []
        for ch in chunk:
            if _is_punctuation(ch):
                if current:
                    words.append("".join(current))
                    current = []
                words.append(ch)
            else:
                current.append(ch)
        if current:
            words.append("".join(current))
    return words


class WordPieceTokenizer:
    """BERT tokenizer over a vocabulary ``{token: id}``; see the module docstring for the exact pipeline."""

    def __init__(self, vocab: dict[str, int], *, lowercase: bool = True, strip_accents: bool | None = None,
                 max_input_chars_per_word: int = 100, unk_token: str = "[UNK]", cls_token: str = "[CLS]",
                 sep_token: str = "[SEP]", pad_token: str = "[PAD]"):
        missing = [t for t in (unk_token, cls_token, sep_token, pad_token) if t not in vocab]
        if missing:
            raise AccelsimError(f"WordPiece vocabulary lacks special tokens {missing}")
        self.vocab = dict(vocab)
        self.lowercase = lowercase
        self.strip_accents = strip_accents
        self.max_input_chars_per_word = max_input_chars_per_word
        self.unk_token, self.cls_token, self.sep_token, self.pad_token = unk_token, cls_token, sep_token, pad_token
        specials = [t for t in _SPECIAL_TOKENS if t in self.vocab]  # never empty: [UNK] etc. are checked above
        self._special_re = re.compile("(" + "|".join(re.escape(t) for t in specials) + ")")
        self._wordpiece = lru_cache(maxsize=1 << 16)(self._wordpiece_uncached)

    @classmethod
    def from_vocab_file(cls, path: str | Path, **kwargs) -> WordPieceTokenizer:
        """Build from a ``vocab.txt`` file (keyword arguments as for the constructor)."""
        return cls(load_vocab(path), **kwargs)

    @property
    def pad_id(self) -> int:
        return self.vocab[self.pad_token]

    def _wordpiece_uncached(self, word: str) -> tuple[str, ...]:
        """Greedy longest-match-first split of one word; ``(unk,)`` if too long or not coverable."""
        if len(word) > self.max_input_chars_per_word:
            return (self.unk_token,)
        pieces, start = [], 0
        while start < len(word):
            end, piece = len(word), None
            while start < end:
                sub = word[start:end] if start == 0 else "##" + word[start:end]
                if sub in self.vocab:
                    piece = sub
                    break
                end -= 1
            if piece is None:
                return (self.unk_token,)
            pieces.append(piece)
            start = end
        return tuple(pieces)

    def tokenize(self, text: str) -> list[str]:
        """Word pieces of ``text`` without ``[CLS]``/``[SEP]`` and without truncation."""
        pieces: list[str] = []
        for part in self._special_re.split(text):
            if not part:
                continue
            if part in self.vocab and part in _SPECIAL_TOKENS:
                pieces.append(part)
                continue
            norm = normalize(part, self.lowercase, self.strip_accents)
            for word in pre_tokenize(norm):
                pieces.extend(self._wordpiece(word))
        return pieces

    def encode(self, text: str, max_length: int = 256) -> list[int]:
        """Token ids ``[CLS] pieces[: max_length − 2] [SEP]``."""
        if max_length < 2:
            raise AccelsimError(f"max_length must be >= 2 to hold [CLS] and [SEP], got {max_length}")
        if not isinstance(text, str):
            raise AccelsimError(f"text to tokenize must be a str, got {type(text).__name__}")
        ids = [self.vocab[p] for p in self.tokenize(text)[: max_length - 2]]
        return [self.vocab[self.cls_token], *ids, self.vocab[self.sep_token]]

    def batch_encode(self, texts: list[str], max_length: int = 256) -> tuple[np.ndarray, np.ndarray]:
        """``(ids, mask)``, both ``int64 [n, L]`` with L the longest encoded text; padding is ``[PAD]``, mask 0."""
        encoded = [self.encode(t, max_length) for t in texts]
        width = max((len(e) for e in encoded), default=0)
        ids = np.full((len(encoded), width), self.pad_id, dtype=np.int64)
        mask = np.zeros((len(encoded), width), dtype=np.int64)
        for row, e in enumerate(encoded):
            ids[row, : len(e)] = e
            mask[row, : len(e)] = 1
        return ids, mask
