"""AdaRound (Nagel et al. 2020): learned up/down rounding of weights, layer by layer, on calibration data only.

Per conv/linear layer with weight grid ``s`` (per output channel) the rounded weights are
``W̃ = s·clip(⌊W/s⌋ + h(V), qmin, qmax)``, ``h(V) = clip(σ(V)(ζ − γ) + γ, 0, 1)``, ζ = 1.1, γ = −0.1, and ``V``
minimizes

    ``L(V) = (1/N)·tr(ΔW·G·ΔWᵀ) + λ·Σ (1 − |2h(V) − 1|^β)``,  ``ΔW = W̃ − W``,  ``G = X·Xᵀ / M``,

i.e. the mean squared change of the layer's output over the ``M`` input columns ``X`` the layer sees on the
calibration set (im2col columns for a conv of 1–3 spatial dims; per channel ``G_c`` for a 2-D depthwise conv),
computed exactly through
the Gram matrix. λ = 0.01; β anneals linearly from 20 to 2 after a 20 % warm-up without the regularizer; Adam
(lr 1e-2) for ``iters`` steps; finally ``h`` is rounded (``V ≥ 0`` → up). Layers are visited in execution
order on ONE forward pass of the calibration set whose earlier layers already use their rounded weights, so each
layer's ``X`` includes the upstream weight-rounding error. Grouped (non-depthwise) convs, depthwise convs that are
not 2-D, transposed convs, and linear layers that see fewer input rows than they have inputs (an underdetermined
``G``, e.g. a classifier on 24 pooled images), keep round-to-nearest on their grid.
"""
from __future__ import annotations

import numpy as np

from ..ops import functional as F
from ..ops.gemm import ACTIVATIONS, KINDS
from ..nn.qexec import FloatOps, QuantScheme
from ..quant import QParams
from .overrides import Recovered
from .ptq import mse_clip_grid

ZETA, GAMMA = 1.1, -0.1


def _gram(kind: str, x, w, geo) -> np.ndarray:
    """``G = X Xᵀ / M``: [K, K] (dense conv of 1–3 spatial dims via im2col, linear) or [C, T, T] (2-D depthwise,
    T = kh·kw)."""
    if kind == "linear":
        x2 = x.reshape(-1, x.shape[-1]).astype(np.float64)
        return x2.T @ x2 / len(x2)
    if geo["group"] > 1:   # 2-D depthwise: one T×T Gram per channel from the strided windows
        kh, kw = w.shape[2:]
        pads, st, dl = geo["pads"], geo["strides"], geo["dilations"]
        ho, wo = F.conv_output_size(x.shape[2], x.shape[3], kh, kw, st, pads, dl)
        xp = F.pad(x, pads)
        wins = [F.window(xp, r, s, ho, wo, st, dl) for r in range(kh) for s in range(kw)]
        t = len(wins)
        g = np.empty((x.shape[1], t, t))
        for i in range(t):
            for j in range(i, t):
                g[:, i, j] = g[:, j, i] = np.einsum("nchw,nchw->c", wins[i], wins[j], dtype=np.float64)
        return g / (x.shape[0] * ho * wo)
    cols, _ = F.im2col_nd(x, w.shape[2:], geo["strides"], geo["pads"], geo["dilations"])
    c64 = cols.astype(np.float64)
    return c64 @ c64.T / cols.shape[1]


def adaround_weights(w: np.ndarray, grid: QParams, gram: np.ndarray, iters: int = 400, lam: float = 0.01,
                     lr: float = 1e-2, seed: int = 0) -> np.ndarray:
    """The AdaRounded weights ``W̃`` (float32, on ``grid``) of ``w`` for Gram matrix ``gram`` (module docstring)."""
    depthwise = gram.ndim == 3
    w2 = w.reshape(w.shape[0], -1).astype(np.float64)
    s = np.asarray(grid.scale, np.float64).reshape(-1, 1)
    qmin, qmax = grid.spec.qmin, grid.spec.qmax
    base = np.floor(w2 / s)
    rest = np.clip(w2 / s - base, 1e-4, 1 - 1e-4)
    v = -np.log((ZETA - GAMMA) / (rest - GAMMA) - 1)
    m, u = np.zeros_like(v), np.zeros_like(v)
    n_out = w2.shape[0]
    warm = int(0.2 * iters)
    for it in range(iters):
        sig = 1 / (1 + np.exp(-v))
        h_raw = sig * (ZETA - GAMMA) + GAMMA
        h = np.clip(h_raw, 0, 1)
        q = base + h
        inside = (q >= qmin) & (q <= qmax)
        dw = s * np.clip(q, qmin, qmax) - w2
        g_w = 2 * (np.einsum("ct,ctu->cu", dw, gram) if depthwise else dw @ gram) / n_out
        g_h = g_w * s * inside
        if it >= warm:
            beta = 20 + (2 - 20) * (it - warm) / max(iters - warm - 1, 1)
            d = 2 * h - 1
            g_h = g_h - lam * beta * np.abs(d) ** (beta - 1) * np.sign(d) * 2
        g_v = g_h * (ZETA - GAMMA) * sig * (1 - sig) * ((h_raw > 0) & (h_raw < 1))
        m = 0.9 * m + 0.1 * g_v
        u = 0.999 * u + 0.001 * g_v * g_v
        v -= lr * (m / (1 - 0.9 ** (it + 1))) / (np.sqrt(u / (1 - 0.999 ** (it + 1))) + 1e-12)
    q = np.clip(base + (v >= 0), qmin, qmax)
    return (s * q).reshape(w.shape).astype(np.float32)


class AdaRoundOps(FloatOps):
    """FP32 forward that AdaRounds each quantized conv/linear layer when it first runs, then continues with the
    rounded weights (module docstring). ``rec`` (weights, grids) is filled as it goes; ``start`` may carry
    weights to round (e.g. bias-corrected) and grids (e.g. MSE-clipped)."""

    def __init__(self, scheme: QuantScheme, start: Recovered | None = None, iters: int = 400, progress=None,
                 fp32_means: dict | None = None):
        self.scheme, self.iters = scheme, iters
        self.start = start or Recovered()
        self.rec = Recovered(notes={"adaround": f"{iters} Adam steps per layer, lambda 0.01, beta 20->2"})
        self.say = progress or (lambda msg: None)
        self.fp32_means = fp32_means

    def _run(self, kind, name, x, w, b, act, geo):
        bits = self.scheme.bits(name)
        if kind == "matmul" or bits is None:
            return super()._run(kind, name, x, w, b, act, geo)
        if name not in self.rec.weights:
            w, b = self.start.weights.get(name, (w, b))
            grid = self.start.grids.get(name) or mse_clip_grid(w, self.scheme.weight_spec(bits[0]))
            grouped = kind == "conv" and 1 < geo["group"] and (geo["group"] != w.shape[0] or w.ndim != 4)
            few = kind == "linear" and x.size // x.shape[-1] < x.shape[-1]   # fewer samples than inputs
            if kind not in ("conv", "linear") or grouped or few or grid.spec.granularity != "channel":
                self.rec.weights[name] = (w, b)
            else:
                self.say(f"AdaRound {name}")
                w_q = adaround_weights(w, grid, _gram(kind, x, w, geo), self.iters)
                if self.fp32_means is not None and name in self.fp32_means:
                    b = _empirical_bias(kind, x, w_q, b, geo, self.fp32_means[name])
                self.rec.weights[name], self.rec.grids[name] = (w_q, b), grid
        w, b = self.rec.weights[name]
        return super()._run(kind, name, x, w, b, act, geo)


def _channel_mean(kind: str, z) -> np.ndarray:
    return z.mean(axis=(0, *range(2, z.ndim)), dtype=np.float64) if kind in ("conv", "conv_transpose") else \
        z.reshape(-1, z.shape[-1]).mean(axis=0, dtype=np.float64)


def _empirical_bias(kind, x, w_q, b, geo, target):
    """Empirical bias correction: ``b' = b + E_fp32[z] − E[z̃]`` per output channel, ``z̃`` the pre-activation
    output with the rounded weights on this (already rounded-upstream) input, ``E_fp32[z]`` the FP32 model's."""
    z = KINDS[kind].float(x, w_q, b, geo)
    b0 = np.zeros(w_q.shape[0]) if b is None else b.astype(np.float64)
    return (b0 + target - _channel_mean(kind, z)).astype(np.float32)


class _OutputMeans(FloatOps):
    """FP32 forward recording each conv/linear layer's per-channel pre-activation output mean."""

    def __init__(self):
        self.means = {}

    def _run(self, kind, name, x, w, b, act, geo):
        z = KINDS[kind].float(x, w, b, geo)
        if kind != "matmul":
            self.means[name] = _channel_mean(kind, z)
        return ACTIVATIONS[act](z)


def adaround(session, scheme: QuantScheme, start: Recovered | None = None, iters: int = 400,
             bias_correct: bool = True) -> Recovered:
    """AdaRound every quantized conv/linear layer of ``session``'s task on its whole calibration set (one batch
    through the model graph; image tasks); with ``bias_correct`` each rounded layer's bias is then corrected
    empirically (:func:`_empirical_bias`) against the FP32 model's output means. ``iters=0`` is round-to-nearest
    on the (MSE-clipped) grid with the sequential empirical bias correction alone."""
    from ..nn.graph_exec import run_graph
    task = session.task
    calib = np.concatenate(task.calibration())
    graph, weights = task.graph, task._setup()["weights"]
    feeds = {next(iter(graph.inputs)): calib}
    means = None
    if bias_correct:
        fp = _OutputMeans()
        run_graph(graph, weights, feeds, fp)
        means = fp.means
    ops = AdaRoundOps(scheme, start, iters, session.say, means)
    run_graph(graph, weights, feeds, ops)
    if bias_correct:
        ops.rec.notes["bias_correction"] = "empirical, sequential (FP32 output means on calibration data)"
    return ops.rec
