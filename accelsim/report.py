"""Render a RunReport: a per-layer terminal table, JSON and CSV (written atomically: no partial files).

**Result rules**, applied before anything is written or printed (:func:`checked`): every number is finite and
non-negative, and every utilization or mapping efficiency is at most 1. A value that breaks a rule cannot be
trusted; it becomes ``null`` in JSON (an empty CSV cell, ``n/a`` or ``-`` in text) and ``not_computed`` maps its
path to the reason. JSON never holds NaN or Infinity (:func:`json_text`).
"""
from __future__ import annotations

import csv
import io
import json
import math
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


RATIO_KEYS = ("utilization", "array_utilization", "mapping_efficiency")


def _broken(value, key, nonneg: bool) -> str | None:
    if not math.isfinite(value):
        return f"not a finite number ({value})"
    if nonneg and value < 0:
        return f"negative ({value:g})"
    if key in RATIO_KEYS and value > 1:
        return f"a ratio above 1 ({value!r})"
    return None


def checked(data, nonneg: bool = True):
    """``data`` (nested dicts/lists of results) with every number that breaks the result rules (module
    docstring; ``nonneg=False`` checks finiteness only) replaced by None, numpy scalars made Python numbers, and
    a top-level ``not_computed`` {path: reason} when anything was replaced."""
    reasons: dict[str, str] = {}

    def walk(x, path: str, key):
        if isinstance(x, dict):   # improvement ratios (compare) may exceed 1: only the first two rules apply
            return {k: walk(v, f"{path}.{k}" if path else str(k), None if key == "ratios" else k)
                    for k, v in x.items()}
        if isinstance(x, (list, tuple)):
            return [walk(v, f"{path}[{i}]", key) for i, v in enumerate(x)]
        if isinstance(x, np.generic):
            x = x.item()
        if isinstance(x, bool) or not isinstance(x, (int, float)):
            return x
        why = _broken(x, key, nonneg)
        if why:
            reasons[path] = why
            return None
        return x

    out = walk(data, "", None)
    if reasons and isinstance(out, dict):
        out["not_computed"] = {**out.get("not_computed", {}), **reasons}
    return out


def json_text(data, nonneg: bool = True) -> str:
    """JSON of :func:`checked` data; ``allow_nan=False`` guarantees that no NaN/Infinity is ever written."""
    return json.dumps(checked(data, nonneg), indent=1, allow_nan=False)


def _num(value, spec: str) -> str:
    return "n/a" if value is None else format(value, spec)


def _cell(fmt: str, value) -> str:
    if value is None:
        return "-"
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
    dicts = checked(report.to_dict())["layers"]
    layers = [d for c, d in zip(report.layers, dicts) if c.cycles or c.macs or c.bound != "none" and c.bound != "fused"]
    shown = layers if max_rows is None or len(layers) <= max_rows else layers[:max_rows]
    for d in shown:
        rows.append([_cell(fmt, d[key]) if d[key] or key in ("name", "op") else "-" for _, key, fmt in COLUMNS])
    widths = [max(len(r[i]) for r in rows) for i in range(len(COLUMNS))]
    lines = ["  ".join(c.ljust(w) if i < 3 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths))) for r in rows]
    lines.insert(1, "-" * len(lines[0]))
    if len(shown) < len(layers):
        lines.append(f"... {len(layers) - len(shown)} more layers (see --json/--csv)")
    return "\n".join(lines) + "\n\n" + format_totals(report)


def format_totals(report: RunReport) -> str:
    d = checked(report.to_dict())
    t, c = d["totals"], d["config"]
    util = None if t["array_utilization"] is None else t["array_utilization"] * 100
    lines = [
        f"model {report.model} on {report.hw} ({c['rows']}x{c['cols']} {c['dataflow'].upper()}, "
        f"{_num(c['clock_mhz'], 'g')} MHz), precision {report.precision}",
        f"  layers {t['layers']}, params {_num(t['params'], ',')} ({_num(t['model_size_mb'], '.2f')} MB), "
        f"MACs {_num(t['macs'], ',')}",
        f"  cycles {_num(t['cycles'], ',')} (array {_num(t['compute_cycles'], ',')} + vector "
        f"{_num(t['vector_cycles'], ',')}); SCALE-Sim-compatible array cycles {_num(t['scalesim_cycles'], ',')}",
        f"  latency {_num(t['latency_ms'], '.3f')} ms ({_num(t['inferences_per_s'], '.1f')} inf/s), array utilization "
        f"{_num(util, '.1f')}%, stalls {_num(t['stall_cycles'], ',')} cycles, "
        f"{t['memory_bound_layers']} memory-bound layers",
        f"  DRAM {_num(t['dram_mb'], '.2f')} MB; energy {_num(t['energy_mj'], '.3f')} mJ/inference ("
        + ", ".join(f"{k} {_num(v, '.3f')}" for k, v in t["energy_breakdown_mj"].items())
        + f"); average power {_num(t['avg_power_w'], '.3f')} W; {_num(t['inferences_per_j'], '.1f')} inferences/J",
    ]
    if t.get("batch", 1) > 1:
        lines.append(f"  batch {t['batch']}: latency is per batch; energy, DRAM and weights are per inference "
                     f"({_num(t['batch_energy_mj'], '.3f')} mJ per batch)")
    if t.get("resident_weight_mb") or c.get("activation_placement") == "live":
        lines.append(f"  weights held on chip {_num(t['resident_weight_mb'], '.2f')} MB, streamed "
                     f"{_num(t['streamed_weight_mb'], '.2f')} MB per inference; activations: "
                     f"{c['on_chip_activations']}")
    if d.get("not_computed"):
        nc = list(d["not_computed"].items())
        lines.append(f"  not computed ({len(nc)}): " + "; ".join(f"{k}: {v}" for k, v in nc[:3])
                     + (" ..." if len(nc) > 3 else ""))
    return "\n".join(lines)


PHASE_ROWS = [  # the decoder phases (accelsim.sim.phases totals), as COMPARE_ROWS
    ("model size (MB)", "model_size_mb", "{:.2f}", False), ("time to first token (ms)", "prefill_ms", "{:.3f}", False),
    ("decode (ms per token)", "decode_ms_per_token", "{:.3f}", False), ("tokens per second", "tokens_per_s", "{:.1f}", True),
    ("energy per token (mJ)", "energy_per_token_mj", "{:.4f}", False),
    ("weights per token (MB)", "weight_mb_per_token", "{:.3f}", False),
    ("KV cache per token (MB)", "kv_mb_per_token", "{:.3f}", False),
    ("DRAM per token (MB)", "dram_mb_per_token", "{:.3f}", False),
]


def ratios(base_totals: dict, target_totals: dict, rows=COMPARE_ROWS) -> dict:
    """Improvement of target over baseline per row key: baseline/target for costs, target/baseline where higher
    is better (None where either is missing or zero)."""
    out = {}
    for _, key, _, higher_better in rows:
        b, t = base_totals.get(key), target_totals.get(key)
        num, den = (t, b) if higher_better else (b, t)
        out[key] = num / den if num is not None and den else None
    return out


def compare_dict(base: RunReport, target: RunReport) -> dict:
    """Both runs' totals and the ratios baseline/target (or target/baseline where higher is better)."""
    bt, tt = checked(base.totals), checked(target.totals)
    return {"model": base.model, "hw": base.hw, "baseline": base.precision, "target": target.precision,
            "baseline_totals": bt, "target_totals": tt, "ratios": ratios(bt, tt),
            "ratio_meaning": "improvement factor of target over baseline (>1 = better): baseline/target for "
                             "costs, target/baseline for throughput, inferences/J and utilization"}


def ratio_table(names: tuple[str, str], base_totals: dict, target_totals: dict, rows=COMPARE_ROWS) -> str:
    """The side-by-side table of two runs' totals with the improvement factors."""
    r = ratios(base_totals, target_totals, rows)
    table = [["metric", *names, "improvement"]]
    for label, key, fmt, _ in rows:
        table.append([label, _cell(fmt, base_totals.get(key)), _cell(fmt, target_totals.get(key)),
                      "-" if r[key] is None else f"{r[key]:.2f}x"])
    widths = [max(len(row[i]) for row in table) for i in range(4)]
    lines = ["  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths)))
             for row in table]
    lines.insert(1, "-" * len(lines[0]))
    return "\n".join(lines)


def format_compare(base: RunReport, target: RunReport) -> str:
    d = compare_dict(base, target)
    c = base.config
    head = (f"{base.model} on {base.hw} ({c['rows']}x{c['cols']} {c['dataflow'].upper()}, {c['clock_mhz']:g} MHz, "
            f"DRAM {c['dram_gbps']:g} GB/s): {base.precision} vs {target.precision}")
    return head + "\n" + ratio_table((base.precision, target.precision), d["baseline_totals"], d["target_totals"])


def to_json(report: RunReport, extra: dict | None = None) -> str:
    """The report (plus ``extra`` top-level entries, e.g. the accuracy block, checked for finiteness only)."""
    d = checked(report.to_dict())
    if extra:
        more = checked(extra, nonneg=False)
        d = {**d, **{k: v for k, v in more.items() if k != "not_computed"},
             "not_computed": {**d.get("not_computed", {}), **more.get("not_computed", {})}}
        if not d["not_computed"]:
            del d["not_computed"]
    return json.dumps(d, indent=1, allow_nan=False)


def to_csv(report: RunReport) -> str:
    buf = io.StringIO()
    rows = [{k: v for k, v in row.items() if not isinstance(v, (dict, list))}   # per-level records: JSON only
            for row in checked(report.to_dict())["layers"]]
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


def format_breakdown(report: RunReport) -> str:
    """Per memory level (PEs outwards) and operand: bytes read and written, energy and stall cycles."""
    levels = checked(report.to_dict())["totals"]["memory_levels"]
    head = f"{'memory level':16} {'operand':8} {'read MB':>11} {'write MB':>11} {'energy mJ':>11} {'stall cycles':>14}"
    lines = [head, "-" * len(head)]
    for name, lv in levels.items():
        ops = list(lv["operands"].items()) or [("-", {"read_bytes": 0, "write_bytes": 0})]
        for i, (op, t) in enumerate(ops):
            tail = (f" {_num(lv['energy_mj'], '11.4f')} {_num(lv['stall_cycles'], '14,')}" if i == 0 else "")
            lines.append(f"{name if i == 0 else '':16} {op:8} {_num(_mb(t['read_bytes']), '11.3f')} "
                         f"{_num(_mb(t['write_bytes']), '11.3f')}{tail}")
    return "\n".join(lines)


def format_phases(totals: dict) -> str:
    """The phase totals of a decoder LLM (:mod:`accelsim.sim.phases`)."""
    t = checked(totals)
    lines = [f"prefill: {_num(t['prefill_ms'], '.3f')} ms to the first token (batch {t['batch']}), "
             f"{_num(t['prefill_energy_mj'], '.3f')} mJ"]
    if t["decode_tokens"]:
        lines += [f"decode: {t['decode_tokens']} tokens, {_num(t['decode_ms_per_token'], '.3f')} ms per token, "
                  f"{_num(t['tokens_per_s'], ',.1f')} tokens/s (bandwidth bound "
                  f"{_num(t['decode_bound_tokens_per_s'], ',.1f')}), {_num(t['energy_per_token_mj'], '.4f')} mJ per token",
                  f"per token: weights {_num(t['weight_mb_per_token'], '.3f')} MB, KV cache "
                  f"{_num(t['kv_mb_per_token'], '.3f')} MB, DRAM {_num(t['dram_mb_per_token'], '.3f')} MB; KV cache "
                  f"{_num(t['kv_cache_mb'], '.3f')} MB after the last token; total {_num(t['total_ms'], '.3f')} ms"]
    return "\n".join(lines)


def format_weights(report: RunReport) -> str:
    """Per layer with weights: bytes held on chip across inferences and bytes streamed in during the run."""
    d = checked(report.to_dict())
    rows = [c for c in d["layers"] if c["resident_weight_bytes"] or c["streamed_weight_bytes"]]
    t = d["totals"]
    head = f"{'layer (weights)':32} {'held on chip KB':>16} {'streamed KB':>12}"
    lines = [head, "-" * len(head)]
    lines += [f"{c['name'][-32:]:32} {_num(_kb(c['resident_weight_bytes']), '16,.1f')} "
              f"{_num(_kb(c['streamed_weight_bytes']), '12,.1f')}" for c in rows]
    lines.append(f"{'total (MB; streamed per inference)':32} {_num(t['resident_weight_mb'], '16.3f')} "
                 f"{_num(t['streamed_weight_mb'], '12.3f')}")
    return "\n".join(lines)


def _kb(value):
    return None if value is None else value / 1e3


def _mb(value):
    return None if value is None else value / 1e6
