"""The one graph executor: user models with their own weights, bad feeds."""
from __future__ import annotations

import numpy as np
import pytest

from accelsim.nn.weights import load_model_weights
from accelsim.errors import AccelsimError
from accelsim.graph import Model
from accelsim.ops import functional as F
from accelsim.nn.graph_exec import run_graph


def test_user_model_with_npz_weights(tmp_path):
    rng = np.random.default_rng(0)
    w = {"c.weight": rng.standard_normal((4, 3, 3, 3)).astype(np.float32),
         "bn.weight": rng.uniform(0.5, 2, 4).astype(np.float32), "bn.bias": rng.standard_normal(4).astype(np.float32),
         "bn.running_mean": rng.standard_normal(4).astype(np.float32),
         "bn.running_var": rng.uniform(0.5, 2, 4).astype(np.float32),
         "fc.weight": rng.standard_normal((5, 4)).astype(np.float32), "fc.bias": np.zeros(5, np.float32)}
    np.savez(tmp_path / "w.npz", **w)
    graph = Model.from_dict({
        "name": "tiny", "weights": {"format": "npz", "file": "w.npz"},
        "inputs": [{"name": "x", "shape": [3, 8, 8]}],
        "layers": [{"name": "c", "op": "conv2d", "out_channels": 4, "kernel": 3, "padding": 1, "bias": False,
                    "weight": "c"},
                   {"name": "bn", "op": "batchnorm", "weight": "bn"}, {"name": "r", "op": "relu"},
                   {"name": "p", "op": "global_avgpool"}, {"name": "f", "op": "flatten"},
                   {"name": "fc", "op": "linear", "out_features": 5, "weight": "fc"}]},
        source=str(tmp_path / "tiny.yaml"))
    x = rng.standard_normal((2, 3, 8, 8)).astype(np.float32)
    out = run_graph(graph, load_model_weights(graph), {"x": x})["fc"]
    k = w["bn.weight"] / np.sqrt(w["bn.running_var"] + 1e-5)
    y = F.conv2d(x, w["c.weight"], None, padding=1)
    y = np.maximum((y - w["bn.running_mean"][None, :, None, None]) * k[None, :, None, None]
                   + w["bn.bias"][None, :, None, None], 0)
    np.testing.assert_allclose(out, y.mean(axis=(2, 3)) @ w["fc.weight"].T, rtol=1e-5, atol=1e-5)
    with pytest.raises(AccelsimError, match="no value fed for model input"):
        run_graph(graph, {}, {})
