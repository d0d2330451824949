"""accelsim: a systolic-array / INT4-INT8 MAC accelerator emulator with a quantization front end.

Public API (imported lazily, so ``import accelsim`` stays cheap). Every function that takes a model or a hw
config takes the same forms (:mod:`accelsim.api`): a bundled name, a path, or a loaded object (``Model`` /
``HWConfig``; a mapping of hw fields too); anything else is a one-line ``ConfigError``::

    load_model, load_hw         model YAML / SCALE-Sim CSV / ONNX / bundled names → validated objects
    simulate                    cycles, traffic, energy per layer and in total (a RunReport)
    compare                     two precisions of one model on one chip (a Comparison: to_dict(), table())
    sweep                       a grid of hw fields × precisions × plans and its Pareto front (a SweepResult);
                                accelsim.sweep is also the module (accelsim.sweep.sweep, SweepResult, ...)
    evaluate                    real-model accuracy, FP32 vs quantized (model + eval task, or a task + scheme)
    make_task, scheme_for       the evaluation tasks and quantization schemes evaluate takes
    run_graph                   execute a model graph on its real weights (FP32 / fake / int)
    infer                       any model (YAML or ONNX) on given inputs, outputs by graph output name
"""
__version__ = "0.1.0"

_EXPORTS = {
    "load_model": "accelsim.config.loader", "load_hw": "accelsim.config.loader",
    "simulate": "accelsim.api", "compare": "accelsim.api", "evaluate": "accelsim.api",
    "make_task": "accelsim.eval.tasks", "scheme_for": "accelsim.eval.pipeline",
    "run_graph": "accelsim.nn.graph_exec", "infer": "accelsim.inference",
    "sweep": None,   # the module accelsim.sweep itself, which is callable
}
__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str):
    if name in _EXPORTS:
        import importlib
        module = _EXPORTS[name]
        return importlib.import_module(f"accelsim.{name}") if module is None else \
            getattr(importlib.import_module(module), name)
    raise AttributeError(f"module 'accelsim' has no attribute {name!r}")
