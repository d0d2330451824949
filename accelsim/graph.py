"""Model graphs: layers with inferred shapes, parameter and MAC counts.

A model is a list of layers in topological order. Each layer reads the tensors named in ``inputs``
(default: the previous layer's output, or the first model input for the first layer) and produces one
tensor named after the layer. Shapes exclude the batch dimension (batch 1). See :mod:`accelsim.ops` for
the operator vocabulary.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Mapping

from .config.fields import MISSING, Reader, join
from .errors import ConfigError
from .ops import OPS, Shape, ShapeError

WEIGHT_FORMATS = ("safetensors", "pth", "npz", "trained")
DATASETS = ("mnist", "photos", "lee")


@dataclass(frozen=True, slots=True)
class Layer:
    name: str
    op: str
    inputs: tuple[str, ...]
    attrs: Mapping[str, Any]
    in_shapes: tuple[Shape, ...]
    out_shape: Shape
    params: int
    precision: str | None = None
    weight: str | None = None      # tensor-name prefix of this layer's weights in the model's weights file


@dataclass(frozen=True, slots=True)
class Model:
    name: str
    inputs: Mapping[str, Shape]
    layers: tuple[Layer, ...]
    source: str = field(default="", compare=False)
    weights: Mapping[str, str] | None = None   # where real weights come from (see accelsim.data.weights)
    dataset: str | None = None                 # the evaluation task these weights are measured on

    @property
    def params(self) -> int:
        return sum(layer.params for layer in self.layers)

    def layer(self, name: str) -> Layer:
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise KeyError(name)

    @classmethod
    def from_dict(cls, data, path: str = "model", source: str = "", overrides: Mapping[str, int] | None = None):
        """Validate a model description and infer every shape; one ConfigError lists all problems."""
        problems: list[str] = []
        r = Reader(data, path, problems)
        name = r.string("name", "model")
        params = _params(r.mapping("params", {}), overrides or {})
        inputs = _inputs(r, params)
        raw_layers = r.raw("layers", None if r.broken else MISSING)
        r.raw("description", None)
        weights = _weights_spec(r.mapping("weights")) if "weights" in r.data else None
        dataset = r.choice("dataset", DATASETS) if "dataset" in r.data else None
        r.reject_unknown()
        if not isinstance(raw_layers, list) or not raw_layers:
            if raw_layers is not None and raw_layers is not MISSING:
                r.bad("layers", "a non-empty list of layers", raw_layers)
            raise ConfigError(problems, source)
        layers = _layers(raw_layers, join(path, "layers"), dict(inputs), problems)
        if problems:
            raise ConfigError(problems, source)
        return cls(name, MappingProxyType(inputs), tuple(layers), source, weights, dataset)


def _weights_spec(r: Reader) -> Mapping[str, str]:
    """``weights: {format, package + module + path | file | trained}`` — validated, not loaded."""
    spec = {"format": r.choice("format", WEIGHT_FORMATS)}
    for key in ("package", "module", "path", "file", "trained"):
        if key in r.data:
            spec[key] = r.string(key)
    r.reject_unknown()
    sources = [k for k in ("module", "file", "trained") if k in spec]
    if len(sources) != 1:
        r.problems.append(f"{r.path}: expected exactly one source (module + path, file, or trained), got {sources}")
    elif sources == ["module"] and ("path" not in spec or "package" not in spec):
        r.problems.append(f"{r.path}: a module source needs 'package' (pip name) and 'path' (file in the package)")
    return MappingProxyType(spec)


def _params(r: Reader, overrides: Mapping[str, int]) -> dict[str, int]:
    values = {key: r.pos_int(key) for key in r.data}
    for key, value in overrides.items():
        if key not in values:
            r.problems.append(f"{join(r.path, key)}: unknown model parameter (known: {', '.join(values) or 'none'})")
        elif isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            r.problems.append(f"{join(r.path, key)}: expected a positive integer, got {value!r}")
        else:
            values[key] = value
    return values


def _inputs(r: Reader, params: dict[str, int]) -> dict[str, Shape]:
    raw = r.raw("inputs", None if r.broken else MISSING)
    out: dict[str, Shape] = {}
    if not isinstance(raw, list) or not raw:
        if raw is not None and raw is not MISSING:
            r.bad("inputs", "a non-empty list of {name, shape}", raw)
        return out
    for i, item in enumerate(raw):
        ir = Reader(item, join(r.path, "inputs") + f"[{i}]", r.problems)
        name = ir.string("name")
        shape = ir.raw("shape")
        ir.raw("dtype", None)
        ir.reject_unknown()
        dims = []
        for d in shape if isinstance(shape, list) and shape else [None]:
            d = params.get(d, d) if isinstance(d, str) else d
            if isinstance(d, bool) or not isinstance(d, int) or d <= 0:
                ir.bad("shape", "a list of positive integers or model parameter names", shape)
                break
            dims.append(d)
        else:
            out[name] = tuple(dims)
    return out


def _layers(raw: list, path: str, tensors: dict[str, Shape], problems: list[str]) -> list[Layer]:
    layers: list[Layer] = []
    previous = next(iter(tensors), None)
    for i, item in enumerate(raw):
        label = f"{path}[{i}]"
        if isinstance(item, dict) and isinstance(item.get("name"), str):
            label += f" ({item['name']})"
        r = Reader(item, label, problems)
        name, op = r.string("name"), r.string("op")
        inputs = _layer_inputs(r, previous)
        precision = r.string("precision", None) if "precision" in r.data else None
        weight = r.string("weight", None) if "weight" in r.data else None
        n_before = len(problems)
        if op and op not in OPS:
            r.bad("op", "one of " + ", ".join(sorted(OPS)), op)
            continue
        if not op:
            continue
        attrs = OPS[op].attrs(r)
        r.reject_unknown()
        missing = [t for t in inputs if t not in tensors]
        if missing:
            problems.append(f"{label}.inputs: unknown tensor(s) {missing} (not a model input or earlier layer)")
        if name and name in tensors:
            problems.append(f"{label}.name: duplicate tensor name {name!r}")
        if len(problems) > n_before:
            continue
        in_shapes = [tensors[t] for t in inputs]
        try:
            out = OPS[op].shape(attrs, in_shapes)
        except ShapeError as exc:
            problems.append(f"{label}: {op}: {exc}")
            continue
        tensors[name] = out
        previous = name
        layers.append(Layer(name, op, tuple(inputs), MappingProxyType(attrs), tuple(in_shapes), out,
                            OPS[op].params(attrs, in_shapes), precision, weight))
    return layers


def _layer_inputs(r: Reader, previous: str | None) -> list[str]:
    if "inputs" in r.data:
        value = r.raw("inputs")
        if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
            return list(value)
        r.bad("inputs", "a non-empty list of tensor names", value)
        return []
    if "input" in r.data:
        value = r.raw("input")
        if isinstance(value, str):
            return [value]
        r.bad("input", "a tensor name", value)
        return []
    return [previous] if previous else []

