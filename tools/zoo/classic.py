"""Plain CNNs: Keras applications' VGG16/VGG19 and DenseNet121, the TF TPU repo's SqueezeNet 1.0, accelsim's MNIST CNN.

Keras VGG (``keras/src/applications/vgg16.py``, ``vgg19.py``): 3×3 "same" convs with bias and ReLU, 2×2 max pools,
fc 4096-4096-1000. Keras DenseNet121 (``densenet.py``): ZeroPadding2D(3) + 7×7/2 conv, BN, ReLU,
ZeroPadding2D(1) + 3×3/2 max pool; dense blocks of BN-ReLU-1×1 conv (4·32)-BN-ReLU-3×3 conv (32) whose output is
concatenated to the input; transitions BN-ReLU-1×1 conv (×0.5)-2×2 average pool; no conv has a bias.
SqueezeNet (TF TPU repo ``models/official/squeezenet/squeezenet_model.py``, "Squeezenet 1.0 model"): every conv
"same" padded, with bias and ReLU (conv10 too), 3×3/2 "valid" max pools, a 13×13 average pool, 1001 classes.
"""
from __future__ import annotations

from .graph import G, image, tf_same, write


def vgg(depth: int):
    g = G()
    per_block = {16: [2, 2, 3, 3, 3], 19: [2, 2, 4, 4, 4]}[depth]
    for b, (n, out) in enumerate(zip(per_block, [64, 128, 256, 512, 512]), 1):
        for i in range(1, n + 1):
            g.conv(f"block{b}_conv{i}", out, 3, bias=True, bn=False)
        g.pool(f"block{b}_pool", "maxpool", 2, 2)
    g.add("flatten", "flatten")
    for i in (1, 2):
        g.add(f"fc{i}", "linear", out_features=4096)
        g.add(f"fc{i}.relu", "relu")
    g.add("predictions", "linear", out_features=1000)
    params, gmac = {16: ("138,357,544", 15.47), 19: ("143,667,240", 19.63)}[depth]
    return write(f"vgg{depth}", f"VGG{depth} as Keras applications' VGG{depth} (keras/src/applications/"
                 f"vgg{depth}.py): 1000 classes, 224×224.\nKeras documents {params} params (no BN: accelsim counts "
                 f"the same), ≈{gmac} GMAC.", image(224), g)


def densenet121():
    g = G()
    g.conv("conv1", 64, 7, 2, pad=3)
    x = g.pool("pool1", "maxpool", 3, 2, pad=1)
    channels = 64
    for b, n in enumerate([6, 12, 24, 16], 2):
        for i in range(1, n + 1):
            p = f"conv{b}_block{i}"
            g.add(f"{p}.0.bn", "batchnorm", x)
            g.add(f"{p}.0.relu", "relu")
            g.conv(f"{p}.1", 128, 1, pad=0)
            y = g.conv(f"{p}.2", 32, 3, bn=False, act=None)
            x = g.add(f"{p}.concat", "concat", [x, y], axis=0)
            channels += 32
        if b < 5:
            channels //= 2
            g.add(f"pool{b}.bn", "batchnorm")
            g.add(f"pool{b}.relu", "relu")
            g.conv(f"pool{b}", channels, 1, pad=0, bn=False, act=None)
            x = g.pool(f"pool{b}.pool", "avgpool", 2, 2)
    g.add("bn", "batchnorm")
    g.add("relu", "relu")
    g.classifier(1000)
    return write("densenet121", "DenseNet-121 as Keras applications' DenseNet121 (keras/src/applications/densenet.py): "
                 "1000 classes, 224×224.\nKeras: 8,062,504 params counting BN as 4·C; accelsim counts BN as 2·C: 7,978,856 params, ≈2.83 GMAC.",
                 image(224), g)


def squeezenet():
    g = G()
    g.conv("conv1", 96, 7, 2, pad=tf_same(224, 7, 2), bias=True, bn=False)                  # 112
    x = g.pool("maxpool1", "maxpool", 3, 2)                                                  # 55
    fires = [(16, 64), (16, 64), (32, 128), "maxpool4", (32, 128), (48, 192), (48, 192), (64, 256), "maxpool8",
             (64, 256)]
    n = 2
    for f in fires:
        if isinstance(f, str):
            x = g.pool(f, "maxpool", 3, 2)
            continue
        squeeze, expand = f
        s = g.conv(f"fire{n}.squeeze", squeeze, 1, pad=0, inp=x, bias=True, bn=False)
        e1 = g.conv(f"fire{n}.e1x1", expand, 1, pad=0, inp=s, bias=True, bn=False)
        e3 = g.conv(f"fire{n}.e3x3", expand, 3, inp=s, bias=True, bn=False)
        x = g.add(f"fire{n}.concat", "concat", [e1, e3], axis=0)
        n += 1
    g.conv("conv10", 1001, 1, pad=0, bias=True, bn=False)
    g.pool("avgpool10", "avgpool", 13, 1)
    g.add("flatten", "flatten")
    return write("squeezenet", "SqueezeNet 1.0 as the TF TPU repo's squeezenet (models/official/squeezenet): "
                 "1001 classes, 224×224,\n\"same\" convs (conv1 7×7/2 gives 112×112, the paper's 111×111), "
                 "no BN. The Coral table does not name the variant.\naccelsim: 1,248,937 params, ≈0.84 GMAC.", image(224), g)


def mnist_cnn():
    g = G()
    g.add("0", "conv2d", out_channels=16, kernel=3, padding=1, weight="'0'")
    g.add("1", "relu")
    g.add("2", "maxpool", kernel=2)
    g.add("3", "conv2d", out_channels=32, kernel=3, padding=1, weight="'3'")
    g.add("4", "relu")
    g.add("5", "maxpool", kernel=2)
    g.add("6", "flatten")
    g.add("7", "linear", out_features=10, weight="'7'")
    return write("mnist_cnn", "The small CNN accelsim trains on MNIST-5k (accelsim.nn.mnist_cnn.small_cnn): 20,490 "
                 "params; layer names match its Sequential indices", "  - {name: digit, shape: [1, 28, 28]}", g,
                 extra="weights: {format: npz, trained: cnn}   # trained by accelsim (seeded) and cached\n"
                       "dataset: mnist\n")


def build():
    return [mnist_cnn(), vgg(16), vgg(19), densenet121(), squeezenet()]
