"""``accelsim generate``: greedy text generation with a KV cache for a GGUF decoder LLM (argument parsing and
output only; the work is :func:`accelsim.llm.run.generate`). Imports nothing heavy until it runs."""
from __future__ import annotations

import argparse

from ..errors import ConfigError


def add_parser(sub) -> None:
    gen = sub.add_parser("generate", help="greedy text generation with a KV cache (a GGUF decoder LLM)",
                         epilog="example:\n  accelsim generate smollm2_135m --prompt \"The capital of France is\" "
                                "--max-new-tokens 8", formatter_class=argparse.RawDescriptionHelpFormatter)
    gen.add_argument("model", help="GGUF file, or a model YAML / bundled name with GGUF weights (smollm2_135m)")
    gen.add_argument("--prompt", required=True, help="the text to continue")
    gen.add_argument("--max-new-tokens", type=int, default=32, metavar="N", help="tokens to generate (default 32)")
    gen.add_argument("--precision", default="fp32",
                     help="fp32 (default), fp16, w8a16, w4a16, w4a16gN, q4_0, q4_1, q8_0, w8a8 (docs/llm.md)")
    gen.add_argument("--weight-method", default="rtn", choices=["rtn", "gptq"],
                     help="weight-only precisions: round to nearest (default) or GPTQ on calibration text")
    gen.add_argument("--json", metavar="FILE", help="write text, new_token_ids and timings as JSON")
    gen.add_argument("--quiet", action="store_true", help="no progress messages")


def run(args, progress=None) -> str:
    """Generate; write ``--json``; return the text to print (prompt + continuation, then the timings)."""
    from ..cli_io import check_output_dirs, write_outputs
    from ..report import json_text
    from .run import generate
    check_output_dirs(args.json)
    if args.max_new_tokens < 1:
        raise ConfigError([f"--max-new-tokens: expected a positive integer, got {args.max_new_tokens}"])
    result = generate(args.model, args.prompt, args.max_new_tokens, args.precision, args.weight_method)
    if args.json:
        write_outputs([(args.json, json_text(result, nonneg=False))])
    sec = result["seconds"]
    return (result["prompt"] + result["text"] + "\n"
            f"[{len(result['new_token_ids'])} new tokens, {result['precision']}: prefill {sec['prefill']:.2f} s, "
            f"decode {sec['decode_per_token'] * 1e3:.0f} ms/token]")


def format_accuracy(result: dict) -> str:
    """The accuracy block of ``run``/``eval``: a decoder's perplexity table, or any other model's."""
    if result.get("task") == "lee_perplexity":
        from .accuracy import format_decoder_accuracy
        return format_decoder_accuracy(result)
    from ..report import format_accuracy as format_model_accuracy
    return format_model_accuracy(result)
