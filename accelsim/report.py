"""Render a RunReport: a per-layer terminal table, JSON and CSV (written atomically: no partial files)."""
from __future__ import annotations

import csv
import io
import json
import os
import tempfile

import numpy as np
from pathlib import Path

from .sim.engine import RunReport

COLUMNS = [  # (header, field, format)
    ("layer", "name", "{}"), ("op", "op", "{}"), ("prec", "precision", "{}"), ("M", "m", "{:d}"), ("N", "n", "{:d}"),
    ("K", "k", "{:d}"), ("x", "count", "{:d}"), ("MACs", "macs", "{:,d}"), ("folds", "folds", "{:,d}"),
    ("cycles", "cycles", "{:,d}"), ("scalesim", "scalesim_cycles", "{:,d}"), ("util%", "utilization", "{:.1%}"),
    ("DRAM KB", "dram_bytes", "{:kb}"), ("bound", "bound", "{}"), ("energy uJ", "energy_pj", "{:uj}"),
]
COMPARE_ROWS = [  # (label, totals key, format, "higher is better")
    ("model size (MB)", "model_size_mb", "{:.2f}", False), ("latency (ms)", "latency_ms", "{:.3f}", False),
    ("throughput (inf/s)", "inferences_per_s", "{:.1f}", True), ("energy / inference (mJ)", "energy_mj", "{:.3f}", False),
    ("average power (W)", "avg_power_w", "{:.3f}", False), ("inferences per joule", "inferences_per_j", "{:.1f}", True),
    ("DRAM traffic (MB)", "dram_mb", "{:.2f}", False), ("array utilization", "array_utilization", "{:.3f}", True),
    ("memory-bound layers", "memory_bound_layers", "{}", False),
]


def _cell(fmt: str, value) -> str:
    if fmt == "{:.1%}":
        return f"{value * 100:.1f}"
    if fmt == "{:kb}":
        return f"{value / 1e3:,.1f}"
    if fmt == "{:uj}":
        return f"{value / 1e6:,.2f}"
    return fmt.format(value)


def format_table(report: RunReport, max_rows: int | None = None) -> str:
    """Fixed-width per-layer table followed by the totals."""
    rows = [[h for h, _, _ in COLUMNS]]
    layers = [c for c in report.layers if c.cycles or c.macs or c.bound != "none" and c.bound != "fused"]
    shown = layers if max_rows is None or len(layers) <= max_rows else layers[:max_rows]
    for cost in shown:
        d = cost.to_dict()
        rows.append([_cell(fmt, d[key]) if d[key] or key in ("name", "op") else "-" for _, key, fmt in COLUMNS])
    widths = [max(len(r[i]) for r in rows) for i in range(len(COLUMNS))]
    lines = ["  ".join(c.ljust(w) if i < 3 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths))) for r in rows]
    lines.insert(1, "-" * len(lines[0]))
    if len(shown) < len(layers):
        lines.append(f"... {len(layers) - len(shown)} more layers (see --json/--csv)")
    return "\n".join(lines) + "\n\n" + format_totals(report)


def format_totals(report: RunReport) -> str:
    t, c = report.totals, report.config
    return "\n".join([
        f"model {report.model} on {report.hw} ({c['rows']}x{c['cols']} {c['dataflow'].upper()}, "
        f"{c['clock_mhz']:g} MHz), precision {report.precision}",
        f"  layers {t['layers']}, params {t['params']:,} ({t['model_size_mb']:.2f} MB), MACs {t['macs']:,}",
        f"  cycles {t['cycles']:,} (array {t['compute_cycles']:,} + vector {t['vector_cycles']:,}); "
        f"SCALE-Sim-compatible array cycles {t['scalesim_cycles']:,}",
        f"  latency {t['latency_ms']:.3f} ms ({t['inferences_per_s']:.1f} inf/s), array utilization "
        f"{t['array_utilization'] * 100:.1f}%, stalls {t['stall_cycles']:,} cycles, "
        f"{t['memory_bound_layers']} memory-bound layers",
        f"  DRAM {t['dram_mb']:.2f} MB; energy {t['energy_mj']:.3f} mJ/inference ("
        + ", ".join(f"{k} {v:.3f}" for k, v in t["energy_breakdown_mj"].items())
        + f"); average power {t['avg_power_w']:.3f} W; {t['inferences_per_j']:.1f} inferences/J",
    ])


def compare_dict(base: RunReport, target: RunReport) -> dict:
    """Both runs' totals and the ratios baseline/target (or target/baseline where higher is better)."""
    ratios = {}
    for _, key, _, higher_better in COMPARE_ROWS:
        b, t = base.totals[key], target.totals[key]
        num, den = (t, b) if higher_better else (b, t)
        ratios[key] = num / den if den else None
    return {"model": base.model, "hw": base.hw, "baseline": base.precision, "target": target.precision,
            "baseline_totals": base.totals, "target_totals": target.totals, "ratios": ratios,
            "ratio_meaning": "improvement factor of target over baseline (>1 = better): baseline/target for "
                             "costs, target/baseline for throughput, inferences/J and utilization"}


def format_compare(base: RunReport, target: RunReport) -> str:
    d = compare_dict(base, target)
    rows = [["metric", base.precision, target.precision, "improvement"]]
    for label, key, fmt, _ in COMPARE_ROWS:
        r = d["ratios"][key]
        rows.append([label, fmt.format(base.totals[key]), fmt.format(target.totals[key]),
                     "-" if r is None else f"{r:.2f}x"])
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    lines = ["  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths))) for r in rows]
    lines.insert(1, "-" * len(lines[0]))
    c = base.config
    head = (f"{base.model} on {base.hw} ({c['rows']}x{c['cols']} {c['dataflow'].upper()}, {c['clock_mhz']:g} MHz, "
            f"DRAM {c['dram_gbps']:g} GB/s): {base.precision} vs {target.precision}")
    return head + "\n" + "\n".join(lines)


def to_json(report: RunReport) -> str:
    return json.dumps(report.to_dict(), indent=1)


def to_csv(report: RunReport) -> str:
    buf = io.StringIO()
    rows = [c.to_dict() for c in report.layers]
    writer = csv.DictWriter(buf, fieldnames=list(rows[0]) if rows else ["name"], lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()


def write_atomic(path: str | Path, text: str) -> None:
    """Write via a temp file in the same folder and rename, so a failure leaves no partial file."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent if str(path.parent) else ".", prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def format_accuracy(result: dict) -> str:
    """The accuracy block: FP32 vs quantized metrics, the worst layers by SQNR and the quantization card."""
    q = result.get("quantized")
    card = result.get("card", {})
    bits = f"w{card['weights']['bits']}a{card['activations']['bits']}" if card else "fp32"
    lines = [f"accuracy: {result['model']} on {result['task']} ({result['eval_size']} samples)"]
    if card:
        cal = card["calibration"]
        where = f" on {cal['dataset']} ({cal['size']})" if "dataset" in cal else ""
        lines.append(f"  {card['method']} {bits}, weights {card['weights']['granularity']} symmetric, activations "
                     f"{'symmetric' if card['activations']['symmetric'] else 'asymmetric'} "
                     f"{card['activations']['granularity']}; calibration {cal['method']}{where}; {card['execution']}")
        if card.get("layer_overrides"):
            lines.append("  layer overrides: " + ", ".join(f"{k}={v}" for k, v in card["layer_overrides"].items()))
        if card.get("kept_float"):
            lines.append(f"  kept in float: {', '.join(card['kept_float'])}")
    rows = [["metric", "fp32"] + ([bits, "delta"] if q else [])]
    for key, value in result["fp32"].items():
        row = [key, f"{value:.4f}"]
        if q and key in q:
            row += [f"{q[key]:.4f}", f"{q[key] - value:+.4f}" if np.isfinite(value) else "-"]
        rows.append(row)
    for key in (q or {}):
        if key not in result["fp32"]:
            rows.append([key, "-", f"{q[key]:.4f}", "-"])
    widths = [max(len(r[i]) for r in rows if i < len(r)) for i in range(len(rows[0]))]
    lines += ["  " + "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths)))
              for r in rows]
    if result.get("layers"):
        worst = sorted(result["layers"].items(), key=lambda kv: kv[1]["sqnr_db"])[:5]
        lines.append("  lowest per-layer SQNR (dB): " + ", ".join(f"{n} {v['sqnr_db']:.1f}" for n, v in worst))
        ovf = sum(v["acc_overflows"] for v in result["layers"].values())
        lines.append(f"  accumulator overflows: {ovf}")
    return "\n".join(lines)
