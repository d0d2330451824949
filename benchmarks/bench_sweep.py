"""Sweep throughput: hw configs × layers costed per second on this machine, cost model only.

10,000 edge-class configs (array rows × cols × input SRAM size) × ResNet-50's 175 layers, end to end
through ``accelsim.sweep`` (grid expansion, validation of every point, costing, Pareto front), then the
cost-model part alone (one stacked config, one ``simulate``), against one-config-at-a-time ``simulate``
calls (the loop a user would write), and a check that sampled records equal single calls exactly.

    python benchmarks/bench_sweep.py [--points 10000]
"""
from __future__ import annotations

import argparse
import time

import numpy as np

from accelsim import sweep as S
from accelsim.config.loader import load_hw, load_model, read_yaml, resolve
from accelsim.sim.engine import simulate


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--points", type=int, default=10_000)
    args = ap.parse_args()
    model = load_model("resnet50")
    side = int(round((args.points / 16) ** 0.5))
    grid = {"array.rows": [8 * i for i in range(1, side + 1)], "array.cols": [8 * i for i in range(1, side + 1)],
            "memory.ifmap_sram_kib": [64 * i for i in range(1, 17)]}
    n = side * side * 16
    layers = len(model.layers)
    t0 = time.perf_counter()
    result = S.sweep(model, "edge", grid)
    end_to_end = time.perf_counter() - t0
    paths, points = S.expand(grid)
    hw = S._config(read_yaml(resolve("edge", "hw")), {p: np.array([pt[j] for pt in points]) for j, p in enumerate(paths)})
    t0 = time.perf_counter()
    simulate(model, hw, "w8a8")
    cost_only = time.perf_counter() - t0
    sample = np.random.default_rng(0).choice(n, size=20, replace=False)
    t0 = time.perf_counter()
    same = 0
    for i in sample:
        rec = result.records[i]
        totals = simulate(model, load_hw("edge", [f"{p}={rec[p]}" for p in paths]), "w8a8").totals
        same += all(rec[k] == totals[k] for k in S.RESULTS)
    one_by_one = (time.perf_counter() - t0) / len(sample)
    print(f"ResNet-50 ({layers} layers) × {n:,} edge configs (rows × cols × ifmap SRAM), 2 cores")
    print(f"  sweep() end to end:   {end_to_end:6.2f} s  = {n * layers / end_to_end:,.0f} layer-evaluations/s "
          f"({len(result.front)} configs on the latency/energy/area front)")
    print(f"  cost model only:      {cost_only:6.2f} s  = {n * layers / cost_only:,.0f} layer-evaluations/s")
    print(f"  one simulate() per config (incl. load_hw): {one_by_one * 1e3:.2f} ms/config = "
          f"{layers / one_by_one:,.0f} layer-evaluations/s -> sweep() is {one_by_one * n / end_to_end:.0f}x faster")
    print(f"  sampled records equal to single simulate() calls: {same}/{len(sample)}")


if __name__ == "__main__":
    main()
