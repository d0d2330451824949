"""The registry ops added for imported graphs: gradients against finite differences (through the test_autograd
harness) and forward numerics against ONNX Runtime one-node graphs where the formula is not plain numpy."""
from __future__ import annotations

import numpy as np

from test_autograd import _check, _model, _random_weights


def test_import_op_gradients_match_finite_differences():
    rng = np.random.default_rng(0)
    m = _model([{"name": "x", "shape": [2, 3, 4]}], [
        {"name": "c", "op": "constant", "shape": [3, 1], "weight": "c", "inputs": ["x"]},
        {"name": "s", "op": "sub", "inputs": ["x", "c"]},
        {"name": "d", "op": "div", "inputs": ["s", "c"]},
        {"name": "m", "op": "bcast_mul", "inputs": ["d", "c"]},
        {"name": "l", "op": "leaky_relu", "alpha": 0.2},
        {"name": "e", "op": "erf"},
        {"name": "t", "op": "transpose", "perm": [2, 0, 1]},
        {"name": "r", "op": "reshape", "shape": [4, 6]},
        {"name": "sl", "op": "slice", "starts": [1, 0], "ends": [None, 5], "steps": [1, 2]},
        {"name": "p", "op": "pad", "pads": [1, 0, 0, 2]},
        {"name": "cat", "op": "concat", "axis": 0, "inputs": ["p", "p"]},
        {"name": "sm", "op": "softmax_axes", "axes": [0, 1]},
        {"name": "rm", "op": "reduce_mean", "axes": [1], "keepdims": False},
    ])
    w = _random_weights(m, rng)
    w["c.value"] = rng.uniform(0.5, 1.5, (3, 1))
    assert _check(m, w, {"x": rng.standard_normal((2, 2, 3, 4))}, rng, ["x"]) > 8


def test_nd_window_op_gradients_match_finite_differences():
    """conv (1-D, 3-D, groups, dilation), conv_transpose (2-D groups/dilation/output_padding, 1-D), maxpool with
    dilation (1-D, 3-D), avgpool 3-D, instance_norm, and a conv on [N, C, H, W] (an ONNX graph without a batch
    axis: N runs as more images)."""
    rng = np.random.default_rng(1)
    m = _model([{"name": "x", "shape": [4, 7]}, {"name": "v", "shape": [2, 5, 4, 6]},
                {"name": "z", "shape": [2, 2, 5, 6]}], [
        {"name": "c1", "op": "conv", "input": "x", "out_channels": 4, "kernel": [3], "padding": [1, 2],
         "dilation": 2, "groups": 2, "weight": "c1"},
        {"name": "mp1", "op": "maxpool", "kernel": [2], "stride": 1, "dilation": 2},
        {"name": "ct1", "op": "conv_transpose", "out_channels": 2, "kernel": [3], "stride": 2, "padding": [1, 0],
         "output_padding": [1], "weight": "ct1"},
        {"name": "c3", "op": "conv", "input": "v", "out_channels": 4, "kernel": [2, 3, 1], "stride": [1, 2, 1],
         "padding": 1, "groups": 2, "weight": "c3"},
        {"name": "mp3", "op": "maxpool", "kernel": [2, 2, 2], "stride": 1, "dilation": [2, 1, 1]},
        {"name": "ap3", "op": "avgpool", "kernel": [1, 2, 2], "stride": 1, "padding": [0, 1, 0, 0, 0, 1]},
        {"name": "in3", "op": "instance_norm", "weight": "in3"},
        {"name": "g3", "op": "global_avgpool"},
        {"name": "ct2", "op": "conv_transpose", "input": "z", "out_channels": 4, "kernel": [3, 2], "stride": [2, 1],
         "dilation": [1, 2], "groups": 2, "padding": [1, 0, 0, 1], "output_padding": [1, 0], "weight": "ct2"},
        {"name": "c2", "op": "conv2d", "out_channels": 2, "kernel": 3, "padding": 1, "weight": "c2"},
        {"name": "bn", "op": "batchnorm", "input": "c2", "weight": "bn", "channel_axis": 1},
        {"name": "f1", "op": "flatten", "input": "ct1"}, {"name": "f3", "op": "flatten", "input": "g3"},
        {"name": "f2", "op": "flatten", "input": "bn"},
        {"name": "out", "op": "concat", "axis": 0, "inputs": ["f1", "f3", "f2"]},
    ])
    w = _random_weights(m, rng)
    feeds = {"x": rng.standard_normal((2, 4, 7)), "v": rng.standard_normal((2, 2, 5, 4, 6)),
             "z": rng.standard_normal((2, 2, 2, 5, 6))}
    assert _check(m, w, feeds, rng, ["x", "v", "z"]) > 100


def test_new_elementwise_and_reduction_gradients_match_finite_differences():
    rng = np.random.default_rng(2)
    m = _model([{"name": "x", "shape": [3, 4]}, {"name": "s", "shape": [3, 1]}], [
        {"name": "e", "op": "elu", "input": "x", "alpha": 0.7},
        {"name": "se", "op": "selu"},
        {"name": "ss", "op": "softsign"},
        {"name": "sh", "op": "shrink", "bias": 0.1, "lambd": 0.2},
        {"name": "pr", "op": "prelu", "inputs": ["sh", "s"]},
        {"name": "ab", "op": "abs", "input": "x"},
        {"name": "mix", "op": "bcast_add", "inputs": ["pr", "ab"]},
        {"name": "ls", "op": "log_softmax", "axes": [1]},
        {"name": "t", "op": "tile", "repeats": [1, 2]},
        {"name": "ex", "op": "expand", "shape": [2, 3, 8]},
        {"name": "rs8", "op": "reduce", "kind": "sum", "axes": [0], "keepdims": False},
        {"name": "rs", "op": "slice", "starts": [0, 0], "ends": [None, 4], "steps": [1, 1]},
        {"name": "rx", "op": "reduce", "kind": "max", "input": "mix", "axes": [1], "keepdims": True},
        {"name": "rn", "op": "reduce", "kind": "min", "input": "mix", "axes": [0, 1], "keepdims": False},
        {"name": "rp", "op": "reduce", "kind": "prod", "input": "x", "axes": [1], "keepdims": False},
        {"name": "rl", "op": "reduce", "kind": "l2", "input": "x", "axes": [0], "keepdims": True},
        {"name": "mm", "op": "matmul", "inputs": ["rx", "rl"]},          # [3, 1] @ [1, 4]
        {"name": "v", "op": "matmul", "inputs": ["rp", "x"]},            # 1-D [3] @ [3, 4] → [4]
        {"name": "a", "op": "bcast_add", "inputs": ["mm", "v"]},
        {"name": "b", "op": "bcast_mul", "inputs": ["a", "rn"]},
        {"name": "out", "op": "bcast_add", "inputs": ["b", "rs"]},
    ])
    x = rng.uniform(-2, 2, (2, 3, 4))
    x[np.abs(np.abs(x) - 0.2) < 1e-2] += 0.05    # away from the shrink kinks
    feeds = {"x": x, "s": rng.uniform(0.1, 0.5, (2, 3, 1))}
    assert _check(m, {}, feeds, rng, ["x", "s"], atol=1e-6) == 18
