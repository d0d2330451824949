"""The only place YAML is read: hw configs, model descriptions, bundled names and ``--set`` overrides."""
from __future__ import annotations

import copy
from importlib import resources
from pathlib import Path
from typing import Iterable, Mapping

import yaml

from ..errors import ConfigError
from ..graph import Model
from .hw import HWConfig
from .scalesim_csv import load_scalesim_csv

BUNDLES = {"hw": "accelsim.hw_configs", "model": "accelsim.models"}


def bundled_names(kind: str) -> list[str]:
    root = resources.files(BUNDLES[kind])
    return sorted(p.name[:-5] for p in root.iterdir() if p.name.endswith(".yaml"))


def resolve(spec: str | Path, kind: str) -> Path:
    """A path that exists, or a bundled name (``edge``, ``resnet50``), → the file's Path."""
    path = Path(spec)
    if path.is_file():
        return path
    name = path.name[:-5] if path.name.endswith(".yaml") else path.name
    candidate = resources.files(BUNDLES[kind]) / f"{name}.yaml"
    if path.parent == Path(".") and candidate.is_file():
        return Path(str(candidate))
    raise ConfigError([f"{spec}: no such file, and not a bundled {kind} name "
                       f"(bundled: {', '.join(bundled_names(kind))})"])


def read_text(path: Path) -> str:
    """The file as UTF-8 text (a BOM is dropped); ConfigError if unreadable or not text."""
    try:
        return path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise ConfigError([f"cannot read: {exc.strerror}"], str(path)) from None
    except UnicodeDecodeError as exc:
        raise ConfigError([f"not UTF-8 text (byte {exc.start}): expected a YAML or CSV text file"], str(path)) from None


def read_yaml(path: Path) -> object:
    text = read_text(path)
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError([f"malformed YAML: {where}{problem}"], str(path)) from None


def _parse_override(item: str) -> tuple[list[str], object]:
    if "=" not in item or not item.split("=", 1)[0].strip():
        raise ConfigError([f"--set {item!r}: expected key.path=value, e.g. array.rows=64"])
    key, value = item.split("=", 1)
    keys = key.strip().split(".")
    if keys[0] == "hw":
        keys = keys[1:]
    try:
        parsed = yaml.safe_load(value) if value.strip() else value
    except yaml.YAMLError:
        parsed = value
    return keys, parsed


def apply_overrides(data: dict, overrides: Iterable[str]) -> dict:
    """Return a copy of ``data`` with each ``a.b.c=value`` applied (value parsed as YAML)."""
    overrides = list(overrides)
    if not isinstance(data, dict):  # reported by validation as "expected a mapping"
        return data
    data = copy.deepcopy(data)
    for item in overrides:
        keys, value = _parse_override(item)
        node = data
        for i, key in enumerate(keys[:-1]):
            if not isinstance(node.get(key, {}), dict):
                raise ConfigError([f"--set {item!r}: hw.{'.'.join(keys[:i + 1])} is not a section"])
            node = node.setdefault(key, {})
        node[keys[-1]] = value
    return data


def load_hw(spec: str | Path, overrides: Iterable[str] = ()) -> HWConfig:
    path = resolve(spec, "hw")
    data = apply_overrides(read_yaml(path), overrides)
    return HWConfig.from_dict(data, "hw", source=str(spec))


def load_model(spec: str | Path, params: Mapping[str, int] | None = None) -> Model:
    """A model YAML, a bundled model name or a SCALE-Sim topology CSV → Model."""
    path = Path(spec)
    if path.suffix.lower() == ".csv":
        if not path.is_file():
            raise ConfigError([f"{spec}: no such file"])
        if params:
            raise ConfigError([f"{spec}: SCALE-Sim topologies take no model parameters"])
        return load_scalesim_csv(path)
    path = resolve(spec, "model")
    return Model.from_dict(read_yaml(path), "model", source=str(spec), overrides=params)
