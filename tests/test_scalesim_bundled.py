"""The SCALE-Sim topologies shipped under models/scalesim/: unchanged copies, with their licence, resolved by a
path or a bundled name from any folder, and part of the wheel's package data."""
from __future__ import annotations

import tomllib

import pytest

from accelsim.config.loader import load_model, resolve
from accelsim.errors import ConfigError
from conftest import REPO, SCALESIM_REF

BUNDLED = REPO / "models" / "scalesim"
ORIGIN = {"Resnet50.csv": "topologies/mlperf/Resnet50.csv", "vit_s.csv": "topologies/GEMM_mnk/vit_s.csv",
          "gpt2.csv": "topologies/GEMM_mnk/gpt2.csv", "LICENSE.scalesim": "LICENSE.scalesim"}


def test_bundled_files_are_the_upstream_files_with_their_licence():
    assert sorted(p.name for p in BUNDLED.iterdir() if p.name != "README.md") == sorted(ORIGIN)
    assert "MIT License" in (BUNDLED / "LICENSE.scalesim").read_text()
    if not SCALESIM_REF.is_dir():
        pytest.skip("no SCALE-Sim reference copy beside the repository")
    for name, upstream in ORIGIN.items():
        assert (BUNDLED / name).read_bytes() == (SCALESIM_REF / upstream).read_bytes(), name


@pytest.mark.parametrize("spec", ["models/scalesim/Resnet50.csv", "scalesim/Resnet50.csv"])
def test_bundled_topology_resolves_from_any_folder(spec, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert resolve(spec, "model") == BUNDLED / "Resnet50.csv"
    model = load_model(spec)
    assert model.name == "Resnet50" and model.params == 25_502_912      # conv form, no biases, no padding
    assert len(load_model("scalesim/vit_s.csv").layers) == 5                 # GEMM form: one layer per row


@pytest.mark.parametrize("spec", ["scalesim/nope.csv", "../models/scalesim/Resnet50.csv", "/nope/Resnet50.csv"])
def test_unknown_topology_is_a_one_line_error_listing_the_bundled_ones(spec, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError) as info:
        load_model(spec)
    message = str(info.value)
    assert message.startswith(f"{spec}: no such file, and not a bundled topology (bundled: scalesim/Resnet50.csv")
    assert "\n" not in message


def test_wheel_package_data_names_the_topologies_and_licence():
    data = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    assert {"scalesim/*.csv", "scalesim/LICENSE.scalesim"} <= set(data["accelsim.models"])
