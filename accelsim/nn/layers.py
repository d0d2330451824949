"""Layers with forward AND backward, for training our small CNNs now and quantization-aware training later.

Protocol (no autograd; each layer is its own small tape):

* ``forward(x, train=False)`` returns the output and caches what ``backward`` needs;
* ``backward(dy)`` returns ``dL/dx`` and stores ``dL/dθ`` in ``self.grads`` (same keys as ``self.params``);
* ``params`` are trainable arrays, ``buffers`` non-trainable state (BatchNorm running statistics); the
  optimizer updates ``params`` in place.

The arithmetic lives with the ops (:mod:`accelsim.ops.functional`) (formulas in its docstrings). :class:`Sequential` and
:class:`Residual` compose layers; ``state_dict()`` / ``load_state_dict()`` use dotted names like
``"3.body.0.weight"`` and check every shape.
"""
from __future__ import annotations

import numpy as np

from accelsim.errors import AccelsimError
from accelsim.ops import functional as F

__all__ = ["Layer", "Conv2d", "Linear", "ReLU", "ReLU6", "MaxPool2d", "AvgPool2d", "GlobalAvgPool", "Flatten",
           "BatchNorm2d", "Add", "Residual", "Sequential", "SoftmaxCrossEntropy", "softmax_cross_entropy", "fold_bn", "he_normal"]

fold_bn = F.fold_bn


def he_normal(rng: np.random.Generator, shape, fan_in: int, dtype=np.float32) -> np.ndarray:
    """Kaiming-normal init for ReLU nets: ``N(0, 2 / fan_in)``."""
    return (rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)).astype(dtype)


class Layer:
    """Base class: a parameter-free identity-shaped layer."""

    def __init__(self):
        self.params: dict[str, np.ndarray] = {}
        self.grads: dict[str, np.ndarray] = {}
        self.buffers: dict[str, np.ndarray] = {}
        self._cache = None

    def __call__(self, x, train: bool = False):
        return self.forward(x, train)

    def forward(self, x, train: bool = False):  # pragma: no cover - abstract
        raise NotImplementedError

    def backward(self, dy):  # pragma: no cover - abstract
        raise NotImplementedError

    def _saved(self):
        if self._cache is None:
            raise AccelsimError(f"{type(self).__name__}.backward called before forward")
        return self._cache

    def parameters(self):
        """``(layer, name)`` pairs of every trainable array (recursively for containers)."""
        return [(self, k) for k in self.params]

    def state_dict(self, prefix: str = "") -> dict[str, np.ndarray]:
        return {prefix + k: v for k, v in {**self.params, **self.buffers}.items()}

    def load_state_dict(self, state: dict, prefix: str = "") -> None:
        """Copy ``state[prefix + name]`` into every param and buffer (missing name or shape → AccelsimError)."""
        for store in (self.params, self.buffers):
            for k, v in store.items():
                key = prefix + k
                if key not in state:
                    raise AccelsimError(f"state dict is missing tensor {key!r}")
                if np.shape(state[key]) != v.shape:
                    raise AccelsimError(f"tensor {key!r}: expected shape {v.shape}, got {np.shape(state[key])}")
                store[k] = np.array(state[key], dtype=v.dtype)


class Conv2d(Layer):
    """``y = conv2d(x, weight, bias, stride, padding, dilation, groups)``, weight [Cout, Cin/g, R, S]."""

    def __init__(self, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
        super().__init__()
        self.params["weight"] = weight
        if bias is not None:
            self.params["bias"] = bias
        self.stride, self.padding, self.dilation, self.groups = stride, padding, dilation, groups

    @classmethod
    def init(cls, rng, cin, cout, kernel, stride=1, padding=0, dilation=1, groups=1, bias=True, dtype=np.float32):
        """He-initialised weights, zero bias."""
        fan_in = cin // groups * kernel * kernel
        w = he_normal(rng, (cout, cin // groups, kernel, kernel), fan_in, dtype)
        return cls(w, np.zeros(cout, dtype) if bias else None, stride, padding, dilation, groups)

    def _conf(self):
        return dict(stride=self.stride, padding=self.padding, dilation=self.dilation, groups=self.groups)

    def forward(self, x, train=False):
        self._cache = x
        return F.conv2d(x, self.params["weight"], self.params.get("bias"), **self._conf())

    def backward(self, dy):
        dx, dw, db = F.conv2d_backward(dy, self._saved(), self.params["weight"], has_bias="bias" in self.params,
                                       **self._conf())
        self.grads["weight"] = dw
        if db is not None:
            self.grads["bias"] = db
        return dx


class Linear(Layer):
    """``y = x @ weightᵀ + bias``, weight [out, in]."""

    def __init__(self, weight, bias=None):
        super().__init__()
        self.params["weight"] = weight
        if bias is not None:
            self.params["bias"] = bias

    @classmethod
    def init(cls, rng, fan_in, fan_out, dtype=np.float32):
        return cls(he_normal(rng, (fan_out, fan_in), fan_in, dtype), np.zeros(fan_out, dtype))

    def forward(self, x, train=False):
        self._cache = x
        return F.linear(x, self.params["weight"], self.params.get("bias"))

    def backward(self, dy):
        dx, dw, db = F.linear_backward(dy, self._saved(), self.params["weight"])
        self.grads["weight"] = dw
        if "bias" in self.params:
            self.grads["bias"] = db
        return dx


class ReLU(Layer):
    """``max(x, 0)``; gradient ``[x > 0]``."""

    def forward(self, x, train=False):
        self._cache = x
        return F.relu(x)

    def backward(self, dy):
        return F.relu_backward(dy, self._saved())


class ReLU6(Layer):
    """``clip(x, 0, 6)``; gradient ``[0 < x < 6]``."""

    def forward(self, x, train=False):
        self._cache = x
        return F.relu6(x)

    def backward(self, dy):
        return F.relu6_backward(dy, self._saved())


class MaxPool2d(Layer):
    """Max over ``kernel×kernel`` windows (stride defaults to kernel, padding with −inf)."""

    def __init__(self, kernel, stride=None, padding=0):
        super().__init__()
        self.kernel, self.stride, self.padding = kernel, stride or kernel, padding

    def forward(self, x, train=False):
        y, arg = F.max_pool2d(x, self.kernel, self.stride, self.padding)
        self._cache = (x.shape, arg)
        return y

    def backward(self, dy):
        shape, arg = self._saved()
        return F.max_pool2d_backward(dy, arg, shape, self.kernel, self.stride, self.padding)


class AvgPool2d(Layer):
    """Mean over ``kernel×kernel`` windows (zero padding counted)."""

    def __init__(self, kernel, stride=None, padding=0):
        super().__init__()
        self.kernel, self.stride, self.padding = kernel, stride or kernel, padding

    def forward(self, x, train=False):
        self._cache = x.shape
        return F.avg_pool2d(x, self.kernel, self.stride, self.padding)

    def backward(self, dy):
        return F.avg_pool2d_backward(dy, self._saved(), self.kernel, self.stride, self.padding)


class GlobalAvgPool(Layer):
    """``[N, C, H, W] → [N, C]`` mean over the plane."""

    def forward(self, x, train=False):
        self._cache = x.shape
        return F.global_avg_pool(x)

    def backward(self, dy):
        return F.global_avg_pool_backward(dy, self._saved())


class Flatten(Layer):
    """``[N, ...] → [N, prod(...)]`` (C-order, as torch)."""

    def forward(self, x, train=False):
        self._cache = x.shape
        return x.reshape(x.shape[0], -1)

    def backward(self, dy):
        return dy.reshape(self._saved())


class BatchNorm2d(Layer):
    """Per-channel ``y = γ·x̂ + β``, ``x̂ = (x − μ)/√(σ² + eps)``.

    Training uses the batch's μ, σ² (biased) over (N, H, W) and updates the running statistics like torch:
    ``running = (1 − momentum)·running + momentum·batch`` (the unbiased variance for ``running_var``).
    Inference uses the running statistics; fold it into the preceding conv with :meth:`fold_into`.
    Backward (training): ``dx = (γ / (M·√(σ²+eps))) · (M·dy − Σdy − x̂·Σ(dy·x̂))``, ``M = N·H·W``.
    """

    def __init__(self, channels, eps=1e-5, momentum=0.1, dtype=np.float32):
        super().__init__()
        self.params = {"weight": np.ones(channels, dtype), "bias": np.zeros(channels, dtype)}
        self.buffers = {"running_mean": np.zeros(channels, dtype), "running_var": np.ones(channels, dtype)}
        self.eps, self.momentum = eps, momentum

    def forward(self, x, train=False):
        g, b = self.params["weight"], self.params["bias"]
        if train:
            mean, var = x.mean(axis=(0, 2, 3)), x.var(axis=(0, 2, 3))
            self._update_running(mean, var, x.size // x.shape[1])
        else:
            mean, var = self.buffers["running_mean"], self.buffers["running_var"]
        inv = (1.0 / np.sqrt(var + self.eps)).astype(x.dtype)
        xhat = (x - mean.astype(x.dtype)[None, :, None, None]) * inv[None, :, None, None]
        self._cache = (train, xhat, inv)
        return xhat * g[None, :, None, None] + b[None, :, None, None]

    def _update_running(self, mean, var, m):
        rm, rv = self.buffers["running_mean"], self.buffers["running_var"]
        self.buffers["running_mean"] = ((1 - self.momentum) * rm + self.momentum * mean).astype(rm.dtype)
        unbiased = var * m / max(m - 1, 1)
        self.buffers["running_var"] = ((1 - self.momentum) * rv + self.momentum * unbiased).astype(rv.dtype)

    def backward(self, dy):
        train, xhat, inv = self._saved()
        g = self.params["weight"]
        sum_dy = dy.sum(axis=(0, 2, 3))
        sum_dy_xhat = (dy * xhat).sum(axis=(0, 2, 3))
        self.grads["weight"], self.grads["bias"] = sum_dy_xhat, sum_dy
        if not train:  # frozen statistics: y is affine in x
            return dy * (g * inv)[None, :, None, None]
        m = dy.size // dy.shape[1]
        centred = m * dy - sum_dy[None, :, None, None] - xhat * sum_dy_xhat[None, :, None, None]
        return centred * (g * inv / m)[None, :, None, None]

    def fold_into(self, conv: Conv2d) -> Conv2d:
        """A new Conv2d computing ``bn(conv(x))`` in inference mode."""
        w, b = fold_bn(conv.params["weight"], conv.params.get("bias"), self.params["weight"], self.params["bias"],
                       self.buffers["running_mean"], self.buffers["running_var"], self.eps)
        return Conv2d(w, b, conv.stride, conv.padding, conv.dilation, conv.groups)


class Add(Layer):
    """Residual join ``y = a + b``; ``backward(dy)`` returns ``(dy, dy)``."""

    def forward(self, a, b, train=False):
        if a.shape != b.shape:
            raise AccelsimError(f"Add: shapes differ, {a.shape} vs {b.shape}")
        return a + b

    def backward(self, dy):
        return dy, dy


class Sequential(Layer):
    """``y = layers[-1](... layers[0](x))``; backward runs the layers in reverse."""

    def __init__(self, *layers):
        super().__init__()
        self.layers = list(layers)

    def forward(self, x, train=False):
        for layer in self.layers:
            x = layer.forward(x, train)
        return x

    def backward(self, dy):
        for layer in reversed(self.layers):
            dy = layer.backward(dy)
        return dy

    def parameters(self):
        return [p for layer in self.layers for p in layer.parameters()]

    def state_dict(self, prefix=""):
        out = {}
        for i, layer in enumerate(self.layers):
            out.update(layer.state_dict(f"{prefix}{i}."))
        return out

    def load_state_dict(self, state, prefix=""):
        for i, layer in enumerate(self.layers):
            layer.load_state_dict(state, f"{prefix}{i}.")


class Residual(Layer):
    """``y = body(x) + shortcut(x)`` (shortcut = identity when None); ``dx = body'ᵀdy + shortcut'ᵀdy``."""

    def __init__(self, body: Layer, shortcut: Layer | None = None):
        super().__init__()
        self.body, self.shortcut, self.add = body, shortcut, Add()

    def forward(self, x, train=False):
        skip = x if self.shortcut is None else self.shortcut.forward(x, train)
        return self.add.forward(self.body.forward(x, train), skip)

    def backward(self, dy):
        d_body, d_skip = self.add.backward(dy)
        dx = self.body.backward(d_body)
        return dx + (d_skip if self.shortcut is None else self.shortcut.backward(d_skip))

    def _children(self):
        return [("body", self.body)] + ([("shortcut", self.shortcut)] if self.shortcut is not None else [])

    def parameters(self):
        return [p for _, child in self._children() for p in child.parameters()]

    def state_dict(self, prefix=""):
        out = {}
        for name, child in self._children():
            out.update(child.state_dict(f"{prefix}{name}."))
        return out

    def load_state_dict(self, state, prefix=""):
        for name, child in self._children():
            child.load_state_dict(state, f"{prefix}{name}.")


def softmax_cross_entropy(logits, labels):
    """Mean cross-entropy ``L = −(1/N) Σ_n log softmax(z_n)[y_n]`` and ``dL/dz = (softmax(z) − onehot(y)) / N``."""
    n, k = logits.shape
    labels = np.asarray(labels)
    if labels.shape != (n,) or labels.min(initial=0) < 0 or labels.max(initial=0) >= k:
        raise AccelsimError(f"softmax_cross_entropy: labels must be [N={n}] ints in 0..{k - 1}, got {labels.shape}")
    z = logits - logits.max(axis=1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    loss = -logp[np.arange(n), labels].mean()
    grad = np.exp(logp)
    grad[np.arange(n), labels] -= 1
    return float(loss), grad / n


class SoftmaxCrossEntropy:
    """Mean cross-entropy of logits [N, K] against int labels [N]; ``backward()`` = ``(softmax − onehot)/N``."""

    def __init__(self):
        self._grad = None

    def forward(self, logits, labels) -> float:
        loss, self._grad = softmax_cross_entropy(logits, labels)
        return loss

    __call__ = forward

    def backward(self, dloss: float = 1.0):
        if self._grad is None:
            raise AccelsimError("SoftmaxCrossEntropy.backward called before forward")
        return self._grad * dloss
