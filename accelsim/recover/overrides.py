"""Recovered weights on the one executor: substitute folded weights and smoothing factors per GEMM layer.

Every PTQ/QAT method here produces, per conv/linear layer (named as the executor names it, by its weight
binding), a replacement for the *folded* float weights ``(W, b)`` that :func:`run_graph` would pass (BatchNorm
already folded), optionally a weight grid (``QParams``: clipped or learned scales; AdaRound's rounding is
encoded in ``W`` itself, lying exactly on that grid), and optionally (linear layers) a SmoothQuant factor ``s``
per input channel: the layer then computes ``(x / s) · (W · s)ᵀ`` — mathematically the same, but the activation that
is quantized is ``x / s``. After a LayerNorm ``1/s`` folds into γ and β; after GELU it is one multiply per
element in the vector unit's output stage (the GEMM stays static INT8 on a per-tensor grid).
The output side (``out_smooth[name] = t``, linear layers without activation or with ReLU) is the mirror image:
the layer computes ``y' = x·(W/t)ᵀ + b/t`` — its int8 output grid then holds ``y/t``, free of the few outlier
channels (BERT's FFN down-projections) — and the consumer dequantizes ``y = y'·t`` per channel (one multiply per
element in the vector unit, where the residual add happens anyway). In integer terms ``t`` joins the per-channel
requantization multiplier ``s_x·s_w[c] / (s_y·t_c)``.

:class:`Overrides` wraps any quantization mode (``FloatOps``, ``Calibrator``, ``QuantOps``, ``GradOps``) and
applies the substitution before delegating; :func:`recovered_quant_ops` builds the integer model.
"""
from __future__ import annotations

from dataclasses import dataclass, field


from ..nn.qexec import QuantOps, QuantPlan


@dataclass
class Recovered:
    """What recovery methods produced: ``weights[name] = (W, b)`` folded, ``grids[name]`` weight QParams,
    ``smooth[name]`` per-input-channel factors, and ``notes`` (method → what it did), for the card."""
    weights: dict = field(default_factory=dict)
    grids: dict = field(default_factory=dict)
    smooth: dict = field(default_factory=dict)
    notes: dict = field(default_factory=dict)
    out_smooth: dict = field(default_factory=dict)

    def merged(self, other: "Recovered") -> "Recovered":
        return Recovered({**self.weights, **other.weights}, {**self.grids, **other.grids},
                         {**self.smooth, **other.smooth}, {**self.notes, **other.notes},
                         {**self.out_smooth, **other.out_smooth})


class Overrides:
    """Wrap a qops object so conv/linear layers use the recovered weights and smoothing (see module docstring);
    every other attribute (``stats``, ``plan``, ``backward``...) is the wrapped object's."""

    def __init__(self, inner, rec: Recovered):
        self.inner, self.rec = inner, rec

    def __getattr__(self, item):
        return getattr(self.inner, item)

    def _wb(self, name, w, b):
        return self.rec.weights.get(name, (w, b))

    def conv(self, name, x, w, b, stride=1, pads=(0, 0, 0, 0), dilation=1, groups=1, act=None):
        w, b = self._wb(name, w, b)
        return self.inner.conv(name, x, w, b, stride, pads, dilation, groups, act)

    def linear(self, name, x, w, b=None, act=None):
        w, b = self._wb(name, w, b)
        s = self.rec.smooth.get(name)
        if s is not None:
            x, w = x / s.astype(x.dtype), (w * s[None, :]).astype(w.dtype)
        t = self.rec.out_smooth.get(name)
        if t is None:
            return self.inner.linear(name, x, w, b, act)
        w, b = (w / t[:, None]).astype(w.dtype), None if b is None else (b / t).astype(b.dtype)
        return self.inner.linear(name, x, w, b, act) * t.astype(x.dtype)

    def matmul(self, name, a, b):
        return self.inner.matmul(name, a, b)


def recovered_quant_ops(plan: QuantPlan, rec: Recovered, mode: str = "int", **kw) -> Overrides:
    """The quantized model with recovered weights: ``QuantOps(plan, weight_params=rec.grids)`` wrapped in
    :class:`Overrides`. Weight grids of smoothed layers are recomputed (they belong to ``W·s``)."""
    grids = {k: v for k, v in rec.grids.items() if k not in rec.smooth}
    return Overrides(QuantOps(plan, mode, weight_params=grids, **kw), rec)
