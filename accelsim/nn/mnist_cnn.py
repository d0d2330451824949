"""Our own small CNNs for MNIST-5k: the real-accuracy workload for PTQ / QAT / mixed-precision experiments.

Both are model graphs, trained on the one executor (:func:`accelsim.nn.train.train_classifier`: ``run_graph`` +
the registry's gradient rules):

* ``"cnn"``: the bundled ``models/mnist_cnn.yaml`` — conv 3×3 1→16 (pad 1) · ReLU · maxpool 2 · conv 3×3 16→32 ·
  ReLU · maxpool 2 · flatten · FC 1568→10 (20,490 parameters);
* ``"resnet"``: :data:`RESNET` — conv 3×3 1→16 · BN · ReLU · maxpool 2 · residual[conv 16→16 · BN · ReLU ·
  conv 16→16 · BN] · ReLU · maxpool 2 · flatten · FC 784→10 (12,698 parameters; trained with batch
  statistics, BN folded into the convs for inference).

Trained on the 4,000-image split of :func:`accelsim.data.mnist.mnist_split` and evaluated on its 1,000 test
images. :func:`trained_mnist_model` caches the weights as ``mnist_<kind>_<recipe hash>.npz`` (≈ 85 KB) under
:func:`accelsim.nn.train.cache_dir`; a model YAML names them with ``weights: {format: npz, trained: <kind>}``.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import asdict
from pathlib import Path

import numpy as np

from ..data.mnist import mnist_split
from ..errors import AccelsimError
from ..graph import Model
from .train import TrainConfig, TrainHistory, cache_dir, init_weights, load_weights, save_weights, train_classifier

__all__ = ["MODEL_KINDS", "RESNET", "DEFAULT_CONFIG", "mnist_graph", "train_mnist_model", "trained_mnist_model",
           "trained_weights_path"]

MODEL_KINDS = ("cnn", "resnet")
DEFAULT_CONFIG = TrainConfig(epochs=8, batch_size=64, lr=3e-3, seed=0)
_CACHE_FORMAT = 2   # 2: graph weight names (the weights of a run_graph model)


def _conv(name: str, cout: int, **extra) -> dict:
    return {"name": name, "op": "conv2d", "out_channels": cout, "kernel": 3, "padding": 1, "bias": False,
            "weight": name, **extra}


RESNET = {
    "name": "mnist_resnet", "weights": {"format": "npz", "trained": "resnet"}, "dataset": "mnist",
    "inputs": [{"name": "digit", "shape": [1, 28, 28]}],
    "layers": [
        _conv("stem", 16), {"name": "stem.bn", "op": "batchnorm", "weight": "stem.bn"},
        {"name": "stem.relu", "op": "relu"}, {"name": "pool1", "op": "maxpool", "kernel": 2},
        _conv("body.0", 16), {"name": "body.1", "op": "batchnorm", "weight": "body.1"},
        {"name": "body.2", "op": "relu"},
        _conv("body.3", 16), {"name": "body.4", "op": "batchnorm", "weight": "body.4"},
        {"name": "res", "op": "add", "inputs": ["body.4", "pool1"]}, {"name": "res.relu", "op": "relu"},
        {"name": "pool2", "op": "maxpool", "kernel": 2}, {"name": "flat", "op": "flatten"},
        {"name": "fc", "op": "linear", "out_features": 10, "weight": "fc"}],
}
"""The residual CNN's graph (module docstring)."""


def mnist_graph(kind: str) -> Model:
    """The graph of a ``"cnn"`` (the bundled ``mnist_cnn`` model) or a ``"resnet"`` (:data:`RESNET`)."""
    if kind == "cnn":
        from ..config.loader import load_model
        return load_model("mnist_cnn")
    if kind == "resnet":
        return Model.from_dict(RESNET)
    raise AccelsimError(f"unknown MNIST model kind {kind!r}; choose one of {MODEL_KINDS}")


def train_mnist_model(kind: str = "cnn", config: TrainConfig = DEFAULT_CONFIG, n_train: int | None = None,
                      split_seed: int = 0) -> tuple[dict, TrainHistory]:
    """Train a fresh model (weights from ``init_weights(graph, config.seed)``) on the first ``n_train`` (default
    all 4,000) training images of ``mnist_split(split_seed)``; returns its weights and the history, which carries
    the 1,000-image test accuracy after each epoch."""
    graph, split = mnist_graph(kind), mnist_split(split_seed)
    n = len(split.x_train) if n_train is None else n_train
    weights = init_weights(graph, config.seed)
    hist = train_classifier(graph, weights, split.x_train[:n], split.y_train[:n], config, split.x_test, split.y_test)
    return weights, hist


def _cache_path(kind: str, config: TrainConfig):
    recipe = {k: v for k, v in asdict(config).items() if k != "blas_threads"}
    key = hashlib.sha256(json.dumps([kind, recipe, _CACHE_FORMAT], sort_keys=True).encode()).hexdigest()[:12]
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
                        ) -> tuple[dict[str, np.ndarray], dict]:
    """The trained weights from the cache (training and caching them first if absent or ``retrain``), and their
    meta dict (``kind``, ``config``, ``test_accuracy``, ``train_seconds``)."""
    path, recipe = _cache_path(kind, config)
    if path.is_file() and not retrain:
        return load_weights(path, mnist_graph(kind))
    weights, hist = train_mnist_model(kind, config)
    meta = {"kind": kind, "config": recipe, "test_accuracy": hist.test_accuracy[-1], "train_seconds": hist.seconds}
    save_weights(weights, path, meta)
    return weights, meta
