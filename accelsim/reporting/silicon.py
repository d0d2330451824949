"""Predicted against measured: the zoo's models on a real device's hw config beside its published latencies.

``validate(device)`` costs every model of :file:`silicon.yaml` that the zoo holds with the device's bundled hw
config (``simulate(model, hw, "w8a8")``, exactly what ``accelsim run MODEL --hw HW`` prints) and reports, per
model, ``predicted_ms / measured_ms`` and the **bound**: the part of the predicted cycles that dominates —

* ``overhead`` — fixed per-layer, per-transfer and per-run cycles (``timing.*_overhead_cycles``);
* ``host link`` — stalls waiting for the outermost level (host memory over the link, or DRAM);
* ``on-chip`` — stalls waiting for a bandwidth-limited on-chip level;
* ``compute`` — everything else: the array and the vector unit busy.

Statistics (geometric mean, range, how many lie within 0.5–2×) leave out the calibration models listed in
silicon.yaml (models whose latencies were used to fit a constant of the hw config) and the models whose
measured time includes host CPU work accelsim does not model (``host_part``).
"""
from __future__ import annotations

import math
from importlib import resources

import yaml

from ..config.loader import bundled_names, load_hw, load_model
from ..errors import ConfigError, short
from ..sim.engine import simulate

BOUNDS = ("compute", "on-chip", "host link", "overhead")
WITHIN = (0.5, 2.0)


def measurements() -> dict:
    return yaml.safe_load(resources.files("accelsim.reporting").joinpath("silicon.yaml").read_text())


def bound(report) -> tuple[str, dict]:
    """The dominating part of a run's cycles and each part's share (module docstring)."""
    outer = report.config["memory_levels"][-1]
    parts = dict.fromkeys(BOUNDS, 0.0)
    for c in report.layers:
        stalls = dict(c.timing.stall_by_level)
        link = stalls.pop(outer, 0)
        parts["overhead"] += c.timing.overhead_cycles
        parts["host link"] += link
        parts["on-chip"] += sum(stalls.values())
        parts["compute"] += c.cycles - c.timing.overhead_cycles - link - sum(stalls.values())
    parts["overhead"] += report.totals["overhead_cycles"] - sum(c.timing.overhead_cycles for c in report.layers)
    total = sum(parts.values()) or 1.0
    shares = {k: v / total for k, v in parts.items()}
    return max(shares, key=shares.get), shares


def validate(device: str, sets=()) -> dict:
    """Rows (model, measured_ms, predicted_ms, ratio, bound, calibration) and statistics for ``device``."""
    spec = measurements()
    if device not in spec["devices"]:
        raise ConfigError([f"validate: unknown device {short(device)!r}: expected one of "
                           f"{', '.join(spec['devices'])}"])
    hw = load_hw(spec["devices"][device]["hw"], sets)
    zoo = set(bundled_names("model"))
    rows, missing = [], []
    for entry in spec["models"]:
        if entry["model"] not in zoo:
            missing.append(entry["name"])
            continue
        report = simulate(load_model(entry["model"]), hw, spec["precision"])
        name, shares = bound(report)
        predicted = report.totals["latency_ms"]
        rows.append({"model": entry["model"], "label": entry["name"], "measured_ms": entry[device],
                     "predicted_ms": predicted, "ratio": predicted / entry[device], "bound": name,
                     "bound_shares": shares, "calibration": entry["model"] in spec["calibration"],
                     "host_part": entry.get("host_part")})
    return {"device": device, "label": spec["devices"][device]["label"], "hw": hw.name, "source": spec["source"],
            "precision": spec["precision"], "rows": rows, "not_in_zoo": missing, "statistics": statistics(rows)}


def statistics(rows: list[dict]) -> dict:
    """Error statistics of predicted/measured over the non-calibration rows."""
    ratios = [r["ratio"] for r in rows if not r["calibration"] and not r["host_part"]]
    if not ratios:
        return {"models": 0}
    logs = [math.log(r) for r in ratios]
    lo, hi = WITHIN
    return {"models": len(ratios), "calibration_models": sum(r["calibration"] for r in rows),
            "host_part_models": sum(bool(r["host_part"]) for r in rows),
            "geomean_ratio": math.exp(sum(logs) / len(logs)), "min_ratio": min(ratios), "max_ratio": max(ratios),
            "within_0.5_2": sum(lo <= r <= hi for r in ratios),
            "mean_abs_log2_error": sum(abs(x) for x in logs) / len(logs) / math.log(2)}


def format_validation(result: dict) -> str:
    """The table and the statistics, as text."""
    head = f"{'model':24} {'measured ms':>12} {'predicted ms':>13} {'ratio':>7}  {'bound':10} note"
    lines = [f"{result['label']}: accelsim {result['hw']} ({result['precision']}) vs measured", head, "-" * len(head)]
    for r in result["rows"]:
        lines.append(f"{r['model']:24} {r['measured_ms']:12.1f} {r['predicted_ms']:13.2f} {r['ratio']:7.2f}  "
                     f"{r['bound']:10} {'calibration' if r['calibration'] else 'host CPU part' if r['host_part'] else ''}"
                     .rstrip())
    s = result["statistics"]
    if s["models"]:
        lines.append(f"{s['models']} models (left out: {s['calibration_models']} calibration, "
                     f"{s['host_part_models']} with host CPU work): geomean "
                     f"predicted/measured {s['geomean_ratio']:.3f}, range {s['min_ratio']:.2f}–{s['max_ratio']:.2f}, "
                     f"{s['within_0.5_2']} of {s['models']} within 0.5–2x, mean |log2 error| "
                     f"{s['mean_abs_log2_error']:.2f}")
    if result["not_in_zoo"]:
        lines.append("not in the zoo (not predicted): " + ", ".join(result["not_in_zoo"]))
    lines.append(f"measured: {result['source']}")
    return "\n".join(lines)
