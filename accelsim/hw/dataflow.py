"""Systolic-array dataflows as data, and the array timing of one parameterized fold model.

A dataflow is one row of :data:`DATAFLOWS`: which GEMM dimension of ``(m×k) @ (k×n)`` is spread over the
array's rows, which over its columns, and which runs in time (DESIGN §5.1)::

    dataflow   rows (Sr)   cols (Sc)   time (T)   stationary operand (the one without the time dim)
    OS         m           n           k          output
    WS         k           n           m          weight
    IS         k           m           n          input

Everything else follows from that row. With ``D[x]`` the size of dimension ``x`` and ``tiles(x) =
ceil(D[x] / R)`` on rows, ``ceil(D[x] / C)`` on cols, 1 in time:

    folds            = tiles(rows) · tiles(cols)          (every fold padded to the full array)
    cycles per fold  = P + R + C + T − 2,   P = R if the stationary operand is an input (preload), else 0
    scalesim_cycles  = folds · cycles_per_fold − 1         (SCALE-Sim's reported ``Total Cycles``)
    SRAM words       = size(X) · tiles(the dim X lacks)    for X in input (m,k), weight (k,n), output (m,n)
                       (+ SCALE-Sim's over-count of folds·(R + C) drain writes when the output is stationary)

which gives SCALE-Sim's OS/WS/IS read and write counts (e.g. WS: ifmap M·K·ceil(N/C), filter K·N, ofmap
M·N·ceil(K/R)). On a degenerate 1×1 array SCALE-Sim's −1 can make utilization exceed 1; utilization divides
by ``max(scalesim_cycles, 1)``.

**Double-buffered stationary operand** (``timing.stationary_double_buffer``; TPU v1, Jouppi et al. ISCA 2017
§2: the weight tile for the next fold shifts in while the current one computes): folds follow each other
back to back, so a fold costs ``max(T, P)`` and the first preload and one fill + drain are paid once per
GEMM: ``cycles = P + folds · max(T, P) + R + C − 2``.

**Grouped and depthwise convs** (``array.grouped``, a row of :data:`GROUPED_MAPPINGS`). A conv with ``g``
groups is ``g`` GEMMs ``(m×k) @ (k×n)`` (a depthwise 3×3 conv: ``n = 1``, ``k = 9``). ``serial`` runs them one
after another with the array's dataflow (SCALE-Sim splits a ``DP`` layer per channel the same way), so a
depthwise layer occupies ``k`` rows and one column. ``cols`` spreads the ``g·n`` output channels across the
columns, the output pixels ``m`` across the rows, and runs the taps ``k`` in time — the fold model above with
rows = m, cols = g·n, time = k and nothing preloaded (each PE accumulates one output in place) — and every
column is fed its own channel's input (``m·k`` input words per output channel: ``m·k·g·n`` in all); ``rows`` is
its transpose (channels on the rows, pixels on the columns). Utilization is then ``m·g·n·k`` MACs over
``cycles · R · C``, and a depthwise layer with at least C channels and R pixels fills every PE of a fold.

Everything is closed-form over int64 numpy arrays (one entry per GEMM); callers bound the shapes so that no
product wraps.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType

import numpy as np

GEMM_DIMS = ("m", "n", "k")
#: The GEMM dimensions each operand spans: input (m×k), weight (k×n), output (m×n).
OPERAND_DIMS = MappingProxyType({"input": ("m", "k"), "weight": ("k", "n"), "output": ("m", "n")})


@dataclass(frozen=True, slots=True)
class DataflowSpec:
    """One dataflow: the GEMM dimension on the array's rows, on its columns, and in time."""
    name: str
    rows: str
    cols: str
    time: str
    source: str = ""
    #: the operand held in the PEs: the one that does not span the time dimension
    stationary: str = field(init=False, compare=False, repr=False)

    def __post_init__(self):
        if sorted((self.rows, self.cols, self.time)) != sorted(GEMM_DIMS):
            raise ValueError(f"dataflow {self.name}: rows/cols/time must be a permutation of m, n, k")
        object.__setattr__(self, "stationary", next(op for op, dims in OPERAND_DIMS.items() if self.time not in dims))

    @property
    def preloads(self) -> bool:
        """An input operand held stationary must be shifted in (R cycles) before a fold computes."""
        return self.stationary != "output"

    @property
    def reduction_spatial(self) -> bool:
        """K is spread over the array: each fold leaves partial sums that later folds complete."""
        return self.time != "k"


DATAFLOWS: dict[str, DataflowSpec] = {
    "os": DataflowSpec("os", "m", "n", "k", "SCALE-Sim v3 output stationary"),
    "ws": DataflowSpec("ws", "k", "n", "m", "SCALE-Sim v3 weight stationary (TPU v1)"),
    "is": DataflowSpec("is", "k", "m", "n", "SCALE-Sim v3 input stationary"),
}
OS, WS, IS = DATAFLOWS["os"], DATAFLOWS["ws"], DATAFLOWS["is"]


@dataclass(frozen=True, slots=True)
class GroupedMapping:
    """How the ``g`` GEMMs of a grouped conv use the array: one after another (``flow`` None), or spread across
    it as one GEMM ``m × (g·n)`` with the fold model of ``flow`` and a per-column (per-row) input stream."""
    name: str
    flow: DataflowSpec | None
    source: str


GROUPED_MAPPINGS: dict[str, GroupedMapping] = {
    "serial": GroupedMapping("serial", None, "SCALE-Sim v3: a depthwise (DP) layer is split per channel"),
    "cols": GroupedMapping("cols", DataflowSpec("dw_cols", "m", "n", "k", "channels on the columns"),
                           "channels across the columns, pixels on the rows, taps in time (output stationary per "
                           "channel; FuSeConv, Selvam et al. DATE 2021, maps depthwise rows onto array lines)"),
    "rows": GroupedMapping("rows", DataflowSpec("dw_rows", "n", "m", "k", "channels on the rows"),
                           "channels across the rows, pixels on the columns, taps in time (the transpose of cols)"),
}


def grouped_input_words(m, n, k, groups):
    """Input words of a spread grouped GEMM: every output channel's PE line reads its own ``m·k`` inputs."""
    return np.asarray(m, dtype=np.int64) * k * n * groups


class Dataflow:
    """The earlier ``Dataflow`` enum's names, kept for scripts: ``Dataflow.WS`` is the table's WS row."""
    OS, WS, IS = OS, WS, IS


@dataclass(frozen=True, slots=True)
class FoldTiming:
    """Per-GEMM array timing (int64 arrays unless noted), one entry per GEMM of the batch."""
    row_folds: np.ndarray
    col_folds: np.ndarray
    temporal: np.ndarray             # T: cycles one fold streams through the array
    cycles_per_fold: np.ndarray      # what one fold adds to ``cycles`` (P + R + C + T − 2, or max(T, P))
    cycles: np.ndarray               # array busy cycles of the whole GEMM
    scalesim_cycles: np.ndarray
    utilization: np.ndarray          # float64, M·N·K / (scalesim_cycles · R · C)
    mapping_efficiency: np.ndarray   # float64, Sr·Sc / (folds · R · C)
    sram_ifmap_reads: np.ndarray
    sram_filter_reads: np.ndarray
    sram_ofmap_writes: np.ndarray

    @property
    def folds(self) -> np.ndarray:
        return self.row_folds * self.col_folds


def _ceil_div(a: np.ndarray, b: int | np.ndarray) -> np.ndarray:
    return -(-a // b)


def spatial_temporal(m, n, k, flow: DataflowSpec):
    """Return (Sr, Sc, T) for the dataflow, per the mapping table above."""
    dims = {"m": m, "n": n, "k": k}
    return dims[flow.rows], dims[flow.cols], dims[flow.time]


def fold_timing(m, n, k, rows: int, cols: int, flow: DataflowSpec,
                stationary_double_buffer: bool = False) -> FoldTiming:
    """Closed-form timing and SRAM words of GEMMs ``m×k @ k×n`` (arrays of equal length) on an R × C array."""
    dims = {name: np.asarray(v, dtype=np.int64) for name, v in zip(GEMM_DIMS, (m, n, k))}
    extent = {flow.rows: rows, flow.cols: cols}
    tiles = {d: _ceil_div(dims[d], extent[d]) for d in extent}          # (the time dimension: one tile)
    row_folds, col_folds, t = tiles[flow.rows], tiles[flow.cols], dims[flow.time]
    folds = row_folds * col_folds
    preload = rows if flow.preloads else 0
    compat_per_fold = t + (preload + rows + cols - 2)          # (integers: any order)
    scalesim = folds * compat_per_fold - 1
    if stationary_double_buffer:
        per_fold = np.maximum(t, preload)
        cycles = preload + folds * per_fold + rows + cols - 2
    else:
        per_fold, cycles = compat_per_fold, folds * compat_per_fold
    macs = (dims["m"] * dims["n"] * dims["k"]).astype(np.float64)
    util = macs / (np.maximum(scalesim, 1).astype(np.float64) * rows * cols)
    mapping = (dims[flow.rows] * dims[flow.cols]).astype(np.float64) / (folds * (rows * cols))
    words = {}
    for op, (a, b) in OPERAND_DIMS.items():
        lacks = next(d for d in GEMM_DIMS if d not in (a, b))
        words[op] = dims[a] * dims[b] * tiles[lacks] if lacks != flow.time else dims[a] * dims[b]   # (· 1)
    if flow.stationary == "output":
        words["output"] = words["output"] + folds * (rows + cols)
    return FoldTiming(row_folds, col_folds, t, per_fold, cycles, scalesim, util, mapping,
                      words["input"], words["weight"], words["output"])
