"""A tiny reader for the safetensors format (no ``safetensors`` dependency).

Layout (https://github.com/huggingface/safetensors, "Format"):

* bytes ``[0, 8)``: ``N``, the header length, unsigned 64-bit little-endian;
* bytes ``[8, 8 + N)``: a UTF-8 JSON object ``{name: {"dtype", "shape", "data_offsets": [begin, end]}, ...}``
  plus an optional ``"__metadata__"`` entry of string → string;
* bytes ``[8 + N, EOF)``: the byte buffer; tensor ``name`` is ``buffer[begin:end]``, row-major, little-endian,
  with ``end − begin = prod(shape) · itemsize``.

``load_safetensors(path)`` returns ``{name: np.ndarray}`` (BF16 is widened to float32, since numpy has no
bfloat16: the 16 bits become the high half of a float32, which is exact). Any truncated or inconsistent
file raises :class:`~accelsim.errors.AccelsimError` naming the file and the problem.
"""
from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np

from accelsim.errors import AccelsimError

__all__ = ["SAFETENSORS_DTYPES", "load_safetensors", "read_safetensors_header"]

#: safetensors dtype string → little-endian numpy dtype ("BF16" is handled separately).
SAFETENSORS_DTYPES: dict[str, np.dtype] = {
    "F64": np.dtype("<f8"), "F32": np.dtype("<f4"), "F16": np.dtype("<f2"),
    "I64": np.dtype("<i8"), "I32": np.dtype("<i4"), "I16": np.dtype("<i2"), "I8": np.dtype("i1"),
    "U64": np.dtype("<u8"), "U32": np.dtype("<u4"), "U16": np.dtype("<u2"), "U8": np.dtype("u1"),
    "BOOL": np.dtype("?"),
}
_ITEMSIZE = {**{k: v.itemsize for k, v in SAFETENSORS_DTYPES.items()}, "BF16": 2}
_MAX_HEADER_BYTES = 100 * 1024 * 1024  # the reference implementation's limit


def _fail(path, what: str) -> AccelsimError:
    return AccelsimError(f"{path}: not a valid safetensors file: {what}")


def _parse_header(path, raw: bytes, n_header: int) -> dict:
    try:
        header = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise _fail(path, f"header ({n_header} bytes) is not valid UTF-8 JSON ({exc})") from exc
    if not isinstance(header, dict):
        raise _fail(path, f"header is a JSON {type(header).__name__}, expected an object")
    return header


def _check_entry(path, name: str, entry, buffer_len: int) -> tuple[str, tuple[int, ...], int, int]:
    """Validate one header entry; return (dtype, shape, begin, end) with offsets into the data buffer."""
    if not isinstance(entry, dict) or not {"dtype", "shape", "data_offsets"} <= entry.keys():
        raise _fail(path, f"tensor {name!r}: entry must have dtype, shape and data_offsets, got {entry!r}")
    dtype, shape, offsets = entry["dtype"], entry["shape"], entry["data_offsets"]
    if dtype not in _ITEMSIZE:
        raise _fail(path, f"tensor {name!r}: unsupported dtype {dtype!r} (supported: {sorted(_ITEMSIZE)})")
    if not isinstance(shape, list) or not all(isinstance(d, int) and d >= 0 for d in shape):
        raise _fail(path, f"tensor {name!r}: shape must be a list of non-negative ints, got {shape!r}")
    if (not isinstance(offsets, list) or len(offsets) != 2
            or not all(isinstance(o, int) for o in offsets) or not 0 <= offsets[0] <= offsets[1]):
        raise _fail(path, f"tensor {name!r}: data_offsets must be [begin, end] with 0 <= begin <= end, "
                          f"got {offsets!r}")
    begin, end = offsets
    expected = int(np.prod(shape, dtype=np.int64)) * _ITEMSIZE[dtype]
    if end - begin != expected:
        raise _fail(path, f"tensor {name!r}: {end - begin} bytes in data_offsets but shape {shape} of {dtype} "
                          f"needs {expected}")
    if end > buffer_len:
        raise _fail(path, f"truncated: tensor {name!r} ends at byte {end} of the data buffer, which holds only "
                          f"{buffer_len} bytes")
    return dtype, tuple(shape), begin, end


def read_safetensors_header(path: str | Path) -> tuple[dict, int]:
    """Return ``(header, data_start)``: the JSON header dict and the file offset ``8 + N`` of the buffer."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            prefix = f.read(8)
            if len(prefix) < 8:
                raise _fail(path, f"file is {len(prefix)} bytes, shorter than the 8-byte header length")
            (n_header,) = struct.unpack("<Q", prefix)
            if n_header > _MAX_HEADER_BYTES:
                raise _fail(path, f"header length {n_header} exceeds {_MAX_HEADER_BYTES} bytes (corrupt prefix?)")
            raw = f.read(n_header)
    except OSError as exc:
        raise AccelsimError(f"{path}: cannot read safetensors file ({exc.strerror or exc})") from exc
    if len(raw) < n_header:
        raise _fail(path, f"truncated: header says {n_header} bytes but only {len(raw)} follow")
    return _parse_header(path, raw, n_header), 8 + n_header


def _decode(buf: memoryview, dtype: str, shape: tuple[int, ...]) -> np.ndarray:
    if dtype == "BF16":
        hi = np.frombuffer(buf, dtype="<u2").astype(np.uint32) << 16
        return hi.view(np.float32).reshape(shape)
    return np.frombuffer(buf, dtype=SAFETENSORS_DTYPES[dtype]).reshape(shape).copy()


def load_safetensors(path: str | Path) -> dict[str, np.ndarray]:
    """Read every tensor of a safetensors file into ``{name: np.ndarray}`` (native byte order, writable).

    The ``__metadata__`` entry is skipped. Overlapping tensors or gaps in the buffer are tolerated only if
    each tensor lies inside the file; a short file raises an error naming the tensor that is cut off.
    """
    path = Path(path)
    header, data_start = read_safetensors_header(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise AccelsimError(f"{path}: cannot read safetensors file ({exc.strerror or exc})") from exc
    buffer = memoryview(data)[data_start:]
    out: dict[str, np.ndarray] = {}
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        dtype, shape, begin, end = _check_entry(path, name, entry, len(buffer))
        arr = _decode(buffer[begin:end], dtype, shape)
        out[name] = arr.astype(arr.dtype.newbyteorder("="), copy=False)
    return out
