"""The op registry: everything accelsim knows about an operator, in one :class:`OpDef` per op, each op written
end to end in the module of its family.

Shapes describe one inference (:attr:`accelsim.graph.Model.batch_axis`): in a model YAML they exclude the batch —
images ``[C, H, W]``, token sequences ``[S]``, hidden states ``[S, D]``, per-head tensors ``[heads, S, d]``; an
ONNX graph imported without a batch axis keeps its own shapes (window ops then see the dims in front of the
channels as more images; per-channel ops take ``channel_axis``). At execution every tensor carries one leading
axis more: the inferences of a batch.
Each entry of :data:`OPS` gives

* ``attrs(reader)`` — read and validate its attributes (problems collected with field paths);
* ``shape(attrs, in_shapes)`` — the output shape, or raise :class:`ShapeError` with the reason;
* ``params(attrs, in_shapes)`` — learnable parameter count (torch's convention: BN has 2·C, not 4·C), and
  ``wide_params`` — how many of them stay 32-bit in a quantized model's size (norm parameters, biases);
* ``weights(attrs, in_shapes)`` — the tensors a ``weight: prefix`` binding needs (suffix → shape);
* lowering (:mod:`accelsim.lowering`): ``gemm(attrs, in_shapes, out_shape)`` → :class:`Gemm` for the array, or
  vector work of ``elements(attrs, in_shapes, out_shape) × vector_ops`` (default ops per element, which a hw
  config may override), or nothing for layout ops (``vector_ops == 0``); ``fusable`` ops (batchnorm, relu,
  relu6) fold into a preceding conv/linear;
* ``run(attrs, xs, ctx)`` — the FP32 forward on batched arrays; GEMM ops call ``ctx.qops`` so the quantization
  mode decides how they execute (see :mod:`accelsim.nn.graph_exec`);
* ``epilogue`` — vector work that can run on a GEMM's output tiles as they leave the array (``"element"``: tile
  by tile; ``"row"``: once every tile of an output row is done; :mod:`accelsim.sim.overlap`);
* ``backward(attrs, xs, y, dy, ctx)`` — the gradient rule: ``dL/d(input)`` per input (``None`` where an input is
  not differentiable), parameter gradients through ``ctx.add_grad(suffix, g)`` (walked by
  :func:`accelsim.nn.autograd.backward`), each checked against finite differences in the tests.

The families — :mod:`~accelsim.ops.gemm` (conv2d, linear, matmul, and :data:`~accelsim.ops.gemm.KINDS`, how they run
in every quantization mode), :mod:`~accelsim.ops.elementwise`, :mod:`~accelsim.ops.normalization`,
:mod:`~accelsim.ops.pooling`, :mod:`~accelsim.ops.layout`, :mod:`~accelsim.ops.sequence` (attention and token
sequences), :mod:`~accelsim.ops.decoder` (decoder LLMs: RMSNorm, RoPE, SwiGLU, grouped-query causal attention)
and :mod:`~accelsim.ops.quantization` — each hold their ops' shape, lowering, FP32 numerics and
backward rule side by side; :mod:`accelsim.ops.functional` gathers the numpy numerics under one name. Adding an
op is adding one entry to its family's table. Nothing here imports the executors (:mod:`accelsim.nn`) or
anything above them.
"""
from __future__ import annotations

from . import decoder, elementwise, gemm, layout, normalization, pooling, quantization, sequence
from .registry import Gemm, OpDef, Shape, ShapeError, build

__all__ = ["FAMILIES", "Gemm", "IMPORT_OPS", "KINDS", "OPS", "OpDef", "Shape", "ShapeError", "VECTOR_OPS"]

FAMILIES = (gemm, elementwise, normalization, pooling, sequence, decoder, layout, quantization)

OPS, IMPORT_OPS, VECTOR_OPS = build(FAMILIES)
"""``OPS``: every op by name; ``IMPORT_OPS``: the ops of imported graphs among them; ``VECTOR_OPS``: default
vector-unit ops per element of the native ops (a hw config's ``vector.ops_per_element`` overrides them by op
name)."""

KINDS = gemm.KINDS
