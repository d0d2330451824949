"""Real-silicon features of the cost model: batch, weights held across inferences, activation placement,
grouped/depthwise mapping, epilogue overlap of vector work, fixed overheads, and `accelsim validate`."""
from __future__ import annotations

import json
import math

import pytest

from accelsim import load_hw, load_model, simulate
from accelsim.cli import main
from accelsim.config.hw import HWConfig
from accelsim.config.loader import read_yaml, resolve
from accelsim.errors import ConfigError, MappingError
from accelsim.graph import Model
from accelsim.hw.dataflow import GROUPED_MAPPINGS
from accelsim.reporting.silicon import validate

HW = ["edge", "server", "scalesim_32x32", "zigzag_tpu_like", "edgetpu_devboard"]


def chain(*layers, shape=(8, 64)) -> Model:
    return Model.from_dict({"name": "m", "inputs": [{"name": "x", "shape": list(shape)}], "layers": list(layers)})


def lin(name, n, **kw):
    return {"name": name, "op": "linear", "out_features": n, "bias": False, **kw}


# ---- batch -----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("hw_name", HW)
def test_batch_one_is_the_default_run(hw_name):
    model, hw = load_model("mobilenet_v2"), load_hw(hw_name)
    assert simulate(model, hw, "w8a8", batch=1).to_dict() == simulate(model, hw, "w8a8").to_dict()


def test_batch_scales_work_and_shares_weights():
    model, hw = chain(lin("fc", 256), shape=(64, 256)), load_hw("edge")
    one, eight = (simulate(model, hw, "w8a8", batch=b) for b in (1, 8))
    c1, c8 = one.layers[0], eight.layers[0]
    assert (c8.m, c8.n, c8.k) == (8 * c1.m, c1.n, c1.k) and c8.macs == 8 * c1.macs
    assert c8.dram_filter_bytes == c1.dram_filter_bytes == 256 * 256            # fetched once per batch
    assert c8.dram_ifmap_bytes == 8 * c1.dram_ifmap_bytes
    t1, t8 = one.totals, eight.totals
    assert t8["batch"] == 8 and t8["macs"] == t1["macs"]                          # per inference
    assert t8["streamed_weight_mb"] == pytest.approx(t1["streamed_weight_mb"] / 8)
    assert t8["inferences_per_s"] == pytest.approx(8 / (t8["latency_ms"] * 1e-3))
    assert t8["energy_mj"] == pytest.approx(t8["batch_energy_mj"] / 8)


def test_attention_matmuls_run_once_per_sample():
    model = chain({"name": "s", "op": "matmul", "inputs": ["x", "x"], "transpose_b": True}, shape=(4, 16, 8))
    c = simulate(model, load_hw("edge"), "w8a8", batch=3).layers[0]
    assert (c.m, c.n, c.k, c.count) == (16, 16, 8, 12)


def test_bert_large_batch_128_shares_weight_fetches():
    model, hw = load_model("bert_large"), load_hw("server")
    one, big = (simulate(model, hw, "w8a8", batch=b).totals for b in (1, 128))
    # every weight is fetched once per batch, plus the re-fetches the 4 MiB weight / 16 MiB activation SRAMs
    # force on the FFN layers (their 16-67 MB activations do not fit): ≥ 30x fewer weight bytes per inference
    assert one["streamed_weight_mb"] / big["streamed_weight_mb"] > 30
    assert big["inferences_per_s"] >= one["inferences_per_s"]


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "2", 1 << 21])
def test_bad_batch_is_a_config_error(bad):
    with pytest.raises(ConfigError, match="batch: expected a positive integer"):
        simulate(load_model("mobilenet_v2"), load_hw("edge"), batch=bad)


def test_huge_batch_is_a_mapping_error():
    with pytest.raises(MappingError, match="batch"):
        simulate(load_model("bert_large"), load_hw("server"), batch=1 << 20)


def test_cli_batch(tmp_path, capsys):
    out = tmp_path / "r.json"
    assert main(["run", "resnet50", "--hw", "edge", "--batch", "4", "--quiet", "--json", str(out)]) == 0
    assert "batch 4" in capsys.readouterr().out
    assert json.loads(out.read_text())["totals"]["batch"] == 4
    assert main(["run", "resnet50", "--hw", "edge", "--batch", "0"]) == 2
    assert "batch: expected a positive integer" in capsys.readouterr().err


# ---- weights held across inferences and activation placement ---------------------------------------------

def _resident_hw(budget_kib, placement="fits", size_kib=64):
    """edge with one SRAM of ``size_kib`` holding weights across inferences, behind a 1 GB/s host link."""
    data = read_yaml(resolve("edge", "hw"))
    data["memory"] = {"double_buffer": True, "activation_placement": placement, "levels": [
        {"name": "buf", "kind": "sram", "size_kib": size_kib, "operands": ["input", "weight", "output"],
         "resident": "weights", "resident_kib": budget_kib, "access_bits": 64, "read_pj": 1, "write_pj": 1},
        {"name": "host", "kind": "dram", "operands": ["input", "weight", "output"], "access_bits": 8,
         "read_pj": 10, "write_pj": 10, "gbps": 1}]}
    return HWConfig.from_dict(data)


def test_weights_cached_in_execution_order_first_fit():
    # weights: a 8 KiB, b 32 KiB, c 4 KiB; a 16 KiB budget keeps a and c (first fit), streams b
    model = chain(lin("a", 128), lin("b", 256), lin("c", 16), shape=(4, 64))
    r = simulate(model, _resident_hw(16), "w8a8")
    res = {c.name: c.traffic.resident_weight_bytes for c in r.layers}
    assert res == {"a": 64 * 128, "b": 0, "c": 256 * 16}
    costs = {c.name: c for c in r.layers}
    assert costs["a"].dram_filter_bytes == costs["c"].dram_filter_bytes == 0
    assert costs["b"].dram_filter_bytes == costs["b"].streamed_weight_bytes == 128 * 256
    assert r.totals["resident_weight_mb"] == pytest.approx((64 * 128 + 256 * 16) / 1e6)
    assert r.totals["streamed_weight_mb"] == pytest.approx(128 * 256 / 1e6)


def test_live_placement_gives_weights_what_activations_leave():
    model = chain(lin("a", 512), lin("b", 512), lin("c", 64), shape=(64, 64))  # activations of 32 KiB each
    r = simulate(model, _resident_hw(64, "live"), "w8a8")
    # peak of live on-chip activations: a's and b's outputs (64 KiB) → no room left for weights
    assert r.totals["resident_weight_mb"] == 0
    r = simulate(model, _resident_hw(512, "live", size_kib=512), "w8a8")
    assert r.totals["streamed_weight_mb"] == 0 and r.totals["resident_weight_mb"] > 0
    assert {c.name: c.dram_ofmap_bytes for c in r.layers}["a"] == 0          # a's output stays on chip


def test_live_placement_spills_what_does_not_fit():
    model = chain(lin("a", 1024), lin("b", 64), shape=(64, 64))             # a's output: 64 KiB
    r = simulate(model, _resident_hw(1, "live", size_kib=32), "w8a8")
    a, b = r.layers
    assert a.dram_ofmap_bytes == 64 * 1024 and b.dram_ifmap_bytes >= 64 * 1024   # over the link and back


@pytest.mark.parametrize("change, problem", [
    ({"kind": "dram", "gbps": 1}, "only on an sram level"),
    ({"resident_kib": 65}, "resident_kib: expected at most the level's size_kib"),
    ({"operands": ["input", "output"]}, "only on an sram level that serves weight"),
    ({"resident": "all"}, "resident: expected one of weights"),
])
def test_bad_residency_is_a_config_error(change, problem):
    data = read_yaml(resolve("edge", "hw"))
    good = _resident_hw(64)
    level = {"name": "buf", "kind": "sram", "size_kib": 64, "operands": ["input", "weight", "output"],
             "resident": "weights", "access_bits": 64, "read_pj": 1, "write_pj": 1} | change
    if level["kind"] == "dram":
        level.pop("size_kib")
    data["memory"] = {"levels": [level] + ([] if level["kind"] == "dram" else [
        {"name": "host", "kind": "dram", "operands": ["input", "weight", "output"], "access_bits": 8,
         "read_pj": 10, "write_pj": 10, "gbps": 1}])}
    assert good.memory.resident_level.name == "buf"
    with pytest.raises(ConfigError, match=problem):
        HWConfig.from_dict(data)


# ---- grouped and depthwise mapping ------------------------------------------------------------------------

def _depthwise(channels=128, size=16):
    return chain({"name": "dw", "op": "conv2d", "out_channels": channels, "kernel": 3, "padding": 1,
                  "groups": channels, "bias": False}, shape=(channels, size, size))


@pytest.mark.parametrize("mapping", ["cols", "rows"])
def test_depthwise_utilization_is_its_closed_form(mapping):
    hw = load_hw("edge", [f"array.grouped={mapping}", "timing.stationary_double_buffer=false"])
    r, c = hw.array.rows, hw.array.cols
    cost = simulate(_depthwise(), hw, "w8a8").layers[0]
    m, ch, taps = 16 * 16, 128, 9
    spread_rows, spread_cols = (m, ch) if mapping == "cols" else (ch, m)
    folds = math.ceil(spread_rows / r) * math.ceil(spread_cols / c)
    assert cost.folds == folds and cost.compute_cycles == folds * (r + c + taps - 2)
    # every PE of a fold holds one (pixel, channel) output and accumulates its 9 taps in time
    assert cost.utilization == pytest.approx(m * ch * taps / ((folds * (r + c + taps - 2) - 1) * r * c))
    assert cost.sram_ifmap_reads == m * taps * ch                    # each channel's line reads its own input
    assert cost.scalesim_cycles == simulate(_depthwise(), load_hw("edge"), "w8a8").layers[0].scalesim_cycles


def test_spread_mapping_is_faster_than_serial_for_mobilenet():
    model = load_model("mobilenet_v2")
    serial = simulate(model, load_hw("edge"), "w8a8").totals
    spread = simulate(model, load_hw("edge", ["array.grouped=cols"]), "w8a8").totals
    assert spread["latency_ms"] < serial["latency_ms"] / 3
    assert set(GROUPED_MAPPINGS) == {"serial", "cols", "rows"}
    assert all(m.source for m in GROUPED_MAPPINGS.values())


# ---- vector work overlapping the array --------------------------------------------------------------------

def test_epilogue_makespan_formula():
    model = chain(lin("ffn", 1024), {"name": "act", "op": "gelu"}, shape=(128, 256))
    base = simulate(model, load_hw("server"), "w8a8").layers
    hw_off = load_hw("server", ["timing.vector_overlap=none"])
    g, v = (c.cycles for c in simulate(model, hw_off, "w8a8").layers)
    t = base[0].timing.folds // math.ceil(256 / 128)                 # output tiles: WS completes per column tile
    added = max(g, v) + min(g, v) / t - g
    assert base[1].bound == "overlapped" and base[1].cycles == math.ceil(added)
    assert base[1].vector_cycles == v


def test_row_ops_wait_for_whole_rows():
    # layernorm needs every column tile of a row: on a WS array that is the end of the GEMM (one piece)
    model = chain(lin("o", 1024), {"name": "ln", "op": "layernorm"}, shape=(128, 256))
    hw_off = load_hw("server", ["timing.vector_overlap=none"])
    g, v = (c.cycles for c in simulate(model, hw_off, "w8a8").layers)
    assert simulate(model, load_hw("server"), "w8a8").layers[1].cycles == math.ceil(max(g, v) + min(g, v) - g)


def test_documented_speedups_hold():
    bert = [simulate(load_model("bert_large"), load_hw("server"), p).totals["latency_ms"] for p in ("fp32", "w8a8")]
    resnet = [simulate(load_model("resnet50"), load_hw("edge"), p).totals["latency_ms"] for p in ("fp32", "w8a8")]
    assert 3.0 <= bert[0] / bert[1] <= 4.0
    assert 3.5 <= resnet[0] / resnet[1] <= 4.5


# ---- fixed overheads ----------------------------------------------------------------------------------------

def test_overheads_per_layer_transfer_and_run():
    model = chain(lin("a", 64), {"name": "r", "op": "sigmoid"}, lin("b", 64))
    base = simulate(model, load_hw("edge"), "w8a8")
    hw = load_hw("edge", ["timing.layer_overhead_cycles=100", "timing.dma_overhead_cycles=10",
                          "timing.run_overhead_cycles=1000"])
    r = simulate(model, hw, "w8a8")
    for b, c in zip(base.layers, r.layers):
        streams = sum(x > 0 for x in (c.dram_ifmap_bytes, c.dram_filter_bytes, c.dram_ofmap_bytes, c.dram_psum_bytes))
        assert c.timing.overhead_cycles == 100 + 10 * streams and c.cycles == b.cycles + c.timing.overhead_cycles
    assert r.totals["cycles"] == sum(c.cycles for c in r.layers) + 1000
    assert r.totals["overhead_cycles"] == sum(c.timing.overhead_cycles for c in r.layers) + 1000


# ---- accelsim validate --------------------------------------------------------------------------------------

def test_validate_matches_run_and_reports_statistics(tmp_path, capsys):
    out = tmp_path / "v.json"
    assert main(["validate", "edgetpu_devboard", "--json", str(out)]) == 0
    assert "geomean predicted/measured" in capsys.readouterr().out
    rows = json.loads(out.read_text())["rows"]
    assert {"model", "measured_ms", "predicted_ms", "ratio", "bound", "calibration"} <= set(rows[0])
    row = next(r for r in rows if r["model"] == "mobilenet_v1")
    run = tmp_path / "run.json"
    assert main(["run", "mobilenet_v1", "--hw", "edgetpu_devboard", "--precision", "w8a8", "--json", str(run),
                 "--quiet"]) == 0
    assert json.loads(run.read_text())["totals"]["latency_ms"] == row["predicted_ms"]


@pytest.mark.parametrize("device", ["edgetpu_devboard", "edgetpu_usb"])
def test_edgetpu_predictions_within_bounds(device):
    result = validate(device)
    s = result["statistics"]
    assert s["models"] >= 12 and 0.8 <= s["geomean_ratio"] <= 1.25
    # one known miss: inception_resnet_v2 on USB (2.09x) — its published latency is below what its 49 MB of
    # streamed weights need at the link rate VGG16/19 show on the same device (accelsim/hw/NOTES.md)
    misses = {r["model"] for r in result["rows"] if not (r["calibration"] or r["host_part"]) and not 0.5 <= r["ratio"] <= 2}
    assert misses <= {"inception_resnet_v2"}


def test_validate_unknown_device(capsys):
    assert main(["validate", "tpu_v9"]) == 2
    assert "unknown device 'tpu_v9'" in capsys.readouterr().err
