"""The one executor: run a model graph (a model YAML) on real weights in FP32, calibrate, fake or int mode.

``run_graph(model, weights, feeds, qops)`` walks ``model.layers`` in order with a leading batch axis on every
tensor and calls each op's registry ``run`` (:mod:`accelsim.ops`). The GEMM ops (``conv2d``, ``linear``,
``matmul``) go through ``qops`` — the quantization mode (:mod:`accelsim.nn.qexec`; ``None`` = FP32) — named by
their weight binding (e.g. ``encoder.layer.0.attention.self.query``) or, for weightless matmuls, by the layer
name. As on the hardware (and in :mod:`accelsim.lowering`), a ``batchnorm`` that follows a conv/linear is folded
into its weights and a following ``relu``/``relu6`` is fused into its output grid; the fused layers' tensors
alias the result. Everything else runs in float32. Padded sequence batches carry an attention mask input
(``mask_bias`` → ``softmax`` bias, masked ``mean_pool``).
"""
from __future__ import annotations

from dataclasses import dataclass

from ..errors import AccelsimError
from ..graph import Layer, Model
from ..lowering import lower
from ..memo import remember
from ..ops import OPS
from ..ops.normalization import fold_bn
from .qexec import FloatOps


class LayerContext:
    """What an op's ``run`` may ask of the executor: bound tensors, the qops, its fused chain, and ``train`` — the
    qops' training mode (``qops.train``, e.g. :class:`TrainMode`; ``None`` for inference). A ``run`` may leave what
    its gradient rule needs in ``saved`` (a max pool's argmax); a tape records it for the backward pass."""
    __slots__ = ("layer", "weights", "qops", "chain", "train", "saved")

    def __init__(self, layer: Layer, weights: dict, qops, chain: list[Layer], saved=None):
        self.layer, self.weights, self.qops, self.chain = layer, weights, qops, chain
        self.train = getattr(qops, "train", None)
        self.saved = saved

    def unsupported(self, why: str):
        raise AccelsimError(f"layer {self.layer.name} ({self.layer.op}): {why}")

    def param(self, suffix: str, layer: Layer | None = None):
        return bound(self.weights, layer or self.layer, suffix)

    def set_param(self, suffix: str, value) -> None:
        """Replace a bound tensor (training mode: BatchNorm's running statistics)."""
        self.weights[f"{self.layer.weight}.{suffix}"] = value

    @property
    def qname(self) -> str:
        return quant_name(self.layer)

    @property
    def act(self) -> str | None:
        """The fused activation (relu/relu6) applied in this layer's output stage, if any."""
        acts = [f.op for f in self.chain if f.op != "batchnorm"]
        return acts[-1] if acts else None

    def weight_and_bias(self):
        """This layer's weight and bias with every fused batchnorm folded in (:func:`folded_weights`)."""
        return folded_weights(self.layer, self.weights, self.chain)


def quant_name(layer: Layer) -> str:
    """The name a GEMM layer goes by in the qops and a quantization plan: its weight binding, else its name."""
    return layer.weight or layer.name


def bound(weights: dict, layer: Layer, suffix: str):
    """The tensor ``<binding>.<suffix>`` of ``layer`` (None if absent; AccelsimError without a binding)."""
    if layer.weight is None:
        raise AccelsimError(f"layer {layer.name} ({layer.op}) has no 'weight:' binding, so it cannot be executed")
    return weights.get(f"{layer.weight}.{suffix}")


def folded_weights(layer: Layer, weights: dict, chain: list[Layer]):
    """``(w, b)`` of a conv/linear with every batchnorm of its fused ``chain`` folded in
    (:func:`~accelsim.ops.normalization.fold_bn`, running statistics), as every mode executes it."""
    p = lambda s, lay=layer: bound(weights, lay, s)  # noqa: E731
    w, b = p("weight"), p("bias")
    for bn in chain:
        if bn.op == "batchnorm":
            w, b = fold_bn(w, b, p("weight", bn), p("bias", bn), p("running_mean", bn), p("running_var", bn),
                           bn.attrs["eps"])
    return w, b


_CHAINS: dict = {}   # the plans of the last few (model, training) pairs (accelsim.memo.remember)


def fused_chains(model: Model) -> dict[str, list[Layer]]:
    """conv/linear layer name → the fused layers that follow it (as :func:`accelsim.lowering.lower` fuses);
    remembered for the last few models."""
    return _plan(model, False)[0]


def _plan(model: Model, train: bool) -> tuple[dict, list]:
    """``(fused chains, steps)`` of ``model``: per executed layer (the fused ones ride on their root)
    ``(layer, its op's run, its fused chain, the tensors no later layer reads)``; in training mode nothing is
    fused. Remembered for the last few models (a decoder runs one graph per token)."""
    def make():
        chains = {} if train else _fused_chains(model)
        fused = {f.name for c in chains.values() for f in c}
        last_use = {t: i for i, layer in enumerate(model.layers) for t in layer.inputs}
        steps = [(layer, OPS[layer.op].run, chains.get(layer.name, []),
                  tuple(t for t in dict.fromkeys(layer.inputs) if last_use[t] == i))
                 for i, layer in enumerate(model.layers) if layer.name not in fused]
        return chains, steps
    return remember(_CHAINS, model, train, make)


def _fused_chains(model: Model) -> dict[str, list[Layer]]:
    chains: dict[str, list[Layer]] = {}
    root: dict[str, str] = {}
    for work in lower(model):
        layer = work.layer
        if work.fused:
            root[layer.name] = root[layer.inputs[0]]
            chains[root[layer.name]].append(layer)
        elif work.gemm is not None and work.gemm.b_is_weight:
            root[layer.name] = layer.name
            chains[layer.name] = []
    return chains


@dataclass(frozen=True, slots=True)
class TrainMode:
    """Training-mode execution (torch's ``model.train()``), set as a qops' ``train`` attribute
    (:class:`accelsim.nn.autograd.GradOps`): nothing is fused or folded, BatchNorm normalizes with the batch's
    statistics and moves its running statistics by ``bn_momentum`` (:mod:`accelsim.ops.normalization`)."""
    bn_momentum: float = 0.1


def run_graph(model: Model, weights: dict, feeds: dict, qops=None, outputs=None, tape: list | None = None) -> dict:
    """Run ``model`` on ``feeds`` (model input name → batched array); return the requested (default: the
    last layer's) tensors by name. With a ``tape`` list, every executed layer appends ``(layer, inputs, output,
    fused chain, saved)`` and no tensor is freed (what :func:`accelsim.nn.autograd.backward` walks back). A ``qops`` in
    training mode (``qops.train``, a :class:`TrainMode`) fuses nothing and may update ``weights`` (BatchNorm's
    running statistics)."""
    qops = qops or FloatOps()
    missing = [n for n in model.inputs if n not in feeds]
    if missing:
        raise AccelsimError(f"run_graph: no value fed for model input(s) {missing}")
    env = dict(feeds)
    steps = _plan(model, bool(getattr(qops, "train", None)))[1]   # training: every layer is its own op
    names = outputs or [model.layers[-1].name]
    keep = set(names)
    for layer, run, chain, frees in steps:
        xs = [env[t] for t in layer.inputs]
        ctx = LayerContext(layer, weights, qops, chain)
        y = run(layer.attrs, xs, ctx)
        env[layer.name] = y
        for f in chain:
            env[f.name] = y
        if tape is not None:
            tape.append((layer, xs, y, chain, ctx.saved))
            continue
        for t in frees:   # free tensors no later layer reads
            if t not in keep:
                env.pop(t, None)
    return {n: env[n] for n in names}
