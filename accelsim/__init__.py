"""accelsim: a systolic-array / INT4-INT8 MAC accelerator emulator with a quantization front end.

Public API (imported lazily, so ``import accelsim`` stays cheap)::

    load_model, load_hw         model YAML / SCALE-Sim CSV / bundled names → validated objects
    simulate                    cycles, traffic, energy per layer and in total (a RunReport)
    make_task, scheme_for, evaluate   real-model PTQ accuracy next to the FP32 baseline
    run_graph                   execute a model graph on its real weights (FP32 / fake / int)
    infer                       any model (YAML or ONNX) on given inputs, outputs by graph output name
"""
__version__ = "0.1.0"

_EXPORTS = {
    "load_model": "accelsim.config.loader", "load_hw": "accelsim.config.loader",
    "simulate": "accelsim.sim.engine", "make_task": "accelsim.eval.tasks",
    "scheme_for": "accelsim.eval.pipeline", "evaluate": "accelsim.eval.pipeline",
    "run_graph": "accelsim.nn.graph_exec", "infer": "accelsim.inference",
}
__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str):
    if name in _EXPORTS:
        import importlib
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'accelsim' has no attribute {name!r}")
