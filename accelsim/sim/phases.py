"""A decoder LLM's two phases costed apart: the prefill of the prompt and the token-by-token decode.

A decoder graph (:mod:`accelsim.llm`, or any model YAML with the same parameters) takes ``seq_len`` (tokens in
this call) and ``past_len`` (tokens already in the KV cache, read as the graph inputs ``past_k.<l>`` /
``past_v.<l>``). With a prompt of ``S`` tokens and ``N`` generated tokens:

* **prefill** — one run at ``seq_len = S, past_len = 0``: its latency is the time to first token;
* **decode** — ``N`` runs at ``seq_len = 1, past_len = S + i`` (``i = 0 … N−1``), each costed exactly (the
  attention GEMMs grow with the context); per token, every weight not held on chip is read again, and the
  whole KV cache so far. Each step also appends one token's keys and values to the cache:
  ``2 · kv_heads · head_dim`` elements per layer, written to the outermost level (DRAM) at its bandwidth.

``batch`` sequences run together (:func:`accelsim.lowering.batched`): they share each weight fetch, while
each reads its own KV cache. Totals: ``prefill_ms``; ``decode_ms_per_token`` (mean step latency);
``tokens_per_s`` (batch · N over the decode time); ``energy_per_token_mj`` (decode energy per generated token);
``kv_cache_mb`` (after the last token); ``weight_mb_per_token`` and ``kv_mb_per_token`` (bytes moved per token
from outside the chip: streamed weights, KV cache read + appended); and ``decode_bound_tokens_per_s``, the
bandwidth bound ``DRAM bandwidth / bytes moved per token``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from ..config.loader import load_hw, model_builder
from ..errors import ConfigError
from ..graph import Model
from .engine import check_batch, simulate
from .report_types import RunReport

KV_PREFIXES = ("past_k.", "past_v.")
MAX_DECODE = 1 << 16


@dataclass(frozen=True)
class PhasesReport:
    """``prefill`` and the decode step at the middle context (``decode``, for the per-layer table), the
    per-step totals of every decode step (``steps``) and the phase totals (module docstring)."""
    prefill: RunReport
    decode: RunReport | None
    steps: tuple[dict, ...]
    totals: dict

    def to_dict(self) -> dict:
        return {"prefill": self.prefill.to_dict(), "decode_step": self.decode.to_dict() if self.decode else None,
                "decode_steps": list(self.steps), "totals": self.totals}


def kv_bytes(model: Model, act_bytes: float) -> float:
    """Bytes of the KV cache a run reads: the sizes of its ``past_k.*`` / ``past_v.*`` inputs."""
    return sum(math.prod(shape) * act_bytes for name, shape in model.inputs.items() if name.startswith(KV_PREFIXES))


def _check(model: Model, seq_len: int, decode: int) -> None:
    if "seq_len" not in model.dims or "past_len" not in model.dims:
        raise ConfigError([f"model {model.name}: --decode needs a decoder graph with the parameters seq_len and "
                           f"past_len (it has {', '.join(model.dims) or 'none'})"])
    for flag, value, low in (("--param seq_len", seq_len, 1), ("--decode", decode, 0)):
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= MAX_DECODE:
            raise ConfigError([f"{flag}: expected an integer in [{low}, {MAX_DECODE}], got {value!r}"])


def phases(spec, hw, precision: str = "w8a8", seq_len: int | None = None, decode: int = 1, batch: int = 1,
           params=None, layer_precision=None) -> PhasesReport:
    """Prefill of ``seq_len`` tokens (the model's default without it) and ``decode`` generated tokens.
    ``spec``: a model name or path taking the parameters ``seq_len``/``past_len``, or a function from a dict
    of those parameters to a :class:`~accelsim.graph.Model`."""
    hw, params = load_hw(hw), dict(params or {})
    build = spec if callable(spec) else model_builder(spec)
    base = build(params)
    seq_len = base.dims.get("seq_len") if seq_len is None else seq_len
    _check(base, seq_len, decode)
    batch = check_batch(batch)
    load = lambda dims: build(params | dims)   # noqa: E731
    prefill = simulate(load({"seq_len": seq_len}), hw, precision, layer_precision, batch=batch)
    act = _act_bytes(prefill)
    bw_bytes_per_s = hw.memory.dram.bandwidth(hw.clock_mhz) * hw.clock_mhz * 1e6
    steps, middle = [], None
    for i in range(decode):
        model = load({"seq_len": 1, "past_len": seq_len + i})
        r = simulate(model, hw, precision, layer_precision, batch=batch)
        t = r.totals
        append = 2 * _kv_row_bytes(model, act) * batch                    # one token's K and V, every layer
        seconds = t["latency_ms"] * 1e-3 + append / bw_bytes_per_s
        steps.append({"past_len": seq_len + i, "latency_ms": seconds * 1e3,
                      "energy_mj": t["batch_energy_mj"] + append * hw.memory.dram.write_pj_per_byte * 1e-9,
                      "weight_mb": t["streamed_weight_mb"] * batch, "kv_read_mb": kv_bytes(model, act) * batch / 1e6,
                      "kv_append_mb": append / 1e6, "dram_mb": t["dram_mb"] * batch + append / 1e6})
        if i == decode // 2:
            middle = r
    final = load({"seq_len": 1, "past_len": seq_len + decode})
    return PhasesReport(prefill, middle, tuple(steps), _totals(prefill, steps, kv_bytes(final, act) * batch,
                                                              bw_bytes_per_s, batch))


def _act_bytes(report: RunReport) -> float:
    from ..hw.mac import parse_precision
    return parse_precision(report.precision).act_bytes


def _kv_row_bytes(model: Model, act_bytes: float) -> float:
    """Bytes of one token's row of every ``past_k.*`` input (the K or V a decode step appends)."""
    return sum(math.prod(shape[:-2] + shape[-1:]) * act_bytes for name, shape in model.inputs.items()
               if name.startswith(KV_PREFIXES[0]))


def _totals(prefill: RunReport, steps: list[dict], kv_final: float, bw: float, batch: int) -> dict:
    t = prefill.totals
    out = {"batch": batch, "model_size_mb": t["model_size_mb"], "prefill_ms": t["latency_ms"],
           "prefill_energy_mj": t["batch_energy_mj"],
           "kv_cache_mb": kv_final / 1e6, "decode_tokens": len(steps)}
    if not steps:
        return out
    n = len(steps)
    decode_s = sum(s["latency_ms"] for s in steps) * 1e-3
    moved = sum(s["dram_mb"] for s in steps) / n / batch                 # MB per generated token
    out |= {"decode_ms_per_token": decode_s * 1e3 / n, "tokens_per_s": batch * n / decode_s,
            "energy_per_token_mj": sum(s["energy_mj"] for s in steps) / (n * batch),
            "weight_mb_per_token": sum(s["weight_mb"] for s in steps) / n / batch,
            "kv_mb_per_token": sum(s["kv_read_mb"] + s["kv_append_mb"] for s in steps) / n / batch,
            "dram_mb_per_token": moved, "decode_bound_tokens_per_s": bw / (moved * 1e6),
            "total_ms": t["latency_ms"] + decode_s * 1e3}
    return out
