"""accelsim vs ZigZag 3.9.1 on ResNet-18's 21 conv/fc layers, on ZigZag's TPU-like accelerator.

The reference (shared/reference/zigzag/resnet18_tpu_like.json) holds ZigZag's per-layer cycles, energy and
DRAM bytes; each layer reads its input from DRAM and writes its output back. This script builds the same
21 layers as independent accelsim layers (each its own model input and output, INT8) and costs them on
``hw_configs/zigzag_tpu_like.yaml``. It prints per-layer ratios (accelsim / ZigZag) and geomeans, with
and without conv1 (ZigZag's stock mapping of conv1 unrolls only its 3 input channels on the 32 rows;
accelsim lowers every conv by im2col, K = C·FY·FX = 147 on the rows).

    python benchmarks/bench_zigzag.py [--hw hw_configs/zigzag_tpu_like.yaml] [--json out.json]
"""
from __future__ import annotations

import argparse
import json
import math
import re
import time
from pathlib import Path

from accelsim.config.loader import load_hw
from accelsim.graph import Model
from accelsim.sim.engine import simulate

ROOT = Path(__file__).resolve().parents[1]
REF = ROOT.parent / "shared" / "reference" / "zigzag" / "resnet18_tpu_like.json"
HW = ROOT / "hw_configs" / "zigzag_tpu_like.yaml"
MAPPING_DIFFERS = {"/conv1/Conv"}   # ZigZag unrolls C=3 on D2 (spatial_mapping {D2: {C: 3}})


def reference() -> list[dict]:
    return json.loads(REF.read_text())["layers"]


def model_from_reference(layers: list[dict]) -> Model:
    """One accelsim layer per ZigZag layer, each reading its own model input (so it comes from DRAM)."""
    inputs, out = [], []
    for i, z in enumerate(layers):
        d = z["loop_dims"]
        if z["type"] == "Gemm":
            inputs.append({"name": f"x{i}", "shape": [d["C"]]})
            out.append({"name": z["name"], "op": "linear", "out_features": d["K"], "bias": False, "input": f"x{i}"})
            continue
        stride = int(re.match(r"IX = (\d+)\*OX", z["dimension_relations"][0]).group(1))
        pad = int(re.search(r"IX: \((\d+), \d+\)", z["padding"]).group(1))
        inputs.append({"name": f"x{i}", "shape": [d["C"], z["pr_sizes"]["IY"], z["pr_sizes"]["IX"]]})
        out.append({"name": z["name"], "op": "conv2d", "out_channels": d["K"], "kernel": [d["FY"], d["FX"]],
                    "stride": stride, "padding": pad, "bias": False, "input": f"x{i}"})
    return Model.from_dict({"name": "resnet18_zigzag_layers", "inputs": inputs, "layers": out})


def compare(hw_path: Path = HW) -> list[dict]:
    """Per layer: accelsim and ZigZag cycles, energy (pJ) and DRAM bytes, and their ratios."""
    ref = reference()
    report = simulate(model_from_reference(ref), load_hw(hw_path), "w8a8")
    rows = []
    for z, c in zip(ref, report.layers):
        assert c.name == z["name"] and c.macs == z["macs"], (c.name, c.macs, z["macs"])
        row = {"name": z["name"], "macs": c.macs, "cycles": c.cycles, "zz_cycles": z["latency_total2"],
               "energy_pj": c.energy_pj, "zz_energy_pj": z["energy_total_pj"], "dram_bytes": c.dram_bytes,
               "zz_dram_bytes": z["dram_bytes"], "mapping_differs": z["name"] in MAPPING_DIFFERS,
               "energy_by_level_pj": dict(c.energy.by_level), "zz_energy_by_memory_pj": z["energy_by_memory_pj"]}
        for key in ("cycles", "energy_pj", "dram_bytes"):
            row[f"{key}_ratio"] = row[key] / row[f"zz_{key}"]
        rows.append(row)
    return rows


def geomean(values) -> float:
    values = list(values)
    return math.exp(sum(math.log(v) for v in values) / len(values))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--hw", type=Path, default=HW)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    t0 = time.perf_counter()
    rows = compare(args.hw)
    seconds = time.perf_counter() - t0
    print(f"accelsim ({args.hw.name}) / ZigZag 3.9.1 tpu_like, ResNet-18, INT8, batch 1 — ratios per layer")
    print(f"{'layer':46} {'cycles':>8} {'energy':>8} {'DRAM B':>8}   accelsim cycles / ZigZag cycles")
    for r in rows:
        mark = "  (mapping differs)" if r["mapping_differs"] else ""
        print(f"{r['name']:46} {r['cycles_ratio']:8.3f} {r['energy_pj_ratio']:8.3f} {r['dram_bytes_ratio']:8.3f}"
              f"   {r['cycles']:>9,} / {r['zz_cycles']:>9,.0f}{mark}")
    same = [r for r in rows if not r["mapping_differs"]]
    for label, sel in (("geomean, all 21", rows), (f"geomean, {len(same)} (same mapping)", same)):
        print(f"{label:46} {geomean(r['cycles_ratio'] for r in sel):8.3f} "
              f"{geomean(r['energy_pj_ratio'] for r in sel):8.3f} {geomean(r['dram_bytes_ratio'] for r in sel):8.3f}")
    for key in ("cycles", "energy_pj", "dram_bytes"):
        lo, hi = min(r[f"{key}_ratio"] for r in same), max(r[f"{key}_ratio"] for r in same)
        print(f"  {key} ratio range over the same-mapping layers: {lo:.3f} – {hi:.3f}")
    total = {k: sum(r[k] for r in rows) / sum(r[f"zz_{k}"] for r in rows) for k in ("cycles", "energy_pj", "dram_bytes")}
    print(f"whole network (sum / sum): cycles {total['cycles']:.3f}, energy {total['energy_pj']:.3f}, "
          f"DRAM {total['dram_bytes']:.3f}; accelsim time {seconds * 1e3:.1f} ms incl. model build")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
