"""Bit-exact integer GEMM throughput: accelsim ``qlinear_matmul`` vs ONNX Runtime vs numpy float32 ``@``.

    python benchmarks/bench_gemm.py [--repeats 60]

For each shape (M, K, N) and type pair (u8 x s8, s8 x s8, u8 x u8): ONNX Runtime's ``QLinearMatMul`` when it
implements the pair (else ``MatMulInteger`` followed by the same requantization in numpy - the ``ORT op`` column
says which), accelsim's ``qlinear_matmul`` (whatever backend is active: ``accelsim.quant.ort_gemm.describe()``;
the ``accelsim op`` column says whether the call ran as ONNX Runtime's fused QLinearMatMul, checked against
accelsim's semantics at first use, or as MatMulInteger + accelsim's requantization)
and numpy's float32 ``@`` of the same shape. Per-tensor scales and zero points, all in one process; ``b`` is a
graph input for ONNX Runtime (packed on every call, as accelsim must: it is a stateless function), and the
``ORT const-B`` column times the same node with ``b`` a constant initializer, which ONNX Runtime prepacks once.
The candidates run in rounds (a block of calls each, the order rotating every round, a short pause before each
block so that no thread pool is still spinning from the previous one) so that machine noise hits all of them
alike; best and median of ``repeats`` calls each. ``acc only``: accelsim's exact int32 accumulation
alone (the backend's MatMulInteger, no output stage, no validation). ``exact``: accelsim's output equals ONNX
Runtime's bit for bit.
"""
from __future__ import annotations

import argparse
import os
import time

import numpy as np

from accelsim.quant import ort_gemm, qlinear_matmul

SHAPES = [(512, 512, 512), (3136, 576, 64), (128, 1024, 4096)]  # (M, K, N)
PAIRS = [("u8", "s8"), ("s8", "s8"), ("u8", "u8")]
DTYPES = {"u8": np.dtype(np.uint8), "s8": np.dtype(np.int8)}


def _model(node_inputs, op, inputs, initializers, out_dtype):
    from onnx import TensorProto, helper, numpy_helper

    elem = {np.dtype(np.uint8): TensorProto.UINT8, np.dtype(np.int8): TensorProto.INT8,
            np.dtype(np.int32): TensorProto.INT32}
    ins = [helper.make_tensor_value_info(n, elem[a.dtype], list(a.shape)) for n, a in inputs.items()]
    inits = [numpy_helper.from_array(np.asarray(v), n) for n, v in initializers.items()]
    graph = helper.make_graph([helper.make_node(op, node_inputs, ["y"])], "bench", ins,
                              [helper.make_tensor_value_info("y", elem[np.dtype(out_dtype)], None)], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 7
    return model.SerializeToString()


def _session(model: bytes):
    import onnxruntime as ort

    return ort.InferenceSession(model, providers=["CPUExecutionProvider"])


def _ort_candidates(a, b, sa, za, sb, zb, sy, zy):
    """(label, f() -> y, f_const_b() -> y): QLinearMatMul if ONNX Runtime implements the pair, else MatMulInteger
    plus numpy requantization (ONNX Runtime's float formula, DESIGN 5.3)."""
    names = ["a", "sa", "za", "b", "sb", "zb", "sy", "zy"]
    grid = {"sa": np.float32(sa), "za": za, "sb": np.float32(sb), "zb": zb, "sy": np.float32(sy), "zy": zy}
    try:
        feed = _session(_model(names, "QLinearMatMul", {"a": a, "b": b}, grid, zy.dtype))
        const = _session(_model(names, "QLinearMatMul", {"a": a}, {**grid, "b": b}, zy.dtype))
        feed.run(None, {"a": a, "b": b})
        return "QLinearMatMul", lambda: feed.run(None, {"a": a, "b": b})[0], lambda: const.run(None, {"a": a})[0]
    except Exception:  # noqa: BLE001 - NOT_IMPLEMENTED for this type pair
        pass
    mi = ["a", "b", "za", "zb"]
    feed = _session(_model(mi, "MatMulInteger", {"a": a, "b": b}, {"za": za, "zb": zb}, np.int32))
    const = _session(_model(mi, "MatMulInteger", {"a": a}, {"za": za, "zb": zb, "b": b}, np.int32))
    m = (np.float32(sa) * np.float32(sb)) / np.float32(sy)
    info = np.iinfo(zy.dtype)
    lo, hi = np.float32(info.min - int(zy)), np.float32(info.max - int(zy))

    def requant(acc):
        f = np.clip(acc.astype(np.float32) * m, lo, hi)
        return (np.rint(f).astype(np.int32) + int(zy)).astype(zy.dtype)

    return ("MatMulInteger+numpy requant", lambda: requant(feed.run(None, {"a": a, "b": b})[0]),
            lambda: requant(const.run(None, {"a": a})[0]))


def _time_rounds(fns, repeats: int, rounds: int = 5, settle_s: float = 0.05):
    """Best and median seconds of each function: ``rounds`` rounds, each running every function ``repeats //
    rounds`` times in a row, the order rotating from round to round. Thread pools keep spinning after a call
    (OpenBLAS's for up to ~0.1 s, ONNX Runtime's briefly), which would tax whichever candidate runs next, so each
    block starts after a pause of ``settle_s`` and one untimed call."""
    times = [[] for _ in fns]
    for f in fns:
        f()  # warm-up (JIT, sessions, caches)
    per = max(1, repeats // rounds)
    for r in range(rounds):
        for i in [(r + j) % len(fns) for j in range(len(fns))]:
            time.sleep(settle_s)
            fns[i]()
            for _ in range(per):
                t = time.perf_counter()
                fns[i]()
                times[i].append(time.perf_counter() - t)
    return [min(t) for t in times], [float(np.median(t)) for t in times]


def _operands(rng, m, k, n, ta, tb):
    a = rng.integers(np.iinfo(ta).min, np.iinfo(ta).max + 1, (m, k)).astype(ta)
    b = rng.integers(np.iinfo(tb).min, np.iinfo(tb).max + 1, (k, n)).astype(tb)
    za = ta.type(128 if ta.kind == "u" else 0)  # centred grids: (x - zp) spans [-128, 127]
    zb = tb.type(128 if tb.kind == "u" else 0)
    sa, sb = 0.02, 0.01
    sy = sa * sb * np.sqrt(k) * 74.0 * 74.0 / 40.0  # acc std ~ sqrt(K) * 74^2 -> outputs ~ +-40 steps per std
    return a, b, sa, za, sb, zb, sy, za


def gemm_rows(repeats: int = 60, shapes=SHAPES, pairs=PAIRS, seed: int = 0) -> list[dict]:
    """One dict per (shape, pair): times in ms (best and median), ratios accelsim / ORT, bit-exactness."""
    rng = np.random.default_rng(seed)
    rows = []
    for m, k, n in shapes:
        for pa, pb in pairs:
            a, b, sa, za, sb, zb, sy, zy = _operands(rng, m, k, n, DTYPES[pa], DTYPES[pb])
            label, ort_f, ort_const = _ort_candidates(a, b, sa, za, sb, zb, sy, zy)
            ours = lambda: qlinear_matmul(a, sa, za, b, sb, zb, sy, zy)  # noqa: E731
            af, bf = a.astype(np.float32), b.astype(np.float32)
            fns = [ort_f, ours, lambda: af @ bf, ort_const]
            if ort_gemm.backend() is not None:  # accelsim's accumulation alone (no output stage, no validation)
                fns.append(lambda: ort_gemm.matmul_integer(a, int(za), b, int(zb)))
            best, med = _time_rounds(fns, repeats)
            rows.append({
                "m": m, "k": k, "n": n, "pair": f"{pa}x{pb}", "ort_op": label, "backend": ort_gemm.describe(),
                "accelsim_op": "QLinearMatMul" if ort_gemm.qlinear_matmul(a, sa, za, b, sb, zb, sy, zy) is not None
                else "MMInt+requant" if ort_gemm.backend() is not None else "numba",
                "ort_best_ms": best[0] * 1e3, "ort_median_ms": med[0] * 1e3,
                "accelsim_best_ms": best[1] * 1e3, "accelsim_median_ms": med[1] * 1e3,
                "numpy_f32_best_ms": best[2] * 1e3, "numpy_f32_median_ms": med[2] * 1e3,
                "ort_const_b_best_ms": best[3] * 1e3, "ort_const_b_median_ms": med[3] * 1e3,
                "ratio_best": best[1] / best[0], "ratio_median": med[1] / med[0],
                "ratio_const_b_best": best[1] / best[3],
                "acc_only_best_ms": best[4] * 1e3 if len(best) > 4 else float("nan"),
                "bit_exact": bool(np.array_equal(ours(), ort_f()) and np.array_equal(ours(), ort_const())),
            })
    return rows


def format_rows(rows) -> str:
    head = (f"{'M x K x N':16s} {'pair':6s} {'ORT op':14s} {'accelsim op':14s} {'ORT ms':>15s} {'accelsim ms':>15s} "
            f"{'ratio':>11s} {'f32 @ ms':>15s} {'ORT const-B':>15s} {'ratio':>5s} {'acc only':>8s} exact")
    lines = [head, "-" * len(head)]
    for r in rows:
        op = "QLinearMatMul" if r["ort_op"] == "QLinearMatMul" else "MMInt+requant"
        lines.append(
            f"{r['m']}x{r['k']}x{r['n']:<7d}"[:16].ljust(16) + f" {r['pair']:6s} {op:14s} {r['accelsim_op']:14s} "
            f"{r['ort_best_ms']:7.3f}/{r['ort_median_ms']:7.3f} {r['accelsim_best_ms']:7.3f}/"
            f"{r['accelsim_median_ms']:7.3f} {r['ratio_best']:5.2f}/{r['ratio_median']:5.2f} "
            f"{r['numpy_f32_best_ms']:7.3f}/{r['numpy_f32_median_ms']:7.3f} "
            f"{r['ort_const_b_best_ms']:7.3f}/{r['ort_const_b_median_ms']:7.3f} {r['ratio_const_b_best']:5.2f} "
            f"{r['acc_only_best_ms']:8.3f} {'yes' if r['bit_exact'] else 'NO'}")
    return "\n".join(lines)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=60, help="timed calls per candidate (default 60)")
    args = p.parse_args(argv)
    import numba
    import onnxruntime

    print(f"numpy {np.__version__}, numba {numba.__version__} ({numba.get_num_threads()} threads), onnxruntime "
          f"{onnxruntime.__version__}, accelsim GEMM backend: {ort_gemm.describe()}, load average "
          f"{os.getloadavg()[0]:.2f}")
    print("times: best/median of", args.repeats, "calls, ms; ratio = accelsim / ORT (best/median); ORT const-B: "
          "b prepacked as an initializer (ratio of bests); acc only: best time of accelsim's int32 accumulation "
          "alone (ort_gemm.matmul_integer: no output stage, no validation)")
    print(format_rows(gemm_rows(args.repeats)))


if __name__ == "__main__":
    main()
