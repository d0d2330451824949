"""The documented examples recomputed: FP32 vs INT8 size, speed, energy and power on their hw configs, the
meanings of "less power" the numbers support, a sensitivity sweep and the accuracy proxies.

Power at a fixed rate ``R`` (inferences/s, ``fixed_rate_per_s`` in reference.yaml): the chip runs each
inference and idles between them, so ``P = (E − E_static) · R + leakage`` with ``E_static`` the leakage
energy during the inference itself; it is undefined when ``R`` exceeds the throughput.
"""
from __future__ import annotations

from importlib import resources

import yaml

from ..config.loader import load_hw, load_model
from ..sim.engine import simulate
from ..sweep import sweep

def reference() -> dict:
    return yaml.safe_load(resources.files("accelsim.reporting").joinpath("reference.yaml").read_text())["examples"]


def side(report, rate: float, leakage_w: float) -> dict:
    """The per-precision numbers of one run (module docstring for the fixed-rate power)."""
    t = report.totals
    dynamic_mj = t["energy_mj"] - t["energy_breakdown_mj"]["static"]
    feasible = t["inferences_per_s"] >= rate
    return {"size_mb": t["model_size_mb"], "latency_ms": t["latency_ms"], "inferences_per_s": t["inferences_per_s"],
            "energy_mj": t["energy_mj"], "avg_power_w": t["avg_power_w"], "inferences_per_j": t["inferences_per_j"],
            "power_at_rate_w": dynamic_mj * 1e-3 * rate + leakage_w if feasible else None,
            "dram_mb": t["dram_mb"], "array_utilization": t["array_utilization"]}


def compare(spec: dict, sets=()) -> dict:
    """FP32 and INT8 (w8a8) of one documented example on its hw config (with ``sets`` overrides)."""
    model, hw = load_model(spec["model"]), load_hw(spec["hw"], sets)
    runs = {p: simulate(model, hw, p) for p in ("fp32", "w8a8")}
    leak = hw.energy.leakage_mw * 1e-3
    fp, q = (side(runs[p], spec["fixed_rate_per_s"], leak) for p in ("fp32", "w8a8"))
    ratio = {"size_ratio": fp["size_mb"] / q["size_mb"], "speedup": fp["latency_ms"] / q["latency_ms"],
             "energy_ratio": fp["energy_mj"] / q["energy_mj"],
             "power_reduction_flat_out": 1 - q["avg_power_w"] / fp["avg_power_w"],
             "power_reduction_at_rate": (1 - q["power_at_rate_w"] / fp["power_at_rate_w"]
                                         if fp["power_at_rate_w"] and q["power_at_rate_w"] else None),
             "energy_reduction": 1 - q["energy_mj"] / fp["energy_mj"]}
    return {"spec": spec, "hw": hw, "model": model, "runs": runs, "fp32": fp, "int8": q, "ratios": ratio,
            "power_meanings": power_meanings(ratio, spec["documented"].get("power_reduction"), spec["fixed_rate_per_s"])}


def power_meanings(r: dict, documented, rate: float) -> list[str]:
    """Which reading of a documented power reduction the computed numbers support."""
    readings = [("average power running flat out", r["power_reduction_flat_out"]),
                (f"power at a fixed {rate:g} inferences/s (idle between them)", r["power_reduction_at_rate"]),
                ("energy per inference", r["energy_reduction"])]
    out = []
    for name, value in readings:
        if value is None:
            out.append(f"{name}: not computable (the FP32 chip cannot sustain the rate)")
            continue
        verdict = "" if documented is None else (f" — supports the documented {documented:.0%}" if value >= documented - 1e-9
                                                 else f" — does not reach the documented {documented:.0%}")
        out.append(f"{name}: {value:.0%} lower{verdict}")
    return out


def sensitivity(spec: dict, sets=()) -> list:
    """The example's sensitivity rows (:mod:`.sensitivity`): each assumption from ¼× to 4× of its own config's value."""
    from ..config.loader import apply_overrides, read_yaml, resolve
    from .sensitivity import sensitivity as rows
    data = apply_overrides(read_yaml(resolve(spec["hw"], "hw")), sets)
    return rows(load_model(spec["model"]), data, load_hw(spec["hw"], sets))


def batch_curve(spec: dict, sets=()) -> list[dict]:
    """Latency per batch, throughput and weight bytes per inference of FP32, FP16 and W8A8 at each batch of the
    example's ``batch_curve``, with the INT8 speed-up over FP16 and FP32 (throughput ratios)."""
    model, hw = load_model(spec["model"]), load_hw(spec["hw"], sets)
    rows = []
    for b in spec["batch_curve"]["batches"]:
        t = {p: simulate(model, hw, p, batch=b).totals for p in ("fp32", "fp16", "w8a8")}
        rows.append({"batch": b, **{f"{p}_latency_ms": t[p]["latency_ms"] for p in t},
                     **{f"{p}_inferences_per_s": t[p]["inferences_per_s"] for p in t},
                     "w8a8_weight_mb_per_inference": t["w8a8"]["streamed_weight_mb"],
                     "int8_over_fp16": t["w8a8"]["inferences_per_s"] / t["fp16"]["inferences_per_s"],
                     "int8_over_fp32": t["w8a8"]["inferences_per_s"] / t["fp32"]["inferences_per_s"]})
    return rows


def pareto_sweep(spec: dict):
    """A small design space around the example's chip: array shape × input SRAM × precision."""
    grid = {"array.rows": [16, 32, 64, 128], "array.cols": [16, 32, 64, 128],
            "precision": ["fp32", "w8a8", "w4a8"]}
    return sweep(spec["model"], spec["hw"], grid, objectives=("latency_ms", "energy_mj", "area_mm2"))


def accuracy(tasks, eval_size: int | None) -> list[dict]:
    """FP32 vs W8A8 (MinMax, per-channel, int mode) on the real models that stand in for the examples'."""
    from ..errors import AccelsimError
    from ..eval.pipeline import evaluate, scheme_for
    from ..eval.tasks import make_task
    out = []
    for name in tasks:
        task = make_task(name, eval_size)
        try:
            task.eval_data()
        except AccelsimError:           # the set is smaller than eval_size: all of it
            task = make_task(name, None)
        result = evaluate(task, scheme_for("w8a8"), "int")
        metric = result["primary_metric"]
        out.append({"task": name, "model": result["model"], "samples": result["eval_size"], "metric": metric,
                    "fp32": result["fp32"][metric], "w8a8": result["quantized"][metric]})
    return out


TRADEOFF_GRID = {"precision": ["w8a8", "w4a8", "w4a4"],
                 "plan": [None, ["0=w8a8", "7=w8a8"]]}   # the documented heuristic: first and last layer at 8 bits


def bits_tradeoff(hw: str = "edge", eval_size: int | None = None) -> list[dict]:
    """MNIST CNN (real weights, real data) at several bit-widths and the first/last-8-bit plan: accuracy,
    average bits per parameter (8 · size / parameters; biases stay 32-bit) and energy on ``hw``."""
    from ..sweep import sweep
    model = load_model("mnist_cnn")
    result = sweep(model, hw, TRADEOFF_GRID, objectives=("energy_mj", "accuracy"), eval="mnist")
    records = [r for r in result.records if not (r["precision"] == "w8a8" and r["plan"] is not None)]
    for rec in records:
        rec["avg_bits"] = 8 * rec["model_size_mb"] * 1e6 / model.params
        rec["label"] = rec["precision"] + ("" if rec["plan"] is None else " (first/last 8-bit)")
    return records
