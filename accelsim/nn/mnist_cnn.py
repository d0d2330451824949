"""Our own small CNNs for MNIST-5k: the real-accuracy workload for PTQ / QAT / mixed-precision experiments.

* ``"cnn"``: conv 3×3 1→16 (pad 1) · ReLU · maxpool 2 · conv 3×3 16→32 · ReLU · maxpool 2 · flatten ·
  FC 1568→10 (20,490 parameters);
* ``"resnet"``: conv 3×3 1→16 · BN · ReLU · maxpool 2 · residual[conv 16→16 · BN · ReLU · conv 16→16 · BN]
  · ReLU · maxpool 2 · flatten · FC 784→10 (12,698 parameters; BN folds into the convs for inference).

Trained with :func:`accelsim.nn.train.train_classifier` on the 4,000-image split of
:func:`accelsim.data.mnist.mnist_split` and evaluated on its 1,000 test images. :func:`trained_mnist_model`
caches the weights as ``mnist_<kind>_<recipe hash>.npz`` (≈ 85 KB) under :func:`accelsim.nn.train.cache_dir`.
"""
from __future__ import annotations

import hashlib
from pathlib import Path
import json
from dataclasses import asdict

import numpy as np

from accelsim.data.mnist import mnist_split
from accelsim.errors import AccelsimError
from accelsim.nn import layers as L
from accelsim.nn.train import TrainConfig, TrainHistory, cache_dir, load_weights, save_weights, train_classifier

__all__ = ["MODEL_KINDS", "small_cnn", "small_resnet", "build_mnist_model", "train_mnist_model",
           "trained_mnist_model", "trained_weights_path", "DEFAULT_CONFIG"]

MODEL_KINDS = ("cnn", "resnet")
DEFAULT_CONFIG = TrainConfig(epochs=8, batch_size=64, lr=3e-3, seed=0)


def small_cnn(seed: int = 0, c1: int = 16, c2: int = 32) -> L.Sequential:
    """The two-conv CNN (see module docstring), He-initialised from ``default_rng(seed)``."""
    rng = np.random.default_rng(seed)
    return L.Sequential(
        L.Conv2d.init(rng, 1, c1, 3, padding=1), L.ReLU(), L.MaxPool2d(2),
        L.Conv2d.init(rng, c1, c2, 3, padding=1), L.ReLU(), L.MaxPool2d(2),
        L.Flatten(), L.Linear.init(rng, c2 * 7 * 7, 10))


def small_resnet(seed: int = 0, c: int = 16) -> L.Sequential:
    """The residual CNN (see module docstring), He-initialised from ``default_rng(seed)``."""
    rng = np.random.default_rng(seed)
    body = L.Sequential(L.Conv2d.init(rng, c, c, 3, padding=1, bias=False), L.BatchNorm2d(c), L.ReLU(),
                        L.Conv2d.init(rng, c, c, 3, padding=1, bias=False), L.BatchNorm2d(c))
    return L.Sequential(
        L.Conv2d.init(rng, 1, c, 3, padding=1, bias=False), L.BatchNorm2d(c), L.ReLU(), L.MaxPool2d(2),
        L.Residual(body), L.ReLU(), L.MaxPool2d(2),
        L.Flatten(), L.Linear.init(rng, c * 7 * 7, 10))


def build_mnist_model(kind: str, seed: int = 0) -> L.Sequential:
    """An untrained ``"cnn"`` or ``"resnet"``."""
    if kind == "cnn":
        return small_cnn(seed)
    if kind == "resnet":
        return small_resnet(seed)
    raise AccelsimError(f"unknown MNIST model kind {kind!r}; choose one of {MODEL_KINDS}")


def train_mnist_model(kind: str = "cnn", config: TrainConfig = DEFAULT_CONFIG, n_train: int | None = None,
                      split_seed: int = 0) -> tuple[L.Sequential, TrainHistory]:
    """Train a fresh model on the first ``n_train`` (default all 4,000) training images of
    ``mnist_split(split_seed)``; the history carries the 1,000-image test accuracy after each epoch."""
    split = mnist_split(split_seed)
    n = len(split.x_train) if n_train is None else n_train
    model = build_mnist_model(kind, config.seed)
    hist = train_classifier(model, split.x_train[:n], split.y_train[:n], config, split.x_test, split.y_test)
    return model, hist


def _cache_path(kind: str, config: TrainConfig):
    recipe = {k: v for k, v in asdict(config).items() if k != "blas_threads"}
    key = hashlib.sha256(json.dumps([kind, recipe], sort_keys=True).encode()).hexdigest()[:12]
    return cache_dir() / f"mnist_{kind}_{key}.npz", recipe


def trained_weights_path(kind: str = "cnn", config: TrainConfig = DEFAULT_CONFIG) -> Path:
    """The cached ``.npz`` of the trained model (trained and cached first if absent)."""
    if kind not in MODEL_KINDS:
        raise AccelsimError(f"unknown MNIST model kind {kind!r}; choose one of {MODEL_KINDS}")
    path, _ = _cache_path(kind, config)
    if not path.is_file():
        trained_mnist_model(kind, config)
    return path


def trained_mnist_model(kind: str = "cnn", config: TrainConfig = DEFAULT_CONFIG, retrain: bool = False
                        ) -> tuple[L.Sequential, dict]:
    """The trained model from the cache (training and caching it first if absent or ``retrain``).

    Returns the model and its meta dict (``kind``, ``config``, ``test_accuracy``, ``train_seconds``)."""
    path, recipe = _cache_path(kind, config)
    model = build_mnist_model(kind, config.seed)
    if path.is_file() and not retrain:
        return model, load_weights(model, path)
    model, hist = train_mnist_model(kind, config)
    meta = {"kind": kind, "config": recipe, "test_accuracy": hist.test_accuracy[-1], "train_seconds": hist.seconds}
    save_weights(model, path, meta)
    return model, meta
