"""Shared pieces of the fuzz targets: the typed-errors-only guard, seeds, a built-in mutator, findings.

A target is a module ``fuzz/<name>.py`` with ``TestOneInput(data: bytes) -> None`` (atheris'
entry point) and ``seeds() -> list[bytes]``. ``TestOneInput`` calls the parser(s) and lets only the
project's typed errors (:class:`federation.errors.Error` and its subclasses) through: they are the
documented way to refuse hostile input. Any other exception escaping ``TestOneInput`` is a finding.

Seeds are read from ``../shared/vectors`` (``RATSFED_VECTORS`` overrides) and generated with the
project's own encoders at run time; :func:`write_corpus` writes them under ``fuzz/corpus/<name>/``
(git-ignored: vector bytes are never committed). Without atheris, :func:`builtin_loop` fuzzes with
:func:`mutate`, a small coverage-blind mutator (bit flips, byte edits, splices, format tokens).
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import os
import random
import sys
import time
import traceback
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache, wraps
from pathlib import Path
from typing import Any

from federation.errors import Error

__all__ = [
    "CORPUS",
    "FINDINGS",
    "NOW",
    "REPO",
    "TARGETS",
    "VECTORS",
    "Finding",
    "Recorder",
    "attempt",
    "builtin_loop",
    "fixed_anchor",
    "fixed_key",
    "load",
    "mutate",
    "read_vectors",
    "typed_errors_only",
    "write_corpus",
]

REPO = Path(__file__).resolve().parents[1]
VECTORS = Path(os.environ.get("RATSFED_VECTORS", REPO.parent / "shared" / "vectors"))
CORPUS = REPO / "fuzz" / "corpus"
FINDINGS = REPO / "fuzz" / "findings"
NOW = datetime(2025, 6, 1, tzinfo=UTC)  # a fixed "now": runs are reproducible, certificates mostly valid

# One module per parser of untrusted input, in the order bench/fuzz.py runs them.
TARGETS: tuple[str, ...] = (
    "cbor_loads",
    "cose_sign1",
    "ear_token",
    "ear_codec",
    "corim_decode",
    "corim_template",
    "psa",
    "cca",
    "eat",
    "cmw",
    "sevsnp_report",
    "sevsnp_evidence",
    "tdx_quote",
    "intel_collateral",
    "amd_certs",
    "provenance",
    "config",
    "http_bodies",
    "vendor_tokens",
    "vendor_claims",
    "vendor_responses",
)


def load(name: str) -> Any:
    """The target module ``fuzz.<name>``."""
    if name not in TARGETS:
        raise KeyError(f"no fuzz target {name!r}; known: {', '.join(TARGETS)}")
    return importlib.import_module(f"fuzz.{name}")


def typed_errors_only(fn: Callable[[bytes], object]) -> Callable[[bytes], None]:
    """``TestOneInput`` from a function that parses *data*: typed errors are a refusal, not a bug."""

    @wraps(fn)
    def test_one_input(data: bytes) -> None:
        with contextlib.suppress(Error):
            fn(data)

    return test_one_input


def attempt(*calls: Callable[[], object]) -> None:
    """Call each of *calls*; a typed error ends that call only. Anything else escapes (a finding).

    (Chaining the calls with ``try``/``finally`` would let a later typed error replace an
    earlier finding.)
    """
    for call in calls:
        with contextlib.suppress(Error):
            call()


# -- seeds -----------------------------------------------------------------------------------------


def read_vectors(*patterns: str) -> list[bytes]:
    """The bytes of every vector file matching the glob *patterns* (none when the folder is absent)."""
    out: list[bytes] = []
    if not VECTORS.is_dir():
        return out
    for pattern in patterns:
        for path in sorted(VECTORS.glob(pattern)):
            if path.is_file() and path.stat().st_size <= 1 << 20:
                out.append(path.read_bytes())
    return out


@cache
def fixed_key() -> Any:
    """A deterministic ES256 signing key (kid ``fuzz``): seeds signed with it verify under :func:`fixed_anchor`."""
    from cryptography.hazmat.primitives.asymmetric import ec

    from federation.keys import SigningKey

    private = ec.derive_private_key(0x5EED_F022_0000_0000_0000_0000_0000_0001, ec.SECP256R1())
    return SigningKey.of(private, "ES256", kid="fuzz")


@cache
def fixed_anchor() -> Any:
    from federation.keys import TrustAnchor

    return TrustAnchor((fixed_key().public,))


def write_corpus(folder: Path, seeds: Iterable[bytes]) -> Path:
    """Write *seeds* into *folder* (content-addressed, so re-runs add nothing twice)."""
    folder.mkdir(parents=True, exist_ok=True)
    for seed in seeds:
        path = folder / f"seed-{hashlib.sha1(seed).hexdigest()}"
        if not path.exists():
            path.write_bytes(seed)
    return folder


def corpus_inputs(folder: Path) -> list[bytes]:
    return [p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()] if folder.is_dir() else []


# -- the built-in mutator --------------------------------------------------------------------------

# Tokens that matter to our formats: CBOR heads (indefinite, 8-byte lengths, tags 18/61/501, break,
# floats, simple values), JSON punctuation and edge values, base64url and PEM fragments.
_TOKENS: tuple[bytes, ...] = (
    b"\x00", b"\xff", b"\x7f", b"\x80", b"\x9f", b"\xbf", b"\x5f", b"\x7f", b"\x1b\xff\xff\xff\xff\xff\xff\xff\xff",
    b"\x3b\xff\xff\xff\xff\xff\xff\xff\xff", b"\xd2", b"\xd8\x3d", b"\xd9\x01\xf5", b"\xd8\x12", b"\xf9\x7e\x00",
    b"\xfb\x7f\xf0\x00\x00\x00\x00\x00\x00", b"\xf7", b"\xf8\x20", b"\xa1\x01\x26", b"\x84\x40\xa0\xf6\x40",
    b"\x58\x20", b"\x59\xff\xff", b"\xc1", b"\xc0", b"\xa0", b"\x80",
    b"{", b"}", b"[", b"]", b'"', b":", b",", b"null", b"true", b"-0", b"1e999", b"NaN", b"-1",
    b"18446744073709551616", b'"\\ud800"', b"\"a\":", b"{}", b"[]", b"0.5", b"\x00" * 8,
    b".", b"eyJ", b"=", b"-", b"_", b"-----BEGIN CERTIFICATE-----\n", b"-----END CERTIFICATE-----\n",
    b"\x30\x82", b"\x30\x80", b"\x02\x01\x00", b"\x06\x03", b"\xff\xff\xff\xff",
)
_INTERESTING = (0, 1, 0x7F, 0x80, 0xFF, 0x17, 0x18, 0x1F, 0x20)


def mutate(data: bytes, rng: random.Random, pool: Sequence[bytes] = (), max_len: int = 1 << 16) -> bytes:
    """One to four random edits of *data* (coverage-blind; used when atheris is not installed)."""
    buf = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        op = rng.randrange(10)
        n = len(buf)
        if op == 0 and n:  # flip one bit
            i = rng.randrange(n)
            buf[i] ^= 1 << rng.randrange(8)
        elif op == 1 and n:  # set an interesting byte
            buf[rng.randrange(n)] = rng.choice(_INTERESTING) if rng.random() < 0.5 else rng.randrange(256)
        elif op == 2:  # insert random bytes
            i = rng.randint(0, n)
            buf[i:i] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 8)))
        elif op == 3 and n:  # delete a range
            i = rng.randrange(n)
            del buf[i : i + rng.randint(1, max(1, min(32, n - i)))]
        elif op == 4 and n:  # duplicate a range
            i = rng.randrange(n)
            j = min(n, i + rng.randint(1, 64))
            k = rng.randint(0, n)
            buf[k:k] = buf[i:j]
        elif op == 5 and n:  # truncate
            del buf[rng.randrange(n) :]
        elif op == 6 and pool:  # splice with another input
            other = rng.choice(pool)
            if other:
                i, j = rng.randint(0, n), rng.randrange(len(other))
                buf = buf[:i] + other[j : j + rng.randint(1, 256)] + buf[i:]
        elif op == 7:  # insert or overwrite with a format token
            tok = rng.choice(_TOKENS)
            i = rng.randint(0, n)
            if rng.random() < 0.5:
                buf[i:i] = tok
            else:
                buf[i : i + len(tok)] = tok
        elif op == 8 and n >= 2:  # swap two bytes
            i, j = rng.randrange(n), rng.randrange(n)
            buf[i], buf[j] = buf[j], buf[i]
        elif op == 9 and n:  # add or subtract a small number from a byte
            i = rng.randrange(n)
            buf[i] = (buf[i] + rng.choice((-2, -1, 1, 2))) & 0xFF
    return bytes(buf[:max_len])


# -- findings --------------------------------------------------------------------------------------


class Finding(Exception):
    """An exception other than a typed error escaped a target, with the input that raised it."""

    def __init__(self, target: str, data: bytes, exc: BaseException) -> None:
        self.target, self.data, self.exc = target, data, exc
        self.signature = signature(exc)
        super().__init__(f"{target}: {self.signature}\ninput ({len(data)} bytes): {data[:256].hex()}"
                         f"{'...' if len(data) > 256 else ''}\n{format_exception(exc)}")


def signature(exc: BaseException) -> str:
    """Exception type and the innermost project frame (or innermost frame): one bug, one signature."""
    frames = traceback.extract_tb(exc.__traceback__)
    ours = [f for f in frames if any(f"{os.sep}{pkg}{os.sep}" in f.filename for pkg in ("federation", "verifiers"))]
    chosen = ours or frames
    loc = f"{Path(chosen[-1].filename).name}:{chosen[-1].lineno}" if chosen else "?"
    return f"{type(exc).__name__}@{loc}"


def format_exception(exc: BaseException) -> str:
    return "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))


@dataclass
class Recorder:
    """Runs ``TestOneInput`` and records (instead of raising) what escapes it: one file per signature."""

    target: str
    test_one_input: Callable[[bytes], None]
    folder: Path = FINDINGS
    seen: dict[str, int] = field(default_factory=dict)
    executions: int = 0

    def __call__(self, data: bytes) -> None:
        self.executions += 1
        try:
            self.test_one_input(data)
        except Exception as exc:
            self.record(Finding(self.target, data, exc))

    def record(self, finding: Finding) -> None:
        sig = finding.signature
        self.seen[sig] = self.seen.get(sig, 0) + 1
        if self.seen[sig] > 1:
            return
        out = self.folder / self.target
        out.mkdir(parents=True, exist_ok=True)
        stem = hashlib.sha1(sig.encode()).hexdigest()[:12]
        (out / f"crash-{stem}.bin").write_bytes(finding.data)
        (out / f"crash-{stem}.txt").write_text(str(finding))
        print(f"FINDING {self.target} {sig} -> {out / f'crash-{stem}.bin'}", file=sys.stderr, flush=True)


def builtin_loop(target: str, test_one_input: Callable[[bytes], None], inputs: Sequence[bytes], *,
                 runs: int, seconds: float, seed: int = 0, recorder: Recorder | None = None) -> Recorder:
    """Fuzz without atheris: every input once, then mutants of them, until *runs* or *seconds*."""
    rec = recorder or Recorder(target, test_one_input)
    rng = random.Random(seed)
    pool = list(inputs) or [b""]
    start = time.monotonic()
    for data in pool:
        rec(data)
    while rec.executions < runs and time.monotonic() - start < seconds:
        rec(mutate(rng.choice(pool), rng, pool))
    return rec
