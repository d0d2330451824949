"""Accuracy of a decoder LLM on real text, per precision: perplexity on the Lee background corpus and top-1
next-token agreement with the FP32 model of the decoded weights.

For each evaluation window of ``length`` tokens (:func:`accelsim.llm.corpus.lee_windows`, documents the
calibration never saw) the model predicts tokens 1 … length−1 from their prefixes (one causal forward over the
window, no cache). Perplexity is ``exp(mean NLL)`` over all predicted tokens, the NLL ``−log softmax(logits)[next]``
computed in float64; agreement is the share of positions whose argmax equals the FP32 model's. The reference is
the GGUF file as decoded (its Q4_1 weights in FP32): the original floating-point weights are not shipped.
"""
from __future__ import annotations

import time

import numpy as np

from ..nn import decode
from .corpus import lee_windows
from .requant import CALIB_LENGTH, CALIB_WINDOWS, bits_per_weight, calibration_ids, precision_ops
from .run import qops_for

MIXED = {"*.attn_v": "w8a16", "*.ffn_down": "w8a16"}
TABLE = {   # row → (precision, weight method, per-layer weight-only precisions)
    "fp32": ("fp32", "rtn", None),
    "fp16": ("fp16", "rtn", None),
    "w8a8": ("w8a8", "rtn", None),
    "w8a16": ("w8a16", "rtn", None),
    "w4a16": ("w4a16", "rtn", None),
    "w4a16g64 RTN": ("w4a16g64", "rtn", None),
    "w4a16g64 GPTQ": ("w4a16g64", "gptq", None),
    "mixed GPTQ": ("w4a16g64", "gptq", MIXED),
    "q4_1 (file grid)": ("q4_1", "rtn", None),
}
"""The rows of the accuracy experiment; "mixed" is W4 GPTQ with the value and FFN-down projections at W8."""
WINDOWS, LENGTH = 64, 256


def score(gm, qops, ids: np.ndarray, batch: int = 4) -> tuple[float, int, np.ndarray]:
    """``(Σ NLL, predicted tokens, argmax [windows, length−1])`` of the windows ``ids``."""
    graph, w = gm.graph(logits="all"), gm.weights()
    nll, tops = 0.0, []
    for i in range(0, len(ids), batch):
        part = ids[i:i + batch]
        logits = decode.forward(graph, w, part, None, qops)[0][:, :-1].astype(np.float64)
        top = logits.max(axis=-1, keepdims=True)
        lse = np.log(np.exp(logits - top).sum(axis=-1)) + top[..., 0]
        nll += float((lse - np.take_along_axis(logits, part[:, 1:, None], axis=-1)[..., 0]).sum())
        tops.append(logits.argmax(axis=-1))
    return nll, ids.shape[0] * (ids.shape[1] - 1), np.concatenate(tops)


def accuracy_table(gm, windows: int = WINDOWS, length: int = LENGTH, rows=tuple(TABLE),
                   calib_windows: int = CALIB_WINDOWS, calib_length: int = CALIB_LENGTH, progress=None) -> dict:
    """One row per :data:`TABLE` row named in ``rows``: perplexity, top-1 agreement with FP32, stored bits per
    weight, seconds (module docstring); ``config`` records the data used."""
    say = progress or (lambda m: None)
    ids = lee_windows(gm.tokenizer(), length, windows)
    calib = calibration_ids(gm, calib_windows, calib_length)
    out, ref = [], None
    for label in ("fp32",) + tuple(r for r in rows if r != "fp32"):
        precision, method, layers = TABLE[label]
        say(f"{label}: quantizing")
        t0 = time.perf_counter()
        qops = qops_for(gm, "fp32") if label == "fp32" else precision_ops(gm, precision, method, layers,
                                                                          calib_ids=calib, progress=say)
        t1 = time.perf_counter()
        say(f"{label}: scoring {len(ids)} windows")
        nll, n, top = score(gm, qops, ids)
        ref = top if ref is None else ref
        if label in rows:
            out.append({"row": label, "precision": precision, "method": method, "layers": dict(layers or {}),
                        "perplexity": float(np.exp(nll / n)), "nll": nll / n,
                        "top1_agreement": float(np.mean(top == ref)),
                        "bits_per_weight": bits_per_weight(gm, precision, method, layers),
                        "seconds": {"quantize": t1 - t0, "score": time.perf_counter() - t1}})
    return {"model": gm.name, "rows": out,
            "config": {"corpus": "Lee background (gensim lee_background.cor)", "eval_windows": len(ids),
                       "window_tokens": length, "predicted_tokens": int(len(ids) * (length - 1)),
                       "calibration_windows": int(len(calib)), "calibration_tokens": int(calib.size)}}


def format_table(result: dict) -> str:
    c = result["config"]
    lines = [f"{result['model']}: {c['predicted_tokens']:,} predicted tokens ({c['eval_windows']} windows of "
             f"{c['window_tokens']}), calibration {c['calibration_tokens']:,} tokens; {c['corpus']}",
             f"{'precision':<18} {'perplexity':>10} {'top-1 vs FP32':>14} {'bits/weight':>12} {'seconds':>8}"]
    for r in result["rows"]:
        sec = r["seconds"]["quantize"] + r["seconds"]["score"]
        lines.append(f"{r['row']:<18} {r['perplexity']:>10.3f} {r['top1_agreement']:>14.2%} "
                     f"{r['bits_per_weight']:>12.2f} {sec:>8.0f}")
    return "\n".join(lines)


EVAL_WINDOWS = 8


def evaluate_decoder(spec, precision: str, windows: int | None = None, calib_windows: int | None = None,
                     calib: str = "minmax", method: str = "rtn", layers: dict | None = None) -> dict:
    """``accelsim eval|run MODEL --eval lee`` for a decoder: FP32 and ``precision`` on ``windows`` evaluation
    windows of :data:`LENGTH` tokens (default :data:`EVAL_WINDOWS`), calibrated on ``calib_windows``."""
    from .run import decoder
    gm = decoder(spec)
    ids = lee_windows(gm.tokenizer(), LENGTH, windows or EVAL_WINDOWS)
    nll, n, ref = score(gm, qops_for(gm, "fp32"), ids)
    key = str(precision).strip().lower()
    result = {"task": "lee_perplexity", "model": gm.name, "eval_size": len(ids), "primary_metric": "perplexity",
              "precision": key, "weight_method": method, "layer_precision": dict(layers or {}),
              "fp32": {"perplexity": float(np.exp(nll / n)), "top1_agreement": 1.0},
              "config": {"window_tokens": LENGTH, "predicted_tokens": n}}
    if key != "fp32" or method != "rtn" or layers:
        calib_ids = calibration_ids(gm, calib_windows or CALIB_WINDOWS)
        t0 = time.perf_counter()
        qops = precision_ops(gm, key, method, layers, calib=calib, calib_ids=calib_ids)
        nll_q, _, top = score(gm, qops, ids)
        result["quantized"] = {"perplexity": float(np.exp(nll_q / n)), "top1_agreement": float(np.mean(top == ref))}
        result["config"].update(calibration_tokens=int(calib_ids.size),
                                bits_per_weight=bits_per_weight(gm, key, method, layers),
                                seconds=time.perf_counter() - t0)
    return result


def format_decoder_accuracy(result: dict) -> str:
    c, fp = result["config"], result["fp32"]
    label = result["precision"] + (" GPTQ" if result.get("weight_method") == "gptq" else "")
    lines = [f"accuracy: {result['model']} on the Lee background corpus ({result['eval_size']} windows of "
             f"{c['window_tokens']} tokens, {c['predicted_tokens']:,} predicted)",
             f"  {'':<16} {'fp32':>10}" + (f" {label:>14}" if "quantized" in result else "")]
    for key in ("perplexity", "top1_agreement"):
        q = f" {result['quantized'][key]:>14.4f}" if "quantized" in result else ""
        lines.append(f"  {key:<16} {fp[key]:>10.4f}{q}")
    if "quantized" in result:
        lines.append(f"  {c['bits_per_weight']:.2f} bits per weight in the quantized layers; calibration "
                     f"{c['calibration_tokens']:,} tokens of the Lee calibration documents")
        if result.get("layer_precision"):
            lines.append("  layer overrides: " + ", ".join(f"{k}={v}" for k, v in result["layer_precision"].items()))
    return "\n".join(lines)
