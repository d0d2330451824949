"""ONNX's own backend test data, run as a new user would: ``accelsim.infer`` in FP32 on every model of
``onnx/backend/test/data/{pytorch-converted,pytorch-operator,simple,light}`` (in the installed ``onnx`` package),
as shipped (old opsets included: the importer converts them), against the expected outputs at ONNX's backend
tolerances (rtol 1e-3, atol 1e-7; shape and dtype equal, as ONNX's runner checks).

Models that use strings, sequences or training ops are out of scope; every other model either matches or is in
:data:`REFUSED` with the one-line reason accelsim gives (a new refusal, or a refusal that stops, fails the test).
Out-of-scope models must still be refused in one line (no traceback). The ``light`` models take seconds each
(slow tier); their inputs are what ONNX's runner generates (``arange(n) / n``).
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

if os.environ.get("CI", "").lower() not in ("1", "true", "yes"):   # under CI a missing package fails below
    pytest.importorskip("onnx")
import onnx  # noqa: E402
from onnx import numpy_helper  # noqa: E402

from accelsim.errors import AccelsimError  # noqa: E402
from accelsim.inference import infer  # noqa: E402

DATA = Path(onnx.__file__).parent / "backend" / "test" / "data"
FOLDERS = ("pytorch-converted", "pytorch-operator", "simple", "light")
RTOL, ATOL = 1e-3, 1e-7

REFUSED = {
    # the target shape is a graph input: the output shape depends on the fed values (accelsim needs static shapes)
    **{f"test_expand_shape_model{i}": "(Expand): the target shape is computed at run time" for i in range(1, 5)},
}
"""Known refusals among the in-scope models: name → a fragment of the one-line error."""

_SEQUENCE_OPS = {"SequenceEmpty", "SequenceConstruct", "SequenceInsert", "SequenceAt", "SequenceErase",
                 "SequenceLength", "SplitToSequence", "ConcatFromSequence"}


def out_of_scope(model) -> str | None:
    """Why a model is out of scope (strings, sequences, training ops), or None."""
    g = model.graph
    values = list(g.input) + list(g.output) + list(g.value_info)
    if any(t.data_type == onnx.TensorProto.STRING for t in g.initializer) or any(
            v.type.tensor_type.elem_type == onnx.TensorProto.STRING for v in values):
        return "strings"
    if any(v.type.HasField("sequence_type") for v in values) or any(n.op_type in _SEQUENCE_OPS for n in g.node):
        return "sequences"
    if any(n.domain == "ai.onnx.preview.training" for n in g.node):
        return "training"
    return None


def cases() -> list[tuple[str, str, Path, Path | None]]:
    """``(folder, name, model file, test data set or None for light)`` of every model."""
    out = []
    for folder in FOLDERS:
        if folder == "light":
            out += [(folder, p.stem, p, None) for p in sorted((DATA / folder).glob("*.onnx"))]
        else:
            out += [(folder, d.name, d / "model.onnx", d / "test_data_set_0") for d in sorted((DATA / folder).iterdir())
                    if (d / "model.onnx").is_file()]
    return out


def _tensor(path: Path) -> np.ndarray:
    return numpy_helper.to_array(onnx.load_tensor(str(path)))


def inputs_and_expected(model, path: Path, data: Path | None) -> tuple[dict, list]:
    """The fed inputs by graph name and the expected outputs, as ONNX's backend runner reads or makes them."""
    inits = {t.name for t in model.graph.initializer}
    ins = [i for i in model.graph.input if i.name not in inits]
    if data is None:   # light: expected outputs next to the model, inputs arange(n)/n (onnx.backend.test.runner)
        feeds = {}
        for vi in ins:
            shape = tuple(d.dim_value if d.HasField("dim_value") else 1 for d in vi.type.tensor_type.shape.dim)
            n = int(np.prod(shape))
            feeds[vi.name] = (np.arange(n).reshape(shape) / n).astype(np.float32)
        return feeds, [_tensor(path.with_name(f"{path.stem}_output_{i}.pb")) for i in range(len(model.graph.output))]
    feeds = {vi.name: _tensor(data / f"input_{i}.pb") for i, vi in enumerate(ins)}
    return feeds, [_tensor(data / f"output_{i}.pb") for i in range(len(model.graph.output))]


def run_case(path: Path, data: Path | None):
    """``("match" | "refused: <message>" | "differs: <why>")`` for one model."""
    model = onnx.load(str(path))
    feeds, expected = inputs_and_expected(model, path, data)
    try:
        got = infer(path, feeds)
    except AccelsimError as exc:
        return f"refused: {exc}"
    names = [o.name for o in model.graph.output]
    for name, want in zip(names, expected):
        y = np.asarray(got.get(name))
        if y.shape != want.shape or y.dtype != want.dtype:
            return f"differs: {name}: {y.dtype}{list(y.shape)}, expected {want.dtype}{list(want.shape)}"
        try:
            np.testing.assert_allclose(y, want, rtol=RTOL, atol=ATOL)
        except AssertionError as exc:
            return f"differs: {name}: {' '.join(str(exc).split())[:300]}"
    return "match"


ALL = cases()
IN_SCOPE = [c for c in ALL if out_of_scope(onnx.load(str(c[2]), load_external_data=False)) is None]
OUT_OF_SCOPE = [c for c in ALL if c not in IN_SCOPE]


def _param(case):
    folder, name = case[:2]
    return pytest.param(case, id=f"{folder}/{name}", marks=[pytest.mark.slow] if folder == "light" else [])


@pytest.mark.parametrize("case", [_param(c) for c in IN_SCOPE])
def test_backend_model_matches_or_is_a_known_refusal(case):
    folder, name, path, data = case
    result = run_case(path, data)
    if name in REFUSED:
        assert result.startswith("refused: ") and REFUSED[name] in result and "\n" not in result, result
    else:
        assert result == "match", result


@pytest.mark.parametrize("case", [_param(c) for c in OUT_OF_SCOPE])
def test_out_of_scope_model_is_refused_in_one_line(case):
    result = run_case(case[2], case[3])
    assert result.startswith("refused: ") and "\n" not in result, result


def test_the_data_is_the_one_the_issue_counts():
    """149 models, 133 in scope (16 use strings, sequences or training ops); 4 known refusals: 129 match."""
    assert (len(ALL), len(IN_SCOPE)) == (149, 133)
    assert set(REFUSED) <= {c[1] for c in IN_SCOPE}
