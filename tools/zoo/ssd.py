"""SSD MobileNet v1 / v2 detectors (TF object detection API), the part that runs on the Edge TPU.

The Coral models ``ssd_mobilenet_v{1,2}_coco_quant_postprocess`` are ``ssd_mobilenet_v{1,2}_quantized_300x300_coco``
(``research/object_detection/samples/configs/``), exported for TFLite: a 300×300 input, a MobileNet feature
extractor (``ssd_mobilenet_v{1,2}_feature_extractor.py``), ``multi_resolution_feature_maps`` with four extra
layers (1×1 conv to depth/2, then 3×3/2 "SAME" conv to 512, 256, 256, 128; BN + ReLU6), and a convolutional box
predictor (1×1 kernels with bias, no BN) on six feature maps with 3, 6, 6, 6, 6, 6 anchors per cell
(``ssd_anchor_generator``: 5 aspect ratios + 1, ``reduce_boxes_in_lowest_layer``), 4 box codes and 91 class
scores (90 COCO classes + background) per anchor: 1917 anchors. The box and class outputs are reshaped,
concatenated and the scores pass a sigmoid; the ``TFLite_Detection_PostProcess`` custom op (box decoding and
non-max suppression) runs on the host CPU and is not in the graph.
"""
from __future__ import annotations

from .graph import G, image, tf_same, write
from .mobile import mobilenet_v1_body, mobilenet_v2_body

SIZE, CLASSES = 300, 91


def _extra_layers(g: G, x: str, size: int) -> list[tuple[str, int]]:
    """``multi_resolution_feature_maps`` with ``insert_1x1_conv``: layer depths 512, 256, 256, 128."""
    maps = []
    for i, depth in enumerate([512, 256, 256, 128], 2):
        g.conv(f"extra{i}.1x1", depth // 2, 1, pad=0, inp=x, act="relu6")
        x = g.conv(f"extra{i}.3x3", depth, 3, 2, pad=tf_same(size, 3, 2), act="relu6")
        size = -(-size // 2)
        maps.append((x, size))
    return maps


def _box_predictor(g: G, maps: list[tuple[str, int]]) -> None:
    boxes, scores = [], []
    for i, ((x, size), anchors) in enumerate(zip(maps, [3, 6, 6, 6, 6, 6])):
        n = size * size * anchors
        g.add(f"box{i}.conv", "conv2d", x, out_channels=4 * anchors, kernel=1, stride=1, padding=0, groups=1,
              bias=True)
        boxes.append(g.add(f"box{i}.reshape", "reshape", shape=[n, 4]))
        g.add(f"class{i}.conv", "conv2d", x, out_channels=CLASSES * anchors, kernel=1, stride=1, padding=0,
              groups=1, bias=True)
        scores.append(g.add(f"class{i}.reshape", "reshape", shape=[n, CLASSES]))
    g.add("box_encodings", "concat", boxes, axis=0)
    g.add("class_concat", "concat", scores, axis=0)
    g.add("class_predictions", "sigmoid")


HEADER = ("SSD MobileNet {v} as the TF object detection API's ssd_mobilenet_{v}_quantized_300x300_coco (the Coral "
          "model\nssd_mobilenet_{v}_coco_quant_postprocess): 300×300 input (the Coral benchmark table says "
          "224×224; the released model\ntakes 300×300), 1917 anchors, 91 class scores. Only the Edge TPU part: "
          "the TFLite_Detection_PostProcess op\n(box decoding, NMS) runs on the host CPU and is left out.\naccelsim: {stats}.")


def ssd_mobilenet_v1():
    g = G()
    points = mobilenet_v1_body(g, SIZE)
    maps = [points[10], points[12]]                 # Conv2d_11_pointwise (19×19), Conv2d_13_pointwise (10×10)
    _box_predictor(g, maps + _extra_layers(g, *points[12]))
    return write("ssd_mobilenet_v1", HEADER.format(v="v1", stats="6,819,839 params (BN as 2·C), ≈1.24 GMAC"), image(SIZE), g)


def ssd_mobilenet_v2():
    g = G()
    size = mobilenet_v2_body(g, SIZE)
    maps = [("block5.0.expand.relu6", 19), ("head.relu6", size)]   # layer_15/expansion_output, layer_19
    _box_predictor(g, maps + _extra_layers(g, "head.relu6", size))
    return write("ssd_mobilenet_v2", HEADER.format(v="v2", stats="6,066,431 params (BN as 2·C), ≈0.77 GMAC"), image(SIZE), g)


def build():
    return [ssd_mobilenet_v1(), ssd_mobilenet_v2()]
