"""Cycle-level systolic array emulation throughput (DESIGN §8): PE-cycles per second with values, against
SCALE-Sim 3.0.0 (which moves addresses, not values).

    python benchmarks/bench_emulator.py [--quick]

1. **Kernel**: single GEMMs on a 32×32 array, OS/WS/IS, random INT8 codes (exact int32 path), a 16-bit
   saturating accumulator (every step checked, overflows counted) and INT4×INT4 packed 4 per PE (Bit Fusion).
   ``PE-cycles/s = cycles · R · C / wall time``; every run is checked against the closed form.
2. **ResNet-50 on 32×32 WS**: SCALE-Sim's own topology (``shared/reference/scalesim/.../Resnet50.csv``) through
   the emulator (:class:`accelsim.sim.emulate.EmulatedTiming`, all 54 GEMM layers, seeded random codes), in one
   run: the kernels alone (the 54 ``systolic_gemm`` calls), the cost model with emulation in a child process
   (wall time, peak RSS), and ``accelsim run --emulate`` end to end (whole processes, timed from outside); and
   per-layer emulated cycles against SCALE-Sim's recorded ``Total Cycles`` (``resnet50_32x32_ws.json``, which
   also holds SCALE-Sim's wall time and peak RSS for the same run on this machine class).
3. **MNIST CNN through the array** (if the data package is installed): int-mode evaluation with every GEMM on
   the edge config's array vs the integer kernels, outputs compared bit for bit.

Numba compilation is excluded (a warm-up call per kernel signature; the end-to-end runs load the JIT cache, as any
CLI run does). Machine: 2 cores (``NUMBA_NUM_THREADS``
as set); other load on the machine shows up in the wall times.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REF = Path(__file__).resolve().parents[2] / "shared" / "reference" / "scalesim"
TOPOLOGY = REF / "topologies" / "mlperf" / "Resnet50.csv"
SHAPES = [(3136, 64, 576), (49, 512, 4608), (12100, 64, 147)]       # (M, N, K): ResNet-50 conv GEMMs


def kernel_section(quick: bool) -> None:
    from accelsim.hw.dataflow import DATAFLOWS, fold_timing
    from accelsim.sim.emulate import systolic_gemm
    rng = np.random.default_rng(0)
    print("1. kernel: one GEMM on a 32x32 array (wall time, values computed; closed form checked)")
    print(f"   {'M':>6} {'N':>5} {'K':>5}  flow  {'mode':<22} {'cycles':>9} {'wall s':>7} {'PE-cycles/s':>12} "
          f"{'MAC/s':>9}")
    modes = [("int8, exact int32", 8, 1, 32, "wrap"), ("int8, acc16 saturate", 8, 1, 16, "saturate"),
             ("int4x4, 4 per PE", 4, 4, 32, "wrap")]
    for m, n, k in SHAPES[:2] if quick else SHAPES:
        for name, flow in DATAFLOWS.items():
            for label, bits, f, acc, ov in modes:
                lim = (1 << (bits - 1)) - 1
                a = rng.integers(-lim, lim + 1, (m, k), dtype=np.int16)
                b = rng.integers(-lim, lim + 1, (k, n), dtype=np.int16)
                warm = np.ascontiguousarray(a[:40, :40]), np.ascontiguousarray(b[:40, :40])   # same layouts
                systolic_gemm(*warm, 32, 32, flow, macs_per_cycle=f, acc_bits=acc, overflow=ov)
                t0 = time.perf_counter()
                run = systolic_gemm(a, b, 32, 32, flow, macs_per_cycle=f, acc_bits=acc, overflow=ov)
                dt = time.perf_counter() - t0
                ok = run.scalesim_cycles == int(fold_timing([m], [n], [-(-k // f)], 32, 32, flow).scalesim_cycles[0])
                print(f"   {m:>6} {n:>5} {k:>5}  {name:<4}  {label:<22} {run.cycles:>9,} {dt:>7.3f} "
                      f"{run.pe_cycles / dt:>12.3g} {m * n * k / dt:>9.3g}{'' if ok else '  CYCLES DIFFER'}")


def resnet_child() -> None:
    """Runs in its own process: ResNet-50 (SCALE-Sim topology) on 32x32 WS through the emulator; prints JSON."""
    from accelsim.config.loader import load_hw, load_model
    from accelsim.sim.emulate import EmulatedTiming, systolic_gemm
    from accelsim.hw.dataflow import DATAFLOWS
    systolic_gemm(np.ones((40, 40), np.int16), np.ones((40, 40), np.int16), 32, 32, DATAFLOWS["ws"])  # compile
    model = load_model(str(TOPOLOGY))
    hw = load_hw("scalesim_32x32")
    from accelsim.sim.engine import simulate
    emu = EmulatedTiming(model)
    t0, c0 = time.perf_counter(), resource.getrusage(resource.RUSAGE_SELF)
    report = emu.annotate(simulate(model, hw, "w8a8", timing=emu))
    wall = time.perf_counter() - t0
    c1 = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (c1.ru_utime - c0.ru_utime) + (c1.ru_stime - c0.ru_stime)
    res = emu.results
    layers = [{"name": c.name, "emulated": c.emulated_cycles, "match": c.emulation_match}
              for c in report.layers if c.emulated_cycles is not None]
    print(json.dumps({"wall_s": wall, "cpu_s": cpu, "emulator_s": sum(e.seconds for e in res.values()),
                      "pe_cycles": sum(e.pe_cycles for e in res.values()), "macs": sum(e.macs for e in res.values()),
                      "layers": layers, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))


def cli_runs(n: int = 3) -> list[float]:
    """Wall seconds of ``accelsim run <ResNet-50 CSV> --hw scalesim_32x32 --emulate``, each a whole process
    (interpreter start, imports, JIT cache loading, cost model and emulation)."""
    argv = [sys.executable, "-m", "accelsim.cli", "run", str(TOPOLOGY), "--hw", "scalesim_32x32", "--emulate",
            "--quiet"]
    subprocess.run(argv, capture_output=True, check=True)          # warm-up: the JIT cache is on disk
    walls = []
    for _ in range(n):
        t0 = time.perf_counter()
        subprocess.run(argv, capture_output=True, check=True)
        walls.append(time.perf_counter() - t0)
    return walls


def resnet_section() -> None:
    ref = json.loads((REF / "resnet50_32x32_ws.json").read_text())
    out = subprocess.run([sys.executable, __file__, "--child-resnet"], capture_output=True, text=True, check=True)
    r = json.loads(out.stdout.strip().splitlines()[-1])
    walls = cli_runs()
    ref_cycles = [lay["total_cycles"] for lay in ref["layers"]]
    ours = [lay["emulated"] for lay in r["layers"]]
    equal = sum(a == b for a, b in zip(ours, ref_cycles))
    ss_pe = sum(ref_cycles) * 32 * 32
    ss_rate = ss_pe / ref["wall_s_scalesim"]
    rate = r["pe_cycles"] / r["wall_s"]
    e2e = r["pe_cycles"] / float(np.median(walls))
    print("\n2. ResNet-50 (SCALE-Sim topology, 54 GEMM layers) on 32x32 WS, accelsim run --emulate")
    print(f"   emulated PE-cycles {r['pe_cycles']:,} (SCALE-Sim: {ss_pe:,}), MACs with values {r['macs']:,}")
    print(f"   per-layer emulated cycles == SCALE-Sim 3.0.0 recorded Total Cycles: {equal}/{len(ref_cycles)} layers; "
          f"== closed form: {sum(lay['match'] for lay in r['layers'])}/{len(r['layers'])}")
    print(f"   kernels only: the 54 systolic_gemm calls (operands packed, array run, outputs unpacked) "
          f"{r['emulator_s']:.3f} s -> {r['pe_cycles'] / r['emulator_s']:.3g} PE-cycles/s (target 1e10)")
    print(f"   in process (simulate with EmulatedTiming, random operands, compile excluded): wall {r['wall_s']:.3f} s "
          f"-> {rate:.3g} PE-cycles/s; CPU {r['cpu_s']:.2f} s over {os.cpu_count()} cores")
    print(f"   end to end (the whole process, as the CLI runs it; median of {len(walls)}: "
          f"{', '.join(f'{w:.2f}' for w in walls)} s) -> {e2e:.3g} PE-cycles/s (target 5e9)")
    print(f"   vs SCALE-Sim {ref['wall_s_scalesim']:.0f} s ({ss_rate:.3g} PE-cycles/s): "
          f"{ref['wall_s_scalesim'] / float(np.median(walls)):.0f}x faster end to end")
    print(f"   peak RSS {r['peak_rss_mb']:.0f} MB (no traces; budget 500 MB) vs SCALE-Sim "
          f"{ref['peak_rss_mb_scalesim']:.0f} MB")


def mnist_section() -> None:
    try:
        from accelsim.config.loader import load_hw
        from accelsim.eval.pipeline import scheme_for
        from accelsim.eval.tasks import make_task
        from accelsim.sim.array_ops import evaluate_on_array
        task = make_task("mnist", 1000)
        task.eval_data()
    except Exception as exc:  # noqa: BLE001 - the data package is optional here
        print(f"\n3. MNIST CNN through the array: skipped ({exc})")
        return
    print("\n3. MNIST CNN (1000 test images) in int mode with every GEMM on the edge array (64x64 WS)")
    for prec in ("w8a8", "w4a4"):
        r = evaluate_on_array(task, scheme_for(prec), load_hw("edge"))
        print(f"   {prec}: outputs equal to int mode: {r['outputs_equal_int_mode']}; accuracy "
              f"{r['metrics']['accuracy']:.4f}; {r['gemms']} GEMMs, {r['pe_cycles']:,} PE-cycles in "
              f"{r['seconds']:.2f} s ({r['pe_cycles'] / r['seconds']:.3g} PE-cycles/s)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="two kernel shapes only, no ResNet-50 / MNIST")
    ap.add_argument("--child-resnet", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child_resnet:
        resnet_child()
        return
    print(f"NUMBA_NUM_THREADS={os.environ.get('NUMBA_NUM_THREADS', 'default')}, cores {os.cpu_count()}")
    kernel_section(args.quick)
    if not args.quick:
        resnet_section()
        mnist_section()


if __name__ == "__main__":
    main()
