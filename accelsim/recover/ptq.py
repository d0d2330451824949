"""PTQ switches on folded weights: per-channel MSE weight clipping, bias correction, SmoothQuant smoothing.

All three return a :class:`~.overrides.Recovered` (merged by the caller) and use only calibration data.

* **MSE clipping** (per output channel ``c``): symmetric grid on ``[−α·m_c, α·m_c]``, ``m_c = max|W_c|``, i.e.
  ``s_c(α) = 2α·m_c/(qmax − qmin)`` (ONNX Runtime's symmetric rule on the clipped range), with
  ``α* = argmin_α Σ_k (W_ck − Q_α(W_ck))²`` over ``α ∈ {0.20, 0.22, …, 1.00}`` (41 candidates);
  ``Q_α(w) = s·clip(rne(w/s), qmin, qmax)``.
* **Bias correction** (Nagel et al. 2019, analytic form): the quantized layer's expected output shifts by
  ``E[ΔW·x] = ΔW·E[x]`` with ``ΔW = Q(W) − W``; ``b' = b − ΔW·E[x]``. ``E[x]`` is the per-input-channel mean
  of the layer's input over the calibration set (for a conv the same mean for every kernel tap: padding ignored).
* **SmoothQuant** (Xiao et al. 2023) for linear layers: ``s_j = max|X_j|^α / max_i|W_ij|^(1−α)`` per input
  channel ``j`` (clamped to ``[1e-5, 1e5]``), shared by the layers reading one tensor (Q/K/V), α = 0.5 by
  default; the layer then quantizes ``x/s`` and ``W·s`` (see :mod:`.overrides`).
"""
from __future__ import annotations

import weakref

import numpy as np

from ..nn.qexec import FloatOps, QuantScheme
from ..quant import QParams, weight_qparams
from .overrides import Overrides, Recovered

ALPHAS = np.linspace(0.2, 1.0, 41)


def _fq_sym(w2, scale, qmin, qmax):
    return np.clip(np.rint(w2 / scale), qmin, qmax) * scale


def mse_clip_grid(w: np.ndarray, spec) -> QParams:
    """Per-channel MSE-optimal clipped symmetric grid of ``w`` (axis 0), see the module docstring."""
    w2 = w.reshape(w.shape[0], -1).astype(np.float64)
    m = np.abs(w2).max(axis=1)
    m = np.where(m > 0, m, 1.0)
    qmin, qmax = spec.qmin, spec.qmax
    best, best_err = np.ones(len(m)), np.full(len(m), np.inf)
    for a in ALPHAS:
        s = (2 * a * m / (qmax - qmin))[:, None]
        err = ((w2 - _fq_sym(w2, s, qmin, qmax)) ** 2).sum(axis=1)
        better = err < best_err
        best[better], best_err[better] = a, err[better]
    if spec.granularity != "channel":
        return weight_qparams(w, spec)
    scale = (2 * best * m / (qmax - qmin)).astype(np.float32)
    return QParams(scale, np.zeros(len(scale), np.int32), spec)


def mse_clipping(folded: dict, scheme: QuantScheme) -> Recovered:
    """MSE weight grids for every quantized conv/linear layer of ``folded`` (:meth:`Session.folded`)."""
    grids = {}
    for name, d in folded.items():
        bits = scheme.bits(name)
        if bits is not None:
            grids[name] = mse_clip_grid(d["w"], scheme.weight_spec(bits[0]))
    return Recovered(grids=grids, notes={"clip": "per-channel MSE weight clipping"})


class InputStats(FloatOps):
    """FP32 forward accumulating, per conv/linear layer, the per-channel sum and max|x| of its input (and which
    layers read the same tensor)."""

    def __init__(self):
        self.sum, self.count, self.absmax, self.group, self.out_absmax = {}, {}, {}, {}, {}
        self._ids = {}

    def _run(self, kind, name, x, w, b, act, geo):
        if kind != "matmul":
            axes = (0, 2, 3) if kind == "conv" else tuple(range(x.ndim - 1))
            s, mx = x.sum(axis=axes, dtype=np.float64), np.abs(x).max(axis=axes)
            n = x.size // x.shape[1 if kind == "conv" else -1]
            self.sum[name] = self.sum.get(name, 0) + s
            self.count[name] = self.count.get(name, 0) + n
            self.absmax[name] = np.maximum(self.absmax.get(name, 0), mx)
            seen = self._ids.get(id(x))
            if seen is None or seen[0]() is not x:   # a new tensor (ids of freed arrays are reused)
                seen = self._ids[id(x)] = (weakref.ref(x), name)
            self.group.setdefault(name, seen[1])
        y = super()._run(kind, name, x, w, b, act, geo)
        if kind == "linear":
            self.out_absmax[name] = np.maximum(self.out_absmax.get(name, 0), np.abs(y).reshape(-1, y.shape[-1]).max(0))
        return y

    def mean(self, name):
        return self.sum[name] / self.count[name]


def collect_input_stats(session, rec: Recovered | None = None) -> InputStats:
    stats = InputStats()
    ops = Overrides(stats, rec or Recovered())
    for batch in session.task.calibration():
        session.task.run(ops, batch)
    return stats


def _dequantized(w, grid: QParams):
    s = np.asarray(grid.scale, np.float64).reshape((-1,) + (1,) * (w.ndim - 1))
    return _fq_sym(w.astype(np.float64), s, grid.spec.qmin, grid.spec.qmax)


def bias_correction(session, scheme: QuantScheme, rec: Recovered) -> Recovered:
    """``b' = b − ΔW·E[x]`` for every quantized conv/linear layer (``rec``'s weights and grids, if any)."""
    folded, stats = session.folded(), collect_input_stats(session, rec)
    weights = {}
    for name, d in folded.items():
        bits = scheme.bits(name)
        if bits is None or name not in stats.sum or name in rec.smooth:
            continue
        w, b = rec.weights.get(name, (d["w"], d["b"]))
        grid = rec.grids.get(name) or weight_qparams(w, scheme.weight_spec(bits[0]))
        dw = _dequantized(w, grid) - w
        mu = stats.mean(name)
        if d["kind"] == "conv":
            groups = d["geo"]["group"]
            dw_sum = dw.sum(axis=(2, 3))                                  # [Cout, Cin/g]
            cg, og = dw_sum.shape[1], dw.shape[0] // groups
            shift = np.concatenate([dw_sum[g * og:(g + 1) * og] @ mu[g * cg:(g + 1) * cg] for g in range(groups)])
        else:
            shift = dw @ mu
        b0 = np.zeros(w.shape[0]) if b is None else b.astype(np.float64)
        weights[name] = (w, (b0 - shift).astype(np.float32))
    return Recovered(weights=weights, notes={"bias_correction": "analytic, E[x] from calibration"})


def smoothquant(session, scheme: QuantScheme, alpha: float = 0.5, layers=None) -> Recovered:
    """SmoothQuant factors for the quantized linear layers (all, or those matching ``layers``' globs)."""
    from fnmatch import fnmatchcase
    folded, stats = session.folded(), collect_input_stats(session)
    groups: dict[str, list[str]] = {}
    for name, d in folded.items():
        if d["kind"] != "linear" or scheme.bits(name) is None or name not in stats.absmax:
            continue
        if layers and not any(fnmatchcase(name, p) for p in layers):
            continue
        groups.setdefault(stats.group[name], []).append(name)
    smooth = {}
    for members in groups.values():
        ax = stats.absmax[members[0]].astype(np.float64)
        aw = np.max([np.abs(folded[n]["w"]).max(axis=0) for n in members], axis=0).astype(np.float64)
        s = np.clip(np.maximum(ax, 1e-8) ** alpha / np.maximum(aw, 1e-8) ** (1 - alpha), 1e-5, 1e5)
        smooth.update({n: s.astype(np.float32) for n in members})
    return Recovered(smooth=smooth, notes={"smoothquant": f"alpha {alpha}, {len(smooth)} linear layers"})


def output_smoothing(session, scheme: QuantScheme, layers=("*",), ratio: float = 1.0) -> Recovered:
    """Output-side scale migration for linear layers matching ``layers`` (globs) whose folded output has no
    activation: ``t_j = max(1, m_j / (ratio·median_k m_k))`` with ``m_j = max|y_j|`` over the calibration set,
    so every output channel fits within ``ratio`` × the median channel range (see :mod:`.overrides`)."""
    from fnmatch import fnmatchcase
    folded, stats = session.folded(), collect_input_stats(session)
    out = {}
    for name, m in stats.out_absmax.items():
        if scheme.bits(name) is None or folded[name]["act"] not in (None, "relu"):
            continue
        if any(fnmatchcase(name, p) for p in layers):
            out[name] = np.maximum(1.0, m / (ratio * np.median(m))).astype(np.float32)
    return Recovered(out_smooth=out, notes={"output_smoothing": f"{len(out)} linear layers, ratio {ratio}"})
