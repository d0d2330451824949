"""``accelsim report``: the documented examples recomputed, as Markdown and self-contained HTML with plots.

Every accelsim number is recomputed from the models and hw configs at each run; documented and measured
numbers come from reference.yaml (quoted from the project's REFERENCE.md). Files written to OUT:
``report.md``, ``report.html`` (plots embedded) and each plot as PNG and SVG.
"""
from __future__ import annotations

import base64
import html
import time
from pathlib import Path

from ..errors import AccelsimError, one_line
from . import examples as X
from . import plots as P
from . import sensitivity as S

ROWS = [  # (label, key, format, documented key)
    ("model size (MB)", "size_mb", "{:.1f}", None), ("latency (ms)", "latency_ms", "{:.3f}", None),
    ("throughput (inferences/s)", "inferences_per_s", "{:,.1f}", None),
    ("energy per inference (mJ)", "energy_mj", "{:.3f}", None), ("average power, flat out (W)", "avg_power_w", "{:.3f}", None),
    ("power at the fixed rate (W)", "power_at_rate_w", "{:.3f}", None), ("inferences per joule", "inferences_per_j", "{:,.1f}", None),
    ("DRAM traffic (MB)", "dram_mb", "{:.1f}", None), ("array utilization", "array_utilization", "{:.1%}", None),
]
RATIOS = [("size", "size_ratio", "{:.2f}×", "size_ratio"), ("speed-up", "speedup", "{:.2f}×", "speedup"),
          ("energy per inference", "energy_ratio", "{:.2f}× lower", None),
          ("power, flat out", "power_reduction_flat_out", "{:.0%} lower", "power_reduction"),
          ("power at the fixed rate", "power_reduction_at_rate", "{:.0%} lower", "power_reduction")]


def _fmt(fmt: str, v) -> str:
    """A value in ``fmt``; a documented range [lo, hi] as "lo–hi" in the same format."""
    if v is None:
        return "n/a"
    if isinstance(v, (list, tuple)):
        return "–".join(fmt.format(x) for x in v).replace("×–", "–")
    return fmt.format(v)


def build(out: Path, sets=(), with_accuracy: bool = True, eval_size: int | None = None,
          progress=None, with_host: bool = True) -> tuple[Path, Path]:
    """Compute everything and write OUT/report.md and OUT/report.html; return their paths."""
    say = progress or (lambda msg: None)
    out.mkdir(parents=True, exist_ok=True)
    md, images = [f"# accelsim report: the documented examples, recomputed ({time.strftime('%Y-%m-%d %H:%M')})", "",
                  "Documented and measured numbers are quoted from the reference document (REFERENCE.md); "
                  "every accelsim number below was computed by this run from the model and hw config named."], {}
    if sets:
        md.append(f"\nhw overrides for this report: `{' '.join(sets)}`")
    for key, spec in X.reference().items():
        say(f"report: {spec['title']}")
        md += _example(key, spec, sets, out, images, with_accuracy, eval_size, say)
    say("report: measured on silicon (Coral Edge TPU)")
    md += _silicon(out, images)
    say("report: LLM on a phone and a server")
    md += _llm(out, images, sets)
    if with_accuracy:
        say("report: bits vs accuracy vs energy (MNIST CNN)")
        md += _tradeoff(out, images, eval_size)
    if with_host:
        say("report: measuring this machine (ONNX Runtime)")
        md += _host()
    md_path, html_path = out / "report.md", out / "report.html"
    md_path.write_text("\n".join(md) + "\n", encoding="utf-8")
    html_path.write_text(_html("\n".join(md), images), encoding="utf-8")
    return md_path, html_path


def _example(key, spec, sets, out, images, with_accuracy, eval_size, say) -> list[str]:
    c = X.compare(spec, sets)
    hw, doc, r = c["hw"], spec["documented"], c["ratios"]
    md = ["", f"## {spec['title']}", "",
          f"Model `{spec['model']}` on `{hw.name}` ({hw.array.rows}×{hw.array.cols} {hw.array.dataflow.name.upper()}, "
          f"{hw.clock_mhz:g} MHz, DRAM {hw.memory.dram.bandwidth(hw.clock_mhz) * hw.clock_mhz / 1e3:g} GB/s, "
          f"static {hw.energy.leakage_mw:g} mW, FP32 at {hw.pe.float_macs_per_cycle.get('fp32', 0):g} MACs/PE-cycle "
          f"— assumptions stated in its YAML). Fixed rate for power: {spec['fixed_rate_per_s']:g} inferences/s.", "",
          "| metric | accelsim FP32 | accelsim INT8 (w8a8) |", "|---|---|---|"]
    md += [f"| {label} | {_fmt(fmt, c['fp32'][k])} | {_fmt(fmt, c['int8'][k])} |" for label, k, fmt, _ in ROWS]
    md += ["", "| FP32 → INT8 | documented | accelsim |", "|---|---|---|"]
    for label, k, fmt, dk in RATIOS:
        documented = doc.get(dk) if dk else None
        md.append(f"| {label} | {_fmt(fmt, documented)} | {_fmt(fmt, r[k])} |")
    md += ["", f"Documented sizes: {doc['size_fp32_mb']} MB → {doc['size_int8_mb']} MB. Documented accuracy: "
           f"{doc['accuracy']}.", "", "**Which meaning of the power claim the numbers support:**", ""]
    md += [f"- {line}" for line in c["power_meanings"]]
    md += ["", "**What real systems measured:**", ""] + [f"- {m}" for m in spec["measured"]]
    if with_accuracy:
        say(f"report: accuracy proxies for {spec['title']}")
        md += ["", "**Accuracy proxies (real models and data on this machine; ImageNet/ranking-at-scale cannot be "
               "measured here):**", "", "| task | model | samples | metric | FP32 | W8A8 |", "|---|---|---|---|---|---|"]
        try:
            rows = X.accuracy(spec["accuracy_tasks"], eval_size)
        except AccelsimError as exc:       # e.g. the real-model data packages are not installed
            rows = []
            md.append(f"| skipped: {one_line(exc)} | | | | | |")
        for a in rows:
            md.append(f"| {a['task']} | {a['model']} | {a['samples']} | {a['metric']} | {a['fp32']:.4f} | {a['w8a8']:.4f} |")
    say(f"report: plots and sweeps for {spec['title']}")
    curve = X.batch_curve(spec, sets) if "batch_curve" in spec else None
    if curve:
        md += _batch_table(spec, curve)
    sens = X.sensitivity(spec, sets)
    md += [""] + S.markdown(sens)
    if not P.available():
        return md + ["", '_Plots skipped: `pip install "accelsim[plot]"` (matplotlib) to draw them._']
    figs = {f"{key}_layers": lambda: P.layer_breakdown(c["runs"]["fp32"], c["runs"]["w8a8"], spec["title"]),
            f"{key}_roofline": lambda: P.roofline(c["runs"]["w8a8"], hw, spec["title"]),
            f"{key}_sensitivity": lambda: P.sensitivity(sens, spec["title"]),
            f"{key}_pareto": lambda: P.pareto(X.pareto_sweep(spec), "latency_ms", "energy_mj",
                                              f"{spec['title']}: array shape × precision (area is the third objective)")}
    if curve:
        figs[f"{key}_batch"] = lambda: P.batch_curve(curve, spec["batch_curve"]["measured_int8_over_fp16"],
                                                     f"{spec['title']}: throughput against batch")
    md += [""]
    for name, draw in figs.items():
        images[name] = P.save(draw(), out / name)
        md += [f"![{name}]({name}.png)", ""]
    return md


def _batch_table(spec: dict, rows: list[dict]) -> list[str]:
    measured = "; ".join(f"batch {m['batch']}: {m['ratio']:g}× ({m['system']})"
                         for m in spec["batch_curve"]["measured_int8_over_fp16"])
    md = ["", "**Batch** (inferences run together; weights fetched once per batch, or again where the on-chip "
          "buffers force it). Measured INT8/FP16 beside: " + measured + ".", "",
          "| batch | FP32 ms/batch | FP16 ms/batch | W8A8 ms/batch | W8A8 inferences/s | W8A8 weight MB/inference | "
          "INT8/FP16 | INT8/FP32 |", "|---|---|---|---|---|---|---|---|"]
    md += [f"| {r['batch']} | {r['fp32_latency_ms']:.2f} | {r['fp16_latency_ms']:.2f} | {r['w8a8_latency_ms']:.2f} | "
           f"{r['w8a8_inferences_per_s']:,.1f} | {r['w8a8_weight_mb_per_inference']:.2f} | {r['int8_over_fp16']:.2f}× | "
           f"{r['int8_over_fp32']:.2f}× |" for r in rows]
    return md


def _silicon(out: Path, images: dict) -> list[str]:
    """Predicted against measured on the Coral Edge TPU, both boards (accelsim validate)."""
    from .silicon import measurements, validate
    spec = measurements()
    results = [validate(dev) for dev in spec["devices"]]
    md = ["", "## Measured on silicon: the Coral Edge TPU", "",
          f"Measured: {spec['source']} Predicted: `accelsim validate DEVICE` (each model costed by `accelsim run "
          f"MODEL --hw DEVICE --precision {spec['precision']}`; the hw configs name every source and the two fitted "
          f"constants). Calibration models (used for the fit): {', '.join(spec['calibration'])}. Models whose "
          "measured time includes host CPU work are shown but left out of the statistics.", "",
          "| model | " + " | ".join(f"{r['device']} measured (ms) | predicted (ms) | ratio | bound" for r in results)
          + " |", "|---|" + "---|---|---|---|" * len(results)]
    by_model = [{r["model"]: r for r in res["rows"]} for res in results]
    for name in by_model[0]:
        cells = []
        for rows in by_model:
            r = rows[name]
            note = " (calibration)" if r["calibration"] else " (host CPU part)" if r["host_part"] else ""
            cells.append(f"{r['measured_ms']:g} | {r['predicted_ms']:.2f} | {r['ratio']:.2f}{note} | {r['bound']}")
        md.append(f"| {name} | " + " | ".join(cells) + " |")
    md.append("")
    for res in results:
        s = res["statistics"]
        md.append(f"- {res['label']}: {s['models']} models, geomean predicted/measured {s['geomean_ratio']:.3f}, "
                  f"range {s['min_ratio']:.2f}–{s['max_ratio']:.2f}, {s['within_0.5_2']} of {s['models']} within 0.5–2×.")
    if results[0]["not_in_zoo"]:
        md.append(f"- Not in the zoo (not predicted): {', '.join(results[0]['not_in_zoo'])}.")
    if P.available():
        images["silicon"] = P.save(P.predicted_vs_measured(results, "Coral Edge TPU: accelsim against the device"),
                                   out / "silicon")
        md += ["", "![silicon](silicon.png)", ""]
    return md


def _llm(out: Path, images: dict, sets) -> list[str]:
    from . import llm
    rows = llm.runs(sets=sets)
    md = llm.markdown(rows)
    if P.available():
        images["llm_decode"] = P.save(P.decode_roofline(rows, f"{llm.MODEL} decode: tokens/s against bytes per token"),
                                      out / "llm_decode")
        md += ["", "![llm_decode](llm_decode.png)", ""]
    return md


def _host() -> list[str]:
    import importlib.util
    md = ["", "## Measured on this machine (simulator ≠ device)", ""]
    if not all(importlib.util.find_spec(m) for m in ("onnx", "onnxruntime")):
        return md + ['_Skipped: `pip install "accelsim[onnx,fast]"` (onnx, onnxruntime) to measure the host._']
    from . import host
    md += ["ONNX Runtime on this CPU (batch 1, 2 threads, median of 30 runs; FP32 export and accelsim's W8A8 "
           "plan exported as QDQ) next to accelsim's estimate for `host_cpu.yaml` (this CPU as a 16×16 "
           "output-stationary array; assumptions in the YAML). Host timings vary with the machine's load.", "",
           "| model | host FP32 (ms) | host INT8 (ms) | host speed-up | accelsim FP32 (ms) | accelsim INT8 (ms) | "
           "accelsim speed-up |", "|---|---|---|---|---|---|---|"]
    for name in host.MODELS:
        r = host.measure(name)
        md.append(f"| {name} | {r['host_ms']['fp32']:.3f} | {r['host_ms']['w8a8']:.3f} | {r['host_speedup']:.2f}× | "
                  f"{r['accelsim_ms']['fp32']:.3f} | {r['accelsim_ms']['w8a8']:.3f} | {r['accelsim_speedup']:.2f}× |")
    return md


def _tradeoff(out: Path, images: dict, eval_size) -> list[str]:
    md = ["", "## Bits, accuracy and energy on a real model (MNIST CNN on `edge`)", ""]
    try:
        recs = X.bits_tradeoff("edge", eval_size)
    except AccelsimError as exc:           # e.g. the MNIST data package is not installed
        return md + [f"_Skipped: {one_line(exc)}_"]
    md += ["| plan | avg bits/param | accuracy | energy (mJ) | latency (ms) |", "|---|---|---|---|---|"]
    md += [f"| {r['label']} | {r['avg_bits']:.2f} | {r['accuracy']:.4f} | {r['energy_mj']:.5f} | {r['latency_ms']:.4f} |"
           for r in recs]
    if not P.available():
        return md
    images["mnist_bits"] = P.save(P.bits_tradeoff(recs, "MNIST CNN on edge: accuracy against bits and energy"),
                                  out / "mnist_bits")
    return md + ["", "![mnist_bits](mnist_bits.png)", ""]


def _html(markdown: str, images: dict) -> str:
    """A small Markdown subset (headings, tables, lists, bold, code, images) as one self-contained page."""
    body, table = [], []

    def inline(text: str) -> str:
        text = html.escape(text)
        parts = text.split("**")
        text = "".join(f"<b>{p}</b>" if i % 2 else p for i, p in enumerate(parts))
        parts = text.split("`")
        return "".join(f"<code>{p}</code>" if i % 2 else p for i, p in enumerate(parts))

    def flush():
        if table:
            rows = [r for r in table if not set(r.replace("|", "").strip()) <= set("-: ")]
            cells = [[inline(x.strip()) for x in r.strip().strip("|").split("|")] for r in rows]
            head = "".join(f"<th>{x}</th>" for x in cells[0])
            rest = "".join("<tr>" + "".join(f"<td>{x}</td>" for x in row) + "</tr>" for row in cells[1:])
            body.append(f"<table><tr>{head}</tr>{rest}</table>")
            table.clear()

    for line in markdown.splitlines():
        if line.startswith("|"):
            table.append(line)
            continue
        flush()
        if line.startswith("![") and "](" in line:
            name = line[2:line.index("]")]
            data = base64.b64encode(images[name]).decode()
            body.append(f'<p><img alt="{html.escape(name)}" src="data:image/png;base64,{data}"></p>')
        elif line.startswith("#"):
            level = len(line) - len(line.lstrip("#"))
            body.append(f"<h{level}>{inline(line[level:].strip())}</h{level}>")
        elif line.startswith("- "):
            body.append(f"<ul><li>{inline(line[2:])}</li></ul>")
        elif line.strip():
            body.append(f"<p>{inline(line)}</p>")
    flush()
    style = ("body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}"
             "table{border-collapse:collapse;margin:0.6em 0}td,th{border:1px solid #bbb;padding:3px 9px;"
             "text-align:right}td:first-child,th:first-child{text-align:left}th{background:#eee}"
             "img{max-width:100%}code{background:#f3f3f3;padding:0 3px}ul{margin:0.2em 0}")
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>accelsim report</title><style>{style}</style>"
            f"</head><body>{''.join(body)}</body></html>")
