"""Every backward rule of the op registry against central finite differences (float64, tiny graphs).

Loss ``L = Σ out ⊙ R`` for a fixed random ``R``; each checked coordinate compares ``∂L/∂θ`` from
:func:`accelsim.nn.autograd.backward` with ``(L(θ + h) − L(θ − h)) / 2h``, h = 1e-6, to rtol 1e-5 / atol 1e-7.
"""
from __future__ import annotations

import numpy as np
import pytest

from accelsim.graph import Model
from accelsim.nn import autograd
from accelsim.ops import functional as F
from accelsim.ops import functional as G
from accelsim.ops import OPS


def _model(inputs, layers):
    return Model.from_dict({"name": "t", "inputs": inputs, "layers": layers})


def _random_weights(model, rng):
    from accelsim.data.weights import expected_shapes
    w = {}
    for layer in model.layers:
        if layer.weight is None:
            continue
        for suffix, shape in expected_shapes(layer).items():
            v = rng.standard_normal(shape) * 0.5
            if suffix == "running_var":
                v = rng.uniform(0.5, 2.0, shape)
            w[f"{layer.weight}.{suffix}"] = v
    return w


def _check(model, weights, feeds, rng, diff_inputs, n_coords=12, atol=1e-7, make_ops=autograd.GradOps):
    out_name = model.layers[-1].name
    ops = make_ops()
    out, tape = autograd.forward(model, weights, feeds, ops)
    r = rng.standard_normal(out[out_name].shape)
    grads, in_grads = autograd.backward(model, weights, tape, {out_name: r}, ops)

    def loss():
        return float((autograd.forward(model, weights, feeds, make_ops())[0][out_name] * r).sum())

    targets = [(weights, k, grads.get(k)) for k in weights] + [(feeds, k, in_grads.get(k)) for k in diff_inputs]
    checked = 0
    for store, key, g in targets:
        if "running_" in key:
            continue
        assert g is not None, f"no gradient for {key}"
        arr = store[key]
        assert g.shape == arr.shape, key
        flat = arr.reshape(-1)
        for i in rng.choice(flat.size, min(n_coords, flat.size), replace=False):
            old = flat[i]
            flat[i] = old + 1e-6
            up = loss()
            flat[i] = old - 1e-6
            down = loss()
            flat[i] = old
            np.testing.assert_allclose(g.reshape(-1)[i], (up - down) / 2e-6, rtol=1e-5, atol=atol, err_msg=key)
            checked += 1
    return checked


def test_cnn_rules_conv_bn_fold_grouped_depthwise_pools_linear():
    rng = np.random.default_rng(0)
    model = _model([{"name": "img", "shape": [4, 9, 9]}], [
        {"name": "c1", "op": "conv2d", "out_channels": 4, "kernel": 3, "padding": 1, "bias": False, "weight": "c1"},
        {"name": "c1.bn", "op": "batchnorm", "weight": "bn1", "eps": 1e-3},
        {"name": "c1.act", "op": "relu6"},
        {"name": "dw", "op": "conv2d", "out_channels": 4, "kernel": 3, "stride": 2, "padding": [0, 0, 1, 1],
         "groups": 4, "weight": "dw"},
        {"name": "dw.act", "op": "relu"},
        {"name": "g2", "op": "conv2d", "out_channels": 6, "kernel": [1, 2], "groups": 2, "padding": [0, 0, 0, 1],
         "weight": "g2"},
        {"name": "g2.bn", "op": "batchnorm", "weight": "bn2"},
        {"name": "pw", "op": "conv2d", "input": "dw.act", "out_channels": 6, "kernel": 1, "weight": "pw"},
        {"name": "res", "op": "add", "inputs": ["g2.bn", "pw"]},
        {"name": "mp", "op": "maxpool", "kernel": 2, "stride": 1},
        {"name": "ap", "op": "avgpool", "kernel": 2, "padding": 1},
        {"name": "gap", "op": "global_avgpool", "input": "mp"},
        {"name": "flat", "op": "flatten", "input": "ap"},
        {"name": "fc", "op": "linear", "out_features": 5, "weight": "fc"},
        {"name": "flat2", "op": "flatten", "input": "gap"},
        {"name": "fc2", "op": "linear", "out_features": 5, "weight": "fc2", "bias": False},
        {"name": "out", "op": "add", "inputs": ["fc", "fc2"]},
    ])
    weights = _random_weights(model, rng)
    feeds = {"img": rng.standard_normal((2, 4, 9, 9))}
    assert _check(model, weights, feeds, rng, ["img"]) > 100


def test_transformer_rules_layernorm_attention_softmax_gelu_mean_pool():
    rng = np.random.default_rng(1)
    d, s = 8, 5
    model = _model([{"name": "x", "shape": [s, d]}, {"name": "attention_mask", "shape": [s]}], [
        {"name": "mask", "op": "mask_bias", "input": "attention_mask"},
        {"name": "ln0", "op": "layernorm", "input": "x", "weight": "ln0", "eps": 1e-5},
        {"name": "q", "op": "linear", "out_features": d, "weight": "q"},
        {"name": "qh", "op": "split_heads", "heads": 2},
        {"name": "k", "op": "linear", "input": "ln0", "out_features": d, "weight": "k"},
        {"name": "kh", "op": "split_heads", "heads": 2},
        {"name": "v", "op": "linear", "input": "ln0", "out_features": d, "weight": "v"},
        {"name": "vh", "op": "split_heads", "heads": 2},
        {"name": "sc", "op": "matmul", "inputs": ["qh", "kh"], "transpose_b": True},
        {"name": "p", "op": "softmax", "inputs": ["sc", "mask"], "scale": 0.5},
        {"name": "ctx", "op": "matmul", "inputs": ["p", "vh"]},
        {"name": "mh", "op": "merge_heads"},
        {"name": "o", "op": "linear", "out_features": d, "weight": "o"},
        {"name": "a1", "op": "add", "inputs": ["o", "ln0"]},
        {"name": "ln1", "op": "layernorm", "weight": "ln1", "eps": 1e-5},
        {"name": "f1", "op": "linear", "out_features": 2 * d, "weight": "f1"},
        {"name": "ge", "op": "gelu"},
        {"name": "f2", "op": "linear", "out_features": d, "weight": "f2"},
        {"name": "pool", "op": "mean_pool", "inputs": ["f2", "attention_mask"]},
    ])
    weights = _random_weights(model, rng)
    mask = np.ones((2, s))
    mask[1, 3:] = 0
    feeds = {"x": rng.standard_normal((2, s, d)), "attention_mask": mask}
    assert _check(model, weights, feeds, rng, ["x"], atol=2e-6) > 150


@pytest.mark.parametrize("op", ["sigmoid", "tanh", "hardswish", "hardsigmoid", "relu", "relu6", "gelu", "softplus"])
def test_activation_rules(op):
    rng = np.random.default_rng(2)
    model = _model([{"name": "x", "shape": [7]}], [{"name": "a", "op": op}, {"name": "m", "op": "mul",
                                                                               "inputs": ["a", "x"]}])
    x = rng.uniform(-4, 4, (3, 7)) if op == "gelu" else rng.uniform(-8, 8, (3, 7))   # gelu: inside erf's |z| ≤ 4
    x[np.abs(np.abs(x) - 3) < 1e-3] += 0.01   # away from the hard kinks
    # the gelu rule is the exact derivative; the forward's erf approximation (error ≤ 1e-7) differs by ≤ 5e-7
    atol = 5e-6 if op == "gelu" else 1e-7   # ×|x| ≤ 4 through the mul
    assert _check(model, {}, {"x": x}, rng, ["x"], n_coords=21, atol=atol) == 21


def test_softplus_forward_is_onnx_softplus_stable_and_costed():
    """softplus = log(1 + e^x) as ONNX's reference (np.logaddexp(0, x)) computes it, finite for any float32 input
    (no overflow warning), its rule dy·σ(x) likewise; one registry entry validates, runs and costs a model."""
    from accelsim.lowering import lower
    from accelsim.nn.graph_exec import run_graph
    x = np.concatenate([np.linspace(-30, 30, 6001), [-1e30, -100.0, 0.0, 100.0, 1e30, 3.4e38]]).astype(np.float32)
    with np.errstate(over="raise", invalid="raise", divide="raise"):   # underflow to 0 is the right answer
        y = OPS["softplus"].run({}, [x[None]], None)[0]
        dx = OPS["softplus"].backward({}, [x[None]], None, np.ones((1, x.size), np.float32), None)[0][0]
    assert y.dtype == np.float32 and np.isfinite(y).all() and (y >= 0).all()
    np.testing.assert_allclose(y, np.logaddexp(0, x.astype(np.float64)), rtol=2e-7, atol=1e-37)
    with np.errstate(over="ignore"):
        np.testing.assert_allclose(dx, 1 / (1 + np.exp(-x.astype(np.float64))), rtol=2e-6, atol=1e-37)
    model = _model([{"name": "x", "shape": [3, 4, 4]}], [{"name": "s", "op": "softplus"}])
    feeds = {"x": np.random.default_rng(5).standard_normal((2, 3, 4, 4)).astype(np.float32)}
    np.testing.assert_allclose(run_graph(model, {}, feeds)["s"], np.logaddexp(0, feeds["x"]), rtol=1e-6)
    assert [(w.vector_op, w.vector_elements) for w in lower(model)] == [("softplus", 48)]
    assert OPS["softplus"].vector_ops == 5.0


def test_embedding_first_token_and_standalone_batchnorm():
    rng = np.random.default_rng(3)
    model = _model([{"name": "ids", "shape": [4], "dtype": "int64"}], [
        {"name": "e", "op": "embedding", "num_embeddings": 6, "dim": 3, "weight": "e"},
        {"name": "t", "op": "first_token"},
        {"name": "lin", "op": "linear", "out_features": 2, "weight": "lin"},
    ])
    weights = _random_weights(model, rng)
    assert _check(model, weights, {"ids": np.array([[1, 2, 2, 5], [0, 1, 3, 3]])}, rng, []) > 10
    bn = _model([{"name": "x", "shape": [3, 2, 2]}], [{"name": "b", "op": "batchnorm", "weight": "b"},
                                                      {"name": "s", "op": "sigmoid"}])
    assert _check(bn, _random_weights(bn, rng), {"x": rng.standard_normal((2, 3, 2, 2))}, rng, ["x"]) > 8


def test_training_mode_batchnorm_on_batch_statistics():
    """Training mode (GradOps(train=TrainMode)): nothing folded, BatchNorm normalizes with the batch's statistics
    and its gradient flows through them; the running statistics move by the momentum (0 here while probing)."""
    from accelsim.nn.graph_exec import TrainMode
    rng = np.random.default_rng(6)
    model = _model([{"name": "img", "shape": [2, 5, 5]}], [
        {"name": "c", "op": "conv2d", "out_channels": 3, "kernel": 3, "padding": 1, "bias": False, "weight": "c"},
        {"name": "bn", "op": "batchnorm", "weight": "bn"}, {"name": "r", "op": "relu"},
        {"name": "gap", "op": "global_avgpool"}, {"name": "f", "op": "flatten"},
        {"name": "fc", "op": "linear", "out_features": 4, "weight": "fc"}])
    weights = _random_weights(model, rng)
    feeds = {"img": rng.standard_normal((3, 2, 5, 5))}
    assert _check(model, weights, feeds, rng, ["img"], make_ops=lambda: autograd.GradOps(TrainMode(0.0))) > 40
    before = weights["bn.running_mean"].copy()
    autograd.forward(model, weights, feeds, autograd.GradOps(TrainMode(0.5)))
    conv = F.conv2d(feeds["img"], weights["c.weight"], None, padding=1)
    np.testing.assert_allclose(weights["bn.running_mean"], 0.5 * before + 0.5 * conv.mean(axis=(0, 2, 3)))


def test_every_registered_op_has_a_backward_rule():
    assert [k for k, v in OPS.items() if v.backward is None] == []


def test_fold_bn_backward_matches_finite_differences():
    rng = np.random.default_rng(4)
    w, b = rng.standard_normal((3, 2, 2, 2)), rng.standard_normal(3)
    gamma, beta, mean, var = rng.standard_normal(3), rng.standard_normal(3), rng.standard_normal(3), rng.uniform(.5, 2, 3)
    rw, rb = rng.standard_normal(w.shape), rng.standard_normal(3)
    loss = lambda w_, b_, g_: float((F.fold_bn(w_, b_, g_, beta, mean, var, 1e-3)[0] * rw).sum()  # noqa: E731
                                    + (F.fold_bn(w_, b_, g_, beta, mean, var, 1e-3)[1] * rb).sum())
    dw, db, dg, dbeta = G.fold_bn_backward(rw, rb, w, b, gamma, mean, var, 1e-3)
    h = 1e-6
    for arr, g in ((w, dw), (b, db), (gamma, dg)):
        flat = arr.reshape(-1)
        for i in range(flat.size):
            old = flat[i]
            flat[i] = old + h
            up = loss(w, b, gamma)
            flat[i] = old - h
            down = loss(w, b, gamma)
            flat[i] = old
            np.testing.assert_allclose(g.reshape(-1)[i], (up - down) / (2 * h), rtol=1e-5, atol=1e-8)
    np.testing.assert_array_equal(dbeta, rb)


def test_prelu_slope_gradient_has_the_slope_shape_and_the_summed_values():
    rng = np.random.default_rng(7)
    x = rng.standard_normal((2, 3, 4, 5))
    slope = rng.standard_normal((1, 5))                      # fewer dims than x: broadcast from the right
    dy = rng.standard_normal(x.shape)
    dx, ds = OPS["prelu"].backward({}, [x, slope], None, dy, None)
    assert dx.shape == x.shape and ds.shape == slope.shape
    np.testing.assert_allclose(ds, np.where(x < 0, dy * x, 0).sum(axis=(0, 1, 2)).reshape(1, 5), rtol=1e-12)
