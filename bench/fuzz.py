"""Fuzz campaigns: every target in fuzz/ for N executions or T seconds each, keeping a corpus.

    .venv/bin/python bench/fuzz.py                      # 100,000 executions or 600 s per target
    .venv/bin/python bench/fuzz.py --smoke              # about 2 s per target
    .venv/bin/python bench/fuzz.py --runs 1000000 --seconds 3600 --targets cbor_loads cose_sign1

Each target runs in its own process (``python -m fuzz TARGET``), one after the other: atheris
(coverage-guided, libFuzzer) when it is installed, else the built-in mutator (``--engine``). Seeds
come from ../shared/vectors and the project's own encoders at run time and go, with everything
atheris adds, into ``fuzz/corpus/TARGET/`` (git-ignored), so a later campaign starts where this one
stopped. A finding (any exception other than a typed ``federation.errors.Error``, or the process
dying) is kept under ``fuzz/findings/TARGET/`` with its input and traceback. Logs: ``fuzz/logs/``.

Prints a table (target, engine, executions, seconds, exec/s, findings) and, with ``--json``, writes
it as JSON. Exit status 1 when there is any finding.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from fuzz._harness import CORPUS, TARGETS  # noqa: E402

LOGS = ROOT / "fuzz" / "logs"
_DONE = re.compile(r"^Done (\d+) runs in (\d+) second", re.M)
_PROGRESS = re.compile(r"^#(\d+)\s", re.M)
_EXECUTED = re.compile(r"^stat::number_of_executed_units:\s*(\d+)", re.M)


@dataclass
class Row:
    target: str
    engine: str
    executions: int
    seconds: float
    findings: int
    exit_code: int
    corpus: int
    signatures: list[str]

    @property
    def rate(self) -> float:
        return self.executions / self.seconds if self.seconds else 0.0


def _engine(choice: str) -> str:
    if choice != "auto":
        return choice
    try:
        import atheris  # noqa: F401
    except ImportError:
        return "builtin"
    return "atheris"


def run_target(target: str, *, runs: int, seconds: int, engine: str, seed: int, logs: Path = LOGS) -> Row:
    logs.mkdir(parents=True, exist_ok=True)
    log = logs / f"{target}.log"
    cmd = [sys.executable, "-m", "fuzz", target, f"--runs={runs}", f"--seconds={seconds}", f"--engine={engine}",
           f"--seed={seed}"]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    start = time.monotonic()
    with log.open("w") as out:
        proc = subprocess.run(cmd, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, env=env,
                              timeout=seconds + 600, check=False)
    wall = time.monotonic() - start
    text = log.read_text(errors="replace")
    executed = _EXECUTED.findall(text)
    done = _DONE.findall(text)
    progress = _PROGRESS.findall(text)
    executions = int(executed[-1]) if executed else int(done[-1][0]) if done else int(progress[-1]) if progress else 0
    fuzz_seconds = _fuzz_seconds(text, done, wall)
    signatures = sorted(set(re.findall(r"^FINDING \S+ (\S+)", text, re.M)))
    findings = len(signatures) + (1 if proc.returncode != 0 else 0)  # a dead process is a finding too
    corpus = len(list((CORPUS / target).iterdir())) if (CORPUS / target).is_dir() else 0
    return Row(target, engine, executions, round(fuzz_seconds, 1), findings, proc.returncode, corpus, signatures)


def _fuzz_seconds(text: str, done: list[tuple[str, str]], wall: float) -> float:
    m = re.findall(r"^stat::elapsed_seconds:\s*([\d.]+)", text, re.M)
    if m:
        return float(m[-1])
    if done:  # libFuzzer rounds to whole seconds; the wall clock includes imports and seeding
        return max(float(done[-1][1]), 1.0)
    return wall


def table(rows: list[Row]) -> str:
    head = f"{'target':<18} {'engine':<8} {'executions':>11} {'seconds':>8} {'exec/s':>8} {'findings':>8} {'corpus':>7}"
    lines = [head, "-" * len(head)]
    for r in rows:
        lines.append(f"{r.target:<18} {r.engine:<8} {r.executions:>11,} {r.seconds:>8.1f} {r.rate:>8,.0f} "
                     f"{r.findings:>8} {r.corpus:>7}")
        lines += [f"{'':<18} finding: {s}" for s in r.signatures]
        if r.exit_code:
            lines.append(f"{'':<18} process exited {r.exit_code}: see its log ({r.target}.log)")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=100_000, help="executions per target (default 100000)")
    p.add_argument("--seconds", type=int, default=600, help="time budget per target (default 600)")
    p.add_argument("--smoke", action="store_true", help="about 2 s per target")
    p.add_argument("--engine", choices=("auto", "atheris", "builtin"), default="auto")
    p.add_argument("--targets", nargs="+", choices=TARGETS, default=list(TARGETS), metavar="TARGET")
    p.add_argument("--seed", type=int, default=0, help="random seed of the built-in mutator")
    p.add_argument("--jobs", type=int, default=1, help="targets run at the same time (default 1: in sequence)")
    p.add_argument("--json", type=Path, help="also write the table as JSON here")
    p.add_argument("--logs", type=Path, default=LOGS, help="folder for the targets' logs (default fuzz/logs)")
    args = p.parse_args(argv)
    if args.smoke:
        args.runs, args.seconds = 10**9, 2
    engine = _engine(args.engine)
    print(f"fuzz campaign: {len(args.targets)} targets, engine {engine}, {args.runs:,} executions or "
          f"{args.seconds} s each; command: {' '.join([Path(sys.executable).name, *sys.argv])}", flush=True)
    started = time.monotonic()

    def one(target: str) -> Row:
        row = run_target(target, runs=args.runs, seconds=args.seconds, engine=engine, seed=args.seed, logs=args.logs)
        print(f"  {row.target}: {row.executions:,} executions in {row.seconds:.1f} s, {row.findings} findings",
              flush=True)
        return row

    with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        rows = list(pool.map(one, args.targets))
    print(table(rows))
    print(f"total: {sum(r.executions for r in rows):,} executions, {sum(r.findings for r in rows)} findings, "
          f"{time.monotonic() - started:.0f} s wall clock")
    if args.json:
        args.json.write_text(json.dumps({
            "engine": engine, "runs": args.runs, "seconds": args.seconds, "argv": sys.argv,
            "rows": [{**asdict(r), "exec_per_s": round(r.rate, 1)} for r in rows],
        }, indent=1))
    return 1 if any(r.findings for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
