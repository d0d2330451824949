"""Read SCALE-Sim topology CSVs directly, so SCALE-Sim users can switch with their existing files.

Conv form (header ``Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels,
Num Filter, Strides,``) and GEMM form (header ``Layer, M, N, K,``), as SCALE-Sim 3.0.0 reads them:

* no padding: ``out = ceil((H − R + stride) / stride)``; the same stride on both axes; batch 1;
* a layer whose name contains ``DP`` is depthwise: SCALE-Sim runs it as ``Channels`` one-channel layers of
  ``Num Filter`` filters each — here ``conv2d(out_channels = Channels·Num Filter, groups = Channels)``,
  which lowers to the same per-channel GEMMs;
* a GEMM row ``M, N, K`` is a ``linear`` on an ``[M, K]`` input with ``N`` outputs (SCALE-Sim maps it to a
  conv with M output pixels, N filters and a K-long window);
* columns after the first eight (an ``N:M`` sparsity ratio, SCALE-Sim's own annotations) are ignored, as
  are blank rows and rows without a layer name. Each layer is independent (its own input tensor).

SCALE-Sim itself skips the header line and reads every row by position. So does accelsim, where the intent is
unambiguous, and says so in the warnings it returns (the CLI prints them once on stderr, naming the file):

* a header whose names differ (DeepBench's ``Layer, IFMAP Width, IFMAP Width, ...``) but that has the columns of a
  form — eight for conv, four for GEMM — is read by position;
* a tab-separated file (no comma in its header, tabs between eight or more fields) is read with tabs;
* a section row — a name and no value at all (``AlphaGoZero,`` in the MLPerf collections) — is skipped.

A row with some values missing, or a value that is not a number (the symbolic ``B`` of SCALE-Sim's LSTM
templates), stays an error naming the file, line and column.

Every number is a positive integer of ASCII digits, at most ``MAX_DIM = 2**31`` (the model's size bounds, see
:mod:`accelsim.graph`, then apply to the layers it makes).
"""
from __future__ import annotations

import csv
import io
import re

from ..errors import ConfigError, short, short_path
from .fields import MAX_DIM, bound_text

CONV_COLUMNS = ("IFMAP Height", "IFMAP Width", "Filter Height", "Filter Width", "Channels", "Num Filter", "Strides")
GEMM_COLUMNS = ("M", "N", "K")
_DIGITS = re.compile(r"[0-9]+")


def _ints(row: list[str], columns: tuple[str, ...], where: str, problems: list[str]) -> list[int] | None:
    values = []
    for col, text in zip(columns, row[1:1 + len(columns)]):
        text = text.strip()
        digits = text.lstrip("0") if _DIGITS.fullmatch(text) else None
        if not digits or len(digits) > 10 or int(digits) > MAX_DIM:
            bound = f" ≤ {bound_text(MAX_DIM)}" if digits else ""
            problems.append(f"{where}: column '{col}': expected a positive integer{bound}, got {short(repr(text))}")
            return None
        values.append(int(digits))
    if len(values) < len(columns):
        problems.append(f"{where}: expected {len(columns) + 1} columns ({', '.join(('Layer',) + columns)}), "
                        f"got {len(row)}")
        return None
    return values


def _conv_layer(name: str, v: list[int]) -> tuple[dict, dict]:
    h, w, r, s, c, f, stride = v
    depthwise = "DP" in name
    tensor = {"name": f"{name}:ifmap", "shape": [c, h, w]}
    layer = {"name": name, "op": "conv2d", "input": tensor["name"], "out_channels": c * f if depthwise else f,
             "kernel": [r, s], "stride": stride, "groups": c if depthwise else 1, "bias": False, "ceil_mode": True}
    return tensor, layer


def _gemm_layer(name: str, v: list[int]) -> tuple[dict, dict]:
    m, n, k = v
    tensor = {"name": f"{name}:ifmap", "shape": [m, k]}
    return tensor, {"name": name, "op": "linear", "input": tensor["name"], "out_features": n, "bias": False}


def _rows(text: str, source: str) -> tuple[list[list[str]], str]:
    """The file's rows and its delimiter: tabs when the header has no comma but tab-separated fields."""
    first = text.split("\n", 1)[0]
    delimiter = "\t" if "," not in first and len([f for f in first.split("\t") if f.strip()]) >= 4 else ","
    try:
        rows = list(csv.reader(io.StringIO(text), delimiter=delimiter))
    except csv.Error as exc:  # e.g. a field longer than csv.field_size_limit()
        raise ConfigError([f"{short_path(source)}: malformed CSV: {short(exc)}"]) from None
    if not rows:
        raise ConfigError([f"{short_path(source)}: empty topology file"])
    return rows, delimiter


def _form(header_row: list[str], source: str, warnings: list[str]) -> bool:
    """True for the GEMM form, False for conv (module docstring: named columns, else by position)."""
    header = [h.strip().lower() for h in header_row]
    named = [h for h in header if h]
    if header[1:4] == ["m", "n", "k"]:
        return True
    if header[:1] == ["layer name"] and header[1:8] == [c.lower() for c in CONV_COLUMNS]:
        return False
    if len(named) >= 8 or (len(named) == 4 and header[:1] != ["layer name"]):
        gemm = len(named) == 4
        warnings.append(f"{short_path(source)}: header {short(repr(','.join(header_row).strip()), 80)} does not name "
                        f"SCALE-Sim's {'GEMM' if gemm else 'conv'} columns; read by position, as SCALE-Sim does "
                        f"({', '.join(('Layer',) + (GEMM_COLUMNS if gemm else CONV_COLUMNS))})")
        return gemm
    raise ConfigError([f"{short_path(source)}:1: expected a SCALE-Sim header 'Layer name, IFMAP Height, ...' or "
                       f"'Layer, M, N, K', got {short(repr(','.join(header_row)))}"])


def model_dict_from_csv(text: str, name: str, source: str, warnings: list[str] | None = None) -> dict:
    """Parse SCALE-Sim topology text into a model description dict (validated later by Model.from_dict); what
    was read by position, with tabs, or skipped goes to ``warnings`` (module docstring)."""
    warnings = [] if warnings is None else warnings
    rows, delimiter = _rows(text, source)
    if delimiter == "\t":
        warnings.append(f"{short_path(source)}: tab-separated; read with tabs between the columns")
    gemm = _form(rows[0], source, warnings)
    columns, build = (GEMM_COLUMNS, _gemm_layer) if gemm else (CONV_COLUMNS, _conv_layer)
    problems: list[str] = []
    inputs, layers, seen, sections = [], [], {}, []
    for line_no, row in enumerate(rows[1:], start=2):
        if not row or not row[0].strip():
            continue
        layer_name = row[0].strip()
        if not any(cell.strip() for cell in row[1:]):     # a section heading: a name and no values
            sections.append(layer_name)
            continue
        values = _ints(row, columns, f"{short_path(source)}:{line_no} ({short(layer_name)})", problems)
        if values is None:
            continue
        seen[layer_name] = seen.get(layer_name, 0) + 1
        if seen[layer_name] > 1:
            layer_name = f"{layer_name}_{seen[layer_name]}"
        tensor, layer = build(layer_name, values)
        inputs.append(tensor)
        layers.append(layer)
    if problems:
        raise ConfigError(problems)
    if not layers:
        raise ConfigError([f"{short_path(source)}: no layers found"])
    if sections:
        warnings.append(f"{short_path(source)}: {len(sections)} section row(s) without values skipped "
                        f"({short(', '.join(sections), 80)})")
    return {"name": name, "inputs": inputs, "layers": layers}
