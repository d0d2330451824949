"""Quantized evaluation at integer-GEMM speed: every ratio the one-execution-path issue asks for, from one run.

1. **INT8 GEMM vs ONNX Runtime** (u8×s8, s8×s8, u8×u8 on 512³, 3136×576×64 and 128×1024×4096): bit-exact, and
   accelsim's time over ORT's (``QLinearMatMul`` where ORT has the type pair, ``MatMulInteger`` + requantization
   elsewhere), best-of-N and median — from :func:`bench_gemm.gemm_rows`. Goal: ≤ 1.5×.
2. **Calibration vs FP32 forward**: one calibration pass (FP32 forward + every observer) over the calibration
   data against a plain FP32 forward over the same data, per model and method (``ratio_*``; goal ≤ 1.5×), and
   with the threshold searches that turn the histograms into ranges once at the end (``with_search_*``: a
   fixed cost per observer, independent of the amount of calibration data).
3. **End to end**: wall time of ``accelsim eval MODEL --eval TASK --precision w8a8 --calib kl`` (int mode) over
   ``--precision fp32`` on the same task, as a user runs them (fresh process each, Numba cache warm), with
   ``--calib-size`` equal to the evaluation size so both runs see as many samples; and the time with the full
   calibration set. Goal: ≤ 5×.

    python benchmarks/bench_eval.py            # everything (≈10 min on 2 cores)
    python benchmarks/bench_eval.py --skip-gemm --models lee
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

E2E = [  # (model, task, eval size, calib size matching it, full calibration set size)
    ("minilm_l6", "lee", 50, 50, 300),
    ("efficientnet_lite0", "photos", 48, 48, 24),
    ("mnist_cnn", "mnist", 1000, 1000, 256),
]
CALIB_METHODS = ("minmax", "kl", "percentile", "mse")


def _best_median(times: list[float]) -> tuple[float, float]:
    return min(times), statistics.median(times)


def calibration_rows(tasks=("lee", "photos", "mnist"), methods=CALIB_METHODS, rounds: int = 3) -> list[dict]:
    """Calibration pass vs FP32 forward over the same calibration batches, interleaved in rounds."""
    from accelsim.eval.pipeline import scheme_for
    from accelsim.eval.tasks import make_task
    from accelsim.nn.qexec import Calibrator
    rows = []
    for name in tasks:
        task = make_task(name)
        batches = task.calibration()
        for b in batches[:1]:
            task.run(None, b)                      # warm-up (weights, JIT)
        for method in methods:
            fp32, calib, total = [], [], []
            for _ in range(rounds):
                t0 = time.perf_counter()
                for b in batches:
                    task.run(None, b)
                fp32.append(time.perf_counter() - t0)
                cal = Calibrator(scheme_for("w8a8", calib=method))
                t0 = time.perf_counter()
                for b in batches:
                    task.run(cal, b)
                calib.append(time.perf_counter() - t0)
                cal.plan()
                total.append(time.perf_counter() - t0)
            (fb, fm), (cb, cm), (tb, tm) = _best_median(fp32), _best_median(calib), _best_median(total)
            rows.append(dict(task=name, method=method, samples=sum(len(b) for b in batches), fp32_s=fb,
                             forward_observe_s=cb, threshold_search_s=tb - cb, ratio_best=cb / fb, ratio_median=cm / fm,
                             with_search_best=tb / fb, with_search_median=tm / fm))
    return rows


def _cli(args: list[str]) -> float:
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "accelsim", *args, "--quiet"], check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t0


def e2e_rows(models=None) -> list[dict]:
    """``accelsim eval`` wall times, fp32 vs w8a8 KL int (matching calibration size) vs the full set."""
    rows = []
    for model, task, n_eval, n_calib, n_full in E2E:
        if models and task not in models and model not in models:
            continue
        base = ["eval", model, "--eval", task, "--eval-size", str(n_eval)]
        _cli(base + ["--precision", "fp32"])      # warm the Numba cache and the page cache
        fp32 = _cli(base + ["--precision", "fp32"])
        quant = _cli(base + ["--precision", "w8a8", "--calib", "kl", "--calib-size", str(n_calib)])
        full = _cli(base + ["--precision", "w8a8", "--calib", "kl", "--calib-size", str(n_full)])
        rows.append(dict(model=model, task=task, eval_size=n_eval, calib_size=n_calib, fp32_s=fp32, w8a8_s=quant,
                         ratio=quant / fp32, full_calib_size=n_full, w8a8_full_calib_s=full))
    return rows


def _table(rows: list[dict], cols: list[str]) -> str:
    fmt = lambda v: f"{v:.3g}" if isinstance(v, float) else str(v)  # noqa: E731
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(fmt(r[c]) for c in cols) + " |" for r in rows]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--skip-gemm", action="store_true")
    ap.add_argument("--skip-calib", action="store_true")
    ap.add_argument("--skip-e2e", action="store_true")
    ap.add_argument("--models", nargs="*", help="tasks/models for the calibration and end-to-end parts")
    args = ap.parse_args()
    if not args.skip_gemm:
        from bench_gemm import gemm_rows
        rows = gemm_rows()
        print("## INT8 GEMM: accelsim vs ONNX Runtime (same run)\n")
        print(_table(rows, list(rows[0])) + "\n", flush=True)
    if not args.skip_calib:
        rows = calibration_rows(tuple(args.models) if args.models else ("lee", "photos", "mnist"))
        print("## Calibration pass vs FP32 forward over the same data\n")
        print(_table(rows, list(rows[0])) + "\n", flush=True)
    if not args.skip_e2e:
        rows = e2e_rows(args.models)
        print("## accelsim eval wall time: w8a8 KL int vs fp32 (fresh process each)\n")
        print(_table(rows, list(rows[0])) + "\n", flush=True)


if __name__ == "__main__":
    main()
