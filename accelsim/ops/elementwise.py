"""Element-wise ops: activations, residual joins and arithmetic — their numerics, gradients and registry entries.

An activation is ``activation(fn, grad, vector_ops)``: ``fn(x)`` the FP32 forward (the input's float dtype is
kept: float32 for inference, float64 in gradient checks), ``grad(dy, x)`` (or ``grad(dy, y)`` from the output)
its derivative times the upstream gradient, ``vector_ops`` the default vector-unit operations per element (a hw
config's ``vector.ops_per_element`` overrides it by op name). ``relu``/``relu6`` are ``fusable``: after a
conv/linear they run in its output stage. :func:`erf`/:func:`gelu` evaluate their rational approximation in
float64 blocks.
"""
from __future__ import annotations

import math

import numpy as np

from . import attrs as A
from ._common import aligned, arith_dtype, broadcast_shape, broadcasts, float_dtype, same, unary_grad, unbroadcast
from .registry import OpDef, Shape, ShapeError

# ---- numerics ----------------------------------------------------------------------------------------------


def relu(x):
    """``max(x, 0)``."""
    return np.maximum(x, 0)


def relu_backward(dy, x):
    """``dy · [x > 0]``."""
    return dy * (x > 0)


def relu6(x):
    """``min(max(x, 0), 6)``."""
    return np.clip(x, 0, 6)


def relu6_backward(dy, x):
    """``dy · [0 < x < 6]``."""
    return dy * ((x > 0) & (x < 6))


def sigmoid(x):
    """``1 / (1 + e^(−x))``."""
    return (1 / (1 + np.exp(-x))).astype(x.dtype)


def sigmoid_backward(dy, y):
    """``σ' = σ(1 − σ)`` (from the forward output)."""
    return dy * y * (1 - y)


def tanh_backward(dy, y):
    """``tanh' = 1 − tanh²`` (from the forward output)."""
    return dy * (1 - y * y)


def hardswish(x):
    """``x · relu6(x + 3) / 6``."""
    return (x * np.clip(x + 3, 0, 6) / 6).astype(x.dtype)


def hardswish_backward(dy, x):
    """``hardswish(x) = x·relu6(x + 3)/6``: derivative 0 below −3, ``(2x + 3)/6`` on (−3, 3), 1 above 3."""
    return dy * np.where(x <= -3, 0, np.where(x >= 3, 1, (2 * x + 3) / 6)).astype(dy.dtype)


def hardsigmoid(x):
    """``relu6(x + 3) / 6 = clip(x/6 + ½, 0, 1)`` (MobileNetV3's squeeze-excite gate)."""
    return np.clip(x / 6 + 0.5, 0, 1)


def hardsigmoid_backward(dy, x):
    """``dy / 6`` on (−3, 3), 0 outside."""
    return dy * ((x > -3) & (x < 3)) / dy.dtype.type(6)


def softplus(x):
    """``log(1 + e^x)`` (ONNX Softplus), computed stably as ``max(x, 0) + log1p(e^(−|x|))`` (no overflow)."""
    return np.maximum(x, 0) + np.log1p(np.exp(-np.abs(x)))


def softplus_backward(dy, x):
    """``dy · σ(x)``, with ``σ(x) = e^(x − softplus(x))`` (no overflow for any x)."""
    return dy * np.exp(x - softplus(x))


SELU_ALPHA, SELU_GAMMA = 1.67326319217681884765625, 1.05070102214813232421875   # ONNX Selu's defaults


def elu(x, alpha: float):
    """``x`` for ``x > 0``, else ``alpha·(e^x − 1)`` (ONNX Elu; Selu is ``gamma·elu(x, alpha)``)."""
    return np.where(x > 0, x, x.dtype.type(alpha) * np.expm1(np.minimum(x, 0))).astype(x.dtype)


def shrink(a: dict, x):
    """ONNX Shrink: ``x + bias`` below ``−lambd``, ``x − bias`` above ``lambd``, 0 between."""
    b, lam = x.dtype.type(a["bias"]), x.dtype.type(a["lambd"])
    return np.where(x < -lam, x + b, np.where(x > lam, x - b, x.dtype.type(0)))


def prelu(x, slope):
    """``x`` for ``x ≥ 0``, else ``slope·x`` (ONNX PRelu; ``slope`` broadcasts against ``x``, e.g. one per
    channel ``[C, 1, 1]``)."""
    return np.where(x >= 0, x, x * slope).astype(x.dtype)


def _prelu_back(a, xs, y, dy, ctx):
    """``dx = dy·[x ≥ 0] + dy·slope·[x < 0]``; ``dslope = Σ dy·x·[x < 0]`` summed back to the slope's shape."""
    x, s = aligned(xs)
    neg = x < 0
    return [np.where(neg, dy * s, dy).astype(dy.dtype), unbroadcast(np.where(neg, dy * x, 0).astype(dy.dtype),
                                                                     xs[1].shape)]


# erf(z) ≈ z·P(z²)/Q(z²) on |z| ≤ 4 and ±1 beyond (Eigen's float erf, degrees 6/4 in z²); evaluated in
# float64 the max abs error vs the exact erf is 6.5e-8 (tests check ≤ 1e-7 against scipy.special.erf).
_ERF_P = (-2.72614225801306e-10, 2.77068142495902e-08, -2.10102402082508e-06, -5.69250639462346e-05,
          -7.34990630326855e-04, -2.95459980854025e-03, -1.60960333262415e-02)
_ERF_Q = (-1.45660718464996e-05, -2.13374055278905e-04, -1.68282697438203e-03, -7.37332916720468e-03,
          -1.42647390514189e-02)
_CHUNK = 16384  # elements per elementwise block: keeps the float64 temporaries in L2 cache
_INV_SQRT2 = 0.7071067811865476
_INV_SQRT_2PI = 0.3989422804014327


def _erf_block(z: np.ndarray) -> np.ndarray:
    """``z·P(z²)/Q(z²)`` on a float64 block with ``z`` clipped to ``[−4, 4]``."""
    z = np.clip(z, -4.0, 4.0)
    z2 = z * z
    p = np.full_like(z, _ERF_P[0])
    for c in _ERF_P[1:]:
        p *= z2
        p += c
    q = np.full_like(z, _ERF_Q[0])
    for c in _ERF_Q[1:]:
        q *= z2
        q += c
    p *= z
    p /= q
    return p


def _blockwise(x: np.ndarray, fn) -> np.ndarray:
    x = np.asarray(x)
    dtype = x.dtype if np.issubdtype(x.dtype, np.floating) else np.dtype(np.float64)
    flat = x.reshape(-1)
    out = np.empty(flat.shape, dtype=dtype)
    for s in range(0, flat.size, _CHUNK):
        out[s:s + _CHUNK] = fn(flat[s:s + _CHUNK].astype(np.float64))
    return out.reshape(x.shape)


def erf(x: np.ndarray) -> np.ndarray:
    """The error function ``erf(x) = 2/√π ∫₀ˣ e^(−t²) dt``, elementwise, max abs error ≤ 1e-7: rational
    approximation ``x·P(x²)/Q(x²)`` for ``|x| ≤ 4`` and ``sign(x)`` beyond (``1 − erf(4) = 1.5e-8``), in float64
    blocks; the result has the input's float dtype (float64 for integer input)."""
    return _blockwise(x, _erf_block)


def _gelu_block(v):
    e = _erf_block(v * _INV_SQRT2)
    e += 1.0
    e *= v
    e *= 0.5
    return e


def gelu(x: np.ndarray) -> np.ndarray:
    """Exact (erf) GELU: ``gelu(x) = x · ½ · (1 + erf(x/√2))`` (torch ``nn.GELU()``, BERT ``"gelu"``); float32/64
    arrays run the one-pass kernel :func:`accelsim.kernels.elementwise.gelu` (bit-identical to the blocks)."""
    x = np.asarray(x)
    if x.dtype in (np.float32, np.float64):
        from ..kernels import elementwise as _ew
        out = np.empty(x.shape, dtype=x.dtype)
        _ew.gelu(np.ascontiguousarray(x).reshape(-1), _ew.ERF_P, _ew.ERF_Q, out.reshape(-1))
        return out
    return _blockwise(x, _gelu_block)


def gelu_backward(dy, x):
    """``d/dx [x·Φ(x)] = Φ(x) + x·φ(x)`` with ``Φ(x) = ½(1 + erf(x/√2))``, ``φ(x) = e^(−x²/2)/√(2π)``."""
    x64 = np.asarray(x, np.float64)
    cdf = 0.5 * (1.0 + erf(x64 * _INV_SQRT2))
    pdf = np.exp(-0.5 * x64 * x64) * _INV_SQRT_2PI
    return (dy * (cdf + x64 * pdf)).astype(dy.dtype)


# ---- family helpers ----------------------------------------------------------------------------------------

def activation(fn, grad, vector_ops: float, uses_output: bool = False, fusable: bool = False) -> OpDef:
    """A one-input op ``y = fn(x)`` with the rule ``dx = grad(dy, x)`` (``grad(dy, y)`` when ``uses_output``)."""
    return OpDef(A.none, same, lambda a, xs, ctx: fn(xs[0]).astype(float_dtype(xs[0]), copy=False),
                 vector_ops=vector_ops, fusable=fusable, epilogue="element",
                 backward=lambda a, xs, y, dy, ctx: [grad(dy, y if uses_output else xs[0])])


def _unary(fn, vector_ops: float, attrs=A.none, grad=None) -> OpDef:
    """An op of imported graphs ``y = fn(attrs, x)`` with the rule ``grad(attrs, x, y, dy)``."""
    return OpDef(attrs, same, lambda a, xs, ctx: fn(a, xs[0]).astype(float_dtype(xs[0]), copy=False),
                 vector_ops=vector_ops, backward=unary_grad(grad) if grad else None, epilogue="element")


def _typed(fn, vector_ops: float, attrs=A.none, grad=None) -> OpDef:
    """An op of imported graphs ``y = fn(attrs, x)`` that keeps the input's type (integers stay integers: Abs,
    Sign, Neg) with the rule ``grad(attrs, x, y, dy)``."""
    return OpDef(attrs, same, lambda a, xs, ctx: np.asarray(fn(a, xs[0]), dtype=xs[0].dtype),
                 vector_ops=vector_ops, backward=unary_grad(grad) if grad else None, epilogue="element")


def _ieee(fn):
    """``fn`` with IEEE results (NaN for √−1, ±inf for x/0, as ONNX computes them) and no numpy warning."""
    def quiet(*xs):
        with np.errstate(invalid="ignore", divide="ignore"):
            return fn(*xs)
    return quiet


def _grad_dtype(g) -> np.dtype:
    return g.dtype if getattr(g, "dtype", np.dtype("O")).kind == "f" else np.dtype(np.float32)


def _binary(fn, vector_ops: float = 1.0, grad=None) -> OpDef:
    """``y = fn(x0, x1)`` with numpy broadcasting; the rule ``grad(xs, y, dy)`` is summed back to each shape."""
    rule = None if grad is None else lambda a, xs, y, dy, ctx: [
        unbroadcast(np.asarray(g, dtype=_grad_dtype(g)), x.shape) for g, x in zip(grad(aligned(xs), y, dy), xs)]
    return OpDef(A.none, broadcast_shape,
                 lambda a, xs, ctx: np.asarray(fn(*aligned(xs))).astype(arith_dtype(xs), copy=False),
                 vector_ops=vector_ops, backward=rule, epilogue="element")


def _same_shapes(a: dict, shapes: list[Shape]) -> Shape:
    if len(shapes) < 2 or any(s != shapes[0] for s in shapes):
        raise ShapeError(f"expects ≥ 2 inputs of one shape, got {[list(s) for s in shapes]}")
    return shapes[0]


def _broadcast_join(a: dict, shapes: list[Shape]) -> Shape:
    """≥ 2 inputs, each broadcasting against the first (e.g. a squeeze-excite scale [C, 1, 1] × [C, H, W])."""
    if len(shapes) < 2 or not all(broadcasts(shapes[0], s) for s in shapes[1:]):
        raise ShapeError(f"expects ≥ 2 inputs that broadcast against the first, got {[list(s) for s in shapes]}")
    return shapes[0]


def _join_elements(a: dict, s: list[Shape], out: Shape) -> int:
    return math.prod(out) * (len(s) - 1)


def _mul_back(a, xs, y, dy, ctx):
    """``y = Π x_i`` (broadcasting): ``dx_i = dy·Π_{j≠i} x_j`` summed back to ``x_i``'s shape."""
    out, al = [], aligned(xs)
    for i, x in enumerate(xs):
        g = dy
        for j, other in enumerate(al):
            if j != i:
                g = g * other
        out.append(unbroadcast(g, x.shape))
    return out


def _no_run(a: dict, xs: list, ctx):
    ctx.unsupported(f"imported op {a['onnx_op']} is costed as vector work but cannot be executed")


OPS = {
    "add": OpDef(A.none, _same_shapes, lambda a, xs, ctx: sum(xs[1:], xs[0]).astype(arith_dtype(xs), copy=False),
                 vector_ops=1.0, elements=_join_elements, backward=lambda a, xs, y, dy, ctx: [dy] * len(xs),
                 epilogue="element"),
    "mul": OpDef(A.none, _broadcast_join,
                 lambda a, xs, ctx: math.prod(aligned(xs)[1:], start=xs[0]).astype(arith_dtype(xs), copy=False),
                 vector_ops=1.0, elements=_join_elements, backward=_mul_back, epilogue="element"),
    "relu": activation(relu, relu_backward, 1.0, fusable=True),
    "relu6": activation(relu6, relu6_backward, 1.0, fusable=True),
    "gelu": activation(gelu, gelu_backward, 8.0),
    "sigmoid": activation(sigmoid, sigmoid_backward, 4.0, uses_output=True),
    "tanh": activation(np.tanh, tanh_backward, 4.0, uses_output=True),
    "hardswish": activation(hardswish, hardswish_backward, 3.0),
    "hardsigmoid": activation(hardsigmoid, hardsigmoid_backward, 2.0),
    "softplus": activation(softplus, softplus_backward, 5.0),   # |x|, exp, log1p, max, add: sigmoid's 4 + 1
}

IMPORTED = {
    "clip": _unary(lambda a, x: np.clip(x, a["min"], a["max"]), 1.0,
                   lambda r: dict(min=A.number(r, "min", -math.inf), max=A.number(r, "max", math.inf)),
                   lambda a, x, y, dy: dy * ((x >= a["min"]) & (x <= a["max"]))),
    "leaky_relu": _unary(lambda a, x: np.where(x >= 0, x, x * x.dtype.type(a["alpha"])), 1.0,
                         lambda r: dict(alpha=A.number(r, "alpha", 0.01)),
                         lambda a, x, y, dy: np.where(x >= 0, dy, dy * dy.dtype.type(a["alpha"]))),
    "hardsigmoid_ab": _unary(lambda a, x: np.clip(x * x.dtype.type(a["alpha"]) + x.dtype.type(a["beta"]), 0, 1), 2.0,
                             lambda r: dict(alpha=A.number(r, "alpha", 0.2), beta=A.number(r, "beta", 0.5)),
                             lambda a, x, y, dy: dy * dy.dtype.type(a["alpha"]) * ((y > 0) & (y < 1))),
    "erf": _unary(lambda a, x: erf(x), 8.0, grad=lambda a, x, y, dy: dy * (2 / math.sqrt(math.pi)) * np.exp(-x * x)),
    "exp": _unary(lambda a, x: np.exp(x), 4.0, grad=lambda a, x, y, dy: dy * y),
    "sqrt": _unary(lambda a, x: _ieee(np.sqrt)(x), 4.0, grad=lambda a, x, y, dy: dy / (2 * y)),
    "neg": _typed(lambda a, x: -x, 1.0, grad=lambda a, x, y, dy: -dy),
    "abs": _typed(lambda a, x: np.abs(x), 1.0, grad=lambda a, x, y, dy: dy * np.sign(x)),
    "sign": _typed(lambda a, x: np.sign(x), 1.0, grad=lambda a, x, y, dy: np.zeros_like(dy)),
    "elu": _unary(lambda a, x: elu(x, a["alpha"]), 4.0, lambda r: dict(alpha=A.number(r, "alpha", 1.0)),
                  lambda a, x, y, dy: dy * np.where(x > 0, 1, y + dy.dtype.type(a["alpha"]))),
    "selu": _unary(lambda a, x: x.dtype.type(a["gamma"]) * elu(x, a["alpha"]), 5.0,
                   lambda r: dict(alpha=A.number(r, "alpha", SELU_ALPHA), gamma=A.number(r, "gamma", SELU_GAMMA)),
                   lambda a, x, y, dy: dy * dy.dtype.type(a["gamma"]) * np.where(x > 0, 1, a["alpha"] * np.exp(x))),
    "softsign": _unary(lambda a, x: x / (1 + np.abs(x)), 3.0, grad=lambda a, x, y, dy: dy / np.square(1 + np.abs(x))),
    "shrink": _unary(shrink, 2.0, lambda r: dict(bias=A.number(r, "bias", 0.0), lambd=A.number(r, "lambd", 0.5)),
                     lambda a, x, y, dy: dy * (np.abs(x) > a["lambd"])),
    "prelu": OpDef(A.none, _broadcast_join, lambda a, xs, ctx: prelu(*aligned(xs)), vector_ops=1.0, backward=_prelu_back,
                   epilogue="element"),
    "bcast_add": _binary(np.add, grad=lambda xs, y, dy: [dy, dy]),
    "bcast_mul": _binary(np.multiply, grad=lambda xs, y, dy: [dy * xs[1], dy * xs[0]]),
    "sub": _binary(np.subtract, grad=lambda xs, y, dy: [dy, -dy]),
    "div": _binary(_ieee(np.divide), grad=lambda xs, y, dy: [dy / xs[1], -dy * y / xs[1]]),
    "pow": _binary(_ieee(np.power), 4.0),
    "maximum": _binary(np.maximum, grad=lambda xs, y, dy: [dy * (xs[0] >= xs[1]), dy * (xs[0] < xs[1])]),
    "minimum": _binary(np.minimum, grad=lambda xs, y, dy: [dy * (xs[0] <= xs[1]), dy * (xs[0] > xs[1])]),
    # an op accelsim cannot run, costed as ``vector_ops`` per output element (``--unsupported vector``)
    "vector": OpDef(lambda r: dict(shape=A.int_list(r, "shape"), onnx_op=r.string("onnx_op")),
                    lambda a, s: tuple(a["shape"]), _no_run, vector_ops=1.0),
}
