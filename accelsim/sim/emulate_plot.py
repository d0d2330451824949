"""Per-fold timeline of one GEMM on the array (the ``plot`` extra: matplotlib): one bar per fold from its first
to its last cycle (folds run one after another), coloured by the fold's PE utilization ``busy PE-cycles /
(cycles · R · C)`` — all measured by the emulator (:class:`accelsim.sim.emulate.ArrayRun`). At most
``max_folds`` bars (the first ones), so the figure stays small whatever the layer."""
from __future__ import annotations

import numpy as np

from ..errors import ConfigError


def fold_timeline(run, path: str, title: str = "", max_folds: int = 512) -> None:
    """Write the timeline of ``run`` (an ArrayRun) to ``path`` (any matplotlib format)."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise ConfigError(["plots need matplotlib: pip install 'accelsim[plot]'"]) from None
    cyc = run.fold_cycles.astype(np.int64)
    start = np.concatenate([[0], np.cumsum(cyc)[:-1]])
    util = run.fold_busy / np.maximum(cyc * run.rows * run.cols, 1)
    shown = min(len(cyc), max_folds)
    fig, ax = plt.subplots(figsize=(8, min(12.0, 2.0 + 0.05 * shown)))
    colors = plt.cm.viridis(util[:shown])
    ax.barh(np.arange(shown), cyc[:shown], left=start[:shown], color=colors, height=0.9)
    ax.invert_yaxis()
    ax.set_xlabel("cycle")
    ax.set_ylabel("fold")
    more = f", first {shown} of {len(cyc)} folds" if shown < len(cyc) else ""
    ax.set_title(title or f"{run.rows}x{run.cols} {run.dataflow.name.upper()}: {run.cycles:,} cycles{more}")
    sm = plt.cm.ScalarMappable(cmap="viridis", norm=plt.Normalize(0, 1))
    fig.colorbar(sm, ax=ax, label="PE utilization")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
