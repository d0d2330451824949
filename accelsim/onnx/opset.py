"""Opsets: the default-domain opsets the op table reads natively, and the upgrade of any other opset on import.

A model whose default-domain (``ai.onnx``) opset lies in :data:`OPSETS` is imported as it is. Any other opset is
converted with ``onnx.version_converter`` — an older one to :data:`TARGET`, a newer one down to ``OPSETS[1]`` —
and the import notes say so (``opset 6 converted to 9 by onnx.version_converter``). Only what the converter
cannot convert is refused, with its reason in one line. A model without a default-domain opset is refused.
"""
from __future__ import annotations

import re

from ..errors import AccelsimError, short

OPSETS = (7, 22)    # default-domain opsets the op table (ops_map) reads natively
TARGET = 9          # older opsets are converted to this one: the smallest step past opset 6's legacy broadcasting


def default_opset(proto) -> int | None:
    """The model's default-domain (``""`` / ``ai.onnx``) opset version, or None."""
    return {o.domain or "ai.onnx": o.version for o in proto.opset_import}.get("ai.onnx")


def upgrade(proto):
    """``(proto, note)``: the model at an opset in :data:`OPSETS` (converted when it was not; ``note`` says from
    which to which, else None). AccelsimError when there is no default-domain opset or the converter fails."""
    v = default_opset(proto)
    if v is None:
        raise AccelsimError("the model imports no default-domain (ai.onnx) opset")
    if OPSETS[0] <= v <= OPSETS[1]:
        return proto, None
    target = TARGET if v < OPSETS[0] else OPSETS[1]
    from onnx import version_converter
    try:
        converted = version_converter.convert_version(proto, target)
    except Exception as exc:   # the converter raises RuntimeError/ConvertError/ValueError with its own message
        text = re.sub(r"^.*?Assertion `.*?` failed: ", "", " ".join(str(exc).split()))   # drop C++ file:line noise
        reason = short(text, 200) or type(exc).__name__
        raise AccelsimError(f"ONNX default-domain opset {v} is outside {OPSETS[0]}–{OPSETS[1]} and "
                            f"onnx.version_converter cannot convert it to {target}: {reason}") from None
    return converted, f"opset {v} converted to {target} by onnx.version_converter"
