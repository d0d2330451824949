"""Layers as columns: the cost model run once over a group of layers, then split into one record per layer.

The cost model's per-layer functions (:mod:`accelsim.sim.engine`) are written over :mod:`accelsim.hw.xp`, so
they accept arrays wherever they accept numbers. The engine gathers a group of layers that share everything
structural (dataflow, operand kinds, precision, the Python types of their inputs) and calls the per-layer
function once with every per-layer value a *column*:

* one configuration: an array over the group's L layers, shape (L,);
* a sweep over C configurations: shape (L, 1) (a config-independent value) or (L, C), so that the config
  arrays (C,) broadcast against it;
* a value equal for every layer of the group stays a plain number (so the per-layer code's conditions on
  numbers — "record a stall only when positive", "skip an operand that moves nothing" — read it as they would
  for one layer).

The result is one :class:`~accelsim.sim.report_types.LayerCost` whose leaves are columns; :func:`split` turns it
into L records equal to what L per-layer calls return, Python types included (int where the per-layer code
gives an int): each leaf takes the type of the same leaf in ``probe``, the group's first layer costed on its
own. Two leaves are optional in the per-layer code and are kept per layer the way it keeps them: a stall
(``Timing.stall_by_level``) only when positive, and the ``psum`` traffic entry only when non-zero.

Records are built through :func:`build` (a group's records, field by field) and :func:`maker` (one record), which
fill a frozen slotted dataclass through its slot descriptors: the class and its fields are unchanged, and the
generated ``__init__`` of a frozen dataclass is about twice as slow.
"""
from __future__ import annotations

import numbers
from collections import deque
from collections.abc import Mapping
from dataclasses import fields, is_dataclass
from itertools import repeat

import numpy as np

from ..hw.memory import LevelTraffic
from ..memo import remember
from .report_types import Energy, LayerCost, Timing, Traffic


def maker(cls):
    """A positional constructor of the frozen slotted dataclass ``cls`` (every field, in order; no defaults,
    no ``__post_init__``) that sets the slots directly: ``maker(Timing)(*values) == Timing(*values)``."""
    names = [f.name for f in fields(cls)]
    args = ", ".join(f"v{i}" for i in range(len(names)))
    body = "".join(f"    s{i}(o, v{i})\n" for i in range(len(names)))
    env = {"new": object.__new__, "cls": cls} | {f"s{i}": getattr(cls, n).__set__ for i, n in enumerate(names)}
    exec(f"def make({args}):\n    o = new(cls)\n{body}    return o\n", env)   # noqa: S102 (generated from field names)
    return env["make"]


def build(cls, columns: list, count: int) -> list:
    """``count`` records of the frozen slotted dataclass ``cls`` from one column (a list) per field, in field
    order: ``build(Timing, cols, n)[j] == Timing(*(c[j] for c in cols))``, filled field by field through the
    slot descriptors (a C loop per field)."""
    objs = list(map(_new, repeat(cls, count)))
    for setter, column in zip(_SETTERS[cls], columns):
        _consume(map(setter, objs, column))
    return objs


_new = object.__new__
_consume = deque(maxlen=0).extend
_SETTERS = {cls: [getattr(cls, f.name).__set__ for f in fields(cls)]
            for cls in (Timing, Traffic, Energy, LevelTraffic, LayerCost)}
MAKE_LAYER = maker(LayerCost)
_TIMING = [f.name for f in fields(Timing)]
_TRAFFIC = [f.name for f in fields(Traffic)]
_ENERGY = [f.name for f in fields(Energy)]
_IDENTITY = [f.name for f in fields(LayerCost)][:11]        # name … params: the layer's own, never computed
_IDLE_TIMINGS: dict[str, Timing] = {}
_NO_TRAFFIC = LayerCost.__dataclass_fields__["traffic"].default    # the instances LayerCost.idle shares
_NO_ENERGY = LayerCost.__dataclass_fields__["energy"].default


def idle(ident: tuple, bound: str = "none") -> LayerCost:
    """``LayerCost.idle`` (``ident``: name, op, precision, a_bits, w_bits, params); the records are immutable,
    so idle layers share one ``Timing`` per bound."""
    timing = _IDLE_TIMINGS.get(bound)
    if timing is None:
        timing = _IDLE_TIMINGS.setdefault(bound, Timing(bound=bound))
    name, op, prec, a_bits, w_bits, params = ident
    return MAKE_LAYER(name, op, prec, a_bits, w_bits, 0, 0, 0, 0, 0, params, timing, _NO_TRAFFIC, _NO_ENERGY)


_WALK: dict[type, tuple[str, ...]] = {}


_CONFIGS: dict = {}


def configs(hw) -> int | None:
    """How many configurations ``hw`` describes: C when any of its numeric fields is an array (a sweep's group
    of configurations, each such field of shape (C,)), else None."""
    return remember(_CONFIGS, hw, None, lambda: _count_configs(hw))


def _count_configs(hw) -> int | None:
    sizes: set = set()
    stack = [hw]
    while stack:
        obj = stack.pop()
        kind = type(obj)
        if kind is np.ndarray:
            if obj.ndim:
                sizes.add(obj.shape[0])
        elif kind in (tuple, list):
            stack.extend(obj)
        elif isinstance(obj, Mapping):
            stack.extend(obj.values())
        elif not isinstance(obj, (str, numbers.Number, np.generic)) and obj is not None:
            names = _WALK.get(kind)
            if names is None:
                names = _WALK.setdefault(kind, tuple(f.name for f in fields(obj) if f.init and f.name not in
                                                     ("name", "source", "data")) if is_dataclass(obj) else ())
            stack.extend(getattr(obj, n) for n in names)
    if not sizes:
        return None
    if len(sizes) > 1:
        raise ValueError(f"hw fields are arrays of different lengths {sorted(sizes)}: one sweep group has one length")
    return sizes.pop()


class Columns:
    """How per-layer values become columns: ``configs`` None for one configuration, else the sweep's C."""

    def __init__(self, configs: int | None):
        self.configs = configs

    def __call__(self, values: list | tuple):
        """A column of ``values`` (numbers, or arrays over configurations in a sweep); a plain number when they
        are all the same number (same value and type)."""
        first = values[0]
        if type(first) is not np.ndarray and values.count(first) == len(values):   # (a group's values share
            return first                                                           # one type)
        if self.configs is None:
            return np.array(values)
        if any(type(v) is np.ndarray for v in values):
            return np.stack([np.broadcast_to(v, (self.configs,)) for v in values])
        return np.array(values)[:, None]

    def of_ints(self, values: np.ndarray):
        """``self(values.tolist())`` for an int64 array (of Python ints): a plain int when they are all equal."""
        first = values[0]
        if (values == first).all():
            return int(first)
        return values if self.configs is None else values[:, None]

    def rows(self, value, count: int, kind: type) -> list:
        """``value`` (a column or a number) as ``count`` per-layer values: Python numbers of type ``kind`` for
        one configuration, arrays over the C configurations in a sweep."""
        if type(value) is not np.ndarray:
            return [value] * count
        if self.configs is not None:
            return list(np.broadcast_to(value, (count, self.configs)))
        flat = value if value.shape == (count,) else np.broadcast_to(value, (count,))
        if kind is int:
            return flat.astype(np.int64, copy=False).tolist()
        if kind is float:
            return flat.astype(np.float64, copy=False).tolist()
        return flat.tolist()


def split(cols: Columns, proto: LayerCost, probe: LayerCost | None, idents: list[tuple],
          resident: list | None = None) -> list[LayerCost]:
    """Per-layer records from ``proto`` (a record whose leaves are columns over ``len(idents)`` layers; module
    docstring). ``probe``: the group's first layer costed alone (its leaf types are used; None in a sweep);
    ``idents``: per layer the identity fields (name … params); ``resident``: per-layer held weight bytes."""
    count = len(idents)
    one = cols.configs is None

    def typed(record, probe_record, names):
        return [cols.rows(getattr(record, n), count, type(getattr(probe_record, n)) if one else None) for n in names]

    timing = typed(proto.timing, probe.timing if one else None, _TIMING)
    at = _TIMING.index("stall_by_level")
    stall_keys = list(proto.timing.stall_by_level)
    stall_cols = [cols.rows(proto.timing.stall_by_level[k], count, int) for k in stall_keys]
    if not stall_keys:
        timing[at] = [{} for _ in range(count)]
    elif one:
        timing[at] = [{k: v for k, v in zip(stall_keys, vals) if v > 0} for vals in zip(*stall_cols)]
    else:
        timing[at] = [dict(zip(stall_keys, vals)) for vals in zip(*stall_cols)]
    traffic = typed(proto.traffic, probe.traffic if one else None, _TRAFFIC)
    traffic[_TRAFFIC.index("levels")] = _levels(cols, proto.traffic.levels, probe.traffic.levels if one else (), count)
    if resident is not None:
        traffic[_TRAFFIC.index("resident_weight_bytes")] = resident
    energy = typed(proto.energy, probe.energy if one else None, _ENERGY)
    by_keys = list(proto.energy.by_level)
    by_cols = [cols.rows(proto.energy.by_level[k], count, float) for k in by_keys]
    energy[_ENERGY.index("by_level")] = [dict(zip(by_keys, vals)) for vals in zip(*by_cols)] if by_keys else \
        [{} for _ in range(count)]
    layer = [*zip(*idents), build(Timing, timing, count), build(Traffic, traffic, count),
             build(Energy, energy, count)]
    return build(LayerCost, layer, count)


def _levels(cols: Columns, entries, probe_entries, count: int) -> list[tuple]:
    """Per layer, the tuple of LevelTraffic entries (the ``psum`` entry only where it moves bytes)."""
    if not entries:
        return [()] * count
    kinds = {(t.level, t.operand): (type(t.read_bytes), type(t.write_bytes)) for t in probe_entries}
    per_entry, optional = [], []
    for at, t in enumerate(entries):
        rk, wk = kinds.get((t.level, t.operand), (float, float))
        reads, writes = cols.rows(t.read_bytes, count, rk), cols.rows(t.write_bytes, count, wk)
        per_entry.append(build(LevelTraffic, [repeat(t.level, count), repeat(t.operand, count), reads, writes], count))
        if t.operand == "psum" and cols.configs is None:
            optional.append((at, [j for j, (r, w) in enumerate(zip(reads, writes)) if not (r or w)]))
    rows = list(zip(*per_entry))
    for at, empty in reversed(optional):
        for j in empty:
            rows[j] = rows[j][:at] + rows[j][at + 1:]
    return rows
