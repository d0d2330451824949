"""PTQ pipeline: FP32 baseline → calibration → quantized run (fake or bit-exact int) → metrics + card.

The result carries a *quantization card*: everything needed to reproduce it from its own output (PTQ,
calibration method and set, weight/activation bits, granularity and symmetry, requantization, per-layer
bits), next to the FP32 baseline metrics and the per-layer SQNR showing where quantization error enters.
"""
from __future__ import annotations

import time
from fnmatch import fnmatchcase
from typing import TYPE_CHECKING, Callable

from ..errors import AccelsimError
from ..hw.mac import parse_precision

if TYPE_CHECKING:      # the executor (and Numba) is imported when a model runs, not by cost-only commands
    from ..nn.qexec import QuantScheme


def scheme_for(precision: str, calib: str = "minmax", per_channel: bool = True, act_symmetric: bool = False,
               percentile: float = 99.999, layer_bits=None, float_layers=(), requant: str = "float",
               dynamic: bool = False) -> QuantScheme:
    """A :class:`QuantScheme` for an integer precision name (``w8a8``, ``w4a8``, ``w4a4``)."""
    from ..nn.qexec import QuantScheme
    p = parse_precision(precision)
    if p.is_float:
        raise AccelsimError(f"precision {precision!r} is a float mode: nothing to quantize")
    if p.weight_only:
        raise AccelsimError(f"precision {precision!r} quantizes weights only (FP16 activations): the integer "
                            "pipeline runs wXaY precisions; weight-only ones are costed, and run by the LLM path")
    bits = {k: ((lambda q: (q.w_bits, q.a_bits))(parse_precision(v)) if isinstance(v, str) else tuple(v))
            for k, v in dict(layer_bits or {}).items()}
    if dynamic and act_symmetric:
        raise AccelsimError("dynamic quantization uses asymmetric unsigned activations (DynamicQuantizeLinear)")
    return QuantScheme(p.w_bits, p.a_bits, per_channel, act_symmetric, calib, percentile, bits,
                       frozenset(float_layers), requant, dynamic)


def _matches(layer, pattern: str) -> bool:
    return fnmatchcase(layer.name, pattern) or bool(layer.weight and fnmatchcase(layer.weight, pattern))


def float_layer_precisions(model, patterns, float_mode: str = "fp16", layer_precision=None) -> dict[str, str]:
    """Cost-model precision overrides: graph layers whose name or weight binding (the executor names layers
    by their weight names) matches a ``layer_precision`` glob get that precision, and layers matching one of
    the ``patterns`` kept in float get ``float_mode`` (which wins)."""
    out = {}
    for pattern, precision in (layer_precision or {}).items():
        out.update({layer.name: precision for layer in model.layers
                    if layer.name not in out and _matches(layer, pattern)})
    out.update({layer.name: float_mode for layer in model.layers if any(_matches(layer, p) for p in patterns)})
    return out


def _expand_plan_files(items) -> list[str]:
    """``@FILE`` items → the file's non-empty, non-comment lines (a plan written by ``accelsim quantize``)."""
    out = []
    for item in items:
        if item.startswith("@"):
            try:
                lines = open(item[1:], encoding="utf-8").read().splitlines()
            except OSError as exc:
                raise AccelsimError(f"--layer-precision {item}: cannot read the plan file ({exc.strerror})") from None
            out += [ln.strip() for ln in lines if ln.strip() and not ln.lstrip().startswith("#")]
        else:
            out.append(item)
    return out


def parse_layer_precisions(items) -> dict[str, str]:
    """``["GLOB=w8a8", ...]`` → ``{GLOB: "w8a8"}`` (each precision validated; MappingError otherwise); an item
    ``@FILE`` reads one ``GLOB=PRECISION`` per line from FILE (the plan ``accelsim quantize --plan`` writes)."""
    out = {}
    for item in _expand_plan_files(items):
        pattern, sep, precision = item.partition("=")
        if not sep or not pattern:
            raise AccelsimError(f"--layer-precision {item!r}: expected GLOB=PRECISION, e.g. '*conv_stem=w8a8'")
        p = parse_precision(precision)
        if p.is_float:
            raise AccelsimError(f"--layer-precision {item!r}: use --keep-float for float layers")
        out[pattern] = p.name
    return out


def _execution(scheme: QuantScheme, mode: str) -> str:
    if scheme.dynamic:
        return {"int": "dynamic quantization, exact integer GEMMs (ONNX Runtime MatMulInteger/ConvInteger), "
                       "float outputs", "fake": "dynamic quantization simulated in float32"}[mode]
    return {"int": "bit-exact integer kernels (qlinear_conv/qlinear_matmul, ONNX Runtime requantization)",
            "fake": "simulated quantization (quantize-dequantize in float32)"}[mode]


def quant_card(scheme: QuantScheme, task, mode: str, layer_names) -> dict:
    bits = {n: "w{}a{}".format(*scheme.bits(n)) for n in layer_names}
    return {
        "method": "PTQ (dynamic)" if scheme.dynamic else "PTQ",
        "execution": _execution(scheme, mode),
        "calibration": ({"method": "none (dynamic: activation grids from each call's own range)"} if scheme.dynamic
                        else {"method": scheme.calib, **task.describe_calibration(),
                              **({"percentile": scheme.percentile} if scheme.calib == "percentile" else {})}),
        "weights": {"bits": scheme.w_bits, "granularity": "per-channel" if scheme.per_channel else "per-tensor",
                    "symmetric": True, "signed": True},
        "activations": {"bits": scheme.a_bits, "granularity": "per-tensor per call" if scheme.dynamic else
                        "per-tensor", "symmetric": scheme.act_symmetric, "signed": scheme.act_symmetric,
                        "dynamic": scheme.dynamic},
        "requant": scheme.requant,
        "bits_per_layer": bits,
        "kept_float": sorted(scheme.float_layers),
        "layer_overrides": {k: "w{}a{}".format(*v) for k, v in scheme.layer_bits.items()},
        "float_ops": "batchnorm folded; activations, residual adds, softmax, layernorm, GELU in float32",
    }


def evaluate(task, scheme: QuantScheme | None, mode: str = "int", progress: Callable[[str], None] | None = None) -> dict:
    """Run ``task`` in FP32 and (if ``scheme``) quantized; return metrics, per-layer SQNR and the card."""
    from ..nn.qexec import Calibrator, QuantOps
    say = progress or (lambda msg: None)
    data = task.eval_data()
    say(f"{task.name}: FP32 reference on {len(data)} samples")
    t0 = time.perf_counter()
    ref = task.run(None, data)
    result = {"task": task.name, "model": task.model_name, "eval_size": len(data), "primary_metric": task.primary,
              "fp32": task.metrics(ref, ref), "seconds": {"fp32": time.perf_counter() - t0}}
    if scheme is None:
        return result
    t0 = time.perf_counter()
    cal = Calibrator(scheme)
    batches = task.calibration()
    if scheme.dynamic:   # no calibration: one batch only discovers the quantized layers
        batches = batches[:1]
    for i, batch in enumerate(batches):
        say(f"{task.name}: calibrating ({scheme.calib}) batch {i + 1}/{len(batches)}")
        task.run(cal, batch)
        cal.samples += len(batch)
    plan = cal.plan()
    result["seconds"]["calibration"] = time.perf_counter() - t0
    say(f"{task.name}: quantized run ({mode}, w{scheme.w_bits}a{scheme.a_bits})")
    t0 = time.perf_counter()
    qops = QuantOps(plan, mode)   # scheme.dynamic selects per-call grids and float outputs
    out = task.run(qops, data)
    result["seconds"]["quantized"] = time.perf_counter() - t0
    result["quantized"] = task.metrics(ref, out)
    result["layers"] = {name: {"bits": "w{}a{}".format(lq.w_bits, lq.a_bits), "sqnr_db": qops.stats[name].sqnr_db,
                               "acc_overflows": qops.stats[name].overflow_events}
                        for name, lq in plan.layers.items() if name in qops.stats}
    result["card"] = quant_card(scheme, task, mode, plan.layers)
    result["card"]["calibration"]["samples_seen"] = plan.calib_samples
    return result
