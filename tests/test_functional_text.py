"""Transformer numerics of accelsim.ops.functional and the masked-attention graph ops, against float64
references (scipy only in tests)."""
from __future__ import annotations

import numpy as np
import pytest
import scipy.special

from accelsim.errors import AccelsimError
from accelsim.graph import Model
from accelsim.ops import functional as ops
from accelsim.nn.graph_exec import run_graph

RNG = np.random.default_rng(0)


def test_erf_max_abs_error_below_1e7():
    x = np.concatenate([np.linspace(-10, 10, 2_000_001), RNG.standard_normal(100_000) * 3, [0.0, 4.0, -4.0]])
    err = np.abs(ops.erf(x) - scipy.special.erf(x))
    assert err.max() <= 1e-7
    x32 = x.astype(np.float32)
    e32 = ops.erf(x32)
    assert e32.dtype == np.float32
    assert np.abs(e32.astype(np.float64) - scipy.special.erf(x32.astype(np.float64))).max() <= 1.2e-7
    np.testing.assert_array_equal(ops.erf(-x), -ops.erf(x))
    assert ops.erf(np.array([1, 2])).dtype == np.float64


def test_gelu_exact_erf_form():
    x = (RNG.standard_normal((37, 1536)) * 4).astype(np.float32)
    ref = x.astype(np.float64) * 0.5 * (1 + scipy.special.erf(x.astype(np.float64) / np.sqrt(2)))
    y = ops.gelu(x)
    assert y.dtype == np.float32 and y.shape == x.shape
    # erf's abs error ≤ 1e-7 scales with |x|/2 (as in torch's float32 x·½·(1 + erf)), plus float32 rounding
    assert np.all(np.abs(y - ref) <= 1e-7 * np.maximum(np.abs(x), 1.0) + 1.2e-7 * np.abs(ref))
    # not the tanh approximation: they differ by ~1e-4 around |x| ≈ 2
    tanh = 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x**3)))
    assert np.abs(y - tanh).max() > 1e-5


def test_softmax_stable_and_normalized():
    x = np.array([[1000.0, 1000.0, -1000.0], [1.0, 2.0, 3.0]], dtype=np.float32)
    p = ops.softmax(x)
    np.testing.assert_allclose(p.sum(-1), 1.0, rtol=1e-6)
    np.testing.assert_allclose(p[0], [0.5, 0.5, 0.0])
    np.testing.assert_allclose(p[1], np.exp([1, 2, 3]) / np.exp([1, 2, 3]).sum(), rtol=1e-6)


def test_layer_norm_and_linear_match_float64():
    x = RNG.standard_normal((11, 384)).astype(np.float32) * 3 + 1
    g, b = RNG.standard_normal(384).astype(np.float32), RNG.standard_normal(384).astype(np.float32)
    x64 = x.astype(np.float64)
    ref = (x64 - x64.mean(-1, keepdims=True)) / np.sqrt(x64.var(-1, keepdims=True) + 1e-12) * g + b
    np.testing.assert_allclose(ops.layer_norm(x, g, b, 1e-12), ref, rtol=1e-5, atol=1e-5)
    w, bias = RNG.standard_normal((96, 384)).astype(np.float32), RNG.standard_normal(96).astype(np.float32)
    x3 = x.reshape(1, 11, 384)
    y = ops.linear(x3, w, bias)
    assert y.shape == (1, 11, 96)
    np.testing.assert_allclose(y[0], x64 @ w.T.astype(np.float64) + bias, rtol=1e-4, atol=1e-4)
    with pytest.raises(AccelsimError, match="does not fit weight"):
        ops.linear(x, w.T)
    with pytest.raises(AccelsimError, match="bias shape"):
        ops.linear(x, w, bias[:3])


def _attention_reference(q, k, v, mask, heads):
    """Per-(sequence, head) loops in float64."""
    batch, seq = mask.shape
    d = q.shape[1] // heads
    q, k, v = (t.astype(np.float64).reshape(batch, seq, heads, d) for t in (q, k, v))
    out = np.zeros((batch, seq, heads, d))
    for b in range(batch):
        for h in range(heads):
            s = q[b, :, h] @ k[b, :, h].T / np.sqrt(d)
            s[:, mask[b] == 0] = -np.inf
            p = np.exp(s - s.max(1, keepdims=True))
            out[b, :, h] = (p / p.sum(1, keepdims=True)) @ v[b, :, h]
    return out.reshape(batch * seq, heads * d)


def _attention_graph(seq, hidden, heads):
    """Q·Kᵀ → softmax(· scale + mask bias) → ·V → merge, as the MiniLM YAML wires it."""
    return Model.from_dict({
        "name": "attn", "inputs": [{"name": "q", "shape": [seq, hidden]}, {"name": "k", "shape": [seq, hidden]},
                                   {"name": "v", "shape": [seq, hidden]}, {"name": "mask", "shape": [seq]}],
        "layers": [{"name": "bias", "op": "mask_bias", "input": "mask"},
                   {"name": "qh", "op": "split_heads", "input": "q", "heads": heads},
                   {"name": "kh", "op": "split_heads", "input": "k", "heads": heads},
                   {"name": "vh", "op": "split_heads", "input": "v", "heads": heads},
                   {"name": "s", "op": "matmul", "inputs": ["qh", "kh"], "transpose_b": True},
                   {"name": "p", "op": "softmax", "inputs": ["s", "bias"], "scale": 1 / np.sqrt(hidden // heads)},
                   {"name": "c", "op": "matmul", "inputs": ["p", "vh"]},
                   {"name": "m", "op": "merge_heads"}]})


def test_masked_attention_graph_matches_loops_and_ignores_padding():
    batch, seq, heads, hidden = 3, 7, 4, 32
    mask = np.ones((batch, seq), dtype=np.int64)
    mask[1, 4:] = 0
    mask[2, 1:] = 0
    q, k, v = (RNG.standard_normal((batch, seq, hidden)).astype(np.float32) for _ in range(3))
    graph = _attention_graph(seq, hidden, heads)
    out = run_graph(graph, {}, {"q": q, "k": k, "v": v, "mask": mask})["m"]
    flat = [t.reshape(batch * seq, hidden) for t in (q, k, v)]
    np.testing.assert_allclose(out.reshape(batch * seq, hidden), _attention_reference(*flat, mask, heads),
                               rtol=1e-5, atol=1e-5)
    k2, v2 = k.copy(), v.copy()
    k2[mask == 0] = 1e4
    v2[mask == 0] = -1e4
    out2 = run_graph(graph, {}, {"q": q, "k": k2, "v": v2, "mask": mask})["m"]
    np.testing.assert_array_equal(out2[mask == 1], out[mask == 1])


def test_split_merge_heads_round_trip():
    x = RNG.standard_normal((2, 5, 24)).astype(np.float32)
    h = ops.split_heads(x, 3)
    assert h.shape == (2, 3, 5, 8)
    np.testing.assert_array_equal(h[1, 2, 4], x[1, 4, 16:24])
    np.testing.assert_array_equal(ops.merge_heads(h), x)


def test_embedding_pooling_normalize():
    table = np.arange(12, dtype=np.float32).reshape(6, 2)
    np.testing.assert_array_equal(ops.embedding(np.array([[5, 0]]), table), [[[10, 11], [0, 1]]])
    with pytest.raises(AccelsimError, match=r"ids must lie in \[0, 6\)"):
        ops.embedding(np.array([6]), table)
    hidden = np.array([[[1.0, 2.0], [3.0, 4.0], [100.0, 100.0]]], dtype=np.float32)
    np.testing.assert_allclose(ops.mean_pool(hidden, np.array([[1, 1, 0]])), [[2.0, 3.0]])
    np.testing.assert_allclose(ops.mean_pool(hidden), [[104 / 3, 106 / 3]], rtol=1e-6)
    bias = ops.mask_bias(np.array([[1, 0]]))
    assert bias.shape == (1, 1, 1, 2) and bias[0, 0, 0, 0] == 0 and bias[0, 0, 0, 1] == np.finfo(np.float32).min
    np.testing.assert_allclose(ops.l2_normalize(np.array([[3.0, 4.0], [0.0, 0.0]])), [[0.6, 0.8], [0.0, 0.0]])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_gelu_kernel_is_bit_identical_to_the_numpy_blocks(dtype):
    """The one-pass kernel (accelsim.kernels.elementwise.gelu) against its numpy twin, the block code."""
    x = np.concatenate([RNG.standard_normal(70_004) * 4,
                        [0.0, -0.0, np.inf, -np.inf, np.nan, 1e30, -1e30, 5.6, -5.6, 1e-40]]).astype(dtype)  # 7 rows
    got, want = ops.gelu(x.reshape(7, -1)), ops._blockwise(x, ops._gelu_block).reshape(7, -1)
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(np.signbit(got), np.signbit(want))


def test_softmax_scale_and_bias_equal_the_plain_formula():
    x = RNG.standard_normal((2, 3, 5, 5)).astype(np.float32)
    bias = ops.mask_bias(np.array([[1, 1, 0, 1, 0], [1, 1, 1, 1, 1]]))
    z = x * np.float32(0.125) + bias
    e = np.exp(z - z.max(-1, keepdims=True))
    np.testing.assert_array_equal(ops.softmax(x, -1, 0.125, bias), e / e.sum(-1, keepdims=True))
    x0 = x.copy()
    ops.softmax(x, -1, 0.125, bias)
    np.testing.assert_array_equal(x, x0)   # the input is not modified
