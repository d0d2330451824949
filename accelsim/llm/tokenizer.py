"""The BPE tokenizer a GGUF file carries in its metadata, built with Hugging Face ``tokenizers``.

``tokenizer.ggml.model = gpt2`` is a byte-level BPE: the vocabulary ``tokenizer.ggml.tokens``, the merges
``tokenizer.ggml.merges`` (``"a b"`` per line), and a pre-tokenizer chosen by ``tokenizer.ggml.pre`` from
:data:`PRE_TOKENIZERS` (llama.cpp's table: ``smollm`` splits digits one by one, then applies GPT-2's byte-level
regex). Tokens of type 3 (``CONTROL``: ``<|im_start|>``, ``<|endoftext|>`` ...) are special tokens: matched
whole in the text and never split. No BOS is added unless ``tokenizer.ggml.add_bos_token`` says so.
"""
from __future__ import annotations

from ..data.packages import library
from ..errors import AccelsimError, short
from .gguf_file import LLM_EXTRA, GgufFile

CONTROL = 3

PRE_TOKENIZERS = {"smollm": ("digits", "bytelevel"), "gpt2": ("bytelevel",), "default": ("bytelevel",)}
"""``tokenizer.ggml.pre`` → the pre-tokenizer steps (llama.cpp's ``LLAMA_VOCAB_PRE_TYPE_*`` regexes)."""


class GgufTokenizer:
    """Text ↔ token ids with the file's own vocabulary; ``encode`` adds BOS only if the file asks for it."""

    def __init__(self, f: GgufFile):
        lib = library("tokenizers", "tokenizing text for a GGUF model", extra=LLM_EXTRA)
        where = short(str(f.path))
        model, pre = f.meta.get("tokenizer.ggml.model"), f.meta.get("tokenizer.ggml.pre", "default")
        if model != "gpt2" or pre not in PRE_TOKENIZERS:
            raise AccelsimError(f"{where}: tokenizer {short(model)!r} with pre-tokenizer {short(pre)!r} is not "
                                f"supported (supported: gpt2 with {', '.join(PRE_TOKENIZERS)})")
        if not f.tokens or not f.merges:
            raise AccelsimError(f"{where}: the metadata has no tokenizer vocabulary or merges")
        vocab = {t: i for i, t in enumerate(f.tokens)}
        if len(vocab) != len(f.tokens):
            raise AccelsimError(f"{where}: tokenizer.ggml.tokens repeats a token")
        merges = [tuple(m.split(" ", 1)) for m in f.merges]
        steps = {"digits": lib.pre_tokenizers.Digits(individual_digits=True),
                 "bytelevel": lib.pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)}
        tok = lib.Tokenizer(lib.models.BPE(vocab, merges))
        tok.pre_tokenizer = lib.pre_tokenizers.Sequence([steps[s] for s in PRE_TOKENIZERS[pre]])
        tok.decoder = lib.decoders.ByteLevel()
        types = f.token_types or [0] * len(f.tokens)
        tok.add_special_tokens([t for t, kind in zip(f.tokens, types) if kind == CONTROL])
        self._tok = tok
        self.vocab_size = len(f.tokens)
        self.eos_id = f.meta.get("tokenizer.ggml.eos_token_id")
        self.bos_id = f.meta.get("tokenizer.ggml.bos_token_id") if f.meta.get("tokenizer.ggml.add_bos_token") else None

    def encode(self, text: str) -> list[int]:
        if not isinstance(text, str):
            raise AccelsimError(f"text to tokenize must be a str, got {type(text).__name__}")
        ids = self._tok.encode(text, add_special_tokens=False).ids
        return ([self.bos_id] if self.bos_id is not None else []) + ids

    def decode(self, ids) -> str:
        return self._tok.decode([int(i) for i in ids], skip_special_tokens=False)
