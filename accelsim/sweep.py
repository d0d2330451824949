"""Design-space sweeps: a grid of hw fields × precisions × per-layer plans, costed by the one cost model, and
the Pareto front over chosen objectives.

``sweep(model, hw, grid={"array.rows": [16, 32], "memory.sram_2MB.size_kib": [512, 2048],
"precision": ["w8a8", "w4a8"], "batch": [1, 8]})`` expands the grid (a Cartesian product, first key outermost) and returns a
:class:`SweepResult`: one record per point, holding its grid values under their paths and its results under
the names ``RunReport.totals`` uses (``latency_ms``, ``energy_mj`` ...), plus ``area_mm2`` (:mod:`accelsim.hw.area`)
and ``accuracy`` when ``eval`` names a task.

How it is fast without a second cost model: points that share everything but numbers (dataflow, grouped
mapping, memory level structure, activation placement, timing switches, precision, plan, batch) form a group;
the group becomes one config whose numeric grid fields are numpy arrays, validated by ``HWConfig.from_dict``
(every element checked as a file's value would be), and :func:`accelsim.sim.engine.simulate` runs once for the
group — the engine is written over :mod:`accelsim.hw.xp`, so the same code costs one configuration or ten
thousand. Every numeric hw field can be such an array, in any combination. A numeric field that shapes the
config instead (``pe.base_bits``: which operand widths the PE runs, :data:`BY_VALUE`) is costed like a
categorical one, one pass per value; so is any field whose array pass fails (a probe with two configurations
finds it before the sweep starts). Both are named in ``SweepResult.fallbacks`` (the ``sweep`` command prints
them). Records equal single ``simulate`` calls exactly (tested).

Chunks of points run on any ``concurrent.futures.Executor`` (``executor=``), e.g. a Dask
``Client(...).get_executor()``; results come back in grid order. Accuracy depends only on the quantization
(precision and plan), so it is computed once per distinct pair and cached.
"""
from __future__ import annotations

import copy
import copyreg
import itertools
import math
import sys
import types
from dataclasses import dataclass, field
from operator import itemgetter
from pathlib import Path
from types import MappingProxyType
from typing import Callable, Mapping

import numpy as np

from .config.hw import HWConfig
from .config.loader import hw_fields, load_model, set_path
from .errors import AccelsimError, ConfigError
from .graph import Model
from .hw.area import area_mm2
from .sim.engine import check_batch, simulate

# Models and configs hold read-only mappings; let them cross process boundaries with plain pickle
# (ProcessPoolExecutor). Dask uses cloudpickle, which needs nothing.
def _readonly(d: dict) -> MappingProxyType:
    return MappingProxyType(d)


copyreg.pickle(MappingProxyType, lambda m: (_readonly, (dict(m),)))

SPECIAL = ("precision", "plan", "batch")
#: numeric hw fields that shape the config, so each value is costed in its own pass (path → why)
BY_VALUE = MappingProxyType({"pe.base_bits": "it sets which operand widths the PE runs (pe.int_bits, rates)"})
#: objectives where higher is better (every other one is minimized)
MAXIMIZE = frozenset({"accuracy", "inferences_per_s", "inferences_per_j", "array_utilization"})
RESULTS = ("latency_ms", "energy_mj", "avg_power_w", "inferences_per_s", "inferences_per_j", "dram_mb",
           "cycles", "stall_cycles", "array_utilization", "model_size_mb")
MAX_POINTS = 10_000_000


@dataclass(frozen=True)
class SweepResult:
    records: list[dict]
    objectives: tuple[str, ...]
    front: tuple[int, ...]          # indices of the Pareto-optimal records, in grid order
    #: numeric grid fields costed one pass per value instead of as arrays (path → why; module docstring)
    fallbacks: Mapping[str, str] = field(default_factory=dict)

    def pareto(self) -> list[dict]:
        return [self.records[i] for i in self.front]

    def to_frame(self):
        """The records as a pandas DataFrame (``pip install pandas``)."""
        try:
            import pandas as pd
        except ImportError:
            raise ConfigError(["pandas is not installed: pip install pandas (or use SweepResult.records)"]) from None
        return pd.DataFrame.from_records(self.records)


def sweep(model: Model | str | Path, hw: HWConfig | str | Path | Mapping, grid: Mapping[str, list],
          objectives=("latency_ms", "energy_mj", "area_mm2"), precision: str = "w8a8", eval: str | None = None,
          executor=None, chunk_size: int = 4096, progress: Callable[[int, int], None] | None = None,
          force: bool = False, done: Mapping[int, list] | None = None,
          on_chunk: Callable[[int, list], None] | None = None,
          on_fallback: Callable[[str, str], None] | None = None) -> SweepResult:
    """Cost every point of ``grid`` (module docstring). ``model``: a bundled name, a path or a loaded Model;
    ``hw``: a bundled name, a path, a loaded HWConfig or a mapping of hw fields (the grid varies its fields).

    ``executor``: any ``concurrent.futures.Executor`` (chunks of ``chunk_size`` points are submitted and
    collected in grid order). ``done``: chunk index → records already computed (a resumed sweep);
    ``on_chunk(index, records)`` is called as each new chunk finishes; ``on_fallback(path, why)`` once per
    numeric field costed one pass per value, before costing starts (also in ``SweepResult.fallbacks``)."""
    model, base = load_model(model), hw_fields(hw)
    paths, points = expand(grid, force)
    objectives = tuple(objectives)
    check_objectives(objectives, eval)
    chunks = [points[i:i + chunk_size] for i in range(0, len(points), chunk_size)]
    done = dict(done or {})
    by_value = costed_by_value(model, base, paths, points, precision) if len(done) < len(chunks) else {}
    for path, why in by_value.items():
        if on_fallback:
            on_fallback(path, why)
    if executor is None:
        pending = {i: None for i in range(len(chunks)) if i not in done}
    else:
        pending = {i: executor.submit(evaluate_points, model, base, paths, chunks[i], precision, by_value)
                   for i in range(len(chunks)) if i not in done}
    records: list[dict] = []
    for i, chunk in enumerate(chunks):
        if i in done:
            part = done[i]
        else:
            part = (evaluate_points(model, base, paths, chunk, precision, by_value) if executor is None
                    else pending[i].result())
            if on_chunk:
                on_chunk(i, part)
        records += part
        if progress:
            progress(len(records), len(points))
    if eval is not None:
        _add_accuracy(records, model, eval)
    return SweepResult(records, objectives, pareto_front(records, objectives), by_value)


def expand(grid: Mapping[str, list], force: bool = False) -> tuple[list[str], list[tuple]]:
    """Grid → (paths, points); ConfigError for an empty grid or axis, or more than MAX_POINTS without force."""
    if not isinstance(grid, Mapping) or not grid:
        raise ConfigError(["sweep.grid: expected a non-empty mapping of field path → list of values"])
    problems = [f"sweep.grid.{k}: expected a non-empty list of values, got {v!r}"[:200]
                for k, v in grid.items() if not isinstance(v, (list, tuple)) or not v]
    if problems:
        raise ConfigError(problems)
    size = math.prod(len(v) for v in grid.values())
    if size > MAX_POINTS and not force:
        raise ConfigError([f"sweep.grid: {size:,} points exceed {MAX_POINTS:,}; narrow the grid or pass --force"])
    paths = [str(k) for k in grid]
    return paths, list(itertools.product(*grid.values()))


def check_objectives(objectives, eval) -> None:
    known = set(RESULTS) | {"area_mm2"} | ({"accuracy"} if eval else set())
    bad = [o for o in objectives if o not in known]
    if bad or not objectives:
        raise ConfigError([f"sweep.objectives: expected names from {', '.join(sorted(known))}, got "
                           f"{', '.join(map(str, bad)) or 'none'}"])


def _numeric(paths: list[str], points: list[tuple]) -> list[int]:
    """Indices of the grid fields whose values are all numbers (booleans are switches: categorical)."""
    return [i for i, p in enumerate(paths) if p not in SPECIAL and
            all(issubclass(t, (int, float)) and not issubclass(t, bool) for t in {type(pt[i]) for pt in points})]


def costed_by_value(model: Model, base: dict, paths: list[str], points: list[tuple], precision: str) -> dict:
    """Numeric grid fields to cost one pass per value (path → why): those in :data:`BY_VALUE`, and those an
    array pass cannot take — found by costing the first point with the numeric fields as two-element arrays
    (their first two values), all together and, if that fails, one at a time. Errors of the point itself
    (a ConfigError, an unsupported precision) are left to the sweep to report."""
    numeric = [i for i in _numeric(paths, points) if _bare(paths[i]) not in BY_VALUE]
    out = {paths[i]: f"{BY_VALUE[_bare(paths[i])]}: costed one pass per value" for i in _numeric(paths, points)
           if _bare(paths[i]) in BY_VALUE}
    if not numeric:
        return out
    first = dict(zip(paths, points[0]))
    pairs = {i: _two(pt[i] for pt in points) for i in numeric}

    def fails(fields: list[int]) -> str | None:
        values = first | {paths[i]: pairs[i] for i in fields}
        try:
            simulate(model, _config(base, values), str(values.get("precision", precision)),
                     _plan(model, values.get("plan")), batch=check_batch(values.get("batch", 1)))
        except AccelsimError:
            return None
        except (TypeError, ValueError, IndexError, KeyError, AttributeError) as exc:
            return f"{type(exc).__name__}: {str(exc)[:120]}"
        return None

    if fails(numeric) is None:
        return out
    for i in numeric:
        why = fails([i])
        if why is not None:
            out[paths[i]] = f"the cost model cannot take it as an array ({why}): costed one pass per value"
    return out


def _two(values) -> np.ndarray:
    """The first two distinct values (one value twice if there is only one), as the array pass would hold them."""
    distinct = list(dict.fromkeys(values))
    return np.array((distinct + distinct)[:2])


def _bare(path: str) -> str:
    return path[3:] if path.startswith("hw.") else path


def evaluate_points(model: Model, base: dict, paths: list[str], points: list[tuple], precision: str,
                    by_value: Mapping[str, str] | None = None) -> list[dict]:
    """Records for ``points`` (grid order), each group of structurally equal configs costed in one pass;
    ``by_value``: numeric fields costed one pass per value (:func:`costed_by_value`; default: :data:`BY_VALUE`)."""
    by_value = {p for p in paths if _bare(p) in BY_VALUE} if by_value is None else set(by_value)
    numeric = [i for i in _numeric(paths, points) if paths[i] not in by_value]
    named = [j for j in range(len(paths)) if j not in numeric]
    key_of = itemgetter(*named) if named else (lambda point: ())
    groups: dict[tuple, list[int]] = {}
    for i, point in enumerate(points):   # numbers vary inside a group; everything else names the group
        key = key_of(point)
        groups.setdefault(repr(key), []).append(i)
    records: list[dict] = [dict(zip(paths, point)) for point in points]
    for members in groups.values():
        first = dict(zip(paths, points[members[0]]))
        prec, plan = str(first.get("precision", precision)), _plan(model, first.get("plan"))
        batch = check_batch(first.get("batch", 1))
        group = [points[i] for i in members]
        values = {p: (np.array([pt[j] for pt in group]) if j in numeric else group[0][j]) for j, p in enumerate(paths)}
        hw = _config(base, values)
        totals = simulate(model, hw, prec, plan, batch=batch).totals
        area = area_mm2(hw)
        columns = [_column(totals[k], len(group)) for k in RESULTS]
        columns.append([None] * len(group) if area is None else _column(area, len(group)))
        names = RESULTS + ("area_mm2",)
        for i, vals in zip(members, zip(*columns)):
            records[i].update(zip(names, vals))
    return records


def _config(base: dict, values: dict) -> HWConfig:
    data = copy.deepcopy(base)   # the base is small; grid values (numbers or arrays) are set by path
    for path, value in values.items():
        if path not in SPECIAL:
            keys = path.split(".")
            set_path(data, keys[1:] if keys[0] == "hw" else keys, value, f"sweep.grid.{path}")
    try:
        return HWConfig.from_dict(data)
    except ConfigError as exc:
        at = ", ".join(f"{k}={v}" for k, v in values.items() if not isinstance(v, np.ndarray))
        raise ConfigError([f"sweep{f' ({at})' if at else ''}: {p}" for p in exc.problems]) from None


def _plan(model: Model, plan) -> dict[str, str]:
    """A plan value: None, a mapping GLOB → precision, or a list of ``GLOB=wXaY`` strings → layer name → precision."""
    if plan is None:
        return {}
    from .eval.pipeline import float_layer_precisions, parse_layer_precisions
    items = [f"{k}={v}" for k, v in plan.items()] if isinstance(plan, Mapping) else list(plan)
    return float_layer_precisions(model, [], layer_precision=parse_layer_precisions(items))


def _column(value, count: int) -> list[float]:
    """A result (a number, or an array over a group's configurations) as ``count`` Python floats."""
    return np.broadcast_to(np.asarray(value, dtype=np.float64), (count,)).tolist()


# ---- accuracy and the Pareto front ----------------------------------------------------------------------

def _add_accuracy(records: list[dict], model: Model, task_name: str) -> None:
    """``accuracy`` (the task's primary metric, quantized) per distinct (precision, plan), computed once."""
    from .eval.pipeline import evaluate, parse_layer_precisions, scheme_for
    from .eval.tasks import make_task
    from .hw.mac import parse_precision
    task, cache = make_task(task_name), {}
    for rec in records:
        prec, plan = rec.get("precision", "w8a8"), rec.get("plan")
        key = (prec, repr(plan))
        if key not in cache:
            if parse_precision(prec).is_float:
                result = evaluate(task, None)
                cache[key] = result["fp32"][result["primary_metric"]]
            else:
                items = [f"{k}={v}" for k, v in plan.items()] if isinstance(plan, Mapping) else list(plan or [])
                result = evaluate(task, scheme_for(prec, layer_bits=parse_layer_precisions(items)))
                cache[key] = result["quantized"][result["primary_metric"]]
        rec["accuracy"] = cache[key]


def pareto_front(records: list[dict], objectives) -> tuple[int, ...]:
    """Indices of the records no other record dominates (at least as good in every objective, better in
    one); ``MAXIMIZE`` objectives are maximized, the rest minimized. Records missing a value are skipped.
    Of equal records the first is kept."""
    rows = [[r.get(o) for o in objectives] for r in records]
    if {type(v) for row in rows for v in row} <= {float, int, type(None)}:     # the usual case: one array
        raw = np.array(rows, dtype=np.float64).reshape(len(records), len(objectives))
        usable = np.flatnonzero(np.isfinite(raw).all(axis=1)).tolist()
        pts = raw[usable] * np.array([-1.0 if o in MAXIMIZE else 1.0 for o in objectives])
    else:
        usable = [i for i, r in enumerate(records) if all(isinstance(r.get(o), (int, float)) and
                                                          math.isfinite(r[o]) for o in objectives)]
        pts = np.array([[(-records[i][o] if o in MAXIMIZE else records[i][o]) for o in objectives] for i in usable])
    if not usable:
        return ()
    order = np.lexsort(pts.T[::-1])            # by the first objective, ties by the next ...
    if len(objectives) == 2:                   # kept iff its second objective beats every point before it
        second = pts[order, 1]
        before = np.minimum.accumulate(np.concatenate(([np.inf], second[:-1])))
        kept = order[second < before].tolist()
    else:
        kept = []
        for idx in order:
            p = pts[idx]
            if kept:
                k = pts[kept]
                if np.any(np.all(k <= p, axis=1) & np.any(k < p, axis=1)) or np.any(np.all(k == p, axis=1)):
                    continue
            kept.append(idx)
    return tuple(sorted(usable[i] for i in kept))


class _CallableModule(types.ModuleType):
    """This module, callable: ``accelsim.sweep(...)`` is :func:`sweep` (and ``accelsim.sweep.sweep`` still is)."""

    def __call__(self, *args, **kwargs) -> SweepResult:
        return sweep(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
