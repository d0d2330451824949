"""A model's weights for execution, whatever its YAML names: a weights file (:mod:`accelsim.data.weights`), an
ONNX model's initializers (:func:`accelsim.onnx.importer.weights_for`), or weights accelsim trains itself
(``{format: npz, trained: <kind>}``: :mod:`accelsim.nn.mnist_cnn`, trained on first use and cached) — checked
against the graph (:func:`accelsim.data.weights.check_weights`: a ConfigError names every missing or misshapen
tensor)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..data import weights as files
from ..graph import Model

__all__ = ["weights_path", "load_model_weights"]


def weights_path(model: Model) -> Path:
    """The file holding ``model``'s weights (trained and cached first for a ``trained:`` source)."""
    if model.weights is not None and "trained" in model.weights:
        from .mnist_cnn import trained_weights_path
        return trained_weights_path(model.weights["trained"])
    return files.weights_path(model)


def load_model_weights(model: Model) -> dict[str, np.ndarray]:
    """All tensors of the model's weights, by name, checked against the graph."""
    fmt = model.weights["format"] if model.weights else None
    if fmt == "onnx":
        from ..onnx.importer import weights_for
        tensors = weights_for(model)
    else:
        tensors = files.read_weights(weights_path(model), fmt)
    files.check_weights(model, tensors)
    return tensors
