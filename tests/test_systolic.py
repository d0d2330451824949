"""The cycle-level systolic array (:mod:`accelsim.kernels.systolic` via :func:`accelsim.sim.emulate.systolic_gemm`).

Three references:

* :func:`naive_systolic` (below): a plain-numpy twin that shifts real register arrays one PE per cycle and masks
  the PEs that hold live data — per-fold cycles, SRAM words, accumulators and overflow counts bit for bit;
* the integer GEMM kernel (:func:`accelsim.kernels.igemm.gemm_checked`): the same W-bit accumulation, step by step;
* the closed form (:func:`accelsim.hw.dataflow.fold_timing`): ``scalesim_cycles`` and SRAM words.
"""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from accelsim.errors import MappingError
from accelsim.hw.dataflow import DATAFLOWS, OPERAND_DIMS, DataflowSpec, fold_timing
from accelsim.kernels import igemm
from accelsim.sim.emulate import roles, systolic_gemm

H, V, S = 0, 1, 2


def _layout(x, dims, want, kp, f):
    """Operand with axes ``dims`` → (f, want[0], want[1]) int64, k padded to kp·f and split into (k', lane)."""
    if "k" not in dims:
        return (x if want == dims else x.T)[None]
    ko = x if dims[0] == "k" else x.T                       # (k, other)
    ko = np.pad(ko, [(0, kp * f - ko.shape[0]), (0, 0)])
    lanes = np.stack([ko[u::f] for u in range(f)])          # (f, k', other): lane u holds k = k'·f + u
    return lanes if want[0] == "k" else lanes.transpose(0, 2, 1)


def _step(s, saturate, lo, hi):
    w = np.clip(s, lo, hi) if saturate else (s - lo) % (hi - lo + 1) + lo
    return w, (w != s)


def naive_systolic(a, b, rows, cols, flow, bias, f, acc_bits, saturate):
    """Register-by-register numpy twin: returns (acc (m, n), events, outputs, per-fold [cycles, reads by operand,
    writes])."""
    m, k = a.shape
    n = b.shape[1]
    kp = -(-k // f)
    dims = {"m": m, "n": n, "k": kp}
    role = roles(flow)
    want = {H: (flow.rows, flow.time), V: (flow.cols, flow.time), S: (flow.rows, flow.cols)}
    src = {role[op]: _layout(x.astype(np.int64), OPERAND_DIMS[op], want[role[op]], kp, f)
           for op, x in (("input", a), ("weight", b))}
    out_role = role["output"]
    out = np.zeros((dims[want[out_role][0]], dims[want[out_role][1]]), np.int64)
    ovf = np.zeros(out.shape, np.int64)
    dr, dc, T = dims[flow.rows], dims[flow.cols], dims[flow.time]
    lo, hi = -(1 << (acc_bits - 1)), (1 << (acc_bits - 1)) - 1
    R, C = rows, cols
    P = R if out_role != S else 0
    frn, fcn = -(-dr // R), -(-dc // C)
    stats = {}
    for fr in range(frn):                       # K-folds of a chain in order (fr-major is a valid order)
        for fc in range(fcn):
            reads = {H: 0, V: 0, S: 0}
            writes = 0
            reg = {q: np.zeros((f, R, C), np.int64) for q in (H, V, S)}
            tag = {q: np.full((R, C), -1) for q in (H, V)}   # time index of the value each PE holds
            acc = np.zeros((R, C), np.int64)
            cnt = np.zeros((R, C), np.int64)
            if out_role == S:
                pass                             # fresh accumulators (K is temporal: one fold per output)
            else:
                for pc in range(P):
                    reg[S][:, 1:] = reg[S][:, :-1].copy()
                    row = R - 1 - pc
                    reg[S][:, 0] = 0
                    if fr * R + row < dr:
                        w = min(C, dc - fc * C)
                        reg[S][:, 0, :w] = src[S][:, fr * R + row, fc * C:fc * C + w]
                        reads[S] += w
            done, c = 0, P
            while True:
                for q in (H, V):
                    n_e = R if q == H else C
                    base = fr * R if q == H else fc * C
                    lim = dr if q == H else dc
                    if out_role == q:            # finished partial sums leave from the last PE
                        last = (slice(None), C - 1) if q == H else (R - 1, slice(None))
                        for e in range(n_e):
                            t = tag[q][last][e]
                            if t >= 0 and base + e < lim:
                                out[base + e, t] = acc[last][e]
                                ovf[base + e, t] = cnt[last][e]
                                writes += 1
                    if q == H:
                        for arr in ([reg[H]] if out_role != H else []) :
                            arr[:, :, 1:] = arr[:, :, :-1].copy()
                        if out_role == H:
                            acc[:, 1:] = acc[:, :-1].copy()
                            cnt[:, 1:] = cnt[:, :-1].copy()
                        tag[H][:, 1:] = tag[H][:, :-1].copy()
                    else:
                        if out_role != V:
                            reg[V][:, 1:] = reg[V][:, :-1].copy()
                        else:
                            acc[1:] = acc[:-1].copy()
                            cnt[1:] = cnt[:-1].copy()
                        tag[V][1:] = tag[V][:-1].copy()
                    for e in range(n_e):
                        t = c - P - e
                        live = 0 <= t < T and base + e < lim
                        idx = (e, 0) if q == H else (0, e)
                        tag[q][idx] = t if 0 <= t < T else -1
                        if out_role == q:
                            acc[idx] = out[base + e, t] if live else 0
                            cnt[idx] = ovf[base + e, t] if live else 0
                        else:
                            reg[q][(slice(None),) + idx] = src[q][:, base + e, t] if live else 0
                            reads[q] += live
                ins = [q for q in (H, V, S) if q != out_role]
                active = (tag[V] >= 0) if out_role == H else (tag[H] >= 0)
                if out_role == S:
                    active &= tag[V] >= 0
                for u in range(f):
                    s_ = acc + reg[ins[0]][u] * reg[ins[1]][u]
                    w, o = _step(s_, saturate, lo, hi)
                    acc = np.where(active, w, acc)
                    cnt = cnt + (o & active)
                done += int(active.sum())
                if done == R * C * T:
                    break
                c += 1
            # one more cycle: the last partial sums leave
            if out_role in (H, V):
                q = out_role
                last = (slice(None), C - 1) if q == H else (R - 1, slice(None))
                base, lim = (fr * R, dr) if q == H else (fc * C, dc)
                for e in range(R if q == H else C):
                    t = tag[q][last][e]
                    if t >= 0 and base + e < lim:
                        out[base + e, t] = acc[last][e]
                        ovf[base + e, t] = cnt[last][e]
                        writes += 1
            else:
                vr, vc = min(R, dr - fr * R), min(C, dc - fc * C)
                out[fr * R:fr * R + vr, fc * C:fc * C + vc] = acc[:vr, :vc]
                ovf[fr * R:fr * R + vr, fc * C:fc * C + vc] = cnt[:vr, :vc]
                writes += vr * vc
            stats[fr * fcn + fc] = (c + 1, reads[role["input"]], reads[role["weight"]], writes)
    mn = out if want[out_role] == ("m", "n") else out.T
    ov = ovf if want[out_role] == ("m", "n") else ovf.T
    mn, ov = mn.copy(), ov.copy()
    w, o = _step(mn + bias[None, :], saturate, lo, hi)
    ov = ov + o
    return w, int(ov.sum()), int(np.count_nonzero(ov)), np.array([stats[i] for i in sorted(stats)])


def gemm_checked(a, b, bias, acc_bits, saturate):
    m, k = a.shape
    n = b.shape[1]
    acc = np.empty((1, m, n), np.int64)
    ev, hit = np.zeros((1, m), np.int64), np.zeros((1, m), np.int64)
    lo, hi = -(1 << (acc_bits - 1)), (1 << (acc_bits - 1)) - 1
    igemm.gemm_checked(a[None].astype(np.int16), np.ascontiguousarray(b.T)[None].astype(np.int16),
                       bias[None].astype(np.int64), lo, hi, saturate, m, n, acc, ev, hit)
    return acc[0], int(ev.sum()), int(hit.sum())


# a dataflow that is not in the table: output partial sums move right along the rows (K on the columns)
EXTRA_FLOWS = [DataflowSpec("os_t", "n", "m", "k"), DataflowSpec("ws_h", "n", "k", "m"),
               DataflowSpec("is_h", "m", "k", "n")]
ALL_FLOWS = list(DATAFLOWS.values()) + EXTRA_FLOWS


def _case(rng, m, n, k, bits):
    lim = (1 << bits) - 1           # a zero-point-subtracted code of a `bits` tensor lies in [-lim, lim]
    a = rng.integers(-lim, lim + 1, (m, k))
    b = rng.integers(-lim, lim + 1, (k, n))
    bias = rng.integers(-5000, 5001, n)
    return a, b, bias


def _check(a, b, bias, rows, cols, flow, f, acc_bits, overflow, twin: bool):
    run = systolic_gemm(a, b, rows, cols, flow, bias=bias, macs_per_cycle=f, acc_bits=acc_bits, overflow=overflow)
    sat = overflow == "saturate"
    acc, ev, hit = gemm_checked(a, b, bias, acc_bits, sat)
    np.testing.assert_array_equal(run.acc, acc)
    assert (run.overflow_events, run.overflow_outputs) == (ev, hit)
    m, k = a.shape
    n = b.shape[1]
    ft = fold_timing([m], [n], [-(-k // f)], rows, cols, flow)
    assert run.scalesim_cycles == ft.scalesim_cycles[0] and run.cycles == ft.cycles[0]
    assert run.sram_ifmap_reads == ft.sram_ifmap_reads[0]
    assert run.sram_filter_reads == ft.sram_filter_reads[0]
    assert run.sram_ofmap_writes_scalesim == ft.sram_ofmap_writes[0]
    assert int(run.fold_busy.sum()) == m * n * -(-k // f)
    if twin:
        w, ev2, hit2, stats = naive_systolic(a, b, rows, cols, flow, bias, f, acc_bits, sat)
        np.testing.assert_array_equal(run.acc, w)
        assert (run.overflow_events, run.overflow_outputs) == (ev2, hit2)
        np.testing.assert_array_equal(run.fold_cycles, stats[:, 0])
        np.testing.assert_array_equal(run.fold_reads["input"], stats[:, 1])
        np.testing.assert_array_equal(run.fold_reads["weight"], stats[:, 2])
        np.testing.assert_array_equal(run.fold_writes, stats[:, 3])
    return run


@pytest.mark.parametrize("flow", ALL_FLOWS, ids=lambda fl: fl.name)
def test_twin_fixed_cases(flow):
    rng = np.random.default_rng(1)
    for m, n, k, r, c, f, bits, acc_bits, ov in [(5, 7, 9, 3, 4, 1, 8, 32, "wrap"), (13, 6, 11, 4, 3, 2, 8, 16, "wrap"),
                                                 (9, 5, 13, 4, 3, 4, 4, 12, "saturate"), (1, 1, 1, 2, 2, 1, 8, 32, "wrap"),
                                                 (7, 3, 5, 1, 1, 1, 8, 10, "saturate")]:
        _check(*_case(rng, m, n, k, bits), r, c, flow, f, acc_bits, ov, twin=True)


@settings(max_examples=60, deadline=None)
@given(m=st.integers(1, 30), n=st.integers(1, 30), k=st.integers(1, 40), rows=st.integers(1, 9),
       cols=st.integers(1, 9), flow=st.sampled_from(ALL_FLOWS), f=st.sampled_from([1, 2, 3, 4]),
       bits=st.sampled_from([4, 8]), acc_bits=st.integers(8, 40), overflow=st.sampled_from(["wrap", "saturate"]),
       seed=st.integers(0, 2**32 - 1))
def test_random_against_gemm_and_closed_form(m, n, k, rows, cols, flow, f, bits, acc_bits, overflow, seed):
    """Values (incl. overflow counts) = the integer GEMM kernel; cycles and SRAM words = the closed form."""
    rng = np.random.default_rng(seed)
    _check(*_case(rng, m, n, k, bits), rows, cols, flow, f, acc_bits, overflow, twin=False)


@settings(max_examples=15, deadline=None)
@given(m=st.integers(1, 12), n=st.integers(1, 12), k=st.integers(1, 14), rows=st.integers(1, 5),
       cols=st.integers(1, 5), flow=st.sampled_from(ALL_FLOWS), f=st.sampled_from([1, 2, 4]),
       acc_bits=st.integers(8, 24), overflow=st.sampled_from(["wrap", "saturate"]), seed=st.integers(0, 2**32 - 1))
def test_random_against_numpy_twin(m, n, k, rows, cols, flow, f, acc_bits, overflow, seed):
    rng = np.random.default_rng(seed)
    _check(*_case(rng, m, n, k, 8), rows, cols, flow, f, acc_bits, overflow, twin=True)


def test_int32_exact_path_and_wide_accumulators():
    """Large K with no possible overflow runs the unchecked int32 path; a 48-bit accumulator never overflows."""
    rng = np.random.default_rng(3)
    a, b, bias = _case(rng, 40, 33, 700, 8)
    for flow in DATAFLOWS.values():
        run = _check(a, b, bias, 8, 16, flow, 1, 32, "wrap", twin=False)
        assert run.overflow_events == 0
        _check(a, b, bias, 5, 7, flow, 2, 48, "saturate", twin=False)


def test_bad_input():
    a = np.ones((3, 4), np.int64)
    with pytest.raises(ValueError):
        systolic_gemm(a, np.ones((5, 2), np.int64), 2, 2, DATAFLOWS["ws"])
    with pytest.raises(ValueError):
        systolic_gemm(a.astype(float), np.ones((4, 2)), 2, 2, DATAFLOWS["ws"])
    with pytest.raises(ValueError):
        systolic_gemm(a * 40000, np.ones((4, 2), np.int64), 2, 2, DATAFLOWS["ws"])
    with pytest.raises(ValueError):
        systolic_gemm(a, np.ones((4, 2), np.int64), 0, 2, DATAFLOWS["ws"])
    with pytest.raises(ValueError):
        systolic_gemm(a, np.ones((4, 2), np.int64), 2, 2, DATAFLOWS["ws"], acc_bits=4)
    with pytest.raises(MappingError, match="GiB"):    # a short time dimension: streams of mostly bubbles
        systolic_gemm(np.ones((2**22, 1), np.int16), np.ones((1, 1), np.int16), 256, 256, DATAFLOWS["os"])
