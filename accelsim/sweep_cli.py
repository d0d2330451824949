"""``accelsim sweep SWEEP.yaml --out results.csv|json|parquet``: the sweep file, workers, resuming, output.

A sweep file (validated like every config; unknown keys are errors)::

    model: resnet50                 # model YAML, bundled name or SCALE-Sim CSV
    hw: edge                        # hw YAML or bundled name: the base every grid point overrides
    precision: w8a8                 # when the grid has no `precision` axis
    grid:                           # field path (as --set takes it) or `precision` / `plan` → values
      array.rows: [16, 32, 64]
      memory.ifmap_sram_kib: [256, 1024]
      precision: [w8a8, w4a8]
    objectives: [latency_ms, energy_mj, area_mm2]
    eval: null                      # mnist | photos | lee: adds `accuracy` (once per precision and plan)

Chunks run on a Dask cluster when ``--workers N`` (a ``LocalCluster`` of N processes) or ``--scheduler
ADDR`` (``pip install "accelsim[distributed]"``) is given, else in this process. Finished chunks are
appended to ``OUT.partial.jsonl``; a rerun of the same sweep skips them, and the partial file is removed
once OUT is written.
"""
from __future__ import annotations

import csv
import hashlib
import io
import json
from pathlib import Path

from .errors import AccelsimError, ConfigError

MAX_POINTS_TEXT = "10,000,000"    # accelsim.sweep.MAX_POINTS (tests/test_sweep.py checks they agree); the parser
                                  # is built without importing the cost model

def add_parser(sub) -> None:
    p = sub.add_parser("sweep", help="cost a grid of hw configs × precisions and report the Pareto front",
                       epilog="example:\n  accelsim sweep sweep.yaml --out results.csv --workers 2")
    p.add_argument("file", help="sweep YAML (model, hw, grid, objectives)")
    p.add_argument("--out", required=True, help="results file: .csv, .json or .parquet")
    p.add_argument("--workers", type=int, help="run on a local Dask cluster of N worker processes")
    p.add_argument("--scheduler", help="address of a running Dask scheduler, e.g. tcp://host:8786")
    p.add_argument("--force", action="store_true", help=f"allow more than {MAX_POINTS_TEXT} grid points")
    p.add_argument("--plot", metavar="FILE.png", help="also draw the first two objectives and the Pareto front "
                   "(PNG and SVG; needs accelsim[plot])")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def read_sweep(path: str) -> dict:
    """The validated sweep file as keyword arguments of :func:`accelsim.sweep.sweep`."""
    from .config.fields import Reader
    from .config.loader import read_yaml
    problems: list[str] = []
    r = Reader(read_yaml(Path(path)), "sweep", problems)
    spec = {"model": r.string("model"), "hw": r.string("hw"), "precision": r.string("precision", "w8a8"),
            "grid": r.raw("grid"), "objectives": r.raw("objectives", ["latency_ms", "energy_mj", "area_mm2"]),
            "eval": r.raw("eval", None)}
    r.reject_unknown()
    if not isinstance(spec["objectives"], list):
        problems.append(f"sweep.objectives: expected a list of result names, got {spec['objectives']!r}"[:200])
    if spec["eval"] is not None and spec["eval"] not in ("mnist", "photos", "lee"):
        problems.append(f"sweep.eval: expected one of mnist | photos | lee, got {spec['eval']!r}"[:200])
    if problems:
        raise ConfigError(problems, path)
    return spec


def run(args, progress=None, note=None) -> str:
    """Run the sweep the arguments describe; return the summary to print. ``progress(message)`` (optional)
    receives a status line as chunks finish, ``note(message)`` a line for each grid field costed one pass per
    value (said before the sweep starts)."""
    from .sweep import sweep
    out = Path(args.out)
    if out.suffix not in (".csv", ".json", ".parquet"):
        raise ConfigError([f"--out {args.out!r}: expected a .csv, .json or .parquet file name"])
    if args.plot and Path(args.plot).suffix != ".png":
        raise ConfigError([f"--plot {args.plot!r}: expected a .png file name (an .svg is written beside it)"])
    if args.workers is not None and args.workers < 1:
        raise ConfigError([f"--workers: expected a positive integer, got {args.workers}"])
    for name, path in (("--out", out), ("--plot", Path(args.plot) if args.plot else None)):
        if path is not None and not path.resolve().parent.is_dir():
            raise ConfigError([f"{name} {str(path)[:200]!r}: folder {str(path.resolve().parent)[:200]!r} does not exist"])
    spec = read_sweep(args.file)
    partial = out.with_name(out.name + ".partial.jsonl")
    tag = hashlib.sha256(json.dumps(spec, sort_keys=True, default=str).encode()).hexdigest()[:16]
    done = _resume(partial, tag)
    client = _dask_client(args) if (args.workers or args.scheduler) else None
    with open(partial, "a", encoding="utf-8") as log:
        if not done:
            log.write(json.dumps({"sweep": tag}) + "\n")

        def keep(index: int, records: list[dict]) -> None:
            log.write(json.dumps({"chunk": index, "records": records}) + "\n")
            log.flush()

        try:
            result = sweep(spec["model"], spec["hw"], spec["grid"], spec["objectives"], spec["precision"],
                           spec["eval"], executor=client.get_executor() if client else None, force=args.force,
                           progress=None if progress is None else (lambda d, t: progress(_bar(d, t))),
                           done=done, on_chunk=keep,
                           on_fallback=None if note is None else (lambda path, why: note(f"sweep.grid.{path}: {why}")))
        except AccelsimError:       # a bad sweep stays bad: keep the partial file only for interruptions
            log.close()
            partial.unlink(missing_ok=True)
            raise
        finally:
            if client is not None:
                client.close()
    _write(out, result.records)
    partial.unlink(missing_ok=True)
    if args.plot:
        from .reporting import plots
        x, y = (list(result.objectives) + ["energy_mj"])[:2]
        plots.save(plots.pareto(result, x, y, f"{Path(args.file).stem}: {len(result.records):,} points"),
                   Path(args.plot).with_suffix(""))
    lines = [f"{len(result.records):,} points, {len(result.front):,} on the Pareto front over "
             f"{', '.join(result.objectives)}; written to {out}"]
    lines += ["  " + ", ".join(f"{k}={_fmt(v)}" for k, v in rec.items() if k in spec["grid"] or k in result.objectives)
              for rec in result.pareto()[:20]]
    return "\n".join(lines)


def _resume(partial: Path, tag: str) -> dict[int, list[dict]]:
    if not partial.is_file():
        return {}
    lines = [json.loads(line) for line in partial.read_text(encoding="utf-8").splitlines() if line.strip()]
    if not lines or lines[0].get("sweep") != tag:
        partial.unlink()             # another sweep's leftovers: start over
        return {}
    return {int(x["chunk"]): x["records"] for x in lines[1:] if "chunk" in x}


def _dask_client(args):
    try:
        from dask.distributed import Client, LocalCluster
    except ImportError:
        raise ConfigError(['--workers/--scheduler need Dask: pip install "accelsim[distributed]"']) from None
    if args.scheduler:
        return Client(args.scheduler)
    return Client(LocalCluster(n_workers=args.workers, threads_per_worker=1, processes=True, dashboard_address=None))


def _write(out: Path, records: list[dict]) -> None:
    """Results pass the report's rules first (finite, non-negative; otherwise null with a reason)."""
    from .report import checked, json_text, write_atomic
    if out.suffix == ".json":
        write_atomic(out, json_text({"records": records}))
        return
    records = checked({"records": records})["records"]
    if out.suffix == ".csv":
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=list(records[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(records)
        write_atomic(out, buf.getvalue())
    else:
        try:
            import pandas as pd
        except ImportError:
            raise ConfigError(["--out *.parquet needs pandas and pyarrow: pip install pandas pyarrow"]) from None
        tmp = out.with_name(f".{out.name}.tmp")
        pd.DataFrame.from_records(records).to_parquet(tmp)
        tmp.replace(out)


def _bar(done: int, total: int) -> str:
    width = 30
    filled = width * done // max(total, 1)
    return f"sweep [{'#' * filled}{'.' * (width - filled)}] {done:,}/{total:,}"


def _fmt(v) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)
