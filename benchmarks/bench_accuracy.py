"""Real-model accuracy next to cost: FP32 vs W8A8 (MinMax, KL) vs W4A8 for the three real models.

For each model: the accuracy metric on its real data set (bit-exact integer execution, per-channel
weights, asymmetric per-tensor activations), and model size / latency / energy from the cost model on
the model's hw config. Prints a markdown table; ``--json FILE`` writes every result with its card.

    python benchmarks/bench_accuracy.py            # full sets: 1k digits, 48 photo views, 50 Lee documents
    python benchmarks/bench_accuracy.py --quick    # small subsets
"""
from __future__ import annotations

import argparse
import json
import time

from accelsim.config.loader import load_hw, load_model
from accelsim.eval.pipeline import evaluate, float_layer_precisions, scheme_for
from accelsim.eval.tasks import make_task
from accelsim.sim.engine import simulate

MODELS = [  # (model, task, hw, metrics to show)
    ("mnist_cnn", "mnist", "edge", ["accuracy", "top1_agreement", "logit_sqnr_db"]),
    ("efficientnet_lite0", "photos", "edge", ["top1_agreement", "top1_in_fp32_top5", "logit_sqnr_db"]),
    ("minilm_l6", "lee", "server", ["top10_overlap", "spearman", "pearson", "ndcg@10", "cosine_to_fp32_min"]),
]
CONFIGS = [("fp32", None, (), False), ("w8a8", "minmax", (), False), ("w8a8", "kl", (), False),
           ("w8a8", "percentile", (), False), ("w4a8", "minmax", (), False), ("w4a8", "percentile", (), False)]
EXTRA = {  # what the per-layer SQNR pointed at: MiniLM's FFN down-projections (float, or dynamic activations)
    "minilm_l6": [("w8a8", "minmax", ("*[0-9].output.dense",), False), ("w8a8", "dynamic", (), True)],
}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--json")
    ap.add_argument("--mode", default="int", choices=["int", "fake"])
    ap.add_argument("--models", nargs="*", default=[m[0] for m in MODELS], help="subset of the models")
    args = ap.parse_args()
    sizes = {"mnist": (200, 128), "photos": (8, 8), "lee": (12, 16)} if args.quick else {}
    results = []
    print("| model | config | " + "metrics | size MB | latency ms | energy mJ | eval s |")
    print("|---|---|---|---|---|---|---|")
    for model_name, task_name, hw_name, shown in (m for m in MODELS if m[0] in args.models):
        graph, hw = load_model(model_name), load_hw(hw_name)
        n_eval, n_calib = sizes.get(task_name, (None, None))
        task = make_task(task_name, n_eval, n_calib, graph)
        fp32_metrics = None
        for precision, calib, keep_float, dynamic in CONFIGS + EXTRA.get(model_name, []):
            t0 = time.perf_counter()
            scheme = None if calib is None else scheme_for(precision, "minmax" if dynamic else calib,
                                                           float_layers=keep_float, dynamic=dynamic)
            r = evaluate(task, scheme, args.mode)
            seconds = time.perf_counter() - t0
            metrics = r["fp32"] if calib is None else r["quantized"]
            fp32_metrics = fp32_metrics or r["fp32"]
            cost = simulate(graph, hw, precision, float_layer_precisions(graph, keep_float)).totals
            label = precision if calib is None else f"{precision} {calib}"
            label += f" (float: {', '.join(keep_float)})" if keep_float else ""
            cells = ", ".join(f"{k} {metrics[k]:.4f}" for k in shown if k in metrics)
            print(f"| {model_name} ({task_name}, {r['eval_size']}) on {hw_name} | {label} | {cells} | "
                  f"{cost['model_size_mb']:.2f} | {cost['latency_ms']:.3f} | {cost['energy_mj']:.4f} | {seconds:.1f} |",
                  flush=True)
            results.append({"model": model_name, "task": task_name, "hw": hw_name, "config": label,
                            "accuracy": r, "cost": cost})
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(results, fh, indent=1, default=float)


if __name__ == "__main__":
    main()
