"""Text → token ids with the Hugging Face ``tokenizers`` library (``pip install "accelsim[data]"``).

:class:`Tokenizer` runs a model's own ``tokenizer.json`` (for MiniLM: ``BertNormalizer`` → ``BertPreTokenizer``
→ ``WordPiece`` → ``[CLS] A [SEP]``), with one change: the file's padding and truncation settings are
dropped, and the caller's ``max_length`` truncates instead. MiniLM's ``tokenizer.json`` pads and truncates at
128 tokens, while sentence-transformers (the model's reference) truncates at its ``max_seq_length`` of 256;
five Lee documents are longer than 128 tokens, so using the file's setting would change their embeddings.
Truncation keeps the head of the text: ``[CLS] pieces[: max_length − 2] [SEP]``.
"""
from __future__ import annotations

from pathlib import Path

from accelsim.data.packages import library
from accelsim.errors import AccelsimError

__all__ = ["Tokenizer"]


class Tokenizer:
    """A ``tokenizers.Tokenizer`` without its own padding/truncation; ``encode`` truncates to ``max_length``."""

    def __init__(self, tok, pad_token: str = "[PAD]"):
        tok.no_padding()
        tok.no_truncation()
        pad_id = tok.token_to_id(pad_token)
        if pad_id is None:
            raise AccelsimError(f"the tokenizer's vocabulary lacks the padding token {pad_token!r}")
        self._tok, self._max_length, self.pad_id = tok, None, pad_id

    @classmethod
    def from_file(cls, path: str | Path, **kwargs) -> Tokenizer:
        """Load a ``tokenizer.json`` (keyword arguments as for the constructor)."""
        lib = library("tokenizers", "tokenizing text")
        try:
            return cls(lib.Tokenizer.from_file(str(path)), **kwargs)
        except Exception as exc:   # the library raises a plain Exception for unreadable or malformed files
            raise AccelsimError(f"{path}: cannot read the tokenizer ({str(exc).splitlines()[0]})") from None

    def encode(self, text: str, max_length: int = 256) -> list[int]:
        """Token ids of ``text`` with the special tokens, at most ``max_length`` of them."""
        if not isinstance(max_length, int) or max_length < 2:
            raise AccelsimError(f"max_length must be an int >= 2 to hold [CLS] and [SEP], got {max_length!r}")
        if not isinstance(text, str):
            raise AccelsimError(f"text to tokenize must be a str, got {type(text).__name__}")
        if max_length != self._max_length:
            self._tok.enable_truncation(max_length)
            self._max_length = max_length
        return self._tok.encode(text).ids
