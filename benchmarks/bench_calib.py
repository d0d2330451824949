"""Calibration observers: the cost of ``observe()`` per batch against a float op of the same size, per method.

    python benchmarks/bench_calib.py [--repeats 20] [--old-rev c7190ea | --no-old]

For realistic activation tensors (MiniLM-L6 at 2048 tokens, an EfficientNet-Lite0 stem activation) and every
method (minmax, percentile, kl, entropy, mse), one run measures, interleaved in rounds:

* ``ref``: the float op that produces or consumes the tensor (numpy float32 ``@`` of that linear or attention
  matmul; the conv activation has none here), and ``add``: ``np.add(x, x)``, one float32 memory pass;
* ``observe``: ``observer.observe(x)`` in steady state (the histogram grid already set, so one pass), and
  ``first``: a fresh observer's first ``observe(x)`` (grid creation: statistics, then binning);
* ``old``: the same steady-state ``observe(x)`` of the implementation at ``--old-rev`` (the last revision before
  the one-pass kernels), loaded from git into a temporary package; skipped when git or the revision is missing.

Times are best-of-N and median (``_ms`` / ``_med``); ratios use the best times. The machine may be shared: the
load average is printed with the table.
"""
from __future__ import annotations

import argparse
import importlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from accelsim.quant import make_observer

REPO = Path(__file__).resolve().parents[1]
OLD_REV = "c7190ea"  # last revision with the two-pass numpy/Numba observers
METHODS = ("minmax", "percentile", "kl", "entropy", "mse")
_OLD_FILES = {"kh": "accelsim/kernels/histogram.py", "qh": "accelsim/quant/histogram.py",
              "thresholds": "accelsim/quant/thresholds.py", "observers": "accelsim/quant/observers.py"}
_OLD_IMPORTS = {"from accelsim.kernels import histogram as _h": "from {pkg} import kh as _h",
                "from accelsim.quant import thresholds as _t": "from {pkg} import thresholds as _t",
                "from accelsim.quant.histogram import LinearHistogram": "from {pkg}.qh import LinearHistogram"}


def _gelu(x):
    return (0.5 * x * (1.0 + np.tanh(0.7978845608 * (x + 0.044715 * x ** 3)))).astype(np.float32)


def tensors(seed: int = 0) -> list[dict]:
    """``name``, ``x`` and the reference float op ``ref`` (``None``: only the memory pass) of each case."""
    rng = np.random.default_rng(seed)
    f32 = lambda a: np.asarray(a, np.float32)  # noqa: E731
    hidden = f32(rng.standard_normal((2048, 384)))                          # LayerNorm output, 8 x 256 tokens
    w_qkv, w_ffn1, w_ffn2 = (f32(rng.standard_normal(s) * 0.05) for s in ((384, 384), (384, 1536), (1536, 384)))
    pre_gelu = hidden @ w_ffn1
    heavy = _gelu(f32(rng.standard_t(3, (2048, 1536)) * 1.5))               # GELU output with a heavy tail
    scores = f32(rng.standard_normal((8, 12, 256, 256)) * 2)
    probs = np.exp(scores - scores.max(-1, keepdims=True))
    probs = f32(probs / probs.sum(-1, keepdims=True))
    v = f32(rng.standard_normal((8, 12, 256, 32)))
    conv = f32(np.clip(rng.standard_normal((8, 96, 112, 112)) * 2.0, 0.0, 6.0))  # post-ReLU6, 50 % zeros
    return [
        dict(name="hidden [2048,384]", x=hidden, ref_op="x@W[384,384]", ref=lambda: hidden @ w_qkv),
        dict(name="ffn1 out [2048,1536]", x=pre_gelu, ref_op="x@W[384,1536]", ref=lambda: hidden @ w_ffn1),
        dict(name="gelu heavy-tail [2048,1536]", x=heavy, ref_op="x@W[1536,384]", ref=lambda: heavy @ w_ffn2),
        dict(name="attn probs [8,12,256,256]", x=probs, ref_op="p@V", ref=lambda: probs @ v),
        dict(name="relu6 conv [8,96,112,112]", x=conv, ref_op="-", ref=None),
    ]


def load_old(rev: str = OLD_REV):
    """The observers module of ``rev`` (with its histogram kernels) as a temporary package, or None."""
    pkg = "_accelsim_calib_" + rev.replace("-", "_")
    root = Path(tempfile.mkdtemp(prefix="bench_calib_")) / pkg
    root.mkdir()
    try:
        for mod, path in _OLD_FILES.items():
            src = subprocess.run(["git", "-C", str(REPO), "show", f"{rev}:{path}"], check=True,
                                 capture_output=True, text=True).stdout
            for old, new in _OLD_IMPORTS.items():
                src = src.replace(old, new.format(pkg=pkg))
            (root / f"{mod}.py").write_text(src)
    except (OSError, subprocess.CalledProcessError):
        return None
    (root / "__init__.py").write_text("")
    sys.path.insert(0, str(root.parent))
    return importlib.import_module(f"{pkg}.observers")


def _old_observer(old, method: str):
    if method == "minmax":
        return old.MinMaxObserver()
    if method == "percentile":
        return old.PercentileObserver(99.999, 2048)
    return {"kl": old.KLObserver, "entropy": old.EntropyObserver, "mse": old.MSEObserver}[method](2048, 128)


def _timed(fns: dict, repeats: int, rounds: int = 4) -> dict:
    """Best and median seconds of each function; rounds alternate between them (a few calls each)."""
    for f in fns.values():
        f()  # warm up (JIT, page cache, grid)
    times = {k: [] for k in fns}
    for _ in range(rounds):
        for k, f in fns.items():
            for _ in range(max(1, repeats // rounds)):
                t = time.perf_counter()
                f()
                times[k].append(time.perf_counter() - t)
    return {k: (min(t), statistics.median(t)) for k, t in times.items()}


def calib_rows(repeats: int = 20, methods=METHODS, old_rev: str | None = OLD_REV, seed: int = 0) -> list[dict]:
    """One row per (tensor, method): times in ms (best and median) and the ratios described in the module doc."""
    old = load_old(old_rev) if old_rev else None
    rows = []
    for case in tensors(seed):
        x = case["x"]
        for method in methods:
            obs = make_observer(method)
            fns = {"add": lambda x=x: np.add(x, x), "observe": lambda o=obs, x=x: o.observe(x),
                   "first": lambda m=method, x=x: make_observer(m).observe(x)}
            if case["ref"] is not None:
                fns["ref"] = case["ref"]
            if old is not None:
                fns["old"] = lambda o=_old_observer(old, method), x=x: o.observe(x)
            t = _timed(fns, repeats)
            ms = lambda k, i=0: t[k][i] * 1e3 if k in t else float("nan")  # noqa: E731
            rows.append(dict(tensor=case["name"], method=method, ref_op=case["ref_op"],
                             ref_ms=ms("ref"), add_ms=ms("add"), observe_ms=ms("observe"),
                             observe_med=ms("observe", 1), first_ms=ms("first"),
                             obs_per_ref=ms("observe") / ms("ref"), obs_per_add=ms("observe") / ms("add"),
                             ns_per_elem=t["observe"][0] * 1e9 / x.size,
                             old_ms=ms("old"), old_med=ms("old", 1), speedup=ms("old") / ms("observe")))
    return rows


def _table(rows: list[dict]) -> str:
    cols = list(rows[0])
    fmt = lambda v: f"{v:.3g}" if isinstance(v, float) else str(v)  # noqa: E731
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    return "\n".join(lines + ["| " + " | ".join(fmt(r[c]) for c in cols) + " |" for r in rows])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--old-rev", default=OLD_REV)
    ap.add_argument("--no-old", action="store_true", help="skip timing the previous implementation")
    args = ap.parse_args()
    rows = calib_rows(args.repeats, old_rev=None if args.no_old else args.old_rev)
    load = os.getloadavg() if hasattr(os, "getloadavg") else ()
    print(f"## observe() per batch vs a float op of the same tensor (best of {args.repeats}; "
          f"load average {', '.join(f'{v:.2f}' for v in load)}; {os.cpu_count()} CPUs)\n")
    print(_table(rows))


if __name__ == "__main__":
    main()
