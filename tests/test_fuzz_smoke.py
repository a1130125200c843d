"""CI smoke of the fuzz targets (fuzz/): each on its seed corpus, then mutants, within ~30 s in all.

The long campaigns are ``bench/fuzz.py`` (atheris, coverage-guided). Here every target runs
in-process on its seeds (from ../shared/vectors and the project's encoders) and then on inputs
from the built-in mutator (fixed random seed, so a failure reproduces), whether or not atheris is
installed: atheris can only mutate inside its own ``Fuzz()`` loop, which never returns. Any
exception other than a typed ``federation.errors.Error`` fails the test with the input in hex.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from federation.errors import MalformedError  # noqa: E402
from fuzz import _harness  # noqa: E402
from fuzz._harness import TARGETS, Recorder, builtin_loop, mutate, typed_errors_only  # noqa: E402

MUTANTS = 400  # per target, within BUDGET seconds
BUDGET = 1.2


def test_every_module_in_fuzz_is_a_listed_target() -> None:
    modules = {p.stem for p in (ROOT / "fuzz").glob("*.py") if not p.stem.startswith("_")}
    assert modules == set(TARGETS)


def test_corpora_and_findings_are_not_committed() -> None:
    ignored = (ROOT / ".gitignore").read_text().splitlines()
    assert "/fuzz/corpus/" in ignored and "/fuzz/findings/" in ignored


def test_the_guard_lets_only_typed_errors_through(tmp_path: Path) -> None:
    def refuse(data: bytes) -> None:
        raise MalformedError("no")

    def crash(data: bytes) -> None:
        raise KeyError("bug")

    typed_errors_only(refuse)(b"")
    with pytest.raises(KeyError):
        typed_errors_only(crash)(b"")
    rec = Recorder("t", typed_errors_only(crash), folder=tmp_path)
    rec(b"x")
    rec(b"y")  # the same bug again: counted, not written twice
    assert list(rec.seen.values()) == [2] and rec.executions == 2
    assert sorted(p.suffix for p in (tmp_path / "t").iterdir()) == [".bin", ".txt"]
    assert next((tmp_path / "t").glob("*.bin")).read_bytes() == b"x"


def test_the_mutator_is_deterministic_and_bounded() -> None:
    import random

    a = [mutate(b"\xa1\x01\x02", random.Random(7), [b"{}"]) for _ in range(50)]
    b = [mutate(b"\xa1\x01\x02", random.Random(7), [b"{}"]) for _ in range(50)]
    assert a == b
    assert all(len(mutate(bytes(100), random.Random(i), max_len=64)) <= 64 for i in range(100))


@pytest.mark.parametrize("name", TARGETS)
def test_target_survives_its_seeds_and_mutants(name: str, tmp_path: Path) -> None:
    module = _harness.load(name)
    seeds = module.seeds()
    assert seeds, f"{name}: no seeds (are ../shared/vectors present?)"
    rec = Recorder(name, module.TestOneInput, folder=tmp_path)
    builtin_loop(name, module.TestOneInput, seeds, runs=len(seeds) + MUTANTS, seconds=BUDGET, seed=1,
                 recorder=rec)
    assert rec.executions >= len(seeds)
    if rec.seen:
        details = "\n\n".join(p.read_text() for p in sorted((tmp_path / name).glob("*.txt")))
        pytest.fail(f"{name}: {len(rec.seen)} finding(s): {sorted(rec.seen)}\n{details}")
