"""Weight-only quantization modes of the one executor: GEMM weights held as block grids
(:class:`accelsim.quant.blocks.BlockTensor`), activations in FP32 or rounded to FP16.

:class:`BlockOps` runs ``linear`` layers whose quantization name (:func:`accelsim.nn.graph_exec.quant_name`) has a
block tensor on that tensor's dequantized values (``d·(q − offset) + m``, exactly as
:func:`accelsim.quant.blocks.block_dequantize`), every other GEMM on its float weights:

* ``act="fp32"``: activations as they are — with a GGUF file's own blocks this is the FP32 model of the decoded
  weights (the executor's FP32 mode for GGUF decoders), computed from the codes;
* ``act="fp16"`` (W4A16, W8A16): every GEMM input — a linear's activations, both operands of attention's
  ``matmul`` — rounded to float16 first; products and sums in float32 (FP16 multipliers with FP32
  accumulation). Everything else (norms, RoPE, softmax, residuals) stays float32. With ``fp16_weights`` the
  float weights of the layers without blocks are rounded to float16 too (the FP16 model).

A few rows at a time (a decode step: ``M ≤`` :data:`GEMV_ROWS` rows) go through
:func:`~accelsim.quant.blocks.block_matmul`, which streams the codes (1 byte per weight instead of 4); more rows
multiply the dequantized matrix, computed once per layer and kept (or, with ``dense_is_weight``, the layer's own
float weights, which are then the dequantized values already: a GGUF file's decoded tensors).
"""
from __future__ import annotations

from typing import Mapping

import numpy as np

from ..errors import QuantError
from ..ops.gemm import ACTIVATIONS
from ..quant.blocks import BlockTensor, block_dequantize, block_matmul
from .qexec import FloatOps

ACTS = ("fp32", "fp16")
GEMV_ROWS = 8
"""Calls with at most this many rows (a decode step) stream the weights' codes; more rows use BLAS on the
dequantized matrix."""


def to_fp16(x: np.ndarray) -> np.ndarray:
    """``x`` rounded to float16 (round to nearest even; overflow to ±inf as IEEE), returned as float32."""
    return x.astype(np.float16).astype(np.float32)


class BlockOps(FloatOps):
    """Block-quantized weights, FP32 or FP16 activations (module docstring)."""
    mode = "weight-only"

    def __init__(self, blocks: Mapping[str, BlockTensor], act: str = "fp16", dense_is_weight: bool = False,
                 fp16_weights: bool = False):
        if act not in ACTS:
            raise QuantError(f"act: expected one of {', '.join(ACTS)}, got {act!r}")
        self.blocks, self.act, self.dense_is_weight = dict(blocks), act, dense_is_weight
        self.fp16_weights = fp16_weights
        self._dense: dict[str, np.ndarray] = {}

    def _a(self, x):
        return to_fp16(x) if self.act == "fp16" else x

    def dense(self, name: str, w):
        """The dequantized weight of layer ``name`` (cached)."""
        if self.dense_is_weight:
            return w
        if name not in self._dense:
            self._dense[name] = block_dequantize(self.blocks[name])
        return self._dense[name]

    def linear(self, name, x, w, b=None, act=None):
        t = self.blocks.get(name)
        x = self._a(x)
        if t is None:
            if self.fp16_weights:
                if name not in self._dense:
                    self._dense[name] = to_fp16(w)
                w = self._dense[name]
            return super().linear(name, x, w, b, act)
        if t.shape != tuple(w.shape):
            raise QuantError(f"layer {name}: block weight {list(t.shape)} does not match the graph's {list(w.shape)}")
        x2 = x.reshape(-1, x.shape[-1])
        y = block_matmul(x2, t) if len(x2) <= GEMV_ROWS else x2 @ self.dense(name, w).T
        if b is not None:
            y += b
        return ACTIVATIONS[act](y.reshape(x.shape[:-1] + (t.shape[0],)))

    def matmul(self, name, a, b):
        return super().matmul(name, self._a(a), self._a(b))
