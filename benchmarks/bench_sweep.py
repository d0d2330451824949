"""Sweep throughput: hw configs × layers costed per second on this machine, cost model only.

ResNet-50 (models/resnet50.yaml, 175 layers) on ``edge``, objectives latency_ms and energy_mj, end to end through
``accelsim.sweep`` (grid expansion, validation of every point, grouping, costing, records, Pareto front) for the
grids of issue 19's table — every combination of numeric and categorical fields is one pass per group, none
falls back to one ``simulate`` per point — then the main grid's records against single ``simulate`` calls on a
sample, and the loop a user would write (one ``load_hw`` + ``simulate`` per config) for scale.

    python benchmarks/bench_sweep.py [--repeat 3] [--sample 20]
"""
from __future__ import annotations

import argparse
import time

import numpy as np

from accelsim import sweep as S
from accelsim.config.loader import load_hw, load_model
from accelsim.sim.engine import simulate

STEP8 = [8 * i for i in range(1, 17)]
CLOCKS = list(range(200, 801, 50))
GRIDS = {
    "rows × cols × dataflow × clock": {"array.rows": STEP8, "array.cols": STEP8, "array.dataflow": ["os", "ws", "is"],
                                       "clock_mhz": CLOCKS},
    "rows × cols × clock × precision": {"array.rows": STEP8, "array.cols": STEP8, "clock_mhz": CLOCKS[::3],
                                        "precision": ["w8a8", "w4a8", "w4a4", "fp16"]},
    "rows × cols": {"array.rows": STEP8, "array.cols": STEP8},
    "cols × clock": {"array.cols": STEP8, "clock_mhz": CLOCKS[:8]},
    "rows × clock": {"array.rows": STEP8, "clock_mhz": CLOCKS[:8]},
    "rows × dataflow": {"array.rows": STEP8, "array.dataflow": ["os", "ws", "is"]},
    "rows × SRAMs × DRAM × energies": {"array.rows": STEP8, "memory.ifmap_sram_kib": [256, 1024],
                                       "memory.filter_sram_kib": [256, 1024], "memory.dram_gbps": [8.5, 17, 34],
                                       "energy.dram_pj_per_byte": [20, 40], "energy.leakage_mw": [50, 100]},
}
OBJECTIVES = ("latency_ms", "energy_mj")


def timed(fn, repeat: int):
    best, out = float("inf"), None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--sample", type=int, default=20)
    args = ap.parse_args()
    model = load_model("resnet50")
    layers = len(model.layers)
    print(f"ResNet-50 ({layers} layers) on edge, objectives {', '.join(OBJECTIVES)}; end to end through "
          f"accelsim.sweep, best of {args.repeat}")
    print(f"| grid | points | seconds | layer-evaluations/s | fallbacks |\n|---|---:|---:|---:|---|")
    results = {}
    for name, grid in GRIDS.items():
        seconds, result = timed(lambda: S.sweep(model, "edge", grid, objectives=OBJECTIVES), args.repeat)
        n = len(result.records)
        results[name] = (grid, result)
        print(f"| {name} | {n:,} | {seconds:.3f} | {n * layers / seconds:,.0f} | "
              f"{', '.join(result.fallbacks) or 'none'} |")
    grid, result = results["rows × cols × dataflow × clock"]
    paths = list(grid)
    sample = np.random.default_rng(0).choice(len(result.records), size=args.sample, replace=False)
    same = 0
    t0 = time.perf_counter()
    for i in sample:
        rec = result.records[i]
        totals = simulate(model, load_hw("edge", [f"{p}={rec[p]}" for p in paths]), "w8a8").totals
        same += all(rec[k] == totals[k] for k in S.RESULTS)
    one_by_one = (time.perf_counter() - t0) / len(sample)
    print(f"\nrows × cols × dataflow × clock: sampled records equal to single simulate() calls: {same}/{len(sample)}; "
          f"{len(result.front)} configs on the latency/energy front")
    print(f"one load_hw + simulate() per config: {one_by_one * 1e3:.2f} ms/config = {layers / one_by_one:,.0f} "
          f"layer-evaluations/s")


if __name__ == "__main__":
    main()
