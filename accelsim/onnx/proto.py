"""Reading an ONNX file: the ``onnx`` package guard, clear one-line errors, external data.

Rules: the ``onnx`` package is optional (``pip install accelsim[onnx]``), its absence is an
:class:`~accelsim.errors.AccelsimError` naming the extra. A file that is not a serialized ``ModelProto`` (a
truncated file, a text file, another format) is refused with the parser's reason. Initializers stored as external
data are loaded from the files next to the model; if any of them is missing, the model is still returned with
``missing`` listing the initializers whose values are absent (their shapes stay known: cost-only import).
"""
from __future__ import annotations

from pathlib import Path

from ..errors import AccelsimError, short


def require_onnx():
    """The ``onnx`` module, or an AccelsimError telling how to install it."""
    try:
        import onnx
    except ImportError:
        raise AccelsimError("reading ONNX models needs the onnx package: pip install 'accelsim[onnx]'") from None
    return onnx


def read_model(path: str | Path):
    """``(ModelProto, missing)``: the parsed model with its external data loaded where present, and the names of
    initializers whose external data file is absent."""
    onnx = require_onnx()
    from onnx import external_data_helper as ext
    path = Path(path)
    try:
        blob = path.read_bytes()
    except OSError as exc:
        raise AccelsimError(f"{short(path)}: cannot read: {exc.strerror or exc}") from None
    model = onnx.ModelProto()
    try:
        model.ParseFromString(blob)
    except Exception as exc:   # protobuf's DecodeError (and friends): the file is not a ModelProto
        raise AccelsimError(f"{short(path)}: not an ONNX model ({short(exc) or 'protobuf parse error'})") from None
    if not model.graph.node or not model.opset_import:
        raise AccelsimError(f"{short(path)}: not an ONNX model (no graph nodes or no opset; truncated or another "
                            "format?)")
    missing = []
    for t in ext._get_all_tensors(model):
        if not ext.uses_external_data(t):
            continue
        info = ext.ExternalDataInfo(t)
        where = path.parent / info.location
        if not where.is_file():
            missing.append(t.name)
            continue
        try:
            ext.load_external_data_for_tensor(t, str(path.parent))
        except (OSError, ValueError) as exc:
            raise AccelsimError(f"{short(path)}: initializer {short(t.name)!r}: external data {short(info.location)} "
                                f"unreadable ({short(exc)})") from None
        t.data_location = onnx.TensorProto.DEFAULT
        del t.external_data[:]
    return model, missing
