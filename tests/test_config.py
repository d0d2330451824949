"""Config validation: every problem reported at once, with field paths; overrides; topology CSV errors."""
from __future__ import annotations

import pytest
import yaml

from accelsim.config.hw import HWConfig
from accelsim.config.loader import apply_overrides, load_hw, load_model, read_yaml, resolve
from accelsim.errors import ConfigError
from accelsim.graph import Model
from accelsim.hw.dataflow import OS, WS


def edge_dict() -> dict:
    return read_yaml(resolve("edge", "hw"))


def test_bundled_hw_configs_load():
    for name in ("edge", "server", "scalesim_32x32"):
        hw = load_hw(name)
        assert hw.array.rows > 0 and hw.memory.dram_gbps > 0 and "int8" in hw.energy.mac_pj
    assert load_hw("scalesim_32x32").array.dataflow == WS


def test_all_problems_reported_at_once_with_paths():
    d = edge_dict()
    d["array"]["rows"] = 0
    d["array"]["dataflow"] = "diagonal"
    d["memory"]["dram_gbps"] = "fast"
    d["pe"]["colour"] = "red"
    with pytest.raises(ConfigError) as exc:
        HWConfig.from_dict(d)
    problems = exc.value.problems
    assert "hw.array.rows: expected a positive integer, got 0" in problems
    assert "hw.array.dataflow: expected one of os | ws | is, got 'diagonal'" in problems
    assert "hw.memory.dram_gbps: expected a positive number, got 'fast'" in problems
    assert any(p.startswith("hw.pe.colour: unknown field") for p in problems)
    assert len(problems) == 4


@pytest.mark.parametrize("mutate, expected", [
    (lambda d: d["array"].pop("cols"), "hw.array.cols: required field is missing"),
    (lambda d: d["array"].update(rows=True), "hw.array.rows: expected a positive integer, got True"),
    (lambda d: d["array"].update(rows=2.5), "hw.array.rows: expected a positive integer, got 2.5"),
    (lambda d: d.update(clock_mhz=-1), "hw.clock_mhz: expected a positive number, got -1"),
    (lambda d: d["pe"].update(int_bits=[8, 3]), "hw.pe.int_bits[1]: expected a width ≥ 2 dividing base_bits=8, got 3"),
    (lambda d: d["pe"].update(acc_bits=8), "hw.pe.acc_bits: expected at least 2·base_bits = 16, got 8"),
    (lambda d: d["energy"]["mac_pj"].update(int9=1.0), "hw.energy.mac_pj.int9: unknown field"),
    (lambda d: d.update(array=[1, 2]), "hw.array: expected a mapping, got a list"),
])
def test_single_problem_messages(mutate, expected):
    d = edge_dict()
    mutate(d)
    with pytest.raises(ConfigError) as exc:
        HWConfig.from_dict(d)
    assert any(p.startswith(expected) for p in exc.value.problems), exc.value.problems


def test_overrides_are_validated_like_the_file():
    hw = load_hw("edge", ["array.rows=16", "hw.array.dataflow=os", "memory.dram_gbps=8.5"])
    assert (hw.array.rows, hw.array.dataflow, hw.memory.dram_gbps) == (16, OS, 8.5)
    with pytest.raises(ConfigError, match=r"hw.array.rows: expected a positive integer, got 0"):
        load_hw("edge", ["array.rows=0"])
    with pytest.raises(ConfigError, match=r"hw.array.bogus: unknown field"):
        load_hw("edge", ["array.bogus=1"])
    with pytest.raises(ConfigError, match="expected key.path=value"):
        apply_overrides({}, ["rows"])
    with pytest.raises(ConfigError, match="is not a section"):
        apply_overrides({"clock_mhz": 1}, ["clock_mhz.x=2"])


def test_malformed_yaml_names_file_and_line(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\narray: {rows: 4\n")
    with pytest.raises(ConfigError) as exc:
        load_hw(bad)
    assert str(bad) in str(exc.value) and "malformed YAML: line" in str(exc.value)


def test_unknown_names_list_bundled():
    with pytest.raises(ConfigError, match="bundled: edge, edgetpu_devboard, edgetpu_usb, host_cpu, scalesim_32x32, server, zigzag_tpu_like"):
        load_hw("nonesuch")


def model(layers, inputs=None):
    return {"name": "t", "inputs": inputs or [{"name": "x", "shape": [3, 8, 8]}], "layers": layers}


def test_model_shape_errors_are_collected():
    with pytest.raises(ConfigError) as exc:
        Model.from_dict(model([
            {"name": "c1", "op": "conv2d", "out_channels": 4, "kernel": 9},
            {"name": "c2", "op": "conv2d", "out_channels": 4, "kernel": 3, "groups": 2, "input": "x"},
            {"name": "c3", "op": "convolution"},
            {"name": "c4", "op": "conv2d", "out_channels": 0, "kernel": 3, "strides": 2},
            {"name": "a", "op": "add", "inputs": ["x", "nope"]},
        ]))
    text = "\n".join(exc.value.problems)
    assert "model.layers[0] (c1): conv2d: kernel height 9 (dilated span 9) is larger than the padded input 8" in text
    assert "model.layers[1] (c2): conv2d: in_channels 3 and out_channels 4 must both be divisible by groups 2" in text
    assert "model.layers[2] (c3).op: expected one of" in text
    assert "model.layers[3] (c4).out_channels: expected a positive integer, got 0" in text
    assert "model.layers[3] (c4).strides: unknown field" in text
    assert "model.layers[4] (a).inputs: unknown tensor(s) ['nope']" in text
    # c3 and c4 read a layer with a problem: their own fields are checked, their inputs are not (counted once)
    assert "model.layers: 2 later layer(s) read the output of a layer with a problem above" in text


def test_model_params_and_shapes():
    m = Model.from_dict(model([
        {"name": "c", "op": "conv2d", "out_channels": 6, "kernel": 3, "padding": 1, "stride": 2, "groups": 3},
        {"name": "p", "op": "global_avgpool"}, {"name": "f", "op": "flatten"},
        {"name": "fc", "op": "linear", "out_features": 10},
    ]))
    assert m.layer("c").out_shape == (6, 4, 4) and m.layer("c").params == 6 * 1 * 9 + 6
    assert m.layer("fc").out_shape == (10,) and m.params == 60 + 70


def test_model_param_override_and_errors():
    m = load_model("bert_base", {"seq_len": 64})
    assert m.inputs["tokens"] == (64,)
    with pytest.raises(ConfigError, match="model.params.seq: unknown model parameter"):
        load_model("bert_base", {"seq": 64})


def test_scalesim_csv_forms(tmp_path):
    conv = tmp_path / "t.csv"
    conv.write_text("Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, Num Filter, "
                    "Strides,\nC1, 10, 10, 3, 3, 4, 8, 2,\n\nDP2, 9, 9, 3, 3, 4, 1, 1,\n,,,,,,,,\n")
    m = load_model(conv)
    assert m.layer("C1").out_shape == (8, 5, 5)            # ceil((10 − 3 + 2) / 2) = 5, no padding
    assert m.layer("DP2").attrs["groups"] == 4 and m.layer("DP2").out_shape == (4, 7, 7)
    gemm = tmp_path / "g.csv"
    gemm.write_text("Layer, M, N, K,\nG1, 5, 6, 7,\n")
    assert load_model(gemm).layer("G1").out_shape == (5, 6)


@pytest.mark.parametrize("text, expected", [
    ("Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, Num Filter, Strides,\n"
     "C1, 10, x, 3, 3, 4, 8, 2,\nC2, 10, 10, 3, 3, 4, 0, 2,\n",
     ["t.csv:2 (C1): column 'IFMAP Width': expected a positive integer, got 'x'",
      "t.csv:3 (C2): column 'Num Filter': expected a positive integer, got '0'"]),
    ("Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, Num Filter, Strides,\n"
     "C1, 3, 3, 5, 5, 4, 8, 1,\n", ["kernel height 5 (dilated span 5) is larger than the padded input 3"]),
    ("hello, world\n", ["expected a SCALE-Sim header"]),
    ("Layer, M, N, K,\nG1, 5, 6,\n", ["column 'K': expected a positive integer, got ''"]),
    ("Layer, M, N, K,\nG1, 5, 6\n", ["expected 4 columns"]),
])
def test_scalesim_csv_errors(tmp_path, text, expected):
    path = tmp_path / "t.csv"
    path.write_text(text)
    with pytest.raises(ConfigError) as exc:
        load_model(path)
    for e in expected:
        assert e in str(exc.value)


def test_yaml_is_parsed_safely(tmp_path):
    evil = tmp_path / "evil.yaml"
    evil.write_text("!!python/object/apply:os.system ['true']\n")
    with pytest.raises(ConfigError, match="malformed YAML"):
        load_hw(evil)
    assert yaml.safe_load("a: 1") == {"a": 1}
