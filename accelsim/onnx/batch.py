"""Graph input dimensions and the batch axis of an imported ONNX model.

A graph input's shape is taken as written. Named dynamic dimensions (``dim_param``) take their value from
``params`` (``--param NAME=INT``). The batch axis (:attr:`accelsim.graph.Model.batch_axis`) is

* ``"auto"`` (default): axis 0 when every graph input starts with a dynamic dimension that no ``--param`` sets
  (the way exporters mark a batch), else none;
* an integer ``k`` (``--batch-axis k``): axis ``k`` of every graph input;
* ``None`` (``--batch-axis none``): no batch axis.

The batch axis is 1 in the imported shapes: costs are per inference. Any other dimension left dynamic is an error
naming the input and the dimension. A parameter that names no dimension is an error listing the known ones.
With a batch axis ``k > 0``, :func:`output_batch_axes` finds where each graph output carries it (ONNX shape
inference with that dimension symbolic).
"""
from __future__ import annotations

from ..errors import AccelsimError, short

AUTO = "auto"
_SYMBOL = "accelsim_batch"


def parse_batch_axis(value) -> int | None | str:
    """``"auto"``, ``None``/``"none"`` or a non-negative integer (also as text) → the batch-axis setting."""
    if value is None or value == AUTO:
        return value
    if isinstance(value, str):
        if value.lower() == "none":
            return None
        if value.isdigit():
            return int(value)
    elif isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    raise AccelsimError(f"--batch-axis: expected 'auto', 'none' or an axis (a non-negative integer), got "
                        f"{short(repr(value))}")


def _raw_dims(vi) -> list:
    """An input's dimensions: ints, dim_param names, or None (unknown)."""
    t = vi.type.tensor_type
    if not vi.type.HasField("tensor_type") or not t.HasField("shape"):
        raise AccelsimError(f"graph input {short(vi.name)!r}: not a tensor with a known rank")
    return [d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else (d.dim_param or None)
            for d in t.shape.dim]


def input_shapes(graph_inputs, params: dict, batch_axis=AUTO) -> tuple[dict, int | None]:
    """``({name: (elem_type, dims)}, batch axis)`` of the graph inputs (module docstring)."""
    raw = {vi.name: (vi.type.tensor_type.elem_type, _raw_dims(vi)) for vi in graph_inputs}
    used = {d for _, dims in raw.values() for d in dims if isinstance(d, str) and d in params}
    unknown = sorted(set(params) - used)
    if unknown:
        names = sorted({d for _, dims in raw.values() for d in dims if isinstance(d, str)})
        raise AccelsimError(f"--param {short(', '.join(unknown))}: no graph input dimension has that name "
                            f"(dynamic dimensions: {', '.join(names) or 'none'})")
    resolved = {n: [params.get(d, d) if isinstance(d, str) else d for d in dims] for n, (_, dims) in raw.items()}
    if batch_axis == AUTO:
        batch_axis = 0 if resolved and all(dims and not isinstance(dims[0], int) for dims in resolved.values()) \
            else None
    out = {}
    for name, dims in resolved.items():
        if batch_axis is not None:
            if len(dims) <= batch_axis:
                raise AccelsimError(f"--batch-axis {batch_axis}: graph input {short(name)!r} has rank {len(dims)}")
            dims[batch_axis] = 1
        for i, d in enumerate(dims):
            if not isinstance(d, int):
                hint = f"set it with --param {d}=INT" if d else "the model does not name it"
                if i == 0:
                    hint += " (or make axis 0 the batch of every input with --batch-axis 0)"
                raise AccelsimError(f"graph input {short(name)!r}: dimension {i} ({short(d or '?')}) is dynamic: "
                                    f"{hint}")
        out[name] = (raw[name][0], tuple(dims))
    return out, batch_axis


def output_batch_axes(proto, shapes: dict, k: int) -> dict:
    """Graph output name → the axis carrying the batch when axis ``k`` of every input does (None where ONNX shape
    inference loses it): inference on ``proto`` with the inputs' shapes and axis ``k`` symbolic."""
    import onnx
    m = onnx.ModelProto()
    m.CopyFrom(proto)
    for vi in m.graph.input:
        if vi.name in shapes:
            for i, (d, v) in enumerate(zip(vi.type.tensor_type.shape.dim, shapes[vi.name])):
                d.Clear()
                if i == k:
                    d.dim_param = _SYMBOL
                else:
                    d.dim_value = int(v)
    try:
        m = onnx.shape_inference.infer_shapes(m, data_prop=True)
    except Exception:   # inference failures only lose the axis (execution of a batch > 1 is then refused)
        return {o.name: None for o in proto.graph.output}
    out = {}
    for o in m.graph.output:
        axes = [i for i, d in enumerate(o.type.tensor_type.shape.dim) if d.dim_param == _SYMBOL]
        out[o.name] = axes[0] if len(axes) == 1 else None
    return out
