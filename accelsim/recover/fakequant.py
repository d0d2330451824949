"""Learnable fake quantization (LSQ, Esser et al. 2020) with a straight-through estimator, on the one executor.

``fq(x; s, z) = (clip(rne(x/s) + z, qmin, qmax) − z) · s`` — the int kernels' QuantizeLinear/DequantizeLinear
(float32 division, round half to even). Gradients (STE for the rounding):

* ``∂fq/∂x = 1`` where ``qmin ≤ x/s + z ≤ qmax``, else 0;
* ``∂fq/∂s = rne(x/s) − x/s`` inside, ``qmin − z`` below, ``qmax − z`` above (the zero point stays fixed).

Scales are learned as ``s = e^t`` (``∂L/∂t = s·∂L/∂s``), so one learning rate fits weight and activation scales
of any magnitude. :class:`QATOps` runs a :class:`~accelsim.nn.qexec.QuantPlan` the way :class:`QuantOps` does in
``fake`` mode — input on its grid ``x``, weights per channel on ``w``, ``act(op(x̂, ŵ) + b)`` requantized onto
the output grid ``y`` — but with learnable folded weights ``W, b`` (BatchNorm folded with frozen running
statistics, as the integer model folds it), learnable scales, and a ``backward``. :meth:`QATOps.export` turns
what it learned into the bit-exact integer model's inputs: a plan with the learned activation grids and the
per-layer ``(W, b, weight grid)`` overrides (:class:`accelsim.recover.overrides.Overrides`).
"""
from __future__ import annotations

from types import MappingProxyType

import numpy as np

from ..nn.autograd import GradOps
from ..nn.qexec import LayerQ, QuantPlan
from ..ops.gemm import ACT_BACKWARD, ACTIVATIONS, KINDS, gemm_backward
from ..quant import QParams, QuantSpec, weight_qparams


def fake_quant(x, s, z, qmin: int, qmax: int):
    """``(fq(x), inside mask, ∂fq/∂s)`` for scale ``s`` broadcasting against ``x`` (see the module docstring)."""
    s32 = np.asarray(s, np.float32)
    v = x.astype(np.float32, copy=False) / s32
    r = np.rint(v)
    q = r + np.float32(z)
    inside = (q >= qmin) & (q <= qmax)
    qc = np.clip(q, qmin, qmax)
    y = ((qc - np.float32(z)) * s32).astype(np.float32)
    ds = np.where(inside, r - v, qc - np.float32(z)).astype(np.float32)
    return y, inside, ds


def _sum_to(g, shape):
    """Sum ``g`` down to a scale's shape (scalar, or per channel on axis 0)."""
    return g.sum() if shape == () else g.reshape(g.shape[0], -1).sum(axis=1)


class QATOps(GradOps):
    """Fake-quant training mode with learnable folded weights and LSQ scales for every layer of ``plan``.

    ``params[name]``: ``{"w", "b"}`` folded weights, ``{"tw", "tx", "ty", "tb"}`` log-scales; ``grads`` the same
    keys after :meth:`backward`. Layers not in the plan run FP32 (and still backpropagate)."""
    mode = "qat"

    def __init__(self, plan: QuantPlan, folded: dict, weight_params: dict | None = None):
        super().__init__()
        self.plan = plan
        self.params: dict[str, dict] = {}
        self.grads: dict[str, dict] = {}
        self.specs: dict[str, dict] = {}
        for name, lq in plan.layers.items():
            p, spec = {}, {"x": lq.x, "y": lq.y}
            if name in folded:
                w, b = folded[name]
                wspec = plan.scheme.weight_spec(lq.w_bits)
                wp = (weight_params or {}).get(name) or weight_qparams(w, wspec)
                p["w"], p["b"] = np.array(w, np.float32), None if b is None else np.array(b, np.float32)
                p["tw"] = np.log(wp.scale).astype(np.float32)   # per channel [Cout], or a scalar
                spec["w"] = wp
            if lq.b is not None:
                p["tb"], spec["b"] = np.log(np.float32(lq.b.scale)), lq.b
            p["tx"], p["ty"] = np.log(np.float32(lq.x.scale)), np.log(np.float32(lq.y.scale))
            self.params[name], self.specs[name] = p, spec

    def _fq(self, x, key, name, shape_axis0=False):
        qp = self.specs[name][key]
        s = np.exp(self.params[name]["t" + key]).astype(np.float32)
        z = np.asarray(qp.zero_point).reshape(-1)[0] if qp.spec.granularity == "tensor" else 0
        if shape_axis0:
            s = s.reshape((-1,) + (1,) * (x.ndim - 1))
        y, inside, ds = fake_quant(x, s, z, qp.spec.qmin, qp.spec.qmax)
        return y, inside, ds, s

    def _run(self, kind, name, x, w, b, act, geo):
        if name not in self.params:
            return super()._run(kind, name, x, w, b, act, geo)
        p = self.params[name]
        xq, in_x, ds_x, _ = self._fq(x, "x", name)
        if kind == "matmul":
            wq, in_w, ds_w, _ = self._fq(w, "b", name)
            bias = None
        else:
            wq, in_w, ds_w, _ = self._fq(p["w"], "w", name, shape_axis0=True)
            bias = p["b"]
        z = KINDS[kind].float(xq, wq, bias, geo)
        a = ACTIVATIONS[act](z)
        y, in_y, ds_y, _ = self._fq(a, "y", name)
        self.saved[name] = (kind, xq, wq, bias, act, geo, z, (in_x, ds_x), (in_w, ds_w), (in_y, ds_y))
        return y

    def backward(self, name, dy):
        """``(dx, None, None)`` for conv/linear (their folded weights are this object's parameters: gradients go
        to ``self.grads``) or ``(da, db)`` for matmul."""
        if name not in self.params:
            return super().backward(name, dy)
        kind, xq, wq, bias, act, geo, z, (in_x, ds_x), (in_w, ds_w), (in_y, ds_y) = self.saved[name]
        p, g = self.params[name], self.grads.setdefault(name, {})
        _acc(g, "ty", (dy * ds_y).sum() * np.exp(p["ty"]))
        dz = ACT_BACKWARD[act](dy * in_y, z)
        grads = gemm_backward(kind, xq, wq, bias, geo, dz)
        dxq, dwq = grads[0], grads[1]
        _acc(g, "tx", (dxq * ds_x).sum() * np.exp(p["tx"]))
        if kind == "matmul":
            _acc(g, "tb", (dwq * ds_w).sum() * np.exp(p["tb"]))
            return dxq * in_x, dwq * in_w
        _acc(g, "tw", _sum_to(dwq * ds_w, p["tw"].shape) * np.exp(p["tw"]))
        _acc(g, "w", dwq * in_w)
        if bias is not None:
            _acc(g, "b", grads[2])
        return dxq * in_x, None, None

    def zero_grad(self) -> None:
        self.grads = {}

    def export(self) -> tuple[QuantPlan, dict]:
        """``(plan, overrides)``: the learned activation grids (zero points unchanged) and, per conv/linear,
        ``(W, b, weight QParams)`` for :class:`accelsim.recover.overrides.Overrides`."""
        layers, over = {}, {}
        for name, lq in self.plan.layers.items():
            p, sp = self.params[name], self.specs[name]
            grid = lambda key: QParams(np.float32(np.exp(p["t" + key])), sp[key].zero_point, sp[key].spec)  # noqa
            layers[name] = LayerQ(name, lq.w_bits, lq.a_bits, grid("x"), grid("y"), grid("b") if "tb" in p else None)
            if "w" in p:
                wspec: QuantSpec = sp["w"].spec
                scale = np.exp(p["tw"]).astype(np.float32)
                zp = np.zeros(np.shape(scale), np.int32)
                over[name] = (p["w"].copy(), None if p["b"] is None else p["b"].copy(), QParams(scale, zp, wspec))
        return QuantPlan(self.plan.scheme, MappingProxyType(layers), self.plan.calib_samples), over


def _acc(store: dict, key: str, g) -> None:
    store[key] = store[key] + g if key in store else g
