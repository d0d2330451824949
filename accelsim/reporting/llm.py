"""The report's "LLM on a phone and a server" section: a decoder LLM's prefill and decode, FP16 against the
weight-only precisions, on the phone NPU and the server (:mod:`accelsim.sim.phases`).

Decode is bound by the bytes each token moves: at batch 1 every weight not held on chip is read once per
token, so ``tokens/s ≤ DRAM bandwidth / bytes per token`` — the bound drawn in the figure — unless the array
itself cannot take the weights in that fast (a weight-stationary array loads one tile row per cycle).
"""
from __future__ import annotations

from ..config.loader import load_hw
from ..sim.phases import phases

MODEL = "smollm2_135m"
CHIPS = ("edge", "server")
PRECISIONS = ("fp16", "w8a16", "w4a16", "w8a8", "w4a8")
PROMPT, NEW_TOKENS = 128, 32


def runs(model: str = MODEL, chips=CHIPS, precisions=PRECISIONS, prompt: int = PROMPT, new: int = NEW_TOKENS,
         sets=()) -> list[dict]:
    """One row per (chip, precision): prefill and decode totals, and the chip's DRAM bandwidth."""
    rows = []
    for chip in chips:
        hw = load_hw(chip, sets)
        gbps = hw.memory.dram.bandwidth(hw.clock_mhz) * hw.clock_mhz / 1e3
        for p in precisions:
            t = phases(model, hw, p, prompt, new).totals
            rows.append({"chip": chip, "precision": p, "dram_gbps": gbps, **t,
                         "prefill_tokens_per_s": prompt / (t["prefill_ms"] * 1e-3),
                         "prefill_mj_per_token": t["prefill_energy_mj"] / prompt})
    return rows


def markdown(rows: list[dict], model: str = MODEL) -> list[str]:
    md = ["", f"## LLM on a phone and a server ({model}, prompt {PROMPT} tokens, {NEW_TOKENS} generated)", "",
          "Prefill (the prompt at once) and decode (one token per step, reading the KV cache and every weight not "
          "held on chip) costed apart on the same hw configs as above. Weight-only precisions keep FP16 activations "
          "and MACs (w8a16, w4a16: INT8/INT4 weights with FP16 scales); w8a8/w4a8 run the integer datapath.", "",
          "| chip | precision | prefill tokens/s | prefill mJ/token | decode tokens/s | bandwidth bound tokens/s | "
          "decode mJ/token | MB/token | bound |", "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        bound = "DRAM" if r["tokens_per_s"] >= 0.9 * r["decode_bound_tokens_per_s"] else "array"
        md.append(f"| {r['chip']} | {r['precision']} | {r['prefill_tokens_per_s']:,.0f} | "
                  f"{r['prefill_mj_per_token']:.4f} | {r['tokens_per_s']:,.1f} | {r['decode_bound_tokens_per_s']:,.1f} | "
                  f"{r['energy_per_token_mj']:.3f} | {r['dram_mb_per_token']:.1f} | {bound} |")
    for chip in dict.fromkeys(r["chip"] for r in rows):
        by = {r["precision"]: r for r in rows if r["chip"] == chip}
        if "fp16" in by and "w4a16" in by:
            speed = by["w4a16"]["tokens_per_s"] / by["fp16"]["tokens_per_s"]
            data = by["fp16"]["dram_mb_per_token"] / by["w4a16"]["dram_mb_per_token"]
            md.append(f"- {chip}: w4a16 decodes {speed:.2f}× faster than fp16 with {data:.2f}× fewer bytes per token"
                      + ("" if speed > 0.9 * data else " — the array, not DRAM, limits it: a weight-stationary array "
                         "takes FP16 weights in one tile row per cycle"))
    return md
