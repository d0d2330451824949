"""ResNets: torchvision's ResNet-50 v1.5, and Keras applications' ResNet50 (v1) and ResNet50V2/152V2.

Keras (``keras/src/applications/resnet.py``, ``resnet_v2.py``): padding is explicit (``ZeroPadding2D`` then a
"valid" conv or pool, or "same" at stride 1), so one graph serves any input size: ``params: {size: 299}``.
v1 (``block1``): the stride sits on the first 1×1 conv, every conv has a bias, BN after each conv.
v2 (``block2``, pre-activation): BN + ReLU before the convs; the shortcut of a stack's first block is a 1×1 conv
with bias on the pre-activation, the other blocks pass x through (a 1×1 stride-2 max pool in the last block,
which carries the stack's stride on its 3×3 conv); the 1×1 and 3×3 convs have no bias, the last 1×1 has one.
"""
from __future__ import annotations

from .graph import G, image, write


def resnet50():
    g = G()
    g.conv_bn("conv1", 64, 7, 2)
    x = g.add("maxpool", "maxpool", kernel=3, stride=2, padding=1)
    for stage, (mid, blocks, stride) in enumerate([(64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2)], 1):
        for b in range(blocks):
            p, s = f"layer{stage}.{b}", stride if b == 0 else 1
            g.conv_bn(f"{p}.c1", mid, 1, 1, inp=x)
            g.conv_bn(f"{p}.c2", mid, 3, s)           # v1.5: the stride sits on the 3×3 conv
            y = g.conv_bn(f"{p}.c3", mid * 4, 1, 1, act=None)
            short = g.conv_bn(f"{p}.down", mid * 4, 1, s, act=None, inp=x) if b == 0 else x
            g.add(f"{p}.add", "add", [y, short])
            x = g.add(f"{p}.relu", "relu")
    g.add("avgpool", "global_avgpool")
    g.add("flatten", "flatten")
    g.add("fc", "linear", out_features=1000)
    return write("resnet50", "ResNet-50 v1.5 (torchvision): 25.557 M params, ≈4.1 GMAC at 224×224",
                 "  - {name: image, shape: [3, 224, 224]}", g)


SIZE = "params:\n  size: 299   # input H = W; override: --param size=224\n"


def _stem(g: G, preact: bool) -> str:
    """conv1: ZeroPadding2D(3) + 7×7/2 conv with bias (+ BN + ReLU in v1); ZeroPadding2D(1) + 3×3/2 max pool."""
    g.conv("conv1", 64, 7, 2, pad=3, bias=True, bn=not preact, act=None if preact else "relu")
    return g.pool("pool1", "maxpool", 3, 2, pad=1)


def keras_resnet_v1(name: str, blocks: list[int]):
    g = G()
    x = _stem(g, preact=False)
    for stage, n in enumerate(blocks, 2):
        mid = 64 * 2 ** (stage - 2)
        for b in range(1, n + 1):
            p, s = f"conv{stage}_block{b}", 2 if b == 1 and stage > 2 else 1
            g.conv(f"{p}.1", mid, 1, s, pad=0, inp=x, bias=True)
            g.conv(f"{p}.2", mid, 3, bias=True)
            y = g.conv(f"{p}.3", 4 * mid, 1, pad=0, bias=True, act=None)
            short = g.conv(f"{p}.0", 4 * mid, 1, s, pad=0, inp=x, bias=True, act=None) if b == 1 else x
            g.add(f"{p}.add", "add", [short, y])
            x = g.add(f"{p}.out", "relu")
    g.classifier(1000)
    return write(name, "ResNet-50 v1 as Keras applications' ResNet50 (keras/src/applications/resnet.py: stride on "
                 "the first 1×1 conv,\nconvs with bias), 1000 classes, at 299×299 as in the Coral Edge TPU "
                 "benchmark table.\nKeras: 25,636,712 params counting BN as 4·C; here BN is 2·C: 25,583,592;\n≈7.21 GMAC at 299×299.",
                 image("size"), g, params=SIZE)


def keras_resnet_v2(name: str, blocks: list[int], title: str, keras_params: str, params: str, gmac: float):
    g = G()
    x = _stem(g, preact=True)
    for stage, n in enumerate(blocks, 2):
        mid = 64 * 2 ** (stage - 2)
        for b in range(1, n + 1):
            p, s = f"conv{stage}_block{b}", 2 if b == n and stage < 5 else 1
            g.add(f"{p}.preact.bn", "batchnorm", x)
            pre = g.add(f"{p}.preact.relu", "relu")
            if b == 1:
                short = g.conv(f"{p}.0", 4 * mid, 1, pad=0, bias=True, bn=False, act=None)
            else:
                short = g.pool(f"{p}.0.pool", "maxpool", 1, s, inp=x) if s > 1 else x
            g.conv(f"{p}.1", mid, 1, pad=0, inp=pre)
            g.conv(f"{p}.2", mid, 3, s, pad=1)
            y = g.conv(f"{p}.3", 4 * mid, 1, pad=0, bias=True, bn=False, act=None)
            x = g.add(f"{p}.add", "add", [short, y])
    g.add("post.bn", "batchnorm")
    g.add("post.relu", "relu")
    g.classifier(1000)
    return write(name, f"{title} as Keras applications' {title.replace('-', '').replace(' v2', 'V2')} "
                 f"(keras/src/applications/resnet_v2.py, pre-activation),\n1000 classes, at 299×299 as in the "
                 f"Coral Edge TPU benchmark table.\nKeras: {keras_params} params counting BN as 4·C; here BN is "
                 f"2·C: {params};\n≈{gmac} GMAC at 299×299.", image("size"), g, params=SIZE)


def build():
    return [resnet50(),
            keras_resnet_v1("resnet50_v1_299", [3, 4, 6, 3]),
            keras_resnet_v2("resnet50_v2_299", [3, 4, 6, 3], "ResNet-50 v2", "25,613,800", "25,568,360", 6.54),
            keras_resnet_v2("resnet152_v2_299", [3, 8, 36, 3], "ResNet-152 v2", "60,380,648", "60,236,904",
                            20.21)]
