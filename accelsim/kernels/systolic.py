"""Cycle-level systolic array: Numba kernels that move integer values through an R × C grid of PEs.

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

**One fold** (``fr``, ``fc`` = tiles of the row and column dimensions, padded to the full array as SCALE-Sim
does). With ``P = R`` when the stationary operand is an input, else 0, local cycle ``c``:

* ``c < P``: preload — the stationary tile shifts in from the top, one row per cycle (row ``R−1`` first);
* ``c ≥ P``: the H value with time index ``τ`` enters row ``i`` at ``c = P + i + τ``, the V value at column
  ``j`` at ``P + j + τ``; they meet in PE(i, j) at ``P + i + j + τ``, which does its ``f`` MACs there (Bit
  Fusion packs ``f`` narrow operands per PE register, :mod:`accelsim.hw.mac`); outside its time window an edge
  injects a zero bubble, so every PE computes every cycle and a bubble adds 0;
* the fold ends with the cycle of its last MAC (PE(R−1, C−1), ``τ = T−1``): the clock stops when every PE has
  done its ``T`` MACs, so a fold *measures* ``P + R + C + T − 2`` cycles. The last partial sum leaves the array
  one cycle later, overlapping the next fold (SCALE-Sim's convention; its reported ``Total Cycles`` is the sum
  over folds minus 1).

**Registers as streams.** A shift-register chain holds, at cycle ``c``, the last values its edge injected: PE
``j`` of row ``i`` holds what row ``i``'s edge injected at ``c − j``. So each moving register plane is stored
as the stream of its edge injections, laid out so that one PE row's registers at one cycle are *contiguous*
(the storage of :func:`pack_operand`, per role, with ``Q = C + T − 2`` and the columns padded to ``Cp``, a
multiple of :data:`WIDTH`):

* H (row streams) ``(f, Mp, Q + Cp)``: element ``(u, p, τ)`` at ``[u, p, Q − τ]`` — at step ``s = c − P − i``
  PE(i, j) holds ``τ = s − j``, i.e. ``[u, r0 + i, Q − s + j]``;
* V (column streams) ``(f, col_folds, Q + 1, Cp)``: ``(u, q, τ)`` at ``[u, q // C, τ + q % C, q % C]`` — PE(i, j)
  at step ``s`` reads ``[u, fc, s, j]``;
* S (tiles) ``(f, col_folds, Mp, Cp)``: ``(u, p, q)`` at ``[u, q // C, p, q % C]``.

The output is stored the same way by its role (one lane), so a moving partial sum *is* its storage slot: PE row
``i`` at step ``s`` adds into the slot that row ``i − 1`` left at step ``s`` one cycle earlier, the slot's value
enters the next K-fold where the previous one left it, and a stationary accumulator is its tile cell. The
storage is flat (1-D) in the kernels; :func:`_linear` gives a PE row's offset and its stride per step.

**Vector steps** (:func:`_macs`). PE row ``i`` is busy in steps ``s = 0 … Q`` (cycles ``P + i … P + i + Q``); at
each it does ``o[j] += x[j] · y[j]`` over its PEs — contiguous vectors of :data:`WIDTH` PEs
(:mod:`accelsim.kernels.simd`). A *band* of up to :data:`BAND` such row-steps that add into the same outputs —
consecutive rows at one step for a moving partial sum, consecutive steps of one row for a stationary
accumulator — runs as one vector step with the outputs held in registers; steps go in blocks of :data:`BLOCK`
(a block's partial sums stay in L1 while the rows pass over them). Every output still takes its products in
the array's order (the rows in order, the cycles in order, a PE's lanes in order), so values and overflow counts
are the per-cycle array's; only the grouping of the work is the vector units'. Folds that share no output
(chains along K) run in parallel (:func:`run_array`).

**Grouped mapping** (:data:`ROLE_D`, :func:`pack_grouped`): the ``g`` GEMMs of a grouped/depthwise conv spread
across the columns (output-stationary: pixels on the rows, the ``g·n`` output channels on the columns, ``k`` in
time, :data:`accelsim.hw.dataflow.GROUPED_MAPPINGS`). Column ``q`` needs its own group's inputs, so the H operand
becomes a per-PE stream ``(f, col_folds, Mp, Q + 1, Cp)`` — PE(i, j) at step ``s`` reads ``[u, fc, r0 + i, s, j]``,
a PE row at one step still contiguous — read in place, one word per busy PE-cycle; the timing is the fold model's.

**Accumulation order = the integer GEMM's** (:func:`accelsim.kernels.igemm.gemm_checked`): every output starts at
0 and adds its products in k order (a PE's ``f`` lanes in order; down a column when K is spatial, in time when K
is temporal); the bias is added last (:func:`finish`). Each step is one ``acc_bits`` register: ``MODE_WRAP``
sign-extends from ``acc_bits``, ``MODE_SAT`` clamps, both count the steps whose exact sum left the range (an
overflow counter stored with the partial sum); ``MODE_EXACT`` is used only when no partial sum can leave the
range (the caller's bound), and skips the checks.

**The clock and the edges** (:func:`_clock`, per cycle): the edge traffic — words read from SRAM by role (an
edge injection or preload of a real element; a partial sum re-entering counts in ``psum reads``), outputs
written (real partial sums leaving the array, or the stationary accumulators drained) — the busy PE-cycles
(MACs on real, unpadded operands) and the cycles, into ``cnt[fold]``; and, when tracing, the flat index (in
the role layout) of the element each edge row/column reads or writes per global cycle.
"""
from __future__ import annotations

import numpy as np

from accelsim.kernels._jit import njit, njit_parallel, prange
from accelsim.kernels.simd import LANES, vmac, vmac_checked

ROLE_H, ROLE_V, ROLE_S = 0, 1, 2
ROLE_D = 3          # a per-PE input stream (grouped mapping): what H would carry, but its own for every PE column
MODE_EXACT, MODE_WRAP, MODE_SAT = 0, 1, 2
# columns of the per-fold counter array
CYCLES, BUSY, READ_H, READ_V, READ_S, WRITES, PSUM_READS = 0, 1, 2, 3, 4, 5, 6
N_COUNTERS = 7
TR_WRITE = 3       # trace channels: ROLE_H, ROLE_V, ROLE_S reads, then writes
WIDTH = LANES      # PE columns per vector step: the planes are padded to a multiple
BLOCK = 256        # PE-row steps per block (a block of partial sums stays in L1 while all rows pass over it)
TILE = 64          # pack/finish work on TILE × TILE element tiles (transposes stay in cache)
BAND = 8           # PE-row steps per vector step (outputs in registers; the operands' loads dominate)


def geometry(rows: int, cols: int, d_rows: int, d_cols: int, t_len: int) -> tuple:
    """``(Mp, col_folds, Q, Cp)`` of the role storages (module docstring)."""
    cp = -(-cols // WIDTH) * WIDTH
    return -(-d_rows // rows) * rows, -(-d_cols // cols), cols + t_len - 2, cp


def storage_shape(role: int, f: int, geo: tuple) -> tuple:
    """Shape of the storage of an operand (``f`` lanes) or output (``f = 1``) with role ``role``."""
    mp, fc_n, q, cp = geo
    return ((f, mp, q + cp), (f, fc_n, q + 1, cp), (f, fc_n, mp, cp), (f, fc_n, mp, q + 1, cp))[role]


@njit
def _linear(role, fc, geo):
    """Where storage ``role`` puts PE row ``p`` (array row ``r0 + i``) of fold column ``fc`` at step ``s``, lane ``u``:
    ``(b0, dp, ds, du)`` — PE j reads flat element ``b0 + p·dp + s·ds + u·du + j`` (module docstring)."""
    mp, fc_n, q, cp = geo
    if role == ROLE_H:
        return q, q + cp, -1, mp * (q + cp)
    if role == ROLE_V:
        return fc * (q + 1) * cp, 0, cp, fc_n * (q + 1) * cp
    if role == ROLE_D:
        return fc * mp * (q + 1) * cp, (q + 1) * cp, cp, fc_n * mp * (q + 1) * cp
    return fc * mp * cp, cp, 0, fc_n * mp * cp


@njit
def _element(role, u, a, b, cols, geo):
    """Flat index of lane ``u`` of role-layout element (a, b) — (row, τ) for H, (column, τ) for V, (row, column)
    for S — in its storage: PE j = (column mod C) of the fold column holding it, at the step it is read."""
    if role == ROLE_H:
        fc, p, s, j = 0, a, b, 0
    elif role == ROLE_V:
        fc, p, s, j = a // cols, 0, b + a % cols, a % cols
    else:
        fc, p, s, j = b // cols, a, 0, b % cols
    b0, dp, ds, du = _linear(role, fc, geo)
    return b0 + p * dp + s * ds + u * du + j


@njit
def _macs(fr, fc, out_role, ins, outs, ovfs, rows, f, geo, mode, sh, lo, hi, grouped=False):
    """All MACs of fold (fr, fc) as vector steps (:mod:`accelsim.kernels.simd`): :data:`WIDTH` PEs of a *band*
    of up to :data:`BAND` PE-row steps that add into the same outputs — the band's rows at one step for a moving
    output (its partial sums pass the rows in order), the band's steps of one row for a stationary one (its
    accumulators take the cycles in order), one row-step when the partial sums move along the row — their
    ``f`` lanes each, with the outputs held in registers. Steps run in blocks of :data:`BLOCK`, the blocks and
    each output's bands in order. ``grouped``: the H operand is a per-PE stream (:data:`ROLE_D`), read in place
    at each step instead of passed along the row."""
    cp, n_steps = geo[3], geo[2] + 1
    qx = ROLE_V if out_role == ROLE_H else ROLE_H          # the two input roles
    qy = ROLE_V if out_role == ROLE_S else ROLE_S
    o, ov, x, y = outs[out_role], ovfs[out_role], ins[qx], ins[qy]
    lo_, lx, ly = _linear(out_role, fc, geo), _linear(ROLE_D if grouped else qx, fc, geo), _linear(qy, fc, geo)
    r0 = fr * rows
    # the band runs along rows (1) when the output does not move with the row, along steps (2) when it does not
    # move with the step (stationary), else it is one row-step; the other dimension is iterated
    bd = 1 if lo_[1] == 0 else 2 if lo_[2] == 0 else 1
    od = 3 - bd
    nband = BAND if lo_[bd] == 0 else 1
    wrap = mode == MODE_WRAP
    for j in range(0, cp, WIDTH):                           # PEs j..j+WIDTH−1 of every row
        for sb in range(0, n_steps, BLOCK):
            n_s = min(n_steps, sb + BLOCK) - sb
            n_band, n_other = (rows, n_s) if bd == 1 else (n_s, rows)
            o0 = lo_[0] + r0 * lo_[1] + sb * lo_[2] + j
            x0 = lx[0] + r0 * lx[1] + sb * lx[2] + j
            y0 = ly[0] + r0 * ly[1] + sb * ly[2] + j
            for g in range(0, n_band, nband):
                nb = min(nband, n_band - g)
                for t in range(n_other):
                    oo = o0 + g * lo_[bd] + t * lo_[od]
                    xo = x0 + g * lx[bd] + t * lx[od]
                    yo = y0 + g * ly[bd] + t * ly[od]
                    if mode == MODE_EXACT and f == 1 and nb == BAND:     # constant counts: unrolled
                        vmac(o, oo, x, xo, lx[bd], 0, y, yo, ly[bd], 0, BAND, 1)
                    elif mode == MODE_EXACT and f == 1:
                        vmac(o, oo, x, xo, lx[bd], 0, y, yo, ly[bd], 0, nb, 1)
                    elif mode == MODE_EXACT:
                        vmac(o, oo, x, xo, lx[bd], lx[3], y, yo, ly[bd], ly[3], nb, f)
                    else:
                        vmac_checked(o, ov, oo, x, xo, lx[bd], lx[3], y, yo, ly[bd], ly[3], nb, f, wrap, sh, lo,
                                     hi)


@njit
def _diag(x, r, c):
    """PEs (i, j) of an r × c grid on the anti-diagonal ``i + j = x``."""
    return max(0, min(x, r - 1) - max(0, x - c + 1) + 1) if x >= 0 else 0


@njit
def _edges(c, p, vr, vc, first, out_role, rows, cols, t_len, inject):
    """Cycle ``c``'s edge traffic: a moving output's finished partial sums leave (they sat in the last PE in
    cycle c−1), then each edge row (H) / column (V) takes its next value — edge ``e`` the one with time index
    ``c − P − e`` — or a zero bubble outside its time window and on padded rows/columns. Returns the live edge
    ranges ``[lo, hi)``: H and V injections, then the leaving partial sums, and their words ``(H reads, V reads,
    writes, partial sums read back)``."""
    T = t_len
    h_lo = v_lo = max(0, c - p - T + 1)                  # edges whose time index c − P − e lies in [0, T)
    h_hi, v_hi = min(vr, c - p + 1), min(vc, c - p + 1)
    length = cols if out_role == ROLE_H else rows        # PEs a partial sum passes through
    x_lo = max(0, c - p - length - T + 1)               # leaving: te = c − 1 − P − e − (length − 1) in [0, T)
    x_hi = min(vr if out_role == ROLE_H else vc, c - p - length + 1)
    nh, nv = max(0, h_hi - h_lo) if inject else 0, max(0, v_hi - v_lo) if inject else 0
    writes = max(0, x_hi - x_lo) if out_role != ROLE_S else 0
    psums = (nh if out_role == ROLE_H else nv if out_role == ROLE_V else 0) if not first else 0
    if out_role == ROLE_H:
        nh = 0
    elif out_role == ROLE_V:
        nv = 0
    return (h_lo, h_hi, v_lo, v_hi, x_lo, x_hi), (nh, nv, writes, psums)


@njit
def _trace_edges(c, p, r0, c0, out_role, rows, cols, t_len, live, tr, t0):
    """Record cycle ``c``'s edge addresses (flat role-layout indices) from :func:`_edges`' live ranges."""
    h_lo, h_hi, v_lo, v_hi, x_lo, x_hi = live
    T = t_len
    if out_role != ROLE_S and tr.shape[0] > t0 + c - 1 >= 0:
        length, base = (cols, r0) if out_role == ROLE_H else (rows, c0)
        for e in range(x_lo, x_hi):
            tr[t0 + c - 1, TR_WRITE, e] = (base + e) * T + c - p - length - e
    if t0 + c < tr.shape[0]:
        if out_role != ROLE_H:
            for e in range(h_lo, h_hi):
                tr[t0 + c, ROLE_H, e] = (r0 + e) * T + c - p - e
        if out_role != ROLE_V:
            for e in range(v_lo, v_hi):
                tr[t0 + c, ROLE_V, e] = (c0 + e) * T + c - p - e


@njit
def _clock(fr, fc, first, out_role, rows, cols, d_rows, d_cols, t_len, cnt, tr, t0, grouped=False):
    """Fold (fr, fc)'s cycles one by one: preload, edges, busy PEs, until every PE has done its ``T`` MACs; the
    drain of a stationary output as SCALE-Sim writes it (PE(i, j)'s value at ``P + T − 1 + (R − 1 − i) + j``).
    Adds the fold's counters to ``cnt`` and returns its cycles. ``grouped``: the H operand is a per-PE stream,
    so every busy PE-cycle reads one word of it (no left-edge injections)."""
    R, C, T = rows, cols, t_len
    r0, c0 = fr * R, fc * C
    vr, vc = min(R, d_rows - r0), min(C, d_cols - c0)
    p = R if out_role != ROLE_S else 0
    for pc in range(p):                         # the stationary tile shifts in, row R − 1 first
        row = R - 1 - pc
        if row < vr:
            cnt[READ_S] += vc
            if t0 + pc < tr.shape[0]:
                for j in range(vc):
                    tr[t0 + pc, ROLE_S, j] = (r0 + row) * d_cols + c0 + j
    total, done, c = R * C * T, 0, p
    active = busy = busy_sum = 0                # PEs doing a MAC this cycle (on real operands)
    rh = rv = wr = ps = 0
    tracing = tr.shape[0] > 0
    while True:
        live, (h, v, w, q) = _edges(c, p, vr, vc, first, out_role, R, C, T, True)
        rh, rv, wr, ps = rh + h, rv + v, wr + w, ps + q
        if tracing:
            _trace_edges(c, p, r0, c0, out_role, R, C, T, live, tr, t0)
        d = c - p                               # PE(i, j) works on τ = d − i − j: diagonal d starts, d − T ends
        active += _diag(d, R, C) - _diag(d - T, R, C)
        busy += _diag(d, vr, vc) - _diag(d - T, vr, vc)
        done += active
        busy_sum += busy
        if done >= total:
            break
        c += 1
    # the last partial sums leave the array in the next cycle (overlapping the next fold)
    live, words = _edges(c + 1, p, vr, vc, first, out_role, R, C, T, False)
    wr += words[2]
    if tracing:
        _trace_edges(c + 1, p, r0, c0, out_role, R, C, T, live, tr, t0)
    if out_role == ROLE_S:                      # drain the stationary accumulators
        for i in range(vr):
            for j in range(vc):
                cyc = t0 + p + T - 1 + (R - 1 - i) + j
                if cyc < tr.shape[0]:
                    tr[cyc, TR_WRITE, j] = (r0 + i) * d_cols + c0 + j
        wr += vr * vc
    cnt[CYCLES] += c + 1
    cnt[BUSY] += busy_sum
    cnt[READ_H] += busy_sum if grouped else rh
    cnt[READ_V] += rv
    cnt[WRITES] += wr
    cnt[PSUM_READS] += ps
    return c + 1


@njit_parallel
def run_array(ins, outs, ovfs, out_role, red_axis, rows, cols, d_rows, d_cols, t_len, f, mode, acc_bits, lo, hi,
              cnt, grouped=False):
    """All folds of one GEMM. ``ins``/``outs``/``ovfs``: the flat storages (module docstring) of the H, V, S
    operands (int16, ``f`` lanes; the output's own entry unused), of the output (acc dtype, zero on entry) and of
    its overflow counts (int64; unused in ``MODE_EXACT``), indexed by role. ``red_axis``: where K lies (0 rows,
    1 cols, 2 time); folds that share outputs (along K) run in order within one chain, chains run in parallel.
    ``cnt``: (folds, N_COUNTERS) int64, fold ``fr · col_folds + fc``. ``grouped``: ``ins[ROLE_H]`` holds a per-PE
    stream (:data:`ROLE_D`, :func:`pack_grouped`; a stationary output only)."""
    geo = (-(-d_rows // rows) * rows, -(-d_cols // cols), cols + t_len - 2, -(-cols // WIDTH) * WIDTH)
    fr_n, fc_n = geo[0] // rows, geo[1]
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
        for s in range(n_step):
            if red_axis == 0:
                fr, fc = s, ch
            elif red_axis == 1:
                fr, fc = ch, s
            else:
                fr, fc = ch // fc_n, ch % fc_n
            _macs(fr, fc, out_role, ins, outs, ovfs, rows, f, geo, mode, sh, lo, hi, grouped)
            _clock(fr, fc, s == 0, out_role, rows, cols, d_rows, d_cols, t_len, cnt[fr * fc_n + fc], tr, 0, grouped)


@njit
def run_array_traced(ins, outs, ovfs, out_role, rows, cols, d_rows, d_cols, t_len, f, mode, acc_bits, lo, hi, cnt,
                     order, tr):
    """Sequential twin of :func:`run_array` that also records edge addresses into ``tr`` ((cycles, 4, max(R, C)),
    −1 on entry; module docstring); folds run in ``order`` ((folds, 2) of (fr, fc)), one after another on the
    global cycle axis. Returns each fold's first global cycle (and the total last)."""
    geo = (-(-d_rows // rows) * rows, -(-d_cols // cols), cols + t_len - 2, -(-cols // WIDTH) * WIDTH)
    fc_n = geo[1]
    sh = 64 - acc_bits
    t0 = 0
    seen = np.zeros(order.shape[0] + 1, dtype=np.int64)
    for q in range(order.shape[0]):
        fr, fc = order[q, 0], order[q, 1]
        first = True
        for qq in range(q):
            if (out_role == ROLE_V and order[qq, 1] == fc) or (out_role == ROLE_H and order[qq, 0] == fr):
                first = False
        _macs(fr, fc, out_role, ins, outs, ovfs, rows, f, geo, mode, sh, lo, hi)
        t0 += _clock(fr, fc, first, out_role, rows, cols, d_rows, d_cols, t_len, cnt[fr * fc_n + fc], tr, t0)
        seen[q + 1] = t0
    return seen


@njit
def _run_end(role, b, te, cols):
    """End of the run of elements ``b, b+1, …`` (< ``te``) of one role-layout row that lie at one fixed storage
    step apart (:func:`_step`): a fold column's tile for S, the whole range for H and V."""
    return min(te, (b // cols + 1) * cols) if role == ROLE_S else te


@njit
def _step(role, geo):
    """Storage distance of consecutive elements of a role-layout row within a run (:func:`_run_end`)."""
    return -1 if role == ROLE_H else geo[3] if role == ROLE_V else 1


@njit_parallel
def pack_operand(x, k_axis, f, role, rows, cols, t_len, out):
    """Operand ``x`` into its role storage ``out`` (flat, zero on entry; module docstring). ``x`` is 2-D with the
    role's dims (rows/cols dim, time dim or rows dim, cols dim) before the k split: axis ``k_axis`` holds k,
    element k = k'·f + u going to lane u of k' (k beyond the axis: 0). Tiles of TILE × TILE elements, in runs."""
    d0 = -(-x.shape[0] // f) if k_axis == 0 else x.shape[0]
    d1 = -(-x.shape[1] // f) if k_axis == 1 else x.shape[1]
    d_rows, d_cols = (d0, d1) if role == ROLE_S else ((d0, 1) if role == ROLE_H else (1, d0))
    geo = (-(-d_rows // rows) * rows, -(-d_cols // cols), cols + t_len - 2, -(-cols // WIDTH) * WIDTH)
    fa, fb = (f, 1) if k_axis == 0 else (1, f)
    step = _step(role, geo)
    tw = TILE if step != 1 else 16 * TILE                       # no transpose: wide tiles, long runs
    nb = -(-d1 // tw)
    for tile in prange(-(-d0 // TILE) * nb):
        ta, tb = np.int64(tile) // nb * TILE, np.int64(tile) % nb * tw
        te = min(d1, tb + tw)
        for a in range(ta, min(d0, ta + TILE)):
            for u in range(f):
                ua, ub = (u, 0) if k_axis == 0 else (0, u)
                ka = a * fa + ua
                be = min(te, (x.shape[1] - ub + fb - 1) // fb)          # k beyond the axis: left 0
                if ka >= x.shape[0]:
                    continue
                b = tb
                while b < be:
                    e = _run_end(role, b, be, cols)
                    at = _element(role, u, a, b, cols, geo)
                    if step == 1 and fb == 1:                   # contiguous on both sides: a vector copy
                        out[at:at + e - b] = x[ka, b:e]
                    else:
                        for i in range(e - b):
                            out[at + i * step] = x[ka, (b + i) * fb + ub]
                    b = e


@njit_parallel
def finish(role, acc, ovf, checked, rows, cols, d_rows, d_cols, t_len, transpose, bias, mode, acc_bits, lo, hi,
           out):
    """The output from its role storage ``acc`` (and overflow counts ``ovf`` when ``checked``) into ``out`` (M, N)
    int64 — element (a, b) of the role layout at ``out[b, a]`` when ``transpose`` — then the accumulator stage
    after the array: ``+ bias[n]`` as one more register step. Returns (overflow events, outputs with at least
    one), the bias step's included."""
    geo = (-(-d_rows // rows) * rows, -(-d_cols // cols), cols + t_len - 2, -(-cols // WIDTH) * WIDTH)
    sh = 64 - acc_bits
    d0, d1 = (d_rows, d_cols) if role == ROLE_S else ((d_rows, t_len) if role == ROLE_H else (d_cols, t_len))
    flat = out.reshape(-1)
    n_out = out.shape[1]
    sa, sb = (1, n_out) if transpose else (n_out, 1)            # flat index of role element (a, b) in out
    ba, bb = (1, 0) if transpose else (0, 1)                    # which of a, b is the output column (bias)
    step = _step(role, geo)
    nb = -(-d1 // TILE)
    hits = np.zeros((-(-d0 // TILE) * nb, 2), dtype=np.int64)   # per tile: overflow events, outputs hit
    for tile in prange(hits.shape[0]):
        ta, tb = np.int64(tile) // nb * TILE, np.int64(tile) % nb * TILE
        te = min(d1, tb + TILE)
        events = outputs = 0
        for a in range(ta, min(d0, ta + TILE)):
            b = tb
            while b < te:
                e = _run_end(role, b, te, cols)
                at = _element(role, 0, a, b, cols, geo)
                if mode == MODE_EXACT:                          # nothing can overflow, the bias step included
                    for i in range(e - b):
                        flat[a * sa + (b + i) * sb] = np.int64(acc[at + i * step]) + bias[a * ba + (b + i) * bb]
                else:
                    for i in range(e - b):
                        s = np.int64(acc[at + i * step]) + bias[a * ba + (b + i) * bb]
                        w = (s << sh) >> sh if mode == MODE_WRAP else min(max(s, lo), hi)
                        flat[a * sa + (b + i) * sb] = w
                        o = (ovf[at + i * step] if checked else 0) + (1 if w != s else 0)
                        events += o
                        outputs += 1 if o > 0 else 0
                b = e
        hits[tile, 0], hits[tile, 1] = events, outputs
    return hits[:, 0].sum(), hits[:, 1].sum()


@njit_parallel
def pack_grouped(x, n, f, rows, cols, t_len, out):
    """The per-PE stream (:data:`ROLE_D`) of a grouped GEMM's inputs ``x`` (g, m, k) into ``out`` (flat, zero on
    entry): PE column ``q`` (output channel q of ``g·n``) reads group ``q // n``'s inputs; element (p, q, τ), lane
    ``u`` (k = τ·f + u), sits where PE (p mod R, q mod C) of fold column ``q // C`` reads it, at step ``τ + q mod C``
    (the output-stationary skew)."""
    g, m, k = x.shape
    geo = (-(-m // rows) * rows, -(-(g * n) // cols), cols + t_len - 2, -(-cols // WIDTH) * WIDTH)
    mp, fc_n, q_, cp = geo
    for q in prange(g * n):
        fc, j = np.int64(q) // cols, np.int64(q) % cols
        grp = np.int64(q) // n
        for u in range(f):
            base = u * fc_n * mp * (q_ + 1) * cp + fc * mp * (q_ + 1) * cp + j
            for p in range(m):
                row = base + p * (q_ + 1) * cp
                for t in range(t_len):
                    kk = t * f + u
                    if kk < k:
                        out[row + (t + j) * cp] = x[grp, p, kk]
