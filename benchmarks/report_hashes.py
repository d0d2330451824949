"""Fingerprints of the cost model's JSON, to check that a change leaves every report byte for byte the same.

Writes, for every bundled model and SCALE-Sim topology × bundled hw config × precision × batch (and a set of
hw variants on a few models), the SHA-256 of ``json.dumps(simulate(...).to_dict())`` (or the error a
configuration raises) to a JSON file; with ``--against OTHER.json``, lists the cases that differ. Run it on
the base commit and on the change (each from its own checkout, ``PYTHONPATH`` pointing there):

    python benchmarks/report_hashes.py base.json
    python benchmarks/report_hashes.py change.json --against base.json
"""
from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from pathlib import Path

from accelsim.config.loader import load_hw, load_model
from accelsim.errors import AccelsimError
from accelsim.sim.engine import simulate

ROOT = Path(__file__).resolve().parents[1]
PRECISIONS = ("fp32", "w8a8", "w4a8", "w4a16", "q4_0")
VARIANTS = [["array.dataflow=os"], ["array.dataflow=is"], ["memory.activation_placement=live"],
            ["memory.strided_gather=true"], ["timing.dram_overlap=fold"], ["timing.load_store_phases=true"],
            ["timing.stationary_double_buffer=true"], ["array.grouped=cols"], ["memory.double_buffer=false"],
            ["timing.run_overhead_cycles=1000"], ["timing.vector_overlap=none"], ["timing.layer_overhead_cycles=0"]]
VARIANT_MODELS = ["resnet50", "mobilenet_v2", "bert_base", "efficientnet_lite0", "smollm2_135m", "densenet121",
                  "ssd_mobilenet_v2", "models/scalesim/vit_s.csv", "models/scalesim/gpt2.csv",
                  "tests/fixtures/small_net.yaml"]
VARIANT_HW = ("edge", "server", "edgetpu_usb", "scalesim_32x32", "host_cpu")


def _hash(model, hw_name: str, sets: list[str], precision: str, plan, batch: int) -> str:
    try:
        report = simulate(model, load_hw(hw_name, sets), precision, plan, batch=batch)
        text = json.dumps(report.to_dict())
        if json.dumps(report.to_dict()) != text:
            return "error: a second to_dict() differs"
        return hashlib.sha256(text.encode()).hexdigest()
    except AccelsimError as exc:
        return f"error: {type(exc).__name__}: {exc}"


def hashes() -> dict[str, str]:
    out = {}
    models = sorted((ROOT / "models").glob("*.yaml")) + sorted((ROOT / "models" / "scalesim").glob("*.csv"))
    hws = sorted(p.stem for p in (ROOT / "hw_configs").glob("*.yaml"))
    for path in models:
        model = load_model(str(path))
        for hw_name in hws:
            for precision in PRECISIONS:
                for batch in (1, 3):
                    key = f"{path.name}|{hw_name}|{precision}|{batch}"
                    out[key] = _hash(model, hw_name, [], precision, None, batch)
    for name in VARIANT_MODELS:
        model = load_model(name if "/" not in name else str(ROOT / name))
        mixed = {layer.name: "fp16" for layer in model.layers[:7]}
        for hw_name in VARIANT_HW:
            for sets in VARIANTS:
                for precision, plan in (("w8a8", None), ("fp32", None), ("w8a8", mixed)):
                    for batch in (1, 2):
                        key = f"{Path(name).name}|{hw_name}|{','.join(sets)}|{precision}|{bool(plan)}|{batch}"
                        out[key] = _hash(model, hw_name, sets, precision, plan, batch)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", help="JSON file to write the fingerprints to")
    ap.add_argument("--against", help="fingerprints of the base to compare with")
    args = ap.parse_args()
    t0 = time.perf_counter()
    got = hashes()
    Path(args.out).write_text(json.dumps(got, indent=0, sort_keys=True))
    errors = sum(v.startswith("error") for v in got.values())
    print(f"{len(got)} cases ({errors} raise an error, the same way on both sides when they agree) in "
          f"{time.perf_counter() - t0:.0f} s")
    if args.against:
        base = json.loads(Path(args.against).read_text())
        differ = sorted(k for k in base.keys() | got.keys() if base.get(k) != got.get(k))
        print(f"{len(differ)} differ from {args.against}" + "".join(f"\n  {k}" for k in differ[:50]))
        sys.exit(1 if differ else 0)


if __name__ == "__main__":
    main()
