"""Real weights named by a model YAML: load them (without torch) and check them against the graph.

A model's ``weights:`` section names the file — ``{format: safetensors|pth|npz, package, module, path}``
for a file inside an installed registry package, ``{format, file}`` for a path (relative to the YAML), or
``{format: npz, trained: <kind>}`` for weights accelsim trains itself (MNIST). A layer's ``weight: prefix``
binds it to tensors ``prefix.weight`` / ``prefix.bias`` (batchnorm also ``running_mean``/``running_var``),
whose shapes :func:`check_weights` compares with the graph:

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
    from ..nn.mnist_cnn import trained_weights_path
    return trained_weights_path(spec["trained"])


def load_model_weights(model: Model) -> dict[str, np.ndarray]:
    """All tensors of the model's weights file, by name, checked against the graph."""
    fmt = model.weights["format"] if model.weights else None
    path = weights_path(model) if fmt != "onnx" else None
    if fmt == "safetensors":
        from .safetensors import load_safetensors
        tensors = load_safetensors(path)
    elif fmt == "onnx":
        from ..onnx.importer import weights_for
        tensors = weights_for(model)
    elif fmt == "pth":
        from .torch_pth import load_pth
        tensors = load_pth(path)
    else:
        try:
            with np.load(path, allow_pickle=False) as data:
                tensors = {k: data[k] for k in data.files if not k.startswith("__")}
        except (OSError, ValueError) as exc:
            raise AccelsimError(f"{path}: not a readable .npz ({exc})") from None
    check_weights(model, tensors)
    return tensors


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
