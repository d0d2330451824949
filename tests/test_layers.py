"""accelsim.nn.layers / functional: forward against naive loops, backward against finite differences (float64)."""
from __future__ import annotations

import numpy as np
import pytest

from accelsim.errors import AccelsimError
from accelsim.ops import functional as F
from accelsim.nn import layers as L

RNG = np.random.default_rng(1234)


def naive_conv2d(x, w, b, pads, stride, dilation, groups):
    """Direct 7-loop definition of the (cross-correlation) conv, for reference; ``pads`` in ONNX order
    (top, left, bottom, right), ``stride``/``dilation`` (h, w) pairs."""
    n, c, h, wd = x.shape
    cout, cg, kh, kw = w.shape
    t, l, bt, r = pads
    (sh, sw), (dh, dw) = stride, dilation
    xp = np.zeros((n, c, h + t + bt, wd + l + r))
    xp[:, :, t:t + h, l:l + wd] = x
    ho = (h + t + bt - dh * (kh - 1) - 1) // sh + 1
    wo = (wd + l + r - dw * (kw - 1) - 1) // sw + 1
    y = np.zeros((n, cout, ho, wo))
    og = cout // groups
    for nn in range(n):
        for o in range(cout):
            g = o // og
            for i in range(ho):
                for j in range(wo):
                    acc = 0.0 if b is None else b[o]
                    for ci in range(cg):
                        for rr in range(kh):
                            for ss in range(kw):
                                acc += w[o, ci, rr, ss] * xp[nn, g * cg + ci, i * sh + rr * dh, j * sw + ss * dw]
                    y[nn, o, i, j] = acc
    return y


CONV_CASES = [  # (cin, cout, k, stride, padding, dilation, groups)
    (3, 4, 3, 1, 1, 1, 1),
    (3, 5, 3, 2, (0, 0, 1, 1), 1, 1),     # TF-SAME-style asymmetric padding (ONNX order: t, l, b, r)
    (3, 4, 3, (2, 1), (1, 0, 2, 1), (1, 2), 1),   # unequal strides, dilations and pads
    (4, 6, 3, 1, 2, 2, 2),                 # dilation + groups
    (6, 6, 5, 2, (1, 2, 2, 1), 1, 6),      # depthwise
    (6, 6, 3, (1, 2), 1, (2, 1), 6),       # depthwise, unequal strides and dilations
    (5, 5, 3, 1, 1, 1, 5),                 # depthwise stride 1
    (4, 3, 1, 1, 0, 1, 1),                 # pointwise fast path
    (2, 3, 2, 3, 0, 1, 1),                 # stride > kernel
]


@pytest.mark.parametrize("case", CONV_CASES)
def test_conv2d_matches_naive_loops(case):
    cin, cout, k, stride, padding, dilation, groups = case
    x = RNG.standard_normal((2, cin, 7, 8))
    w = RNG.standard_normal((cout, cin // groups, k, k))
    b = RNG.standard_normal(cout)
    got = F.conv2d(x, w, b, stride, padding, dilation, groups)
    want = naive_conv2d(x, w, b, F.pads4(padding), F.pair(stride), F.pair(dilation), groups)
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


def test_im2col_col2im_adjoint():
    """<im2col(x), c> == <x, col2im(c)> for every configuration: col2im is the exact transpose."""
    x = RNG.standard_normal((2, 3, 6, 7))
    cols, _ = F.im2col(x, 3, 2, stride=2, padding=(1, 0, 2, 1), dilation=2)
    c = RNG.standard_normal(cols.shape)
    back = F.col2im(c, x.shape, 3, 2, stride=2, padding=(1, 0, 2, 1), dilation=2)
    assert np.isclose((cols * c).sum(), (x * back).sum(), rtol=1e-12)


def _check_grads(layer, x, n_probe=12, eps=1e-6, train=False, tol=1e-6):
    """Loss = Σ y·R. Compare backward's dx and dθ with central differences at random entries."""
    y = layer.forward(x, train)
    r = RNG.standard_normal(y.shape)
    dx = layer.backward(r)
    grads = {k: v.copy() for k, v in layer.grads.items()}

    def loss():
        return float((layer.forward(x, train) * r).sum())

    for name, arr, analytic in [("x", x, dx)] + [(k, layer.params[k], grads[k]) for k in layer.params]:
        for idx in RNG.choice(arr.size, size=min(n_probe, arr.size), replace=False):
            pos = np.unravel_index(idx, arr.shape)
            old = arr[pos]
            arr[pos] = old + eps
            up = loss()
            arr[pos] = old - eps
            down = loss()
            arr[pos] = old
            numeric = (up - down) / (2 * eps)
            assert abs(numeric - analytic[pos]) <= tol * max(1.0, abs(numeric)), (name, pos, numeric, analytic[pos])


@pytest.mark.parametrize("case", CONV_CASES)
def test_conv2d_gradients(case):
    cin, cout, k, stride, padding, dilation, groups = case
    rng = np.random.default_rng(7)
    layer = L.Conv2d.init(rng, cin, cout, k, stride, padding, dilation, groups, dtype=np.float64)
    layer.params["bias"] = rng.standard_normal(cout)
    _check_grads(layer, rng.standard_normal((2, cin, 7, 8)))


def test_linear_gradients():
    layer = L.Linear.init(np.random.default_rng(0), 6, 4, dtype=np.float64)
    layer.params["bias"] = RNG.standard_normal(4)
    _check_grads(layer, RNG.standard_normal((5, 6)))


def _away_from(points, shape, gap=0.05):
    x = RNG.uniform(-2, 8, size=shape)
    for p in points:
        near = np.abs(x - p) < gap
        x[near] += 2 * gap
    return x


@pytest.mark.parametrize("layer,kinks", [(L.ReLU(), [0.0]), (L.ReLU6(), [0.0, 6.0])])
def test_activation_gradients(layer, kinks):
    x = _away_from(kinks, (2, 3, 4, 4))
    _check_grads(layer, x)
    assert layer.forward(np.array([-1.0, 3.0, 7.0])).tolist() == ([0.0, 3.0, 6.0] if kinks[-1] == 6 else [0, 3, 7])


@pytest.mark.parametrize("layer", [L.MaxPool2d(2), L.MaxPool2d(3, 2, 1), L.AvgPool2d(2), L.AvgPool2d(3, 2, 1),
                                   L.GlobalAvgPool(), L.Flatten()])
def test_pool_gradients(layer):
    x = RNG.permutation(2 * 3 * 6 * 7).reshape(2, 3, 6, 7) * 0.01  # distinct values: no argmax ties
    _check_grads(layer, x.astype(np.float64))


def test_pool_values():
    x = np.arange(16.0).reshape(1, 1, 4, 4)
    np.testing.assert_array_equal(L.MaxPool2d(2).forward(x)[0, 0], [[5, 7], [13, 15]])
    np.testing.assert_array_equal(L.AvgPool2d(2).forward(x)[0, 0], [[2.5, 4.5], [10.5, 12.5]])
    np.testing.assert_array_equal(L.MaxPool2d(3, 2, 1).forward(x)[0, 0], [[5, 7], [13, 15]])


@pytest.mark.parametrize("train", [True, False])
def test_batchnorm_gradients(train):
    bn = L.BatchNorm2d(3, dtype=np.float64)
    bn.params["weight"] = RNG.uniform(0.5, 2, 3)
    bn.params["bias"] = RNG.standard_normal(3)
    bn.buffers["running_mean"], bn.buffers["running_var"] = RNG.standard_normal(3), RNG.uniform(0.5, 2, 3)
    bn.momentum = 0.0  # keep running stats fixed while probing
    _check_grads(bn, RNG.standard_normal((4, 3, 3, 3)) * 2 + 1, train=train)


def test_batchnorm_running_stats_and_fold():
    bn = L.BatchNorm2d(2, eps=1e-3, momentum=0.1, dtype=np.float64)
    x = RNG.standard_normal((8, 2, 5, 5)) * 3 + 1
    y = bn.forward(x, train=True)
    np.testing.assert_allclose(y.mean(axis=(0, 2, 3)), 0, atol=1e-12)
    np.testing.assert_allclose(bn.buffers["running_mean"], 0.1 * x.mean(axis=(0, 2, 3)))
    np.testing.assert_allclose(bn.buffers["running_var"], 0.9 + 0.1 * x.var(axis=(0, 2, 3), ddof=1))
    conv = L.Conv2d.init(np.random.default_rng(1), 3, 2, 3, padding=1, dtype=np.float64)
    bn.params["weight"], bn.params["bias"] = np.array([1.5, -0.5]), np.array([0.2, 0.3])
    inp = RNG.standard_normal((2, 3, 5, 5))
    np.testing.assert_allclose(bn.fold_into(conv).forward(inp), bn.forward(conv.forward(inp)), rtol=1e-10,
                               atol=1e-12)


def test_fold_bn_formula_and_errors():
    w, b = RNG.standard_normal((2, 3)), np.array([0.5, -1.0])
    gamma, beta, mean, var = np.array([2.0, 1.0]), np.array([0.1, 0.2]), np.array([1.0, -1.0]), np.array([4.0, 1.0])
    wf, bf = L.fold_bn(w, b, gamma, beta, mean, var, 0.0)
    np.testing.assert_allclose(wf, w * np.array([[1.0], [1.0]]))
    np.testing.assert_allclose(bf, [(0.5 - 1.0) * 1.0 + 0.1, (-1.0 + 1.0) * 1.0 + 0.2])
    with pytest.raises(AccelsimError, match=r"gamma has shape \(3,\), expected \(2,\)"):
        L.fold_bn(w, None, np.ones(3), beta, mean, var, 1e-3)


def test_residual_and_sequential_gradients():
    rng = np.random.default_rng(3)
    body = L.Sequential(L.Conv2d.init(rng, 3, 3, 3, padding=1, dtype=np.float64), L.ReLU(),
                        L.Conv2d.init(rng, 3, 3, 3, padding=1, dtype=np.float64))
    net = L.Sequential(L.Residual(body), L.ReLU(), L.MaxPool2d(2), L.Flatten(),
                       L.Linear.init(rng, 3 * 3 * 3, 4, dtype=np.float64))
    x = rng.standard_normal((2, 3, 6, 6))
    # numeric check through the whole composite, on the input and on every parameter array
    y = net.forward(x)
    r = rng.standard_normal(y.shape)
    dx = net.backward(r)
    eps = 1e-6
    for layer, name in net.parameters()[:3] + [(None, "x")]:
        arr = x if layer is None else layer.params[name]
        analytic = dx if layer is None else layer.grads[name]
        for idx in rng.choice(arr.size, min(5, arr.size), replace=False):
            pos = np.unravel_index(idx, arr.shape)
            old = arr[pos]
            arr[pos] = old + eps
            up = (net.forward(x) * r).sum()
            arr[pos] = old - eps
            down = (net.forward(x) * r).sum()
            arr[pos] = old
            assert abs((up - down) / (2 * eps) - analytic[pos]) < 1e-6 * max(1, abs(analytic[pos]))
    assert len(net.parameters()) == 6
    state = net.state_dict()
    assert "0.body.0.weight" in state and "4.bias" in state
    net.load_state_dict({k: v * 0 for k, v in state.items()})
    assert not net.forward(x).any()
    with pytest.raises(AccelsimError, match=r"tensor '4.weight': expected shape \(4, 27\), got \(4, 26\)"):
        net.load_state_dict({**state, "4.weight": np.zeros((4, 26))})


def test_softmax_cross_entropy():
    logits = RNG.standard_normal((5, 4))
    labels = np.array([0, 3, 1, 1, 2])
    ce = L.SoftmaxCrossEntropy()
    loss = ce.forward(logits, labels)
    p = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    assert np.isclose(loss, -np.log(p[np.arange(5), labels]).mean())
    g = ce.backward()
    eps = 1e-6
    for i, j in [(0, 0), (1, 3), (4, 1)]:
        z = logits.copy()
        z[i, j] += eps
        up = L.SoftmaxCrossEntropy().forward(z, labels)
        z[i, j] -= 2 * eps
        down = L.SoftmaxCrossEntropy().forward(z, labels)
        assert np.isclose((up - down) / (2 * eps), g[i, j], atol=1e-8)
    with pytest.raises(AccelsimError, match="labels"):
        ce.forward(logits, np.array([0, 1, 2, 3, 4]))


def test_shape_errors_are_clear():
    with pytest.raises(AccelsimError, match="does not fit 4 input channels with groups=2"):
        F.conv2d(np.zeros((1, 4, 5, 5)), np.zeros((4, 4, 3, 3)), groups=2)
    with pytest.raises(AccelsimError, match="does not fit the padded input"):
        F.conv2d(np.zeros((1, 1, 2, 2)), np.zeros((1, 1, 3, 3)))
    with pytest.raises(AccelsimError, match="padding"):
        F.pads4((1, 2, 3))
    assert F.same_padding(224, 224, 3, 3, 2) == (0, 0, 1, 1)   # ONNX order: top, left, bottom, right
    assert F.same_padding(14, 14, 5, 5, 1) == (2, 2, 2, 2)
    with pytest.raises(AccelsimError, match="before forward"):
        L.ReLU().backward(np.zeros(3))
