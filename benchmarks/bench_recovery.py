"""Accuracy recovery on the three real models: FP32 · PTQ RTN · each PTQ switch · AdaRound · QAT · QAT +
distillation · mixed INT4/INT8 at ≤ 6 average weight bits · the first/last-INT8 heuristic · ``--auto``.

Every quantized row is the bit-exact integer model (per-channel weights, static asymmetric per-tensor
activations); size, latency and energy come from accelsim's cost model on the task's hw config (mnist, photos:
edge.yaml — for MNIST with ``pe.int_bits=[8,4,2]``, a Bit Fusion-style PE that also runs 2-bit operands, an
assumption labelled in the output; lee: server.yaml). Times are wall seconds on this machine.

    python benchmarks/bench_recovery.py                       # all three models, full evaluation sets
    python benchmarks/bench_recovery.py --models mnist --quick
    python benchmarks/bench_recovery.py --models photos --plot pareto.png
"""
from __future__ import annotations

import argparse
import json
import time

import numpy as np

from accelsim.config.loader import load_hw
from accelsim.data.mnist import mnist_split
from accelsim.eval.pipeline import scheme_for
from accelsim.eval.tasks import make_task
from accelsim.recover import mixed as M
from accelsim.recover import ptq
from accelsim.recover.adaround import adaround
from accelsim.recover.auto import run_auto
from accelsim.recover.overrides import Recovered
from accelsim.recover.qat import QATConfig, qat
from accelsim.recover.session import Session

HW = {"mnist": ("edge", ["pe.int_bits=[8,4,2]"]), "photos": ("edge", []), "lee": ("server", [])}
PRECISION = {"mnist": "w2a4", "photos": "w4a8", "lee": "w8a8"}


class Table:
    def __init__(self, s: Session, hw, key: str):
        self.s, self.hw, self.key, self.rows = s, hw, key, []
        self.fp32 = s.task.metrics(s.ref, s.ref)

    def add(self, name, scheme, rec=None, plan=None, bits=None, seconds=None, fp32=False):
        t0 = time.perf_counter()
        if fp32:
            m, bits = self.fp32, {}
            cost = M.hw_cost(self.s.task.graph, self.hw, {}, "fp32")
            wb = 32.0
        else:
            ev = self.s.evaluate(scheme, rec, plan)
            m = ev["metrics"]
            bits = bits or {n: scheme.bits(n) for n in self.s.folded() if scheme.bits(n)}
            cost = M.hw_cost(self.s.task.graph, self.hw, bits, f"w{scheme.w_bits}a{scheme.a_bits}")
            wb = M.avg_weight_bits(self.s.folded(), bits)
        sec = (seconds or 0.0) + time.perf_counter() - t0
        row = {"config": name, "metrics": m, "avg_w_bits": wb, **cost, "seconds": sec}
        self.rows.append(row)
        print(f"  {name}: {self.key} {m[self.key]:.4f} ({sec:.1f} s)", flush=True)
        return row

    def render(self, extra: list[str]) -> str:
        cols = [self.key] + extra
        head = "| config | " + " | ".join(cols) + " | avg w bits | size MB | latency ms | energy mJ | s |"
        out = [head, "|" + "---|" * (head.count("|") - 1)]
        for r in self.rows:
            vals = [f"{r['metrics'].get(c, float('nan')):.4f}" for c in cols]
            out.append(f"| {r['config']} | " + " | ".join(vals) + f" | {r['avg_w_bits']:.2f} | {r['model_size_mb']:.3f} | "
                       f"{r['latency_ms']:.3f} | {r['energy_mj']:.4f} | {r['seconds']:.1f} |")
        return "\n".join(out)


def _mixed_rows(t: Table, s: Session, precision: str, rec: Recovered, tag: str, pareto: list) -> None:
    low = scheme_for(precision)
    folded, graph = s.folded(), s.task.graph
    t0 = time.perf_counter()
    traces = M.hutchinson_traces(s, samples=2, batch=4)
    omega = M.sensitivities(s, low, traces, low.w_bits, rec)
    lowp, highp = (low.w_bits, low.a_bits), (8, 8)
    savings = M.layer_savings(graph, t.hw, list(folded), f"w{lowp[0]}a{lowp[1]}", "w8a8")
    base = M.hw_cost(graph, t.hw, {n: highp for n in folded})
    sens_s = time.perf_counter() - t0
    heur = M.first_last_heuristic(folded, lowp, highp)
    h = t.add(f"heuristic first/last INT8, rest w{lowp[0]}a{lowp[1]}{tag}", scheme_for(precision, layer_bits=heur),
              rec, bits=heur)
    for name, budget, limit in (("mixed ≤6 avg w bits", "bits", 6.0),
                                ("mixed, energy ≤ heuristic's", "energy_mj", h["energy_mj"]),
                                ("mixed, latency ≤ heuristic's", "latency_ms", h["latency_ms"])):
        bits = M.allocate(folded, omega, savings, budget, limit, base.get(budget, 0.0), lowp, highp)
        r = t.add(f"{name} (Hutchinson, emulator cost){tag}", scheme_for(precision, layer_bits=bits), rec,
                  bits=bits, seconds=sens_s)
        r["plan"] = {k: f"w{w}a{a}" for k, (w, a) in bits.items()}
        if budget == "bits":   # the same plan with the PTQ switches on every layer
            sb = scheme_for(precision, layer_bits=bits)
            clip = ptq.mse_clipping(folded, sb)
            t.add(f"{name} + clipping + bias correction{tag}", sb, clip.merged(ptq.bias_correction(s, sb, clip)),
                  bits=bits, seconds=sens_s)
    for limit in (4.5, 5.0, 5.5, 6.5, 7.0):
        bits = M.allocate(folded, omega, savings, "bits", limit, 0.0, lowp, highp)
        ev = s.evaluate(scheme_for(precision, layer_bits=bits), rec)
        pareto.append({"budget_bits": limit, "avg_w_bits": M.avg_weight_bits(folded, bits),
                       t.key: ev["metrics"][t.key], **M.hw_cost(graph, t.hw, bits, f"w{lowp[0]}a{lowp[1]}")})


def bench_image(task_name: str, quick: bool, qat_cfgs, ada_iters: int, auto: bool, pareto: list) -> Table:
    task = make_task(task_name, *((200, 64) if quick and task_name == "mnist" else (8, 8) if quick else (None, None)))
    s = Session(task)
    hw = load_hw(HW[task_name][0], HW[task_name][1])
    t = Table(s, hw, task.primary)
    precision = PRECISION[task_name]
    t.add("FP32", None, fp32=True)
    t.add("PTQ W8A8 minmax (reference)", scheme_for("w8a8"))
    sch = scheme_for(precision)
    t.add(f"PTQ {precision} RTN minmax", sch)
    t0 = time.perf_counter()
    clip = ptq.mse_clipping(s.folded(), sch)
    t.add("+ MSE weight clipping", sch, clip, seconds=time.perf_counter() - t0)
    t0 = time.perf_counter()
    bc = ptq.bias_correction(s, sch, Recovered())
    t.add("+ bias correction", sch, bc, seconds=time.perf_counter() - t0)
    t0 = time.perf_counter()
    cbc = clip.merged(ptq.bias_correction(s, sch, clip))
    t.add("+ clipping + bias correction", sch, cbc, seconds=time.perf_counter() - t0)
    t0 = time.perf_counter()
    ar = adaround(s, sch, None, ada_iters)
    t.add(f"AdaRound ({ada_iters} it/layer, MSE grid) + empirical BC", sch, ar, seconds=time.perf_counter() - t0)
    for label, cfg, labels in qat_cfgs:
        plan = s.calibrate(sch, cbc)
        if labels:   # MNIST's 4k training split (never the test split the table evaluates on)
            split = mnist_split()
            x, y = split.x_train, (split.y_train if labels is True else None)
        else:
            x, y = np.concatenate(task.calibration()), None
        t0 = time.perf_counter()
        p2, rec2, hist = qat(task.graph, task._setup()["weights"], plan, s.folded(), x, y, cfg, cbc)
        t.add(f"{label} ({hist.steps} steps, {hist.seconds:.0f} s train)", sch, rec2, p2,
              seconds=time.perf_counter() - t0)
    _mixed_rows(t, s, "w4a8" if task_name == "photos" else "w4a4", Recovered(), "", pareto)
    if auto:
        t0 = time.perf_counter()
        res = run_auto(task, hw, precision, 1.0, qat_steps=qat_cfgs[-1][1].max_steps or 60)
        ch = res["chosen"]
        t.rows.append({"config": f"--auto {precision} --max-drop 1 → {ch['step']}" +
                       ("" if res["within_bound"] else " (NOT within bound)"), "metrics": ch["metrics"],
                       "avg_w_bits": ch["avg_weight_bits"], **{k: ch[k] if ch[k] is not None else float("nan")
                                                               for k in ("model_size_mb", "latency_ms", "energy_mj")},
                       "seconds": time.perf_counter() - t0, "steps": res["steps"]})
    return t


def bench_lee(quick: bool, auto: bool) -> Table:
    task = make_task("lee", *((12, 16) if quick else (None, None)))
    s = Session(task)
    hw = load_hw(*HW["lee"])
    t = Table(s, hw, task.primary)
    t.add("FP32", None, fp32=True)
    sch = scheme_for("w8a8")
    t.add("PTQ W8A8 RTN minmax (static)", sch)
    for c in ("percentile", "mse"):
        t.add(f"PTQ W8A8 {c} (static)", scheme_for("w8a8", c))
    t0 = time.perf_counter()
    clip = ptq.mse_clipping(s.folded(), sch)
    t.add("+ MSE weight clipping", sch, clip, seconds=time.perf_counter() - t0)
    t0 = time.perf_counter()
    t.add("+ bias correction", sch, ptq.bias_correction(s, sch, Recovered()), seconds=time.perf_counter() - t0)
    t0 = time.perf_counter()
    sq = ptq.smoothquant(s, sch, 0.5)
    t.add("+ SmoothQuant α=0.5 (input side, all linears)", sch, sq, seconds=time.perf_counter() - t0)
    t0 = time.perf_counter()
    os_ = ptq.output_smoothing(s, sch, ("*output.dense",))
    t.add("+ output-channel scale migration (attn-out, FFN-down)", sch, os_, seconds=time.perf_counter() - t0)
    t0 = time.perf_counter()
    t.add("+ output migration + SmoothQuant α=0.5", sch, os_.merged(sq), seconds=time.perf_counter() - t0)
    if auto:
        t0 = time.perf_counter()
        res = run_auto(task, hw, "w8a8", 1.0)
        ch = res["chosen"]
        t.rows.append({"config": f"--auto w8a8 --max-drop 1 → {ch['step']}" +
                       ("" if res["within_bound"] else " (NOT within bound)"), "metrics": ch["metrics"],
                       "avg_w_bits": ch["avg_weight_bits"], "model_size_mb": ch["model_size_mb"],
                       "latency_ms": ch["latency_ms"], "energy_mj": ch["energy_mj"],
                       "seconds": time.perf_counter() - t0, "steps": res["steps"]})
    return t


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", nargs="*", default=["mnist", "photos", "lee"])
    ap.add_argument("--quick", action="store_true", help="small subsets and few steps (CI smoke)")
    ap.add_argument("--no-auto", action="store_true")
    ap.add_argument("--json")
    ap.add_argument("--plot", help="Pareto plot (accuracy vs avg bits and vs energy) PNG for photos/mnist")
    args = ap.parse_args()
    out, pareto = {}, {}
    for name in args.models:
        print(f"== {name} ==", flush=True)
        t0 = time.perf_counter()
        pareto[name] = []
        if name == "lee":
            t = bench_lee(args.quick, not args.no_auto)
            extra = ["spearman", "ndcg@10", "cosine_to_fp32_min"]
        else:
            steps = 3 if args.quick else None
            if name == "mnist":
                qcfg = [("QAT labels lr 3e-5 (1/100 of training)", QATConfig(epochs=8, lr=3e-5, scale_lr=1e-2,
                                                                             max_steps=steps), True),
                        ("QAT labels lr 1e-3", QATConfig(epochs=8, lr=1e-3, scale_lr=1e-2, max_steps=steps), True),
                        ("QAT labels + KL distillation lr 1e-3", QATConfig(epochs=8, lr=1e-3, scale_lr=1e-2,
                         distill="kl", alpha=0.5, max_steps=steps), True),
                        ("QAT KL distillation only (train images, no labels)", QATConfig(epochs=8, lr=1e-3,
                         scale_lr=1e-2, distill="kl", max_steps=steps), "unlabeled")]
            else:
                qcfg = [("QAT + KL distillation on calibration photos", QATConfig(
                    epochs=40, batch_size=8, lr=1e-4, scale_lr=1e-3, distill="kl", max_steps=steps or 15), False)]
            t = bench_image(name, args.quick, qcfg, 50 if args.quick else 200, not args.no_auto, pareto[name])
            extra = (["top1_agreement", "logit_sqnr_db"] if name == "mnist" else ["top1_in_fp32_top5", "logit_sqnr_db"])
        print(f"\n### {name} ({PRECISION[name]}; hw {HW[name][0]} {' '.join(HW[name][1])}; "
              f"{time.perf_counter() - t0:.0f} s)\n")
        print(t.render(extra))
        if pareto[name]:
            print("\nPareto (Hutchinson allocation, budget = avg weight bits):")
            for p in pareto[name]:
                print(f"  ≤{p['budget_bits']:.1f} bits: avg {p['avg_w_bits']:.2f}, {t.key} {p[t.key]:.4f}, "
                      f"energy {p['energy_mj']:.4f} mJ, latency {p['latency_ms']:.3f} ms")
        out[name] = {"rows": t.rows, "pareto": pareto[name], "key": t.key}
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(out, fh, indent=1, default=float)
    if args.plot:
        _plot(out, args.plot)


def _plot(out: dict, path: str) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for name, res in out.items():
        pts = [r for r in res["rows"] if r["config"] != "FP32"] + res["pareto"]
        key = res["key"]
        for ax, x in zip(axes, ("avg_w_bits", "energy_mj")):
            ax.scatter([p[x] for p in pts], [p.get(key, p.get("metrics", {}).get(key)) for p in pts], label=name, s=12)
            ax.set_xlabel(x)
            ax.set_ylabel("primary metric")
    axes[0].legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)


if __name__ == "__main__":
    main()
