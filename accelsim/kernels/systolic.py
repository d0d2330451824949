"""Cycle-level systolic array: one Numba kernel that moves integer values through an R × C grid of PEs.

Internal (arrays and scalars in; call :mod:`accelsim.sim.emulate`). The dataflow arrives as *roles*, derived by
the caller from the dataflow table (:data:`accelsim.hw.dataflow.DATAFLOWS`): each operand of
``O(m×n) = A(m×k) @ B(k×n)`` is either

* ``H`` — it spans the array-row dimension and time: it enters at the left edge, row ``i`` delayed by ``i``
  cycles (skew), and moves one PE to the right per cycle;
* ``V`` — it spans the array-column dimension and time: it enters at the top edge, column ``j`` delayed by
  ``j``, and moves one PE down per cycle;
* ``S`` — it spans both spatial dimensions: it stays in the PEs for the whole fold.

Exactly one operand has each role. The output is one of them: stationary (OS: an accumulator per PE) or moving
(WS/IS: a partial sum that each PE on its way increases). There is no per-dataflow code: the kernel only knows
roles, so a new dataflow row of the table runs as soon as its roles follow from it.

**Registers.** Each role has a register plane of R × C (× ``f`` lanes for inputs: Bit Fusion packs ``f`` narrow
operands per PE register, :mod:`accelsim.hw.mac`). A moving plane is a shift register chain stored as a ring: at
cycle ``c`` logical column ``j`` of the H plane lives in physical column ``(j − c) mod C`` (rows for V), so the
shift of every register by one PE costs nothing and each cycle only writes the new edge values into the slot
the oldest value just left. Every value enters the array at an edge; nothing is read from the operand matrices
inside the grid.

**One fold** (``fr``, ``fc`` = tiles of the row and column dimensions, padded to the full array as SCALE-Sim
does). With ``P = R`` when the stationary operand is an input, else 0, local cycle ``c``:

* ``c < P``: preload — the stationary tile shifts in from the top, one row per cycle (row ``R−1`` first);
* ``c ≥ P``: the H value with time index ``τ`` enters row ``i`` at ``c = P + i + τ``, the V value at column
  ``j`` at ``P + j + τ``; they meet in PE(i, j) at ``P + i + j + τ``, which does its ``f`` MACs there;
* the fold ends with the cycle of its last MAC (PE(R−1, C−1), ``τ = T−1``): the loop stops when every PE has
  done its ``T`` MACs, so a fold *measures* ``P + R + C + T − 2`` cycles. The last partial sum leaves the array
  one cycle later, overlapping the next fold (SCALE-Sim's convention; its reported ``Total Cycles`` is the sum
  over folds minus 1).

**Accumulation order = the integer GEMM's** (:func:`accelsim.kernels.igemm.gemm_checked`): every output starts at
0 and adds its products in k order (a PE's ``f`` lanes in order; down a column when K is spatial, in time when K
is temporal). A moving partial sum enters the top of the column with the value the previous K-fold left (0 for
the first), so the chain over folds is the same sequence. The bias is added last (:func:`add_bias`). Each step
is one ``acc_bits`` register: ``MODE_WRAP`` sign-extends from ``acc_bits``, ``MODE_SAT`` clamps, both count the
steps whose exact sum left the range (an overflow counter that travels with the partial sum); ``MODE_EXACT``
is used only when no partial sum can leave the range (the caller's bound), and skips the checks.

**Counters per fold** (``cnt[fold]``): cycles, busy PE-cycles (MACs on real, unpadded operands), words read from
SRAM by role (an edge injection or preload of a real element; a moving partial sum re-entering counts in
``psum reads``), outputs written (real partial sums leaving the array, or the stationary accumulators drained).
"""
from __future__ import annotations

import numpy as np

from accelsim.kernels._jit import njit, njit_parallel, prange

ROLE_H, ROLE_V, ROLE_S = 0, 1, 2
MODE_EXACT, MODE_WRAP, MODE_SAT = 0, 1, 2
# columns of the per-fold counter array
CYCLES, BUSY, READ_H, READ_V, READ_S, WRITES, PSUM_READS = 0, 1, 2, 3, 4, 5, 6
N_COUNTERS = 7
TR_WRITE = 3       # trace channels: ROLE_H, ROLE_V, ROLE_S reads, then writes


@njit
def _step(s, mode, sh, lo, hi):
    """One accumulator register update from the exact int64 sum ``s``: (new value, 1 if it overflowed)."""
    if mode == MODE_WRAP:
        w = (s << sh) >> sh
    else:
        w = min(max(s, lo), hi)
    return w, 1 if w != s else 0


@njit
def _mac_row(accp, ovfp, ro, inp, i, oh, qy, ry, f, j0, j1, mode, sh, lo, hi):
    """PEs ``j0 <= j < j1`` of array row ``i`` when the H plane holds an input: lane by lane
    ``acc[ro, j] += H[u, i, j] · inp[qy, u, ry, j]``, H read through its mirrored ring at ``oh + j``."""
    for u in range(f):
        xs = inp[ROLE_H, u, i, oh:oh + accp.shape[1]]
        if mode == MODE_EXACT:
            for j_ in range(j0, j1):
                j = np.uint64(j_)      # unsigned: no negative-index wraparound in the loop, so LLVM vectorizes it
                accp[ro, j] += xs[j] * inp[qy, u, ry, j]
        else:
            for j_ in range(j0, j1):
                j = np.uint64(j_)
                w, o = _step(np.int64(accp[ro, j]) + np.int64(xs[j]) * np.int64(inp[qy, u, ry, j]), mode, sh, lo, hi)
                accp[ro, j] = w
                ovfp[ro, j] += o


@njit
def _mac_out_h(accp, ovfp, i, oh, inp, rv, f, j0, j1, mode, sh, lo, hi):
    """Row ``i`` when the partial sums move right (H plane = output): ``acc[i, (j + oh) mod C] +=
    V[u, rv, j] · S[u, i, j]``."""
    C = accp.shape[1]
    for j in range(j0, j1):
        p = (j + oh) % C
        for u in range(f):
            s = np.int64(accp[i, p]) + np.int64(inp[ROLE_V, u, rv, j]) * np.int64(inp[ROLE_S, u, i, j])
            if mode == MODE_EXACT:
                accp[i, p] = s
            else:
                w, o = _step(s, mode, sh, lo, hi)
                accp[i, p] = w
                ovfp[i, p] += o


@njit
def _fold(fr, fc, first, src_h, src_v, src_s, acc, ovf, out_role, rows, cols, d_rows, d_cols, t_len, f,
          mode, sh, lo, hi, inp, accp, ovfp, cnt, tr, t0):
    """Run one fold on the planes ``inp`` (3, f, R, C) and ``accp``/``ovfp`` (R, C); add its counters to ``cnt``.

    ``tr`` (cycles, 4, max(R, C)) int64, −1 on entry, records per global cycle ``t0 + c`` the flat index (in the
    role layout) of the element each edge row/column reads (channels ROLE_H/V/S) or writes (TR_WRITE) when it has
    rows; it is empty otherwise (no per-cycle arrays). A drained stationary output is recorded as SCALE-Sim
    writes it: PE(i, j)'s value at cycle ``P + T − 1 + (R − 1 − i) + j``."""
    R, C, T = rows, cols, t_len
    r0, c0 = fr * R, fc * C
    vr, vc = min(R, d_rows - r0), min(C, d_cols - c0)
    tracing = tr.shape[0] > 0
    p = R if out_role != ROLE_S else 0
    # the stationary plane: preload an input over R cycles, or load the output accumulators
    if out_role == ROLE_S:
        for i in range(R):
            for j in range(C):
                ok = i < vr and j < vc
                accp[i, j] = acc[r0 + i, c0 + j] if ok else 0
                ovfp[i, j] = ovf[r0 + i, c0 + j] if ok else 0
    else:
        for pc in range(p):
            row = R - 1 - pc
            for u in range(f):
                for i in range(R - 1, 0, -1):
                    for j in range(C):
                        inp[ROLE_S, u, i, j] = inp[ROLE_S, u, i - 1, j]
                for j in range(C):
                    inp[ROLE_S, u, 0, j] = src_s[u, r0 + row, c0 + j] if (row < vr and j < vc) else 0
            if row < vr:
                cnt[READ_S] += vc
            if tracing and t0 + pc < tr.shape[0] and row < vr:
                for j in range(vc):
                    tr[t0 + pc, ROLE_S, j] = (r0 + row) * d_cols + c0 + j
        for i in range(R):
            for j in range(C):
                accp[i, j] = 0
                ovfp[i, j] = 0
    total = R * C * T
    done = 0
    c = p
    while True:
        _edges(c, p, r0, c0, vr, vc, first, src_h, src_v, acc, ovf, out_role, R, C, d_rows, d_cols, T, f,
               inp, accp, ovfp, cnt, tr, t0, True, mode != MODE_EXACT)
        oh = (-c) % C                  # physical column of the H plane's logical column 0
        rv = (-c) % R - 1              # physical row of the V plane's logical row i: (i − c) mod R
        for i in range(R):
            rv += 1
            if rv == R:
                rv = 0
            jlo = max(0, c - p - i - T + 1)
            jhi = min(C, c - p - i + 1)
            if jlo >= jhi:
                continue
            done += jhi - jlo
            if i < vr and jlo < vc:
                cnt[BUSY] += min(jhi, vc) - jlo
            if out_role == ROLE_H:
                _mac_out_h(accp, ovfp, i, oh, inp, rv, f, jlo, jhi, mode, sh, lo, hi)
                continue
            ro = rv if out_role == ROLE_V else i
            qy = ROLE_S if out_role == ROLE_V else ROLE_V
            ry = i if out_role == ROLE_V else rv
            if mode != MODE_EXACT:
                _mac_row(accp, ovfp, ro, inp, i, oh, qy, ry, f, jlo, jhi, mode, sh, lo, hi)
                continue
            # the hot loop, inline: unsigned indices keep Numba's negative-index wraparound out of it, so LLVM
            # vectorizes it (H is read through its mirrored ring at oh + j)
            arow = accp[ro]
            for u in range(f):
                xrow = inp[ROLE_H, u, i]
                yrow = inp[qy, u, ry]
                for j_ in range(jlo, jhi):
                    j = np.uint64(j_)
                    arow[j] += xrow[np.uint64(j_ + oh)] * yrow[j]
        if done >= total:
            break
        c += 1
    cnt[CYCLES] += c + 1
    # the last partial sums leave the array in the next cycle (overlapping the next fold)
    _edges(c + 1, p, r0, c0, vr, vc, first, src_h, src_v, acc, ovf, out_role, R, C, d_rows, d_cols, T, f,
           inp, accp, ovfp, cnt, tr, t0, False, mode != MODE_EXACT)
    if out_role == ROLE_S:             # drain the stationary accumulators
        for i in range(vr):
            for j in range(vc):
                acc[r0 + i, c0 + j] = accp[i, j]
                ovf[r0 + i, c0 + j] = ovfp[i, j]
                cyc = t0 + p + T - 1 + (R - 1 - i) + j
                if tracing and cyc < tr.shape[0]:
                    tr[cyc, TR_WRITE, j] = (r0 + i) * d_cols + c0 + j
        cnt[WRITES] += vr * vc
    return c + 1


@njit
def _edges(c, p, r0, c0, vr, vc, first, src_h, src_v, acc, ovf, out_role, R, C, d_rows, d_cols, T, f,
           inp, accp, ovfp, cnt, tr, t0, inject, checked):
    """Cycle ``c``'s edge traffic: a moving output's finished partial sums leave (they sat in the last PE in
    cycle c−1), then each edge row (H) / column (V) takes its next value — edge ``e`` the one with time index
    ``c − P − e`` — or a zero bubble outside its time window and on padded rows/columns."""
    tracing = tr.shape[0] > 0 and t0 + c < tr.shape[0]
    for role in range(2):
        n_edge = R if role == ROLE_H else C
        length = C if role == ROLE_H else R      # PEs a value passes through
        slot = (-c) % length
        base = r0 if role == ROLE_H else c0
        valid = vr if role == ROLE_H else vc
        e_lo = max(0, c - p - T + 1)             # edges whose time index c − P − e lies in [0, T)
        e_hi = min(valid, c - p + 1)
        if out_role == role:
            x_lo = max(0, c - p - length - T + 1)   # leaving: te = c − 1 − P − e − (length − 1) in [0, T)
            x_hi = min(valid, c - p - length + 1)
            for e in range(x_lo, x_hi):
                te = c - p - length - e
                if role == ROLE_H:
                    acc[base + e, te] = accp[e, slot]
                    if checked:
                        ovf[base + e, te] = ovfp[e, slot]
                else:
                    acc[base + e, te] = accp[slot, e]
                    if checked:
                        ovf[base + e, te] = ovfp[slot, e]
                if tr.shape[0] > t0 + c - 1 >= 0:
                    tr[t0 + c - 1, TR_WRITE, e] = (base + e) * T + te
            cnt[WRITES] += max(0, x_hi - x_lo)
            if not inject:
                continue
            for e in range(n_edge):
                ti = c - p - e
                live = e_lo <= e < e_hi
                v = acc[base + e, ti] if live else 0
                if role == ROLE_H:
                    accp[e, slot] = v
                else:
                    accp[slot, e] = v
                if checked:
                    o = ovf[base + e, ti] if live else 0
                    if role == ROLE_H:
                        ovfp[e, slot] = o
                    else:
                        ovfp[slot, e] = o
            if not first:
                cnt[PSUM_READS] += max(0, e_hi - e_lo)
            continue
        if not inject:
            continue
        src = src_h if role == ROLE_H else src_v
        for u in range(f):
            if role == ROLE_H:
                for e in range(n_edge):
                    v = src[u, base + e, c - p - e] if e_lo <= e < e_hi else 0
                    inp[ROLE_H, u, e, slot] = v
                    inp[ROLE_H, u, e, slot + C] = v     # mirror: a row's C registers read contiguously
            else:
                for e in range(n_edge):
                    inp[ROLE_V, u, slot, e] = src[u, base + e, c - p - e] if e_lo <= e < e_hi else 0
        cnt[READ_H + role] += max(0, e_hi - e_lo)
        if tracing:
            for e in range(e_lo, e_hi):
                tr[t0 + c, role, e] = (base + e) * T + c - p - e


@njit_parallel
def run_array(src_h, src_v, src_s, acc, ovf, out_role, red_axis, rows, cols, d_rows, d_cols, t_len, f,
              mode, acc_bits, lo, hi, cnt):
    """All folds of one GEMM. ``red_axis``: where K lies (0 rows, 1 cols, 2 time); folds that share outputs
    (along K) run in order within one chain, chains run in parallel. ``cnt``: (folds, N_COUNTERS) int64, fold
    ``fr · col_folds + fc``. Sources: int (f, dim, dim) in role layout (H: rows×T, V: cols×T, S: rows×cols; the
    output's own entry is unused); ``acc``/``ovf``: the output in its role layout, zero on entry."""
    fr_n = (d_rows + rows - 1) // rows
    fc_n = (d_cols + cols - 1) // cols
    if red_axis == 0:
        n_chain, n_step = fc_n, fr_n
    elif red_axis == 1:
        n_chain, n_step = fr_n, fc_n
    else:
        n_chain, n_step = fr_n * fc_n, 1
    sh = 64 - acc_bits
    tr = np.zeros((0, 4, 1), dtype=np.int64)
    for ch_ in prange(n_chain):
        ch = np.int64(ch_)
        inp = np.zeros((3, f, rows, 2 * cols), dtype=src_h.dtype)
        accp = np.zeros((rows, cols), dtype=acc.dtype)
        ovfp = np.zeros((rows, cols), dtype=ovf.dtype)
        for s in range(n_step):
            if red_axis == 0:
                fr, fc = s, ch
            elif red_axis == 1:
                fr, fc = ch, s
            else:
                fr, fc = ch // fc_n, ch % fc_n
            _fold(fr, fc, s == 0, src_h, src_v, src_s, acc, ovf, out_role, rows, cols, d_rows, d_cols, t_len, f,
                  mode, sh, lo, hi, inp, accp, ovfp, cnt[fr * fc_n + fc], tr, 0)


@njit
def run_array_traced(src_h, src_v, src_s, acc, ovf, out_role, rows, cols, d_rows, d_cols, t_len, f,
                     mode, acc_bits, lo, hi, cnt, order, tr):
    """Sequential twin of :func:`run_array` that also records edge addresses into ``tr`` (module docstring);
    folds run in ``order`` ((folds, 2) of (fr, fc)), one after another on the global cycle axis."""
    fc_n = (d_cols + cols - 1) // cols
    sh = 64 - acc_bits
    inp = np.zeros((3, f, rows, 2 * cols), dtype=src_h.dtype)
    accp = np.zeros((rows, cols), dtype=acc.dtype)
    ovfp = np.zeros((rows, cols), dtype=ovf.dtype)
    t0 = 0
    seen = np.zeros(order.shape[0] + 1, dtype=np.int64)
    for q in range(order.shape[0]):
        fr, fc = order[q, 0], order[q, 1]
        first = True
        for qq in range(q):
            if (out_role == ROLE_V and order[qq, 1] == fc) or (out_role == ROLE_H and order[qq, 0] == fr):
                first = False
        t0 += _fold(fr, fc, first, src_h, src_v, src_s, acc, ovf, out_role, rows, cols, d_rows, d_cols, t_len, f,
                    mode, sh, lo, hi, inp, accp, ovfp, cnt[fr * fc_n + fc], tr, t0)
        seen[q + 1] = t0
    return seen


@njit_parallel
def add_bias(acc, ovf, bias, mode, acc_bits, lo, hi):
    """The accumulator stage after the array: ``acc[i, j] += bias[j]`` as one more register step (``acc`` (M, N),
    ``ovf`` (M, N) overflow counts)."""
    sh = 64 - acc_bits
    for i_ in prange(acc.shape[0]):
        i = np.int64(i_)
        for j in range(acc.shape[1]):
            s = np.int64(acc[i, j]) + np.int64(bias[j])
            if mode == MODE_EXACT:
                acc[i, j] = s
            else:
                w, o = _step(s, mode, sh, lo, hi)
                acc[i, j] = w
                ovf[i, j] += o
