"""Command-line interface: argument parsing and output only.

Every :class:`~accelsim.errors.AccelsimError` becomes a one-line ``accelsim: error: ...`` on stderr and exit
code 2; no output file is left behind when a run fails.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import sys
from pathlib import Path

from . import __version__, sweep_cli
from .llm import cli as generate_cli
from .errors import AccelsimError, ConfigError, one_line, short
from .recover import cli as quantize_cli
from .reporting import cli as report_cli

# Everything else is imported by the command that needs it: the parser (and --version) needs no numpy, and a
# cost-only command (run without --eval/--emulate, compare, sweep without eval, validate) imports no Numba,
# no ONNX and no plotting (tests/test_cli.py checks the module list of a cost-only run).

EXAMPLES = """examples:
  accelsim run models/resnet50.yaml --hw hw_configs/edge.yaml
  accelsim run resnet50 --hw edge --precision w4a8 --json out.json --csv out.csv
  accelsim run scalesim/Resnet50.csv --hw scalesim_32x32 --set array.dataflow=os --set array.rows=64
  accelsim run bert_large --hw server --param seq_len=384
  accelsim run models/minilm_l6.yaml --hw hw_configs/server.yaml --precision w8a8 --calib kl --eval lee
  accelsim eval mnist_cnn --precision w4a8 --calib percentile --eval mnist
MODEL is a model YAML, a bundled model name or a SCALE-Sim topology CSV; HW a hw YAML or a bundled name."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, exit 2 (argparse's own default prints the usage too)
        self.exit(2, f"accelsim: error: {message} (see accelsim --help)\n")


_INT = re.compile(r"[+-]?[0-9]{1,30}")


def _key_values(items: list[str], flag: str) -> dict[str, int]:
    """``name=integer`` pairs (ASCII digits; the model checks the range)."""
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip() or not _INT.fullmatch(value.strip()):
            raise ConfigError([f"{flag} {short(repr(item))}: expected name=integer, e.g. seq_len=256"])
        out[key.strip()] = int(value)
    return out


def _add_quant_args(p: argparse.ArgumentParser, required_eval: bool) -> None:
    g = p.add_argument_group("accuracy (real models: mnist_cnn/mnist, efficientnet_lite0/photos, minilm_l6/lee)")
    g.add_argument("--eval", choices=["mnist", "photos", "lee"],
                   help="evaluate the quantized model on this data set next to its FP32 baseline"
                        + (" (this or --data is required)" if required_eval else ""))
    g.add_argument("--data", metavar="FILE.npz",
                   help="evaluate on your own data: arrays by graph input name, optional 'labels'")
    g.add_argument("--calib-data", metavar="FILE.npz", help="calibration inputs for --data (default: the --data inputs)")
    g.add_argument("--calib", default="minmax", choices=["minmax", "percentile", "kl", "entropy", "mse"],
                   help="activation calibration method (default minmax)")
    g.add_argument("--percentile", type=float, default=99.999, help="percentile for --calib percentile")
    g.add_argument("--mode", default="int", choices=["int", "fake"],
                   help="int: bit-exact integer kernels (default); fake: simulated quantization in float")
    g.add_argument("--dynamic", action="store_true",
                   help="dynamic activation quantization (ONNX Runtime quantize_dynamic: per-call ranges, float outputs)")
    g.add_argument("--per-tensor", action="store_true", help="per-tensor weights (default per-channel)")
    g.add_argument("--act-symmetric", action="store_true", help="symmetric signed activations (default asymmetric)")
    g.add_argument("--keep-float", action="append", default=[], metavar="GLOB",
                   help="leave layers whose name matches GLOB in float (repeatable), e.g. '*.output.dense'")
    g.add_argument("--layer-precision", action="append", default=[], metavar="GLOB=wXaY",
                   help="per-layer precision override (repeatable; first match wins), e.g. '*depthwise*=w8a8'")
    g.add_argument("--float-mode", default="fp16", choices=["fp16", "bf16", "fp32"],
                   help="how --keep-float layers are costed on the chip (default fp16)")
    g.add_argument("--weight-method", default="rtn", choices=["rtn", "gptq"],
                   help="decoder LLMs, weight-only precisions: round to nearest (default) or GPTQ")
    g.add_argument("--eval-size", type=int, help="evaluate on the first N samples only")
    g.add_argument("--calib-size", type=int, help="calibrate on the first N calibration samples only")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="accelsim", description="Systolic-array / INT4-INT8 accelerator emulator.",
                     epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"accelsim {__version__}")
    sub = parser.add_subparsers(dest="command", parser_class=_Parser)
    run = sub.add_parser("run", help="cost a model on a hardware config", epilog=EXAMPLES,
                         formatter_class=argparse.RawDescriptionHelpFormatter)
    run.add_argument("model", help="model YAML, bundled model name, or SCALE-Sim topology CSV")
    run.add_argument("--hw", required=True, help="hw YAML or bundled name (edge, server, scalesim_32x32)")
    run.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                     help="override a hw field by its path, e.g. array.rows=64 (repeatable)")
    run.add_argument("--param", action="append", default=[], metavar="NAME=INT",
                     help="set a model parameter, e.g. seq_len=256 (repeatable)")
    run.add_argument("--precision", default="w8a8", help="fp32 | fp16 | bf16 | w8a8 | w4a8 | w4a4 (default w8a8)")
    run.add_argument("--batch", type=int, default=1, metavar="N",
                     help="inferences run together: weights fetched once per batch (default 1)")
    run.add_argument("--decode", type=int, metavar="N",
                     help="a decoder LLM: cost the prefill of seq_len tokens and N decode steps apart "
                          "(time to first token, ms per token, tokens/s, energy per token, KV cache)")
    run.add_argument("--json", metavar="FILE", help="write the full report as JSON")
    run.add_argument("--csv", metavar="FILE", help="write the per-layer table as CSV")
    run.add_argument("--max-rows", type=int, default=60, help="layers shown in the table (default 60; 0 = all)")
    run.add_argument("--quiet", action="store_true", help="print only the totals")
    run.add_argument("--breakdown", action="store_true",
                     help="also print bytes, energy and stalls per memory level and operand")
    run.add_argument("--emulate", nargs="?", const="*", metavar="GLOB",
                     help="run the GEMM layers matching GLOB (default all) through the cycle-level systolic array: "
                          "emulated_cycles and a match flag per layer; with --eval (int mode) the quantized model's "
                          "GEMMs run on the array too")
    run.add_argument("--trace", metavar="DIR", help="with --emulate: write SCALE-Sim 3.0.0 SRAM traces per layer")
    run.add_argument("--trace-max-cycles", type=int, default=10000, metavar="N",
                     help="cycles per layer trace (default 10000)")
    run.add_argument("--unsupported", default="error", choices=["error", "vector"],
                     help="ONNX ops accelsim does not know: an error (default) or costed as vector work")
    _add_batch_axis(run)
    _add_quant_args(run, required_eval=False)
    ev = sub.add_parser("eval", help="accuracy only: FP32 vs quantized on real data", epilog=EXAMPLES,
                        formatter_class=argparse.RawDescriptionHelpFormatter)
    ev.add_argument("model", help="mnist_cnn, efficientnet_lite0 or minilm_l6 (name or YAML)")
    ev.add_argument("--precision", default="w8a8", help="w8a8 | w4a8 | w4a4 | fp32 (default w8a8)")
    ev.add_argument("--json", metavar="FILE", help="write the accuracy result and quantization card as JSON")
    ev.add_argument("--quiet", action="store_true", help="no progress messages")
    _add_quant_args(ev, required_eval=True)
    cmp_ = sub.add_parser("compare", help="compare two precisions of one model on one chip side by side",
                          epilog="example:\n  accelsim compare models/resnet50.yaml --hw hw_configs/edge.yaml "
                                 "--baseline fp32 --target w8a8", formatter_class=argparse.RawDescriptionHelpFormatter)
    cmp_.add_argument("model", help="model YAML, bundled model name, or SCALE-Sim topology CSV")
    cmp_.add_argument("--hw", required=True, help="hw YAML or bundled name")
    cmp_.add_argument("--baseline", default="fp32", help="baseline precision (default fp32)")
    cmp_.add_argument("--target", default="w8a8", help="target precision (default w8a8)")
    cmp_.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a hw field")
    cmp_.add_argument("--param", action="append", default=[], metavar="NAME=INT", help="set a model parameter")
    cmp_.add_argument("--batch", type=int, default=1, metavar="N", help="inferences run together (default 1)")
    _add_batch_axis(cmp_)
    cmp_.add_argument("--decode", type=int, metavar="N",
                      help="a decoder LLM: compare the prefill and N decode steps (tokens/s, energy per token)")
    cmp_.add_argument("--json", metavar="FILE", help="write both runs' totals and the ratios as JSON")
    val = sub.add_parser("validate", help="predicted vs measured latency of the zoo's models on a real device",
                         epilog="example:\n  accelsim validate edgetpu_devboard --json devboard.json",
                         formatter_class=argparse.RawDescriptionHelpFormatter)
    val.add_argument("device", help="edgetpu_devboard or edgetpu_usb (devices with published latencies)")
    val.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a hw field")
    val.add_argument("--json", metavar="FILE", help="write one row per model and the error statistics as JSON")
    sweep_cli.add_parser(sub)
    report_cli.add_parser(sub)
    quantize_cli.add_parser(sub)
    inf = sub.add_parser("infer", help="run a model (YAML or ONNX) on inputs from an .npz, write its outputs",
                         epilog="example:\n  accelsim infer model.onnx --inputs in.npz --out out.npz --precision w8a8 "
                                "--calib-data calib.npz", formatter_class=argparse.RawDescriptionHelpFormatter)
    inf.add_argument("model", help="model YAML with weights, bundled model name, or ONNX file")
    inf.add_argument("--inputs", required=True, metavar="IN.npz", help="arrays keyed by graph input name")
    inf.add_argument("--out", required=True, metavar="OUT.npz", help="outputs keyed by graph output name")
    inf.add_argument("--precision", help="fp32 | w8a8 | w4a8 | w4a4 (default: fp32, or the model's own "
                     "quantization for an ONNX Runtime-quantized model)")
    inf.add_argument("--calib", default="minmax", choices=["minmax", "percentile", "kl", "entropy", "mse"],
                     help="activation calibration method (default minmax)")
    inf.add_argument("--calib-data", metavar="CALIB.npz", help="calibration inputs (default: the inputs)")
    inf.add_argument("--mode", default="int", choices=["int", "fake"], help="int (bit-exact, default) or fake")
    inf.add_argument("--per-tensor", action="store_true", help="per-tensor weights (default per-channel)")
    inf.add_argument("--param", action="append", default=[], metavar="NAME=INT", help="set a model parameter")
    inf.add_argument("--onnx", metavar="OUT.onnx", help="also write accelsim's quantized model as ONNX QDQ (w8a8)")
    inf.add_argument("--weight-method", default="rtn", choices=["rtn", "gptq"],
                     help="decoder LLMs, weight-only precisions: round to nearest (default) or GPTQ")
    _add_batch_axis(inf)
    generate_cli.add_parser(sub)
    return parser


def _add_batch_axis(p) -> None:
    p.add_argument("--batch-axis", default="auto", metavar="AXIS",
                   help="ONNX: the axis of every graph input that carries the batch: auto (default: axis 0 when "
                        "every input starts with a dynamic dimension), none (the graph as written), or an axis")



def _accuracy(args, model, array_hw=None) -> dict | None:
    """Run the PTQ evaluation the flags ask for (None without --eval / --data)."""
    if not args.eval and not args.data:
        if args.calib_data:
            raise ConfigError(["--calib-data needs --data"])
        return None
    if args.eval and args.data:
        raise ConfigError(["give --eval DATASET or --data FILE.npz, not both"])
    from .eval.pipeline import evaluate, parse_layer_precisions, scheme_for
    from .eval.tasks import make_task
    from .hw.mac import parse_precision
    for flag in ("eval_size", "calib_size"):
        if getattr(args, flag) is not None and getattr(args, flag) < 1:
            raise ConfigError([f"--{flag.replace('_', '-')}: expected a positive integer, got {getattr(args, flag)}"])
    if model.weights and model.weights.get("format") == "gguf":      # a decoder LLM: perplexity on real text
        if args.data or args.eval != "lee":
            raise ConfigError(["a decoder LLM is evaluated with --eval lee (perplexity on the Lee background corpus)"])
        from .llm.accuracy import evaluate_decoder
        return evaluate_decoder(model, args.precision, args.eval_size, args.calib_size, args.calib, args.weight_method,
                                parse_layer_precisions(args.layer_precision))
    if args.weight_method != "rtn":
        raise ConfigError(["--weight-method applies to decoder LLMs (GGUF weights)"])
    if args.data:
        from .inference import DataTask, read_npz
        task = DataTask(model, read_npz(args.data, "--data"), read_npz(args.calib_data, "--calib-data")
                        if args.calib_data else None, f"--data {short(args.data)}",
                        args.calib_data and f"--calib-data {short(args.calib_data)}")
    else:
        task = make_task(args.eval, args.eval_size, args.calib_size, model)
    scheme = None if parse_precision(args.precision).is_float else scheme_for(
        args.precision, args.calib, not args.per_tensor, args.act_symmetric, args.percentile,
        layer_bits=parse_layer_precisions(args.layer_precision), float_layers=args.keep_float, dynamic=args.dynamic)
    verbose = not args.quiet and sys.stderr.isatty()
    result = evaluate(task, scheme, args.mode, _progress if verbose else None)
    if array_hw is not None and scheme is not None and args.mode == "int" and not scheme.dynamic:
        from .sim.array_ops import evaluate_on_array
        result["array"] = evaluate_on_array(task, scheme, array_hw, None if args.emulate == "*" else args.emulate)
    if verbose:
        print("\r\033[K", end="", file=sys.stderr)
    return result


def _sweep(args) -> int:
    return _subcommand(args, lambda a, progress: sweep_cli.run(a, progress, _note))


def _note(message: str) -> None:
    """A one-line note on stderr (what a command does differently from what was asked, and why)."""
    print(f"accelsim: note: {message}", file=sys.stderr)


def _report(args) -> int:
    return _subcommand(args, report_cli.run)


def _subcommand(args, run) -> int:
    """Run a subcommand module's ``run(args, progress)`` and print what it returns."""
    verbose = not args.quiet and sys.stderr.isatty()
    text = run(args, _progress if verbose else None)
    if verbose:
        print("\r\033[K", end="", file=sys.stderr)
    print(text)
    return 0


def _progress(message: str) -> None:
    """One status line on stderr, rewritten in place (only when stderr is a terminal)."""
    print(f"\r\033[K[accelsim] {message}", end="", file=sys.stderr, flush=True)


def _run(args) -> int:
    from .cli_io import check_output_dirs, write_outputs
    from .config.loader import load_hw, load_model
    from .eval.pipeline import float_layer_precisions, parse_layer_precisions
    from .report import format_breakdown, format_table, format_totals, format_weights, to_csv, to_json
    from .sim.engine import simulate
    check_output_dirs(args.json, args.csv)
    if args.max_rows < 0:
        raise ConfigError([f"--max-rows: expected 0 (all) or a positive integer, got {args.max_rows}"])
    if args.decode is not None:
        return _run_phases(args)
    model = _warned(load_model(args.model, _key_values(args.param, "--param"), args.unsupported, args.batch_axis))
    hw = load_hw(args.hw, args.set)
    emu = _emulation(args, model)
    report = simulate(model, hw, args.precision, _onnx_precisions(model, args.float_mode) | float_layer_precisions(
        model, args.keep_float, args.float_mode, parse_layer_precisions(args.layer_precision)),
        batch=args.batch, **({"timing": emu} if emu else {}))
    report = emu.annotate(report) if emu else report
    accuracy = _accuracy(args, model, hw if emu else None)
    extra = {k: v for k, v in (("accuracy", accuracy), ("notes", _notes(model))) if v}
    as_json = (lambda r: to_json(r, extra)) if extra else to_json
    outputs = [(p, render(report)) for p, render in ((args.json, as_json), (args.csv, to_csv)) if p]
    write_outputs(outputs)
    if args.quiet:
        print(format_totals(report))
    else:
        print(format_table(report, args.max_rows or None))
    if args.breakdown:
        print("\n" + format_breakdown(report))
        if hw.memory.resident_level is not None:
            print("\n" + format_weights(report))
    for note in _notes(model):
        print(f"note: {note}")
    if emu:
        print("\n" + emu.summary())
    if accuracy:
        print("\n" + generate_cli.format_accuracy(accuracy))
        if "array" in accuracy:
            print(_array_line(accuracy["array"]))
    return 0


def _run_phases(args) -> int:
    """``run --decode N``: prefill and decode of a decoder LLM costed apart (accelsim.sim.phases)."""
    from .cli_io import write_outputs
    from .config.loader import load_hw
    from .report import format_phases, format_table, json_text, to_csv
    from .sim.phases import phases
    for flag in ("eval", "data", "emulate", "trace"):
        if getattr(args, flag):
            raise ConfigError([f"--decode costs the prefill and decode phases; it does not combine with "
                               f"--{flag} (accelsim generate runs a decoder)"])
    params = _key_values(args.param, "--param")
    seq_len = params.pop("seq_len", None)
    result = phases(args.model, load_hw(args.hw, args.set), args.precision, seq_len, args.decode, args.batch,
                    params)
    outputs = [(args.json, json_text(result.to_dict()))] if args.json else []
    if args.csv:
        outputs.append((args.csv, to_csv(result.prefill)))
    write_outputs(outputs)
    if not args.quiet:
        print("prefill\n" + format_table(result.prefill, args.max_rows or None))
        if result.decode is not None:
            context = result.steps[len(result.steps) // 2]["past_len"]
            print(f"\none decode step (context {context} tokens)\n" + format_table(result.decode, args.max_rows or None))
        print()
    print(format_phases(result.totals))
    return 0


def _emulation(args, model):
    """The cycle-level timing strategy ``--emulate`` asks for (None without it)."""
    if args.emulate is None:
        if args.trace:
            raise ConfigError(["--trace needs --emulate"])
        return None
    if args.trace_max_cycles < 1:
        raise ConfigError([f"--trace-max-cycles: expected a positive integer, got {args.trace_max_cycles}"])
    from .config.loader import is_dir
    if args.trace and not is_dir(Path(args.trace)):
        raise ConfigError([f"--trace {short(args.trace)}: not an existing folder"])
    from .sim.emulate import EmulatedTiming
    return EmulatedTiming(model, None if args.emulate == "*" else args.emulate, trace_dir=args.trace,
                          trace_max_cycles=args.trace_max_cycles)


def _array_line(a: dict) -> str:
    return (f"on the array ({a['array']}): {a['gemms']} GEMMs, {a['cycles']:,} cycles; outputs equal to int mode: "
            f"{'yes' if a['outputs_equal_int_mode'] else 'NO'}; {a['primary']} {a['metrics'][a['primary']]}")


def _onnx_precisions(model, float_mode: str) -> dict:
    """An ONNX Runtime-quantized model is costed at its own bit-widths: its quantized GEMM layers at wXaY, its
    other GEMM layers in ``float_mode`` (empty for any other model)."""
    if not (model.weights and model.weights.get("format") == "onnx"):
        return {}
    from .onnx.importer import quant_for
    from .ops import OPS
    plan, _ = quant_for(model)
    if plan is None:
        return {}
    out = {}
    for layer in model.layers:
        lq = plan.layers.get(layer.weight or layer.name)
        if lq is not None:
            out[layer.name] = f"w{lq.w_bits}a{lq.a_bits}"
        elif OPS[layer.op].gemm is not None:
            out[layer.name] = float_mode
    return out


def _warned(model):
    """``model``, after printing on stderr how its file was read (``Model.warnings``, e.g. a SCALE-Sim header
    read by position), once each."""
    for w in model.warnings:
        print(f"accelsim: warning: {w}", file=sys.stderr)
    return model


def _notes(model) -> list:
    if model.weights and model.weights.get("format") == "onnx":
        from .onnx.importer import notes_for
        return notes_for(model)
    return []


def _infer(args) -> int:
    from .cli_io import check_output_dirs
    from .config.loader import load_model
    from .inference import infer, read_npz, write_npz
    check_output_dirs(args.out, args.onnx)
    model = _warned(load_model(args.model, _key_values(args.param, "--param"), batch_axis=args.batch_axis))
    inputs = read_npz(args.inputs)
    calib = read_npz(args.calib_data, "--calib-data") if args.calib_data else None
    tmp = None if args.onnx is None else Path(args.onnx).with_name(f".{Path(args.onnx).name}.tmp")
    try:
        outputs = infer(model, inputs, args.precision, args.calib, calib, args.mode, not args.per_tensor,
                        export_onnx=tmp, weight_method=args.weight_method)
        write_npz(args.out, outputs)
        if tmp is not None:
            os.replace(tmp, args.onnx)
    except OSError as exc:
        raise ConfigError([f"cannot write {short(args.out)}: {exc.strerror or short(exc)}"]) from None
    finally:
        if tmp is not None:
            tmp.unlink(missing_ok=True)
    for name, y in outputs.items():
        print(f"{name}: {list(y.shape)} {y.dtype}")
    return 0


def _eval(args) -> int:
    from .cli_io import check_output_dirs, write_outputs
    from .config.loader import load_model
    from .report import json_text
    check_output_dirs(args.json)
    if not args.eval and not args.data:
        raise ConfigError(["eval needs --eval DATASET or --data FILE.npz"])
    model = _warned(load_model(args.model))
    accuracy = _accuracy(args, model)
    if args.json:
        write_outputs([(args.json, json_text(accuracy, nonneg=False))])
    print(generate_cli.format_accuracy(accuracy))
    return 0


def _compare(args) -> int:
    from .api import compare
    from .cli_io import check_output_dirs, write_outputs
    from .config.loader import load_hw, load_model
    from .report import json_text
    check_output_dirs(args.json)
    if args.decode is not None:
        return _compare_phases(args)
    result = compare(_warned(load_model(args.model, _key_values(args.param, "--param"), batch_axis=args.batch_axis)),
                     load_hw(args.hw, args.set),
                     args.baseline, args.target, batch=args.batch)
    if args.json:
        write_outputs([(args.json, json_text(result.to_dict()))])
    print(result.table())
    return 0


def _compare_phases(args) -> int:
    """``compare --decode N``: both precisions' prefill and decode phases side by side."""
    from .cli_io import write_outputs
    from .config.loader import load_hw
    from .report import PHASE_ROWS, json_text, ratio_table, ratios
    from .sim.phases import phases
    params = _key_values(args.param, "--param")
    seq_len, hw = params.pop("seq_len", None), load_hw(args.hw, args.set)
    runs = [phases(args.model, hw, p, seq_len, args.decode, args.batch, params) for p in (args.baseline, args.target)]
    bt, tt = (json.loads(json_text(r.totals)) for r in runs)
    if args.json:
        write_outputs([(args.json, json_text({"model": runs[0].prefill.model, "hw": hw.name, "baseline": args.baseline,
                                               "target": args.target, "baseline_totals": bt, "target_totals": tt,
                                               "ratios": ratios(bt, tt, PHASE_ROWS)}))])
    print(f"{runs[0].prefill.model} on {hw.name}: prefill and {args.decode} decode steps, {args.baseline} vs "
          f"{args.target} (batch {args.batch})\n" + ratio_table((args.baseline, args.target), bt, tt, PHASE_ROWS))
    return 0


def _validate(args) -> int:
    from .cli_io import check_output_dirs, write_outputs
    from .report import json_text
    from .reporting.silicon import format_validation, validate
    check_output_dirs(args.json)
    result = validate(args.device, args.set)
    if args.json:
        write_outputs([(args.json, json_text(result))])
    print(format_validation(result))
    return 0


def _cost_only(args) -> bool:
    """The command runs the cost model only (no model execution: no BLAS work)."""
    if args.command == "run":
        return not (args.eval or args.data or args.emulate is not None)
    return args.command in ("compare", "validate")


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        print("accelsim: error: no command given: expected run, eval, compare, infer, generate, sweep, report, "
              "validate or quantize (see accelsim --help)",
              file=sys.stderr)
        return 2
    if _cost_only(args) and "numpy" not in sys.modules:
        os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")    # no BLAS work: do not start OpenBLAS's thread pool
    try:
        if args.command == "quantize":
            return _subcommand(args, quantize_cli.run)
        return {"compare": _compare, "eval": _eval, "run": _run, "sweep": _sweep, "infer": _infer,
                "report": _report, "validate": _validate,
                "generate": lambda a: _subcommand(a, generate_cli.run)}[args.command](args)
    except AccelsimError as exc:
        print(f"accelsim: error: {one_line(exc)}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # e.g. `accelsim run ... | head`: stop quietly (Python's documented recipe)
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1


if __name__ == "__main__":
    sys.exit(main())
