"""Re-quantizing a decoded GGUF model: what ``accelsim generate|infer|eval --precision P`` runs, and the rows of
the accuracy experiment.

Precision names are the cost model's (:func:`accelsim.hw.mac.parse_precision`), so one name means one thing.
Every scheme quantizes the 210 ``linear`` layers of the decoder blocks (q, k, v, attention output, gate, up,
down) and keeps the output projection as the file decoded it (it is the token embedding, Q8_0 in the file):

* **weight-only** (FP16 activations at every GEMM input, :class:`accelsim.nn.qweight.BlockOps`):
  ``w8a16``/``w4a16`` — one float16 scale per output channel, symmetric (``absmax`` rule, one block per row);
  ``w4a16gN``/``w8a16gN`` — per group of N along K with a float16 scale and min (``minmax``, ggml Q4_1's rule);
  ``q4_0``/``q4_1``/``q8_0`` — GGUF's block-32 formats (``q4_1`` reproduces the file: its blocks are the file's).
  ``method``: round to nearest (``rtn``: ggml's rules, :func:`accelsim.quant.blocks.block_quantize`) or GPTQ
  (``gptq``: :func:`accelsim.quant.gptq.gptq_quantize`, Hessians from calibration text). ``layers`` maps globs
  of layer names to other weight-only precisions (first match wins): e.g. the "mixed" row of the accuracy
  table, W4 with the value and FFN-down projections at W8 (where llama.cpp's ``Q4_K_M`` spends its extra bits);
* **FP16** ``fp16``: weights and GEMM inputs rounded to float16, float32 sums;
* **integer** ``wXaY`` (``w8a8``): per-channel symmetric weights and per-tensor asymmetric activations with
  MinMax ranges calibrated on text, bit-exact integer GEMMs (:class:`accelsim.nn.qexec.QuantOps`; attention's
  two matmuls quantize both operands).

Calibration text is :func:`accelsim.llm.corpus.lee_windows` (the calibration documents).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from fnmatch import fnmatchcase

import numpy as np

from ..errors import AccelsimError, short
from ..hw.mac import parse_precision
from ..nn import decode
from ..nn.qexec import FloatOps
from ..quant.blocks import GGUF_FORMATS, BlockFormat, block_quantize

METHODS = ("rtn", "gptq")


def weight_format(precision: str) -> BlockFormat:
    """The block grid of a weight-only precision name (module docstring); AccelsimError for any other name."""
    key = str(precision).strip().lower()
    if key in GGUF_FORMATS:
        return GGUF_FORMATS[key]
    p = parse_precision(key)
    if not p.weight_only:
        raise AccelsimError(f"precision {short(precision)!r} is not weight-only (w8a16, w4a16, w4a16gN, q4_0, ...)")
    return BlockFormat(key, p.w_bits, p.group, "minmax" if p.group else "absmax")


@dataclass(frozen=True, slots=True)
class WeightOnly:
    """Linear weights on ``fmt`` (``overrides``: ``(glob, format)`` pairs, first match wins) by ``method``."""
    fmt: BlockFormat
    method: str = "rtn"
    overrides: tuple = field(default=())

    def format_for(self, name: str) -> BlockFormat:
        return next((f for pattern, f in self.overrides if fnmatchcase(name, pattern)), self.fmt)


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


def integer_ops(gm, w_bits: int, a_bits: int, calib_ids: np.ndarray | None = None, calib: str = "minmax"):
    """Bit-exact integer execution with activation ranges calibrated on text (module docstring)."""
    from ..nn.qexec import Calibrator, QuantOps, QuantScheme
    cal = Calibrator(QuantScheme(w_bits, a_bits, per_channel=True, calib=calib, float_layers=frozenset({"token_embd"})))
    ids = calibration_ids(gm) if calib_ids is None else calib_ids
    _run_all(gm, cal, ids)
    cal.samples = len(ids)
    return QuantOps(cal.plan(), "int", measure=False)


def scheme(precision: str, method: str = "rtn", layers: dict | None = None) -> WeightOnly:
    """The weight-only scheme of a precision name, a method and per-layer overrides (module docstring)."""
    if method not in METHODS:
        raise AccelsimError(f"weight method {short(method)!r}: expected one of {', '.join(METHODS)}")
    return WeightOnly(weight_format(precision), method,
                      tuple((glob, weight_format(p)) for glob, p in dict(layers or {}).items()))


def precision_ops(gm, precision: str, method: str = "rtn", layers: dict | None = None, calib: str = "minmax",
                  calib_ids: np.ndarray | None = None, progress=None):
    """The executor mode of a precision name for a decoder (module docstring; ``fp32`` is
    :func:`accelsim.llm.run.qops_for`'s)."""
    from ..nn.qweight import BlockOps
    p = parse_precision(precision)
    if p.is_float:
        if p.name != "fp16":
            raise AccelsimError(f"precision {p.name}: a decoder runs fp32, fp16, weight-only or integer precisions")
        return BlockOps({}, act="fp16", fp16_weights=True)
    if not p.weight_only:
        if method != "rtn" or layers:
            raise AccelsimError(f"precision {p.name}: GPTQ and per-layer weight formats apply to weight-only "
                                "precisions")
        return integer_ops(gm, p.w_bits, p.a_bits, calib_ids, calib)
    return BlockOps(quantize_weights(gm, scheme(precision, method, layers), calib_ids, progress), act="fp16")


def bits_per_weight(gm, precision: str, method: str = "rtn", layers: dict | None = None) -> float:
    """Average stored bits per weight of the quantized layers: codes plus float16 scales/mins; integer wXaY a
    float32 scale per channel; fp32 32 and fp16 16."""
    w = gm.weights()
    names = linear_layers(gm)
    shapes = [w[f"{n}.weight"].shape for n in names]
    total = sum(a * b for a, b in shapes)
    p = parse_precision(precision)
    if p.is_float:
        return float(8 * {"fp32": 4, "fp16": 2, "bf16": 2}[p.name])
    if not p.weight_only:
        return sum(a * b * (p.w_bits + 32 / b) for a, b in shapes) / total
    sch = scheme(precision, method, layers)
    return sum(a * b * sch.format_for(n).bits_per_weight(b) for n, (a, b) in zip(names, shapes)) / total
