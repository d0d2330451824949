"""Cycle-level emulation of GEMMs on the systolic array (:mod:`accelsim.kernels.systolic`), and its use as a
timing strategy of the cost model.

:func:`systolic_gemm` runs ``acc = A @ B (+ bias)`` on an R × C array with one dataflow of
:data:`accelsim.hw.dataflow.DATAFLOWS`: A (m×k) and B (k×n) are integer operands with the zero points already
subtracted (|v| < 2¹⁵), ``macs_per_cycle`` = f packs f consecutive k into one PE register (Bit Fusion; the
array then sees ``K' = ceil(K / f)``), the accumulator has ``acc_bits`` and wraps or saturates. The operand
roles on the array come from the dataflow row alone (:func:`roles`):

    operand spanning (rows dim, time dim) → H (enters left, moves right)
    operand spanning (cols dim, time dim) → V (enters top, moves down)
    operand spanning (rows dim, cols dim) → S (stationary)

Results (:class:`ArrayRun`): the accumulator matrix and overflow counts, equal to
:func:`accelsim.kernels.igemm.gemm_checked`'s (same step order), and the measured cycles and SRAM words:

* ``cycles`` = Σ over folds of the cycles each fold ran (preload, then until its last MAC) — equals the
  closed form ``folds · (P + R + C + T − 2)`` of :func:`accelsim.hw.dataflow.fold_timing` on ``(m, n, K')``;
* ``scalesim_cycles = cycles − 1``: SCALE-Sim 3.0.0 reports the index of the last cycle (its ``Total
  Cycles``), which is what the report's match flag compares;
* SRAM words: each real (unpadded) element that enters an edge or is preloaded is one read, each partial sum
  or drained accumulator leaving the array one write; ``sram_ofmap_writes_scalesim`` adds SCALE-Sim's
  over-count of ``R + C`` per fold for a stationary output (its ``ofmap_writes += rows + cols`` per fold).
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from types import MappingProxyType

import numpy as np

from ..errors import MappingError, QuantError
from ..hw.dataflow import GROUPED_MAPPINGS, OPERAND_DIMS, DataflowSpec, FoldTiming, fold_timing, grouped_input_words
from ..kernels import systolic as _k

OPERANDS = ("input", "weight", "output")
I16 = (1 << 15) - 1


def roles(flow: DataflowSpec) -> dict[str, int]:
    """Operand → role (``ROLE_H``/``ROLE_V``/``ROLE_S``) from the dataflow's rows/cols/time dimensions."""
    want = {_k.ROLE_H: {flow.rows, flow.time}, _k.ROLE_V: {flow.cols, flow.time}, _k.ROLE_S: {flow.rows, flow.cols}}
    return {op: next(r for r, dims in want.items() if set(OPERAND_DIMS[op]) == dims) for op in OPERANDS}


def _role_dims(flow: DataflowSpec, role: int) -> tuple[str, str]:
    return ((flow.rows, flow.time), (flow.cols, flow.time), (flow.rows, flow.cols))[role]


@dataclass(frozen=True, slots=True)
class ArrayRun:
    """One GEMM through the array (module docstring). Per-fold counters are (folds,) int64 arrays, fold
    ``fr · col_folds + fc``."""
    acc: np.ndarray                 # (m, n) int64: the accumulator registers after the bias step
    overflow_events: int            # accumulation steps whose exact sum left the acc_bits range
    overflow_outputs: int           # outputs with at least one such step
    rows: int
    cols: int
    dataflow: DataflowSpec
    macs_per_cycle: int
    row_folds: int
    col_folds: int
    temporal: int
    fold_cycles: np.ndarray
    fold_busy: np.ndarray           # PE-cycles on real (unpadded) operands: m·n·K' summed over folds
    fold_reads: MappingProxyType    # operand → (folds,) SRAM words read
    fold_writes: np.ndarray         # output words written
    psum_reads: int                 # partial sums re-entering the array (K split over folds)

    @property
    def cycles(self) -> int:
        return int(self.fold_cycles.sum())

    @property
    def scalesim_cycles(self) -> int:
        return self.cycles - 1

    @property
    def folds(self) -> int:
        return self.row_folds * self.col_folds

    @property
    def sram_ifmap_reads(self) -> int:
        return int(self.fold_reads["input"].sum())

    @property
    def sram_filter_reads(self) -> int:
        return int(self.fold_reads["weight"].sum())

    @property
    def sram_ofmap_writes(self) -> int:
        return int(self.fold_writes.sum())

    @property
    def sram_ofmap_writes_scalesim(self) -> int:
        stationary = roles(self.dataflow)["output"] == _k.ROLE_S
        return self.sram_ofmap_writes + (self.folds * (self.rows + self.cols) if stationary else 0)

    @property
    def pe_cycles(self) -> int:
        """PE-cycles the array stepped through (R · C per cycle)."""
        return self.cycles * self.rows * self.cols


def _int_matrix(x, name: str) -> tuple[np.ndarray, int]:
    """``x`` checked (2-D integer, |v| <= 2¹⁵ − 1) and its largest |v|."""
    x = np.asarray(x)
    if x.ndim != 2 or x.dtype.kind not in "iu":
        raise QuantError(f"{name}: expected a 2-D integer array, got {x.dtype} with shape {x.shape}")
    lo, hi = (int(x.min()), int(x.max())) if x.size else (0, 0)
    if lo < -I16 or hi > I16:
        raise QuantError(f"{name}: values must lie in [-{I16}, {I16}] (zero point subtracted)")
    return x, max(-lo, hi)


def _check_array(rows, cols, macs_per_cycle, acc_bits, overflow) -> None:
    """The array arguments of :func:`systolic_gemm` and :func:`systolic_grouped` (QuantError otherwise)."""
    for name, v in (("rows", rows), ("cols", cols), ("macs_per_cycle", macs_per_cycle)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
            raise QuantError(f"{name}: expected a positive integer, got {v!r}")
    if isinstance(acc_bits, bool) or not isinstance(acc_bits, (int, np.integer)) or not 8 <= acc_bits <= 64:
        raise QuantError(f"acc_bits: expected an int in [8, 64], got {acc_bits!r}")
    if overflow not in ("wrap", "saturate"):
        raise QuantError(f"overflow: expected 'wrap' or 'saturate', got {overflow!r}")


def _mode(amax: int, bmax: int, bias, k: int, acc_bits: int, overflow: str):
    """(kernel mode, accumulator dtype): exact when no partial sum can leave the ``acc_bits`` range."""
    bound = k * amax * bmax + (int(np.abs(bias).max()) if bias.size else 0)
    if bound <= (1 << (acc_bits - 1)) - 1:
        return _k.MODE_EXACT, (np.int32 if bound <= (1 << 31) - 1 else np.int64)
    return (_k.MODE_SAT if overflow == "saturate" else _k.MODE_WRAP), np.int64


#: the most memory one systolic_gemm may hold (operand streams, partial-sum slots, overflow counters, result)
MAX_WORKING_SET_BYTES = 2**32


def working_set_bytes(m: int, n: int, k: int, rows: int, cols: int, flow: DataflowSpec, macs_per_cycle: int = 1,
                      checked: bool = True) -> int:
    """Bytes :func:`systolic_gemm` allocates for ``m×k @ k×n``: the int16 operand streams, the output's slots
    (int64 and its overflow counters when ``checked``, else at most int64) and the (m, n) int64 result. The streams
    carry ``C + Cp`` bubbles per row, so a short time dimension costs more than its operand's size."""
    f = int(macs_per_cycle)
    dims = {"m": m, "n": n, "k": -(-k // f)}
    geo = _k.geometry(rows, cols, dims[flow.rows], dims[flow.cols], dims[flow.time])
    role = roles(flow)
    ins = sum(math.prod(_k.storage_shape(role[op], f, geo)) for op in ("input", "weight"))
    out = math.prod(_k.storage_shape(role["output"], 1, geo))
    return 2 * ins + out * (16 if checked else 8) + 8 * m * n


def systolic_gemm(a, b, rows: int, cols: int, flow: DataflowSpec, *, bias=None, macs_per_cycle: int = 1,
                  acc_bits: int = 32, overflow: str = "wrap", trace_cycles: int = 0):
    """Run ``A (m×k) @ B (k×n) (+ bias (n,))`` through an R × C array (module docstring) → :class:`ArrayRun`;
    with ``trace_cycles > 0`` also ``(run, trace)``, the edge addresses of the first cycles
    (:func:`accelsim.kernels.systolic.run_array_traced`)."""
    (a, amax), (b, bmax) = _int_matrix(a, "a"), _int_matrix(b, "b")
    if a.shape[1] != b.shape[0]:
        raise QuantError(f"a {a.shape} @ b {b.shape}: inner dimensions differ")
    m, k = a.shape
    n = b.shape[1]
    if min(m, n, k) < 1:
        raise MappingError(f"empty GEMM {m}x{k} @ {k}x{n}: nothing to run on the array")
    _check_array(rows, cols, macs_per_cycle, acc_bits, overflow)
    bias = np.zeros(n, np.int64) if bias is None else np.asarray(bias).astype(np.int64).reshape(-1)
    if bias.shape != (n,):
        raise QuantError(f"bias: expected shape ({n},), got {bias.shape}")
    rows, cols, f, acc_bits = int(rows), int(cols), int(macs_per_cycle), int(acc_bits)
    kp = -(-k // f)
    dims = {"m": m, "n": n, "k": kp}
    role = roles(flow)
    mode, acc_dtype = _mode(amax, bmax, bias, k, acc_bits, overflow)
    d_rows, d_cols, t_len = dims[flow.rows], dims[flow.cols], dims[flow.time]
    memory = working_set_bytes(m, n, k, rows, cols, flow, f, mode != _k.MODE_EXACT)
    if memory > MAX_WORKING_SET_BYTES:
        raise MappingError(f"{m}x{k} @ {k}x{n} on a {rows}x{cols} array ({flow.name}): the emulator would hold "
                           f"{memory / 2**30:.3g} GiB, at most {MAX_WORKING_SET_BYTES / 2**30:.0f} GiB")
    geo = _k.geometry(rows, cols, d_rows, d_cols, t_len)
    ins = [np.zeros(1, np.int16)] * 3
    for op, x in (("input", a), ("weight", b)):
        r = role[op]
        want = _role_dims(flow, r)
        ins[r] = np.zeros(math.prod(_k.storage_shape(r, f, geo)), np.int16)
        _k.pack_operand(x if OPERAND_DIMS[op] == want else x.T, want.index("k"), f, r, rows, cols, t_len, ins[r])
    out_role = role["output"]
    size = math.prod(_k.storage_shape(out_role, 1, geo))
    checked = mode != _k.MODE_EXACT
    outs = [np.zeros(1, acc_dtype)] * 3
    outs[out_role] = np.zeros(size, acc_dtype)
    ovfs = [np.zeros(1, np.int64)] * 3
    if checked:
        ovfs[out_role] = np.zeros(size, np.int64)
    fr_n, fc_n = -(-d_rows // rows), -(-d_cols // cols)
    cnt = np.zeros((fr_n * fc_n, _k.N_COUNTERS), dtype=np.int64)
    lo, hi = -(1 << (acc_bits - 1)), (1 << (acc_bits - 1)) - 1
    args = (tuple(ins), tuple(outs), tuple(ovfs), out_role)
    shape = (rows, cols, d_rows, d_cols, t_len, f, mode, acc_bits, lo, hi, cnt)
    trace = None
    if trace_cycles > 0:
        order = np.stack([np.tile(np.arange(fr_n), fc_n), np.repeat(np.arange(fc_n), fr_n)], axis=1)  # fc-major
        small = max(m * k, k * n, m * n) < (1 << 31)      # flat element indices fit int32: half the buffer
        tr = np.full((int(trace_cycles), 4, max(rows, cols)), -1, dtype=np.int32 if small else np.int64)
        starts = _k.run_array_traced(*args, *shape, order, tr)
        trace = (tr, order, starts)
    else:
        red = 0 if flow.rows == "k" else 1 if flow.cols == "k" else 2
        _k.run_array(*args, red, *shape)
    out = np.empty((m, n), np.int64)
    events, hit = _k.finish(out_role, outs[out_role], ovfs[out_role], checked, rows, cols, d_rows, d_cols, t_len,
                            _role_dims(flow, out_role) != ("m", "n"), bias, mode, acc_bits, lo, hi, out)
    reads = {op: cnt[:, _k.READ_H + role[op]].copy() for op in ("input", "weight")}
    run = ArrayRun(out, int(events), int(hit), rows, cols, flow, f,
                   fr_n, fc_n, t_len, cnt[:, _k.CYCLES].copy(), cnt[:, _k.BUSY].copy(), MappingProxyType(reads),
                   cnt[:, _k.WRITES].copy(), int(cnt[:, _k.PSUM_READS].sum()))
    return run if trace is None else (run, trace)


def systolic_grouped(a, b, rows: int, cols: int, *, macs_per_cycle: int = 1, acc_bits: int = 32,
                     overflow: str = "wrap") -> ArrayRun:
    """Run the ``g`` GEMMs ``A[i] (m×k) @ B[i] (k×n)`` of a grouped/depthwise conv *spread across the columns*
    (the ``cols`` row of :data:`accelsim.hw.dataflow.GROUPED_MAPPINGS`: output-stationary, pixels on the R rows,
    the ``g·n`` output channels on the C columns, k in time; each column reads its own group's inputs,
    :data:`accelsim.kernels.systolic.ROLE_D`) → :class:`ArrayRun` with ``acc`` of shape (m, g·n) (column
    ``q`` = group ``q // n``, its output ``q mod n``). For the ``rows`` mapping, swap ``rows`` and ``cols``: it
    is the transpose and runs the same cycles."""
    a, b = np.asarray(a), np.asarray(b)
    if a.ndim != 3 or b.ndim != 3 or a.shape[0] != b.shape[0] or a.shape[2] != b.shape[1]:
        raise QuantError(f"grouped GEMM: expected a (g, m, k) and b (g, k, n), got {a.shape} and {b.shape}")
    g, m, k = a.shape
    n = b.shape[2]
    (a2, amax), (b2, bmax) = _int_matrix(a.reshape(g * m, k), "a"), _int_matrix(
        b.transpose(1, 0, 2).reshape(k, g * n), "b")                       # column q = group q // n, output q % n
    if min(g, m, n, k) < 1:
        raise MappingError(f"empty grouped GEMM {g} x ({m}x{k} @ {k}x{n}): nothing to run on the array")
    _check_array(rows, cols, macs_per_cycle, acc_bits, overflow)
    rows, cols, f, acc_bits = int(rows), int(cols), int(macs_per_cycle), int(acc_bits)
    kp, width = -(-k // f), g * n
    mode, acc_dtype = _mode(amax, bmax, np.zeros(0, np.int64), k, acc_bits, overflow)
    geo = _k.geometry(rows, cols, m, width, kp)
    memory = 2 * (math.prod(_k.storage_shape(_k.ROLE_D, f, geo)) + math.prod(_k.storage_shape(_k.ROLE_V, f, geo))) \
        + math.prod(_k.storage_shape(_k.ROLE_S, 1, geo)) * (16 if mode != _k.MODE_EXACT else 8) + 8 * m * width
    if memory > MAX_WORKING_SET_BYTES:
        raise MappingError(f"grouped {g} x ({m}x{k} @ {k}x{n}) on a {rows}x{cols} array: the emulator would hold "
                           f"{memory / 2**30:.3g} GiB, at most {MAX_WORKING_SET_BYTES / 2**30:.0f} GiB")
    ins = [np.zeros(1, np.int16)] * 3
    ins[_k.ROLE_H] = np.zeros(math.prod(_k.storage_shape(_k.ROLE_D, f, geo)), np.int16)
    _k.pack_grouped(a2.reshape(g, m, k), n, f, rows, cols, kp, ins[_k.ROLE_H])
    ins[_k.ROLE_V] = np.zeros(math.prod(_k.storage_shape(_k.ROLE_V, f, geo)), np.int16)
    _k.pack_operand(b2.T, 1, f, _k.ROLE_V, rows, cols, kp, ins[_k.ROLE_V])
    size, checked = math.prod(_k.storage_shape(_k.ROLE_S, 1, geo)), mode != _k.MODE_EXACT
    outs = [np.zeros(1, acc_dtype)] * 3
    outs[_k.ROLE_S] = np.zeros(size, acc_dtype)
    ovfs = [np.zeros(1, np.int64)] * 3
    if checked:
        ovfs[_k.ROLE_S] = np.zeros(size, np.int64)
    fr_n, fc_n = -(-m // rows), -(-width // cols)
    cnt = np.zeros((fr_n * fc_n, _k.N_COUNTERS), dtype=np.int64)
    lo, hi = -(1 << (acc_bits - 1)), (1 << (acc_bits - 1)) - 1
    _k.run_array(tuple(ins), tuple(outs), tuple(ovfs), _k.ROLE_S, 2, rows, cols, m, width, kp, f, mode, acc_bits,
                 lo, hi, cnt, True)
    out = np.empty((m, width), np.int64)
    events, hit = _k.finish(_k.ROLE_S, outs[_k.ROLE_S], ovfs[_k.ROLE_S], checked, rows, cols, m, width, kp, False,
                            np.zeros(width, np.int64), mode, acc_bits, lo, hi, out)
    flow = GROUPED_MAPPINGS["cols"].flow
    reads = {"input": cnt[:, _k.READ_H].copy(), "weight": cnt[:, _k.READ_V].copy()}
    return ArrayRun(out, int(events), int(hit), rows, cols, flow, f, fr_n, fc_n, kp, cnt[:, _k.CYCLES].copy(),
                    cnt[:, _k.BUSY].copy(), MappingProxyType(reads), cnt[:, _k.WRITES].copy(),
                    int(cnt[:, _k.PSUM_READS].sum()))


@dataclass(frozen=True, slots=True)
class LayerEmulation:
    """One emulated GEMM layer (per GEMM of its ``count``): measured vs closed form on the same (m, n, K')."""
    scalesim_cycles: int            # measured, SCALE-Sim convention (Σ fold cycles − 1)
    closed_form: int                # fold_timing(m, n, K').scalesim_cycles, folds one after another
    match: bool                     # cycles and all three SRAM word counts equal
    pe_cycles: int
    macs: int
    seconds: float
    overflow_events: int
    reps: int = 0                   # GEMMs the emulated cycles stand for (0: the layer's count)


#: the largest layer --emulate runs (a few minutes at 1e10 PE-cycles/s; operands of at most 0.5 GB)
MAX_PE_CYCLES = 2 * 10**12
MAX_OPERAND_ELEMENTS = 2**28


class EmulatedTiming:
    """Timing strategy (``accelsim.sim.engine.TimingModel``): the GEMMs of layers whose name matches ``pattern``
    (a glob; None = all) run through the array — seeded random 8-bit codes over the packed reduction length K'
    (a GEMM's cycles depend on its shape only), the hw config's ``acc_bits`` (at most 64) and overflow mode —
    and their measured cycles and SRAM words replace the closed form. A layer of ``count`` identical GEMMs
    (groups, heads) is emulated once, as the closed form counts it. With ``timing.stationary_double_buffer`` the
    busy cycles stay analytical (the emulator runs SCALE-Sim's folds one after another) and only the
    comparison is reported. :meth:`annotate` puts ``emulated_cycles`` (× count) and ``emulation_match`` into
    the report's layers."""

    def __init__(self, model, pattern: str | None = None, seed: int = 0, trace_dir=None, trace_max_cycles: int = 10000):
        from ..lowering import lower
        gemms = [w for w in lower(model) if w.gemm is not None]
        self.names = [w.layer.name for w in gemms]
        self.layers = {w.layer.name: w.layer for w in gemms}
        self.pattern, self.seed = pattern, seed
        self.trace_dir, self.trace_max_cycles = trace_dir, int(trace_max_cycles)
        self.results: dict[str, LayerEmulation] = {}
        self.hw_name = ""

    def selected(self) -> list[str]:
        from fnmatch import fnmatchcase
        return [n for n in self.names if self.pattern is None or fnmatchcase(n, self.pattern)]

    def fold_timing(self, m, n, k, hw) -> FoldTiming:
        a = hw.array
        if any(np.ndim(x) for x in (a.rows, a.cols)) or np.ndim(m) != 1 or len(m) != len(self.names):
            raise MappingError("--emulate runs one hw configuration on the model's GEMMs (no sweeps)")
        ana = fold_timing(m, n, k, a.rows, a.cols, a.dataflow, hw.timing.stationary_double_buffer)
        plain = fold_timing(m, n, k, a.rows, a.cols, a.dataflow)
        out = {f: np.array(getattr(ana, f)) for f in FoldTiming.__slots__}
        rng = np.random.default_rng(self.seed)
        acc_bits = min(max(int(hw.pe.acc_bits), 8), 64)
        chosen = set(self.selected())
        self.hw_name = f"{int(a.rows)}x{int(a.cols)} {a.dataflow.name.upper()}"
        for j, name in enumerate(self.names):
            if name not in chosen:
                continue
            mj, nj, kj = int(m[j]), int(n[j]), int(k[j])
            pe_cycles = int(plain.scalesim_cycles[j] + 1) * int(a.rows) * int(a.cols)
            memory = working_set_bytes(mj, nj, kj, int(a.rows), int(a.cols), a.dataflow)
            if pe_cycles > MAX_PE_CYCLES or max(mj * kj, kj * nj, mj * nj) > MAX_OPERAND_ELEMENTS or \
                    memory > MAX_WORKING_SET_BYTES:
                raise MappingError(f"--emulate: layer {name} ({mj}x{kj} @ {kj}x{nj}) needs {pe_cycles:.3g} PE-cycles "
                                   f"and {memory / 2**30:.2g} GiB; at most {MAX_PE_CYCLES:.0e} per layer (and "
                                   f"{MAX_OPERAND_ELEMENTS:.0e} operand elements, {MAX_WORKING_SET_BYTES / 2**30:.0f} "
                                   "GiB) are emulated: select smaller layers with --emulate GLOB")
            x = np.frombuffer(rng.bytes(mj * kj), np.int8).reshape(mj, kj)     # uniform int8 codes
            w = np.frombuffer(rng.bytes(kj * nj), np.int8).reshape(kj, nj)
            t0 = time.perf_counter()
            run = systolic_gemm(x, w, int(a.rows), int(a.cols), a.dataflow, acc_bits=acc_bits, overflow=hw.pe.overflow)
            dt = time.perf_counter() - t0
            got = (run.scalesim_cycles, run.sram_ifmap_reads, run.sram_filter_reads, run.sram_ofmap_writes_scalesim)
            want = tuple(int(getattr(plain, f)[j]) for f in ("scalesim_cycles", "sram_ifmap_reads",
                                                              "sram_filter_reads", "sram_ofmap_writes"))
            self.results[name] = LayerEmulation(run.scalesim_cycles, want[0], got == want, run.pe_cycles,
                                                mj * nj * kj, dt, run.overflow_events)
            if self.trace_dir is not None:
                self._trace(j, name, mj, nj, kj, hw)
            if not hw.timing.stationary_double_buffer:
                out["cycles"][j], out["scalesim_cycles"][j] = run.cycles, run.scalesim_cycles
                out["cycles_per_fold"][j] = run.cycles // run.folds
                out["sram_ifmap_reads"][j], out["sram_filter_reads"][j] = got[1], got[2]
                out["sram_ofmap_writes"][j] = got[3]
        return FoldTiming(**out)

    def grouped_fold_timing(self, js, m, n, k, groups, hw) -> FoldTiming:
        """The grouped/depthwise GEMMs ``js`` (indices into the model's GEMMs) spread across the array by the hw
        config's grouped mapping (``hw.array.dataflow`` is its fold model): each selected one runs through
        :func:`systolic_grouped` — channels on the columns, or on the rows by running the transpose — and its
        measured cycles and SRAM words replace the closed form of the spread mapping."""
        a = hw.array
        flow, rows, cols = a.dataflow, int(a.rows), int(a.cols)
        on_rows = flow.rows != "m"                          # the ``rows`` mapping: the transpose
        width = np.asarray(n) * np.asarray(groups)
        plain = fold_timing(m, width, k, rows, cols, flow)
        out = {f: np.array(getattr(plain, f)) for f in FoldTiming.__slots__}
        out["sram_ifmap_reads"] = np.asarray(grouped_input_words(m, n, k, groups))
        rng = np.random.default_rng(self.seed + 1)
        acc_bits = min(max(int(hw.pe.acc_bits), 8), 64)
        chosen = set(self.selected())
        for i, j in enumerate(js):
            name = self.names[int(j)]
            if name not in chosen:
                continue
            g, mi, ni, ki = int(groups[i]), int(m[i]), int(n[i]), int(k[i])
            x = np.frombuffer(rng.bytes(g * mi * ki), np.int8).reshape(g, mi, ki)
            w = np.frombuffer(rng.bytes(g * ki * ni), np.int8).reshape(g, ki, ni)
            t0 = time.perf_counter()
            run = systolic_grouped(x, w, cols if on_rows else rows, rows if on_rows else cols, acc_bits=acc_bits,
                                   overflow=hw.pe.overflow)
            dt = time.perf_counter() - t0
            got = (run.scalesim_cycles, run.sram_ifmap_reads, run.sram_filter_reads, run.sram_ofmap_writes_scalesim)
            want = (int(plain.scalesim_cycles[i]), int(out["sram_ifmap_reads"][i]), int(plain.sram_filter_reads[i]),
                    int(plain.sram_ofmap_writes[i]))
            self.results[name] = LayerEmulation(run.scalesim_cycles, want[0], got == want, run.pe_cycles,
                                                mi * ni * ki * g, dt, run.overflow_events, reps=1)
            out["cycles"][i], out["scalesim_cycles"][i] = run.cycles, run.scalesim_cycles
            out["sram_ifmap_reads"][i], out["sram_filter_reads"][i], out["sram_ofmap_writes"][i] = got[1:]
        return FoldTiming(**out)

    def _trace(self, j: int, name: str, m: int, n: int, k: int, hw) -> None:
        """SCALE-Sim SRAM traces of layer ``name`` into ``trace_dir/layer<j>`` (j = its index among the GEMMs)."""
        from pathlib import Path
        from . import trace as T
        geo = _conv_geometry(self.layers[name], m, k)
        a = hw.array
        _, lines = gemm_trace(m, n, k, int(a.rows), int(a.cols), a.dataflow, geo, self.trace_max_cycles, self.seed)
        T.write_traces(Path(self.trace_dir) / f"layer{j}", lines)
        first, self._traced = not getattr(self, "_traced", False), True
        with open(Path(self.trace_dir) / "LAYERS.csv", "w" if first else "a", encoding="utf-8") as fh:
            if first:
                fh.write("folder,layer,m,n,k,cycles_traced\n")
            fh.write(f"layer{j},{name},{m},{n},{k},{lines['output'].shape[0]}\n")

    def summary(self) -> str:
        """A few lines: what ran on the array, how fast, and whether it matched the closed form."""
        res = self.results
        if not res:
            return f"emulation: no GEMM layer matches {self.pattern!r}"
        pe = sum(e.pe_cycles for e in res.values())
        sec = sum(e.seconds for e in res.values())
        bad = [n for n, e in res.items() if not e.match]
        lines = [f"emulated on the array ({self.hw_name}): {len(res)} GEMM layers, {pe:,} PE-cycles in {sec:.2f} s "
                 f"({pe / sec if sec else 0:.3g} PE-cycles/s); emulated_cycles = closed form (SCALE-Sim convention) "
                 f"and SRAM words equal on {len(res) - len(bad)}/{len(res)} layers"]
        lines += [f"  MISMATCH {n}: emulated {res[n].scalesim_cycles:,} vs {res[n].closed_form:,}" for n in bad[:10]]
        if self.trace_dir is not None:
            lines.append(f"SCALE-Sim SRAM traces (at most {self.trace_max_cycles:,} cycles per layer) in "
                         f"{self.trace_dir}")
        return "\n".join(lines)

    def annotate(self, report):
        """``report`` with ``emulated_cycles`` and ``emulation_match`` set on the emulated layers."""
        from dataclasses import replace
        layers = []
        for c in report.layers:
            e = self.results.get(c.name)
            if e is not None and c.count:
                c = replace(c, timing=replace(c.timing, emulated_cycles=e.scalesim_cycles * (e.reps or c.count),
                                              emulation_match=e.match))
            layers.append(c)
        return replace(report, layers=tuple(layers))


def gemm_trace(m: int, n: int, k: int, rows: int, cols: int, flow: DataflowSpec, geo=None, max_cycles: int = 10000,
               seed: int = 0):
    """SCALE-Sim SRAM trace matrices (:func:`accelsim.sim.trace.trace_lines`) of an ``m×k @ k×n`` GEMM on the
    array, at most ``max_cycles`` lines; ``geo`` (:class:`accelsim.sim.trace.ConvGeometry`) addresses a conv's
    operands, None a GEMM's. Returns ``(ArrayRun, lines)``."""
    from . import trace as T
    rng = np.random.default_rng(seed)
    a = rng.integers(-128, 128, (m, k), dtype=np.int16)
    b = rng.integers(-127, 128, (k, n), dtype=np.int16)
    bound = int(fold_timing([m], [n], [k], rows, cols, flow).cycles[0])
    run, (tr, _, starts) = systolic_gemm(a, b, rows, cols, flow, trace_cycles=min(max_cycles, bound) + 1)
    cycles = min(int(starts[-1]), max_cycles)
    addr = T.address_matrices(geo if geo is not None else T.gemm_geometry(m, k), n)
    return run, T.trace_lines(tr, cycles, roles(flow), flow, rows, cols, addr)


def _conv_geometry(layer, m: int, k: int):
    """SCALE-Sim's conv addressing for an unpadded, undilated conv with square strides whose GEMM the array runs
    unpacked (M = Ho·Wo, K = R·S·C per group); None (GEMM addressing) otherwise."""
    from . import trace as T
    if layer.op != "conv2d":
        return None
    a = layer.attrs
    (kh, kw), (sh, sw) = a["kernel"], a["stride"]
    c, h, w = layer.in_shapes[0][-3:]
    if any(a["padding"]) or tuple(a["dilation"]) != (1, 1) or sh != sw:
        return None
    geo = T.ConvGeometry(h, w, kh, kw, c // a["groups"], sh)
    ho, wo = geo.out_hw
    return geo if (ho * wo, kh * kw * geo.c) == (m, k) else None
