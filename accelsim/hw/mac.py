"""Bit-flexible MAC throughput (Bit Fusion, ISCA 2018; DESIGN §5.2) and operand precisions.

A PE built for ``B``-bit integer operands performs ``(B / a_bits) · (B / w_bits)`` MACs per cycle on
narrower operands (8-bit PE: INT4×INT4 → 4, INT4 weights × INT8 activations → 2). Float modes run at the
rate the hw config declares (``pe.float_macs_per_cycle``). On the array this packs ``f`` reduction-dimension
(K) elements into one PE per cycle, so a GEMM runs as if its reduction length were ``K' = ceil(K / f)``;
for ``f < 1`` one MAC spreads over ``1/f`` PE-cycles. The array's shape never changes.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from ..errors import MappingError

_INT = re.compile(r"^w(\d+)a(\d+)$")
_WEIGHT_ONLY = re.compile(r"^w([48])a16(?:g(\d+))?$")   # wXa16 with X in 4, 8 (w16a16 stays an integer mode)
FLOAT_MODES = ("fp32", "fp16", "bf16")
FLOAT_BYTES = {"fp32": 4, "fp16": 2, "bf16": 2}
#: GGUF block formats (llama.cpp ggml-common.h): weight bits, block size along K, bytes of scale (+ min) per block
BLOCK_FORMATS = {"q4_0": (4, 32, 2.0), "q4_1": (4, 32, 4.0), "q8_0": (8, 32, 2.0)}


@dataclass(frozen=True, slots=True)
class Precision:
    """Operand precision of a layer: integer ``w{w_bits}a{a_bits}``, a float mode, or weight-only.

    Weight-only (``weight_only``): weights stored as ``w_bits``-bit integers, dequantized on the way into the
    PEs, activations and MACs in ``float_mode`` (FP16): ``w8a16``/``w4a16`` (one FP16 scale per output channel),
    ``w4a16g128`` (per group of 128 along K, an FP16 scale and zero each), ``q4_0``/``q4_1``/``q8_0`` (GGUF blocks
    of 32 along K). ``group`` is the block size along K (0: per channel) and ``group_bytes`` the scale (and
    min/zero) bytes each block adds."""
    name: str
    w_bits: int
    a_bits: int
    float_mode: str | None = None
    weight_only: bool = False
    group: int = 0
    group_bytes: float = 0.0

    @property
    def is_float(self) -> bool:
        """A float model: nothing is quantized (weight-only precisions quantize their weights)."""
        return self.float_mode is not None and not self.weight_only

    @property
    def act_bytes(self) -> float:
        """Bytes per activation element (INT4 packs two per byte)."""
        return FLOAT_BYTES[self.float_mode] if self.float_mode else self.a_bits / 8

    @property
    def weight_bytes(self) -> float:
        """Bytes per weight element (INT4 packs two per byte), with a block's scale/min bytes spread over it."""
        if self.weight_only:
            return self.w_bits / 8 + (self.group_bytes / self.group if self.group else 0.0)
        return FLOAT_BYTES[self.float_mode] if self.float_mode else self.w_bits / 8

    @property
    def wide_bytes(self) -> int:
        """Bytes of the parameters kept wide in a quantized model (biases, norm scales): int32, or the float mode."""
        return FLOAT_BYTES[self.float_mode] if self.float_mode else 4


def parse_precision(name: str) -> Precision:
    """``fp32 | fp16 | bf16 | w8a8 | w4a8 | w4a4 | w2a2 | int8`` and the weight-only ``w8a16 | w4a16 | w4a16g128 |
    q4_0 | q4_1 | q8_0`` → Precision; MappingError otherwise."""
    key = str(name).strip().lower()
    if key in FLOAT_MODES:
        bits = 8 * FLOAT_BYTES[key]
        return Precision(key, bits, bits, key)
    if key in BLOCK_FORMATS:
        bits, block, extra = BLOCK_FORMATS[key]
        return Precision(key, bits, 16, "fp16", True, block, extra)
    if key in ("int8", "int4"):
        key = f"w{key[3:]}a{key[3:]}"
    only = _WEIGHT_ONLY.match(key)
    if only:
        bits, group = int(only.group(1)), int(only.group(2) or 0)
        if only.group(2) is not None and not 1 <= group <= 1 << 20:
            raise MappingError(f"unknown precision {name!r}: weight-only precisions are w8a16, w4a16 or w4a16gN "
                               f"(N ≥ 1: the group size along K), or q4_0, q4_1, q8_0")
        return Precision(key, bits, 16, "fp16", True, group, 4.0 if group else 0.0)
    match = _INT.match(key)
    if not match or not all(2 <= int(b) <= 16 for b in match.groups()):
        raise MappingError(f"unknown precision {name!r}: expected fp32, fp16, bf16, wXaY with 2 ≤ X, Y ≤ 16 "
                           "(e.g. w8a8, w4a8, w4a4), weight-only w8a16, w4a16, w4a16gN or q4_0, q4_1, q8_0")
    return Precision(key, int(match.group(1)), int(match.group(2)))


def macs_per_pe_cycle(pe, precision: Precision, b_is_weight: bool = True) -> float:
    """MACs one PE completes per cycle at this precision; MappingError if the PE cannot run it.

    Integer: ``(B / a_bits) · (B / b_bits)`` where ``b_bits`` is the weight width (or the activation width
    when the second operand is an activation, e.g. attention's QKᵀ). Float and weight-only (dequantized
    weights meet FP16 activations): the configured rate of the float mode.
    """
    if precision.float_mode:      # float models, and weight-only precisions (MACs in the float mode)
        rate = pe.float_macs_per_cycle.get(precision.float_mode)
        if rate is None:
            supported = ", ".join(pe.float_macs_per_cycle) or "none"
            raise MappingError(f"precision {precision.name} is not supported by this PE "
                               f"(pe.float_macs_per_cycle lists: {supported})")
        return rate if hasattr(rate, "shape") else float(rate)    # an array over configurations in a sweep
    b_bits = precision.w_bits if b_is_weight else precision.a_bits
    for bits in (precision.a_bits, b_bits):
        if bits > pe.base_bits:
            raise MappingError(f"precision {precision.name}: {bits}-bit operands exceed the PE's base width "
                               f"pe.base_bits = {pe.base_bits}")
        if bits not in pe.int_bits:
            raise MappingError(f"precision {precision.name}: {bits}-bit operands are not supported by the PE "
                               f"(pe.int_bits = {list(pe.int_bits)})")
    return (pe.base_bits // precision.a_bits) * (pe.base_bits // b_bits)
