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
