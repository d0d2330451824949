"""Reverse-mode gradients on the one execution path: ``run_graph`` records a tape, the registry's rules walk it.

``forward(model, weights, feeds, qops)`` is :func:`accelsim.nn.graph_exec.run_graph` with a tape (every layer's
inputs and output kept); ``backward(model, weights, tape, {tensor: dL/dtensor}, qops)`` visits the tape in reverse
and calls each op's ``OPS[op].backward`` rule (in the op's family module, :mod:`accelsim.ops`), summing the
gradient of a tensor over all its readers (residual adds, Q/K/V sharing their input) and over the aliases of a
fused chain (a conv's output and its fused BN/ReLU share one tensor). It returns the parameter gradients under
the weight file's names (BN folds differentiated with frozen running statistics) and the gradients of the model
inputs.

:class:`GradOps` is the FP32 quantization mode that remembers what each GEMM saw, so that its ``backward`` can
return ``(dx, dw, db)`` (conv/linear, gradients of the folded weights) or ``(da, db)`` (matmul); fake-quant
training modes subclass it (:mod:`accelsim.recover.fakequant`).
"""
from __future__ import annotations

from ..errors import AccelsimError
from ..graph import Model
from ..ops import OPS
from ..ops.gemm import ACT_BACKWARD, ACTIVATIONS, KINDS, gemm_backward
from ..ops.normalization import fold_bn, fold_bn_backward
from .graph_exec import LayerContext, run_graph
from .qexec import FloatOps


class GradOps(FloatOps):
    """FP32 forward that keeps each GEMM's operands for :meth:`backward` (one call per layer per forward); with
    ``train`` (a :class:`~accelsim.nn.graph_exec.TrainMode`) the graph runs in training mode (nothing folded,
    BatchNorm on batch statistics), as for training from scratch."""
    mode = "fp32-grad"

    def __init__(self, train=None):
        self.train = train
        self.saved: dict[str, tuple] = {}
        self.weight_grads: dict[str, tuple] = {}   # name → (dW, db) of the folded weights, last backward

    def _run(self, kind, name, x, w, b, act, geo):
        z = KINDS[kind].float(x, w, b, geo)
        self.saved[name] = (kind, x, w, b, act, geo, z)
        return ACTIVATIONS[act](z)

    def backward(self, name, dy):
        """``dL/d(inputs)`` of layer ``name``'s last call given ``dy``, through its fused activation."""
        if name not in self.saved:
            raise AccelsimError(f"backward: layer {name} did not run forward with this qops")
        kind, x, w, b, act, geo, z = self.saved[name]
        grads = gemm_backward(kind, x, w, b, geo, ACT_BACKWARD[act](dy, z))
        if kind != "matmul":
            self.weight_grads[name] = grads[1:]
        return grads


class _GradContext(LayerContext):
    """The forward context plus the parameter-gradient store of one backward pass."""
    __slots__ = ("grads",)

    def __init__(self, layer, weights, qops, chain, grads: dict, saved=None):
        super().__init__(layer, weights, qops, chain, saved)
        self.grads = grads

    def add_grad(self, suffix: str, g, layer=None) -> None:
        key = f"{(layer or self.layer).weight}.{suffix}"
        self.grads[key] = self.grads[key] + g if key in self.grads else g

    def weight_grads(self, dw, db) -> None:
        """``dw, db`` of the folded weights → raw weight, bias and each folded BN's γ/β
        (:func:`~accelsim.ops.normalization.fold_bn_backward`)."""
        if dw is None:
            return
        w, b = self.param("weight"), self.param("bias")
        folds = []
        for bn in self.chain:
            if bn.op == "batchnorm":
                g = lambda s, bn=bn: self.param(s, bn)  # noqa: E731
                folds.append((bn, w, b))
                w, b = fold_bn(w, b, g("weight"), g("bias"), g("running_mean"), g("running_var"), bn.attrs["eps"])
        for bn, w0, b0 in reversed(folds):
            g = lambda s, bn=bn: self.param(s, bn)  # noqa: E731
            dw, db, dgamma, dbeta = fold_bn_backward(dw, db, w0, b0, g("weight"), g("running_mean"),
                                                     g("running_var"), bn.attrs["eps"])
            self.add_grad("weight", dgamma, bn)
            self.add_grad("bias", dbeta, bn)
        self.add_grad("weight", dw)
        if db is not None:
            self.add_grad("bias", db)


def forward(model: Model, weights: dict, feeds: dict, qops=None, outputs=None):
    """``(outputs, tape)``: :func:`run_graph` keeping every layer's inputs and output for :func:`backward`."""
    tape: list = []
    out = run_graph(model, weights, feeds, qops if qops is not None else GradOps(), outputs, tape=tape)
    return out, tape


def backward(model: Model, weights: dict, tape: list, grads_out: dict, qops) -> tuple[dict, dict]:
    """Walk ``tape`` in reverse from ``grads_out`` (tensor name → ``dL/dtensor``); return (parameter gradients by
    weight name, gradients of the model inputs that are differentiable)."""
    dys = dict(grads_out)
    grads: dict = {}
    for layer, xs, y, chain, saved in reversed(tape):
        parts = [dys.pop(n) for n in [layer.name] + [f.name for f in chain] if n in dys]
        if not parts:
            continue
        dy = parts[0] if len(parts) == 1 else sum(parts[1:], parts[0])
        rule = OPS[layer.op].backward
        dxs = rule(layer.attrs, xs, y, dy, _GradContext(layer, weights, qops, chain, grads, saved))
        for t, g in zip(layer.inputs, dxs):
            if g is not None:
                dys[t] = dys[t] + g if t in dys else g
    return grads, {n: dys[n] for n in model.inputs if n in dys}


__all__ = ["GradOps", "forward", "backward", "gemm_backward", "ACT_BACKWARD"]
