"""Fuzz the CLI in-process: mutated hw/model YAMLs, SCALE-Sim CSVs, --set/--param values and output names
(strategies and invariants: tests/fuzz/cli_cases.py). Quick profile in CI; ``--fuzz-long`` for >= 10^4 cases."""
from __future__ import annotations

from hypothesis import HealthCheck, example, given, settings

from .cli_cases import BAD, cli_case, run_case

COMMANDS = ("run", "compare", "eval", "sweep")
from .fuzz_tally import record


def test_cli_fuzz(fuzz_profile):
    long = fuzz_profile["cli"] > 1000

    @settings(max_examples=fuzz_profile["cli"], deadline=None, database=None, derandomize=not long,
              suppress_health_check=list(HealthCheck))
    @given(cli_case())
    @example(({}, ["run", "mnist_cnn", "--hw", "edge", "--json", "out.json", "--csv", "out.csv"]))
    @example(({}, ["compare", "mobilenet_v2", "--hw", "server", "--json", "out.json"]))
    @example(({"t.csv": "Layer, M, N, K,\ng, 65536, 65536, 65536,\n"}, ["run", "t.csv", "--hw", "scalesim_32x32",
                                                                          "--set", "array.dataflow=os", "--json", "o.json"]))
    def one(case):
        files, argv = case
        outcome, detail = run_case(files, argv)
        record("cli", outcome, (argv, detail), outcome in BAD, argv[0] if argv and argv[0] in COMMANDS else "other")
        if outcome in BAD:
            bad.append(f"{outcome}: {detail}\nargv={argv!r}\nfiles={ {k: v[:300] for k, v in files.items()} }")
        assert long or outcome not in BAD, bad[-1]   # quick: stop and shrink; long: count every case, fail at the end

    bad: list[str] = []
    one()
    assert not bad, f"{len(bad)} bad CLI cases; first: {bad[0]}"
