"""Figures for reports (``pip install "accelsim[plot]"``: matplotlib). Each function returns a matplotlib
Figure; :func:`save` writes it as PNG and SVG and returns the PNG bytes (for embedding in HTML).

* :func:`layer_breakdown` — the slowest layers' latency and energy, FP32 beside INT8;
* :func:`roofline` — each GEMM layer at its operational intensity (2·MACs per DRAM byte) and achieved
  rate (2·MACs per second), under the chip's compute roof and DRAM slope;
* :func:`sensitivity` — speed-up and power reduction as one hw assumption moves around its configured value;
* :func:`pareto` — every point of a sweep and its Pareto front.
"""
from __future__ import annotations

import io
from pathlib import Path

from ..errors import AccelsimError


def available() -> bool:
    """matplotlib is installed (reports then draw their plots)."""
    import importlib.util
    return importlib.util.find_spec("matplotlib") is not None


def _plt():
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise AccelsimError('plots need matplotlib: pip install "accelsim[plot]"') from None
    return plt


def save(fig, stem: Path) -> bytes:
    """Write ``stem``.png and ``stem``.svg; return the PNG bytes."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    fig.savefig(stem.with_suffix(".svg"), bbox_inches="tight")
    stem.with_suffix(".png").write_bytes(buf.getvalue())
    _plt().close(fig)
    return buf.getvalue()


def layer_breakdown(fp32, int8, title: str, top: int = 12):
    plt = _plt()
    clock = fp32.config["clock_mhz"] * 1e3      # cycles per ms
    order = sorted(range(len(fp32.layers)), key=lambda i: -fp32.layers[i].cycles)[:top][::-1]
    names = [fp32.layers[i].name[-28:] for i in order]
    fig, axes = plt.subplots(1, 2, figsize=(11, 0.38 * len(order) + 1.6), sharey=True)
    for ax, key, unit, scale in ((axes[0], "cycles", "latency (ms)", 1 / clock), (axes[1], "energy_pj", "energy (µJ)", 1e-6)):
        y = range(len(order))
        ax.barh([v + 0.2 for v in y], [getattr(fp32.layers[i], key) * scale for i in order], 0.4, label="FP32")
        ax.barh([v - 0.2 for v in y], [getattr(int8.layers[i], key) * scale for i in order], 0.4, label="INT8 (w8a8)")
        ax.set_xlabel(unit)
        ax.grid(axis="x", alpha=0.3)
    axes[0].set_yticks(range(len(order)), names, fontsize=8)
    fig.legend(*axes[1].get_legend_handles_labels(), loc="upper right", ncol=2, fontsize=9)
    fig.suptitle(f"{title}: the {len(order)} slowest layers (FP32)", x=0.4)
    return fig


def roofline(report, hw, title: str):
    plt = _plt()
    clock_hz = hw.clock_mhz * 1e6
    rate = max(1.0, max((c.macs_per_pe_cycle for c in report.layers if c.macs), default=1.0))
    peak = 2 * hw.array.rows * hw.array.cols * rate * clock_hz
    bw = hw.memory.dram.bandwidth(hw.clock_mhz) * clock_hz
    pts = [(2 * c.macs / max(c.dram_bytes, 1), 2 * c.macs / (c.cycles / clock_hz), c.bound == "memory")
           for c in report.layers if c.macs and c.cycles]
    fig, ax = plt.subplots(figsize=(7, 4.6))
    xs = [p[0] for p in pts]
    lo, hi = min(xs + [1.0]) / 2, max(xs + [peak / bw]) * 2
    ax.plot([lo, peak / bw, hi], [bw * lo, peak, peak], "k-", lw=1.5, label=f"roof: {peak / 1e12:.2f} TOPS, {bw / 1e9:.0f} GB/s")
    for flag, colour, label in ((False, "tab:blue", "compute-bound layer"), (True, "tab:red", "memory-bound layer")):
        sel = [p for p in pts if p[2] == flag]
        ax.scatter([p[0] for p in sel], [p[1] for p in sel], s=14, c=colour, label=label, alpha=0.8)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("operational intensity (ops per DRAM byte)")
    ax.set_ylabel("achieved ops/s")
    ax.set_title(f"{title}: {report.precision} layers on the roofline")
    ax.grid(which="both", alpha=0.2)
    ax.legend(fontsize=8, loc="lower right")
    return fig


AXES = {"latency_ms": "latency (ms)", "energy_mj": "energy per inference (mJ)", "area_mm2": "area (mm²)",
        "avg_power_w": "average power (W)"}


def sensitivity(rows: list, title: str):
    """One panel per assumption (``reporting.sensitivity.Row``); a dotted line marks the configured value."""
    plt = _plt()
    fig, axes = plt.subplots(1, len(rows), figsize=(3.3 * len(rows), 3.3), squeeze=False)
    for ax, row in zip(axes[0], rows):
        xs = [p[0] for p in row.points]
        ax.plot(xs, [p[1] for p in row.points], "o-", label="speed-up FP32→INT8")
        ax.axvline(xs[row.configured_index], color="grey", ls=":", lw=1.2, label="configured")
        ax.set_xscale("log", base=2)
        ax.set_xticks(xs, [f"{x:g}" for x in xs], fontsize=8)
        ax.minorticks_off()
        ax.set_xlabel(row.assumption.label.replace("rows × cols", "rows; cols scaled alike"), fontsize=9)
        ax.set_ylabel("speed-up (×)", fontsize=9)
        ax.grid(alpha=0.3)
        twin = ax.twinx()
        twin.plot(xs, [100 * p[2] for p in row.points], "s--", color="tab:orange", label="power reduction (flat out)")
        twin.set_ylabel("power reduction (%)", fontsize=9, color="tab:orange")
        for axis in (ax, twin):
            axis.ticklabel_format(axis="y", useOffset=False)
    fig.suptitle(f"{title}: how the INT8 gains move with one assumption at a time (¼× to 4× of the configured value)")
    fig.tight_layout()
    return fig


def pareto(result, x: str, y: str, title: str):
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 4.6))
    recs = result.records
    front = list(result.front)
    series = sorted({str(r.get("precision", "all")) for r in recs})
    for prec, marker in zip(series, "os^vD<>p*hx+"):
        sel = [i for i, r in enumerate(recs) if str(r.get("precision", "all")) == prec]
        ax.scatter([recs[i][x] for i in sel], [recs[i][y] for i in sel], marker=marker, s=18, alpha=0.35,
                   label=f"{prec} configs")
    from ..sweep import pareto_front
    ax.scatter([recs[i][x] for i in front], [recs[i][y] for i in front], s=26, facecolors="none", edgecolors="k",
               label=f"on the front over {', '.join(result.objectives)}")
    best = sorted(pareto_front(recs, (x, y)), key=lambda i: recs[i][x])
    ax.plot([recs[i][x] for i in best], [recs[i][y] for i in best], "k-", lw=1, label=f"front over {x}, {y}")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(AXES.get(x, x))
    ax.set_ylabel(AXES.get(y, y))
    ax.set_title(title)
    ax.grid(which="both", alpha=0.2)
    ax.legend(fontsize=8)
    return fig


def bits_tradeoff(records: list[dict], title: str):
    """Accuracy against average bits per parameter and against energy per inference, one point per plan."""
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8), sharey=True)
    for ax, key, label in ((axes[0], "avg_bits", "average bits per parameter"),
                           (axes[1], "energy_mj", "energy per inference (mJ)")):
        ax.scatter([r[key] for r in records], [100 * r["accuracy"] for r in records], s=30)
        for r in records:
            ax.annotate(r["label"], (r[key], 100 * r["accuracy"]), fontsize=7, xytext=(4, 3),
                        textcoords="offset points")
        ax.set_xlabel(label)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("accuracy (%)")
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def batch_curve(rows: list[dict], measured: list[dict], title: str):
    """Throughput against batch (FP32, FP16, W8A8) and the INT8 speed-up over FP16 with measured points."""
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(10.5, 3.8))
    xs = [r["batch"] for r in rows]
    for prec in ("fp32", "fp16", "w8a8"):
        axes[0].plot(xs, [r[f"{prec}_inferences_per_s"] for r in rows], "o-", label=prec.upper())
    axes[0].set_ylabel("inferences per second")
    axes[1].plot(xs, [r["int8_over_fp16"] for r in rows], "o-", label="accelsim INT8 / FP16")
    axes[1].plot(xs, [r["int8_over_fp32"] for r in rows], "s--", label="accelsim INT8 / FP32")
    for m, marker in zip(measured, "D^vP"):
        axes[1].scatter([m["batch"]], [m["ratio"]], marker=marker, s=40, zorder=3, label=f"measured: {m['system']}")
    axes[1].set_ylabel("throughput ratio (×)")
    for ax in axes:
        ax.set_xscale("log", base=2)
        ax.set_xticks(xs, [str(x) for x in xs], fontsize=8)
        ax.minorticks_off()
        ax.set_xlabel("batch")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def predicted_vs_measured(results: list[dict], title: str):
    """One point per model and device on log axes, the line y = x and the 0.5×–2× band."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.4, 5.4))
    values = [v for res in results for r in res["rows"] for v in (r["measured_ms"], r["predicted_ms"])]
    lo, hi = min(values) / 1.5, max(values) * 1.5
    ax.plot([lo, hi], [lo, hi], "k-", lw=1, label="predicted = measured")
    ax.fill_between([lo, hi], [lo / 2, hi / 2], [lo * 2, hi * 2], color="grey", alpha=0.12, label="within 0.5–2×")
    for res, colour in zip(results, ("tab:blue", "tab:orange", "tab:green")):
        for kind, marker in (("model", "o"), ("calibration", "s"), ("host_part", "x")):
            sel = [r for r in res["rows"] if (kind == "calibration") == r["calibration"]
                   and (kind == "host_part") == bool(r["host_part"]) and not (r["calibration"] and r["host_part"])]
            if sel:
                ax.scatter([r["measured_ms"] for r in sel], [r["predicted_ms"] for r in sel], marker=marker, s=30,
                           color=colour, label=f"{res['device']}" + {"model": "", "calibration": " (calibration)",
                                                                        "host_part": " (host CPU part)"}[kind])
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(lo, hi)
    ax.set_ylim(lo, hi)
    ax.set_xlabel("measured latency (ms)")
    ax.set_ylabel("accelsim predicted latency (ms)")
    ax.set_title(title)
    ax.grid(which="both", alpha=0.2)
    ax.legend(fontsize=7, loc="upper left")
    return fig


def decode_roofline(rows: list[dict], title: str):
    """Decode tokens/s against bytes moved per token, one point per (chip, precision), under each chip's
    bandwidth bound tokens/s = bandwidth / bytes per token."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 4.6))
    xs = [r["dram_mb_per_token"] for r in rows]
    lo, hi = min(xs) / 2, max(xs) * 2
    for chip, colour in zip(dict.fromkeys(r["chip"] for r in rows), ("tab:blue", "tab:orange", "tab:green")):
        sel = [r for r in rows if r["chip"] == chip]
        gbps = sel[0]["dram_gbps"]
        ax.plot([lo, hi], [gbps * 1e3 / lo, gbps * 1e3 / hi], "-", color=colour, lw=1,
                label=f"{chip}: bandwidth bound ({gbps:g} GB/s)")
        ax.scatter([r["dram_mb_per_token"] for r in sel], [r["tokens_per_s"] for r in sel], color=colour, s=30)
        for r in sel:
            ax.annotate(r["precision"], (r["dram_mb_per_token"], r["tokens_per_s"]), fontsize=7, xytext=(4, 3),
                        textcoords="offset points")
    ax.set_xscale("log")
    ax.set_yscale("log")
    from matplotlib.ticker import NullFormatter
    ax.xaxis.set_minor_formatter(NullFormatter())           # decade labels only (the minor ones overlap)
    ax.set_xlabel("bytes moved per generated token (MB)")
    ax.set_ylabel("decode tokens per second")
    ax.set_title(title)
    ax.grid(which="both", alpha=0.2)
    ax.legend(fontsize=8)
    return fig
