"""The ops' numpy numerics (accelsim.ops.functional): forward against naive loops, backward against finite
differences (float64)."""
from __future__ import annotations

import numpy as np
import pytest

from accelsim.errors import AccelsimError
from accelsim.nn.train import softmax_cross_entropy
from accelsim.ops import functional as F

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


def _check_grads(fn, back, arrays: dict, n_probe=12, eps=1e-6, tol=1e-6):
    """Loss = Σ fn(**arrays)·R. Compare ``back(R, **arrays)`` (name → dL/d array) with central differences at
    random entries of every array it returns a gradient for."""
    rng = np.random.default_rng(11)
    r = rng.standard_normal(np.shape(fn(**arrays)))
    analytic = back(r, **arrays)
    for name, g in analytic.items():
        arr = arrays[name]
        for idx in rng.choice(arr.size, size=min(n_probe, arr.size), replace=False):
            pos = np.unravel_index(idx, arr.shape)
            old = arr[pos]
            arr[pos] = old + eps
            up = float((fn(**arrays) * r).sum())
            arr[pos] = old - eps
            down = float((fn(**arrays) * r).sum())
            arr[pos] = old
            numeric = (up - down) / (2 * eps)
            assert abs(numeric - g[pos]) <= tol * max(1.0, abs(numeric)), (name, pos, numeric, g[pos])


@pytest.mark.parametrize("case", CONV_CASES)
def test_conv2d_gradients(case):
    cin, cout, k, stride, padding, dilation, groups = case
    rng = np.random.default_rng(7)
    geo = (stride, padding, dilation, groups)
    _check_grads(lambda x, w, b: F.conv2d(x, w, b, *geo),
                 lambda r, x, w, b: dict(zip("xwb", F.conv2d_backward(r, x, w, *geo, has_bias=True))),
                 dict(x=rng.standard_normal((2, cin, 7, 8)), w=rng.standard_normal((cout, cin // groups, k, k)) * 0.3,
                      b=rng.standard_normal(cout)))


def test_linear_gradients():
    _check_grads(F.linear, lambda r, x, w, b: dict(zip("xwb", F.linear_backward(r, x, w))),
                 dict(x=RNG.standard_normal((5, 6)), w=RNG.standard_normal((4, 6)), b=RNG.standard_normal(4)))


def _away_from(points, shape, gap=0.05):
    x = RNG.uniform(-2, 8, size=shape)
    for p in points:
        near = np.abs(x - p) < gap
        x[near] += 2 * gap
    return x


@pytest.mark.parametrize("fn,back,kinks", [(F.relu, F.relu_backward, [0.0]), (F.relu6, F.relu6_backward, [0.0, 6.0])])
def test_activation_gradients(fn, back, kinks):
    _check_grads(fn, lambda r, x: {"x": back(r, x)}, {"x": _away_from(kinks, (2, 3, 4, 4))})
    assert fn(np.array([-1.0, 3.0, 7.0])).tolist() == ([0.0, 3.0, 6.0] if kinks[-1] == 6 else [0, 3, 7])


POOLS = {   # name → (forward, backward from (r, x))
    "max2": (lambda x: F.max_pool2d(x, 2)[0], lambda r, x: F.max_pool2d_backward(r, F.max_pool2d(x, 2)[1], x.shape, 2)),
    "max3s2p1": (lambda x: F.max_pool2d(x, 3, 2, 1)[0],
                 lambda r, x: F.max_pool2d_backward(r, F.max_pool2d(x, 3, 2, 1)[1], x.shape, 3, 2, 1)),
    "avg2": (lambda x: F.avg_pool2d(x, 2), lambda r, x: F.avg_pool2d_backward(r, x.shape, 2)),
    "avg3s2p1": (lambda x: F.avg_pool2d(x, 3, 2, 1), lambda r, x: F.avg_pool2d_backward(r, x.shape, 3, 2, 1)),
    "global": (F.global_avg_pool, lambda r, x: F.global_avg_pool_backward(r, x.shape)),
}


@pytest.mark.parametrize("pool", POOLS)
def test_pool_gradients(pool):
    x = RNG.permutation(2 * 3 * 6 * 7).reshape(2, 3, 6, 7) * 0.01  # distinct values: no argmax ties
    fn, back = POOLS[pool]
    _check_grads(fn, lambda r, x: {"x": back(r, x)}, {"x": x.astype(np.float64)})


def test_pool_values():
    x = np.arange(16.0).reshape(1, 1, 4, 4)
    np.testing.assert_array_equal(F.max_pool2d(x, 2)[0][0, 0], [[5, 7], [13, 15]])
    np.testing.assert_array_equal(F.avg_pool2d(x, 2)[0, 0], [[2.5, 4.5], [10.5, 12.5]])
    np.testing.assert_array_equal(F.max_pool2d(x, 3, 2, 1)[0][0, 0], [[5, 7], [13, 15]])


@pytest.mark.parametrize("train", [True, False])
def test_batchnorm_gradients(train):
    mean, var = RNG.standard_normal(3), RNG.uniform(0.5, 2, 3)
    if train:   # batch statistics: the gradient flows through the mean and variance too
        fn = lambda x, g, b: F.batch_norm_train(x, g, b, 1e-5)[0]  # noqa: E731
        back = lambda r, x, g, b: dict(zip("xgb", F.batch_norm_train_backward(r, x, g, 1e-5)))  # noqa: E731
    else:       # running statistics (frozen)
        fn = lambda x, g, b: F.batch_norm(x, g, b, mean, var, 1e-5)  # noqa: E731
        back = lambda r, x, g, b: dict(zip("xgb", F.batch_norm_backward(r, x, g, mean, var, 1e-5)))  # noqa: E731
    _check_grads(fn, back, dict(x=RNG.standard_normal((4, 3, 3, 3)) * 2 + 1, g=RNG.uniform(0.5, 2, 3),
                                b=RNG.standard_normal(3)))


def test_batchnorm_training_statistics_and_fold():
    x = RNG.standard_normal((8, 2, 5, 5)) * 3 + 1
    y, mean, var = F.batch_norm_train(x, np.ones(2), np.zeros(2), 1e-3)
    np.testing.assert_allclose(y.mean(axis=(0, 2, 3)), 0, atol=1e-12)
    rm, rv = F.running_stats(np.zeros(2), np.ones(2), mean, var, x.size // 2, 0.1)
    np.testing.assert_allclose(rm, 0.1 * x.mean(axis=(0, 2, 3)))
    np.testing.assert_allclose(rv, 0.9 + 0.1 * x.var(axis=(0, 2, 3), ddof=1))
    w, b = np.random.default_rng(1).standard_normal((2, 3, 3, 3)), np.zeros(2)
    gamma, beta = np.array([1.5, -0.5]), np.array([0.2, 0.3])
    inp = RNG.standard_normal((2, 3, 5, 5))
    wf, bf = F.fold_bn(w, b, gamma, beta, rm, rv, 1e-3)
    np.testing.assert_allclose(F.conv2d(inp, wf, bf, padding=1),
                               F.batch_norm(F.conv2d(inp, w, b, padding=1), gamma, beta, rm, rv, 1e-3),
                               rtol=1e-10, atol=1e-12)


def test_fold_bn_formula_and_errors():
    w, b = RNG.standard_normal((2, 3)), np.array([0.5, -1.0])
    gamma, beta, mean, var = np.array([2.0, 1.0]), np.array([0.1, 0.2]), np.array([1.0, -1.0]), np.array([4.0, 1.0])
    wf, bf = F.fold_bn(w, b, gamma, beta, mean, var, 0.0)
    np.testing.assert_allclose(wf, w * np.array([[1.0], [1.0]]))
    np.testing.assert_allclose(bf, [(0.5 - 1.0) * 1.0 + 0.1, (-1.0 + 1.0) * 1.0 + 0.2])
    with pytest.raises(AccelsimError, match=r"gamma has shape \(3,\), expected \(2,\)"):
        F.fold_bn(w, None, np.ones(3), beta, mean, var, 1e-3)


def test_softmax_cross_entropy():
    logits = RNG.standard_normal((5, 4))
    labels = np.array([0, 3, 1, 1, 2])
    loss, g = softmax_cross_entropy(logits, labels)
    p = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    assert np.isclose(loss, -np.log(p[np.arange(5), labels]).mean())
    eps = 1e-6
    for i, j in [(0, 0), (1, 3), (4, 1)]:
        z = logits.copy()
        z[i, j] += eps
        up = softmax_cross_entropy(z, labels)[0]
        z[i, j] -= 2 * eps
        down = softmax_cross_entropy(z, labels)[0]
        assert np.isclose((up - down) / (2 * eps), g[i, j], atol=1e-8)
    with pytest.raises(AccelsimError, match="labels"):
        softmax_cross_entropy(logits, np.array([0, 1, 2, 3, 4]))


def test_shape_errors_are_clear():
    with pytest.raises(AccelsimError, match="does not fit 4 input channels with groups=2"):
        F.conv2d(np.zeros((1, 4, 5, 5)), np.zeros((4, 4, 3, 3)), groups=2)
    with pytest.raises(AccelsimError, match="does not fit the padded input"):
        F.conv2d(np.zeros((1, 1, 2, 2)), np.zeros((1, 1, 3, 3)))
    with pytest.raises(AccelsimError, match="padding"):
        F.pads4((1, 2, 3))
    assert F.same_padding(224, 224, 3, 3, 2) == (0, 0, 1, 1)   # ONNX order: top, left, bottom, right
    assert F.same_padding(14, 14, 5, 5, 1) == (2, 2, 2, 2)
