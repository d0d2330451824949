"""RunReport.layers built on first access (accelsim/sim/table.py): the totals summed from the engine's columns
equal the totals of the records, type for type, and the report behaves as a frozen dataclass given its layers."""
from __future__ import annotations

import copy
import dataclasses
import json
import pickle

import pytest

from accelsim.config.loader import load_hw, load_model
from accelsim.sim import engine, prepare
from accelsim.sim.engine import simulate
from accelsim.sim.report_types import LayerCost, RunReport, totals

CASES = [
    ("resnet50", "edge", [], "w8a8", 1),
    ("resnet50", "scalesim_32x32", ["memory.activation_placement=live"], "w4a8", 3),
    ("scalesim/Resnet50.csv", "scalesim_32x32", ["array.dataflow=is"], "w8a8", 1),
    ("mobilenet_v2", "edge", ["array.grouped=cols", "timing.dram_overlap=fold", "timing.load_store_phases=true"],
     "fp32", 2),
    ("bert_base", "host_cpu", [], "fp32", 1),
    ("tests/fixtures/small_net.yaml", "edge", ["memory.strided_gather=true"], "q4_0", 1),
]


def _precs(model, precision: str, batch: int) -> list:
    works, sinks = prepare.lowered(model, batch)
    return prepare.precisions(model, works, sinks, precision, None, batch)[1]


@pytest.mark.parametrize("model_name, hw_name, sets, precision, batch", CASES)
def test_totals_from_columns_equal_totals_of_the_records(model_name, hw_name, sets, precision, batch):
    model, hw = load_model(model_name), load_hw(hw_name, sets)
    report = simulate(model, hw, precision, batch=batch)
    assert "layers" not in vars(report)              # the lazy route ran: nothing built yet
    of_records = totals(report.layers, hw, model, _precs(model, precision, batch), batch)
    assert json.dumps(report.totals) == json.dumps(of_records)


@pytest.mark.parametrize("min_group", [1, 10**9])
def test_totals_from_records_and_groups_alike(monkeypatch, min_group):
    """Every layer in a group (columns) or every layer costed alone (records): the same totals."""
    monkeypatch.setattr(engine, "MIN_COLUMN_GROUP", min_group)
    model, hw = load_model("resnet50"), load_hw("edge")
    report = simulate(model, hw)
    assert json.dumps(report.totals) == json.dumps(totals(report.layers, hw, model, _precs(model, "w8a8", 1)))


def test_lazy_layers_read_as_given_layers():
    model, hw = load_model("resnet50"), load_hw("edge")
    report = simulate(model, hw)
    layers = report.layers
    assert type(layers) is tuple and report.layers is layers and all(type(c) is LayerCost for c in layers)
    assert [f.name for f in dataclasses.fields(RunReport)] == ["model", "hw", "precision", "layers", "totals",
                                                                "config"]
    given = RunReport(report.model, report.hw, report.precision, layers, report.totals, report.config)
    assert given == report and simulate(model, hw) == report
    assert json.dumps(given.to_dict()) == json.dumps(simulate(model, hw).to_dict())
    with pytest.raises(dataclasses.FrozenInstanceError):
        report.layers = ()
    fewer = dataclasses.replace(simulate(model, hw), layers=layers[:3])
    assert fewer.layers == layers[:3] and fewer.totals == report.totals
    for other in (pickle.loads(pickle.dumps(simulate(model, hw))), copy.copy(simulate(model, hw)),
                  copy.deepcopy(simulate(model, hw))):
        assert other == report and json.dumps(other.to_dict()) == json.dumps(report.to_dict())
    with pytest.raises(AttributeError):
        report.no_such_field                          # noqa: B018
