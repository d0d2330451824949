"""Re-quantizing a decoded GGUF model: the precisions ``accelsim generate|infer --precision`` and the accuracy
experiment run (:data:`PRECISIONS`).

Every scheme quantizes the 210 ``linear`` layers of the decoder blocks (q, k, v, attention output, gate, up,
down) and keeps the output projection as the file decoded it (it is the token embedding, Q8_0 in the file):

* **weight-only** (:class:`WeightOnly`, activations rounded to FP16 at every GEMM input,
  :class:`accelsim.nn.qweight.BlockOps`): W8A16 per output channel (one ``absmax`` block per row), W4A16 per
  group of 64 along K with a scale and a min per group (``minmax``; 64 divides SmolLM2's K of 576 and 1536,
  the usual 128 does not), by round to
  nearest (RTN: ggml's rules, :func:`accelsim.quant.blocks.block_quantize`) or by GPTQ
  (:func:`accelsim.quant.gptq.gptq_quantize`, Hessians from calibration text); ``mixed`` is W4 GPTQ with the
  value and FFN-down projections at W8 (llama.cpp's ``Q4_K_M`` spends its extra bits on those two);
  ``q4_0``/``q4_1``/``q8_0`` are GGUF's own block-32 formats by RTN (``q4_1`` reproduces the file exactly:
  its blocks are the file's);
* **integer** ``w8a8``: INT8 per-channel symmetric weights and INT8 per-tensor asymmetric activations with
  MinMax ranges calibrated on text, bit-exact integer GEMMs (:class:`accelsim.nn.qexec.QuantOps`; attention's
  two matmuls quantize both operands).

Calibration text is :func:`accelsim.llm.corpus.lee_windows` (the calibration documents).
"""
from __future__ import annotations

from dataclasses import dataclass
from fnmatch import fnmatchcase

import numpy as np

from ..errors import AccelsimError, short
from ..nn import decode
from ..nn.qexec import FloatOps
from ..quant.blocks import GGUF_FORMATS, BlockFormat, block_quantize

W4G64 = BlockFormat("w4g64", 4, 64, "minmax")
W8ROW = BlockFormat("w8row", 8, 0, "absmax")


@dataclass(frozen=True, slots=True)
class WeightOnly:
    """Linear weights on ``fmt`` (``overrides``: ``(glob, format)`` pairs, first match wins) by ``method``
    (``rtn`` or ``gptq``), FP16 activations."""
    fmt: BlockFormat
    method: str = "rtn"
    overrides: tuple = ()

    def format_for(self, name: str) -> BlockFormat:
        return next((f for pattern, f in self.overrides if fnmatchcase(name, pattern)), self.fmt)


PRECISIONS = {
    "w8a16": WeightOnly(W8ROW),
    "w4a16": WeightOnly(W4G64),
    "w4a16-gptq": WeightOnly(W4G64, "gptq"),
    "mixed": WeightOnly(W4G64, "gptq", (("*.attn_v", W8ROW), ("*.ffn_down", W8ROW))),
    "q4_0": WeightOnly(GGUF_FORMATS["q4_0"]),
    "q4_1": WeightOnly(GGUF_FORMATS["q4_1"]),
    "q8_0": WeightOnly(GGUF_FORMATS["q8_0"]),
    "w8a8": None,            # integer: accelsim.nn.qexec (calibrated activations)
}
"""Precision name → scheme (module docstring); ``fp32`` (the decoded model) is :func:`accelsim.llm.run.qops_for`."""

CALIB_WINDOWS, CALIB_LENGTH = 16, 256


def linear_layers(gm) -> list[str]:
    """Quantization names of the quantized layers: every ``linear`` of the graph (not the tied output)."""
    return [layer.weight for layer in gm.graph(logits="all").layers if layer.op == "linear"]


class HessianCollector(FloatOps):
    """FP32 forward that accumulates GPTQ's ``H = 2·XᵀX`` of every linear layer's input (layers reading the same
    tensor — q/k/v, gate/up — share one)."""
    mode = "calibrate"

    def __init__(self, names):
        from ..quant.gptq import HessianStats
        self.names, self.stats, self._last = set(names), {}, (None, None)
        self._new = HessianStats

    def linear(self, name, x, w, b=None, act=None):
        if name in self.names:
            last_x, stats = self._last
            if last_x is not x:
                stats = self.stats.get(name) or self._new(x.shape[-1])
                stats.add(x)
                self._last = (x, stats)
            self.stats[name] = stats
        return super().linear(name, x, w, b, act)


def calibration_ids(gm, windows: int = CALIB_WINDOWS, length: int = CALIB_LENGTH) -> np.ndarray:
    from .corpus import lee_windows
    return lee_windows(gm.tokenizer(), length, windows, calibration=True)


def _run_all(gm, qops, ids: np.ndarray, batch: int = 4) -> None:
    graph, w = gm.graph(logits="all"), gm.weights()
    for i in range(0, len(ids), batch):
        decode.forward(graph, w, ids[i:i + batch], None, qops)


def quantize_weights(gm, scheme: WeightOnly, calib_ids: np.ndarray | None = None, progress=None) -> dict:
    """``{layer name: BlockTensor}`` of every linear layer on the scheme's formats (GPTQ: Hessians from
    ``calib_ids``, default :func:`calibration_ids`)."""
    names, w = linear_layers(gm), gm.weights()
    if scheme.method == "rtn":
        return {n: block_quantize(w[f"{n}.weight"], scheme.format_for(n)) for n in names}
    from ..nn.train import blas_threads
    from ..quant.gptq import gptq_quantize, inverse_factor
    collector = HessianCollector(names)
    _run_all(gm, collector, calibration_ids(gm) if calib_ids is None else calib_ids)
    out, factors = {}, {}
    with blas_threads(1):          # many small factorizations and updates: one thread is faster on shared cores
        for i, n in enumerate(names):
            if progress:
                progress(f"gptq {i + 1}/{len(names)}: {n}")
            stats = collector.stats[n]
            if id(stats) not in factors:
                factors = {id(stats): inverse_factor(stats.h)}
            out[n] = gptq_quantize(w[f"{n}.weight"], factors[id(stats)], scheme.format_for(n))
    return out


def w8a8_ops(gm, calib_ids: np.ndarray | None = None, calib: str = "minmax"):
    """Bit-exact INT8 execution with activation ranges calibrated on text (module docstring)."""
    from ..nn.qexec import Calibrator, QuantOps, QuantScheme
    scheme = QuantScheme(8, 8, per_channel=True, calib=calib, float_layers=frozenset({"token_embd"}))
    cal = Calibrator(scheme)
    ids = calibration_ids(gm) if calib_ids is None else calib_ids
    _run_all(gm, cal, ids)
    cal.samples = len(ids)
    return QuantOps(cal.plan(), "int", measure=False)


def precision_ops(gm, precision: str, calib: str = "minmax", calib_ids: np.ndarray | None = None, progress=None):
    """The executor mode of a :data:`PRECISIONS` name."""
    key = str(precision).strip().lower()
    if key not in PRECISIONS:
        raise AccelsimError(f"precision {short(precision)!r} is not one a decoder runs: expected fp32, "
                            f"{', '.join(PRECISIONS)}")
    if key == "w8a8":
        return w8a8_ops(gm, calib_ids, calib)
    from ..nn.qweight import BlockOps
    return BlockOps(quantize_weights(gm, PRECISIONS[key], calib_ids, progress), act="fp16")


def bits_per_weight(gm, precision: str) -> float:
    """Average stored bits per weight of the quantized layers (codes plus float16 scales/mins; W8A8: a float32
    scale per channel; fp32: 32)."""
    w = gm.weights()
    shapes = [w[f"{n}.weight"].shape for n in linear_layers(gm)]
    total = sum(a * b for a, b in shapes)
    if precision == "fp32":
        return 32.0
    if precision == "w8a8":
        return sum(a * b * (8 + 32 / b) for a, b in shapes) / total
    scheme = PRECISIONS[precision]
    return sum(a * b * scheme.format_for(n).bits_per_weight(b) for n, (a, b) in zip(linear_layers(gm), shapes)) / total
