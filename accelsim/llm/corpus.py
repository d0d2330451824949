"""Real text for decoder LLMs: the Lee background corpus (300 news documents, ``gensim``'s ``lee_background.cor``,
:mod:`accelsim.data.lee`) as windows of token ids.

The documents are tokenized one by one with the model's own tokenizer, joined with the end-of-text token between
them (when the vocabulary has one) and cut into non-overlapping windows of ``length`` tokens. Documents
``[0, CALIB_DOCS)`` are the calibration pool (GPTQ Hessians, W8A8 activation ranges); documents
``[CALIB_DOCS, 300)`` the evaluation pool, so no evaluated token was seen during calibration.
"""
from __future__ import annotations

import numpy as np

from ..data.lee import load_lee_background
from ..errors import AccelsimError

CALIB_DOCS = 60


def lee_windows(tokenizer, length: int, count: int | None, calibration: bool = False) -> np.ndarray:
    """``[count, length]`` int64 token windows from the evaluation (or calibration) documents, in corpus order
    (``count=None``: every whole window)."""
    docs = load_lee_background()
    docs = docs[:CALIB_DOCS] if calibration else docs[CALIB_DOCS:]
    ids: list[int] = []
    for doc in docs:
        if ids and tokenizer.eos_id is not None:
            ids.append(tokenizer.eos_id)
        ids.extend(tokenizer.encode(doc.strip()))
    n = len(ids) // length
    if count is not None and count > n:
        raise AccelsimError(f"the Lee {'calibration' if calibration else 'evaluation'} documents hold {n} windows "
                            f"of {length} tokens, {count} asked for")
    return np.asarray(ids[: (n if count is None else count) * length], np.int64).reshape(-1, length)
