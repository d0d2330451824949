"""Read a PyTorch ``.pth`` state dict into ``dict[str, np.ndarray]`` without torch, safely.

Two on-disk formats exist:

* **zip** (torch >= 1.6): a zip archive ``<root>/data.pkl`` + one raw little-endian blob per storage at
  ``<root>/data/<key>``;
* **legacy** (torch < 1.6, e.g. the EfficientNet-Lite0 weights): a stream of pickles — magic number
  ``0x1950a86a20f9469cfc6c``, protocol version ``1001``, a sys-info dict, the state dict, the list of storage
  keys — followed, for each key in that order, by an int64 element count and the raw bytes.

In both, a tensor is pickled as ``torch._utils._rebuild_tensor_v2(storage, offset, size, stride, ...)`` and
a storage as a persistent id ``("storage", torch.<Type>Storage, key, location, numel[, view_metadata])``.

Safety: unpickling runs through a restricted :class:`pickle.Unpickler` whose ``find_class`` resolves only
an explicit allow-list (``collections.OrderedDict``, the tensor rebuild functions, the storage types), each
mapped to our own harmless stand-in; every other global raises :class:`AccelsimError`, so a malicious
file can never execute code. Tensors come back as contiguous numpy copies (``torch.Size`` strides are
honoured through ``np.lib.stride_tricks.as_strided`` over the storage).
"""
from __future__ import annotations

import collections
import io
import os
import pickle
import struct
import zipfile
from dataclasses import dataclass

import numpy as np

from accelsim.errors import AccelsimError

__all__ = ["load_pth", "STORAGE_DTYPES"]

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
LEGACY_PROTOCOL = 1001

#: torch storage class name → numpy dtype (little-endian). BFloat16 is widened to float32 on load.
STORAGE_DTYPES = {
    "FloatStorage": np.dtype("<f4"), "DoubleStorage": np.dtype("<f8"), "HalfStorage": np.dtype("<f2"),
    "BFloat16Storage": np.dtype("<u2"), "LongStorage": np.dtype("<i8"), "IntStorage": np.dtype("<i4"),
    "ShortStorage": np.dtype("<i2"), "CharStorage": np.dtype("i1"), "ByteStorage": np.dtype("u1"),
    "BoolStorage": np.dtype("?"),
}


@dataclass(frozen=True)
class _StorageType:
    name: str

    @property
    def dtype(self) -> np.dtype:
        return STORAGE_DTYPES[self.name]


@dataclass
class _Storage:
    """A storage whose bytes arrive after the pickle (legacy) or from its own zip entry."""
    key: str
    kind: str
    numel: int
    data: np.ndarray | None = None

    @property
    def dtype(self) -> np.dtype:
        return STORAGE_DTYPES[self.kind]


@dataclass
class _View:
    """A legacy storage view: ``numel`` elements of ``base`` starting at element ``offset``."""
    base: _Storage
    offset: int
    numel: int

    @property
    def kind(self) -> str:
        return self.base.kind


@dataclass
class _TensorRef:
    storage: object
    offset: int
    size: tuple
    stride: tuple


def _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad=False, backward_hooks=None,
                       metadata=None):
    return _TensorRef(storage, int(storage_offset), tuple(size), tuple(stride))


def _rebuild_parameter(data, requires_grad=False, backward_hooks=None):
    return data


_ALLOWED = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
}
_ALLOWED.update({("torch", name): _StorageType(name) for name in STORAGE_DTYPES})


class _SafeUnpickler(pickle.Unpickler):
    """Unpickler that resolves only :data:`_ALLOWED` globals and storage persistent ids."""

    def __init__(self, fh, source: str, storages: dict):
        super().__init__(fh)
        self._source = source
        self._storages = storages

    def find_class(self, module, name):
        try:
            return _ALLOWED[(module, name)]
        except KeyError:
            raise AccelsimError(
                f"{self._source}: refusing to unpickle global {module}.{name} (only plain tensor state dicts "
                f"are read; allowed: {sorted(f'{m}.{n}' for m, n in _ALLOWED)})") from None

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and len(pid) in (5, 6) and pid[0] in ("storage", b"storage")):
            raise AccelsimError(f"{self._source}: unsupported persistent id {pid!r:.120}")
        stype, key, _location, numel = pid[1], str(pid[2]), pid[3], int(pid[4])
        if not isinstance(stype, _StorageType):
            raise AccelsimError(f"{self._source}: persistent id names no storage type: {stype!r:.80}")
        storage = self._storages.setdefault(key, _Storage(key, stype.name, numel))
        view = pid[5] if len(pid) == 6 else None
        if view is None:
            return storage
        _view_key, offset, view_size = view
        return _View(storage, int(offset), int(view_size))


def _storage_array(ref, source: str) -> np.ndarray:
    base = ref.base if isinstance(ref, _View) else ref
    if base.data is None:
        raise AccelsimError(f"{source}: storage {base.key!r} has no data")
    if isinstance(ref, _View):
        return base.data[ref.offset:ref.offset + ref.numel]
    return base.data


def _materialize(t: _TensorRef, name: str, source: str) -> np.ndarray:
    flat = _storage_array(t.storage, source)
    size, stride, off = t.size, t.stride, t.offset
    if len(size) != len(stride) or any(int(v) < 0 for v in size + stride):
        raise AccelsimError(f"{source}: tensor {name!r}: bad size {size} / stride {stride}")
    last = off + sum((n - 1) * s for n, s in zip(size, stride)) if all(size) else off - 1
    if off < 0 or last >= flat.size:
        raise AccelsimError(f"{source}: tensor {name!r} (size {size}, stride {stride}, offset {off}) "
                            f"overruns its storage of {flat.size} elements")
    item = flat.dtype.itemsize
    arr = np.lib.stride_tricks.as_strided(flat[off:], shape=size, strides=[s * item for s in stride],
                                          writeable=False)
    arr = np.array(arr, copy=True, order="C")
    if t.storage.kind == "BFloat16Storage":  # bfloat16 = the high half of a float32
        arr = (arr.astype(np.uint32) << 16).view(np.float32)
    return arr


def _flatten(obj, source: str, prefix: str = "") -> dict:
    """Turn the unpickled (possibly nested) dict of tensor refs into ``{dotted.name: ndarray}``."""
    out = {}
    if not isinstance(obj, dict):
        raise AccelsimError(f"{source}: expected a state dict (mapping of name → tensor), got {type(obj).__name__}")
    for k, v in obj.items():
        name = f"{prefix}{k}"
        if isinstance(v, _TensorRef):
            out[name] = _materialize(v, name, source)
        elif isinstance(v, dict):
            out.update(_flatten(v, source, name + "."))
        elif isinstance(v, (int, float, bool, str)) or v is None:
            continue  # scalar metadata (e.g. an epoch counter) is not a tensor
        else:
            raise AccelsimError(f"{source}: entry {name!r} is a {type(v).__name__}, not a tensor")
    return out


def _load_legacy(fh, source: str):
    try:
        magic = pickle.load(fh)
        proto = pickle.load(fh)
        pickle.load(fh)  # sys info: endianness and C type sizes; storages are always little-endian here
    except Exception as exc:
        raise AccelsimError(f"{source}: not a torch .pth file ({exc})") from exc
    if magic != LEGACY_MAGIC or proto != LEGACY_PROTOCOL:
        raise AccelsimError(f"{source}: not a legacy torch file (magic {magic!r}, protocol {proto!r})")
    storages: dict = {}
    obj = _SafeUnpickler(fh, source, storages).load()
    keys = _SafeUnpickler(fh, source, storages).load()
    for key in keys:
        st = storages.get(str(key))
        if st is None:
            raise AccelsimError(f"{source}: storage key {key!r} listed but never referenced")
        head = fh.read(8)
        if len(head) != 8:
            raise AccelsimError(f"{source}: truncated before storage {key!r}")
        (numel,) = struct.unpack("<q", head)
        nbytes = numel * st.dtype.itemsize
        raw = fh.read(nbytes)
        if numel != st.numel or len(raw) != nbytes:
            raise AccelsimError(f"{source}: storage {key!r}: expected {st.numel} elements, "
                                f"header says {numel}, read {len(raw)} of {nbytes} bytes")
        st.data = np.frombuffer(raw, dtype=st.dtype)
    return obj, storages


def _load_zip(path, source: str):
    with zipfile.ZipFile(path) as zf:
        names = zf.namelist()
        pkl = [n for n in names if n.endswith("/data.pkl") or n == "data.pkl"]
        if len(pkl) != 1:
            raise AccelsimError(f"{source}: zip has no single data.pkl (entries: {names[:5]}...)")
        root = pkl[0][: -len("data.pkl")]
        storages: dict = {}
        obj = _SafeUnpickler(io.BytesIO(zf.read(pkl[0])), source, storages).load()
        order = f"{root}byteorder"
        if order in names and zf.read(order).strip() not in (b"little", b""):
            raise AccelsimError(f"{source}: big-endian storages are not supported")
        for key, st in storages.items():
            entry = f"{root}data/{key}"
            if entry not in names:
                raise AccelsimError(f"{source}: storage entry {entry!r} missing from the zip")
            raw = zf.read(entry)
            if len(raw) < st.numel * st.dtype.itemsize:
                raise AccelsimError(f"{source}: storage {key!r}: {len(raw)} bytes, expected "
                                    f"{st.numel * st.dtype.itemsize}")
            st.data = np.frombuffer(raw, dtype=st.dtype, count=st.numel)
    return obj, storages


def load_pth(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Load a torch state dict (zip or legacy format) as ``{name: contiguous ndarray}`` without torch.

    Only plain tensor state dicts are accepted (see the module docstring for the allow-list); anything else,
    a truncated file or a storage overrun raises :class:`AccelsimError` naming the file.
    """
    source = os.fspath(path)
    if not os.path.isfile(source):
        raise AccelsimError(f"{source}: no such file")
    try:
        if zipfile.is_zipfile(source):
            obj, _ = _load_zip(source, source)
        else:
            with open(source, "rb") as fh:
                obj, _ = _load_legacy(fh, source)
    except AccelsimError:
        raise
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, KeyError, zipfile.BadZipFile) as exc:
        raise AccelsimError(f"{source}: corrupt or unsupported torch file ({type(exc).__name__}: {exc})") from exc
    return _flatten(obj, source)
