"""Run one fuzz target: ``python -m fuzz TARGET [--runs N] [--seconds T] [--engine atheris|builtin]``.

One target per process (libFuzzer allows one ``Fuzz()`` per process and exits at the end). The
seeds are written into ``fuzz/corpus/TARGET/`` first; atheris adds what it finds there. Anything
other than a typed error escaping the target is recorded under ``fuzz/findings/TARGET/`` (one
input and traceback per distinct signature), printed as a ``FINDING`` line, and the run goes on.
The last lines are libFuzzer's (``Done N runs in S second(s)``), or the same from the built-in loop.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import time
from pathlib import Path


def _atheris_available() -> bool:
    return importlib.util.find_spec("atheris") is not None


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m fuzz", description=__doc__.splitlines()[0])
    p.add_argument("target")
    p.add_argument("--runs", type=int, default=100_000, help="executions (default 100000)")
    p.add_argument("--seconds", type=int, default=600, help="time budget in seconds (default 600)")
    p.add_argument("--engine", choices=("auto", "atheris", "builtin"), default="auto")
    p.add_argument("--corpus", type=Path, default=None, help="corpus folder (default fuzz/corpus/TARGET)")
    p.add_argument("--seed", type=int, default=0, help="random seed of the built-in mutator")
    args = p.parse_args(argv)
    engine = args.engine
    if engine == "auto":
        engine = "atheris" if _atheris_available() else "builtin"

    if engine == "atheris":
        import atheris

        # Instrument the project (and pyjwt, pure Python) for coverage: imported inside the block.
        with atheris.instrument_imports(include=["federation", "verifiers", "jwt"]):
            from fuzz import _harness

            module = _harness.load(args.target)
    else:
        from fuzz import _harness

        module = _harness.load(args.target)

    corpus = _harness.write_corpus(args.corpus or _harness.CORPUS / args.target, module.seeds())
    recorder = _harness.Recorder(args.target, module.TestOneInput)
    print(f"fuzz: {args.target} engine={engine} corpus={corpus} ({len(list(corpus.iterdir()))} inputs)",
          file=sys.stderr, flush=True)

    if engine == "atheris":
        atheris.Setup([sys.argv[0], f"-runs={args.runs}", f"-max_total_time={args.seconds}", "-timeout=120",
                       "-rss_limit_mb=4096", "-print_final_stats=1", str(corpus)], recorder)
        atheris.Fuzz()  # exits the process when done
        return 0

    start = time.monotonic()
    _harness.builtin_loop(args.target, module.TestOneInput, _harness.corpus_inputs(corpus), runs=args.runs,
                          seconds=args.seconds, seed=args.seed, recorder=recorder)
    elapsed = time.monotonic() - start
    print(f"Done {recorder.executions} runs in {round(elapsed)} second(s)", file=sys.stderr)
    print(f"stat::number_of_executed_units: {recorder.executions}", file=sys.stderr)
    print(f"stat::elapsed_seconds: {elapsed:.3f}", file=sys.stderr, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
