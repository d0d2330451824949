"""Design-space sweeps: records equal single simulate() calls exactly, executors change nothing, the Pareto
front is the non-dominated set, bad sweep files are one-line errors, an interrupted sweep resumes."""
from __future__ import annotations

import json
from concurrent.futures import ProcessPoolExecutor

import numpy as np
import pytest

from accelsim.cli import main
from accelsim.config.loader import load_hw, load_model
from accelsim.errors import ConfigError
from accelsim.sim.engine import simulate
from accelsim.sweep import MAXIMIZE, RESULTS, pareto_front, sweep

MODEL = "mobilenet_v2"


def single(model, hw_name, rec, paths, precision="w8a8"):
    sets = [f"{p}={rec[p]}" for p in paths if p not in ("precision", "plan")]
    return simulate(model, load_hw(hw_name, sets), rec.get("precision", precision)).totals


@pytest.mark.parametrize("hw_name, grid", [
    ("edge", {"array.rows": [8, 24, 64], "array.cols": [16, 40], "array.dataflow": ["ws", "os", "is"],
              "memory.ifmap_sram_kib": [32, 1024], "memory.dram_gbps": [2, 17], "precision": ["w8a8", "w4a4", "fp32"]}),
    ("edge", {"pe.float_macs_per_cycle.fp32": [0.125, 0.5], "energy.leakage_mw": [0, 500], "clock_mhz": [300, 900],
              "timing.stationary_double_buffer": [False, True], "precision": ["fp32"]}),
    ("zigzag_tpu_like", {"memory.sram_2MB.size_kib": [64, 2048], "memory.rf_128B.size_bytes": [16, 256],
                         "memory.dram.bytes_per_cycle": [4, 64], "array.rows": [16, 32]}),
    ("server", {"pe.acc_bits": [32, 48], "pe.base_bits": [8, 16], "array.rows": [32, 128]}),   # per-point fallback
])
def test_records_equal_single_simulate_calls(hw_name, grid):
    model = load_model(MODEL)
    result = sweep(model, hw_name, grid, chunk_size=7)
    assert len(result.records) == int(np.prod([len(v) for v in grid.values()]))
    rng = np.random.default_rng(0)
    for i in rng.choice(len(result.records), size=min(12, len(result.records)), replace=False):
        rec = result.records[i]
        want = single(model, hw_name, rec, list(grid))
        for key in RESULTS:
            assert rec[key] == want[key], (rec, key)


def test_area_grows_with_the_array_and_the_srams():
    r = sweep(MODEL, "edge", {"array.rows": [16, 64], "memory.ifmap_sram_kib": [256, 1024]}).records
    by = {(x["array.rows"], x["memory.ifmap_sram_kib"]): x["area_mm2"] for x in r}
    assert by[64, 256] > by[16, 256] and by[16, 1024] > by[16, 256]
    assert by[16, 1024] - by[16, 256] == pytest.approx(768 * 0.0039 * 0.0625)   # KiB · mm²/KiB · node scale


def test_process_pool_equals_serial():
    grid = {"array.rows": [16, 32, 64], "array.cols": [16, 64], "precision": ["w8a8", "w4a8"]}
    serial = sweep(MODEL, "edge", grid, chunk_size=4).records
    with ProcessPoolExecutor(2) as pool:
        parallel = sweep(MODEL, "edge", grid, chunk_size=4, executor=pool).records
    assert parallel == serial


@pytest.mark.slow
def test_dask_local_cluster_equals_serial():
    distributed = pytest.importorskip("dask.distributed")
    grid = {"array.rows": [16, 32, 64, 128], "array.cols": [16, 64], "memory.dram_gbps": [4, 34]}
    serial = sweep(MODEL, "edge", grid, chunk_size=5).records
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        remote = sweep(MODEL, "edge", grid, chunk_size=5, executor=client.get_executor()).records
    assert remote == serial


def brute_front(records, objectives):
    def key(r):
        return [(-r[o] if o in MAXIMIZE else r[o]) for o in objectives]
    out = []
    for i, r in enumerate(records):
        dominated = any(all(a <= b for a, b in zip(key(s), key(r))) and key(s) != key(r) for s in records)
        duplicate_before = any(key(s) == key(r) for s in records[:i])
        if not dominated and not duplicate_before:
            out.append(i)
    return tuple(out)


def test_pareto_front_is_the_non_dominated_set():
    rng = np.random.default_rng(3)
    for objectives in (("latency_ms", "energy_mj"), ("latency_ms", "energy_mj", "inferences_per_j")):
        records = [{o: float(rng.integers(0, 6)) for o in objectives} for _ in range(200)]
        assert pareto_front(records, objectives) == brute_front(records, objectives)


def test_bad_grids_and_objectives_are_one_error_each():
    with pytest.raises(ConfigError, match="sweep.grid: expected a non-empty mapping"):
        sweep(MODEL, "edge", {})
    with pytest.raises(ConfigError, match=r"sweep.grid.array.rows: expected a non-empty list"):
        sweep(MODEL, "edge", {"array.rows": []})
    with pytest.raises(ConfigError, match="exceed 10,000,000; narrow the grid or pass --force"):
        sweep(MODEL, "edge", {f"x{i}": list(range(10)) for i in range(9)})
    with pytest.raises(ConfigError, match="sweep.objectives: expected names from"):
        sweep(MODEL, "edge", {"array.rows": [8]}, objectives=("speed",))
    with pytest.raises(ConfigError, match="hw.array.rowz: unknown field"):
        sweep(MODEL, "edge", {"array.rowz": [8]})
    with pytest.raises(ConfigError, match=r"hw.array.rows: expected a positive integer"):
        sweep(MODEL, "edge", {"array.rows": [8, 0]})


def write_sweep(tmp_path, **extra) -> str:
    spec = {"model": MODEL, "hw": "edge", "grid": {"array.rows": [16, 32, 64], "precision": ["w8a8", "w4a8"]},
            "objectives": ["latency_ms", "energy_mj"], **extra}
    path = tmp_path / "sweep.yaml"
    path.write_text(json.dumps(spec))
    return str(path)


def test_cli_sweep_writes_records_and_prints_the_front(tmp_path, capsys):
    out = tmp_path / "r.json"
    assert main(["sweep", write_sweep(tmp_path), "--out", str(out)]) == 0
    records = json.loads(out.read_text())["records"]
    assert len(records) == 6 and {"array.rows", "precision", "latency_ms", "area_mm2"} <= set(records[0])
    assert "6 points" in capsys.readouterr().out
    assert not (tmp_path / "r.json.partial.jsonl").exists()


@pytest.mark.parametrize("extra, message", [
    ({"grid": {"array.rowz": [8]}}, "hw.array.rowz: unknown field"),
    ({"grid": {}}, "sweep.grid: expected a non-empty mapping"),
    ({"grid": {f"a{i}": list(range(10)) for i in range(9)}}, "pass --force"),
    ({"objectives": ["speed"]}, "sweep.objectives: expected names from"),
    ({"colour": "red"}, "sweep.colour: unknown field"),
])
def test_cli_bad_sweep_files(tmp_path, capsys, extra, message):
    assert main(["sweep", write_sweep(tmp_path, **extra), "--out", str(tmp_path / "r.csv")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("accelsim: error:") and message in err[0]
    assert not (tmp_path / "r.csv").exists()


def test_cli_sweep_resumes_from_its_partial_file(tmp_path, capsys):
    path = write_sweep(tmp_path)
    out = tmp_path / "r.json"
    assert main(["sweep", path, "--out", str(out)]) == 0
    full = json.loads(out.read_text())["records"]
    # an interrupted run left chunk 0 (marked) behind: the rerun must keep it, not recompute it
    from accelsim.sweep_cli import read_sweep
    import hashlib
    tag = hashlib.sha256(json.dumps(read_sweep(path), sort_keys=True, default=str).encode()).hexdigest()[:16]
    marked = [dict(r, latency_ms=-1.0) for r in full]
    partial = tmp_path / "r.json.partial.jsonl"
    partial.write_text(json.dumps({"sweep": tag}) + "\n" + json.dumps({"chunk": 0, "records": marked}) + "\n")
    assert main(["sweep", path, "--out", str(out)]) == 0
    assert [r["latency_ms"] for r in json.loads(out.read_text())["records"]] == [None] * len(full)  # checked: -1 → null
    assert not partial.exists()


def test_accuracy_is_computed_once_per_quantization(monkeypatch):
    import accelsim.eval.pipeline as pipeline
    calls = []

    def fake_evaluate(task, scheme, mode="int", progress=None):
        calls.append(None if scheme is None else (scheme.w_bits, scheme.a_bits))
        return {"primary_metric": "accuracy", "fp32": {"accuracy": 0.99},
                "quantized": {"accuracy": 0.9 + 0.001 * len(calls)}}

    monkeypatch.setattr(pipeline, "evaluate", fake_evaluate)
    grid = {"array.rows": [16, 32, 64], "precision": ["w8a8", "w4a8", "fp32"]}
    result = sweep("mnist_cnn", "edge", grid, objectives=("energy_mj", "accuracy"), eval="mnist")
    assert sorted(map(str, calls)) == ["(4, 8)", "(8, 8)", "None"]           # one evaluation per precision
    by_prec = {}
    for r in result.records:
        by_prec.setdefault(r["precision"], set()).add(r["accuracy"])
    assert all(len(v) == 1 for v in by_prec.values()) and by_prec["fp32"] == {0.99}


def test_cli_sweep_refuses_a_missing_folder_and_leaves_no_partial_file(tmp_path, capsys):
    path = write_sweep(tmp_path)
    assert main(["sweep", path, "--out", str(tmp_path / "nope" / "r.csv")]) == 2
    assert "does not exist" in capsys.readouterr().err
    bad = write_sweep(tmp_path, grid={"array.rows": [16, 0]})
    assert main(["sweep", bad, "--out", str(tmp_path / "r.csv")]) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sweep.yaml"]


# ---- every numeric field in the grouped pass; categorical fields one pass per value -------------------------

def numeric_fields(data: dict, prefix: str = ""):
    """(path, value) of every number in a hw YAML (memory levels addressed by name, as --set takes them)."""
    for key, value in data.items():
        if isinstance(value, dict):
            yield from numeric_fields(value, f"{prefix}{key}.")
        elif key == "levels" and isinstance(value, list):
            for lv in value:
                yield from ((f"{prefix}{lv['name']}.{k}", v) for k, v in lv.items() if type(v) in (int, float))
        elif type(value) in (int, float):
            yield f"{prefix}{key}", value


def exact_single(model, hw_name, rec, grid, precision="w8a8"):
    sets = [f"{p}={str(rec[p]).lower() if isinstance(rec[p], bool) else rec[p]}" for p in grid
            if p not in ("precision", "plan", "batch")]
    return simulate(model, load_hw(hw_name, sets), rec.get("precision", precision), batch=rec.get("batch", 1)).totals


@pytest.mark.parametrize("hw_name", ["edge", "edgetpu_devboard", "zigzag_tpu_like"])
def test_every_numeric_hw_field_is_costed_as_an_array(hw_name):
    """Each number of the bundled YAML (with array.rows, so no field is swept alone by luck) in one pass per
    group: nothing falls back but pe.base_bits, which is said; records equal single simulate calls."""
    from accelsim.config.loader import read_yaml, resolve
    model = load_model("tests/fixtures/small_net.yaml")
    fields = dict(numeric_fields(read_yaml(resolve(hw_name, "hw"))))
    assert len(fields) >= 20
    if hw_name == "edgetpu_devboard":
        fields["memory.sram.resident_kib"] = 4096     # the weight budget (defaults to the level's size)
    for path, value in fields.items():
        other = value * 2 if type(value) is int else (value / 2 if value else 1.0)
        if path == "pe.base_bits":
            other = value        # a wider PE needs wider accumulators and int_bits; its pass is by value anyway
        grid = {path: [value, other], "array.rows": [16, 48]}
        result = sweep(model, hw_name, grid, objectives=("latency_ms", "energy_mj"))
        assert set(result.fallbacks) == ({"pe.base_bits"} & {path}), (path, result.fallbacks)
        for rec in result.records:
            want = exact_single(model, hw_name, rec, grid)
            assert all(rec[k] == want[k] for k in RESULTS), (path, rec)


def test_categorical_fields_form_groups_and_match_single_calls():
    model = load_model("mobilenet_v2")
    grid = {"array.dataflow": ["ws", "os"], "array.grouped": ["serial", "cols"], "clock_mhz": [400, 800],
            "memory.activation_placement": ["fits", "live"], "timing.dram_overlap": ["layer", "fold"],
            "timing.vector_overlap": ["none", "epilogue"], "timing.load_store_phases": [False, True],
            "memory.dram_gbps": [4, 17], "batch": [1, 4], "precision": ["w8a8", "w4a8"]}
    result = sweep(model, "edge", grid, objectives=("latency_ms", "energy_mj"))
    assert result.fallbacks == {}
    rng = np.random.default_rng(1)
    for i in rng.choice(len(result.records), size=24, replace=False):
        rec = result.records[i]
        want = exact_single(model, "edge", rec, grid)
        assert all(rec[k] == want[k] for k in RESULTS), rec


def test_a_field_the_array_pass_cannot_take_is_named_and_costed_by_value(monkeypatch):
    """A field whose array pass fails (simulated here: leakage as an array breaks static energy) is found by
    the probe, named with the reason, and costed one pass per value — still exact."""
    import accelsim.hw.energy as E
    real = E.static_pj

    def scalar_leakage_only(hw, cycles):
        if isinstance(hw.energy.leakage_mw, np.ndarray):
            raise TypeError("leakage must be a number")
        return real(hw, cycles)

    monkeypatch.setattr(E, "static_pj", scalar_leakage_only)
    model = load_model("tests/fixtures/small_net.yaml")
    said = []
    grid = {"energy.leakage_mw": [50, 100, 200], "array.rows": [16, 32], "clock_mhz": [400, 700]}
    result = sweep(model, "edge", grid, objectives=("latency_ms", "energy_mj"), on_fallback=lambda p, w: said.append(p))
    assert said == ["energy.leakage_mw"] and list(result.fallbacks) == ["energy.leakage_mw"]
    assert "TypeError: leakage must be a number" in result.fallbacks["energy.leakage_mw"]
    for rec in result.records:
        want = exact_single(model, "edge", rec, grid)
        assert all(rec[k] == want[k] for k in RESULTS), rec


def test_cli_says_each_fallback_once_on_stderr(tmp_path, capsys):
    path = write_sweep(tmp_path, grid={"pe.base_bits": [8, 16], "pe.acc_bits": [32, 64], "array.rows": [16, 32]})
    assert main(["sweep", path, "--out", str(tmp_path / "r.json")]) == 0
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["accelsim: note: sweep.grid.pe.base_bits: it sets which operand widths the PE runs (pe.int_bits, "
                   "rates): costed one pass per value"]


def test_the_cli_help_names_the_point_limit():
    from accelsim import sweep_cli
    from accelsim.sweep import MAX_POINTS
    assert sweep_cli.MAX_POINTS_TEXT == f"{MAX_POINTS:,}"


def test_pareto_front_of_two_objectives_equals_the_general_rule():
    rng = np.random.default_rng(7)
    records = [{"latency_ms": float(rng.integers(0, 30)), "energy_mj": float(rng.integers(0, 30))} for _ in range(500)]
    records[3]["energy_mj"] = None
    assert pareto_front(records, ("latency_ms", "energy_mj")) == brute_front(
        [r if r["energy_mj"] is not None else {"latency_ms": 1e9, "energy_mj": 1e9} for r in records],
        ("latency_ms", "energy_mj"))


def test_plans_form_groups_and_match_single_calls():
    from accelsim.sweep import _plan
    model = load_model("mobilenet_v2")
    plans = [None, ["*conv*=w4a8"], {"*": "w4a4"}]
    grid = {"plan": plans, "array.cols": [16, 64], "energy.leakage_mw": [10, 100]}
    result = sweep(model, "edge", grid, objectives=("latency_ms", "energy_mj"))
    assert result.fallbacks == {}
    for rec in result.records:
        hw = load_hw("edge", [f"array.cols={rec['array.cols']}", f"energy.leakage_mw={rec['energy.leakage_mw']}"])
        want = simulate(model, hw, "w8a8", _plan(model, rec["plan"])).totals
        assert all(rec[k] == want[k] for k in RESULTS), rec
