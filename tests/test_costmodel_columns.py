"""The cost model over columns of layers (accelsim/sim/columns.py) against its twin, one call per layer.

simulate() costs groups of structurally equal layers in one call over arrays and splits the result; the
per-layer route (every group below ``MIN_COLUMN_GROUP``) is the definition. The two must give the same report,
value for value and type for type (an int stays an int in the JSON).
"""
from __future__ import annotations

import json

import numpy as np
import pytest

from accelsim.config.loader import load_hw, load_model
from accelsim.sim import engine
from accelsim.sim.columns import Columns, build, configs, maker
from accelsim.sim.engine import simulate
from accelsim.sim.report_types import Timing

CASES = [
    ("tests/fixtures/small_net.yaml", "edge", [], "w8a8", None, 1),
    ("tests/fixtures/small_net.yaml", "server", ["memory.double_buffer=false"], "fp16", None, 2),
    ("mobilenet_v2", "edgetpu_devboard", [], "w8a8", None, 1),
    ("mobilenet_v2", "edge", ["array.grouped=cols", "timing.dram_overlap=fold", "timing.load_store_phases=true"],
     "w4a8", None, 1),
    ("resnet50", "zigzag_tpu_like", [], "w8a8", None, 3),
    ("resnet50", "edge", ["memory.activation_placement=live", "memory.strided_gather=true",
                          "timing.stationary_double_buffer=true"], "w8a8", {"conv1.*": "fp16", "layer1.*": "w4a4"}, 1),
    ("bert_base", "server", ["timing.layer_overhead_cycles=100", "timing.dma_overhead_cycles=7"], "w8a8", None, 1),
    ("bert_base", "edge", ["array.dataflow=is"], "fp16", None, 2),
    ("scalesim/Resnet50.csv", "scalesim_32x32", ["array.dataflow=os"], "w8a8", None, 1),
    ("scalesim/gpt2.csv", "edgetpu_usb", [], "w8a8", None, 1),
]


def _plan(model, spec):
    if not spec:
        return None
    from fnmatch import fnmatchcase
    return {layer.name: prec for layer in model.layers for glob, prec in spec.items() if fnmatchcase(layer.name, glob)}


@pytest.mark.parametrize("model_name, hw_name, sets, precision, plan, batch", CASES)
def test_columns_equal_one_call_per_layer(monkeypatch, model_name, hw_name, sets, precision, plan, batch):
    model, hw = load_model(model_name), load_hw(hw_name, sets)
    args = (model, hw, precision, _plan(model, plan))
    reports = {}
    for name, smallest in (("per_layer", 10**9), ("columns", 1), ("default", engine.MIN_COLUMN_GROUP)):
        monkeypatch.setattr(engine, "MIN_COLUMN_GROUP", smallest)
        reports[name] = json.dumps(simulate(*args, batch=batch).to_dict(), sort_keys=True)
    assert reports["columns"] == reports["per_layer"]
    assert reports["default"] == reports["per_layer"]


def test_columns_of_a_sweep_equal_single_configurations(monkeypatch):
    """Columns over layers × configurations (a sweep group) give each configuration's per-layer costs."""
    model = load_model("mobilenet_v2")
    rows, clock = np.array([16, 48, 64]), np.array([300.0, 500.0, 900.0])
    base = load_hw("edgetpu_devboard")
    data = dict(base.data) | {"clock_mhz": clock, "array": dict(base.data["array"]) | {"rows": rows}}
    swept = simulate(model, type(base).from_dict(data))
    for j in range(3):
        one = simulate(model, load_hw("edgetpu_devboard", [f"array.rows={rows[j]}", f"clock_mhz={clock[j]}"]))
        for got, want in zip(swept.layers, one.layers):
            assert np.broadcast_to(got.cycles, (3,))[j] == want.cycles, got.name
            assert np.broadcast_to(got.energy_pj, (3,))[j] == want.energy_pj, got.name
        assert swept.totals["latency_ms"][j] == one.totals["latency_ms"]


def test_columns_keep_plain_numbers_for_equal_values():
    cols = Columns(None)
    assert cols([3, 3, 3]) == 3 and type(cols([3, 3, 3])) is int
    assert cols([1.0, 2.0]).tolist() == [1.0, 2.0]
    assert Columns(4)([1, 2]).shape == (2, 1)
    assert Columns(2)([np.array([1, 2]), 5]).tolist() == [[1, 2], [5, 5]]
    assert cols.rows(np.array([1.0, 2.0]), 2, int) == [1, 2] and type(cols.rows(np.array([1.0]), 1, int)[0]) is int


def test_configs_counts_a_sweep_group():
    hw = load_hw("edge")
    assert configs(hw) is None
    data = dict(hw.data) | {"clock_mhz": np.array([100.0, 200.0])}
    assert configs(type(hw).from_dict(data)) == 2


def test_maker_builds_the_same_record():
    values = (1, 2.0, 3, 4, 0, 5, 6, 1, "memory", 0.5, 0.25, {"dram": 1}, 0, None, None)
    assert maker(Timing)(*values) == Timing(*values)
    assert build(Timing, [[v, v] for v in values], 2) == [Timing(*values)] * 2


def test_remember_keys_by_identity_and_forgets_the_oldest():
    from accelsim.sim.columns import remember
    memo, calls = {}, []
    a, b = load_hw("edge"), load_hw("edge")        # equal, but two objects
    make = lambda tag: (lambda: calls.append(tag) or tag)
    assert remember(memo, a, 1, make("a")) == "a" and remember(memo, a, 1, make("again")) == "a"
    assert remember(memo, b, 1, make("b")) == "b" and calls == ["a", "b"]
    for i in range(10):
        remember(memo, a, i + 2, make(i), keep=4)
    assert len(memo) == 4


def test_a_new_model_object_is_lowered_again():
    """The lowering is remembered per Model object; an equal but new one gives the same report."""
    import dataclasses
    model, hw = load_model("mobilenet_v2"), load_hw("edge")
    first = simulate(model, hw).to_dict()
    assert simulate(dataclasses.replace(model), hw).to_dict() == first == simulate(model, hw).to_dict()
