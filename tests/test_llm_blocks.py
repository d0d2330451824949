"""Block-wise weight grids (accelsim/quant/blocks.py, accelsim/kernels/blockq.py): every kernel against a plain
numpy twin (bit for bit), and GGUF's Q4_0/Q4_1/Q8_0 against llama.cpp's own Python port (``gguf.quants``)."""
from __future__ import annotations

import numpy as np
import pytest

from accelsim.errors import QuantError
from accelsim.kernels import blockq as K
from accelsim.quant import blocks
from accelsim.quant.blocks import (GGUF_FORMATS, BlockFormat, BlockTensor, block_dequantize, block_matmul,
                                   block_quantize, decode_gguf, gguf_blocks, grid_codes)


def naive_quantize(x, fmt: BlockFormat):
    """One block at a time, float32 numpy, the rules of the module docstring."""
    n, k = x.shape
    b = fmt.block or k
    codes, ds, ms = np.zeros((n, k), np.int64), np.zeros((n, k // b), np.float32), np.zeros((n, k // b), np.float32)
    levels, half = 2 ** fmt.bits - 1, np.float32(2 ** (fmt.bits - 1))
    for r in range(n):
        for j in range(k // b):
            v = x[r, j * b:(j + 1) * b].astype(np.float32)
            if fmt.rule == "minmax":
                lo = v.min()
                d = (v.max() - lo) / np.float32(levels)
                inv = np.float32(0) if d == 0 else np.float32(1) / d
                q = np.clip(np.trunc((v - lo) * inv + np.float32(0.5)), 0, levels)
                ms[r, j] = lo
            elif fmt.rule == "signed_max":
                big = v[np.argmax(np.abs(v))]
                d = big / -half
                inv = np.float32(0) if d == 0 else np.float32(1) / d
                q = np.clip(np.trunc(v * inv + (half + np.float32(0.5))), 0, levels)
            else:
                d = np.abs(v).max() / (half - np.float32(1))
                inv = np.float32(0) if d == 0 else np.float32(1) / d
                a = np.abs(v * inv)                                   # roundf: half away from zero
                q = np.sign(v * inv) * (np.floor(a) + np.floor(np.float32(2) * (a - np.floor(a))))
            codes[r, j * b:(j + 1) * b], ds[r, j] = q, d
    return codes, ds, ms


def naive_dequantize(codes, d, m, fmt: BlockFormat):
    b = codes.shape[1] // d.shape[1]
    w = np.repeat(d.astype(np.float32), b, axis=1) * (codes.astype(np.float32) - np.float32(fmt.offset))
    return w + np.repeat(m.astype(np.float32), b, axis=1) if fmt.has_min else w


FORMATS = [*GGUF_FORMATS.values(), BlockFormat("w4g128", 4, 128, "minmax"), BlockFormat("w8row", 8, 0, "absmax"),
           BlockFormat("w4g64s", 4, 64, "signed_max"), BlockFormat("w3g32", 3, 32, "minmax")]


def _weights(rng, n=24, k=256):
    x = (rng.standard_normal((n, k)) * rng.uniform(0.01, 3, (n, 1))).astype(np.float32)
    x[0, :32], x[1, :32], x[2, 5] = 0, 2.5, -9.0          # an all-zero block, a constant block, an outlier
    return x


@pytest.mark.parametrize("fmt", FORMATS, ids=lambda f: f.name)
def test_quantize_and_dequantize_kernels_match_their_numpy_twins(fmt):
    x = _weights(np.random.default_rng(3))
    codes, d, m = naive_quantize(x, fmt)
    t = block_quantize(x, fmt)
    assert np.array_equal(t.codes, codes) and t.codes.dtype == fmt.code_dtype
    assert np.array_equal(t.d, d.astype(np.float16)) and np.array_equal(t.m, m.astype(np.float16))
    ours = block_dequantize(t)
    assert np.array_equal(ours.view(np.uint32), naive_dequantize(t.codes, t.d, t.m, fmt).view(np.uint32))
    err = np.abs(ours - x).max(axis=1)      # round to nearest on float16 grids: about a grid step at most
    assert np.all(err <= 1.2 * np.abs(t.d.astype(np.float32)).max(axis=1) + 2e-3 * np.abs(x).max(axis=1))


@pytest.mark.parametrize("name", sorted(GGUF_FORMATS))
def test_gguf_formats_are_llama_cpp_bit_for_bit(name):
    """Quantize with accelsim, dequantize with gguf, and the other way round: identical bytes and floats."""
    gguf = pytest.importorskip("gguf")
    q = gguf.GGMLQuantizationType[name.upper()]
    x = _weights(np.random.default_rng(4))
    raw = gguf.quants.quantize(x, q)
    ref = gguf.quants.dequantize(raw, q).reshape(x.shape).astype(np.float32)
    assert np.array_equal(decode_gguf(raw, name, x.shape).view(np.uint32), ref.view(np.uint32))
    assert np.array_equal(block_dequantize(block_quantize(x, GGUF_FORMATS[name])).view(np.uint32), ref.view(np.uint32))
    t = gguf_blocks(raw, name, x.shape)
    assert np.array_equal(t.codes, block_quantize(x, GGUF_FORMATS[name]).codes)


def test_unpack_nibbles_matches_its_twin():
    qs = np.random.default_rng(5).integers(0, 256, (9, 16), dtype=np.uint8)
    out = np.empty((9, 32), np.uint8)
    K.unpack_nibbles(qs, out)
    assert np.array_equal(out, np.concatenate([qs & 15, qs >> 4], axis=1))


KERNELS = {"rows": (1 << 40, 0), "columns": (1 << 40, 1 << 40), "parallel_rows": (0, 0)}
"""block_matmul's kernels, chosen by (PARALLEL_WEIGHTS, COLUMN_ROWS)."""


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("fmt", FORMATS[:5], ids=lambda f: f.name)
def test_block_matmul_is_the_gemm_of_the_dequantized_weights(fmt, kernel, monkeypatch):
    """The factored kernels (codes dotted with x per block, then scale and min) against their numpy twin: x times
    the dequantized matrix; row by row on one thread and split across threads, and on the transposed codes."""
    monkeypatch.setattr(blocks, "PARALLEL_WEIGHTS", KERNELS[kernel][0])
    monkeypatch.setattr(blocks, "COLUMN_ROWS", KERNELS[kernel][1])
    rng = np.random.default_rng(6)
    t = block_quantize(_weights(rng, n=300), fmt)
    w = block_dequantize(t)
    for rows in (1, 3, 17):
        x = rng.standard_normal((rows, 256)).astype(np.float32)
        bound = 256 * np.finfo(np.float32).eps * (np.abs(x) @ np.abs(w).T)    # float32 sums in any order
        assert np.all(np.abs(block_matmul(x, t) - x @ w.T) <= bound)


def test_parallel_block_gemm_splits_rows_without_changing_them():
    rng = np.random.default_rng(7)
    t = block_quantize(_weights(rng, n=301), GGUF_FORMATS["q4_1"])
    x = rng.standard_normal((2, 256)).astype(np.float32)
    args = (x, t.codes, t.d.astype(np.float32), t.m.astype(np.float32), 32, t.fmt.offset)
    one, split = np.empty((2, 301), np.float32), np.empty((2, 301), np.float32)
    K.block_gemm(*args, one)
    K.block_gemm_parallel(*args, split, 3)
    assert np.array_equal(one, split)


def test_storage_and_grid_codes():
    assert [GGUF_FORMATS[n].bits_per_weight(576) for n in ("q4_0", "q4_1", "q8_0")] == [4.5, 5.0, 8.5]
    assert BlockFormat("w8row", 8, 0, "absmax").bits_per_weight(576) == 8 + 16 / 576
    fmt = GGUF_FORMATS["q4_1"]
    w = np.array([[0.0, 0.74, 1.5, 9.0]], np.float32).T
    assert grid_codes(w, np.float32([[0.5]]).T, np.float32([[0.0]]).T, fmt).ravel().tolist() == [0, 1, 3, 15]


def test_bad_weights_are_quant_errors():
    with pytest.raises(QuantError, match="K = 100 is not a multiple of the block size 32"):
        block_quantize(np.zeros((2, 100), np.float32), GGUF_FORMATS["q4_0"])
    with pytest.raises(QuantError, match="NaN or Inf"):
        block_quantize(np.full((1, 32), np.nan, np.float32), GGUF_FORMATS["q8_0"])
    with pytest.raises(QuantError, match="rule must be one of"):
        BlockFormat("x", 4, 32, "nearest")
    t = block_quantize(np.ones((2, 32), np.float32), GGUF_FORMATS["q8_0"])
    with pytest.raises(QuantError, match="does not fit"):
        block_matmul(np.ones((1, 16), np.float32), t)
    assert isinstance(t, BlockTensor) and t.nbytes == 2 * 32 * 8.5 / 8
