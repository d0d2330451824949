"""Inception family: TF-slim Inception v1 and v4 (1001 classes, the Coral models ``inception_v1_224_quant`` and
``inception_v4_299_quant``) and Keras applications' InceptionResNetV2 (1000 classes).

TF-slim (``research/slim/nets/inception_v1.py``, ``inception_v4.py``, ``inception_utils.py``): every conv but the
logits has BN (``scale=False``) and ReLU and no bias; "SAME" padding unless a layer says "VALID". Slim's
Inception v1 uses a 3×3 conv where the paper's GoogLeNet has a 5×5 (``Branch_2/Conv2d_0b_3x3``). The auxiliary
logits of v4 are training-only: the exported inference graph ends at ``Logits``, so they are left out.
Keras (``keras/src/applications/inception_resnet_v2.py``): ``conv2d_bn`` = conv without bias + BN
(``scale=False``) + ReLU; each residual block ends in a 1×1 "up" conv with bias and no BN, then
``x + scale · up`` (here an ``add``: the constant scale folds into the up conv's weights and bias) and ReLU.
"""
from __future__ import annotations

from .graph import G, image, tf_same, write


def _branch(g: G, p: str, x: str, convs) -> str:
    """A chain of conv + BN + ReLU: ``convs`` = (out, kernel, stride, pad or None for "SAME" at stride 1)."""
    for j, (out, k, s, pad) in enumerate(convs):
        x = g.conv(f"{p}.{j}", out, k, s, pad=pad, inp=x if j == 0 else None)
    return x


def _concat(g: G, p: str, branches) -> str:
    return g.add(f"{p}.concat", "concat", list(branches), axis=0)


def _pool_branch(g: G, p: str, x: str, out: int) -> str:
    """3×3/1 average pool ("SAME": the mean of the cells inside the input) then a 1×1 conv."""
    g.pool(f"{p}.pool", "avgpool_valid", 3, 1, pad=1, inp=x)
    return g.conv(f"{p}.conv", out, 1, pad=0)


def inception_v1():
    g = G()
    g.conv("conv1a", 64, 7, 2, pad=tf_same(224, 7, 2))                      # 112
    g.pool("pool2a", "maxpool", 3, 2, pad=tf_same(112, 3, 2))                # 56
    g.conv("conv2b", 64, 1, pad=0)
    g.conv("conv2c", 192, 3)
    x = g.pool("pool3a", "maxpool", 3, 2, pad=tf_same(56, 3, 2))             # 28
    mixed = [("3b", 64, 96, 128, 16, 32, 32), ("3c", 128, 128, 192, 32, 96, 64), 28,
             ("4b", 192, 96, 208, 16, 48, 64), ("4c", 160, 112, 224, 24, 64, 64), ("4d", 128, 128, 256, 24, 64, 64),
             ("4e", 112, 144, 288, 32, 64, 64), ("4f", 256, 160, 320, 32, 128, 128), 14,
             ("5b", 256, 160, 320, 32, 128, 128), ("5c", 384, 192, 384, 48, 128, 128)]
    for m in mixed:
        if isinstance(m, int):   # MaxPool_4a_3x3 (28 → 14) and MaxPool_5a_2x2 (14 → 7), "SAME"
            k = 3 if m == 28 else 2
            x = g.pool(f"pool{'4a' if m == 28 else '5a'}", "maxpool", k, 2, pad=tf_same(m, k, 2))
            continue
        p, b0, b1a, b1b, b2a, b2b, b3 = m
        p = f"mixed_{p}"
        y0 = _branch(g, f"{p}.b0", x, [(b0, 1, 1, 0)])
        y1 = _branch(g, f"{p}.b1", x, [(b1a, 1, 1, 0), (b1b, 3, 1, None)])
        y2 = _branch(g, f"{p}.b2", x, [(b2a, 1, 1, 0), (b2b, 3, 1, None)])   # slim: 3×3 (GoogLeNet: 5×5)
        g.pool(f"{p}.b3.pool", "maxpool", 3, 1, pad=1, inp=x)
        y3 = g.conv(f"{p}.b3.conv", b3, 1, pad=0)
        x = _concat(g, p, [y0, y1, y2, y3])
    g.classifier(1001, conv=True)
    return write("inception_v1", "Inception v1 as TF-slim's inception_v1 (the Coral model inception_v1_224_quant): "
                 "BN after every conv,\n3×3 (not 5×5) convs in the third branch, 1001 classes, 224×224.\n"
                 "accelsim: 6,625,929 params (BN as 2·C), ≈1.50 GMAC.",
                 image(224), g)


def _v4_a(g, p, x):
    return _concat(g, p, [_branch(g, f"{p}.b0", x, [(96, 1, 1, 0)]),
                          _branch(g, f"{p}.b1", x, [(64, 1, 1, 0), (96, 3, 1, None)]),
                          _branch(g, f"{p}.b2", x, [(64, 1, 1, 0), (96, 3, 1, None), (96, 3, 1, None)]),
                          _pool_branch(g, f"{p}.b3", x, 96)])


def _v4_b(g, p, x):
    return _concat(g, p, [
        _branch(g, f"{p}.b0", x, [(384, 1, 1, 0)]),
        _branch(g, f"{p}.b1", x, [(192, 1, 1, 0), (224, (1, 7), 1, None), (256, (7, 1), 1, None)]),
        _branch(g, f"{p}.b2", x, [(192, 1, 1, 0), (192, (7, 1), 1, None), (224, (1, 7), 1, None),
                                  (224, (7, 1), 1, None), (256, (1, 7), 1, None)]),
        _pool_branch(g, f"{p}.b3", x, 128)])


def _v4_c(g, p, x):
    y1 = _branch(g, f"{p}.b1", x, [(384, 1, 1, 0)])
    y2 = _branch(g, f"{p}.b2", x, [(384, 1, 1, 0), (448, (3, 1), 1, None), (512, (1, 3), 1, None)])
    return _concat(g, p, [_branch(g, f"{p}.b0", x, [(256, 1, 1, 0)]),
                          _branch(g, f"{p}.b1a", y1, [(256, (1, 3), 1, None)]),
                          _branch(g, f"{p}.b1b", y1, [(256, (3, 1), 1, None)]),
                          _branch(g, f"{p}.b2a", y2, [(256, (1, 3), 1, None)]),
                          _branch(g, f"{p}.b2b", y2, [(256, (3, 1), 1, None)]),
                          _pool_branch(g, f"{p}.b3", x, 256)])


def inception_v4():
    g = G()
    x = _branch(g, "stem", None, [(32, 3, 2, 0), (32, 3, 1, 0), (64, 3, 1, None)])          # 147
    x = _concat(g, "mixed_3a", [g.pool("mixed_3a.b0.pool", "maxpool", 3, 2, inp=x),
                                _branch(g, "mixed_3a.b1", x, [(96, 3, 2, 0)])])                 # 73, 160
    x = _concat(g, "mixed_4a", [
        _branch(g, "mixed_4a.b0", x, [(64, 1, 1, 0), (96, 3, 1, 0)]),
        _branch(g, "mixed_4a.b1", x, [(64, 1, 1, 0), (64, (1, 7), 1, None), (64, (7, 1), 1, None), (96, 3, 1, 0)])])
    x = _concat(g, "mixed_5a", [_branch(g, "mixed_5a.b0", x, [(192, 3, 2, 0)]),
                                g.pool("mixed_5a.b1.pool", "maxpool", 3, 2, inp=x)])            # 35, 384
    for i in range(4):
        x = _v4_a(g, f"mixed_5{'bcde'[i]}", x)
    x = _concat(g, "mixed_6a", [_branch(g, "mixed_6a.b0", x, [(384, 3, 2, 0)]),
                                _branch(g, "mixed_6a.b1", x, [(192, 1, 1, 0), (224, 3, 1, None), (256, 3, 2, 0)]),
                                g.pool("mixed_6a.b2.pool", "maxpool", 3, 2, inp=x)])            # 17, 1024
    for i in range(7):
        x = _v4_b(g, f"mixed_6{'bcdefgh'[i]}", x)
    x = _concat(g, "mixed_7a", [
        _branch(g, "mixed_7a.b0", x, [(192, 1, 1, 0), (192, 3, 2, 0)]),
        _branch(g, "mixed_7a.b1", x, [(256, 1, 1, 0), (256, (1, 7), 1, None), (320, (7, 1), 1, None), (320, 3, 2, 0)]),
        g.pool("mixed_7a.b2.pool", "maxpool", 3, 2, inp=x)])                                    # 8, 1536
    for i in range(3):
        x = _v4_c(g, f"mixed_7{'bcd'[i]}", x)
    g.classifier(1001)
    return write("inception_v4", "Inception v4 as TF-slim's inception_v4 (the Coral model inception_v4_299_quant): "
                 "1001 classes, 299×299,\nwithout the training-only auxiliary logits. Paper (Szegedy et al. "
                 "2016): 42.7 M params.\naccelsim: 42,681,353 params (BN as 2·C), ≈12.25 GMAC.", image(299), g)


def _irv2_block(g: G, p: str, x: str, kind: str, channels: int, relu: bool = True) -> str:
    if kind == "block35":
        ys = [_branch(g, f"{p}.b0", x, [(32, 1, 1, 0)]), _branch(g, f"{p}.b1", x, [(32, 1, 1, 0), (32, 3, 1, None)]),
              _branch(g, f"{p}.b2", x, [(32, 1, 1, 0), (48, 3, 1, None), (64, 3, 1, None)])]
    elif kind == "block17":
        ys = [_branch(g, f"{p}.b0", x, [(192, 1, 1, 0)]),
              _branch(g, f"{p}.b1", x, [(128, 1, 1, 0), (160, (1, 7), 1, None), (192, (7, 1), 1, None)])]
    else:
        ys = [_branch(g, f"{p}.b0", x, [(192, 1, 1, 0)]),
              _branch(g, f"{p}.b1", x, [(192, 1, 1, 0), (224, (1, 3), 1, None), (256, (3, 1), 1, None)])]
    _concat(g, p, ys)
    up = g.conv(f"{p}.up", channels, 1, pad=0, bias=True, bn=False, act=None)
    y = g.add(f"{p}.add", "add", [x, up])
    return g.add(f"{p}.relu", "relu") if relu else y


def inception_resnet_v2():
    g = G()
    _branch(g, "stem", None, [(32, 3, 2, 0), (32, 3, 1, 0), (64, 3, 1, None)])              # 147
    g.pool("stem.pool1", "maxpool", 3, 2)                                                      # 73
    _branch(g, "stem.b", None, [(80, 1, 1, 0), (192, 3, 1, 0)])                                # 71
    x = g.pool("stem.pool2", "maxpool", 3, 2)                                                  # 35
    x = _concat(g, "mixed_5b", [_branch(g, "mixed_5b.b0", x, [(96, 1, 1, 0)]),
                                _branch(g, "mixed_5b.b1", x, [(48, 1, 1, 0), (64, 5, 1, None)]),
                                _branch(g, "mixed_5b.b2", x, [(64, 1, 1, 0), (96, 3, 1, None), (96, 3, 1, None)]),
                                _pool_branch(g, "mixed_5b.b3", x, 64)])                        # 320
    for i in range(1, 11):
        x = _irv2_block(g, f"block35_{i}", x, "block35", 320)
    x = _concat(g, "mixed_6a", [_branch(g, "mixed_6a.b0", x, [(384, 3, 2, 0)]),
                                _branch(g, "mixed_6a.b1", x, [(256, 1, 1, 0), (256, 3, 1, None), (384, 3, 2, 0)]),
                                g.pool("mixed_6a.b2.pool", "maxpool", 3, 2, inp=x)])            # 17, 1088
    for i in range(1, 21):
        x = _irv2_block(g, f"block17_{i}", x, "block17", 1088)
    x = _concat(g, "mixed_7a", [_branch(g, "mixed_7a.b0", x, [(256, 1, 1, 0), (384, 3, 2, 0)]),
                                _branch(g, "mixed_7a.b1", x, [(256, 1, 1, 0), (288, 3, 2, 0)]),
                                _branch(g, "mixed_7a.b2", x, [(256, 1, 1, 0), (288, 3, 1, None), (320, 3, 2, 0)]),
                                g.pool("mixed_7a.b3.pool", "maxpool", 3, 2, inp=x)])            # 8, 2080
    for i in range(1, 11):
        x = _irv2_block(g, f"block8_{i}", x, "block8", 2080, relu=i < 10)
    g.conv("conv_7b", 1536, 1, pad=0)
    g.classifier(1000)
    return write("inception_resnet_v2", "Inception-ResNet v2 as Keras applications' InceptionResNetV2 "
                 "(keras/src/applications/inception_resnet_v2.py):\n1000 classes, 299×299; the residual scale "
                 "folds into each block's up conv. Keras: 55,873,736 params\n(BN without gamma: 3·C each); "
                 "accelsim counts BN as 2·C: 55,843,464 params, ≈13.16 GMAC.", image(299), g)


def build():
    return [inception_v1(), inception_v4(), inception_resnet_v2()]
