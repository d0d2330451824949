"""All 131 topology files SCALE-Sim 3.0.0 ships (shared/reference/scalesim/topologies), as SCALE-Sim reads them.

``fixtures/scalesim_topologies.json`` (made by ``fixtures/make_scalesim_topologies.py`` with SCALE-Sim's own
reader) records, for each file SCALE-Sim reads, its layer entries' dimensions as a hash: accelsim's layers must
give the same entries. Of the files SCALE-Sim's reader crashes on, accelsim reads those whose intent is
unambiguous (rows without a trailing comma, rows of bare commas, extra columns, a tab-separated file, section
rows that name a network and hold no values) and refuses the rest in one line (:data:`REFUSED`)."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from accelsim.cli import main
from accelsim.config.loader import load_model
from accelsim.errors import AccelsimError
from conftest import SHARED, require_shared

ROOT = SHARED / "reference" / "scalesim" / "topologies"
SCALESIM = json.loads((Path(__file__).parent / "fixtures" / "scalesim_topologies.json").read_text())

REFUSED = {
    "CSV/LSTM.csv": "column 'IFMAP Width': expected a positive integer, got 'B'",            # symbolic sizes
    "rnn_eval/LSTM_template.csv": "column 'IFMAP Width': expected a positive integer, got 'B'",
    "CSV/MLPERF.csv": ":219 (FC): column 'Filter Width': expected a positive integer, got ''",   # 'FC, 1, 1, 1, ,1 2, 2, 1,'
    "mlperf/MLPERF.csv": ":219 (FC): column 'Filter Width': expected a positive integer, got ''",
    "mlperf/Sentimental_seqLSTM.csv": ":29 (FC): column 'Filter Width': expected a positive integer, got ''",
}
"""The files accelsim refuses: a fragment of the one-line error (SCALE-Sim's reader crashes on them too)."""


def entries(model) -> list[list[int]]:
    """SCALE-Sim's ``[ifmap h, ifmap w, filter h, filter w, channels, num filter, stride h, stride w]`` per entry
    from accelsim's layers (a GEMM ``[M, K, 1, K, 1, N, 1, 1]``; a depthwise layer one entry per channel)."""
    out = []
    for layer in model.layers:
        if layer.op == "linear":
            m, k = layer.in_shapes[0]
            out.append([m, k, 1, k, 1, layer.attrs["out_features"], 1, 1])
            continue
        c, h, w = layer.in_shapes[0]
        (r, s), stride, g = layer.attrs["kernel"], layer.attrs["stride"][0], layer.attrs["groups"]
        per = [h, w, r, s, 1, layer.attrs["out_channels"] // c, stride, stride] if g > 1 else \
            [h, w, r, s, c, layer.attrs["out_channels"], stride, stride]
        out += [per] * (c if g > 1 else 1)
    return out


def _files() -> list[str]:
    return sorted(SCALESIM)


@pytest.mark.parametrize("rel", _files())
def test_topology_reads_as_scalesim_or_is_refused_in_one_line(rel):
    path = require_shared(ROOT / rel)
    if rel in REFUSED:
        with pytest.raises(AccelsimError) as exc:
            load_model(path)
        assert REFUSED[rel] in str(exc.value) and "\n" not in str(exc.value)
        return
    model = load_model(path)
    ref = SCALESIM[rel]
    if ref["read"]:
        got = entries(model)
        assert len(got) == ref["entries"]
        assert hashlib.sha256(json.dumps(got).encode()).hexdigest() == ref["sha256"], rel


def test_the_counts():
    """131 files; SCALE-Sim's reader reads 102 of them; accelsim reads 126 (the 102 plus 24 the reader crashes on,
    whose intent is unambiguous) and refuses 5 in one line."""
    assert len(SCALESIM) == 131 and sum(v["read"] for v in SCALESIM.values()) == 102
    assert not any(SCALESIM[r]["read"] for r in REFUSED)


@pytest.mark.parametrize("rel, fragment", [
    ("deepbench/DeepBenchConv/DeepBench.csv", "does not name SCALE-Sim's conv columns; read by position"),
    ("conv_nets/UNet_maestro.csv", "tab-separated; read with tabs"),
    ("mlperf/Transformer.csv", "1 section row(s) without values skipped (Transformer)"),
])
def test_the_cli_says_once_on_stderr_how_it_read_the_file(rel, fragment, capsys):
    path = require_shared(ROOT / rel)
    code = main(["run", str(path), "--hw", "scalesim_32x32", "--quiet"])
    out, err = capsys.readouterr()
    assert code == 0 and err.count(fragment) == 1 and err.startswith("accelsim: warning: "), err
    assert err.split(": ", 3)[2].endswith(path.name)          # the file is named (a long path cut on the left)
    assert "warning" not in out


def test_positional_header_tabs_and_section_rows_on_small_files(tmp_path):
    conv = "C1, 10, 10, 3, 3, 4, 8, 2,\n"
    cases = {
        "pos.csv": ("Layer, IFMAP Width, IFMAP Width, Filter Height, Filter Width, Channels, Num Filter, Strides,\n"
                    + conv, "read by position"),
        "tab.csv": ("Layer name\t IFMAP Height\t IFMAP Width\t Filter Height\t Filter Width\t Channels\t Num Filter\t "
                    "Strides\t\n" + conv.replace(",", "\t"), "tab-separated"),
        "sec.csv": ("Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, Num Filter, "
                    "Strides,\n\nNet A,\n" + conv + "Net B, , ,\n" + conv, "2 section row(s) without values skipped"),
        "gemm.csv": ("Name, Rows, Cols, Depth,\nG1, 5, 6, 7,\n", "does not name SCALE-Sim's GEMM columns"),
    }
    for name, (text, fragment) in cases.items():
        (tmp_path / name).write_text(text)
        model = load_model(tmp_path / name)
        assert len(model.warnings) == 1 and fragment in model.warnings[0], (name, model.warnings)
        assert model.layers[0].out_shape == ((5, 6) if name == "gemm.csv" else (8, 5, 5))
    (tmp_path / "half.csv").write_text(cases["sec.csv"][0].replace("Net B, , ,", "Net B, 3, ,"))
    with pytest.raises(AccelsimError, match=r"half.csv:5 \(Net B\): column 'IFMAP Width': expected a positive integer"):
        load_model(tmp_path / "half.csv")
    (tmp_path / "short.csv").write_text("Layer, H, W,\nC1, 3, 3,\n")
    with pytest.raises(AccelsimError, match="expected a SCALE-Sim header"):
        load_model(tmp_path / "short.csv")
