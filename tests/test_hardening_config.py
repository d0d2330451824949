"""Value rules at the edges (issue 10): config/model/CSV bounds, YAML strictness, short grouped errors, the
result rules of report.py, and every CLI reproducer of the issue as exit 0 with sane output or one exit-2 line."""
from __future__ import annotations

import json

import pytest

from accelsim.cli import main
from accelsim.config.fields import MAX_DIM, Reader
from accelsim.config.loader import apply_overrides, load_hw, parse_yaml
from accelsim.errors import ConfigError, SHOWN_PROBLEMS, one_line
from accelsim.graph import Model
from accelsim.report import checked, json_text


def _problems(data, call):
    problems: list[str] = []
    call(Reader(data, "hw", problems))
    return problems


@pytest.mark.parametrize("value, call, fragment", [
    (float("inf"), lambda r: r.pos_float("v"), "in [1e-15, 1e+12], got inf"),
    (5e-324, lambda r: r.pos_float("v"), "got 5e-324"),
    (10 ** 400, lambda r: r.pos_float("v"), "got an integer of about 401 digits"),
    (float("nan"), lambda r: r.nonneg_float("v"), "expected a non-negative number, got nan"),
    (2 ** 31 + 1, lambda r: r.pos_int("v"), "expected a positive integer ≤ 2**31"),
    (65537, lambda r: r.pos_int("v", maximum=65536), "≤ 65536"),
    (2.0, lambda r: r.pos_int("v"), "expected a positive integer, got 2.0"),
    ("x" * 500, lambda r: r.pos_int("v"), "…(+"),
])
def test_reader_value_rules(value, call, fragment):
    problems = _problems({"v": value}, call)
    assert len(problems) == 1 and fragment in problems[0], problems
    assert len(problems[0]) < 200


def test_reader_accepts_numpy_numbers_as_python_numbers():
    np = pytest.importorskip("numpy")
    r = Reader({"a": np.int64(7), "b": np.float32(0.5)}, "hw", [])
    a, b = r.pos_int("a"), r.pos_float("b")
    assert (a, b) == (7, 0.5) and type(a) is int and type(b) is float and not r.problems


def test_yaml_is_strict_and_reads_yaml12_numbers():
    assert parse_yaml("a: 1e9\nb: 1.0e308\nc: 12") == {"a": 1e9, "b": 1e308, "c": 12}
    for text in ("a: 1\na: 2", "[" * 100 + "]" * 100):
        with pytest.raises(Exception):  # yaml errors; read_yaml turns them into one ConfigError line
            parse_yaml(text)
    assert parse_yaml("x: &a {b: 1}\ny: {<<: *a, b: 2}") == {"x": {"b": 1}, "y": {"b": 2}}  # merge keys still work


@pytest.mark.parametrize("override, fragment", [
    ("clock_mhz=.inf", "hw.clock_mhz: expected a positive number in [0.001, 1e+06], got inf"),
    ("clock_mhz=1.0e308", "got 1e+308"),
    ("array.rows=99999999999999999999999", "hw.array.rows: expected a positive integer ≤ 65536"),
    ("memory.dram_gbps=5.0e-324", "got 5e-324"),
    ("energy.sram_size_exponent=1000000000", "≤ 4"),
    ("pe.float_macs_per_cycle.fp32=1.0e-300", "in [2**-10, 2**10]"),
    ("energy.leakage_mw=.inf", "got inf"),
    ("array..rows=4", "empty field name"),
])
def test_hw_physical_bounds(override, fragment):
    with pytest.raises(ConfigError) as exc:
        load_hw("edge", [override])
    assert fragment in str(exc.value)


def test_overrides_deep_values_are_refused():
    assert apply_overrides({}, ["a=" + "[" * 200 + "]" * 200]) == {"a": "[" * 200 + "]" * 200}  # kept as text
    with pytest.raises(ConfigError, match="clock_mhz: expected a positive number"):
        load_hw("edge", ["clock_mhz=" + "[" * 200 + "]" * 200])


def _gemm_model(m, n, k):
    return {"name": "g", "inputs": [{"name": "x", "shape": [m, k]}],
            "layers": [{"name": "l", "op": "linear", "out_features": n, "bias": False}]}


def test_model_size_bounds():
    Model.from_dict(_gemm_model(1 << 16, 1 << 16, 1 << 16))  # 2**48 MACs: the largest accepted GEMM
    with pytest.raises(ConfigError, match=r"MACs ≤ 2\*\*48"):
        Model.from_dict(_gemm_model(1 << 16, 1 << 16, (1 << 16) + 1))
    with pytest.raises(ConfigError, match=r"dimensions must be ≤ 2\*\*31"):
        Model.from_dict(_gemm_model(MAX_DIM + 1, 1, 1))


def test_one_root_cause_is_reported_once():
    layers = [{"name": "a", "op": "linear", "out_features": 4, "colour": 1}]
    layers += [{"name": f"l{i}", "op": "relu", "input": "a" if i == 0 else f"l{i - 1}"} for i in range(500)]
    with pytest.raises(ConfigError) as exc:
        Model.from_dict({"name": "m", "inputs": [{"name": "x", "shape": [2, 3]}], "layers": layers})
    problems = exc.value.problems
    assert len(problems) == 2 and "500 later layer(s)" in problems[1]


def test_config_error_lists_a_few_problems_and_counts_the_rest():
    err = ConfigError([f"p{i}: bad" for i in range(50)], "x.yaml")
    text = str(err)
    assert text.count("bad") == SHOWN_PROBLEMS and f"and {50 - SHOWN_PROBLEMS} more problems" in text
    assert len(one_line(RuntimeError("y" * 10_000))) < 2100


def test_result_rules_null_with_reason():
    d = checked({"totals": {"cycles": -5, "latency_ms": float("nan"), "array_utilization": 1.5, "ok": 2.0},
                 "layers": [{"utilization": 0.5, "energy_pj": float("inf")}]})
    assert d["totals"] == {"cycles": None, "latency_ms": None, "array_utilization": None, "ok": 2.0}
    assert d["layers"][0] == {"utilization": 0.5, "energy_pj": None}
    assert set(d["not_computed"]) == {"totals.cycles", "totals.latency_ms", "totals.array_utilization",
                                      "layers[0].energy_pj"}
    assert "NaN" not in json_text({"a": float("nan")}) and json.loads(json_text({"a": -1.0}, nonneg=False))["a"] == -1
    # compare's improvement ratios may exceed 1 (only utilizations themselves are capped)
    assert checked({"ratios": {"array_utilization": 1.05}}) == {"ratios": {"array_utilization": 1.05}}


def _run(argv, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    rc = main(argv)
    out, err = capsys.readouterr()
    return rc, out, err


def _one_error_line(rc, err):
    assert rc == 2 and err.count("\n") == 1 and err.startswith("accelsim: error: "), err


GEMM = "Layer, M, N, K,\n"


@pytest.mark.parametrize("files, argv", [
    ({"big.csv": GEMM + "big, 99999999999999999999, 1, 1,\n"}, ["run", "big.csv", "--hw", "edge"]),
    ({"w.csv": GEMM + "big, 10000000000, 10000000000, 10000000000,\n"},
     ["run", "w.csv", "--hw", "scalesim_32x32", "--json", "w.json"]),
    ({}, ["run", "resnet50", "--hw", "edge", "--set", "array.rows=99999999999999999999999"]),
    ({}, ["run", "resnet50", "--hw", "edge", "--set", "memory.dram_gbps=5.0e-324"]),
    ({}, ["run", "resnet50", "--hw", "edge", "--set", "clock_mhz=.inf"]),
    ({}, ["run", "resnet50", "--hw", "edge", "--set", "energy.sram_size_exponent=1000000000"]),
    ({}, ["run", "resnet50", "--hw", "edge", "--set", "clock_mhz=1" + "0" * 400]),
    ({"deep.yaml": "x: " + "[" * 5000 + "]" * 5000 + "\n"}, ["run", "deep.yaml", "--hw", "edge"]),
    ({"deep.yaml": "x: " + "[" * 5000 + "]" * 5000 + "\n"}, ["run", "resnet50", "--hw", "deep.yaml"]),
    ({}, ["run", "bert_base", "--hw", "edge", "--param", "seq_len=²"]),
    ({}, ["run", "bert_base", "--hw", "edge", "--param", "seq_len=--5"]),
    ({"sq.csv": GEMM + "sq, ², 1, 1,\n"}, ["run", "sq.csv", "--hw", "edge"]),
    ({}, ["run", "m" * 5000, "--hw", "edge"]),
    ({}, ["run", "resnet50", "--hw", "edge", "--json", "j" * 300 + ".json"]),
    ({}, ["run", "resnet50", "--hw", "edge", "--set", "pe.float_macs_per_cycle.fp32=1.0e-300", "--precision", "fp32"]),
    ({"c.csv": "Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, Num Filter, Strides,\n"
               "c1" + ", 65536" * 7 + ",\n"}, ["run", "c.csv", "--hw", "edge", "--json", "c.json", "--csv", "c.csv2"]),
    ({}, ["run", "resnet50", "--hw", "edge", "--set", "energy.leakage_mw=.inf", "--json", "inf.json"]),
    ({}, ["run", "resnet50", "--hw", "edge", "--json", ""]),
    ({}, []),
    ({"dup.yaml": "name: a\nname: b\n"}, ["run", "resnet50", "--hw", "dup.yaml"]),
    ({}, ["run", "resnet50", "--hw", "edge", "--set", "clock_mhz=1.0e308"]),
])
def test_issue_reproducers_end_as_one_error_line(tmp_path, monkeypatch, capsys, files, argv):
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    rc, out, err = _run(argv, tmp_path, monkeypatch, capsys)
    _one_error_line(rc, err)
    assert len(err) < 600 and sorted(p.name for p in tmp_path.iterdir()) == sorted(files)


def test_huge_valid_gemm_is_exact_and_sane(tmp_path, monkeypatch, capsys):
    (tmp_path / "g.csv").write_text(GEMM + "g, 65536, 65536, 65536,\n")
    rc, out, err = _run(["run", "g.csv", "--hw", "scalesim_32x32", "--json", "g.json"], tmp_path, monkeypatch, capsys)
    assert rc == 0 and not err
    d = json.loads((tmp_path / "g.json").read_text())
    layer = d["layers"][0]
    assert layer["macs"] == 1 << 48 and 0 < layer["utilization"] <= 1
    assert layer["scalesim_cycles"] == 2048 * 2048 * (2 * 32 + 32 + 65536 - 2) - 1   # WS folds · per fold − 1
