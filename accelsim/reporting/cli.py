"""``accelsim report [--out DIR] [--set KEY=VALUE] [--no-accuracy] [--no-host] [--eval-size N]``."""
from __future__ import annotations

from pathlib import Path

from ..errors import ConfigError


def add_parser(sub) -> None:
    p = sub.add_parser("report", help="the documented examples recomputed: Markdown + HTML with plots",
                       epilog="example:\n  accelsim report --out report/ --eval-size 200")
    p.add_argument("--out", default="accelsim-report", help="output folder (default accelsim-report/)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a hw field of every example's config, e.g. memory.dram_gbps=8")
    p.add_argument("--no-accuracy", action="store_true", help="skip the real-model accuracy proxies")
    p.add_argument("--no-host", action="store_true", help="skip measuring this machine with ONNX Runtime")
    p.add_argument("--eval-size", type=int, help="evaluate the accuracy proxies on the first N samples")
    p.add_argument("--quiet", action="store_true", help="no progress messages")


def run(args, progress=None) -> str:
    """Write the report the arguments ask for; return the line to print (``progress(message)``: status)."""
    from .document import build
    if args.eval_size is not None and args.eval_size < 1:
        raise ConfigError([f"--eval-size: expected a positive integer, got {args.eval_size}"])
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise ConfigError([f"--out {args.out!r}: exists and is not a folder"])
    md, page = build(out, args.set, not args.no_accuracy, args.eval_size, progress, not args.no_host)
    return f"wrote {md} and {page} (plots beside them as PNG and SVG)"
