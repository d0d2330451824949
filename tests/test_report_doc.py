"""accelsim report: the documented examples recomputed (numbers follow the hw configs; files and plots)."""
from __future__ import annotations

import pytest

from accelsim.cli import main
from accelsim.reporting import examples as X
from accelsim.reporting import sensitivity as S


def test_reference_examples_are_complete():
    ref = X.reference()
    assert set(ref) == {"resnet50_phone", "bert_server"}
    for spec in ref.values():
        assert {"model", "hw", "fixed_rate_per_s", "documented", "measured", "accuracy_tasks"} <= set(spec)


def test_changing_a_hw_parameter_changes_the_numbers():
    spec = X.reference()["resnet50_phone"]
    base, slow = X.compare(spec), X.compare(spec, ["memory.dram_gbps=2"])
    assert slow["fp32"]["latency_ms"] > base["fp32"]["latency_ms"]
    assert slow["ratios"]["speedup"] != base["ratios"]["speedup"]
    # fixed-rate power: dynamic energy × rate + leakage (module docstring of reporting.examples)
    t = base["runs"]["w8a8"].totals
    dynamic = (t["energy_mj"] - t["energy_breakdown_mj"]["static"]) * 1e-3
    assert base["int8"]["power_at_rate_w"] == pytest.approx(dynamic * 30 + 0.1)
    assert any("supports the documented 50%" in m for m in base["power_meanings"])


def _rows(key, sets=()):
    return {r.assumption.path: r for r in X.sensitivity(X.reference()[key], sets)}


def test_sensitivity_moves_the_speedup_with_the_fp32_rate():
    speedups = [p[1] for p in _rows("resnet50_phone")["pe.float_macs_per_cycle.fp32"].points]
    assert speedups == sorted(speedups, reverse=True)      # a slower FP32 PE makes INT8 look faster


@pytest.mark.parametrize("key", ["resnet50_phone", "bert_server"])
def test_sensitivity_ranges_bracket_each_configs_own_values(key):
    """¼× to 4× of the config's own DRAM bandwidth, static power, FP32 rate and array; the configured point is
    the example's own result (the same speed-up and power reduction as the comparison table above it)."""
    spec = X.reference()[key]
    hw, ratios = X.compare(spec)["hw"], X.compare(spec)["ratios"]
    rows = _rows(key)
    configured = {"memory.dram_gbps": hw.memory.dram_gbps, "energy.leakage_mw": hw.energy.leakage_mw,
                  "pe.float_macs_per_cycle.fp32": hw.pe.float_macs_per_cycle["fp32"], "array.rows": hw.array.rows}
    assert set(rows) == set(configured)
    for path, value in configured.items():
        row = rows[path]
        xs = [p[0] for p in row.points]
        assert xs[row.configured_index] == value and xs[0] == pytest.approx(value / 4) and xs[-1] == pytest.approx(4 * value)
        _, speedup, power = row.points[row.configured_index]
        assert speedup == pytest.approx(ratios["speedup"], rel=1e-12)
        assert power == pytest.approx(ratios["power_reduction_flat_out"], rel=1e-12)
    table = "\n".join(S.markdown(list(rows.values())))
    assert f"**{hw.memory.dram_gbps:g}**" in table and f"**{hw.array.rows}×{hw.array.cols}**" in table


def test_sensitivity_follows_overrides_and_skips_zero_assumptions():
    rows = _rows("bert_server", ["memory.dram_gbps=100", "energy.leakage_mw=0"])
    assert [p[0] for p in rows["memory.dram_gbps"].points] == [25, 50, 100, 200, 400]
    assert "energy.leakage_mw" not in rows               # no static power: nothing to scale


def test_sensitivity_of_a_level_list_config_sweeps_its_dram_level():
    from accelsim.config.loader import load_hw, read_yaml, resolve
    hw = load_hw("zigzag_tpu_like")
    (dram,) = [a for a in S.assumptions(read_yaml(resolve("zigzag_tpu_like", "hw")), hw) if "DRAM" in a.label]
    assert dram.path == f"memory.{hw.memory.dram.name}.bytes_per_cycle" and dram.configured == hw.memory.dram.bytes_per_cycle


@pytest.mark.slow
def test_cli_report_writes_markdown_html_and_plots(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    out = tmp_path / "r"
    assert main(["report", "--out", str(out), "--no-accuracy", "--no-host", "--quiet"]) == 0
    md = (out / "report.md").read_text()
    page = (out / "report.html").read_text()
    assert "## ResNet-50 on a phone" in md and "## BERT-large" in md
    assert page.count("data:image/png;base64,") == 11 and "<table>" in page
    assert "## LLM on a phone and a server" in md and "| edge | w4a16 |" in md
    assert "## Measured on silicon: the Coral Edge TPU" in md and "| vgg16 |" in md
    assert "| 128 |" in md.split("**Batch**")[1] and "TensorRT on T4" in md
    for stem in ("resnet50_phone_layers", "resnet50_phone_roofline", "bert_server_sensitivity", "bert_server_pareto",
                 "bert_server_batch", "silicon", "llm_decode"):
        assert (out / f"{stem}.png").stat().st_size > 10_000 and (out / f"{stem}.svg").is_file()
    other = tmp_path / "slow"
    assert main(["report", "--out", str(other), "--no-accuracy", "--no-host", "--quiet", "--set", "memory.dram_gbps=2"]) == 0
    assert (other / "report.md").read_text().split("## BERT")[0] != md.split("## BERT")[0]


@pytest.mark.slow
def test_bits_tradeoff_on_the_real_mnist_cnn():
    recs = {r["label"]: r for r in X.bits_tradeoff("edge")}
    assert set(recs) == {"w8a8", "w4a8", "w4a4", "w4a8 (first/last 8-bit)", "w4a4 (first/last 8-bit)"}
    assert recs["w4a8"]["avg_bits"] < recs["w4a8 (first/last 8-bit)"]["avg_bits"] < recs["w8a8"]["avg_bits"]
    assert recs["w4a4"]["energy_mj"] < recs["w8a8"]["energy_mj"]
    assert all(0.9 < r["accuracy"] <= 1.0 for r in recs.values())


@pytest.mark.slow
def test_host_measurement_runs_both_exports():
    pytest.importorskip("onnxruntime")
    from accelsim.reporting import host
    r = host.measure("mnist_cnn", runs=5)
    assert r["host_ms"]["fp32"] > 0 and r["host_ms"]["w8a8"] > 0
    assert r["accelsim_speedup"] > 1          # the array model: INT8 at 4x the FP32 MAC rate
