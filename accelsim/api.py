"""The public Python API's entry points that take a model and a hardware config, in one set of forms.

* ``model``: a bundled model name (``"resnet50"``), a path (model YAML, SCALE-Sim CSV, ``.onnx``) or a loaded
  :class:`~accelsim.graph.Model` (:func:`~accelsim.config.loader.load_model`);
* ``hw``: a bundled hw name (``"edge"``), a path (hw YAML), a loaded :class:`~accelsim.config.hw.HWConfig`
  (:func:`~accelsim.config.loader.load_hw`) or a mapping of hw YAML fields.

Anything else is a one-line :class:`~accelsim.errors.ConfigError` naming the argument and the forms it takes.
:func:`simulate`, :func:`compare` and :func:`evaluate` live here; :func:`accelsim.sweep.sweep` (also callable as
``accelsim.sweep(...)``) and :func:`accelsim.inference.infer` take the same forms.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from .config.loader import load_hw, load_model
from .errors import ConfigError, short
from .report import compare_dict, format_compare
from .sim.report_types import RunReport

__all__ = ["Comparison", "compare", "evaluate", "simulate"]


def simulate(model, hw, *args, **kwargs) -> RunReport:
    """Cycles, traffic and energy of ``model`` on ``hw`` per layer and in total: :func:`accelsim.sim.engine.simulate`
    (``precision="w8a8"``, ``layer_precision``, ``timing``) on the loaded model and config."""
    from .sim.engine import simulate as cost
    return cost(load_model(model), load_hw(hw), *args, **kwargs)


@dataclass(frozen=True)
class Comparison:
    """Two precisions of one model on one chip: both reports; :meth:`to_dict` gives both totals and the improvement
    ratios (``accelsim compare --json``), :meth:`table` the side-by-side table the CLI prints."""
    baseline: RunReport
    target: RunReport

    def to_dict(self) -> dict:
        return compare_dict(self.baseline, self.target)

    def table(self) -> str:
        return format_compare(self.baseline, self.target)


def compare(model, hw, baseline: str = "fp32", target: str = "w8a8") -> Comparison:
    """``baseline`` vs ``target`` precision of ``model`` on ``hw`` (what ``accelsim compare`` prints)."""
    model, hw = load_model(model), load_hw(hw)
    return Comparison(simulate(model, hw, baseline), simulate(model, hw, target))


def evaluate(model, scheme=None, mode: str = "int", progress: Callable[[str], None] | None = None, *,
             eval: str | None = None, precision: str | None = None, calib: str = "minmax", n_eval: int | None = None,
             n_calib: int | None = None) -> dict:
    """Real-model accuracy in FP32 and quantized: metrics, per-layer SQNR and the quantization card
    (:func:`accelsim.eval.pipeline.evaluate`).

    ``model`` in the forms above, evaluated on the task ``eval`` (default: the task made for it — mnist_cnn →
    ``mnist``, efficientnet_lite0 → ``photos``, minilm_l6 → ``lee``) on ``n_eval`` samples, calibrated on
    ``n_calib``; or a task (:func:`~accelsim.eval.tasks.make_task`, :class:`~accelsim.inference.DataTask`).
    ``scheme``: a :class:`~accelsim.nn.qexec.QuantScheme`, or ``precision`` (``"w8a8"`` ...) with ``calib``
    (:func:`~accelsim.eval.pipeline.scheme_for`); neither, or a float precision: FP32 only."""
    from .eval.pipeline import evaluate as run, scheme_for
    from .hw.mac import parse_precision
    task = model if callable(getattr(model, "eval_data", None)) else _task(load_model(model), eval, n_eval, n_calib)
    if scheme is None and precision is not None and not parse_precision(precision).is_float:
        scheme = scheme_for(precision, calib)
    return run(task, scheme, mode, progress)


def _task(model, name: str | None, n_eval, n_calib):
    from .eval.tasks import TASKS, make_task
    if name is None:
        names = [k for k, t in TASKS.items() if t.model_name == model.name]
        if not names:
            raise ConfigError([f"model {short(model.name)}: no evaluation task is made for it; give eval= one of "
                               f"{', '.join(TASKS)} (with its model) or a task"])
        name = names[0]
    return make_task(name, n_eval, n_calib, model)
