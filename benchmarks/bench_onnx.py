"""ONNX in and out, measured in one run: ONNX's own backend test data (conformance, per folder), the onnx
package's reference models against ONNX Runtime (FP32), their
MACs/params against a count from ONNX shape inference alone, and output-code agreement with ONNX Runtime for
(a) models quantized by ``onnxruntime.quantization.quantize_static`` and run by accelsim, (b) accelsim's own w8a8
plan exported as QDQ and run by ONNX Runtime — MNIST CNN (1k test images) and EfficientNet-Lite0 (48 photo views).

    python benchmarks/bench_onnx.py [--skip-real]

The reference "light" models carry constant-filled weights; they are replaced by seeded random ones (see
tests/test_onnx_import.py::randomized) so that outputs are not uniform.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from test_onnx_import import LIGHT, independent_count, ort_run, randomized, save  # noqa: E402
from test_onnx_quantized import FORMATS, differing_codes, quantize  # noqa: E402

from accelsim.config.loader import load_hw, load_model  # noqa: E402
from accelsim.eval.pipeline import scheme_for  # noqa: E402
from accelsim.inference import calibrate, fed_shape, infer, run_batched  # noqa: E402
from accelsim.nn.qexec import QuantOps  # noqa: E402
from accelsim.onnx import import_onnx  # noqa: E402
from accelsim.onnx.exporter import export_onnx  # noqa: E402
from accelsim.sim.engine import simulate  # noqa: E402


def conformance() -> None:
    """ONNX's backend test data through accelsim.infer (tests/test_onnx_conformance.py), per folder."""
    import collections
    from test_onnx_conformance import ALL, REFUSED, run_case, out_of_scope
    import onnx
    rows = collections.defaultdict(collections.Counter)
    t0 = time.perf_counter()
    for folder, name, path, data in ALL:
        scope = out_of_scope(onnx.load(str(path), load_external_data=False))
        result = run_case(path, data)
        kind = "out of scope" if scope else result.split(":")[0]
        rows[folder][kind] += 1
        if not scope and result != "match":
            print(f"  {folder}/{name}: {result[:150]}")
    print(f"ONNX backend test data ({time.perf_counter() - t0:.1f} s): folder, models, in scope, match, refused, "
          "differs, out of scope (strings/sequences/training: refused)")
    total = collections.Counter()
    for folder, c in rows.items():
        n = sum(c.values())
        total.update(c | {"models": n})
        print(f"  {folder:18s} {n:4d} {n - c['out of scope']:4d} {c['match']:4d} {c['refused']:4d} "
              f"{c['differs']:4d} {c['out of scope']:4d}")
    print(f"  {'all':18s} {total['models']:4d} {total['models'] - total['out of scope']:4d} {total['match']:4d} "
          f"{total['refused']:4d} {total['differs']:4d} {total['out of scope']:4d}   (known refusals: {len(REFUSED)})")


def reference_models(tmp: Path) -> None:
    import onnx
    print("model        import_s  max|Δprob|   max|Δlogit|  max|logit|  MACs(accelsim = independent)  params")
    for name in ("resnet50", "squeezenet", "shufflenet"):
        path = save(randomized(name), tmp / f"{name}.onnx")
        t0 = time.perf_counter()
        imp = import_onnx(path)
        t_imp = time.perf_counter() - t0
        inp = next(iter(imp.inputs))
        x = np.random.default_rng(8).standard_normal(fed_shape(imp.model, inp)).astype(np.float32)
        ref, got = ort_run(path, {inp: x}), infer(imp.model, {inp: x})
        d = [float(np.abs(got[o.name] - r).max()) for o, r in zip(onnx.load(str(path)).graph.output, ref)]
        rep = simulate(load_model(LIGHT / f"light_{name}.onnx"), load_hw("edge"), "w8a8")
        macs, params = independent_count(onnx.load(str(LIGHT / f"light_{name}.onnx")))
        print(f"{name:12s} {t_imp:7.2f}  {d[0]:.2e}   {d[1]:.2e}   {np.abs(ref[1]).max():9.3f}  "
              f"{rep.totals['macs']:,} {'=' if rep.totals['macs'] == macs else '≠'} {macs:,}  "
              f"{rep.totals['params']:,} {'=' if rep.totals['params'] == params else '≠'} {params:,}")


def real_models(tmp: Path) -> None:
    from accelsim.eval.tasks import MnistTask, PhotosTask
    for task in (MnistTask(), PhotosTask()):
        st = task._setup()
        inp, x = next(iter(task.graph.inputs)), st["data"]
        fp32 = export_onnx(task.graph, st["weights"], tmp / f"{task.name}.onnx")
        f_diff = float(np.abs(ort_run(fp32, {inp: x})[0] - next(iter(run_batched(task.graph, st["weights"],
                                                                                   {inp: x}).values()))).max())
        print(f"\n{task.name}: {len(x)} inputs; FP32 export vs accelsim max|Δ| {f_diff:.2e}")
        from onnxruntime.quantization import QuantType, quantize_dynamic
        for (fmt, pc), wt in [(f, w) for f in FORMATS for w in (QuantType.QInt8, QuantType.QUInt8)]:
            q = quantize(fp32, tmp / f"{task.name}_{fmt.name}_{pc}_{wt.name}.onnx", inp, st["calib"], fmt, pc, wt)
            t0 = time.perf_counter()
            diff, total, n = differing_codes(q, inp, x)
            print(f"  ORT quantize_static {fmt.name:9s} {'per-channel' if pc else 'per-tensor ':11s} {wt.name:6s}: "
                  f"{n} int layers, {diff} of {total} output codes differ ({time.perf_counter() - t0:.1f} s)")
        for pc in (True, False):
            d = tmp / f"{task.name}_dynamic.onnx"
            quantize_dynamic(str(fp32), str(d), per_channel=pc, weight_type=QuantType.QInt8)
            ours = next(iter(infer(import_onnx(d).model, {inp: x}).values()))
            theirs = ort_run(d, {inp: x})[0]
            print(f"  ORT quantize_dynamic {'per-channel' if pc else 'per-tensor '}: {int((ours != theirs).sum())} of "
                  f"{theirs.size} float outputs differ, max|Δ| {float(np.abs(ours - theirs).max()):.2e}")
        for pc in (True, False):
            plan = calibrate(task.graph, st["weights"], {inp: st["calib"]}, scheme_for("w8a8", "minmax", pc))
            ours = next(iter(run_batched(task.graph, st["weights"], {inp: x}, QuantOps(plan, "int", measure=False))
                             .values()))
            theirs = ort_run(export_onnx(task.graph, st["weights"], tmp / "exp.onnx", plan), {inp: x})[0]
            y = plan.layers[list(plan.layers)[-1]].y
            diff = int((np.rint(ours / y.scale) != np.rint(theirs / y.scale)).sum())
            print(f"  accelsim w8a8 {'per-channel' if pc else 'per-tensor '} → QDQ → ORT: {diff} of {theirs.size} "
                  "output codes differ")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--skip-real", action="store_true", help="only the conformance run and the reference models")
    args = ap.parse_args()
    conformance()
    with tempfile.TemporaryDirectory() as d:
        reference_models(Path(d))
        if not args.skip_real:
            real_models(Path(d))


if __name__ == "__main__":
    main()
