"""Generate the bundled model zoo YAMLs (models/*.yaml) from the published architectures.

Run ``python tools/gen_zoo.py`` after changing a builder in ``tools/zoo/`` (one module per family); the YAMLs
are committed so users can read and edit them. ``python tools/gen_zoo.py --check`` writes nothing and exits 1
naming every YAML that differs from what the builders generate.

Families: ResNets (torchvision ResNet-50 v1.5; Keras ResNet50, ResNet50V2, ResNet152V2), mobile nets (MobileNetV2,
EfficientNet-Lite0, TF-slim MobileNet v1, EfficientNet-EdgeTPU-S/M), Inceptions (TF-slim v1 and v4, Keras
Inception-ResNet v2), plain CNNs (Keras VGG16/19 and DenseNet121, SqueezeNet 1.0, accelsim's MNIST CNN) and
BERT encoders (BERT base/large, all-MiniLM-L6-v2) and decoder LLMs (SmolLM2-135M). Each module's docstring names the source code it follows.
"""
from __future__ import annotations

import sys
from pathlib import Path

from zoo import bert, classic, inception, llm, mobile, resnet, ssd

OUT = Path(__file__).resolve().parents[1] / "models"
FAMILIES = (classic, resnet, mobile, inception, ssd, bert, llm)


def generate() -> dict[str, str]:
    """Every zoo model: name → YAML text."""
    return dict(model for family in FAMILIES for model in family.build())


def main(argv: list[str]) -> int:
    models = generate()
    if argv == ["--check"]:
        stale = [n for n, text in models.items()
                 if not (OUT / f"{n}.yaml").is_file() or (OUT / f"{n}.yaml").read_text() != text]
        for name in stale:
            print(f"models/{name}.yaml differs from tools/gen_zoo.py's output", file=sys.stderr)
        return 1 if stale else 0
    for name, text in models.items():
        (OUT / f"{name}.yaml").write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
