"""The Lee et al. (2005) news corpus with human document-similarity ratings, as shipped in the ``gensim`` wheel.

Files (under ``gensim/test/test_data/``; install with ``pip install --no-deps gensim==4.4.0`` — gensim itself
is never imported):

* ``lee.cor``: 50 short news documents, one per line, Latin-1 encoded (one ``£`` byte 0xA3);
* ``similarities0-1.txt``: a 50×50 tab-separated matrix; its strict upper triangle holds the 1,225 averaged
  human similarity ratings in ``[0, 1]`` for document pairs ``(i, j), i < j`` (diagonal 1, lower part 0);
* ``lee_background.cor``: 300 longer documents of the same kind (a calibration set; no ratings).

:func:`evaluate_embeddings` scores document embeddings against the ratings (see its docstring).
"""
from __future__ import annotations

import numpy as np

from accelsim.data import metrics
from accelsim.data.packages import find_package_file
from accelsim.errors import AccelsimError

__all__ = [
    "LEE_PIP",
    "N_LEE_DOCS",
    "evaluate_embeddings",
    "load_lee_background",
    "load_lee_documents",
    "load_lee_pairs",
    "load_lee_similarity_matrix",
]

LEE_MODULE = "gensim"
LEE_PIP = "gensim==4.4.0"
N_LEE_DOCS = 50
N_LEE_BACKGROUND = 300
_DATA = "test/test_data/"


def _read_lines(name: str, expected: int) -> list[str]:
    path = find_package_file(LEE_MODULE, _DATA + name, LEE_PIP)
    try:
        text = path.read_bytes().decode("latin-1")
    except OSError as exc:
        raise AccelsimError(f"{path}: cannot read ({exc.strerror or exc})") from exc
    lines = text.split("\n")  # not splitlines(): Latin-1 0x85 would count as a line break there
    if lines and lines[-1].strip() == "":
        lines.pop()
    lines = [line.rstrip("\r") for line in lines]
    if len(lines) != expected:
        raise AccelsimError(f"{path}: expected {expected} documents (one per line), found {len(lines)}")
    return lines


def load_lee_documents() -> list[str]:
    """The 50 Lee documents, in file order (document i is row/column i of the similarity matrix)."""
    return _read_lines("lee.cor", N_LEE_DOCS)


def load_lee_background() -> list[str]:
    """The 300 Lee background documents (unrated; used as a calibration set)."""
    return _read_lines("lee_background.cor", N_LEE_BACKGROUND)


def load_lee_similarity_matrix() -> np.ndarray:
    """Symmetric ``float64 [50, 50]`` human similarity matrix (upper triangle mirrored, diagonal 1)."""
    path = find_package_file(LEE_MODULE, _DATA + "similarities0-1.txt", LEE_PIP)
    try:
        m = np.loadtxt(path, delimiter="\t", dtype=np.float64)
    except (OSError, ValueError) as exc:
        raise AccelsimError(f"{path}: cannot parse the similarity matrix ({exc})") from exc
    if m.shape != (N_LEE_DOCS, N_LEE_DOCS):
        raise AccelsimError(f"{path}: expected a {N_LEE_DOCS}x{N_LEE_DOCS} matrix, got {m.shape}")
    upper = np.triu(m, 1)
    return upper + upper.T + np.eye(N_LEE_DOCS)


def load_lee_pairs() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The 1,225 rated pairs as ``(i, j, rating)`` with ``i < j`` (row-major order of the upper triangle)."""
    i, j = np.triu_indices(N_LEE_DOCS, 1)
    return i, j, load_lee_similarity_matrix()[i, j]


def _cosine_matrix(emb: np.ndarray, name: str) -> np.ndarray:
    emb = np.asarray(emb, dtype=np.float64)
    if emb.ndim != 2 or emb.shape[0] != N_LEE_DOCS:
        raise AccelsimError(f"{name}: expected [{N_LEE_DOCS}, dim] Lee document embeddings, got {emb.shape}")
    norms = np.linalg.norm(emb, axis=1, keepdims=True)
    if not np.all(norms > 0) or not np.isfinite(emb).all():
        raise AccelsimError(f"{name}: embeddings must be finite and non-zero")
    unit = emb / norms
    return unit @ unit.T


def _off_diagonal(m: np.ndarray) -> np.ndarray:
    """``[n, n] → [n, n−1]``: each query row without itself."""
    n = m.shape[0]
    return m[~np.eye(n, dtype=bool)].reshape(n, n - 1)


def evaluate_embeddings(emb_docs, reference=None, k: int = 10) -> dict[str, float]:
    """Score ``emb_docs [50, dim]`` (one embedding per Lee document) against the human ratings.

    Model similarity is the cosine of two document embeddings. Returns:

    * ``spearman``, ``pearson``: correlation of model vs human similarity over the 1,225 pairs ``i < j``;
    * ``ndcg@k``: each document in turn is a query, the other 49 are ranked by model cosine, and the
      relevance (linear gain) of a candidate is its human similarity to the query; mean over the 50 queries
      (see :func:`accelsim.data.metrics.ndcg_at_k`);
    * ``top{k}_overlap`` (only if ``reference [50, dim]`` is given, e.g. the FP32 embeddings): mean over
      queries of the fraction of the model's top-k candidates that are also in the reference's top-k.
    """
    sim = _cosine_matrix(emb_docs, "evaluate_embeddings emb_docs")
    human = load_lee_similarity_matrix()
    i, j = np.triu_indices(N_LEE_DOCS, 1)
    out = {
        "spearman": metrics.spearman(sim[i, j], human[i, j]),
        "pearson": metrics.pearson(sim[i, j], human[i, j]),
        f"ndcg@{k}": metrics.ndcg_at_k(_off_diagonal(sim), _off_diagonal(human), k),
    }
    if reference is not None:
        ref = _cosine_matrix(reference, "evaluate_embeddings reference")
        out[f"top{k}_overlap"] = metrics.topk_overlap(_off_diagonal(sim), _off_diagonal(ref), k)
    return out
