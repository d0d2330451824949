"""The CLI end to end: tables, JSON/CSV outputs, one-line errors with exit code 2, no partial files."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from accelsim import __version__
from accelsim.cli import main
from conftest import SCALESIM_REF, require_shared


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_run_bundled_model_prints_table_and_totals(capsys):
    code, out, err = run(capsys, "run", "models/resnet50.yaml", "--hw", "hw_configs/edge.yaml")
    assert code == 0 and err == ""
    assert "conv1.conv" in out and "latency" in out and "params 25,557,032" in out


def test_run_writes_json_and_csv(tmp_path, capsys):
    j, c = tmp_path / "r.json", tmp_path / "r.csv"
    code, out, _ = run(capsys, "run", "resnet50", "--hw", "edge", "--json", str(j), "--csv", str(c), "--quiet")
    assert code == 0
    data = json.loads(j.read_text())
    assert {"model", "hw", "layers", "totals"} <= set(data)
    layer = data["layers"][0]
    assert {"name", "macs", "cycles", "scalesim_cycles", "utilization"} <= set(layer)
    assert data["totals"]["macs"] == sum(l["macs"] for l in data["layers"])
    assert c.read_text().splitlines()[0].startswith("name,op,precision")
    assert len(c.read_text().splitlines()) == len(data["layers"]) + 1


def test_scalesim_csv_with_set_overrides(capsys, tmp_path):
    topo = require_shared(SCALESIM_REF / "topologies" / "mlperf" / "Resnet50.csv")
    j = tmp_path / "os.json"
    code, _, _ = run(capsys, "run", str(topo), "--hw", "scalesim_32x32", "--set", "array.dataflow=os",
                     "--set", "array.rows=16", "--json", str(j), "--quiet")
    assert code == 0
    data = json.loads(j.read_text())
    assert data["config"]["dataflow"] == "os" and data["config"]["rows"] == 16
    first = data["layers"][0]   # Conv1: M=12100, N=64, K=147 on 16×32 OS
    assert first["scalesim_cycles"] == (-(-12100 // 16)) * 2 * (16 + 32 + 147 - 2) - 1


@pytest.mark.parametrize("argv, fragment", [
    (["run", "resnet50", "--hw", "edge", "--set", "array.rows=0"], "hw.array.rows: expected a positive integer, got 0"),
    (["run", "nope.yaml", "--hw", "edge"], "nope.yaml: no such file"),
    (["run", "resnet50", "--hw", "edge", "--precision", "int3x"], "unknown precision"),
    (["run", "resnet50", "--hw", "edge", "--precision", "w16a8"], "exceed the PE's base width"),
    (["run", "resnet50", "--hw", "edge", "--precision", "w2a2"], "2-bit operands are not supported"),
    (["run", "resnet50", "--hw", "edge", "--param", "seq_len=4"], "unknown model parameter"),
    (["run", "resnet50"], "the following arguments are required: --hw"),
])
def test_errors_are_one_line_exit_2(capsys, tmp_path, argv, fragment):
    out_json = tmp_path / "never.json"
    code, out, err = run(capsys, *argv, "--json", str(out_json)) if argv[-1] != "resnet50" else (None, "", "")
    if code is None:
        with pytest.raises(SystemExit) as exc:
            main(argv)
        code, err = exc.value.code, capsys.readouterr().err
    assert code == 2
    assert fragment in err and err.count("\n") == 1 and err.startswith("accelsim: error:")
    assert not out_json.exists() and list(tmp_path.iterdir()) == []


def test_missing_output_folder_is_an_error(capsys, tmp_path):
    code, _, err = run(capsys, "run", "resnet50", "--hw", "edge", "--json", str(tmp_path / "no" / "r.json"))
    assert code == 2 and "does not exist" in err


def test_console_script_version_and_help():
    out = subprocess.run([sys.executable, "-m", "accelsim.cli", "--version"], capture_output=True, text=True)
    assert out.returncode == 0 and __version__ in out.stdout
    helped = subprocess.run([sys.executable, "-m", "accelsim.cli", "run", "--help"], capture_output=True, text=True)
    assert "examples:" in helped.stdout and "--precision" in helped.stdout


@pytest.mark.parametrize("content, argv_of, fragment", [
    (b"\xe3\x81\xff\x00binary", lambda p: ["run", p, "--hw", "edge"], "not UTF-8 text (byte 0)"),
    (b"\xe3\x81\xff\x00binary", lambda p: ["run", "resnet50", "--hw", p], "not UTF-8 text (byte 0)"),
    (b"", lambda p: ["run", p, "--hw", "edge"], "model: expected a mapping, got None"),
    (b"", lambda p: ["run", "resnet50", "--hw", p], "hw: expected a mapping, got None"),
    (b"name: x\ninputs: [{name: a, shape: [3, 8, 8]}]\nlayers: []\n", lambda p: ["run", p, "--hw", "edge"],
     "model.layers: expected a non-empty list of layers, got an empty list"),
])
def test_unreadable_and_empty_files(tmp_path, capsys, content, argv_of, fragment):
    path = tmp_path / "f.yaml"
    path.write_bytes(content)
    assert main(argv_of(str(path))) == 2
    err = capsys.readouterr().err
    assert fragment in err and err.count("\n") == 1 and "object at 0x" not in err


def test_broken_section_is_reported_once(capsys, tmp_path):
    assert main(["run", "resnet50", "--hw", "edge", "--set", "array=5"]) == 2
    assert capsys.readouterr().err.strip() == "accelsim: error: edge: hw.array: expected a mapping, got 5"
    assert main(["run", "resnet50", "--hw", "edge", "--json", str(tmp_path)]) == 2
    assert "is a folder" in capsys.readouterr().err
    assert main(["run", "resnet50", "--hw", "edge", "--max-rows", "-3"]) == 2


def test_package_level_api():
    import accelsim
    report = accelsim.simulate(accelsim.load_model("mobilenet_v2"), accelsim.load_hw("edge"), "w8a8")
    assert report.totals["macs"] > 0 and callable(accelsim.evaluate) and callable(accelsim.run_graph)
    with pytest.raises(AttributeError):
        accelsim.not_there


HEAVY = ("numba", "llvmlite", "onnx", "onnxruntime", "matplotlib", "scipy", "pandas", "torch", "PIL", "dask")
_IMPORTS = """
import contextlib, io, json, sys
from accelsim.cli import main
with contextlib.redirect_stdout(io.StringIO()):
    code = main(sys.argv[1:])
print(json.dumps({"code": code, "modules": sorted({m.split('.')[0] for m in sys.modules})}))
"""


@pytest.mark.parametrize("argv", [
    ["run", "resnet50", "--hw", "edge", "--quiet"],
    ["run", "scalesim/Resnet50.csv", "--hw", "scalesim_32x32", "--set", "array.dataflow=os"],
    ["compare", "mobilenet_v2", "--hw", "edge"],
    ["validate", "edgetpu_devboard"],
    ["--version"],
])
def test_cost_only_commands_import_no_numba_onnx_or_plotting(argv):
    """A fresh process per command (module lists are per process): cost-only commands stay light."""
    out = subprocess.run([sys.executable, "-c", _IMPORTS, *argv], capture_output=True, text=True)
    if argv == ["--version"]:       # argparse exits before the module list is printed
        version = subprocess.run([sys.executable, "-m", "accelsim.cli", "--version"], capture_output=True, text=True)
        assert version.stdout.strip() == f"accelsim {__version__}"
        probe = "import sys, accelsim.cli; print(sorted({m.split('.')[0] for m in sys.modules}))"
        modules = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True).stdout
        assert "numpy" not in modules and not any(f"'{h}'" in modules for h in HEAVY), modules
        return
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["code"] == 0, out.stderr
    assert not set(HEAVY) & set(result["modules"]), sorted(set(HEAVY) & set(result["modules"]))


def test_sweep_without_eval_imports_no_numba(tmp_path):
    spec = tmp_path / "s.yaml"
    spec.write_text(json.dumps({"model": "mobilenet_v2", "hw": "edge", "grid": {"array.rows": [16, 32]},
                                "objectives": ["latency_ms", "energy_mj"]}))
    out = subprocess.run([sys.executable, "-c", _IMPORTS, "sweep", str(spec), "--out", str(tmp_path / "r.json")],
                         capture_output=True, text=True)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["code"] == 0 and not set(HEAVY) & set(result["modules"]), out.stderr


def test_cost_only_commands_are_told_apart():
    from accelsim.cli import _cost_only, build_parser
    parse = build_parser().parse_args
    assert _cost_only(parse(["run", "resnet50", "--hw", "edge"]))
    assert _cost_only(parse(["compare", "x", "--hw", "edge"]))
    assert not _cost_only(parse(["run", "mnist_cnn", "--hw", "edge", "--eval", "mnist"]))
    assert not _cost_only(parse(["run", "resnet50", "--hw", "edge", "--emulate"]))
    assert not _cost_only(parse(["eval", "mnist_cnn", "--eval", "mnist"]))
