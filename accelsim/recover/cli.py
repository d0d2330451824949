"""The ``accelsim quantize`` subcommand (CLI layer, as :mod:`accelsim.sweep_cli`): arguments, run, output."""
from __future__ import annotations

import json


def add_parser(sub) -> None:
    q = sub.add_parser("quantize", help="find the cheapest quantization within an accuracy bound (--auto)",
                       epilog="example:\n  accelsim quantize efficientnet_lite0 --eval photos --hw edge --auto "
                              "--max-drop 1.0 --precision w4a8 --json q.json --plan plan.txt")
    q.add_argument("model", help="mnist_cnn, efficientnet_lite0 or minilm_l6 (name or YAML)")
    q.add_argument("--eval", required=True, choices=["mnist", "photos", "lee"], help="evaluation task")
    q.add_argument("--hw", required=True, help="hw YAML or bundled name: latency/energy of every step")
    q.add_argument("--auto", action="store_true", required=True,
                   help="escalate PTQ → calibrations → clipping/bias correction/AdaRound/smoothing → mixed → QAT")
    q.add_argument("--precision", default="w8a8", help="target precision (default w8a8)")
    q.add_argument("--max-drop", type=float, default=1.0, help="allowed drop of the primary metric, points")
    q.add_argument("--eval-size", type=int, help="evaluate on the first N samples only")
    q.add_argument("--calib-size", type=int, help="calibrate on the first N calibration samples only")
    q.add_argument("--qat-steps", type=int, default=500,
                   help="maximum QAT steps of the last escalation step (default 500)")
    q.add_argument("--json", metavar="FILE", help="write {chosen, steps, fp32} as JSON")
    q.add_argument("--plan", metavar="FILE", help="write the chosen per-layer plan (--layer-precision @FILE)")
    q.add_argument("--quiet", action="store_true", help="no progress messages")


def run(args, progress=None) -> str:
    """``accelsim quantize``: run the escalation, write ``--json``/``--plan`` atomically; return the trace to
    print (``progress(message)``: status lines)."""
    from ..cli_io import check_output_dirs, write_outputs
    from ..config.loader import load_model
    check_output_dirs(args.json, args.plan)
    text, outputs = _run(args, load_model(args.model), progress)
    write_outputs(outputs)
    return text


def _run(args, model, progress=None) -> tuple[str, list[tuple[str, str]]]:
    """Run the escalation; return (text to print, [(path, content)] to write)."""
    from ..config.loader import load_hw
    from ..errors import ConfigError
    from ..eval.tasks import make_task
    from .auto import run_auto
    bad = [f"--{k.replace('_', '-')}: expected a positive integer, got {getattr(args, k)}"
           for k in ("eval_size", "calib_size", "qat_steps") if getattr(args, k) is not None and getattr(args, k) < 1]
    if args.max_drop < 0:
        bad.append(f"--max-drop: expected a non-negative number of points, got {args.max_drop}")
    if bad:
        raise ConfigError(bad)
    hw = load_hw(args.hw)
    task = make_task(args.eval, args.eval_size, args.calib_size, model)
    result = run_auto(task, hw, args.precision, args.max_drop, progress, args.qat_steps)
    outputs = []
    if args.json:
        outputs.append((args.json, json.dumps(result, indent=1, default=float)))
    if args.plan:
        outputs.append((args.plan, "".join(f"{k}={v}\n" for k, v in result["chosen"]["plan"].items())))
    return format_trace(result), outputs


def format_trace(result: dict) -> str:
    """The escalation trace: one row per step (metric, drop, avg weight bits, size, latency, energy)."""
    key = result["primary_metric"]
    lines = [f"FP32 {key} = {result['fp32'][key]:.4f}; allowed drop {result['max_drop_points']:g} points",
             f"{'step':58s} {key:>15s} {'drop':>7s} {'w bits':>6s} {'size MB':>8s} {'lat ms':>8s} {'energy mJ':>9s}"]
    for st in result["steps"]:
        mark = "*" if st is result["chosen"] else (" " if not st["within_bound"] else "+")
        cost = " ".join(f"{st[k]:{w}.{d}f}" if st[k] is not None else f"{'n/a':>{w}s}"
                        for k, w, d in (("model_size_mb", 8, 3), ("latency_ms", 8, 3), ("energy_mj", 9, 4)))
        lines.append(f"{mark}{st['step'][:57]:57s} {st['metrics'][key]:15.4f} {st['drop_points']:7.2f} "
                     f"{st['avg_weight_bits']:6.2f} {cost}")
    ok = "within" if result["within_bound"] else "NOT within"
    lines.append(f"chosen (*): {result['chosen']['step']} — {ok} the bound")
    return "\n".join(lines)
