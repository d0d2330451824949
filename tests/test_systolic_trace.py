"""SCALE-Sim-format SRAM traces of the cycle-level array equal SCALE-Sim 3.0.0's own files, byte for byte, on
small recorded layers (``tests/fixtures/scalesim_traces``, made by ``make_scalesim_traces.py``): OS/WS/IS, conv
(strides 1, 2, 3) and GEMM, shapes that do not divide the array."""
from __future__ import annotations

import gzip
import io
import json
from pathlib import Path

import numpy as np
import pytest

from accelsim.hw.dataflow import DATAFLOWS
from accelsim.sim.emulate import gemm_trace, systolic_gemm
from accelsim.sim.trace import FILES, ConvGeometry, write_traces

FIX = Path(__file__).parent / "fixtures" / "scalesim_traces"
CASES = json.loads((FIX / "cases.json").read_text())["cases"]


def _shape(layer):
    """(M, N, K, geometry) as SCALE-Sim lowers the topology row."""
    if layer["kind"] == "gemm":
        return layer["m"], layer["n"], layer["k"], None
    geo = ConvGeometry(layer["ifmap_h"], layer["ifmap_w"], layer["filt_h"], layer["filt_w"], layer["channels"],
                       layer["stride"])
    ho, wo = geo.out_hw
    return ho * wo, layer["num_filt"], geo.r * geo.s * geo.c, geo


def _text(lines: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.savetxt(buf, lines, fmt="%i", delimiter=",")
    return buf.getvalue()


def test_enough_cases():
    assert len(CASES) >= 10
    assert {c["dataflow"] for c in CASES} == {"os", "ws", "is"}
    assert {c["layer"]["kind"] for c in CASES} == {"conv", "gemm"}
    assert {c["layer"].get("stride") for c in CASES} >= {1, 2}


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_traces_equal_scalesim(case, tmp_path):
    m, n, k, geo = _shape(case["layer"])
    run, lines = gemm_trace(m, n, k, case["rows"], case["cols"], DATAFLOWS[case["dataflow"]], geo)
    assert run.scalesim_cycles == case["total_cycles"]
    write_traces(tmp_path, lines)
    for op, name in FILES.items():
        want = gzip.decompress((FIX / case["id"] / (name + ".gz")).read_bytes())
        assert _text(lines[op]) == want, (case["id"], name)
        assert (tmp_path / name).read_bytes() == want


def test_max_cycles_bounds_the_trace():
    case = CASES[0]
    m, n, k, geo = _shape(case["layer"])
    _, lines = gemm_trace(m, n, k, case["rows"], case["cols"], DATAFLOWS[case["dataflow"]], geo, max_cycles=10)
    full = _text(gemm_trace(m, n, k, case["rows"], case["cols"], DATAFLOWS[case["dataflow"]], geo)[1]["input"])
    assert all(v.shape[0] == 10 for v in lines.values())
    assert _text(lines["input"]) == b"".join(full.splitlines(keepends=True)[:10])


def test_cycles_and_sram_words_equal_recorded_scalesim_runs():
    """All 852 recorded SCALE-Sim 3.0.0 runs of ``scalesim_small.json`` (conv incl. depthwise, GEMM; OS/WS/IS;
    arrays from 3×7 to 32×32): the emulator's measured Total Cycles and SRAM reads/writes, per layer."""
    cases = json.loads((FIX.parent / "scalesim_small.json").read_text())["cases"]
    rng = np.random.default_rng(0)
    bad = []
    for c in cases:
        if c["kind"] == "gemm":
            m, n, k = c["m"], c["n"], c["k"]
        else:
            m, n, k = c["M_ofmap_px"], c["N_filters"], c["K_window"]
        reps = c.get("dp_channels", 1)               # depthwise: SCALE-Sim sums one row per channel
        run = systolic_gemm(rng.integers(-128, 128, (m, k)), rng.integers(-127, 128, (k, n)), c["rows"], c["cols"],
                            DATAFLOWS[c["dataflow"]])
        got = (run.scalesim_cycles * reps, run.sram_ifmap_reads * reps, run.sram_filter_reads * reps,
               run.sram_ofmap_writes_scalesim * reps)
        want = (c["total_cycles"], c["sram_ifmap_reads"], c["sram_filter_reads"], c["sram_ofmap_writes"])
        if got != want:
            bad.append((c["name"], c["dataflow"], c["rows"], c["cols"], got, want))
    assert len(cases) == 852 and not bad, bad[:5]
