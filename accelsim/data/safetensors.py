"""Read safetensors files with the ``safetensors`` library's numpy API (``pip install "accelsim[data]"``).

``load_safetensors(path)`` returns ``{name: np.ndarray}`` for every tensor (the ``__metadata__`` entry is not a
tensor). The library parses and validates the file; numpy has no bfloat16, so a ``BF16`` tensor is widened to
float32 from the library's raw bytes: its 16 bits become the high half of a float32, which is exact. A missing,
truncated or inconsistent file raises :class:`~accelsim.errors.AccelsimError` naming the file.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from accelsim.data.packages import library
from accelsim.errors import AccelsimError

__all__ = ["load_safetensors"]


def _widen_bf16(raw: bytes, shape) -> np.ndarray:
    return (np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16).view(np.float32).reshape(shape)


def load_safetensors(path: str | Path) -> dict[str, np.ndarray]:
    """Every tensor of a safetensors file as a writable array in native byte order (module docstring)."""
    st = library("safetensors", "reading safetensors weights")
    library("safetensors.numpy", "reading safetensors weights")
    path = Path(path)
    out, bf16 = {}, []
    try:
        with st.safe_open(str(path), framework="numpy") as f:
            for name in f.keys():
                dtype = f.get_slice(name).get_dtype()
                if dtype == "BF16":
                    bf16.append(name)
                    continue
                try:
                    out[name] = np.array(f.get_tensor(name))
                except (TypeError, AttributeError):     # e.g. F8_E4M3: numpy has no such dtype
                    raise AccelsimError(f"{path}: tensor {name!r} has dtype {dtype}, which numpy cannot "
                                        "hold (supported: the numpy dtypes and BF16)") from None
        if bf16:
            raw = dict(st.deserialize(path.read_bytes()))
            out.update({name: _widen_bf16(raw[name]["data"], raw[name]["shape"]) for name in bf16})
    except OSError as exc:
        raise AccelsimError(f"{path}: cannot read safetensors file ({exc.strerror or exc})") from None
    except st.SafetensorError as exc:
        raise AccelsimError(f"{path}: not a valid safetensors file: {exc}") from None
    return {name: a.astype(a.dtype.newbyteorder("="), copy=False) for name, a in out.items()}
