"""accelsim against real silicon: the Coral Edge TPU's published latencies, Dev Board and USB Accelerator.

Prints, for each device, the table of `accelsim validate DEVICE` (model, measured, predicted, ratio, the
bound that dominates) and its statistics, then the same run at batch 1 with each modelling option of
issue 21 turned off in turn (what each one contributes), and the wall time of the whole validation.

``--fit`` repeats the fit of the two constants the public sources do not give — the on-chip SRAM bandwidth
(``memory.levels[0].bytes_per_cycle``) and the per-layer overhead (``timing.layer_overhead_cycles``) — on
the calibration models named in accelsim/reporting/silicon.yaml, over both boards at once (they are the same
chip): a grid search minimizing the squared log error of predicted/measured, then prints the best pair
beside the values in the hw configs.

    python benchmarks/bench_devices.py [--fit] [--json out.json]
"""
from __future__ import annotations

import argparse
import itertools
import json
import math
import time

from accelsim.config.loader import load_hw, load_model
from accelsim.reporting.silicon import format_validation, measurements, validate
from accelsim.sim.engine import simulate

DEVICES = ("edgetpu_devboard", "edgetpu_usb")
ABLATIONS = {   # option → the --set that turns it off
    "weights held on chip": ["memory.sram.resident_kib=0.001"],
    "activations placed first (live)": ["memory.activation_placement=fits"],
    "depthwise channels across the columns": ["array.grouped=serial"],
    "vector epilogue overlap": ["timing.vector_overlap=none"],
    "per-layer overhead": ["timing.layer_overhead_cycles=0"],
    "on-chip bandwidth": ["memory.sram.bytes_per_cycle=1e9"],
}
BPC_GRID = (64, 96, 128, 160, 192, 256, 320, 384)
LAYER_US_GRID = (0, 5, 10, 15, 20, 25, 30, 35, 40, 50)


def fit() -> dict:
    """Grid fit of (SRAM bytes/cycle, layer overhead) on the calibration models, both devices."""
    spec = measurements()
    rows = [e for e in spec["models"] if e["model"] in spec["calibration"]]
    models = {e["model"]: load_model(e["model"]) for e in rows}
    best = None
    for bpc, us in itertools.product(BPC_GRID, LAYER_US_GRID):
        err = 0.0
        for dev in DEVICES:
            hw = load_hw(dev, [f"memory.sram.bytes_per_cycle={bpc}", f"timing.layer_overhead_cycles={us * 500}"])
            for e in rows:
                pred = simulate(models[e["model"]], hw, spec["precision"]).totals["latency_ms"]
                err += math.log(pred / e[dev]) ** 2
        if best is None or err < best[0]:
            best = (err, bpc, us)
    hw = load_hw(DEVICES[0])
    return {"calibration": [e["model"] for e in rows], "squared_log_error": best[0],
            "bytes_per_cycle": best[1], "layer_overhead_us": best[2],
            "configured": {"bytes_per_cycle": hw.memory.by_name["sram"].bytes_per_cycle,
                           "layer_overhead_us": hw.timing.layer_overhead_cycles / hw.clock_mhz}}


def ablation(device: str) -> dict:
    """Geomean and range of predicted/measured with each option turned off (statistics as validate's)."""
    out = {}
    for name, sets in ABLATIONS.items():
        s = validate(device, sets)["statistics"]
        out[name] = {k: s[k] for k in ("geomean_ratio", "min_ratio", "max_ratio", "within_0.5_2", "models")}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--fit", action="store_true", help="repeat the fit of the two constants")
    ap.add_argument("--json", help="write every table as JSON")
    args = ap.parse_args()
    result: dict = {}
    t0 = time.perf_counter()
    for dev in DEVICES:
        v = validate(dev)
        result[dev] = v
        print(format_validation(v), "\n")
    print(f"validation of {len(DEVICES)} devices: {time.perf_counter() - t0:.2f} s wall\n")
    for dev in DEVICES:
        abl = ablation(dev)
        result[f"{dev}_ablation"] = abl
        print(f"{dev}: each option off alone (geomean predicted/measured, range, within 0.5-2x)")
        for name, s in abl.items():
            print(f"  without {name:40} {s['geomean_ratio']:6.3f}  {s['min_ratio']:5.2f}-{s['max_ratio']:5.2f}  "
                  f"{s['within_0.5_2']}/{s['models']}")
        print()
    if args.fit:
        f = fit()
        result["fit"] = f
        print(f"fit on {', '.join(f['calibration'])} (both boards): SRAM {f['bytes_per_cycle']} B/cycle, layer "
              f"overhead {f['layer_overhead_us']} us (squared log error {f['squared_log_error']:.4f}); configured: "
              f"{f['configured']['bytes_per_cycle']:g} B/cycle, {f['configured']['layer_overhead_us']:g} us")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(result, fh, indent=1, default=str)


if __name__ == "__main__":
    main()
