"""A run's layers before they are records: the columns the engine computed, read in layer order.

The engine (:mod:`accelsim.sim.engine`) costs a run's layers from three sources: layers that do no work
(:func:`accelsim.sim.columns.idle`), layers costed one by one (their records), and groups costed over columns
(a prototype record whose leaves are columns, split into records by :func:`accelsim.sim.columns.split`).
A :class:`LayerTable` holds those sources as they are. :meth:`LayerTable.records` builds the per-layer
records (the same ones, built the same way); :meth:`LayerTable.column` and :meth:`LayerTable.level_totals`
read a field's per-layer values straight from the sources, in layer order, without building a record, so
that the run's totals (:func:`accelsim.sim.report_types.run_totals`) can be summed first and the records
built only when someone reads ``RunReport.layers``.

Exactness: a column holds the very values the records hold (each cast as :func:`split` casts it, by the
type of the probe's leaf), and every float sum runs over the layers in the same order (a sum of ints is
the same in any order), so the totals are the same numbers, type for type. ``level_totals`` keeps the dict
order of :func:`accelsim.sim.report_types.level_totals` (operands in order of first appearance) and its
``+=`` additions (:meth:`LayerTable.level_totals`). Only for one configuration (``Columns.configs`` None):
a sweep builds the records.
"""
from __future__ import annotations

from collections.abc import Sequence
from operator import itemgetter

import numpy as np

from .columns import Columns, idle, split
from .report_types import LayerCost

_NO_LAYER = (1 << 62, 0)                 # "never seen": after every (layer, entry) position
_IDLE: dict[str, LayerCost] = {}         # an idle layer's record per bound (its costs: the same for every layer)


def _idle(bound: str) -> LayerCost:
    """An idle layer's record (its costs: the same for every idle layer of that bound)."""
    return _IDLE.get(bound) or _IDLE.setdefault(bound, idle(("", "", "", 0, 0, 0), bound))


class LayerTable:
    """The sources of the layers of ``works`` at the precisions ``precs`` (module docstring). Add every layer
    once, through :meth:`add_idle`, :meth:`add_record` or :meth:`add_group`; then read. ``fixed``: totals known
    from the model alone (``macs``, ``params``: the sums over the layers in layer order)."""

    def __init__(self, cols: Columns, works: list, precs: list, fixed: dict | None = None):
        self.cols, self.works, self.precs, self.count = cols, works, precs, len(works)
        self.fixed = fixed or {}
        self.records_at: list[tuple[int, LayerCost]] = []
        self.idle_at: dict[str, list[int]] = {}
        self.groups: list[tuple[list[int], LayerCost, LayerCost | None, list | None]] = []
        self._where: list[int] | None = None
        self._ordered = False

    def add_idle(self, i: int, bound: str) -> None:
        """Layer ``i`` does no work (:func:`accelsim.sim.columns.idle`)."""
        self.idle_at.setdefault(bound, []).append(i)

    def add_record(self, i: int, record: LayerCost) -> None:
        self.records_at.append((i, record))

    def add_group(self, idx: list[int], proto: LayerCost, probe: LayerCost | None, resident: list | None) -> None:
        """The layers ``idx`` (ascending), costed over columns: :func:`accelsim.sim.columns.split`'s arguments
        (the identities come from the works)."""
        self.groups.append((idx, proto, probe, resident))

    def _ident(self, i: int) -> tuple:
        """Layer ``i``'s identity fields (name … params), as :func:`split` takes them."""
        w, p = self.works[i], self.precs[i]
        g = w.gemm
        sizes = (g.m, g.n, g.k, g.count, g.macs) if g is not None else (0, 0, 0, 0, 0)
        return (w.layer.name, w.layer.op, p.name, p.a_bits, p.w_bits, *sizes, w.layer.params)

    def records(self) -> list[LayerCost]:
        """Every layer's record, in layer order."""
        out: list = [None] * self.count
        for i, record in self.records_at:
            out[i] = record
        for bound, members in self.idle_at.items():
            for i in members:
                w, p = self.works[i], self.precs[i]
                out[i] = idle((w.layer.name, w.layer.op, p.name, p.a_bits, p.w_bits, w.layer.params), bound)
        for idx, proto, probe, resident in self.groups:
            for i, cost in zip(idx, split(self.cols, proto, probe, [self._ident(i) for i in idx], resident)):
                out[i] = cost
        return out

    def _layer_order(self) -> list[int] | None:
        """For each layer, its position among the values given source by source (records, idle layers by
        bound, groups); None when that is the layer order."""
        if not self._ordered:
            at = [i for i, _ in self.records_at]
            for members in self.idle_at.values():
                at += members
            for idx, *_ in self.groups:
                at += idx
            where = [0] * self.count
            for pos, i in enumerate(at):
                where[i] = pos
            self._where = None if where == list(range(self.count)) else where
            self._where_array = None if self._where is None else np.array(where)
            self._ordered = True
        return self._where

    def _in_layer_order(self, values: list) -> Sequence:
        where = self._layer_order()
        if where is None:
            return values
        return (values[where[0]],) if self.count == 1 else itemgetter(*where)(values)

    def _by_source(self, part: str | None, name: str) -> tuple[list, bool]:
        """Every layer's value of ``name`` in the record ``part`` (``timing``, ``traffic``, ``energy``; None: the
        LayerCost's own field, ``macs`` or ``params``), source by source, and whether they are all ints as far
        as the types of the sources tell (the records' values, the idle record's, the probes')."""
        values = [getattr(getattr(r, part), name) if part else getattr(r, name) for _, r in self.records_at]
        ints = all(type(v) is int for v in values)
        works = self.works
        for bound, members in self.idle_at.items():
            if part is None and name == "params":
                values += [works[i].layer.params for i in members]
                ints = False                        # (not known without looking)
            else:
                value = getattr(getattr(_idle(bound), part), name) if part else getattr(_idle(bound), name)
                values += [value] * len(members)
                ints = ints and type(value) is int
        for idx, proto, probe, resident in self.groups:
            if part is None:
                values += ([works[i].layer.params for i in idx] if name == "params" else
                           [getattr(works[i].gemm, name) if works[i].gemm is not None else 0 for i in idx])
                ints = False
            elif part == "traffic" and name == "resident_weight_bytes" and resident is not None:
                values += resident
                ints = False
            else:
                kind = type(getattr(getattr(probe, part), name))
                values += self.cols.rows(getattr(getattr(proto, part), name), len(idx), kind)
                ints = ints and kind is int
        return values, ints

    def _one_group(self, part: str | None, name: str) -> list | None:
        """:meth:`_by_source`'s values when the layers are one group's, in layer order (the usual case of a
        network of GEMMs alone): then they are in layer order already. None otherwise."""
        if part is None or self.records_at or self.idle_at or len(self.groups) != 1:
            return None
        idx, proto, probe, resident = self.groups[0]
        if part == "traffic" and name == "resident_weight_bytes" and resident is not None:
            return None
        kind = type(getattr(getattr(probe, part), name))
        return self.cols.rows(getattr(getattr(proto, part), name), len(idx), kind)

    def column(self, part: str | None, name: str) -> Sequence:
        """Every layer's value of a field (:meth:`_by_source`), in layer order."""
        values = self._one_group(part, name)
        return values if values is not None else self._in_layer_order(self._by_source(part, name)[0])

    def total(self, part: str | None, name: str):
        """``sum(self.column(part, name))``, the same number: a sum of ints is the same in any order, so ints are
        summed source by source; anything else in layer order."""
        if part is None and name in self.fixed:
            return self.fixed[name]
        values = self._one_group(part, name)
        if values is not None:
            return sum(values)
        values, ints = self._by_source(part, name)
        if ints:
            return sum(values)
        if part is None:                            # ints, most likely: the sum tells
            got = sum(values)
            if type(got) is int:
                return got
        return sum(self._in_layer_order(values))

    def level_totals(self, names: list[str]) -> dict | None:
        """:func:`accelsim.sim.report_types.level_totals` of the records, from the sources; None where this
        cannot say it the same way (a level outside ``names``, a layer with two entries for one level and
        operand, a stall that is not an int): then build the records.

        Each float total there is ``0.0 + v₁ + v₂ + …`` over the layers in order (``+=``; the energies
        ``pj · 1e-9``): here one row per total, the layers' values (as float64, cast as :func:`split` casts them;
        0 where a layer has none or a group's value is a plain 0, which adds nothing), the energy rows times
        1e-9, and a running sum along the row (``np.cumsum``, one addition after another). The stall totals are
        sums of ints, in any order."""
        n, cols = self.count, self.cols
        rows: dict = {}         # ("bytes", level, operand, read/write) → [(where, values) ...]
        energy: dict = {}       # level → [(where, pJ) ...]
        first: dict = {}        # (level, operand) → (layer, entry position) of its first entry
        stalls: dict = {}       # level → [int, ...]
        at = 0
        for i, r in self.records_at:
            entries = r.traffic.levels
            if len({(t.level, t.operand) for t in entries}) < len(entries):
                return None
            for pos, t in enumerate(entries):
                key = (t.level, t.operand)
                rows.setdefault(("bytes", *key, "read"), []).append((at, t.read_bytes))
                rows.setdefault(("bytes", *key, "write"), []).append((at, t.write_bytes))
                first[key] = min(first.get(key, _NO_LAYER), (i, pos))
            for name, pj in r.energy.by_level.items():
                energy.setdefault(name, []).append((at, pj))
            for name, cyc in r.timing.stall_by_level.items():
                stalls.setdefault(name, []).append(cyc)
            at += 1
        for members in self.idle_at.values():          # no entries, no energy by level, no stalls
            at += len(members)
        for idx, proto, probe, _ in self.groups:
            count = len(idx)
            span = slice(at, at + count)
            entries = proto.traffic.levels
            if len({(t.level, t.operand) for t in entries}) < len(entries):
                return None
            kinds = {(t.level, t.operand): (type(t.read_bytes), type(t.write_bytes)) for t in probe.traffic.levels}
            for pos, t in enumerate(entries):
                key = level, operand = t.level, t.operand
                rk, wk = kinds.get(key, _FLOATS)
                rs, ws = _typed(t.read_bytes, rk), _typed(t.write_bytes, wk)
                if rs is None or ws is None:
                    return None
                _segment(rows.setdefault(("bytes", level, operand, "read"), []), span, rs)
                _segment(rows.setdefault(("bytes", level, operand, "write"), []), span, ws)
                j = _first_moved(rs, ws, count) if operand == "psum" else 0  # (split keeps a psum entry only
                if j is not None:                                            # where it moves bytes)
                    first[key] = min(first.get(key, _NO_LAYER), (idx[j], pos))
            for name, value in proto.energy.by_level.items():
                _segment(energy.setdefault(name, []), span, _typed(value, float))
            for name, value in proto.timing.stall_by_level.items():
                got = stalls.setdefault(name, [])
                if type(value) is not np.ndarray or np.count_nonzero(value):   # (all 0: no stall anywhere)
                    got.extend(v for v in cols.rows(value, count, int) if v > 0)
            at += count
        if not set(names).issuperset({key[0] for key in first} | stalls.keys() | energy.keys()):
            return None
        stall = {name: sum(values) for name, values in stalls.items()}
        if any(type(v) is not int for v in stall.values()):
            return None
        keys = [*rows, *energy]
        table = np.zeros((len(keys), n))
        for r, segments in enumerate((*rows.values(), *energy.values())):
            for where, values in segments:
                table[r, where] = values
        table[len(rows):] *= 1e-9
        if self._layer_order() is not None:
            table = table[:, self._where_array]
        sums = dict(zip(keys, (table.cumsum(axis=1)[:, -1] + 0.0).tolist() if n else [0.0] * len(keys)))
        out: dict = {name: {"operands": {}, "energy_mj": sums.get(name, 0.0), "stall_cycles": stall.get(name, 0)}
                     for name in names}
        for _, (op, name) in sorted((where, key[::-1]) for key, where in first.items()):
            out[name]["operands"][op] = {"read_bytes": sums["bytes", name, op, "read"],
                                         "write_bytes": sums["bytes", name, op, "write"]}
        return out


_FLOATS = (float, float)


def _segment(segments: list, where, values) -> None:
    """Add a group's ``values`` at ``where`` to a row of :meth:`LayerTable.level_totals` (a plain 0 adds
    nothing: the row starts as zeros)."""
    if type(values) is np.ndarray or values != 0:
        segments.append((where, values))


def _first_moved(reads, writes, count: int) -> int | None:
    """Where the first of a group's ``count`` layers is whose entry moves bytes (reads or writes not 0), None if
    none does (columns or plain numbers, as :func:`_typed` gives them)."""
    if type(reads) is not np.ndarray and type(writes) is not np.ndarray:
        return 0 if reads != 0 or writes != 0 else None
    moved = np.logical_or(reads, writes)
    if moved.shape != (count,):
        moved = np.broadcast_to(moved, (count,))
    j = int(moved.argmax())
    return j if moved[j] else None


def _typed(value, kind: type):
    """A column cast as :meth:`Columns.rows` casts them (``kind`` int or float), as an array
    (broadcast where it is stored; a number stays a number); None for another kind."""
    if type(value) is not np.ndarray:
        return value
    if kind is int:
        return value.astype(np.int64, copy=False)
    if kind is float:
        return value.astype(np.float64, copy=False)
    return None
