"""The grouped/depthwise mapping on the cycle-level array: channels across the columns (or rows), each PE column
fed its own group's inputs (kernels.systolic ROLE_D) — values, overflow counts, cycles and SRAM words against
numpy twins and the closed form, and `run --emulate` on a depthwise network."""
from __future__ import annotations

import numpy as np
import pytest

from accelsim import load_hw, load_model
from accelsim.cli import main
from accelsim.hw.dataflow import GROUPED_MAPPINGS, fold_timing, grouped_input_words
from accelsim.kernels import systolic as K
from accelsim.sim.emulate import EmulatedTiming, systolic_grouped
from accelsim.sim.engine import simulate


def naive_grouped(a, b, acc_bits=64, wrap=True):
    """Per group, per output: products added in k order, each step one acc_bits register (wrap or saturate)."""
    g, m, k = a.shape
    n = b.shape[2]
    lo, hi = -(1 << (acc_bits - 1)), (1 << (acc_bits - 1)) - 1
    out = np.zeros((m, g * n), np.int64)
    events = 0
    for grp in range(g):
        for i in range(m):
            for j in range(n):
                s = 0
                for t in range(k):
                    exact = s + int(a[grp, i, t]) * int(b[grp, t, j])
                    s = ((exact - lo) % (1 << acc_bits)) + lo if wrap else min(max(exact, lo), hi)
                    events += s != exact
                out[i, grp * n + j] = s
    return out, events


def naive_pack(x, n, f, rows, cols, t_len):
    """ROLE_D storage built element by element from its definition (the kernel's twin)."""
    g, m, k = x.shape
    mp, fc_n, q, cp = K.geometry(rows, cols, m, g * n, t_len)
    out = np.zeros(K.storage_shape(K.ROLE_D, f, (mp, fc_n, q, cp)), np.int16)
    for col in range(g * n):
        for p in range(m):
            for t in range(t_len):
                for u in range(f):
                    if t * f + u < k:
                        out[u, col // cols, p, t + col % cols, col % cols] = x[col // n, p, t * f + u]
    return out.reshape(-1)


@pytest.mark.parametrize("g, m, k, n, rows, cols, f", [(16, 49, 9, 1, 8, 8, 1), (70, 30, 9, 1, 16, 32, 1),
                                                       (6, 20, 12, 3, 4, 8, 1), (5, 17, 18, 2, 8, 4, 2)])
def test_pack_grouped_matches_its_twin(g, m, k, n, rows, cols, f):
    x = np.random.default_rng(1).integers(-99, 99, (g, m, k)).astype(np.int16)
    kp = -(-k // f)
    got = np.zeros(int(np.prod(K.storage_shape(K.ROLE_D, f, K.geometry(rows, cols, m, g * n, kp)))), np.int16)
    K.pack_grouped(x, n, f, rows, cols, kp, got)
    np.testing.assert_array_equal(got, naive_pack(x, n, f, rows, cols, kp))


@pytest.mark.parametrize("g, m, k, n, rows, cols, f", [(16, 49, 9, 1, 8, 8, 1), (70, 30, 9, 1, 16, 32, 1),
                                                       (6, 20, 12, 3, 4, 8, 1), (5, 17, 18, 2, 8, 4, 2)])
def test_grouped_run_equals_closed_form_and_per_group_gemms(g, m, k, n, rows, cols, f):
    rng = np.random.default_rng(0)
    a, b = rng.integers(-100, 100, (g, m, k)), rng.integers(-100, 100, (g, k, n))
    run = systolic_grouped(a, b, rows, cols, macs_per_cycle=f)
    np.testing.assert_array_equal(run.acc, naive_grouped(a, b)[0])
    kp = -(-k // f)
    closed = fold_timing([m], [g * n], [kp], rows, cols, GROUPED_MAPPINGS["cols"].flow)
    assert run.cycles == int(closed.cycles[0]) == run.folds * (rows + cols + kp - 2)
    assert run.sram_ifmap_reads == int(grouped_input_words(m, n, kp, g))        # every column reads its own inputs
    assert run.sram_filter_reads == int(closed.sram_filter_reads[0])
    assert run.sram_ofmap_writes_scalesim == int(closed.sram_ofmap_writes[0])


@pytest.mark.parametrize("overflow", ["wrap", "saturate"])
def test_grouped_accumulator_overflow_as_the_register_steps(overflow):
    rng = np.random.default_rng(3)
    a, b = rng.integers(-127, 128, (4, 9, 40)), rng.integers(-127, 128, (4, 40, 2))
    run = systolic_grouped(a, b, 4, 4, acc_bits=16, overflow=overflow)
    want, events = naive_grouped(a, b, 16, overflow == "wrap")
    np.testing.assert_array_equal(run.acc, want)
    assert run.overflow_events == events > 0


@pytest.mark.parametrize("mapping", ["cols", "rows"])
def test_emulate_depthwise_network_matches_the_closed_form(mapping, capsys):
    model = load_model("mobilenet_v2")
    hw = load_hw("edge", [f"array.grouped={mapping}"])
    emu = EmulatedTiming(model, "*dw.conv")
    report = emu.annotate(simulate(model, hw, "w8a8", timing=emu))
    closed = simulate(model, hw, "w8a8")
    dw = [c for c in report.layers if c.name.endswith("dw.conv")]
    assert len(dw) == 17 and all(c.emulation_match for c in dw)
    for c, d in zip(report.layers, closed.layers):
        assert c.cycles == d.cycles and c.compute_cycles == d.compute_cycles
    assert all(emu.results[c.name].scalesim_cycles == emu.results[c.name].closed_form for c in dw)
    assert main(["run", "mobilenet_v2", "--hw", "edgetpu_devboard", "--emulate", "*dw.conv", "--quiet"]) == 0
    assert "equal on 17/17 layers" in capsys.readouterr().out


def test_grouped_refuses_bad_shapes():
    from accelsim.errors import QuantError
    with pytest.raises(QuantError, match="expected a \\(g, m, k\\)"):
        systolic_grouped(np.zeros((2, 3, 4), int), np.zeros((3, 4, 1), int), 4, 4)
