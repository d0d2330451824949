"""The report's sensitivity table: how the FP32 → INT8 speed-up and power reduction move when one hw
assumption moves alone, over a range derived from the config's own value.

Each assumption is swept over ``configured · f`` for ``f`` in :data:`FACTORS` (¼× … 4×), so a 17 GB/s phone and
a 900 GB/s server are each bracketed around their own value (a fixed list of absolute values would leave the
server's configured point outside its own range). The array is scaled in both dimensions at once
(``rows · f × cols · f``, rounded, at least 1), keeping its aspect ratio. An assumption whose configured value
is 0 or absent (no static power, no FP32 mode) has no range to scale and is left out.

Per point: ``speed-up = latency(fp32) / latency(w8a8)`` and ``power reduction = 1 − P(w8a8) / P(fp32)``
(average power running flat out), both from one sweep over ``{field: values, precision: [fp32, w8a8]}``.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..config.hw import HWConfig
from ..sweep import sweep

#: multiples of the configured value that every assumption is swept over (1 = the configured value itself)
FACTORS = (0.25, 0.5, 1.0, 2.0, 4.0)


@dataclass(frozen=True)
class Assumption:
    """One swept hw field: its path (what ``--set`` and the sweep take), label and configured value."""
    path: str
    label: str
    configured: float
    paired: str | None = None      # a second path set to the same multiple (array.cols with array.rows)
    paired_value: float = 0.0


@dataclass(frozen=True)
class Row:
    """The sweep of one assumption; ``points[i] = (value, speed-up, power reduction)`` at ``FACTORS[i]``."""
    assumption: Assumption
    points: tuple[tuple[float, float, float], ...]

    @property
    def configured_index(self) -> int:
        return FACTORS.index(1.0)


def _dram(data: dict, hw: HWConfig) -> Assumption | None:
    """DRAM bandwidth: the shorthand ``memory.dram_gbps`` or the DRAM level's own ``gbps``/``bytes_per_cycle``."""
    memory = data.get("memory", {})
    if "dram_gbps" in memory:
        return Assumption("memory.dram_gbps", "DRAM bandwidth (GB/s)", float(memory["dram_gbps"]))
    level = hw.memory.dram
    for key, unit in (("gbps", "GB/s"), ("bytes_per_cycle", "bytes/cycle")):
        value = getattr(level, key, None)
        if value:
            return Assumption(f"memory.{level.name}.{key}", f"DRAM bandwidth ({unit})", float(value))
    return None


def assumptions(data: dict, hw: HWConfig) -> list[Assumption]:
    """The swept assumptions of one config (``data`` its YAML mapping, ``hw`` the same, validated)."""
    found = [
        _dram(data, hw),
        Assumption("pe.float_macs_per_cycle.fp32", "FP32 MACs per PE-cycle",
                   float(hw.pe.float_macs_per_cycle.get("fp32", 0.0))),
        Assumption("energy.leakage_mw", "static power (mW)", float(hw.energy.leakage_mw)),
        Assumption("array.rows", "array size (rows × cols)", float(hw.array.rows), "array.cols", float(hw.array.cols)),
    ]
    return [a for a in found if a is not None and a.configured > 0]


def values(a: Assumption) -> list:
    """The swept values of ``a``: ``configured · f`` (array dimensions rounded to whole PEs, at least 1)."""
    if a.paired:
        return [max(1, round(a.configured * f)) for f in FACTORS]
    return [a.configured * f for f in FACTORS]


def sensitivity(model, data: dict, hw: HWConfig) -> list[Row]:
    """Speed-up (FP32/INT8 latency) and power reduction (flat out) of ``model`` as each assumption of ``hw``
    moves alone over :data:`FACTORS` times its configured value (module docstring)."""
    rows = []
    for a in assumptions(data, hw):
        xs = values(a)
        grid = {a.path: xs, "precision": ["fp32", "w8a8"]}
        if a.paired:
            grid[a.paired] = [max(1, round(a.paired_value * f)) for f in FACTORS]
        records = sweep(model, data, grid, objectives=("latency_ms", "energy_mj")).records
        if a.paired:    # the product grid holds every rows × cols pair; keep the ones scaled by one factor
            pairs = set(zip(xs, grid[a.paired]))
            records = [r for r in records if (r[a.path], r[a.paired]) in pairs]
        by = {(r[a.path], r["precision"]): r for r in records}
        rows.append(Row(a, tuple((x, by[x, "fp32"]["latency_ms"] / by[x, "w8a8"]["latency_ms"],
                                  1 - by[x, "w8a8"]["avg_power_w"] / by[x, "fp32"]["avg_power_w"]) for x in xs)))
    return rows


def value_text(row: Row, value) -> str:
    """A swept value as the table prints it (``64×64`` for the array)."""
    a = row.assumption
    if a.paired:
        i = values(a).index(value)
        return f"{value}×{max(1, round(a.paired_value * FACTORS[i]))}"
    return f"{value:g}"


def markdown(rows: list[Row]) -> list[str]:
    """The table: one row per assumption, the configured value and its results in bold."""
    md = ["**Sensitivity (one assumption at a time, ¼× to 4× of the config's own value, which is in bold; "
          "the rest as in the hw config):**", "",
          "| assumption | values | speed-up FP32→INT8 | power reduction, flat out |", "|---|---|---|---|"]
    for row in rows:
        def cells(texts):
            return ", ".join(f"**{t}**" if i == row.configured_index else t for i, t in enumerate(texts))
        md.append(f"| {row.assumption.label} | {cells([value_text(row, p[0]) for p in row.points])} | "
                  f"{cells([f'{p[1]:.2f}×' for p in row.points])} | {cells([f'{p[2]:.0%}' for p in row.points])} |")
    return md
