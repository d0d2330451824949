"""CLI fuzz cases: hypothesis strategies over hw/model YAMLs, SCALE-Sim CSVs and flag values, an in-process
runner and the invariant checker.

A case is ``(files, argv)``: files written into a fresh temporary folder, which is the working directory while
``accelsim.cli.main(argv)`` runs with stdout/stderr captured. Outcome classes (:func:`classify`):

* good: ``exit0-sane`` (exit 0; every number in the JSON/CSV outputs and the totals lines finite and
  non-negative, utilizations ≤ 1), ``exit0-null`` (the same, with values the report could not compute given as
  null plus a reason in ``not_computed``), ``exit2-one-line`` (exit 2, stdout empty, exactly one stderr line
  starting ``accelsim: error:``);
* bad: ``traceback`` (an exception escaped ``main``), ``nonfinite`` (exit 0 with a NaN/Infinity, negative
  number or ratio above 1 in the outputs, or an unreadable output), ``exit2-bad`` (exit 2 without the one line),
  ``exit0-noise`` (exit 0 with stderr output), ``exit-other`` (another exit code), ``leftover`` (a file left
  behind that was not a requested output of a successful run).
"""
from __future__ import annotations

import contextlib
import copy
import csv
import io
import json
import math
import os
import re
import tempfile
import traceback
from pathlib import Path

import yaml
from hypothesis import strategies as st

from accelsim.cli import main
from accelsim.config.loader import bundled_names, read_yaml, resolve
from accelsim.ops import OPS

BAD = {"traceback", "nonfinite", "exit2-bad", "exit0-noise", "exit-other", "leftover"}
HW_NAMES = bundled_names("hw")
MODEL_NAMES = bundled_names("model")
SMALL_MODELS = [m for m in ("mnist_cnn", "mobilenet_v2", "minilm_l6", "efficientnet_lite0") if m in MODEL_NAMES]
_DICTS = {("hw", n): read_yaml(resolve(n, "hw")) for n in HW_NAMES}
_DICTS.update({("model", n): read_yaml(resolve(n, "model")) for n in SMALL_MODELS + ["bert_base"]})
_TEXTS = {k: resolve(k[1], k[0]).read_text(encoding="utf-8") for k in _DICTS}

SPECIAL = [".inf", "-.inf", ".nan", "1e309", "5e-324", "1.0e308", "1e-300", "1" + "0" * 400, "²", "--5", "", " ",
           "0x10", "1_000", "true", "null", "~", "[1, 2]", "{a: 1}", "!!python/object/apply:os.system ['true']",
           "&a 1", "*a", "'x'", "x" * 5000, "0", "-1", "1", "2", "64", "65536", "65537", "2147483648", "2147483649",
           "99999999999999999999999", "0.5", "1e-3", "1e6", "1e12", "1e13", "0.0009765625", "-0.0", "1.5", "3",
           "os", "ws", "is", "wrap", "saturate", "[8, 4]", "[3]", "[]", "{}", "\t", "\u00e9", "1e-15", "1e-16"]
PLAUSIBLE_INTS = [1, 2, 3, 4, 7, 8, 16, 32, 64, 128, 256, 1000, 1024, 4096, 65536]


def _leaf_paths(d, prefix=()):
    for k, v in d.items():
        if isinstance(v, dict):
            yield from _leaf_paths(v, prefix + (k,))
        yield prefix + (k,)


HW_PATHS = sorted({".".join(map(str, p)) for n in HW_NAMES for p in _leaf_paths(_DICTS[("hw", n)])})

# ------------------------------------------------------------------------------------------------ values
def chance(p: float):
    """True with probability about ``p`` (scrambled, so hypothesis's bias toward small integers does not skew it;
    its simplest draw, 0, gives True only for p > 1/2)."""
    return st.integers(0, 996).map(lambda v: (v * 7919 + 498) % 997 < 997 * p)


floats_any = st.floats(allow_nan=True, allow_infinity=True)
log_floats = st.floats(-20, 20).map(lambda e: 10.0 ** e)
value_text = st.one_of(
    st.sampled_from(SPECIAL),
    st.integers(-(2 ** 70), 2 ** 70).map(str),
    st.sampled_from(PLAUSIBLE_INTS).map(str),
    floats_any.map(repr),
    log_floats.map(lambda f: f"{f:.3e}"),
    log_floats.map(lambda f: f"{f:g}"),
    st.text(max_size=12),
)
plausible_text = st.one_of(st.sampled_from(PLAUSIBLE_INTS).map(str), st.floats(-3, 6).map(lambda e: f"{10.0 ** e:g}"),
                           st.sampled_from(["os", "ws", "is", "true", "false", "[8, 4]", "[8, 4, 2]"]))
#: Python values for dict mutations (dumped as YAML later)
value_obj = st.one_of(
    st.sampled_from(PLAUSIBLE_INTS), st.integers(-(2 ** 70), 2 ** 70), floats_any, log_floats,
    st.booleans(), st.none(), st.text(max_size=10), st.lists(st.integers(-3, 70), max_size=4),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=2),
)


# ------------------------------------------------------------------------------------------------ documents
def _paths_in(d, prefix=()):
    """Every (container path, key) in nested dicts/lists."""
    if isinstance(d, dict):
        for k, v in d.items():
            yield prefix, k
            yield from _paths_in(v, prefix + (k,))
    elif isinstance(d, list):
        for i, v in enumerate(d):
            yield prefix, i
            yield from _paths_in(v, prefix + (i,))


def _node(d, path):
    for k in path:
        d = d[k]
    return d


@st.composite
def mutated_dict(draw, kind: str, name: str):
    """A bundled YAML's dict with 1-3 mutations: a value replaced, a key dropped, an unknown key added, a
    numeric value scaled (plausible configs that still run), or a section replaced."""
    d = copy.deepcopy(_DICTS[(kind, name)])
    spots = list(_paths_in(d))
    for _ in range(draw(st.integers(1, 3))):
        where, key = spots[draw(st.integers(0, 10 ** 6)) * 7919 % len(spots)]
        try:
            parent = _node(d, where)
            op = draw(st.sampled_from(["set", "scale", "scale", "drop", "add"]))
            if op == "set":
                parent[key] = draw(value_obj)
            elif op == "scale" and isinstance(parent[key], (int, float)) and not isinstance(parent[key], bool):
                f = draw(st.sampled_from([0.5, 2, 3, 0.1, 10, 1000, 1e-3, 0, -1]))
                v = parent[key] * f
                parent[key] = int(v) if isinstance(parent[key], int) and float(v).is_integer() else v
            elif op == "drop":
                del parent[key]
            elif op == "add" and isinstance(parent, dict):
                parent[draw(st.text(min_size=1, max_size=8))] = draw(value_obj)
        except (KeyError, IndexError, TypeError):
            pass
    return d


def _dump(d) -> str:
    try:
        return yaml.safe_dump(d, sort_keys=False, allow_unicode=True)
    except yaml.YAMLError:
        return str(d)


@st.composite
def mutated_text(draw, kind: str, name: str):
    """A bundled YAML's text, damaged: truncated, a line duplicated (duplicate key), garbage or deep nesting
    inserted, a BOM, or tags/anchors."""
    text = _TEXTS[(kind, name)]
    lines = text.splitlines(keepends=True)
    op = draw(st.sampled_from(["truncate", "dup", "garbage", "deep", "bom", "tag", "alias"]))
    i = draw(st.integers(0, max(0, len(lines) - 1)))
    if op == "truncate":
        return text[:draw(st.integers(0, len(text)))]
    if op == "dup":
        return "".join(lines[:i + 1] + lines[i:i + 1] + lines[i + 1:])
    if op == "garbage":
        return "".join(lines[:i]) + draw(st.text(max_size=30)) + "\n" + "".join(lines[i:])
    if op == "deep":
        n = draw(st.sampled_from([10, 63, 65, 500, 5000]))
        return text + "deep: " + "[" * n + "]" * n + "\n"
    if op == "bom":
        return "\ufeff" + text
    if op == "tag":
        return text + "x: !!python/object/apply:os.system ['echo hi']\n"
    return "a: &a [1, 2]\n" + text + "b: *a\n"


LAYER_ATTRS = {
    "conv2d": ["out_channels", "kernel", "stride", "padding", "dilation", "groups", "bias", "ceil_mode"],
    "linear": ["out_features", "bias"], "matmul": ["transpose_b"], "embedding": ["num_embeddings", "dim"],
    "batchnorm": ["eps"], "layernorm": ["eps"], "softmax": ["scale"], "split_heads": ["heads"],
    "maxpool": ["kernel", "stride", "padding", "ceil_mode"], "avgpool": ["kernel", "stride", "padding", "ceil_mode"],
}
DIMS = [1, 2, 3, 4, 7, 8, 16, 28, 64, 224, 1024, 1 << 20, (1 << 31) - 1, 1 << 31, 1 << 32]
attr_value = st.one_of(st.sampled_from([1, 2, 3, 4, 8, 16, 64, 0, -1, 1 << 20, 1 << 31, 1 << 40]),
                       st.lists(st.sampled_from([0, 1, 2, 3, 1 << 31]), min_size=1, max_size=4), st.booleans(),
                       log_floats, floats_any, st.text(max_size=4))


@st.composite
def generated_model(draw):
    """A small model from scratch: random input shapes and a chain of random ops with random attributes."""
    inputs = [{"name": "x", "shape": draw(st.lists(st.sampled_from(DIMS), min_size=1, max_size=4))}]
    if draw(st.booleans()):
        inputs.append({"name": "y", "shape": draw(st.lists(st.sampled_from(DIMS), min_size=1, max_size=4))})
    names = [i["name"] for i in inputs]
    layers = []
    for i in range(draw(st.integers(1, 6))):
        op = draw(st.sampled_from(sorted(OPS) + ["bogus"]))
        layer = {"name": f"L{i}", "op": op}
        for attr in LAYER_ATTRS.get(op, []):
            if draw(st.integers(0, 3)):
                layer[attr] = draw(attr_value)
        if op in ("matmul", "add", "mul") or draw(st.integers(0, 5)) == 0:
            layer["inputs"] = draw(st.lists(st.sampled_from(names + ["nope"]), min_size=1, max_size=3))
        layers.append(layer)
        names.append(layer["name"])
    return {"name": "gen", "inputs": inputs, "layers": layers}


csv_cell = st.one_of(st.sampled_from(["1", "2", "3", "7", "16", "32", "64", "224", "512", "65536", "2147483648",
                                      "99999999999999999999", "0", "-1", "", "²", "1.5", " 8 ", "1e3", "x"]),
                     st.integers(1, 300).map(str))


@st.composite
def scalesim_csv(draw):
    if draw(st.booleans()):
        header, ncols = "Layer, M, N, K,", 3
    else:
        header, ncols = ("Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, Num Filter, "
                         "Strides,"), 7
    rows = [header]
    for i in range(draw(st.integers(0, 4))):
        name = draw(st.sampled_from([f"l{i}", f"DP{i}", "", "dup", draw(st.text(max_size=6))]))
        cells = [draw(csv_cell) for _ in range(ncols + draw(st.integers(-1, 2)))]
        rows.append(",".join([name.replace(",", "").replace("\n", "")] + cells) + ",")
    if draw(st.integers(0, 9)) == 0:
        rows[0] = draw(st.text(max_size=20))
    return "\n".join(rows) + "\n"


@st.composite
def source(draw, kind: str):
    """(files, spec) for --hw or the model argument."""
    names = HW_NAMES if kind == "hw" else MODEL_NAMES
    dicts = [n for (k, n) in _DICTS if k == kind]
    choice = "bundled" if draw(chance(0.55)) else draw(st.sampled_from(
        ["dict"] * 4 + ["text", "gen", "gen", "gen", "csv", "csv", "missing"]))
    fname = f"{kind}.yaml"
    if choice == "bundled":
        return {}, draw(st.sampled_from(names + [f"{kind}_configs/{names[0]}.yaml" if kind == "hw" else
                                                 "models/mnist_cnn.yaml"]))
    if choice == "dict":
        return {fname: _dump(draw(mutated_dict(kind, draw(st.sampled_from(dicts)))))}, fname
    if choice == "text":
        return {fname: draw(mutated_text(kind, draw(st.sampled_from(dicts))))}, fname
    if choice == "gen" and kind == "model":
        return {fname: _dump(draw(generated_model()))}, fname
    if choice == "csv" and kind == "model":
        return {"topo.csv": draw(scalesim_csv())}, "topo.csv"
    return {}, draw(st.sampled_from(["nope", "nope.yaml", "nope.csv", "m" * 5000, "dir/", ".", "x\x00y"]))


@st.composite
def sweep_file(draw):
    """A sweep YAML (issue 14): a small model, a base hw and 0-3 grid axes of plausible or wild values."""
    grid = {}
    for _ in range(draw(st.integers(0, 3))):
        key = draw(st.sampled_from(HW_PATHS + ["precision", "plan"])) if draw(chance(0.85)) else draw(st.text(max_size=8))
        values = st.one_of(st.sampled_from(PLAUSIBLE_INTS), log_floats, st.sampled_from(["w8a8", "w4a8", "fp16", "os"]))
        grid[key] = draw(st.lists(values if draw(chance(0.7)) else value_obj, min_size=0, max_size=3))
    spec = {"model": draw(st.sampled_from(["mnist_cnn", "mobilenet_v2", "nope"])),
            "hw": draw(st.sampled_from(HW_NAMES)), "grid": grid}
    if draw(chance(0.3)):
        spec["objectives"] = draw(st.lists(st.sampled_from(["latency_ms", "energy_mj", "area_mm2", "bogus"]),
                                           max_size=3))
    if draw(chance(0.2)):
        spec["precision"] = draw(st.sampled_from(["w8a8", "fp32", "bogus"]))
    return _dump(spec) if draw(chance(0.9)) else draw(st.text(max_size=40))


@st.composite
def tiny_gemm_csv(draw):
    """1-3 small GEMMs, cheap enough to run through the cycle-level emulator (--emulate)."""
    rows = [f"g{i}, {draw(st.integers(1, 40))}, {draw(st.integers(1, 40))}, {draw(st.integers(1, 40))},"
            for i in range(draw(st.integers(1, 3)))]
    return "Layer, M, N, K,\n" + "\n".join(rows) + "\n"


precision = st.one_of(st.sampled_from(["w8a8", "w4a8", "w4a4", "w2a2", "w8a4", "w16a16", "int8", "int4", "fp16",
                                       "bf16", "fp32", "W8A8", "w1a1", "w8a8 ", "fp64"]), st.text(max_size=6))
out_name = st.one_of(st.just("out.json"), st.just("out.csv"), st.sampled_from(
    ["", "o" * 300 + ".json", "nodir/x.json", ".", "sub", "out.json"]))


@st.composite
def cli_case(draw):
    files, argv = {}, []
    cmd = "run" if draw(chance(0.7)) else draw(st.sampled_from(["compare"] * 4 + ["sweep"] * 2 + ["eval", "none",
                                                                                                 "bad"]))
    if cmd == "sweep":
        argv = ["sweep", "sweep.yaml", "--out", draw(st.sampled_from(["res.csv", "res.json", "res.csv", "",
                                                                      "nodir/res.csv", "res.txt"]))]
        return {"sweep.yaml": draw(sweep_file())}, argv + (["--quiet"] if draw(chance(0.5)) else [])
    if cmd == "none":
        return files, draw(st.sampled_from([[], ["--version"], ["--help"], ["run", "--help"], ["--bogus"]]))
    if cmd == "bad":
        return files, draw(st.lists(st.text(max_size=8), max_size=4))
    mfiles, model = draw(source("model"))
    hfiles, hw = draw(source("hw"))
    files.update(mfiles)
    files.update(hfiles)
    if cmd == "eval":   # only argument errors (a real evaluation takes seconds): no --eval, or an unknown model
        return files, ["eval", draw(st.sampled_from([model, "nope"]))] + draw(st.sampled_from(
            [[], ["--eval", "mnist", "--eval-size", "0"], ["--eval", "nope"], ["--calib", "kl", "--percentile", "x"]]))
    if cmd == "run" and draw(chance(0.06)):   # the cycle-level emulator on small GEMMs
        files = {"tiny.csv": draw(tiny_gemm_csv())}
        model = "tiny.csv"
        hw = draw(st.sampled_from(HW_NAMES))
        argv = [cmd, model, "--hw", hw, "--emulate"] + draw(st.sampled_from([[], ["g0"], ["*"], ["nomatch"]]))
        for _ in range(draw(st.integers(0, 2))):
            argv += ["--set", f"{draw(st.sampled_from(['array.rows', 'array.cols', 'array.dataflow']))}="
                              f"{draw(st.sampled_from(['1', '2', '3', '8', '16', 'os', 'ws', 'is']))}"]
        return files, argv + (["--json", "out.json"] if draw(chance(0.5)) else [])
    argv = [cmd, model, "--hw", hw]
    for _ in range(draw(st.integers(0, 3)) if draw(chance(0.5)) else 0):
        key = draw(st.sampled_from(HW_PATHS)) if draw(chance(0.85)) else draw(st.text(max_size=10))
        argv += ["--set", f"{key}={draw(plausible_text if draw(chance(0.6)) else value_text)}"]
    if draw(chance(0.2)):
        value = draw(st.sampled_from(PLAUSIBLE_INTS).map(str) if draw(chance(0.5)) else value_text)
        argv += ["--param", f"{draw(st.sampled_from(['seq_len', 'batch', 'x', '']))}={value}"]
    if cmd == "compare":
        argv += ["--baseline", draw(precision), "--target", draw(precision)]
    else:
        if draw(chance(0.5)):
            argv += ["--precision", draw(precision)]
        if draw(chance(0.15)):
            argv += ["--layer-precision", f"{draw(st.sampled_from(['*', '*conv*', 'L0', '']))}={draw(precision)}"]
        if draw(chance(0.15)):
            argv += ["--keep-float", draw(st.sampled_from(["*", "*fc*", "L1"])), "--float-mode",
                     draw(st.sampled_from(["fp16", "bf16", "fp32"]))]
        if draw(chance(0.15)):
            argv += ["--max-rows", draw(st.sampled_from(["0", "1", "-1", "5", "1000000", "x"]))]
        if draw(chance(0.5)):
            argv += ["--quiet"]
        if draw(chance(0.5)):
            argv += ["--csv", draw(out_name)]
    if draw(chance(0.6)):
        argv += ["--json", draw(out_name)]
    if draw(chance(0.04)):
        argv += [draw(st.sampled_from(["--bogus", "-x", "extra"]))]
    return files, argv


# ------------------------------------------------------------------------------------------------ checking
def _files(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


def _bad_number(v, key) -> bool:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return False
    if not math.isfinite(v) or v < 0:
        return True
    return isinstance(key, str) and ("utilization" in key or "efficiency" in key) and v > 1


def _json_problems(text: str) -> tuple[list[str], bool]:
    def refuse(c):
        raise ValueError(f"non-standard JSON constant {c}")
    data = json.loads(text, parse_constant=refuse)
    bad: list[str] = []
    nulls = bool(isinstance(data, dict) and data.get("not_computed"))

    def walk(x, key, path):
        if isinstance(x, dict):   # compare's improvement ratios may exceed 1
            for k, v in x.items():
                walk(v, None if key == "ratios" else k, f"{path}.{k}")
        elif isinstance(x, list):
            for i, v in enumerate(x):
                walk(v, key, f"{path}[{i}]")
        elif _bad_number(x, key):
            bad.append(f"{path}={x}")
    walk(data, None, "")
    return bad, nulls


TEXT_COLUMNS = {"name", "op", "precision", "bound", "level", "operand", "dataflow"}


def _csv_problems(text: str) -> list[str]:
    rows = list(csv.DictReader(io.StringIO(text)))
    bad = []
    for i, row in enumerate(rows):
        for k, cell in row.items():
            if k in TEXT_COLUMNS or cell in (None, ""):
                continue
            try:
                v = float(cell)
            except ValueError:
                continue
            if _bad_number(v, k):
                bad.append(f"row {i} {k}={cell}")
    return bad


_NUM = re.compile(r"(?<![\w.])-?(?:nan|inf|infinity|\d[\d,]*(?:\.\d+)?(?:e[-+]?\d+)?)(?![\w./])", re.I)


def _text_problems(out: str) -> list[str]:
    """Numbers in the totals lines (which hold no user-chosen names) must be finite and non-negative."""
    bad = []
    for line in out.splitlines():
        if line.startswith(("  layers", "  cycles", "  latency", "  DRAM")):
            for tok in _NUM.findall(line):
                if tok.lower().lstrip("-") in ("nan", "inf", "infinity") or tok.startswith("-"):
                    bad.append(f"{tok!r} in {line.strip()[:80]!r}")
    return bad


def _outputs(argv: list[str]) -> list[str]:
    return [argv[i + 1] for i, a in enumerate(argv[:-1]) if a in ("--json", "--csv", "--out")]


def run_case(files: dict[str, str], argv: list[str]) -> tuple[str, str]:
    """Run one case in a fresh temporary working directory; return (outcome class, detail)."""
    old = os.getcwd()
    with tempfile.TemporaryDirectory(prefix="fuzz-cli-") as tmp:
        root = Path(tmp)
        for name, text in files.items():
            (root / name).write_text(text, encoding="utf-8")
        before = _files(root)
        out, err = io.StringIO(), io.StringIO()
        os.chdir(root)
        try:
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                try:
                    rc = main(list(argv))
                except SystemExit as exc:   # argparse (errors: 2, --help/--version: 0)
                    rc = exc.code if isinstance(exc.code, int) else 1
        except Exception:   # noqa: BLE001 - the very thing we look for
            return "traceback", traceback.format_exc(limit=-3)
        finally:
            os.chdir(old)
        return classify(rc, out.getvalue(), err.getvalue(), root, before, argv)


def classify(rc, out: str, err: str, root: Path, before: set[str], argv: list[str]) -> tuple[str, str]:
    wanted = [o for o in _outputs(argv) if o.strip()] if rc == 0 else []
    new = _files(root) - before - set(wanted)
    if new:
        return "leftover", f"{sorted(new)[:5]} rc={rc} err={err[:200]!r}"
    if rc == 2:
        lines = err.splitlines()
        ok = out == "" and len(lines) == 1 and err.endswith("\n") and lines[0].startswith("accelsim: error: ")
        return ("exit2-one-line", "") if ok else ("exit2-bad", f"out={out[:200]!r} err={err[:300]!r}")
    if rc != 0:
        return "exit-other", f"rc={rc} err={err[:300]!r}"
    if err:
        return "exit0-noise", err[:300]
    bad, nulls = _text_problems(out), False
    outputs = dict.fromkeys(wanted)  # a path given twice holds the last writer's output: check the kind it has
    for path in outputs:
        p = root / path
        if not p.is_file():
            return "nonfinite", f"missing output {path}"
        text = p.read_text(encoding="utf-8")
        try:
            if text.lstrip().startswith(("{", "[")):
                b, n = _json_problems(text)
                bad, nulls = bad + b, nulls or n
            else:
                bad += _csv_problems(text)
        except ValueError as exc:
            bad.append(f"{path}: {exc}")
    if bad:
        return "nonfinite", "; ".join(bad[:5])
    return ("exit0-null" if nulls or "not computed" in out else "exit0-sane"), ""
