"""Quantization benchmarks: bit-exact integer GEMM/conv throughput vs numpy float32, calibration speed, and the
fidelity of KL calibration against ONNX Runtime's Entropy calibrator.

    python benchmarks/bench_quant.py [--reps 60] [--skip-ort]

Timings alternate (in rounds) between the integer kernel and numpy's float32 ``@`` of the same shape in one run
and report the best (and median) of ``--reps`` calls each; the machine may be shared, so the load average is
printed for context.
"""
from __future__ import annotations

import argparse
import contextlib
import io
import os
import sys
import time
from pathlib import Path

import numpy as np

from accelsim.quant import KLObserver, calibrate, qlinear_conv, qlinear_matmul

REPO = Path(__file__).resolve().parents[1]


def _best_interleaved(fns, reps, rounds=5):
    """Best and median time of each function. Rounds alternate between the functions, but each round runs one
    function ``reps // rounds`` times in a row: numba's and OpenBLAS's worker threads keep spinning for a while
    after a parallel call, so strictly alternating calls would make each pool slow the other down."""
    times = [[] for _ in fns]
    for f in fns:
        f()  # warm up (JIT, caches)
    for _ in range(rounds):
        for i, f in enumerate(fns):
            for _ in range(max(1, reps // rounds)):
                t = time.perf_counter()
                f()
                times[i].append(time.perf_counter() - t)
    return [min(t) for t in times], [float(np.median(t)) for t in times]


def bench_gemm(reps):
    rng = np.random.default_rng(0)
    print("== bit-exact INT8 GEMM (qlinear_matmul, ONNX Runtime requantization) vs numpy float32 @ ==")
    print(f"{'shape (M, K, N)':24s} {'types':10s} {'int8 ms':>9s} {'f32 ms':>9s} {'ratio':>7s}  (median ratio)")
    cases = [((512, 512, 512), "u8 x s8"), ((3136, 576, 64), "u8 x s8"), ((512, 512, 512), "u8 x u8"),
             ((512, 512, 512), "s8 x s8")]
    for (m, k, n), types in cases:
        ta = np.uint8 if types.startswith("u8") else np.int8
        tb = np.int8 if types.endswith("s8") else np.uint8
        a = rng.integers(np.iinfo(ta).min, np.iinfo(ta).max + 1, (m, k)).astype(ta)
        b = rng.integers(np.iinfo(tb).min, np.iinfo(tb).max + 1, (k, n)).astype(tb)
        af, bf = a.astype(np.float32), b.astype(np.float32)
        args = (a, 0.02, ta(3), b, np.full(n, 0.01, np.float32), tb(0), 0.5, ta(3))
        (tq, tf), (mq, mf) = _best_interleaved(
            [lambda args=args: qlinear_matmul(*args), lambda af=af, bf=bf: af @ bf], reps)
        label = f"{m}x{k}x{n}" + (" (ResNet-50 3x3 conv, im2col)" if m == 3136 else "")
        print(f"{label:24s} {types:10s} {tq * 1e3:9.3f} {tf * 1e3:9.3f} {tq / tf:7.2f}x  ({mq / mf:.2f}x)")


def _im2col_f32(x, r, s, pad):
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    win = np.lib.stride_tricks.sliding_window_view(xp, (r, s), axis=(2, 3))  # (B, C, Ho, Wo, R, S)
    return win.transpose(0, 2, 3, 1, 4, 5).reshape(x.shape[2] * x.shape[3], -1)


def bench_conv(reps):
    rng = np.random.default_rng(1)
    print("\n== QLinearConv end to end (im2col + GEMM), ResNet-50 conv2_x 3x3: 1x64x56x56, 64 filters, pad 1 ==")
    x = rng.integers(0, 256, (1, 64, 56, 56)).astype(np.uint8)
    w = rng.integers(-128, 128, (64, 64, 3, 3)).astype(np.int8)
    xf, wf = x.astype(np.float32), w.reshape(64, -1).T.astype(np.float32).copy()
    args = (x, 0.02, np.uint8(128), w, np.full(64, 0.01, np.float32), np.int8(0), 0.5, np.uint8(128), None,
            (1, 1), (1, 1, 1, 1))
    (tq, tf), _ = _best_interleaved([lambda: qlinear_conv(*args), lambda: _im2col_f32(xf, 3, 3, 1) @ wf], reps)
    print(f"qlinear_conv {tq * 1e3:.3f} ms vs float32 numpy im2col + @ {tf * 1e3:.3f} ms: {tq / tf:.2f}x")
    y16, ovf = qlinear_conv(*args, acc_bits=16, overflow="saturate", return_overflow=True)
    t = time.perf_counter()
    qlinear_conv(*args, acc_bits=16, overflow="saturate")
    print(f"16-bit saturating accumulator emulation (checked path): {(time.perf_counter() - t) * 1e3:.1f} ms, "
          f"{ovf.events} overflowing accumulations in {ovf.outputs} of {y16.size} outputs")


def bench_calibration():
    print("\n== calibration of 10 M activations (float32 N(0,1)) ==")
    x = np.random.default_rng(2).standard_normal(10_000_000).astype(np.float32)
    for method in ("minmax", "percentile", "kl", "entropy", "mse"):
        calibrate([x[:10_000]], method)  # JIT warm-up
        t = time.perf_counter()
        lo, hi = calibrate([x], method)
        print(f"calibrate(method={method!r:12s}) {time.perf_counter() - t:6.3f} s  range ({lo:+.4f}, {hi:+.4f})")
    t = time.perf_counter()
    obs = KLObserver()
    for chunk in np.array_split(x, 10):
        obs.observe(chunk)
    obs.range()
    print(f"KLObserver one pass over 10 batches of 1 M: {time.perf_counter() - t:.3f} s")


ORT = {"signed_hist": True, "int_q": True, "q_all_bins": True, "nonzero_of_p": True, "drop_tail": True, "ort_smoothing": True}
def _ort_entropy_hi(x):
    from onnxruntime.quantization.calibrate import HistogramCollector

    hc = HistogramCollector("entropy", False, 2048, 128, None, "same")
    with contextlib.redirect_stdout(io.StringIO()):
        hc.collect({"x": [x]})
        return float(hc.compute_collection_result()["x"][1])


KL_DATA = {
    "gauss": lambda r: r.standard_normal(200_000),
    "laplace": lambda r: r.laplace(size=200_000),
    "relu(gauss)": lambda r: np.maximum(r.standard_normal(200_000), 0),
    "uniform": lambda r: r.uniform(-1, 1, 200_000),
    "gauss+outliers": lambda r: np.concatenate([r.standard_normal(200_000), r.uniform(-40, 40, 20)]),
    "student-t(3)": lambda r: r.standard_t(3, 200_000),
}


def bench_kl_vs_ort():
    sys.path.insert(0, str(REPO / "tests"))
    import reference_quant as ref

    print("\n== KL threshold: ours (TensorRT, |x| 2048 bins) vs ONNX Runtime Entropy calibrator (2048/128) ==")
    print("thresholds in units of max|x|; gap in ORT bins (2*max|x|/2048); sd = spread of each over 5 fresh samples")
    print("(ORT bins); twin=ORT: the numpy twin with ORT's quirks switched on reproduces ORT exactly; last columns:")
    print("change of the twin's threshold (ORT bins) when ONE quirk is switched off")
    keys = list(ORT)
    print(f"{'data':15s} {'ORT':>6s} {'ours':>6s} {'gap':>7s} {'sd ORT':>6s} {'sd us':>6s} twin=ORT "
          + " ".join(f"{k[:9]:>9s}" for k in keys))
    for name, make in KL_DATA.items():
        x = make(np.random.default_rng(4)).astype(np.float32)
        amax = float(np.abs(x).max())
        w = 2 * amax / 2048
        ort_hi = _ort_entropy_hi(x)
        ours = calibrate([x], "kl", symmetric=True)[1]
        xmax = float(x.max())  # ORT clamps its threshold to the data's max
        twin = min(ref.kl_threshold_variant(x, **ORT), xmax)
        toggles = [(min(ref.kl_threshold_variant(x, **{**ORT, k: False}), xmax) - ort_hi) / w for k in keys]
        spread = []
        for seed in range(10, 15):
            xs = make(np.random.default_rng(seed)).astype(np.float32)
            ws = 2 * float(np.abs(xs).max()) / 2048
            spread.append((_ort_entropy_hi(xs) / ws, calibrate([xs], "kl", symmetric=True)[1] / ws))
        sd_ort, sd_us = np.std(np.array(spread), axis=0)
        print(f"{name:15s} {ort_hi / amax:6.3f} {ours / amax:6.3f} {(ours - ort_hi) / w:+7.1f} {sd_ort:6.1f} "
              f"{sd_us:6.1f} {twin == ort_hi!s:8s} " + " ".join(f"{d:+9.1f}" for d in toggles))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--reps", type=int, default=60)
    p.add_argument("--skip-ort", action="store_true")
    args = p.parse_args(argv)
    import numba

    print(f"numpy {np.__version__}, numba {numba.__version__}, threads {numba.get_num_threads()}, "
          f"OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE', '-')}, load average {os.getloadavg()[0]:.2f}")
    bench_gemm(args.reps)
    bench_conv(max(10, args.reps // 3))
    bench_calibration()
    if not args.skip_ort:
        bench_kl_vs_ort()


if __name__ == "__main__":
    main()
