"""Weight files named by a model YAML: find and read them (without torch) and check them against the graph.

A model's ``weights:`` section names the file — ``{format: safetensors|pth|npz, package, module, path}``
for a file inside an installed registry package, or ``{format, file}`` for a path (relative to the YAML).
(``{format: npz, trained: <kind>}`` names weights accelsim trains itself and ``{format: onnx}`` an ONNX model's
initializers: :func:`accelsim.nn.weights.load_model_weights` finds those, and every kind, for execution.)
A layer's ``weight: prefix`` binds it to tensors ``prefix.weight`` / ``prefix.bias`` (batchnorm also
``running_mean``/``running_var``), whose shapes :func:`check_weights` compares with the graph:

    conv2d [Cout, Cin/groups, kh, kw] (+ bias [Cout]);  linear [out, in] (+ bias [out]);
    embedding [num_embeddings, dim];  layernorm/batchnorm [C] each.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import AccelsimError, ConfigError
from ..graph import Layer, Model
from ..ops import OPS
from .packages import find_package_file


def weights_path(model: Model) -> Path:
    """The weights file of a package (``module``) or ``file`` source."""
    spec = model.weights
    if spec is None:
        raise AccelsimError(f"model {model.name} has no 'weights:' section; it can be costed but not executed")
    if "module" in spec:
        return find_package_file(spec["module"], spec["path"], spec["package"])
    if "file" in spec:
        path = Path(spec["file"])
        if not path.is_absolute() and model.source:
            path = Path(model.source).parent / path
        if not path.is_file():
            raise AccelsimError(f"{model.source or model.name}: weights file {path} not found")
        return path
    raise AccelsimError(f"model {model.name}: its weights are not a file but {dict(spec)} "
                        "(accelsim.nn.weights.load_model_weights finds them)")


def read_weights(path: Path, fmt: str) -> dict[str, np.ndarray]:
    """Every tensor of a ``safetensors``, ``pth`` or ``npz`` file, by name (npz entries starting ``__`` are meta)."""
    if fmt == "safetensors":
        from .safetensors import load_safetensors
        return load_safetensors(path)
    if fmt == "pth":
        from .torch_pth import load_pth
        return load_pth(path)
    try:
        with np.load(path, allow_pickle=False) as data:
            return {k: data[k] for k in data.files if not k.startswith("__")}
    except (OSError, ValueError) as exc:
        raise AccelsimError(f"{path}: not a readable .npz ({exc})") from None


def expected_shapes(layer: Layer) -> dict[str, tuple[int, ...]]:
    """Tensor suffix → shape this layer needs (its op's registry rule; empty for ops without weights)."""
    return OPS[layer.op].weights(layer.attrs, list(layer.in_shapes))


def check_weights(model: Model, tensors: dict[str, np.ndarray]) -> None:
    """ConfigError listing every bound tensor that is missing or has the wrong shape."""
    problems = []
    for i, layer in enumerate(model.layers):
        if layer.weight is None:
            continue
        for suffix, shape in expected_shapes(layer).items():
            key = f"{layer.weight}.{suffix}"
            where = f"model.layers[{i}] ({layer.name}).weight"
            if key not in tensors:
                problems.append(f"{where}: tensor {key!r} not in the weights file")
            elif tuple(np.shape(tensors[key])) != shape:
                problems.append(f"{where}: tensor {key!r} has shape {list(np.shape(tensors[key]))}, "
                                f"the graph needs {list(shape)}")
    if problems:
        raise ConfigError(problems, model.source or model.name)
