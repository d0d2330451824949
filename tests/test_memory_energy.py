"""Memory traffic, roofline stalls, bit-flexible MACs and energy (issue: FP32 vs INT8 vs INT4 on one chip)."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from accelsim.cli import main
from accelsim.config.loader import load_hw, load_model
from accelsim.errors import ConfigError, MappingError
from accelsim.graph import Model
from accelsim.sim.engine import simulate

HERE = Path(__file__).parent
UPDATE = os.environ.get("ACCELSIM_UPDATE_GOLDEN") == "1"


def linear_model(m: int, k: int, n: int) -> Model:
    return Model.from_dict({"name": "lin", "inputs": [{"name": "x", "shape": [m, k]}],
                            "layers": [{"name": "fc", "op": "linear", "out_features": n, "bias": False}]})


def test_fitting_layer_moves_exactly_its_compulsory_bytes():
    hw = load_hw("edge")
    for prec, a, w in (("w8a8", 1, 1), ("w4a8", 1, 0.5), ("fp32", 4, 4), ("w4a4", 0.5, 0.5)):
        cost = simulate(linear_model(64, 256, 128), hw, prec).layers[0]
        assert cost.dram_ifmap_bytes == 64 * 256 * a
        assert cost.dram_filter_bytes == 256 * 128 * w
        assert cost.dram_ofmap_bytes == 64 * 128 * a
        assert cost.dram_psum_bytes == 0


def test_halving_weight_bits_halves_weight_bytes():
    hw = load_hw("edge", ["memory.filter_sram_kib=16"])   # weights do not fit: re-fetch paths included
    model = linear_model(512, 1024, 2048)
    w8, w4 = (simulate(model, hw, p).layers[0] for p in ("w8a8", "w4a8"))
    assert w8.dram_filter_bytes == 2 * w4.dram_filter_bytes
    assert w8.dram_ifmap_bytes >= w4.dram_ifmap_bytes


def test_refetch_when_neither_operand_fits():
    hw = load_hw("edge", ["memory.ifmap_sram_kib=64", "memory.filter_sram_kib=64"])  # 32 KiB usable each
    cost = simulate(linear_model(1024, 512, 1024), hw, "w8a8").layers[0]
    a, b = 1024 * 512, 512 * 1024
    chunks_a, chunks_b = -(-a // (32 * 1024)), -(-b // (32 * 1024))
    assert cost.dram_ifmap_bytes + cost.dram_filter_bytes == a + b + min(a * (chunks_b - 1), b * (chunks_a - 1))


def test_memory_bound_latency_scales_with_inverse_bandwidth():
    model = linear_model(1, 4096, 4096)          # a GEMV: 16 MB of weights, 4096 MACs per weight row
    slow, fast = (simulate(model, load_hw("edge", [f"memory.dram_gbps={g}"])).layers[0] for g in (4, 8))
    assert slow.bound == fast.bound == "memory"
    assert slow.cycles == pytest.approx(2 * fast.cycles, rel=1e-6)
    assert slow.stall_cycles > 0


def test_no_double_buffering_serializes_transfers():
    model = linear_model(1, 4096, 4096)
    on = simulate(model, load_hw("edge")).layers[0]
    off = simulate(model, load_hw("edge", ["memory.double_buffer=false"])).layers[0]
    assert off.cycles == off.compute_cycles + off.memory_cycles and on.cycles == max(on.compute_cycles, on.memory_cycles)


@pytest.mark.parametrize("flow", ["ws", "is"])
def test_int4_throughput_on_an_8bit_pe(flow):
    hw = load_hw("edge", [f"array.dataflow={flow}", "memory.dram_gbps=100000"])
    model = linear_model(4096, 64 * 4 * 8, 64 * 8)   # K a multiple of 4·rows: folds divide exactly
    c8, c48, c44 = (simulate(model, hw, p).layers[0] for p in ("w8a8", "w4a8", "w4a4"))
    assert c8.bound == "compute"
    assert c8.compute_cycles == 2 * c48.compute_cycles == 4 * c44.compute_cycles
    assert c8.macs_per_pe_cycle == 1 and c48.macs_per_pe_cycle == 2 and c44.macs_per_pe_cycle == 4


def test_float_modes_use_declared_rates():
    hw = load_hw("edge", ["array.dataflow=ws", "memory.dram_gbps=100000"])
    model = linear_model(4096, 64 * 4 * 8, 64 * 8)
    c8, c32 = (simulate(model, hw, p).layers[0] for p in ("w8a8", "fp32"))
    assert c32.compute_cycles == 4 * c8.compute_cycles   # edge.yaml: fp32 at 0.25 MACs per PE-cycle


@pytest.mark.parametrize("hw_name", ["edge", "server", "scalesim_32x32"])
@pytest.mark.parametrize("precision", ["fp32", "w8a8", "w4a4"])
def test_energy_totals_equal_sum_of_layers(hw_name, precision):
    report = simulate(load_model(HERE / "fixtures" / "small_net.yaml"), load_hw(hw_name), precision)
    per_layer = sum(c.energy_pj for c in report.layers)
    assert report.totals["energy_mj"] == pytest.approx(per_layer * 1e-9, rel=1e-12)
    for kind, mj in report.totals["energy_breakdown_mj"].items():
        assert mj == pytest.approx(sum(getattr(c, f"energy_{kind}_pj") for c in report.layers) * 1e-9, rel=1e-12)
    assert report.totals["cycles"] == sum(c.cycles for c in report.layers)
    assert report.totals["avg_power_w"] == pytest.approx(report.totals["energy_mj"] / report.totals["latency_ms"])


def test_fusion_and_on_chip_activations():
    report = simulate(load_model(HERE / "fixtures" / "small_net.yaml"), load_hw("edge"), "w8a8")
    costs = {c.name: c for c in report.layers}
    assert costs["c1.bn"].bound == costs["c1.relu"].bound == "fused"
    assert costs["c1"].dram_ofmap_bytes == 0          # 16 KiB activation stays on chip
    assert costs["c1"].dram_ifmap_bytes == 3 * 32 * 32  # the model input always comes from DRAM
    assert costs["fc"].dram_ofmap_bytes == 10         # the model output always goes to DRAM


@pytest.mark.parametrize("hw_name", ["edge", "server", "scalesim_32x32"])
def test_golden_costs(hw_name):
    """Cycles, DRAM bytes and energy per bundled hw config on a small model (refresh: ACCELSIM_UPDATE_GOLDEN=1)."""
    model = load_model(HERE / "fixtures" / "small_net.yaml")
    got = {}
    for prec in ("fp32", "w8a8", "w4a8", "w4a4"):
        r = simulate(model, load_hw(hw_name), prec)
        got[prec] = {"cycles": r.totals["cycles"], "stall_cycles": r.totals["stall_cycles"],
                     "dram_bytes": sum(c.dram_bytes for c in r.layers), "energy_pj": round(r.totals["energy_mj"] * 1e9, 3),
                     "layers": {c.name: [c.cycles, c.dram_bytes] for c in r.layers if c.cycles}}
    path = HERE / "golden" / f"costs_small_net_{hw_name}.json"
    if UPDATE or not path.exists():
        path.write_text(json.dumps(got, indent=1, sort_keys=True) + "\n")
        if not UPDATE:
            pytest.fail(f"golden file {path.name} was missing and has been written; commit it")
    want = json.loads(path.read_text())
    for prec in got:
        assert got[prec]["cycles"] == want[prec]["cycles"] and got[prec]["dram_bytes"] == want[prec]["dram_bytes"]
        assert got[prec]["energy_pj"] == pytest.approx(want[prec]["energy_pj"], rel=1e-9)
        assert got[prec]["layers"] == want[prec]["layers"]


def test_bad_precisions_and_bandwidth():
    model = linear_model(8, 8, 8)
    with pytest.raises(MappingError, match="precision fp16 is not supported by this PE"):
        simulate(model, load_hw("edge", ["pe.float_macs_per_cycle={}"]), "fp16")
    with pytest.raises(MappingError, match="16-bit operands exceed the PE's base width pe.base_bits = 8"):
        simulate(model, load_hw("edge"), "w16a8")
    with pytest.raises(MappingError, match="2-bit operands are not supported"):
        simulate(model, load_hw("edge"), "w2a2")
    with pytest.raises(ConfigError, match="hw.memory.dram_gbps: expected a positive number, got 0"):
        load_hw("edge", ["memory.dram_gbps=0"])


def test_compare_cli_prints_table_and_json(tmp_path, capsys):
    out = tmp_path / "cmp.json"
    assert main(["compare", "resnet50", "--hw", "edge", "--baseline", "fp32", "--target", "w8a8",
                 "--json", str(out)]) == 0
    text = capsys.readouterr().out
    assert "model size (MB)" in text and "energy / inference (mJ)" in text and "improvement" in text
    data = json.loads(out.read_text())
    assert data["ratios"]["model_size_mb"] == pytest.approx(data["baseline_totals"]["model_size_mb"]
                                                            / data["target_totals"]["model_size_mb"])
    assert 3.9 < data["ratios"]["model_size_mb"] < 4.0    # biases/norms stay 32-bit
    assert main(["compare", "resnet50", "--hw", "edge", "--target", "w2a2"]) == 2


def test_per_layer_precision_override_from_model_yaml():
    d = {"name": "mixed", "inputs": [{"name": "x", "shape": [64, 512]}],
         "layers": [{"name": "first", "op": "linear", "out_features": 512, "precision": "w8a8"},
                    {"name": "mid", "op": "linear", "out_features": 512},
                    {"name": "bad", "op": "linear", "out_features": 8, "precision": "w9"}]}
    with pytest.raises(MappingError, match="unknown precision 'w9'"):
        simulate(Model.from_dict(d), load_hw("edge"), "w4a4")
    d["layers"].pop()
    report = simulate(Model.from_dict(d), load_hw("edge"), "w4a4")
    assert [c.precision for c in report.layers] == ["w8a8", "w4a4"]
    assert report.layers[0].dram_filter_bytes == 2 * report.layers[1].dram_filter_bytes
