"""SRAM traces in SCALE-Sim 3.0.0's own files and format, from the cycle-level array's edge traffic.

Per layer, SCALE-Sim writes ``IFMAP_SRAM_TRACE.csv``, ``FILTER_SRAM_TRACE.csv`` and ``OFMAP_SRAM_TRACE.csv``: one
line per cycle, ``cycle,addr,addr,...`` (``np.savetxt(fmt="%i", delimiter=",")``), one address per array row (an
operand entering at the left edge) or per array column (entering at the top, preloaded into the PEs, or
written from the bottom), ``-1`` where that edge does nothing. In its CALC bandwidth mode a read is serviced
one cycle after the array asks for it (read lines are numbered ``t + 1``), a write in the cycle it happens
(``t``). Addresses are SCALE-Sim's operand matrices (``compute/operand_matrix.py``, its default offsets):

* ifmap ``(px, w)`` with ``px = oy·Wo + ox``, ``w = (r·S + s)·C + c``: ``((oy·st + r)·W + ox·st + s)·C + c``,
  ``-1`` when the window leaves the input (SCALE-Sim's ``ceil((H − R + st)/st)`` output size allows that);
* filter ``(w, f)``: ``f·R·S·C + w + 10000000``; ofmap ``(px, f)``: ``px·N + f + 20000000``;
* a GEMM ``M, N, K`` is the conv ``H = M, W = K, R = 1, S = K, C = 1``: ifmap ``m·K + k``, filter
  ``n·K + k + 10⁷``, ofmap ``m·N + n + 2·10⁷``.

The cycle each edge reads or writes is the emulator's (:mod:`accelsim.kernels.systolic`): the edge injections
and preloads, a moving partial sum's write in the cycle it completes in the last PE, and a stationary
output's drain as SCALE-Sim schedules it. Traces describe the GEMM the array runs (K' = K at one MAC per PE
cycle, which is SCALE-Sim's only mode), one GEMM of a layer's ``count``.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..hw.dataflow import OPERAND_DIMS, DataflowSpec
from ..kernels import systolic as _k

FILES = {"input": "IFMAP_SRAM_TRACE.csv", "weight": "FILTER_SRAM_TRACE.csv", "output": "OFMAP_SRAM_TRACE.csv"}
OFFSETS = {"input": 0, "weight": 10_000_000, "output": 20_000_000}


@dataclass(frozen=True, slots=True)
class ConvGeometry:
    """A SCALE-Sim conv layer (no padding, batch 1): ifmap H × W × C, filter R × S, stride."""
    h: int
    w: int
    r: int
    s: int
    c: int
    stride: int

    @property
    def out_hw(self) -> tuple[int, int]:
        return -(-(self.h - self.r + self.stride) // self.stride), -(-(self.w - self.s + self.stride) // self.stride)


def gemm_geometry(m: int, k: int) -> ConvGeometry:
    """SCALE-Sim's conv form of a GEMM topology row (``topology_utils.load_arrays_gemm``)."""
    return ConvGeometry(m, k, 1, k, 1, 1)


def address_matrices(geo: ConvGeometry, n: int) -> dict[str, np.ndarray]:
    """SCALE-Sim's operand address matrices (module docstring): ifmap (M, K), filter (K, N), ofmap (M, N)."""
    ho, wo = geo.out_hw
    px = np.arange(ho * wo)[:, None]
    win = np.arange(geo.r * geo.s * geo.c)[None, :]
    oy, ox = np.divmod(px, wo)
    r, rest = np.divmod(win, geo.s * geo.c)
    s, c = np.divmod(rest, geo.c)
    iy, ix = oy * geo.stride + r, ox * geo.stride + s
    ifmap = np.where((iy < geo.h) & (ix < geo.w), (iy * geo.w + ix) * geo.c + c + OFFSETS["input"], -1)
    kk = geo.r * geo.s * geo.c
    filt = np.arange(n)[None, :] * kk + np.arange(kk)[:, None] + OFFSETS["weight"]
    ofmap = np.arange(ho * wo)[:, None] * n + np.arange(n)[None, :] + OFFSETS["output"]
    return {"input": ifmap, "weight": filt, "output": ofmap}


def _role_dims(flow: DataflowSpec, role: int) -> tuple[str, str]:
    return ((flow.rows, flow.time), (flow.cols, flow.time), (flow.rows, flow.cols))[role]


def trace_lines(tr: np.ndarray, cycles: int, roles: dict[str, int], flow: DataflowSpec, rows: int, cols: int,
                addr: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The three trace matrices (cycle column first) from the kernel's edge record ``tr`` (cycles, 4, max(R, C))
    of flat role-layout indices; ``cycles`` lines each."""
    out = {}
    for op, name in FILES.items():
        role = roles[op]
        channel = _k.TR_WRITE if op == "output" else role
        width = rows if role == _k.ROLE_H else cols
        d0, d1 = _role_dims(flow, role)
        a = addr[op] if (d0, d1) == OPERAND_DIMS[op] else addr[op].T    # role layout
        flat = np.ascontiguousarray(a).reshape(-1)
        idx = tr[:cycles, channel, :width]
        lines = np.where(idx >= 0, flat[np.maximum(idx, 0)], -1)
        first = np.arange(cycles)[:, None] + (0 if op == "output" else 1)
        out[op] = np.concatenate([first, lines], axis=1)
    return out


def write_traces(folder: str | Path, lines: dict[str, np.ndarray]) -> None:
    """Write the three files into ``folder`` (created) exactly as SCALE-Sim's ``np.savetxt`` does."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for op, name in FILES.items():
        np.savetxt(folder / name, lines[op], fmt="%i", delimiter=",")
