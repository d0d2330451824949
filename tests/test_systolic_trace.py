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
from accelsim.sim.emulate import gemm_trace
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
