"""What the federation engine adds on top of its backends: latency and CPU per appraisal.

Issue 2, item 9. Everything runs in one process, on one asyncio loop, with no network.

Setup. ``n`` in-process backends implement the real :class:`verifiers.base.Backend` protocol.
Backend ``i`` has a fixed simulated latency (spread evenly between ``--min-latency`` and
``--max-latency`` ms and assigned to backends in a seeded shuffle) and answers with a real
ES256-signed EAR JWT echoing the appraisal's nonce. By default (``--backend-sign presign``) each
backend signs its JWT for the appraisal's nonce just before the appraisal starts: the signing CPU
is timed and reported on its own (it is the backend's cost, and a remote backend signs on its own
machine, in parallel), and ``appraise`` only waits its latency and returns the token.
``--backend-sign inline`` signs inside ``appraise`` after the wait instead, on the federation's
loop (still timed and excluded from the federation's CPU). Policy: ``k = n // 2 + 1`` of ``n``,
veto on, ``wait = quorum`` and ``wait = all``.

Latency. Overhead = combined latency (wall time of ``Federation.appraise``) minus the configured
latency of the backend the decision has to wait for: the k-th fastest (``wait = quorum``) or the
slowest (``wait = all``). A backend's answer is "due" at call time + latency; when the loop is busy
(verifying, deciding) it is read later, and that delay is counted as the federation's. In the same
run, interleaved with the appraisals, a *null federation* (the same latencies as bare
``asyncio.sleep`` tasks, wait for the k-th / last, nothing else) gives the floor of this figure on
this machine: asyncio's timers fire up to ~1 ms late (the epoll timeout is rounded up to whole
milliseconds). Also reported: ``fanout`` (until the last backend was called), ``late`` (median of
how long after it was due a backend's answer was taken up) and ``tail`` (from the deciding
backend's answer to the combined result).

CPU. ``time.process_time()`` around ``Federation.appraise`` (backends' signing excluded), next to
the CPU of the signature operations that appraisal performed (one ES256 verify per backend result
the engine verified, one ES256 sign of the combined result):

* ``sig run``: those operations as they ran inside the appraisal (pyjwt's ``ECAlgorithm.verify`` and
  ``.sign``, i.e. one ECDSA operation plus the raw/DER signature conversion, are timed while the
  appraisal runs; a backend's own signing is not counted);
* ``sig alone``: the same bare ECDSA operations on the same tokens and keys, timed alone right
  after the appraisal (a bare-operation baseline, nothing of the appraisal around it);
* ``jwt alone``: the project's own ``verify_ear`` of those tokens plus ``encode_ear`` of the same
  combined EAR, timed alone right after the appraisal (JWS parsing, JSON, claims, provenance
  serialization included).

Ratios are medians of per-appraisal ratios. On a VM the same operation costs more after the loop
has idled between arrivals than back to back, so ``sig run`` (same conditions as the appraisal) is
the fair denominator; ``sig alone`` is the warm floor.

Breakdown (``--no-breakdown`` turns it off): the engine's synchronous steps are wrapped with
``process_time`` accumulators: ``verify`` (normalize = verify one backend result), ``is_final``,
``decide`` (the final decision), ``combine`` (``build_combined``; inside it ``provenance`` and
``encode`` = claims + JSON + sign). ``loop`` is the rest of the CPU: asyncio tasks and wake-ups,
tenacity, timeouts, the wait loop, votes.

The garbage collector is off inside the timed windows (long-lived objects frozen, a collection
between appraisals); every appraisal gets a fresh seeded nonce.

Usage::

    python bench/overhead.py                     # full run: 200 appraisals per config (minutes)
    python bench/overhead.py --quick             # smoke mode for CI: 10 per config, seconds
    python bench/overhead.py --json out.json     # also write every figure (and the samples)
    python bench/overhead.py --from a.json b.json c.json   # re-print: median of whole runs

Figures are only comparable within one run (see ``docs/performance.md`` for the machine).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import math
import os
import platform
import random
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from jwt.algorithms import ECAlgorithm

import federation.engine as engine_mod
import federation.result as result_mod
from federation.ar4si import Tier, TrustVector
from federation.ear import Appraisal, Ear, Spelling, VerifierId, encode_ear, verify_ear
from federation.engine import Federation, Member
from federation.evidence import Evidence
from federation.keys import SigningKey, TrustAnchor, b64url_decode
from federation.quorum import QuorumPolicy, Wait
from verifiers.base import RawResult

SUBMOD = "PSA_IOT"
EVIDENCE = Evidence("application/psa-attestation-token", b"\xd2" + b"bench-evidence" * 16)
AFFIRMING = Appraisal.make(Tier.AFFIRMING, TrustVector.of(
    {"instance-identity": 2, "configuration": 2, "executables": 2, "file-system": 2, "hardware": 2,
     "runtime-opaque": 2, "storage-opaque": 2, "sourced-data": 2}))
MAX_AGE, LEEWAY = 300, 60
ECDSA_SHA256 = ec.ECDSA(hashes.SHA256())


# --------------------------------------------------------------------------- signature probe


@dataclass
class SigOps:
    """CPU of the ES256 operations pyjwt performs for the federation while an appraisal runs."""

    seconds: float = 0.0
    verifies: int = 0
    signs: int = 0
    skip: int = 0  # > 0 while a backend signs: its signature is its cost, not the federation's

    def clear(self) -> None:
        self.seconds, self.verifies, self.signs = 0.0, 0, 0

    def wrap(self, kind: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            if self.skip:
                return fn(*args, **kwargs)
            t0 = time.process_time()
            try:
                return fn(*args, **kwargs)
            finally:
                self.seconds += time.process_time() - t0
                if kind == "sign":
                    self.signs += 1
                else:
                    self.verifies += 1
        return timed


SIG_OPS = SigOps()


# --------------------------------------------------------------------------- backends


class SimBackend:
    """A verifier with a fixed latency that answers with a real ES256-signed EAR JWT."""

    def __init__(self, name: str, latency: float, key: SigningKey) -> None:
        self.name = name
        self.operator = f"op-{name}"
        self.kind = "bench"
        self.latency = latency  # seconds
        self.key = key
        self.presigned: dict[bytes, bytes] = {}
        self.reset()

    def reset(self) -> None:
        self.started: float | None = None
        self.answered: float | None = None  # when its answer left appraise (perf_counter)
        self.sign_s = 0.0  # CPU seconds spent signing for the current appraisal

    def sign(self, nonce: bytes) -> bytes:
        c0 = time.process_time()
        ear = Ear(Spelling.VERAISON.profile, int(time.time()), VerifierId("bench", self.name),
                  {SUBMOD: AFFIRMING}, nonce=nonce)
        SIG_OPS.skip += 1
        try:
            return encode_ear(ear, self.key)
        finally:
            SIG_OPS.skip -= 1
            self.sign_s += time.process_time() - c0

    def presign(self, nonce: bytes) -> None:
        self.presigned[nonce] = self.sign(nonce)

    async def appraise(self, evidence: Evidence, nonce: bytes, deadline: float) -> RawResult:
        self.started = time.perf_counter()
        await asyncio.sleep(self.latency)
        token = self.presigned.pop(nonce, None)
        if token is None:
            token = self.sign(nonce)
        self.answered = time.perf_counter()
        return RawResult(token, "application/eat+jwt")


def latencies(n: int, lo_ms: float, hi_ms: float, seed: int) -> list[float]:
    """n latencies (seconds) evenly spread over [lo, hi], in a seeded order."""
    values = [lo_ms + (hi_ms - lo_ms) * i / (n - 1) if n > 1 else lo_ms for i in range(n)]
    random.Random(seed * 1_000_003 + n).shuffle(values)
    return [v / 1000 for v in values]


async def null_federation(lats: Sequence[float], need: int) -> float:
    """Wall seconds until *need* of the bare sleeps finished (stragglers cancelled): the floor."""
    loop = asyncio.get_running_loop()
    reached: asyncio.Future[None] = loop.create_future()
    count = 0

    def arrived(_: object) -> None:
        nonlocal count
        count += 1
        if count == need and not reached.done():
            reached.set_result(None)

    t0 = time.perf_counter()
    tasks = [asyncio.create_task(asyncio.sleep(lat)) for lat in lats]
    for t in tasks:
        t.add_done_callback(arrived)
    await reached
    wall = time.perf_counter() - t0
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    return wall


# --------------------------------------------------------------------------- breakdown


@dataclass
class Probe:
    """Accumulated CPU time (seconds) and call counts of wrapped synchronous engine steps."""

    seconds: dict[str, float] = field(default_factory=dict)
    calls: dict[str, int] = field(default_factory=dict)

    def clear(self) -> None:
        self.seconds.clear()
        self.calls.clear()

    def wrap(self, label: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            t0 = time.process_time()
            try:
                return fn(*args, **kwargs)
            finally:
                self.seconds[label] = self.seconds.get(label, 0.0) + time.process_time() - t0
                self.calls[label] = self.calls.get(label, 0) + 1
        return timed


# (module, attribute, label): the synchronous steps of one appraisal, looked up at call time.
PROBES: tuple[tuple[Any, str, str], ...] = (
    (engine_mod, "normalize", "verify"),
    (engine_mod, "is_final", "is_final"),
    (engine_mod, "decide", "decide"),
    (engine_mod, "build_combined", "combine"),
    (result_mod, "build_provenance", "provenance"),
    (result_mod, "encode_ear", "encode"),
)
TOP_LEVEL = ("verify", "is_final", "decide", "combine")  # disjoint; the rest of the CPU is "loop"
BREAKDOWN_COLUMNS = ("verify", "is_final", "decide", "combine", "provenance", "encode", "loop")


@contextmanager
def probed(probe: Probe | None) -> Iterator[None]:
    """Wrap the engine's steps (when *probe*) and pyjwt's ES256 operations; restore afterwards."""
    saved: list[tuple[Any, str, Any]] = []
    try:
        if probe is not None:
            for module, attr, label in PROBES:
                fn = getattr(module, attr, None)
                if callable(fn):
                    saved.append((module, attr, fn))
                    setattr(module, attr, probe.wrap(label, fn))
        for kind in ("sign", "verify"):
            fn = getattr(ECAlgorithm, kind)
            saved.append((ECAlgorithm, kind, fn))
            setattr(ECAlgorithm, kind, SIG_OPS.wrap(kind, fn))
        yield
    finally:
        for module, attr, fn in reversed(saved):
            setattr(module, attr, fn)


# --------------------------------------------------------------------------- baselines


def _jws_parts(token: bytes) -> tuple[bytes, bytes]:
    """(signing input, DER signature) of a compact ES256 JWS."""
    head, payload, sig = token.split(b".")
    raw = b64url_decode(sig)
    r, s = int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big")
    return head + b"." + payload, encode_dss_signature(r, s)


def baseline_sig(tokens: Sequence[tuple[bytes, SigningKey]], combined: bytes, fed_key: SigningKey) -> float:
    """CPU seconds of the bare ECDSA operations: verify every backend JWT, sign the combined one."""
    items = []
    for token, key in tokens:
        public = key.key.public_key()
        assert isinstance(public, ec.EllipticCurvePublicKey)
        items.append((public, *_jws_parts(token)))
    private = fed_key.key
    assert isinstance(private, ec.EllipticCurvePrivateKey)
    signing_input = _jws_parts(combined)[0]
    c0 = time.process_time()
    for public, message, der in items:
        public.verify(der, message, ECDSA_SHA256)
    private.sign(signing_input, ECDSA_SHA256)
    return time.process_time() - c0


def baseline_jwt(tokens: Sequence[tuple[bytes, TrustAnchor]], ear: Ear, fed_key: SigningKey, nonce: bytes,
                 now: int) -> float:
    """CPU seconds of the project's JWT verify of every backend token + encode of the combined EAR."""
    c0 = time.process_time()
    for token, anchor in tokens:
        verify_ear(token, anchor, now=now, nonce=nonce, max_age=MAX_AGE, leeway=LEEWAY)
    encode_ear(ear, fed_key, fmt="jwt", spelling=Spelling.VERAISON)
    return time.process_time() - c0


# --------------------------------------------------------------------------- one configuration


@dataclass
class Sample:
    wall: float  # s, Federation.appraise
    null: float  # s, the null federation's wall time for the same latencies (nan: not run this time)
    ref: float  # s, configured latency of the backend waited for (k-th fastest / slowest)
    ref_measured: float  # s, the k-th smallest / largest measured call-to-answer time
    fanout: float  # s, from the call to the last backend entering appraise
    late: float  # s, median over answered backends of (answered - started - latency)
    tail: float  # s, from the deciding backend's answer to the combined result
    cpu: float  # s, process CPU of the appraisal minus backend signing in it
    backend_sign: float  # s, CPU the backends spent signing for this appraisal (any mode)
    verifies: int
    sig_run: float  # s, the federation's ES256 ops as they ran inside the appraisal (nan: not seen)
    sig: float  # s, baseline: bare ECDSA ops alone
    jwt: float  # s, baseline: verify_ear + encode_ear alone
    steps: dict[str, float]  # s per wrapped step
    is_final_calls: int
    result_bytes: int


def nanmed(values: Sequence[float]) -> float:
    kept = [v for v in values if not math.isnan(v)]
    return statistics.median(kept) if kept else math.nan


def pct(values: Sequence[float], q: float) -> float:
    """Percentile with linear interpolation between closest ranks (numpy's default)."""
    s = sorted(v for v in values if not math.isnan(v))
    if not s:
        return math.nan
    pos = (len(s) - 1) * q / 100
    lo = math.floor(pos)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (pos - lo)


async def run_config(n: int, wait: Wait, args: argparse.Namespace, rng: random.Random) -> dict[str, Any]:
    k = n // 2 + 1
    need = k if wait == "quorum" else n
    lats = latencies(n, args.min_latency, args.max_latency, args.seed)
    backends = [SimBackend(f"v{i:02d}", lat, SigningKey.generate("ES256")) for i, lat in enumerate(lats)]
    anchors = {b.name: TrustAnchor((b.key.public,)) for b in backends}
    members = [Member(b, anchors[b.name], timeout=10.0, max_age=MAX_AGE, leeway=LEEWAY) for b in backends]
    fed_key = SigningKey.generate("ES256")
    by_name = {b.name: b for b in backends}
    ref = sorted(lats)[need - 1]
    probe = Probe() if args.breakdown else None
    samples: list[Sample] = []
    gc.collect()
    gc.freeze()  # long-lived objects out of the collector's way: per-appraisal collections stay cheap
    async with Federation(members, QuorumPolicy(k=k, n=n, wait=wait), fed_key, deadline=10.0) as fed:
        for i in range(args.warmup + args.runs):
            nonce = rng.randbytes(32)
            for b in backends:
                b.reset()
                if args.backend_sign == "presign":
                    b.presign(nonce)
            presign_cpu = sum(b.sign_s for b in backends)
            if probe is not None:
                probe.clear()
            SIG_OPS.clear()
            gc.collect()
            with probed(probe):
                c0 = time.process_time()
                t0 = time.perf_counter()
                res = await fed.appraise(EVIDENCE, nonce)
                t1 = time.perf_counter()
                c1 = time.process_time()
            inline_sign = sum(b.sign_s for b in backends) - presign_cpu
            for b in backends:
                b.presigned.clear()
            if res.decision.status is not Tier.AFFIRMING:
                raise SystemExit(f"bench broken: n={n} wait={wait} gave {res.decision.explain()}")
            answered = [b for b in backends if b.answered is not None and b.started is not None]
            if len(answered) < need:
                raise SystemExit(f"bench broken: only {len(answered)} of {need} backends answered")
            by_answer = sorted(b.answered or 0.0 for b in answered)
            measured = sorted((b.answered or 0.0) - (b.started or 0.0) for b in answered)
            lateness = [(b.answered or 0.0) - (b.started or 0.0) - b.latency for b in answered]
            ok = [(v.raw, v.backend) for v in res.votes if v.ok and v.raw is not None]
            sig_run = SIG_OPS.seconds if (SIG_OPS.verifies, SIG_OPS.signs) == (len(ok), 1) else math.nan
            sig = baseline_sig([(raw, by_name[name].key) for raw, name in ok], res.token, fed_key)
            jwt_s = baseline_jwt([(raw, anchors[name]) for raw, name in ok], res.ear, fed_key, nonce, res.ear.iat)
            null = math.nan
            if i >= args.warmup and i - args.warmup < args.null_runs:
                gc.collect()
                null = await null_federation(lats, need)
            if i < args.warmup:
                continue
            samples.append(Sample(
                wall=t1 - t0, null=null, ref=ref, ref_measured=measured[need - 1],
                fanout=max(b.started or t0 for b in backends) - t0, late=statistics.median(lateness),
                tail=t1 - by_answer[need - 1], cpu=(c1 - c0) - inline_sign,
                backend_sign=sum(b.sign_s for b in backends), verifies=len(ok), sig_run=sig_run, sig=sig,
                jwt=jwt_s, steps=dict(probe.seconds) if probe is not None else {},
                is_final_calls=probe.calls.get("is_final", 0) if probe is not None else 0,
                result_bytes=len(res.token),
            ))
    return summarize(n, k, wait, lats, samples)


def summarize(n: int, k: int, wait: Wait, lats: Sequence[float], samples: Sequence[Sample]) -> dict[str, Any]:
    ms = 1000.0

    def dist(values: Sequence[float]) -> dict[str, float]:
        kept = [v for v in values if not math.isnan(v)]
        return {"p50": pct(kept, 50), "p90": pct(kept, 90), "p99": pct(kept, 99),
                "max": max(kept) if kept else math.nan, "count": len(kept)}

    over = [(s.wall - s.ref) * ms for s in samples]
    steps: dict[str, float] = {}
    labels = sorted({lab for s in samples for lab in s.steps})
    for lab in labels:
        steps[lab] = statistics.median([s.steps.get(lab, 0.0) for s in samples]) * ms
    if labels:
        steps["loop"] = statistics.median(
            [s.cpu - sum(s.steps.get(lab, 0.0) for lab in TOP_LEVEL) for s in samples]) * ms
    med = statistics.median
    return {
        "n": n, "k": k, "wait": wait, "runs": len(samples),
        "latencies_ms": [round(x * ms, 3) for x in lats],
        "reference": "k-th fastest backend" if wait == "quorum" else "slowest backend",
        "reference_ms": samples[0].ref * ms,
        "combined_ms": dist([s.wall * ms for s in samples]),
        "overhead_ms": dist(over),
        "null_overhead_ms": dist([(s.null - s.ref) * ms for s in samples]),
        "overhead_vs_measured_ms": dist([(s.wall - s.ref_measured) * ms for s in samples]),
        "fanout_ms": dist([s.fanout * ms for s in samples]),
        "late_ms": dist([s.late * ms for s in samples]),
        "tail_ms": dist([s.tail * ms for s in samples]),
        "verifies": {"median": med([s.verifies for s in samples]), "max": max(s.verifies for s in samples)},
        "cpu_ms": dist([s.cpu * ms for s in samples]),
        "backend_sign_ms": med([s.backend_sign * ms for s in samples]),
        "sig_ops_in_run_ms": nanmed([s.sig_run * ms for s in samples]),
        "sig_ops_alone_ms": med([s.sig * ms for s in samples]),
        "jwt_ops_alone_ms": med([s.jwt * ms for s in samples]),
        "ratio_cpu_to_sig_in_run": nanmed([s.cpu / s.sig_run for s in samples if s.sig_run > 0]),
        "ratio_cpu_to_sig_alone": med([s.cpu / s.sig for s in samples if s.sig > 0]),
        "ratio_cpu_to_jwt_alone": med([s.cpu / s.jwt for s in samples if s.jwt > 0]),
        "steps_ms": steps,
        "is_final_calls": med([s.is_final_calls for s in samples]),
        "result_bytes": med([s.result_bytes for s in samples]),
        "samples": {
            "overhead_ms": [round(x, 4) for x in over],
            "null_overhead_ms": [round((s.null - s.ref) * ms, 4) for s in samples if not math.isnan(s.null)],
            "cpu_ms": [round(s.cpu * ms, 4) for s in samples],
            "sig_in_run_ms": [round(s.sig_run * ms, 4) for s in samples],
            "sig_alone_ms": [round(s.sig * ms, 4) for s in samples],
        },
    }


# --------------------------------------------------------------------------- output


def table(results: Sequence[dict[str, Any]], breakdown: bool) -> str:
    lines = [
        "Latency overhead = combined - configured latency of the k-th fastest (quorum) / slowest (all)",
        "backend; null = the same for bare asyncio sleeps (the floor on this machine); ms",
        f"{'n':>3} {'k':>3} {'wait':<6} {'runs':>4} {'ref':>6} {'comb p50':>8} {'ovh p50':>8} {'ovh p99':>8} "
        f"{'null p50':>8} {'null p99':>8} {'fanout':>6} {'late':>6} {'tail':>6}",
    ]
    for r in results:
        lines.append(
            f"{r['n']:>3} {r['k']:>3} {r['wait']:<6} {r['runs']:>4} {r['reference_ms']:>6.2f} "
            f"{r['combined_ms']['p50']:>8.2f} {r['overhead_ms']['p50']:>8.2f} {r['overhead_ms']['p99']:>8.2f} "
            f"{r['null_overhead_ms']['p50']:>8.2f} {r['null_overhead_ms']['p99']:>8.2f} "
            f"{r['fanout_ms']['p50']:>6.2f} {r['late_ms']['p50']:>6.2f} {r['tail_ms']['p50']:>6.2f}")
    lines += [
        "",
        "CPU per appraisal (process_time, backends' signing excluded) vs its signature operations",
        "(verif ES256 verifies + 1 ES256 sign) timed in the run and alone after it; ms, x = cpu/ops",
        f"{'n':>3} {'wait':<6} {'verif':>5} {'cpu p50':>8} {'cpu p99':>8} {'sig run':>8} {'x':>6} "
        f"{'sig alone':>9} {'x':>6} {'jwt alone':>9} {'x':>6} {'bk sign':>8}",
    ]
    for r in results:
        lines.append(
            f"{r['n']:>3} {r['wait']:<6} {r['verifies']['median']:>5.0f} {r['cpu_ms']['p50']:>8.2f} "
            f"{r['cpu_ms']['p99']:>8.2f} {r['sig_ops_in_run_ms']:>8.2f} {r['ratio_cpu_to_sig_in_run']:>6.1f} "
            f"{r['sig_ops_alone_ms']:>9.2f} {r['ratio_cpu_to_sig_alone']:>6.1f} "
            f"{r['jwt_ops_alone_ms']:>9.2f} {r['ratio_cpu_to_jwt_alone']:>6.1f} {r['backend_sign_ms']:>8.2f}")
    if breakdown:
        lines += ["", "Where the CPU goes (median ms per appraisal; provenance and encode are inside combine)",
                  f"{'n':>3} {'wait':<6} " + " ".join(f"{c:>10}" for c in BREAKDOWN_COLUMNS) + f" {'is_final#':>9}"]
        for r in results:
            st = r["steps_ms"]
            lines.append(f"{r['n']:>3} {r['wait']:<6} "
                         + " ".join(f"{st.get(c, 0.0):>10.2f}" for c in BREAKDOWN_COLUMNS)
                         + f" {r['is_final_calls']:>9.0f}")
    return "\n".join(lines)


def jsonable(value: Any) -> Any:
    """NaN (a figure that could not be measured) becomes null: the output stays strict JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    return value


def _git(*argv: str) -> str | None:
    try:
        out = subprocess.run(["git", *argv], capture_output=True, text=True, timeout=10,
                             cwd=Path(__file__).resolve().parent.parent, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip()


def merge_runs(docs: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per configuration, the median over whole runs of every figure (samples: the first run's)."""

    def merge(values: Sequence[Any]) -> Any:
        first = values[0]
        if isinstance(first, dict):
            return {k: merge([v[k] for v in values if isinstance(v, dict) and k in v]) for k in first}
        numbers = [v for v in values if isinstance(v, int | float) and not isinstance(v, bool)]
        if isinstance(first, int | float) and not isinstance(first, bool) and numbers:
            return statistics.median(numbers)
        if first is None and numbers:
            return statistics.median(numbers)
        return math.nan if first is None else first

    configs = [(r["n"], r["wait"]) for r in docs[0]["results"]]
    out = []
    for n, wait in configs:
        same = [r for d in docs for r in d["results"] if (r["n"], r["wait"]) == (n, wait)]
        out.append(merge(same))
    return out


def environment() -> dict[str, Any]:
    versions: dict[str, str | None] = {}
    for dist in ("rats-federation", "cryptography", "pyjwt", "tenacity"):
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            versions[dist] = None
    return {
        "date_utc": datetime.now(UTC).isoformat(timespec="seconds"),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "loadavg": os.getloadavg() if hasattr(os, "getloadavg") else None,
        "versions": versions,
        "git_head": _git("rev-parse", "HEAD"),
        "git_modified": (_git("status", "--porcelain", "--", "federation", "verifiers") or "").splitlines(),
    }


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="Federation overhead over its backends: latency and CPU.")
    p.add_argument("--quick", action="store_true", help="smoke mode: 10 appraisals per config (CI)")
    p.add_argument("--runs", type=int, default=None, help="appraisals per config (default 200, quick 10)")
    p.add_argument("--warmup", type=int, default=None, help="unrecorded appraisals first (default 5, quick 1)")
    p.add_argument("--n", type=int, nargs="+", default=[3, 5, 16, 64], help="backend counts")
    p.add_argument("--wait", choices=["quorum", "all"], nargs="+", default=["quorum", "all"])
    p.add_argument("--min-latency", type=float, default=5.0, help="fastest backend, ms")
    p.add_argument("--max-latency", type=float, default=50.0, help="slowest backend, ms")
    p.add_argument("--null-runs", type=int, default=None,
                   help="null-federation runs per config, interleaved (default: all runs, quick 3)")
    p.add_argument("--seed", type=int, default=1, help="seeds the latency order and the nonces")
    p.add_argument("--backend-sign", choices=["presign", "inline"], default="presign",
                   help="backends sign for the nonce before the appraisal, or inside appraise")
    p.add_argument("--no-breakdown", dest="breakdown", action="store_false",
                   help="do not wrap the engine's steps with timers")
    p.add_argument("--json", type=Path, default=None, metavar="FILE", help="write all figures as JSON")
    p.add_argument("--from", dest="from_json", type=Path, nargs="+", default=None, metavar="FILE",
                   help="measure nothing: re-print the tables from --json files (several: median of the runs)")
    args = p.parse_args(argv)
    if args.runs is None:
        args.runs = 10 if args.quick else 200
    if args.warmup is None:
        args.warmup = 1 if args.quick else 5
    if args.null_runs is None:
        args.null_runs = 3 if args.quick else args.runs
    if args.runs < 1 or args.warmup < 0 or any(n < 1 for n in args.n) \
            or not 0 < args.min_latency <= args.max_latency:
        p.error("runs and n must be positive, 0 < min-latency <= max-latency")
    return args


async def main_async(args: argparse.Namespace) -> list[dict[str, Any]]:
    rng = random.Random(args.seed)
    results = []
    gc_was_enabled = gc.isenabled()
    gc.disable()  # collected between appraisals, outside the timed windows
    try:
        for n in args.n:
            for wait in args.wait:
                results.append(await run_config(n, wait, args, rng))
    finally:
        gc.unfreeze()
        if gc_was_enabled:
            gc.enable()
    return results


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.from_json:
        docs = [json.loads(f.read_text()) for f in args.from_json]
        for f, d in zip(args.from_json, docs, strict=True):
            e = d["environment"]
            print(f"{f}: {e['date_utc']}, {d['settings']['runs']} appraisals/config, git {str(e['git_head'])[:12]}, "
                  f"load {e['loadavg']}")
        print(f"\nmedian of {len(docs)} run(s)\n" if len(docs) > 1 else "")
        print(table(merge_runs(docs), any(d["settings"]["breakdown"] for d in docs)))
        return 0
    env = environment()
    started = time.perf_counter()
    results = asyncio.run(main_async(args))
    elapsed = time.perf_counter() - started
    env["loadavg_end"] = os.getloadavg() if hasattr(os, "getloadavg") else None
    load = ", ".join(f"{x:.2f}" for x in env["loadavg"] or ())
    print(f"rats-federation bench/overhead.py: {args.runs} appraisals/config (+{args.warmup} warm-up), "
          f"latencies {args.min_latency:g}-{args.max_latency:g} ms, k = n//2+1, backends {args.backend_sign}, "
          f"Python {env['python']}, {env['cpus']} CPUs, load {load}\n")
    print(table(results, args.breakdown))
    print(f"\n{elapsed:.1f} s wall")
    if args.json is not None:
        doc = {"benchmark": "bench/overhead.py", "argv": sys.argv[1:], "environment": env,
               "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
               "elapsed_s": elapsed, "results": results}
        args.json.write_text(json.dumps(jsonable(doc), indent=1, allow_nan=False) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
