"""Seeded mini-batch training of :mod:`accelsim.nn.layers` models (Adam + softmax cross-entropy), and weights I/O.

One epoch visits the training set in a ``default_rng(seed + epoch)`` permutation, in batches of
``batch_size`` (optionally shifted by up to ``shift`` pixels, :func:`random_shift`). Adam (Kingma & Ba 2015): ``m ← β₁m + (1−β₁)g``, ``v ← β₂v + (1−β₂)g²``,
``θ ← θ − lr_t · m̂ / (√v̂ + eps)`` with bias-corrected ``m̂ = m/(1−β₁ᵗ)``, ``v̂ = v/(1−β₂ᵗ)``; decoupled weight
decay ``θ ← θ − lr_t·wd·θ`` (AdamW) when ``weight_decay > 0``; the learning rate follows a cosine schedule
``lr_t = lr · ½(1 + cos(π·step/total_steps))``. Everything is float32 and deterministic for a given seed
(BLAS summation order aside).

Trained weights are saved as ``.npz`` (the model's ``state_dict`` plus ``__meta__`` JSON) under
:func:`cache_dir` — ``$ACCELSIM_CACHE`` or ``~/.cache/accelsim`` — never in the repository.
"""
from __future__ import annotations

import contextlib
import ctypes
import json
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from accelsim.errors import AccelsimError
from accelsim.nn.layers import Layer, SoftmaxCrossEntropy

__all__ = ["TrainConfig", "TrainHistory", "Adam", "predict", "accuracy", "train_classifier", "random_shift", "blas_threads", "cache_dir",
           "save_weights", "load_weights"]


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 8
    batch_size: int = 64
    lr: float = 3e-3
    weight_decay: float = 0.0
    seed: int = 0
    shift: int = 0  # augmentation: random translation by up to ±shift pixels (zero fill), 0 = off
    blas_threads: int | None = 1  # BLAS threads while training (None = leave as is), see blas_threads()


@dataclass
class TrainHistory:
    """Per-epoch mean training loss, test accuracy (if a test set was given), and wall time."""
    loss: list[float] = field(default_factory=list)
    test_accuracy: list[float] = field(default_factory=list)
    seconds: float = 0.0


class Adam:
    """Adam / AdamW over ``model.parameters()`` (``(layer, name)`` pairs, updated in place)."""

    def __init__(self, parameters, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
        self.parameters = list(parameters)
        self.lr, self.betas, self.eps, self.weight_decay = lr, betas, eps, weight_decay
        self.t = 0
        self.m = [np.zeros_like(layer.params[k]) for layer, k in self.parameters]
        self.v = [np.zeros_like(layer.params[k]) for layer, k in self.parameters]

    def step(self, lr: float | None = None) -> None:
        lr = self.lr if lr is None else lr
        b1, b2 = self.betas
        self.t += 1
        c1, c2 = 1 - b1 ** self.t, 1 - b2 ** self.t
        for (layer, k), m, v in zip(self.parameters, self.m, self.v):
            g = layer.grads[k]
            m *= b1
            m += (1 - b1) * g
            v *= b2
            v += (1 - b2) * g * g
            p = layer.params[k]
            if self.weight_decay:
                p -= (lr * self.weight_decay) * p
            p -= (lr / c1) * m / (np.sqrt(v / c2) + self.eps)


_OPENBLAS_API = (("openblas_set_num_threads", "openblas_get_num_threads"),
                 ("scipy_openblas_set_num_threads64_", "scipy_openblas_get_num_threads64_"),
                 ("openblas_set_num_threads64_", "openblas_get_num_threads64_"))


def _openblas_handles():
    """(set, get) function pairs of every OpenBLAS loaded in this process (Linux /proc/self/maps)."""
    try:
        with open("/proc/self/maps") as fh:
            paths = {line.split()[-1] for line in fh if "openblas" in line.lower() and "/" in line}
    except OSError:
        return []
    found = []
    for path in sorted(paths):
        lib = ctypes.CDLL(path)
        found += [(getattr(lib, s), getattr(lib, g)) for s, g in _OPENBLAS_API if hasattr(lib, s) and hasattr(lib, g)]
    return found


@contextlib.contextmanager
def blas_threads(n: int | None):
    """Limit BLAS to ``n`` threads inside the block (``None``: no change).

    The small GEMMs of CNN training (a few hundred kFLOP each) run faster on one thread, and with other
    processes on the cores a multi-threaded OpenBLAS can be several times slower (measured 10 s vs 46 s).
    Uses ``threadpoolctl`` when installed, else OpenBLAS's own setter via ctypes; a no-op if neither exists.
    """
    if n is None:
        yield
        return
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        handles = _openblas_handles()
        before = [get() for _, get in handles]
        for set_, _ in handles:
            set_(int(n))
        try:
            yield
        finally:
            for (set_, _), old in zip(handles, before):
                set_(old)
        return
    with threadpool_limits(limits=n, user_api="blas"):
        yield


def random_shift(x: np.ndarray, shift: int, rng: np.random.Generator) -> np.ndarray:
    """Translate each image [N, C, H, W] by its own ``(dy, dx)`` drawn uniformly from ``[−shift, shift]²``,
    filling with zeros."""
    if shift <= 0:
        return x
    n, _, h, w = x.shape
    padded = np.pad(x, ((0, 0), (0, 0), (shift, shift), (shift, shift)))
    offs = rng.integers(0, 2 * shift + 1, size=(n, 2))
    out = np.empty_like(x)
    for i, (oy, ox) in enumerate(offs):
        out[i] = padded[i, :, oy:oy + h, ox:ox + w]
    return out


def predict(model: Layer, x: np.ndarray, batch_size: int = 500) -> np.ndarray:
    """Inference-mode logits, ``batch_size`` rows at a time."""
    return np.concatenate([model.forward(x[i:i + batch_size]) for i in range(0, len(x), batch_size)])


def accuracy(model: Layer, x: np.ndarray, y: np.ndarray) -> float:
    """Top-1 accuracy of ``argmax(predict(model, x))`` against ``y``."""
    return float((predict(model, x).argmax(axis=1) == y).mean())


def train_classifier(model: Layer, x: np.ndarray, y: np.ndarray, config: TrainConfig = TrainConfig(),
                     x_test: np.ndarray | None = None, y_test: np.ndarray | None = None) -> TrainHistory:
    """Train ``model`` in place on (x, y) with Adam + cosine LR; returns the :class:`TrainHistory`."""
    if len(x) != len(y) or len(x) == 0:
        raise AccelsimError(f"train_classifier: {len(x)} images vs {len(y)} labels")
    if config.epochs < 1 or config.batch_size < 1:
        raise AccelsimError(f"train_classifier: epochs and batch_size must be >= 1, got {config}")
    with blas_threads(config.blas_threads):
        return _train_loop(model, x, y, config, x_test, y_test)


def _train_loop(model, x, y, config, x_test, y_test) -> TrainHistory:
    opt = Adam(model.parameters(), config.lr, weight_decay=config.weight_decay)
    loss_fn, hist = SoftmaxCrossEntropy(), TrainHistory()
    steps_per_epoch = math.ceil(len(x) / config.batch_size)
    total, step, start = config.epochs * steps_per_epoch, 0, time.perf_counter()
    for epoch in range(config.epochs):
        rng = np.random.default_rng(config.seed + epoch)
        order = rng.permutation(len(x))
        losses = []
        for i in range(0, len(x), config.batch_size):
            idx = order[i:i + config.batch_size]
            xb = random_shift(x[idx], config.shift, rng)
            losses.append(loss_fn.forward(model.forward(xb, train=True), y[idx]))
            model.backward(loss_fn.backward().astype(x.dtype, copy=False))
            opt.step(config.lr * 0.5 * (1 + math.cos(math.pi * step / total)))
            step += 1
        hist.loss.append(float(np.mean(losses)))
        if x_test is not None:
            hist.test_accuracy.append(accuracy(model, x_test, y_test))
    hist.seconds = time.perf_counter() - start
    return hist


def cache_dir() -> Path:
    """``$ACCELSIM_CACHE`` if set, else ``~/.cache/accelsim`` (created on demand by :func:`save_weights`)."""
    env = os.environ.get("ACCELSIM_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "accelsim"


def save_weights(model: Layer, path: str | os.PathLike, meta: dict | None = None) -> Path:
    """Write ``model.state_dict()`` (+ ``meta`` as JSON under ``__meta__``) to an ``.npz`` file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays = dict(model.state_dict())
    arrays["__meta__"] = np.array(json.dumps(meta or {}))
    tmp = path.with_name(path.name + ".tmp.npz")
    np.savez(tmp, **arrays)
    os.replace(tmp, path)
    return path


def load_weights(model: Layer, path: str | os.PathLike) -> dict:
    """Load an ``.npz`` written by :func:`save_weights` into ``model`` (shapes checked); returns the meta dict."""
    path = Path(path)
    if not path.is_file():
        raise AccelsimError(f"{path}: no such weights file")
    try:
        with np.load(path, allow_pickle=False) as data:
            state = {k: data[k] for k in data.files}
    except (OSError, ValueError) as exc:
        raise AccelsimError(f"{path}: not a weights .npz ({exc})") from exc
    meta = json.loads(str(state.pop("__meta__", "{}")))
    model.load_state_dict(state)
    return meta
