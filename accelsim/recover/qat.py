"""Quantization-aware training and distillation on the one executor (no deep-learning framework).

Each step: a mini-batch through :func:`accelsim.nn.autograd.forward` with :class:`~.fakequant.QATOps` (fake
quant with STE, learnable LSQ scales, BatchNorm folded with frozen statistics), a loss on the graph's output,
:func:`accelsim.nn.autograd.backward`, and Adam on the folded weights and the log-scales. Losses:

* task loss where labels exist: mean cross-entropy ``−(1/N) Σ log softmax(z)[y]``;
* distillation from the FP32 teacher (the same graph in FP32 on the same batch; no labels needed):
  ``T² · KL(softmax(t/T) ‖ softmax(z/T))`` with gradient ``T·(softmax(z/T) − softmax(t/T)) / N`` for logits, or
  ``½‖z − t‖²/N`` for embeddings (``kind="mse"``);
* ``alpha`` mixes them: ``α·task + (1 − α)·distill``.

Learning rate: weights ``lr`` (default 3e-5, ≈ 1/100 of our MNIST training's 3e-3, as the reference checklist
advises), scales ``scale_lr`` (on ``log s``); cosine decay to 0. Seeded (``default_rng(seed + epoch)``
permutations); progress via a callback. The result converts to the bit-exact integer model
(:meth:`QATOps.export` → plan + :class:`~.overrides.Recovered`).
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np

from ..errors import AccelsimError
from ..nn import autograd
from ..nn.train import blas_threads, softmax_cross_entropy
from ..ops.sequence import softmax
from .fakequant import QATOps
from .overrides import Recovered


@dataclass(frozen=True)
class QATConfig:
    epochs: int = 2
    batch_size: int = 64
    lr: float = 3e-5
    scale_lr: float = 1e-3
    seed: int = 0
    distill: str | None = None      # None (task loss), "kl" (logits) or "mse" (embeddings)
    alpha: float = 1.0              # weight of the task loss when labels and distillation are both used
    temperature: float = 2.0
    max_steps: int | None = None


@dataclass
class QATHistory:
    loss: list = field(default_factory=list)
    seconds: float = 0.0
    steps: int = 0


class _Adam:
    """Adam over a dict of dicts of arrays (``params[layer][key]``), in place; ``m̂/(√v̂ + eps)`` steps."""

    def __init__(self, params: dict):
        self.params, self.t = params, 0
        self.m = {n: {k: np.zeros_like(v) for k, v in p.items() if v is not None} for n, p in params.items()}
        self.v = {n: {k: np.zeros_like(v) for k, v in p.items() if v is not None} for n, p in params.items()}

    def step(self, grads: dict, lr_of) -> None:
        self.t += 1
        c1, c2 = 1 - 0.9 ** self.t, 1 - 0.999 ** self.t
        for n, gs in grads.items():
            for k, g in gs.items():
                m, v = self.m[n][k], self.v[n][k]
                m *= 0.9
                m += 0.1 * g
                v *= 0.999
                v += 0.001 * g * g
                self.params[n][k] -= (lr_of(k) / c1 * m / (np.sqrt(v / c2) + 1e-8)).astype(m.dtype)


def distill_loss(z, t, kind: str, temperature: float):
    """``(loss, dL/dz)`` of a student output ``z`` against the teacher's ``t`` (see the module docstring)."""
    n = len(z)
    if kind == "mse":
        d = (z - t).reshape(n, -1)
        return float(0.5 * (d * d).sum() / n), (z - t) / n
    T = float(temperature)
    p_t, p_s = softmax(t / T, -1), softmax(z / T, -1)
    loss = T * T * float((p_t * (np.log(np.maximum(p_t, 1e-30)) - np.log(np.maximum(p_s, 1e-30)))).sum() / n)
    return loss, (T * (p_s - p_t) / n).astype(z.dtype)


def qat(graph, weights: dict, plan, folded: dict, x: np.ndarray, y: np.ndarray | None = None,
        config: QATConfig = QATConfig(), init: Recovered | None = None, progress=None):
    """Fine-tune ``plan`` (its grids are the LSQ initial scales) on images ``x`` (labels ``y`` optional);
    ``folded`` = per-layer ``{"w", "b", ...}`` folded weights (:meth:`Session.folded`), ``init`` recovered weights/grids to start
    from. Returns ``(plan, Recovered, QATHistory)`` for the integer model."""
    if y is None and config.distill is None:
        raise AccelsimError("qat: without labels a distillation loss is needed (distill='kl' or 'mse')")
    init = init or Recovered()
    start_w = {n: init.weights.get(n, (d["w"], d["b"])) for n, d in folded.items()}
    ops = QATOps(plan, start_w, init.grids)
    feed, out_name = next(iter(graph.inputs)), graph.layers[-1].name
    opt, hist = _Adam(ops.params), QATHistory()
    steps_per_epoch = math.ceil(len(x) / config.batch_size)
    total = min(config.epochs * steps_per_epoch, config.max_steps or 10 ** 9)
    t0, say = time.perf_counter(), progress or (lambda msg: None)
    with blas_threads(1):
        for epoch in range(config.epochs):
            order = np.random.default_rng(config.seed + epoch).permutation(len(x))
            for i in range(0, len(x), config.batch_size):
                if hist.steps >= total:
                    break
                idx = order[i:i + config.batch_size]
                loss = _step(graph, weights, ops, feed, out_name, x[idx], None if y is None else y[idx], config)
                lr_scale = 0.5 * (1 + math.cos(math.pi * hist.steps / total))
                opt.step(ops.grads, lambda k: (config.scale_lr if k.startswith("t") else config.lr) * lr_scale)
                hist.loss.append(loss)
                hist.steps += 1
                if hist.steps % 10 == 0:
                    say(f"QAT step {hist.steps}/{total} loss {np.mean(hist.loss[-10:]):.4f}")
    hist.seconds = time.perf_counter() - t0
    new_plan, over = ops.export()
    rec = Recovered({n: (w, b) for n, (w, b, _) in over.items()}, {n: p for n, (_, _, p) in over.items()},
                    notes={"qat": f"{hist.steps} steps, lr {config.lr:g}, distill {config.distill}"})
    return new_plan, rec, hist


def _step(graph, weights, ops, feed, out_name, xb, yb, config: QATConfig) -> float:
    ops.zero_grad()
    out, tape = autograd.forward(graph, weights, {feed: xb}, ops)
    z = out[out_name]
    loss, dz = 0.0, np.zeros_like(z)
    if yb is not None:
        task_loss, g = softmax_cross_entropy(z, yb)
        a = config.alpha if config.distill else 1.0
        loss, dz = a * task_loss, a * g.astype(z.dtype)
    if config.distill:
        t = autograd.forward(graph, weights, {feed: xb})[0][out_name]   # FP32 teacher on the same batch
        d_loss, g = distill_loss(z, t, config.distill, config.temperature)
        a = (1 - config.alpha) if yb is not None else 1.0
        loss, dz = loss + a * d_loss, dz + a * g
    autograd.backward(graph, weights, tape, {out_name: dz.astype(z.dtype)}, ops)
    return loss
