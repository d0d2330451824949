"""Systolic-array timing: SCALE-Sim v3's fold model for OS, WS and IS in one parameterized implementation.

A GEMM ``(M, N, K)`` maps onto an ``R × C`` array (R = rows, C = cols) as (DESIGN §5.1)::

    dataflow   spatial on rows (Sr)   spatial on cols (Sc)   temporal (T)
    OS         M                      N                      K
    WS         K                      N                      M
    IS         K                      M                      N

    folds            = ceil(Sr / R) · ceil(Sc / C)         (every fold padded to the full array)
    cycles per fold  = R + C + T − 2        (OS)
                     = 2R + C + T − 2       (WS, IS: R extra cycles to preload the stationary operand)
    scalesim_cycles  = folds · cycles_per_fold − 1         (SCALE-Sim's reported ``Total Cycles``)
    cycles           = folds · cycles_per_fold             (accelsim's own count: SCALE-Sim's off-by-one removed)

SRAM traffic in words (SCALE-Sim's counts, compat mode, including its OS over-count of ``folds·(R + C)``
ofmap writes: the drain of each fold's outputs through the array)::

    OS: ifmap reads M·K·ceil(N/C), filter reads K·N·ceil(M/R), ofmap writes M·N + folds·(R + C)
    WS: ifmap reads M·K·ceil(N/C), filter reads K·N,           ofmap writes M·N·ceil(K/R)
    IS: ifmap reads K·M,           filter reads N·K·ceil(M/C), ofmap writes M·N·ceil(K/R)

On a degenerate 1×1 array SCALE-Sim's −1 can make utilization exceed 1 (a 1-cycle OS fold reports 0
cycles); utilization divides by ``max(scalesim_cycles, 1)``.

Everything is closed-form over int64 numpy arrays (one entry per GEMM), so a whole network costs
microseconds and huge shapes allocate nothing per cycle.
"""
from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

import numpy as np


class Dataflow(IntEnum):
    OS = 0  # output stationary
    WS = 1  # weight stationary
    IS = 2  # input stationary


@dataclass(frozen=True, slots=True)
class FoldTiming:
    """Per-GEMM timing arrays (int64 unless noted), one entry per GEMM of the batch."""
    row_folds: np.ndarray
    col_folds: np.ndarray
    cycles_per_fold: np.ndarray
    cycles: np.ndarray
    scalesim_cycles: np.ndarray
    utilization: np.ndarray          # float64, M·N·K / (scalesim_cycles · R · C)
    mapping_efficiency: np.ndarray   # float64, Sr·Sc / (folds · R · C)
    sram_ifmap_reads: np.ndarray
    sram_filter_reads: np.ndarray
    sram_ofmap_writes: np.ndarray


def _ceil_div(a: np.ndarray, b: int | np.ndarray) -> np.ndarray:
    return -(-a // b)


def spatial_temporal(m, n, k, dataflow: Dataflow):
    """Return (Sr, Sc, T) for the dataflow, per the mapping table above."""
    if dataflow == Dataflow.OS:
        return m, n, k
    if dataflow == Dataflow.WS:
        return k, n, m
    return k, m, n


def fold_timing(m, n, k, rows: int, cols: int, dataflow: Dataflow) -> FoldTiming:
    """Closed-form SCALE-Sim timing and SRAM traffic for GEMMs ``m×k @ k×n`` (arrays of equal length)."""
    m, n, k = (np.asarray(v, dtype=np.int64) for v in (m, n, k))
    sr, sc, t = spatial_temporal(m, n, k, dataflow)
    row_folds, col_folds = _ceil_div(sr, rows), _ceil_div(sc, cols)
    preload = 0 if dataflow == Dataflow.OS else rows
    per_fold = preload + rows + cols + t - 2
    cycles = row_folds * col_folds * per_fold
    scalesim = cycles - 1
    macs = (m * n * k).astype(np.float64)
    util = macs / (np.maximum(scalesim, 1).astype(np.float64) * rows * cols)
    mapping = (sr * sc).astype(np.float64) / (row_folds * col_folds * rows * cols)
    if dataflow == Dataflow.OS:
        reads_i, reads_f = m * k * _ceil_div(n, cols), k * n * _ceil_div(m, rows)
        writes_o = m * n + row_folds * col_folds * (rows + cols)
    elif dataflow == Dataflow.WS:
        reads_i, reads_f, writes_o = m * k * _ceil_div(n, cols), k * n, m * n * _ceil_div(k, rows)
    else:
        reads_i, reads_f, writes_o = k * m, n * k * _ceil_div(m, cols), m * n * _ceil_div(k, rows)
    return FoldTiming(row_folds, col_folds, per_fold, cycles, scalesim, util, mapping, reads_i, reads_f, writes_o)
