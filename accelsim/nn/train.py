"""Seeded mini-batch training of a model graph on the one executor (Adam + softmax cross-entropy), and weights I/O.

A model is its graph (:class:`~accelsim.graph.Model`) and a weights dict ``{tensor name: array}`` under the
graph's binding names. Each step runs :func:`accelsim.nn.autograd.forward` in training mode
(:class:`~accelsim.nn.autograd.GradOps` with a :class:`~accelsim.nn.graph_exec.TrainMode`: nothing folded,
BatchNorm on batch statistics with torch's running-statistics update), the loss on the last layer's output,
:func:`accelsim.nn.autograd.backward` (the op registry's gradient rules) and Adam on every tensor except the
running statistics — the same executor QAT trains on (:mod:`accelsim.recover.qat`).

:func:`init_weights` draws a fresh model from ``default_rng(seed)`` in layer order: conv/linear weights He-normal
``N(0, 2/fan_in)`` (fan_in = the weight's elements per output channel), biases and β zero, γ and running
variances one, running means zero. One epoch visits the training set in a ``default_rng(seed + epoch)``
permutation, in batches of ``batch_size`` (optionally shifted by up to ``shift`` pixels, :func:`random_shift`).
Adam (Kingma & Ba 2015): ``m ← β₁m + (1−β₁)g``, ``v ← β₂v + (1−β₂)g²``, ``θ ← θ − lr_t · m̂ / (√v̂ + eps)`` with
bias-corrected ``m̂ = m/(1−β₁ᵗ)``, ``v̂ = v/(1−β₂ᵗ)``; decoupled weight decay ``θ ← θ − lr_t·wd·θ`` (AdamW) when
``weight_decay > 0``; the learning rate follows a cosine schedule ``lr_t = lr · ½(1 + cos(π·step/total_steps))``.
Everything is float32 and deterministic for a given seed (BLAS summation order aside).

Trained weights are saved as ``.npz`` (the weights dict plus ``__meta__`` JSON) under :func:`cache_dir` —
``$ACCELSIM_CACHE`` or ``~/.cache/accelsim`` — never in the repository.
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

from ..data.weights import check_weights, expected_shapes
from ..errors import AccelsimError
from ..graph import Model
from . import autograd
from .graph_exec import TrainMode, run_graph

__all__ = ["TrainConfig", "TrainHistory", "Adam", "init_weights", "softmax_cross_entropy", "predict", "accuracy",
           "train_classifier", "random_shift", "blas_threads", "cache_dir", "save_weights", "load_weights"]

BUFFERS = ("running_mean", "running_var")   # tensors a training step updates by statistics, not by gradient


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 8
    batch_size: int = 64
    lr: float = 3e-3
    weight_decay: float = 0.0
    seed: int = 0
    shift: int = 0  # augmentation: random translation by up to ±shift pixels (zero fill), 0 = off
    blas_threads: int | None = 1  # BLAS threads while training (None = leave as is), see blas_threads()
    bn_momentum: float = 0.1      # BatchNorm running statistics: r ← (1 − m)·r + m·batch (torch's default)


@dataclass
class TrainHistory:
    """Per-epoch mean training loss, test accuracy (if a test set was given), and wall time."""
    loss: list[float] = field(default_factory=list)
    test_accuracy: list[float] = field(default_factory=list)
    seconds: float = 0.0


class Adam:
    """Adam / AdamW over ``params`` (``{name: array}``, updated in place) from gradients ``{name: array}``."""

    def __init__(self, params: dict, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
        self.params = params
        self.lr, self.betas, self.eps, self.weight_decay = lr, betas, eps, weight_decay
        self.t = 0
        self.m = {k: np.zeros_like(p) for k, p in params.items()}
        self.v = {k: np.zeros_like(p) for k, p in params.items()}

    def step(self, grads: dict, lr: float | None = None) -> None:
        lr = self.lr if lr is None else lr
        b1, b2 = self.betas
        self.t += 1
        c1, c2 = 1 - b1 ** self.t, 1 - b2 ** self.t
        for k, p in self.params.items():
            g, m, v = grads[k], self.m[k], self.v[k]
            m *= b1
            m += (1 - b1) * g
            v *= b2
            v += (1 - b2) * g * g
            if self.weight_decay:
                p -= (lr * self.weight_decay) * p
            p -= (lr / c1) * m / (np.sqrt(v / c2) + self.eps)


def _he_normal(rng, shape, dtype):
    return (rng.standard_normal(shape) * np.sqrt(2.0 / math.prod(shape[1:]))).astype(dtype)


_INIT = {   # op → {suffix: (rng, shape, dtype) → array}
    "conv2d": {"weight": _he_normal, "bias": lambda rng, s, dt: np.zeros(s, dt)},
    "linear": {"weight": _he_normal, "bias": lambda rng, s, dt: np.zeros(s, dt)},
    "batchnorm": {"weight": lambda rng, s, dt: np.ones(s, dt), "bias": lambda rng, s, dt: np.zeros(s, dt),
                  "running_mean": lambda rng, s, dt: np.zeros(s, dt), "running_var": lambda rng, s, dt: np.ones(s, dt)},
}


def init_weights(model: Model, seed: int = 0, dtype=np.float32) -> dict[str, np.ndarray]:
    """Fresh weights for every bound layer of ``model`` (module docstring), drawn in layer order."""
    rng, out = np.random.default_rng(seed), {}
    for layer in model.layers:
        if layer.weight is None:
            continue
        if layer.op not in _INIT:
            raise AccelsimError(f"init_weights: no initializer for {layer.op} (layer {layer.name}); "
                                f"initializers exist for {', '.join(_INIT)}")
        for suffix, shape in expected_shapes(layer).items():
            out[f"{layer.weight}.{suffix}"] = _INIT[layer.op][suffix](rng, shape, dtype)
    return out


def softmax_cross_entropy(logits, labels):
    """Mean cross-entropy ``L = −(1/N) Σ_n log softmax(z_n)[y_n]`` and ``dL/dz = (softmax(z) − onehot(y)) / N``."""
    n, k = logits.shape
    labels = np.asarray(labels)
    if labels.shape != (n,) or labels.min(initial=0) < 0 or labels.max(initial=0) >= k:
        raise AccelsimError(f"softmax_cross_entropy: labels must be [N={n}] ints in 0..{k - 1}, got {labels.shape}")
    z = logits - logits.max(axis=1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    loss = -logp[np.arange(n), labels].mean()
    grad = np.exp(logp)
    grad[np.arange(n), labels] -= 1
    return float(loss), grad / n


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
    Uses ``threadpoolctl`` when installed (one controller, made at the first call: scanning the loaded libraries
    takes ≈ 1.5 ms, once per decode step otherwise), else OpenBLAS's own setter via ctypes; a no-op if neither
    exists.
    """
    if n is None:
        yield
        return
    try:
        from threadpoolctl import ThreadpoolController
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
    if not _CONTROLLER:
        _CONTROLLER.append(ThreadpoolController())
    with _CONTROLLER[0].limit(limits=n, user_api="blas"):
        yield


_CONTROLLER: list = []   # the ThreadpoolController of blas_threads (made once; the BLAS loads with numpy)


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


def predict(model: Model, weights: dict, x: np.ndarray, batch_size: int = 500) -> np.ndarray:
    """Inference-mode outputs of the last layer (BatchNorm folded, running statistics), ``batch_size`` rows at a
    time."""
    feed, out = next(iter(model.inputs)), model.layers[-1].name
    return np.concatenate([run_graph(model, weights, {feed: x[i:i + batch_size]})[out]
                           for i in range(0, len(x), batch_size)])


def accuracy(model: Model, weights: dict, x: np.ndarray, y: np.ndarray) -> float:
    """Top-1 accuracy of ``argmax(predict(model, weights, x))`` against ``y``."""
    return float((predict(model, weights, x).argmax(axis=1) == y).mean())


def train_classifier(model: Model, weights: dict, x: np.ndarray, y: np.ndarray, config: TrainConfig = TrainConfig(),
                     x_test: np.ndarray | None = None, y_test: np.ndarray | None = None) -> TrainHistory:
    """Train ``weights`` of ``model`` in place on (x, y) (inputs of the graph's first input, labels of its last
    layer's logits) with Adam + cosine LR; returns the :class:`TrainHistory`."""
    if len(x) != len(y) or len(x) == 0:
        raise AccelsimError(f"train_classifier: {len(x)} images vs {len(y)} labels")
    if config.epochs < 1 or config.batch_size < 1:
        raise AccelsimError(f"train_classifier: epochs and batch_size must be >= 1, got {config}")
    check_weights(model, weights)
    with blas_threads(config.blas_threads):
        return _train_loop(model, weights, x, y, config, x_test, y_test)


def _train_loop(model, weights, x, y, config, x_test, y_test) -> TrainHistory:
    feed, out = next(iter(model.inputs)), model.layers[-1].name
    opt = Adam({k: v for k, v in weights.items() if not k.endswith(BUFFERS)}, config.lr,
               weight_decay=config.weight_decay)
    ops, hist = autograd.GradOps(train=TrainMode(config.bn_momentum)), TrainHistory()
    steps_per_epoch = math.ceil(len(x) / config.batch_size)
    total, step, start = config.epochs * steps_per_epoch, 0, time.perf_counter()
    for epoch in range(config.epochs):
        rng = np.random.default_rng(config.seed + epoch)
        order = rng.permutation(len(x))
        losses = []
        for i in range(0, len(x), config.batch_size):
            idx = order[i:i + config.batch_size]
            xb = random_shift(x[idx], config.shift, rng)
            outs, tape = autograd.forward(model, weights, {feed: xb}, ops)
            loss, dz = softmax_cross_entropy(outs[out], y[idx])
            grads, _ = autograd.backward(model, weights, tape, {out: dz.astype(x.dtype, copy=False)}, ops)
            opt.step(grads, config.lr * 0.5 * (1 + math.cos(math.pi * step / total)))
            losses.append(loss)
            step += 1
        hist.loss.append(float(np.mean(losses)))
        if x_test is not None:
            hist.test_accuracy.append(accuracy(model, weights, x_test, y_test))
    hist.seconds = time.perf_counter() - start
    return hist


def cache_dir() -> Path:
    """``$ACCELSIM_CACHE`` if set, else ``~/.cache/accelsim`` (created on demand by :func:`save_weights`)."""
    env = os.environ.get("ACCELSIM_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "accelsim"


def save_weights(weights: dict, path: str | os.PathLike, meta: dict | None = None) -> Path:
    """Write ``weights`` (+ ``meta`` as JSON under ``__meta__``) to an ``.npz`` file (atomically)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays = dict(weights)
    arrays["__meta__"] = np.array(json.dumps(meta or {}))
    tmp = path.with_name(path.name + ".tmp.npz")
    np.savez(tmp, **arrays)
    os.replace(tmp, path)
    return path


def load_weights(path: str | os.PathLike, model: Model | None = None) -> tuple[dict, dict]:
    """``(weights, meta)`` from an ``.npz`` written by :func:`save_weights`; with ``model`` every bound tensor is
    checked against the graph (ConfigError naming each missing or misshapen one)."""
    path = Path(path)
    if not path.is_file():
        raise AccelsimError(f"{path}: no such weights file")
    try:
        with np.load(path, allow_pickle=False) as data:
            state = {k: data[k] for k in data.files}
    except (OSError, ValueError) as exc:
        raise AccelsimError(f"{path}: not a weights .npz ({exc})") from exc
    meta = json.loads(str(state.pop("__meta__", "{}")))
    if model is not None:
        check_weights(model, state)
    return state, meta
