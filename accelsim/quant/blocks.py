"""Block-wise weight grids: a block size along K with a float16 scale (and min) per block — GGUF's Q4_0, Q4_1 and
Q8_0 exactly, and the same rules at any bit width and block size (per-group W4, per-channel W8 = one block per
row) for weight-only quantization (W4A16 / W8A16).

A weight ``w [N, K]`` (``[out, in]``, K the reduction axis) is quantized row by row in blocks of ``block``
(``block = 0``: the whole row, i.e. per output channel). The rules and their float32 arithmetic are ggml's
(:mod:`accelsim.kernels.blockq`):

=============  ==========  ==================================  ==========================
format         rule        grid of a block                     value of code q
=============  ==========  ==================================  ==========================
``q4_0``       signed_max  ``d = max / −8`` (max keeps sign)   ``d·(q − 8)``, q ∈ [0, 15]
``q4_1``       minmax      ``d = (max − min)/15``, ``m = min``  ``d·q + m``, q ∈ [0, 15]
``q8_0``       absmax      ``d = max|x| / 127``                ``q·d``, q ∈ [−127, 127]
=============  ==========  ==================================  ==========================

``d`` and ``m`` are stored as float16 (codes are computed from the float32 ``d``, as ggml does) and
dequantization uses the stored values, so :func:`block_quantize` then :func:`block_dequantize` is what a GGUF
file of that format holds. :func:`decode_gguf` turns a GGUF tensor's raw blocks into float32, bit for bit as
``gguf.quants.dequantize``. Storage: ``bits`` per weight plus 16 bits of scale (and 16 of min) per block.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numba
import numpy as np

from ..errors import QuantError
from ..kernels import blockq as _k

RULES = {"signed_max": _k.RULE_SIGNED_MAX, "minmax": _k.RULE_MINMAX, "absmax": _k.RULE_ABSMAX}


@dataclass(frozen=True, slots=True)
class BlockFormat:
    """A block grid: ``bits`` per code, ``block`` weights per scale along K (0 = one block per row) and the rule
    (module docstring)."""
    name: str
    bits: int
    block: int
    rule: str

    def __post_init__(self):
        if self.rule not in RULES:
            raise QuantError(f"block format {self.name}: rule must be one of {', '.join(RULES)}, got {self.rule!r}")
        if not 2 <= self.bits <= 8 or self.block < 0:
            raise QuantError(f"block format {self.name}: bits in [2, 8] and block ≥ 0, got {self.bits}, {self.block}")

    @property
    def has_min(self) -> bool:
        return self.rule == "minmax"

    @property
    def offset(self) -> int:
        """What dequantization subtracts from a code (the unsigned rules' zero)."""
        return 1 << (self.bits - 1) if self.rule == "signed_max" else 0

    @property
    def code_dtype(self) -> type:
        """How codes are held: int8 for the signed ``absmax`` rule, uint8 otherwise."""
        return np.int8 if self.rule == "absmax" else np.uint8

    def block_size(self, k: int) -> int:
        return self.block or k

    def bits_per_weight(self, k: int) -> float:
        """Storage per weight of a row of ``k``: the code plus the float16 scale (and min) of its block."""
        return self.bits + 16 * (1 + self.has_min) / self.block_size(k)

    def with_block(self, block: int) -> BlockFormat:
        return BlockFormat(f"{self.name}/{block or 'row'}", self.bits, block, self.rule)


GGUF_FORMATS = {
    "q4_0": BlockFormat("q4_0", 4, 32, "signed_max"),
    "q4_1": BlockFormat("q4_1", 4, 32, "minmax"),
    "q8_0": BlockFormat("q8_0", 8, 32, "absmax"),
}
"""GGUF's block formats by their ggml names."""


@dataclass(frozen=True, slots=True)
class BlockTensor:
    """A block-quantized ``[N, K]`` weight: ``codes`` ([N, K], :attr:`BlockFormat.code_dtype`), ``d`` and ``m``
    (float16, [N, K/block]; ``m`` zeros for the rules without a min)."""
    codes: np.ndarray
    d: np.ndarray
    m: np.ndarray
    fmt: BlockFormat

    @property
    def shape(self) -> tuple[int, int]:
        return self.codes.shape

    @property
    def nbytes(self) -> float:
        """Bytes as stored: packed codes plus float16 scales (and mins)."""
        n, k = self.shape
        return n * k * self.fmt.bits_per_weight(k) / 8


def _rows(w, fmt: BlockFormat) -> tuple[np.ndarray, int]:
    w = np.asarray(w)
    if w.ndim != 2 or w.dtype.kind != "f":
        raise QuantError(f"block quantization takes a float [N, K] weight, got {w.dtype} {list(w.shape)}")
    block = fmt.block_size(w.shape[1])
    if w.shape[1] % block:
        raise QuantError(f"{fmt.name}: K = {w.shape[1]} is not a multiple of the block size {block}")
    if not np.isfinite(w).all():
        raise QuantError(f"{fmt.name}: the weight holds NaN or Inf")
    return np.ascontiguousarray(w, np.float32), block


def block_quantize(w, fmt: BlockFormat) -> BlockTensor:
    """Round-to-nearest block quantization of ``w [N, K]`` on ``fmt`` (module docstring)."""
    x, block = _rows(w, fmt)
    n, k = x.shape
    codes = np.empty((n, k), np.int32)
    d = np.empty((n, k // block), np.float32)
    m = np.empty_like(d)
    _k.quantize_blocks(x, block, RULES[fmt.rule], fmt.bits, codes, d, m)
    return BlockTensor(codes.astype(fmt.code_dtype), d.astype(np.float16), m.astype(np.float16), fmt)


def block_dequantize(t: BlockTensor) -> np.ndarray:
    """``float32 [N, K]`` of a :class:`BlockTensor`: ``d·(q − offset)`` (``+ m``) with the stored float16 d, m."""
    n, k = t.shape
    out = np.empty((n, k), np.float32)
    _k.dequantize_blocks(np.ascontiguousarray(t.codes), t.d.astype(np.float32), t.m.astype(np.float32),
                         t.fmt.block_size(k), t.fmt.offset, t.fmt.has_min, out)
    return out


def _grids(t: BlockTensor) -> tuple[np.ndarray, ...]:
    """``d``, ``m`` as float32 and, for weights of at most :data:`COLUMN_ROWS` rows, ``codesᵀ``, ``dᵀ``, ``mᵀ``
    (contiguous; :func:`accelsim.kernels.blockq.block_gemm_columns`): cached per tensor object, as a decoder
    multiplies by the same weights every token."""
    key = id(t)
    hit = _GRIDS.get(key)
    if hit is None or hit[0] is not t:
        while len(_GRIDS) >= 1024:
            _GRIDS.pop(next(iter(_GRIDS)))
        d, m = t.d.astype(np.float32), t.m.astype(np.float32)
        cols = tuple(np.ascontiguousarray(a.T) for a in (t.codes, d, m)) if t.shape[0] <= COLUMN_ROWS else ()
        hit = _GRIDS[key] = (t, d, m, *cols)
    return hit[1:]


_GRIDS: dict = {}

PARALLEL_WEIGHTS = 1 << 22
""":func:`block_matmul` splits a weight of at least this many elements across the cores (one chunk per thread):
a tied LM head (SmolLM2: 49152 × 576, 2.6 → 1.4 ms a token on 2 cores). Smaller ones run on one thread: waking the
sleeping worker threads costs about as much as it saves on a 1536 × 576 FFN weight (a call of 40–80 µs)."""

COLUMN_ROWS = 4096
"""Weights of at most this many rows (outputs) run :func:`accelsim.kernels.blockq.block_gemm_columns` on their
transposed codes (its per-output sums, 4 bytes each, stay in L1): ≈ 2× the rate of the row kernel here (1536 × 576
Q4_1: 41 vs 78 µs), which needs a horizontal sum per block of 32. A copy of the codes is kept for it."""


def block_matmul(x: np.ndarray, t: BlockTensor) -> np.ndarray:
    """``x [M, K] @ wᵀ`` with ``w`` the dequantized ``t`` ``[N, K]``, float32, for a few rows ``x`` (a decode step):
    per block, the dot of x with the codes times the scale, plus the min term
    (:func:`accelsim.kernels.blockq.block_gemm`, or :func:`~accelsim.kernels.blockq.block_gemm_columns` for up to
    :data:`COLUMN_ROWS` outputs), so the weights stream from memory as their codes (a byte per weight, plus the
    grids) instead of 4-byte floats, and are never dequantized one by one. The sums are float32 in the compiler's
    order (as any BLAS); weights of :data:`PARALLEL_WEIGHTS` or more run the row kernel on every core."""
    n, k = t.shape
    x = np.ascontiguousarray(x, np.float32)
    if x.ndim != 2 or x.shape[1] != k:
        raise QuantError(f"block_matmul: x {list(x.shape)} does not fit a [{n}, {k}] weight (expected [M, {k}])")
    d, m, *cols = _grids(t)
    out = np.empty((x.shape[0], n), np.float32)
    block, offset = t.fmt.block_size(k), t.fmt.offset
    threads = numba.get_num_threads() if n * k >= PARALLEL_WEIGHTS else 1
    if threads > 1:
        _k.block_gemm_parallel(x, np.ascontiguousarray(t.codes), d, m, block, offset, out, threads)
    elif cols:
        _k.block_gemm_columns(x, *cols, block, offset, out)
    else:
        _k.block_gemm(x, np.ascontiguousarray(t.codes), d, m, block, offset, out)
    return out


def grid_codes(w: np.ndarray, d: np.ndarray, m: np.ndarray, fmt: BlockFormat) -> np.ndarray:
    """Codes of ``w [N, b]`` (one block column) on a given float32 grid ``d``, ``m`` ``[N, 1]``: round half to
    even of ``(w − m)/d + offset``, clamped to the code range (0 where ``d = 0``) — the step error-feedback
    methods (:mod:`accelsim.quant.gptq`) take column by column."""
    half = 1 << (fmt.bits - 1)
    lo, hi = (1 - half, half - 1) if fmt.rule == "absmax" else (0, 2 * half - 1)
    safe = np.where(d == 0, 1, d)
    q = np.rint((w - m) / safe) + fmt.offset
    return np.where(d == 0, fmt.offset, np.clip(q, lo, hi)).astype(np.int32)


# ---- GGUF raw blocks ---------------------------------------------------------------------------------------

_GGUF_BYTES = {"q4_0": 18, "q4_1": 20, "q8_0": 34}   # per block of 32: float16 d (+ m), then the codes


def gguf_blocks(raw: np.ndarray, fmt_name: str, shape: tuple[int, ...]) -> BlockTensor:
    """A ``q4_0``/``q4_1``/``q8_0`` GGUF tensor's raw blocks as a :class:`BlockTensor` of ``[rows, K]`` (``shape``
    in numpy order, K last): the float16 ``d`` (and ``m``) of each block and its codes (4-bit codes unpacked)."""
    fmt, size = GGUF_FORMATS[fmt_name], _GGUF_BYTES[fmt_name]
    blocks = np.ascontiguousarray(raw).view(np.uint8).reshape(-1, size)
    if blocks.shape[0] * fmt.block != math.prod(shape) or shape[-1] % fmt.block:
        raise QuantError(f"{fmt_name}: {blocks.shape[0]} blocks do not hold a tensor of shape {list(shape)}")
    d = blocks[:, :2].copy().view(np.float16)
    head = 4 if fmt.has_min else 2
    m = blocks[:, 2:4].copy().view(np.float16) if fmt.has_min else np.zeros_like(d)
    if fmt.bits == 4:
        codes = np.empty((blocks.shape[0], fmt.block), np.uint8)
        _k.unpack_nibbles(np.ascontiguousarray(blocks[:, head:]), codes)
    else:
        codes = blocks[:, head:].copy().view(np.int8)
    rows, nb = math.prod(shape[:-1]), shape[-1] // fmt.block
    return BlockTensor(codes.reshape(rows, shape[-1]), d.reshape(rows, nb), m.reshape(rows, nb), fmt)


def decode_gguf(raw: np.ndarray, fmt_name: str, shape: tuple[int, ...]) -> np.ndarray:
    """A GGUF tensor's data → float32 of ``shape`` (numpy order, K last): ``f32`` as is, ``f16`` widened, and
    ``q4_0``/``q4_1``/``q8_0`` blocks (:func:`gguf_blocks`) dequantized exactly as ``gguf.quants.dequantize``."""
    if fmt_name == "f32":
        return np.ascontiguousarray(raw).view(np.float32).reshape(shape)
    if fmt_name == "f16":
        return np.ascontiguousarray(raw).view(np.float16).astype(np.float32).reshape(shape)
    return block_dequantize(gguf_blocks(raw, fmt_name, shape)).reshape(shape)
