"""The Coral Edge TPU benchmark models in the zoo: parameters and MACs against independent sources.

Parameter conventions, converted explicitly (never by tolerance): accelsim counts a ``batchnorm`` as 2·C (gamma,
beta: torch's count). Keras' ``model.count_params()`` adds the moving mean and variance (4·C), or has 3·C where
BN has no gamma (``scale=False``, InceptionResNetV2). A BN folded into a conv bias (a frozen or TFLite graph)
leaves C. Where a source has 1000 classes and the Coral (TF-slim / TF TPU) model 1001, one class row of the
classifier (fan-in weights + 1 bias) is the difference. ``bn_channels`` sums C over a model's BN layers.
"""
from __future__ import annotations

import math
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from accelsim.cli import main
from accelsim.config.loader import load_model
from accelsim.lowering import lower
from conftest import REPO

CORAL = ["mobilenet_v1", "mobilenet_v2", "inception_v1", "inception_v4", "inception_resnet_v2", "resnet50_v1_299",
         "resnet50_v2_299", "resnet152_v2_299", "squeezenet", "vgg16", "vgg19", "densenet121",
         "efficientnet_edgetpu_s", "efficientnet_edgetpu_m", "ssd_mobilenet_v1", "ssd_mobilenet_v2"]


def onnx_light(name: str) -> Path:
    """A model of the ``onnx`` package's backend test data (real architectures, weights stripped)."""
    onnx = pytest.importorskip("onnx")
    return Path(onnx.__file__).parent / "backend" / "test" / "data" / "light" / f"light_{name}.onnx"


def macs(model) -> int:
    return sum(w.gemm.macs for w in lower(model) if w.gemm is not None)


def bn_channels(model) -> int:
    return sum(layer.in_shapes[0][0] for layer in model.layers if layer.op == "batchnorm")


def conv_biases(model) -> int:
    return sum(layer.attrs["out_channels"] for layer in model.layers if layer.op == "conv2d" and layer.attrs["bias"])


def one_class(model) -> int:
    """Parameters of one classifier row: the last GEMM's fan-in weights and its bias."""
    return [w.gemm for w in lower(model) if w.gemm is not None][-1].k + 1


# How each source counts, as a function of the accelsim model.
COUNT = {
    "same": lambda m: m.params,
    "keras": lambda m: m.params + 2 * bn_channels(m),                      # + moving mean and variance
    "keras_1000": lambda m: m.params + 2 * bn_channels(m) - one_class(m),  # ... of a 1001-class model
    "keras_no_gamma": lambda m: m.params + bn_channels(m),                 # BN(scale=False): beta, mean, var
    "bn_folded": lambda m: m.params - bn_channels(m),                      # one bias per BN channel
    "same_1000": lambda m: m.params - one_class(m),
    "no_conv_bias": lambda m: m.params - conv_biases(m),
}

PARAMS = [
    # model, how the source counts, its value, tolerance (half its last digit when rounded), source
    ("vgg16", "same", 138_357_544, 0, "Keras docs/templates/applications.md: VGG16 138,357,544"),
    ("vgg19", "same", 143_667_240, 0, "Keras docs/templates/applications.md: VGG19 143,667,240"),
    ("resnet50_v1_299", "keras", 25_636_712, 0, "Keras docs/templates/applications.md: ResNet50 25,636,712"),
    ("resnet50_v1_299", "no_conv_bias", 25_557_032, 0,
     "onnx light_resnet50 (ResNet-50 without conv biases; stride placement does not change parameters)"),
    ("resnet50_v2_299", "keras", 25_613_800, 0, "Keras ResNet50V2().summary(): 25,613,800"),
    ("resnet152_v2_299", "keras", 60_380_648, 0, "Keras ResNet152V2().summary(): 60,380,648"),
    ("densenet121", "keras", 8_062_504, 0, "Keras docs/templates/applications.md: DenseNet121 8,062,504"),
    ("mobilenet_v1", "keras_1000", 4_253_864, 0, "Keras docs/templates/applications.md: MobileNet 4,253,864"),
    ("mobilenet_v1", "same", 4_200_000, 50_000, "Howard et al. 2017 (MobileNets paper): 1.0 MobileNet-224 4.2 M"),
    ("mobilenet_v2", "keras", 3_538_984, 0, "Keras MobileNetV2().summary(): 3,538,984"),
    ("inception_resnet_v2", "keras_no_gamma", 55_873_736, 0,
     "Keras docs/templates/applications.md: InceptionResNetV2 55,873,736"),
    ("inception_v1", "bn_folded", 6_619_000, 500, "OpenVINO Open Model Zoo googlenet-v1-tf (TF-slim): 6.619 MParams"),
    ("inception_v4", "same", 42_700_000, 50_000, "Szegedy et al. 2016 (Inception-v4 paper): 42.7 M"),
    ("inception_v4", "same_1000", 42_700_000, 50_000, "timm inception_v4.tf_in1k (TF-slim port, 1000 classes): 42.7 M"),
    ("squeezenet", "same_1000", 1_248_424, 0, "Iandola et al. 2016 (SqueezeNet paper) / torchvision squeezenet1_0: 1,248,424"),
    ("efficientnet_edgetpu_s", "same_1000", 5_400_000, 50_000, "timm efficientnet_es.ra_in1k model card (1000 classes): 5.4 M"),
    ("efficientnet_edgetpu_m", "same_1000", 6_900_000, 50_000, "timm efficientnet_em.ra2_in1k model card (1000 classes): 6.9 M"),
    ("ssd_mobilenet_v1", "bn_folded", 6_807_000, 500,
     "OpenVINO Open Model Zoo ssd_mobilenet_v1_coco (the float-trained twin, TF frozen graph): 6.807 MParams"),
]


@pytest.mark.parametrize("name, count, expected, tol, source", PARAMS, ids=[f"{r[0]}-{r[1]}" for r in PARAMS])
def test_params_match_source(name, count, expected, tol, source):
    assert abs(COUNT[count](load_model(name)) - expected) <= tol, source


def _fused_stride_shift(model) -> int:
    """EfficientNet-EdgeTPU's fused blocks put the stride on the 1×1 projection (TF TPU code) where timm puts
    it on the 3×3 expansion: a strided block's expansion then runs at 4× the output pixels, 3/4 of it extra."""
    work = {w.layer.name: w.gemm for w in lower(model) if w.gemm is not None}
    shifted = [name[:-len(".project.conv")] for name, w in work.items()
               if name.endswith(".project.conv") and model.layer(name).attrs["stride"] == (2, 2)]
    return sum(3 * work[f"{p}.expand.conv"].macs // 4 for p in shifted)


def _resnet_v1_vs_v15(model) -> int:
    """MACs torchvision's v1.5 adds to v1 at the same size: stages 3–5 run their first 1×1 conv at stride 1,
    on 4× the output pixels, before the strided 3×3 (3 extra Ho·Wo·Cin·Cmid each)."""
    firsts = [l for l in model.layers if l.name.endswith("_block1.1.conv") and l.attrs["stride"] == (2, 2)]
    return sum(3 * math.prod(l.out_shape[1:]) * l.in_shapes[0][0] * l.attrs["out_channels"] for l in firsts)


MACS = [
    # model, model params, MACs the source implies (a function of the model where the variant differs), tolerance
    pytest.param("vgg19", {}, lambda m: macs(load_model(onnx_light("vgg19"))), 0, "onnx light_vgg19 (same network; "
                 "importing its 143 M parameters takes seconds)", marks=pytest.mark.slow),
    ("vgg19", {}, lambda m: 19.63e9, 0.005e9, "torchvision vgg19 docs: 19.63 GFLOPS (multiply-adds)"),
    ("densenet121", {}, lambda m: macs(load_model(onnx_light("densenet121"))), 0, "onnx light_densenet121"),
    ("resnet50_v1_299", {"size": 224}, lambda m: macs(load_model(onnx_light("resnet50"))) - _resnet_v1_vs_v15(m),
     0, "onnx light_resnet50 (v1.5 at 224) less the v1.5 stride shift"),
    ("vgg16", {}, lambda m: 15.47e9, 0.005e9, "torchvision vgg16 docs: 15.47 GFLOPS (multiply-adds)"),
    ("mobilenet_v1", {}, lambda m: 569e6, 0.5e6, "Howard et al. 2017 (MobileNets paper) / TF-slim mobilenet_v1.md: 569 M"),
    ("mobilenet_v2", {}, lambda m: 0.30e9, 0.005e9, "torchvision mobilenet_v2 docs: 0.30 GFLOPS (multiply-adds)"),
    ("inception_v4", {}, lambda m: 12.3e9, 0.05e9, "timm inception_v4.tf_in1k model card: 12.3 GMACs"),
    ("inception_resnet_v2", {}, lambda m: 13.2e9, 0.05e9, "timm inception_resnet_v2.tf_ens_adv_in1k model card: 13.2 GMACs"),
    ("efficientnet_edgetpu_s", {}, lambda m: 1.8e9 + _fused_stride_shift(m), 0.05e9,
     "timm efficientnet_es.ra_in1k model card: 1.8 GMACs, stride on the 3×3 expansion"),
    ("efficientnet_edgetpu_m", {}, lambda m: 3.0e9 + _fused_stride_shift(m), 0.05e9,
     "timm efficientnet_em.ra2_in1k model card: 3.0 GMACs, stride on the 3×3 expansion"),
]


def _row_id(row) -> str:
    values = getattr(row, "values", row)
    return f"{values[0]}-{values[-1].split()[0]}"


@pytest.mark.parametrize("name, params, expected, tol, source", MACS, ids=[_row_id(r) for r in MACS])
def test_macs_match_source(name, params, expected, tol, source):
    model = load_model(name, params)
    assert abs(macs(model) - expected(model)) <= tol, source


def _conv_structure(model, kernel_map=None) -> Counter:
    kernel_map = kernel_map or {}
    return Counter((l.in_shapes[0][-3], l.attrs["out_channels"], kernel_map.get(l.attrs["kernel"], l.attrs["kernel"]),
                    l.attrs["stride"]) for l in model.layers if l.op == "conv2d")


def test_inception_v1_is_googlenet_with_slims_3x3_branch():
    """The onnx light_inception_v1 (BVLC GoogLeNet) has the same convs (in, out, kernel, stride) once its
    5×5 branch convs are read as TF-slim's 3×3; the logits differ only in their class count (1000 vs 1001)."""
    ours = _conv_structure(load_model("inception_v1"))
    googlenet = _conv_structure(load_model(onnx_light("inception_v1")), {(5, 5): (3, 3)})
    assert ours - googlenet == Counter({(1024, 1001, (1, 1), (1, 1)): 1})
    assert googlenet - ours == Counter()


def test_mobilenet_v2_is_the_tf_network_up_to_its_classifier():
    """The zoo's torchvision MobileNetV2 is TF's MobileNet V2 1.0 224 (same convs and shapes: TF "SAME" and
    torch's symmetric padding give equal sizes on even inputs); only TF's 1001st class is missing."""
    model = load_model("mobilenet_v2")
    assert model.layers[-1].out_shape == (1000,)
    assert [l.out_shape for l in model.layers if l.op == "conv2d"][-1] == (1280, 7, 7)


@pytest.mark.parametrize("name", ["ssd_mobilenet_v1", "ssd_mobilenet_v2"])
def test_ssd_heads_follow_the_anchor_generator(name):
    """``ssd_anchor_generator`` (6 layers, 5 aspect ratios, the lowest layer reduced to 3 boxes) on "SAME"-strided
    maps of a 300×300 input: 19, 10, then 5, 3, 2, 1 — 1917 anchors, 4 box codes and 91 scores each."""
    sizes = [math.ceil(300 / 16), math.ceil(300 / 32)]
    while len(sizes) < 6:
        sizes.append(math.ceil(sizes[-1] / 2))
    anchors = sum(h * h * a for h, a in zip(sizes, [3, 6, 6, 6, 6, 6]))
    model = load_model(name)
    assert anchors == 1917
    assert model.layer("box_encodings").out_shape == (anchors, 4)
    assert model.layer("class_predictions").out_shape == (anchors, 91)


def test_ssd_mobilenet_v2_backbone_is_the_zoos_mobilenet_v2():
    """The feature extractor of ssd_mobilenet_v2 (TF "SAME" padding, 300×300) has the parameters of the
    Keras-checked mobilenet_v2 without its classifier (1280 × 1000 + 1000)."""
    ssd = load_model("ssd_mobilenet_v2")
    backbone = sum(l.params for l in ssd.layers if not l.name.startswith(("extra", "box", "class")))
    assert backbone == load_model("mobilenet_v2").params - (1280 * 1000 + 1000)


@pytest.mark.parametrize("name", CORAL)
def test_coral_model_costs_on_edge(name, tmp_path, capsys):
    """Every Coral-table model loads, lowers and costs through the CLI (milliseconds each)."""
    assert main(["run", name, "--hw", "edge", "--json", str(tmp_path / "r.json")]) == 0
    assert f"model {name} on edge" in capsys.readouterr().out


@pytest.mark.parametrize("name, size, feature", [("resnet50_v1_299", 299, (2048, 10, 10)),
                                                 ("resnet50_v2_299", 224, (2048, 7, 7))])
def test_keras_resnets_take_any_input_size(name, size, feature):
    model = load_model(name, {"size": size})
    assert next(l for l in model.layers if l.op == "global_avgpool").in_shapes[0] == feature


def test_generated_yamls_are_up_to_date():
    """models/*.yaml are what tools/gen_zoo.py writes (the existing ones byte for byte)."""
    run = subprocess.run([sys.executable, str(REPO / "tools" / "gen_zoo.py"), "--check"], capture_output=True,
                         text=True, timeout=120)
    assert run.returncode == 0, run.stderr
