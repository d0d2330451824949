"""Cost model v2: dataflows as data, memory as levels, timing options, and the per-fold DMA schedule.

Each closed form here has a naive twin (a loop over folds or over levels) it is compared against.
"""
from __future__ import annotations

import copy
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from accelsim.config.hw import HWConfig
from accelsim.config.loader import load_hw, read_yaml, resolve
from accelsim.errors import ConfigError
from accelsim.graph import Model
from accelsim.hw import dataflow as D
from accelsim.hw.dataflow import DATAFLOWS, DataflowSpec, fold_timing
from accelsim.hw.schedule import FoldShape, _share, fold_schedule
from accelsim.sim.engine import simulate


def conv_model(c=16, h=16, k=32, kernel=1, stride=2, pad=0) -> Model:
    return Model.from_dict({"name": "c", "inputs": [{"name": "x", "shape": [c, h, h]}],
                            "layers": [{"name": "conv", "op": "conv2d", "out_channels": k, "kernel": kernel,
                                        "stride": stride, "padding": pad, "bias": False}]})


def linear_model(m: int, k: int, n: int) -> Model:
    return Model.from_dict({"name": "lin", "inputs": [{"name": "x", "shape": [m, k]}],
                            "layers": [{"name": "fc", "op": "linear", "out_features": n, "bias": False}]})


def hw_dict(name: str) -> dict:
    return read_yaml(resolve(name, "hw"))


# ---- the per-fold schedule against a fold-by-fold loop ----------------------------------------------------

def naive_schedule(shape: FoldShape, flow: DataflowSpec, loads, extra, output, bw, phases):
    """Fold by fold: fold f starts when its loads (in fold order) have arrived and fold f−1 has finished."""
    i_n, j_n, g_n, c = shape.row_folds, shape.col_folds, shape.count, shape.fold_cycles
    per_fold = []
    for _g in range(g_n):
        for j in range(j_n):
            for i in range(i_n):
                b = extra / g_n / (i_n * j_n)
                for op, total in loads.items():
                    kind, x = _share(flow, op), total / g_n
                    b += {"both": x / (i_n * j_n), "rows": x / i_n if j == 0 else 0.0,
                          "cols": x / j_n if i == 0 else 0.0}[kind]
                per_fold.append(b)
    first = per_fold[0]
    arrived, end = (0.0 if phases else -first / bw), 0.0
    for b in per_fold:
        arrived += b / bw
        end = max(end, arrived) + c
    end += shape.overhead
    out_kind = _share(flow, "output")
    last = output / g_n / {"both": i_n * j_n, "rows": i_n, "cols": j_n}[out_kind]
    dram = sum(loads.values()) + extra + output
    return max(end + last / bw, dram / bw) if phases else max(end, (dram - first - last) / bw)


@settings(max_examples=300, deadline=None)
@given(i_n=st.integers(1, 6), j_n=st.integers(1, 6), g_n=st.integers(1, 4), c=st.integers(1, 500),
       o=st.integers(0, 100), a=st.integers(0, 10**6), b=st.integers(0, 10**6), extra=st.integers(0, 10**5),
       out=st.integers(0, 10**6), bw=st.sampled_from([1.0, 8.0, 64.0, 1e4]), phases=st.booleans(),
       flow=st.sampled_from(list(DATAFLOWS.values())))
def test_fold_schedule_closed_form_equals_the_fold_loop(i_n, j_n, g_n, c, o, a, b, extra, out, bw, phases, flow):
    shape = FoldShape(i_n, j_n, g_n, float(c), float(o))
    loads = {"input": float(a), "weight": float(b)}
    got, _, _ = fold_schedule(shape, flow, loads, float(extra), float(out), bw, phases)
    assert got == pytest.approx(naive_schedule(shape, flow, loads, extra, out, bw, phases), rel=1e-9, abs=1e-6)


# ---- dataflows are data ---------------------------------------------------------------------------------

def test_double_buffered_stationary_pays_preload_fill_and_drain_once():
    rows, cols, m, n, k = 8, 4, 50, 10, 20
    for flow in DATAFLOWS.values():
        t = fold_timing([m], [n], [k], rows, cols, flow, stationary_double_buffer=True)
        sr, sc, tt = D.spatial_temporal(m, n, k, flow)
        folds = math.ceil(sr / rows) * math.ceil(sc / cols)
        p = rows if flow.preloads else 0
        assert t.cycles[0] == p + folds * max(tt, p) + rows + cols - 2
        compat = fold_timing([m], [n], [k], rows, cols, flow)
        assert t.scalesim_cycles[0] == compat.scalesim_cycles[0]      # the compatibility column never moves
        assert t.cycles[0] < compat.cycles[0]


def test_a_fourth_dataflow_is_one_table_entry(monkeypatch):
    """'ws_t' (weights stationary, N on rows, K on cols) on a square array is WS transposed: same numbers."""
    monkeypatch.setitem(DATAFLOWS, "ws_t", DataflowSpec("ws_t", rows="n", cols="k", time="m"))
    model = linear_model(40, 96, 72)
    base = ["array.rows=16", "array.cols=16"]
    ws = simulate(model, load_hw("edge", base + ["array.dataflow=ws"])).layers[0]
    wst = simulate(model, load_hw("edge", base + ["array.dataflow=ws_t"])).layers[0]
    assert DATAFLOWS["ws_t"].stationary == "weight"
    for key in ("cycles", "compute_cycles", "scalesim_cycles", "folds", "sram_ifmap_reads", "sram_filter_reads",
                "sram_ofmap_writes", "dram_bytes", "energy_pj"):
        assert getattr(wst, key) == getattr(ws, key), key
    with pytest.raises(ConfigError, match=r"hw.array.dataflow: expected one of os \| ws \| is \| ws_t"):
        load_hw("edge", ["array.dataflow=diagonal"])


def test_unknown_dataflow_rows_are_rejected():
    with pytest.raises(ValueError, match="permutation"):
        DataflowSpec("bad", rows="m", cols="m", time="k")


# ---- memory levels --------------------------------------------------------------------------------------

def explicit_levels(hw: HWConfig) -> dict:
    """The edge config written in the list form with the same numbers as its shorthand."""
    d = copy.deepcopy(hw_dict("edge"))
    mem = d.pop("memory")
    levels = [{"name": lv.name, "kind": lv.kind, "size_kib": lv.size_bytes / 1024, "operands": list(lv.operands),
               "read_pj": lv.read_pj_per_byte, "write_pj": lv.write_pj_per_byte} for lv in hw.memory.levels[:-1]]
    levels.append({"name": "dram", "kind": "dram", "operands": ["input", "weight", "output"],
                   "read_pj": d["energy"]["dram_pj_per_byte"], "write_pj": d["energy"]["dram_pj_per_byte"],
                   "gbps": mem["dram_gbps"]})
    d["memory"] = {"double_buffer": mem["double_buffer"], "levels": levels}
    return d


def test_shorthand_equals_its_explicit_levels():
    hw = load_hw("edge")
    listed = HWConfig.from_dict(explicit_levels(hw))
    model = conv_model(c=32, h=28, k=64, kernel=3, stride=1, pad=1)
    for prec in ("w8a8", "fp32"):
        a, b = simulate(model, hw, prec), simulate(model, listed, prec)
        assert a.totals["cycles"] == b.totals["cycles"]
        assert a.totals["energy_mj"] == pytest.approx(b.totals["energy_mj"], rel=1e-12)
        assert [c.to_dict()["levels"] for c in a.layers] == [c.to_dict()["levels"] for c in b.layers]


def test_a_fifth_level_is_one_yaml_item():
    """An input register per PE (moving operand: one read and one write per MAC) and a weight L2 SRAM."""
    base = hw_dict("zigzag_tpu_like")
    more = copy.deepcopy(base)
    more["memory"]["levels"].insert(0, {"name": "i_reg", "kind": "register", "size_bytes": 1,
                                        "operands": ["input"], "read_pj": 0.01, "write_pj": 0.02})
    more["memory"]["levels"].insert(3, {"name": "w_l2", "kind": "sram", "size_kib": 256, "operands": ["weight"],
                                        "read_pj": 0.5, "write_pj": 0.6})
    model = conv_model(c=64, h=28, k=64, kernel=3, stride=1, pad=1)
    a = simulate(model, HWConfig.from_dict(base)).layers[0]
    b = simulate(model, HWConfig.from_dict(more)).layers[0]
    levels = {(t.level, t.operand): t for t in b.traffic.levels}
    assert levels["i_reg", "input"].read_bytes == levels["i_reg", "input"].write_bytes == b.macs
    w_dram = levels["dram", "weight"].read_bytes
    assert levels["w_l2", "weight"].write_bytes == levels["w_l2", "weight"].read_bytes == w_dram == 64 * 64 * 9
    extra = b.macs * (0.01 + 0.02) + w_dram * (0.5 + 0.6)
    assert b.energy_pj == pytest.approx(a.energy_pj + extra, rel=1e-12)
    assert b.energy.by_level["i_reg"] == pytest.approx(b.macs * 0.03)


def test_level_errors_name_the_field():
    d = copy.deepcopy(hw_dict("zigzag_tpu_like"))
    lv = d["memory"]["levels"]
    lv[0]["kind"] = "cache"
    lv[1]["operands"] = ["psum"]
    lv[2]["name"] = "rf_128B"
    del lv[3]["bytes_per_cycle"]
    with pytest.raises(ConfigError) as exc:
        HWConfig.from_dict(d)
    text = "\n".join(exc.value.problems)
    assert "hw.memory.levels[0].kind: expected one of register | sram | dram, got 'cache'" in text
    assert "hw.memory.levels[1].operands: expected a non-empty list of distinct operands" in text
    assert "hw.memory.levels[2].name: expected a unique level name, got 'rf_128B' again" in text
    assert "hw.memory.levels[3].bytes_per_cycle: expected a bandwidth (bytes_per_cycle or gbps) for a dram level" in text
    d = copy.deepcopy(hw_dict("zigzag_tpu_like"))
    d["memory"]["levels"].reverse()
    with pytest.raises(ConfigError, match="expected exactly one level of kind 'dram', listed last"):
        HWConfig.from_dict(d)


# ---- timing options and strided reads -------------------------------------------------------------------

def test_strided_gather_reads_only_the_pixels_used():
    model = conv_model(c=16, h=16, k=32, kernel=1, stride=2)     # reads every other row and column
    full = simulate(model, load_hw("edge")).layers[0]
    used = simulate(model, load_hw("edge", ["memory.strided_gather=true"])).layers[0]
    assert full.dram_ifmap_bytes == 16 * 16 * 16
    assert used.dram_ifmap_bytes == 16 * 8 * 8
    dense = conv_model(c=16, h=16, k=32, kernel=3, stride=2, pad=1)   # 3×3 stride 2 touches every pixel
    assert simulate(dense, load_hw("edge", ["memory.strided_gather=true"])).layers[0].dram_ifmap_bytes == 16 * 16 * 16


def test_load_store_phases_add_the_first_load_and_last_store():
    model = linear_model(256, 512, 512)
    sets = ["timing.stationary_double_buffer=true", "memory.dram_gbps=1000"]
    plain = simulate(model, load_hw("edge", sets)).layers[0]
    phased = simulate(model, load_hw("edge", sets + ["timing.load_store_phases=true"])).layers[0]
    assert plain.cycles == plain.compute_cycles                 # compute-bound, transfers fully hidden
    assert phased.cycles > plain.cycles and phased.timing.stall_by_level["dram"] == phased.cycles - phased.compute_cycles


def test_per_fold_overlap_is_at_least_the_bandwidth_and_the_compute_bound():
    for m, k, n in ((1, 4096, 4096), (512, 512, 512), (3136, 64, 64)):
        model = linear_model(m, k, n)
        for gbps in (1, 17, 200):
            c = simulate(model, load_hw("edge", [f"memory.dram_gbps={gbps}", "timing.dram_overlap=fold",
                                                 "timing.load_store_phases=true"])).layers[0]
            assert c.cycles >= max(c.compute_cycles, c.memory_cycles)
            assert c.cycles <= c.compute_cycles + c.memory_cycles + 1


def test_sram_bandwidth_stall_is_attributed_to_the_level():
    d = copy.deepcopy(hw_dict("zigzag_tpu_like"))
    d["memory"]["levels"][2]["bytes_per_cycle"] = 1          # a starved shared SRAM
    c = simulate(conv_model(c=64, h=28, k=64, kernel=3, stride=1, pad=1), HWConfig.from_dict(d)).layers[0]
    moved = sum(t.read_bytes + t.write_bytes for t in c.traffic.levels if t.level == "sram_2MB")
    assert c.timing.stall_by_level["sram_2MB"] == math.ceil(moved) - c.compute_cycles
    assert c.bound == "memory"


def test_report_json_has_levels_and_totals_per_level():
    r = simulate(conv_model(c=64, h=28, k=64, kernel=3, stride=1, pad=1), load_hw("zigzag_tpu_like"))
    d = r.to_dict()
    layer = d["layers"][0]
    assert {"levels", "stall_by_level", "energy_by_level_pj", "energy_register_pj", "cycles"} <= set(layer)
    assert sum(layer["energy_by_level_pj"].values()) == pytest.approx(
        layer["energy_register_pj"] + layer["energy_sram_pj"] + layer["energy_dram_pj"])
    lv = d["totals"]["memory_levels"]
    assert set(lv) == {"rf_128B", "rf_2B", "sram_2MB", "dram"}
    assert lv["dram"]["operands"]["weight"]["read_bytes"] == layer["dram_filter_bytes"]
    assert np.isclose(sum(v["energy_mj"] for v in lv.values()),
                      (layer["energy_register_pj"] + layer["energy_sram_pj"] + layer["energy_dram_pj"]) * 1e-9)


def test_cli_breakdown_prints_every_level(capsys, tmp_path):
    from accelsim.cli import main
    out = tmp_path / "r.csv"
    assert main(["run", "resnet50", "--hw", "zigzag_tpu_like", "--quiet", "--breakdown", "--csv", str(out)]) == 0
    text = capsys.readouterr().out
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("memory level"))
    assert [line.split()[0] for line in lines[start + 2:] if line[:1] != " "] == ["rf_128B", "rf_2B", "sram_2MB", "dram"]
    header = out.read_text().splitlines()[0].split(",")
    assert "levels" not in header and "cycles" in header          # per-level records are JSON-only


def test_set_addresses_a_memory_level_by_name():
    hw = load_hw("zigzag_tpu_like", ["memory.sram_2MB.size_kib=1024", "memory.levels.dram.bytes_per_cycle=16"])
    assert hw.memory.by_name["sram_2MB"].size_bytes == 1024 * 1024 and hw.memory.dram.bytes_per_cycle == 16
    with pytest.raises(ConfigError, match="no memory level named 'l9' \\(levels: rf_128B, rf_2B, sram_2MB, dram\\)"):
        load_hw("zigzag_tpu_like", ["memory.levels.l9.size_kib=1"])


def test_earlier_names_still_read():
    from accelsim.hw.dataflow import Dataflow
    hw = load_hw("edge")
    assert (hw.memory.ifmap_sram_kib, hw.memory.filter_sram_kib, hw.memory.ofmap_sram_kib) == (1024, 1024, 512)
    assert Dataflow.WS is DATAFLOWS["ws"] and hw.array.dataflow is Dataflow.WS
    assert load_hw("zigzag_tpu_like").memory.ifmap_sram_kib is None
