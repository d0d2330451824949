"""The only place YAML is read: hw configs, model descriptions, bundled names and ``--set`` overrides.

YAML is read by :class:`Loader`, ``yaml.safe_load`` with three changes: numbers follow YAML 1.2 (``1e9`` and
``1.0e308`` are numbers, where YAML 1.1 reads them as strings), a key repeated in one mapping is an error (YAML
1.1 keeps the last one silently), and nesting deeper than :data:`MAX_DEPTH` levels is an error (instead of a
RecursionError). File names that the OS refuses (too long, invalid) are reported like missing files.
"""
from __future__ import annotations

import copy
import os
import re
from dataclasses import replace
from pathlib import Path
from typing import Iterable, Mapping

import yaml

from ..errors import ConfigError, short
from ..graph import Model
from .hw import HWConfig
from .scalesim_csv import model_dict_from_csv

#: kind → folder name: top-level in a checkout, inside the package in a wheel (see ``bundle_dir``).
BUNDLES = {"hw": "hw_configs", "model": "models"}
PACKAGE_DIR = Path(__file__).resolve().parents[1]  # the accelsim/ folder this very module belongs to
_PROJECT_NAME = re.compile(r"""^\s*name\s*=\s*["']accelsim["']\s*$""", re.MULTILINE)


MAX_DEPTH = 64
_FLOAT_12 = re.compile(r"^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$")


class _Rules:
    """Duplicate keys refused, nesting ≤ MAX_DEPTH (module docstring), on any composer + constructor."""

    depth = 0

    def compose_node(self, parent, anchor):
        self.depth += 1
        try:
            if self.depth > MAX_DEPTH:
                raise yaml.composer.ComposerError(None, None, f"nested deeper than {MAX_DEPTH} levels",
                                                  self.peek_event().start_mark)
            return super().compose_node(parent, anchor)
        finally:
            self.depth -= 1

    def construct_mapping(self, node, deep=False):
        if isinstance(node, yaml.MappingNode):
            seen = set()
            for key_node, _ in node.value:
                if isinstance(key_node, yaml.ScalarNode) and key_node.tag != "tag:yaml.org,2002:merge":
                    key = (key_node.tag, key_node.value)
                    if key in seen:
                        raise yaml.constructor.ConstructorError(None, None, f"duplicate key {short(key_node.value)!r}",
                                                                key_node.start_mark)
                    seen.add(key)
        return super().construct_mapping(node, deep)


class Loader(_Rules, yaml.SafeLoader):
    """``yaml.SafeLoader`` + YAML 1.2 floats, duplicate keys refused, nesting ≤ MAX_DEPTH (module docstring)."""


try:
    from yaml.cyaml import CParser as _CParser     # PyYAML built with libyaml
except ImportError:                                # pragma: no cover (a PyYAML without it)
    _CParser = None


class _FastLoader(_Rules, yaml.composer.Composer, *(() if _CParser is None else (_CParser,)),
                  yaml.constructor.SafeConstructor, yaml.resolver.Resolver):
    """:class:`Loader`'s composer, constructor and resolver on libyaml's scanner and parser (several times faster
    on a model YAML). :func:`parse_yaml` reads a document it refuses again with :class:`Loader`, so errors and
    their messages are :class:`Loader`'s."""

    def __init__(self, stream):
        _CParser.__init__(self, stream)
        yaml.composer.Composer.__init__(self)
        yaml.constructor.SafeConstructor.__init__(self)
        yaml.resolver.Resolver.__init__(self)


for _cls in (Loader, _FastLoader):
    _cls.add_implicit_resolver("tag:yaml.org,2002:float", _FLOAT_12, list("-+0123456789."))


def parse_yaml(text: str) -> object:
    """YAML text → data with :class:`Loader`; ``yaml.YAMLError`` (or ValueError for an unreadable number)."""
    if _CParser is not None and "\t" not in text:     # libyaml accepts tab separators that Loader refuses
        try:
            return yaml.load(text, Loader=_FastLoader)
        except (yaml.YAMLError, ValueError, RecursionError):
            pass            # the pure-Python reader gives the error (and its message)
    return yaml.load(text, Loader=Loader)


def is_file(path: Path) -> bool:
    """``path.is_file()``, False where the OS refuses the name (too long, NUL byte ...)."""
    try:
        return path.is_file()
    except (OSError, ValueError):
        return False


def is_dir(path: Path) -> bool:
    try:
        return path.is_dir()
    except (OSError, ValueError):
        return False


def _is_accelsim_checkout(root: Path) -> bool:
    """``root`` holds a pyproject.toml declaring ``name = "accelsim"`` (not just any folder with models/)."""
    try:
        return bool(_PROJECT_NAME.search((root / "pyproject.toml").read_text(encoding="utf-8")))
    except (OSError, UnicodeDecodeError):
        return False


def bundle_candidates(kind: str, package_dir: Path | None = None) -> list[Path]:
    """Where the bundled YAMLs of ``kind`` are looked for, in order.

    1. The checkout this package lives in: ``<package>/../models`` when ``<package>/..`` is the accelsim
       project (its pyproject.toml says so), so a checkout always uses its own files, whatever is installed.
    2. The installed package data: ``<package>/models``, where the wheel puts them.

    Nothing is imported: a stale install (an editable finder or wheel left behind) cannot shadow or break it.
    """
    package_dir = PACKAGE_DIR if package_dir is None else package_dir
    folder = BUNDLES[kind]
    found = []
    if _is_accelsim_checkout(package_dir.parent):
        found.append(package_dir.parent / folder)
    found.append(package_dir / folder)
    return found


def bundle_dir(kind: str, package_dir: Path | None = None) -> Path:
    """The folder of the bundled ``kind`` YAMLs; ConfigError naming every place looked if there is none."""
    candidates = bundle_candidates(kind, package_dir)
    for folder in candidates:
        if folder.is_dir():
            return folder
    raise ConfigError([f"no bundled {kind} files: looked in {', '.join(map(str, candidates))}"])


def bundled_names(kind: str) -> list[str]:
    return sorted(p.stem for p in bundle_dir(kind).glob("*.yaml") if p.is_file())


def resolve(spec: str | Path, kind: str) -> Path:
    """A path that exists, or a bundled name, → the file's Path.

    A bundled name is ``edge`` / ``edge.yaml``, or ``hw_configs/edge.yaml`` (``models/resnet50.yaml``) when no
    such file exists from here, so the README's commands also work outside the checkout. The bundled SCALE-Sim
    topologies resolve the same way: ``models/scalesim/Resnet50.csv`` or ``scalesim/Resnet50.csv``.
    """
    path = Path(spec)
    if is_file(path):
        return path
    try:
        folder = bundle_dir(kind)
    except ConfigError as exc:
        raise ConfigError([f"{short(spec)}: no such file, and {exc.problems[0]}"]) from None
    if path.suffix.lower() == ".csv":   # a bundled SCALE-Sim topology: models/scalesim/X.csv or scalesim/X.csv
        inside = Path(*path.parts[1:]) if path.parts[:1] == (BUNDLES[kind],) else path
        if inside.parts and not inside.is_absolute() and ".." not in inside.parts and is_file(folder / inside):
            return folder / inside
        csvs = sorted(p.relative_to(folder).as_posix() for p in folder.glob("*/*.csv"))
        raise ConfigError([f"{short(spec)}: no such file, and not a bundled topology "
                           f"(bundled: {', '.join(csvs) or 'none'})"])
    name = path.name[:-5] if path.name.endswith(".yaml") else path.name
    if path.parent in (Path("."), Path(BUNDLES[kind])) and is_file(folder / f"{name}.yaml"):
        return folder / f"{name}.yaml"
    raise ConfigError([f"{short(spec)}: no such file, and not a bundled {kind} name "
                       f"(bundled: {', '.join(bundled_names(kind))})"])


def read_text(path: Path) -> str:
    """The file as UTF-8 text (a BOM is dropped); ConfigError if unreadable or not text."""
    try:
        return path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ConfigError([f"not UTF-8 text (byte {exc.start}): expected a YAML or CSV text file"], str(path)) from None
    except (OSError, ValueError) as exc:
        raise ConfigError([f"cannot read: {getattr(exc, 'strerror', None) or exc}"], str(path)) from None


def load_scalesim_csv(path: Path) -> Model:
    """A SCALE-Sim topology CSV as a model (:mod:`accelsim.config.scalesim_csv`), named after the file; how it was
    read (columns by position, tabs, section rows skipped) is in ``Model.warnings``."""
    warnings: list[str] = []
    model = Model.from_dict(model_dict_from_csv(read_text(path), path.stem, str(path), warnings), source=str(path))
    return replace(model, warnings=tuple(warnings)) if warnings else model


def read_yaml(path: Path) -> object:
    text = read_text(path)
    try:
        return parse_yaml(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError([f"malformed YAML: {where}{problem}"], str(path)) from None
    except (ValueError, RecursionError) as exc:  # e.g. an integer of more than 4300 digits
        raise ConfigError([f"malformed YAML: {short(exc)}"], str(path)) from None


def _parse_override(item: str) -> tuple[list[str], object]:
    if "=" not in item or not item.split("=", 1)[0].strip():
        raise ConfigError([f"--set {short(item)!r}: expected key.path=value, e.g. array.rows=64"])
    key, value = item.split("=", 1)
    keys = key.strip().split(".")
    if keys[0] == "hw":
        keys = keys[1:]
    if not keys or not all(keys):
        raise ConfigError([f"--set {short(item)!r}: empty field name in {short(key)!r}"])
    try:
        parsed = parse_yaml(value) if value.strip() else value
    except yaml.YAMLError:
        parsed = value
    except (ValueError, RecursionError) as exc:
        raise ConfigError([f"--set {short(item)!r}: {short(exc)}"]) from None
    return keys, parsed


def apply_overrides(data: dict, overrides: Iterable[str]) -> dict:
    """Return a copy of ``data`` with each ``a.b.c=value`` applied (value parsed as YAML). A memory level is
    addressed by its name: ``memory.sram_2MB.size_kib=1024`` (or ``memory.levels.sram_2MB.size_kib``)."""
    overrides = list(overrides)
    if not isinstance(data, dict):  # reported by validation as "expected a mapping"
        return data
    data = copy.deepcopy(data)
    for item in overrides:
        keys, value = _parse_override(item)
        set_path(data, keys, value, f"--set {short(item)!r}")
    return data


def set_path(data: dict, keys: list[str], value, label: str) -> None:
    """Set the field at ``keys`` in ``data`` in place, creating sections as needed; ``label`` starts the
    one-line error when the path runs through something that is not a section."""
    node = data
    for i, key in enumerate(keys[:-1]):
        level = _named_level(node, key)
        if level is not None:
            node = level
            continue
        if isinstance(node, list):
            names = ", ".join(str(x.get("name")) for x in node if isinstance(x, dict))
            raise ConfigError([f"{label}: no memory level named {short(key)!r} (levels: {short(names)})"])
        if isinstance(node, dict) and isinstance(node.get(key), list) and key == "levels":
            node = node[key]
            continue
        if not isinstance(node, dict) or not isinstance(node.get(key, {}), dict):
            raise ConfigError([f"{label}: hw.{short('.'.join(keys[:i + 1]))} is not a section"])
        node = node.setdefault(key, {})
    if not isinstance(node, dict):
        raise ConfigError([f"{label}: expected memory.levels.<level name>.<field>"])
    node[keys[-1]] = value


def _named_level(node, key: str):
    """A memory level addressed by name: ``memory.<name>`` or ``memory.levels.<name>`` (else None)."""
    items = node if isinstance(node, list) else node.get("levels") if key not in node else None
    if not isinstance(items, list):
        return None
    named = [x for x in items if isinstance(x, dict) and x.get("name") == key]
    return named[0] if named else None


def _spec(value, kind: str, loaded: str):
    """A name or path (``str`` / ``os.PathLike``), else one line naming the forms a ``kind`` argument takes."""
    if isinstance(value, (str, os.PathLike)):
        return value
    shown = repr(value) if len(repr(value)) <= 40 else ""
    raise ConfigError([f"{kind}: expected a bundled {kind} name, a path or a loaded {loaded}, got "
                       f"{type(value).__name__} {shown}".rstrip()])


def hw_fields(spec) -> dict:
    """The hw YAML fields (a fresh dict) of a hw name, path, mapping or loaded :class:`HWConfig` — what a sweep or
    ``--set`` varies. A loaded HWConfig gives the fields it was validated from (``HWConfig.data``)."""
    if isinstance(spec, HWConfig):
        data = None if spec.data is None else copy.deepcopy(dict(spec.data))
        if data is None or HWConfig.from_dict(data, "hw", spec.source) != spec:
            raise ConfigError([f"hw: this HWConfig ({short(spec.name)}) was not loaded from fields, or was changed "
                               "since (dataclasses.replace), so its fields are unknown: pass its name, path or "
                               "a mapping of its fields"])
        return data
    if isinstance(spec, Mapping):
        return copy.deepcopy(dict(spec))
    return read_yaml(resolve(_spec(spec, "hw", "HWConfig (or a mapping of hw fields)"), "hw"))


def load_hw(spec, overrides: Iterable[str] = ()) -> HWConfig:
    """A hw YAML path or bundled name, a mapping of hw fields, or a loaded :class:`HWConfig` (returned as is
    without ``overrides``) → HWConfig, with each ``a.b.c=value`` override applied."""
    overrides = list(overrides)
    if isinstance(spec, HWConfig) and not overrides:
        return spec
    source = spec.source if isinstance(spec, HWConfig) else "" if isinstance(spec, Mapping) else str(spec)
    return HWConfig.from_dict(apply_overrides(hw_fields(spec), overrides), "hw", source=source)


def model_builder(spec, unsupported: str = "error"):
    """A function ``params → Model`` for one model spec that reads a model YAML once (a decoder costed at many
    KV-cache lengths loads it again and again); other forms are loaded by :func:`load_model` on each call."""
    if isinstance(spec, (str, os.PathLike)) and Path(spec).suffix.lower() in ("", ".yaml", ".yml"):
        path = resolve(spec, "model")
        data = read_yaml(path)
        return lambda params: Model.from_dict(data, "model", source=str(spec), overrides=params)
    return lambda params: load_model(spec, params, unsupported)


def load_model(spec, params: Mapping[str, int] | None = None, unsupported: str = "error",
               batch_axis="auto") -> Model:
    """A model YAML, a bundled model name, a SCALE-Sim topology CSV (a path or a bundled one,
    ``scalesim/gpt2.csv``), a GGUF decoder LLM (``.gguf``, needs the ``accelsim[llm]`` extra; its graph with
    last-token logits, :mod:`accelsim.llm`) or an ONNX file (``.onnx``, needs the ``accelsim[onnx]`` extra;
    ``unsupported="vector"`` costs unknown ONNX ops as vector work; ``batch_axis``: ``"auto"``, ``None`` or an
    axis, see :mod:`accelsim.onnx.batch`) → Model; a loaded :class:`~accelsim.graph.Model` is returned as is (its
    parameters were set when it was loaded)."""
    if isinstance(spec, Model):
        if params:
            raise ConfigError([f"model {short(spec.name)}: params set a model's parameters when it is loaded; "
                               "load it again with them"])
        return spec
    if batch_axis != "auto" and Path(str(spec)).suffix.lower() != ".onnx":
        raise ConfigError([f"{short(spec)}: --batch-axis applies to ONNX models (a model YAML's batch axis is "
                           "in front of every tensor)"])
    path = Path(_spec(spec, "model", "Model"))
    if path.suffix.lower() == ".gguf":
        if not is_file(path):
            raise ConfigError([f"{short(spec)}: no such file"])
        from ..llm.importer import load_gguf
        return load_gguf(path, dict(params or {}))
    if path.suffix.lower() == ".onnx":
        if not is_file(path):
            raise ConfigError([f"{short(spec)}: no such file"])
        from ..onnx.batch import parse_batch_axis
        from ..onnx.importer import cached_import
        return cached_import(path, dict(params or {}), unsupported, parse_batch_axis(batch_axis)).model
    if path.suffix.lower() == ".csv":
        path = resolve(spec, "model")
        if params:
            raise ConfigError([f"{short(spec)}: SCALE-Sim topologies take no model parameters"])
        return load_scalesim_csv(path)
    path = resolve(spec, "model")
    return Model.from_dict(read_yaml(path), "model", source=str(spec), overrides=params)
