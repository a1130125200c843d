"""Soak: a fixed-rate, open-loop load on a federator over three verifier processes, for minutes,
with resident memory at start and end and an optional kill and restart of one verifier.

Issue 6, item 4 and its "must show": a 5-minute run at a stated rate with zero errors and resident
memory growth under 10 %, and a verifier process killed and restarted during the run without a
lost request (each request gets an answer, degraded or not).

The shape is ``bench/service_load.py``'s ``remote`` target: three verifier-role ``ratsfed serve``
processes (local PSA appraisers of the operators acme, globex and initech, each its own key from
``ratsfed keys generate``, over Veraison's ``corim-psa-valid.cbor``) and one federator process
whose three backends are ``kind = "veraison"`` clients of them, each pinned to its verifier's
``public.jwk``: k = 2 of 3, veto, ``wait = "all"``, distinct operators, ``deadline = 15``, each
backend ``timeout = 10``, ``retries`` and circuit breaker as shipped (1 retry; open after 5
failures for 30 s, ``--breaker-cooldown`` changes the latter), default ``[server]`` limits, logs
at ``info`` as shipped. Every process listens on 127.0.0.1 only.

The client (this process, one aiohttp session) is **open loop**: request i is sent at
``start + i / rate`` whether or not earlier ones were answered, each in its own task, so a slow
or stalled server meets the same arrival rate instead of slowing the client down (a closed loop
would hide a stall as lower throughput). Each request is ``POST /v1/appraise?nonce=<hex>`` with a
fresh random 32-byte nonce (the service refuses a nonce it has already appraised: replay cache,
409) and Veraison's ``psa.good`` Evidence bound to it: the claims of ``claims/psa.good.json`` with
that nonce, signed by Veraison's test attestation key ``keys/ec.p256.jwk`` (the key of
``corim-psa-valid.cbor``), like ``psa.good.cose`` but fresh, so every honest answer is
``affirming``; an answer for another nonce counts as an error. Latency is measured from the
request's *scheduled* time to the whole answer read (so client-side lag is counted, not hidden: no
coordinated omission). A request that gets no HTTP answer within ``REQUEST_TIMEOUT`` (30 s; the
federation's deadline is 15 s) is a timeout.

Reported, for the measured part of the run (after ``--warmup`` seconds at the same rate, not
recorded):

* requests scheduled and answered, achieved rate, p50/p99/p99.9/max latency (nearest rank),
  the client's send lag (how late the scheduler sent requests);
* every answer by ``<HTTP code> <status>``; ``errors`` = transport errors, timeouts and answers
  other than 200 with a ``status``; ``lost`` = scheduled minus answered;
* ``degraded``: 200 answers in which some backend's vote was not ``ok`` (each answer's
  ``votes``), and the votes by backend and outcome; with a kill, the window in which the killed
  backend's votes were not ``ok`` (from the scheduled times of the requests);
* resident memory (``VmRSS`` of ``/proc/<pid>/status``) of every server process after the
  warm-up and at the end, the growth in %, and the peak (sampled every ``--sample`` seconds);
  a restarted process is reported with its predecessor's start and its own end (no growth
  figure: it is another process);
* the federator's ``/metrics`` at the end (backend outcomes, refused requests);
* a timeline, one row per ``--bucket`` seconds of scheduled time: answers, errors, latency, the
  client's requests in flight, and the CPU of the whole machine (``/proc/stat``), of this run's
  processes (servers from ``/proc/<pid>/stat`` plus this client) and of everything else, so that a
  latency spike caused by neighbours on a shared machine can be told from one the service caused.

``--kill-restart NAME@T`` (NAME: acme, globex or initech) sends SIGKILL to that verifier's
process group T seconds into the measured run and, ``--restart-after`` seconds later, starts it
again with the same config on the **same port**, so the federator's backend URL stays valid.

The run exits 1 unless every scheduled request was answered 200 with a status, no transport
error or timeout occurred, the restart (if any) succeeded, and (unless ``--max-rss-growth 0``)
every server process that lived through the run grew by less than ``--max-rss-growth`` % (10 by
default; not checked with ``--quick`` unless given). Every process is started in its own process
group and stopped at the end (SIGTERM, SIGKILL after 10 s), also on Ctrl-C, SIGTERM or an
exception; the temporary folder (configs, keys, logs) is removed unless ``--keep``.

Usage::

    .venv/bin/python bench/soak.py                                   # 300 s at 20 req/s
    .venv/bin/python bench/soak.py --kill-restart globex@120 --json soak.json
    .venv/bin/python bench/soak.py --quick --kill-restart globex@8   # CI: 20 s
    .venv/bin/python bench/soak.py --duration 3600 --rate 10         # a longer soak
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from service_load import (
    MEDIA_TYPE,
    OPERATORS,
    PSA,
    Attester,
    _terminate,
    environment,
    generate_key,
    listening_url,
    local_entry,
    ratsfed,
    spawn_logged,
    stop_groups,
)

STARTUP_TIMEOUT = 60.0  # seconds for a server to print its URL
STOP_TIMEOUT = 10.0  # seconds for a process to exit after SIGTERM before SIGKILL
REQUEST_TIMEOUT = 30.0  # seconds for one request (the federator's deadline is 15 s)
DEADLINE = 15  # [federation] deadline of the federator, seconds
RESTART_ATTEMPTS = 10  # binds of the restarted verifier (the port may be briefly unavailable)
MAX_CONNECTIONS = 256  # client connections; beyond, requests wait for one (counted in their latency)
CLK_TCK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


# --------------------------------------------------------------------------- processes


def cpu_seconds(pid: int) -> float | None:
    """user + system CPU of *pid* so far, from /proc/<pid>/stat."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def machine_busy_seconds() -> float | None:
    """CPU-seconds the whole machine spent busy so far (every core, every process), from /proc/stat."""
    try:
        fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    except (OSError, ValueError, IndexError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return (sum(fields[:8]) - idle) / CLK_TCK


def rss_kib(pid: int) -> tuple[int, int] | None:
    """(VmRSS, VmHWM) of *pid* in KiB, from /proc (None where there is no /proc or no process)."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    values: dict[str, str] = dict(re.findall(r"^(VmRSS|VmHWM):\s+(\d+) kB", text, re.M))
    if "VmRSS" not in values:
        return None
    return int(values["VmRSS"]), int(values.get("VmHWM", values["VmRSS"]))


@dataclass
class Server:
    """One ``ratsfed serve`` process (its own process group); ``generation`` counts restarts."""

    name: str
    config: Path
    proc: subprocess.Popen[bytes]
    stdout: Path
    stderr: Path
    generation: int = 0
    url: str = ""
    rss_start: int | None = None  # KiB, after the warm-up
    rss_peak: int = 0  # KiB, highest sample
    history: list[tuple[float, int, int]] = field(default_factory=list)  # (t, pid, RSS KiB)

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])


class Processes:
    def __init__(self, folder: Path, log_level: str) -> None:
        self.folder = folder
        self.log_level = log_level
        self.servers: dict[str, Server] = {}
        self.retired: list[subprocess.Popen[bytes]] = []  # killed predecessors, reaped

    def spawn(self, name: str, config: Path, port: int = 0, generation: int = 0) -> Server:
        argv = [*ratsfed(), "serve", "--config", str(config), "--host", "127.0.0.1", "--port", str(port),
                "--log-level", self.log_level]
        proc, out, err = spawn_logged(self.folder, f"{name}.{generation}", argv)
        server = Server(name, config, proc, out, err, generation)
        old = self.servers.get(name)
        if old is not None:
            server.rss_start, server.rss_peak, server.history = old.rss_start, old.rss_peak, old.history
        self.servers[name] = server
        return server

    @staticmethod
    def listening(server: Server) -> str | None:
        """The URL once the server printed it; raise if it exited."""
        url = listening_url(server.stdout)
        if url:
            server.url = url
            return url
        if server.proc.poll() is not None:
            tail = server.stderr.read_text(errors="replace")[-1500:]
            raise RuntimeError(f"{server.name} exited {server.proc.returncode} before listening: {tail}")
        return None

    def wait_ready(self, servers: Sequence[Server]) -> None:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        for s in servers:
            while self.listening(s) is None:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{s.name} did not print its URL within {STARTUP_TIMEOUT:g} s")
                time.sleep(0.05)

    def kill(self, name: str) -> Server:
        """SIGKILL the process group of *name*, as a crash would; reaped before returning."""
        s = self.servers[name]
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(s.proc.pid, signal.SIGKILL)
        s.proc.wait(timeout=STOP_TIMEOUT)
        self.retired.append(s.proc)
        return s

    def stop_all(self) -> list[str]:
        """Stop every live server's process group (:func:`stop_groups`); the exit codes."""
        return stop_groups([(s.name, s.proc) for s in self.servers.values()])

    def pids(self) -> list[int]:
        return [s.proc.pid for s in self.servers.values()] + [p.pid for p in self.retired]


def alive(pid: int) -> bool:
    """Whether *pid* or its process group still exists (ours: we started it in its own session)."""
    for probe in (os.kill, os.killpg):
        try:
            probe(pid, 0)
        except (ProcessLookupError, PermissionError):
            continue
        return True
    return False


# --------------------------------------------------------------------------- configs


def write_configs(folder: Path, corim: Path) -> list[Path]:
    """Keys (``ratsfed keys generate``) and the three verifiers' configs."""
    for name in ("federation", *OPERATORS):
        generate_key(folder / "keys" / name)
    paths = []
    for op in OPERATORS:
        path = folder / f"verifier-{op}.toml"
        path.write_text(f'[federation]\nid = "{op}-verifier"\n\n[server]\nrole = "verifier"\nport = 0\n'
                        + local_entry(f"{op}-local", op, corim, folder / "keys" / op / "private.pem"))
        paths.append(path)
    return paths


def federator_config(folder: Path, urls: Sequence[str], breaker_cooldown: float | None) -> Path:
    breaker = "" if breaker_cooldown is None else f", breaker_cooldown = {breaker_cooldown:g}"
    entries = "".join(
        f'\n[[verifiers]]\nname = "{op}"\nkind = "veraison"\noperator = "{op}"\n'
        f'trust_anchor = "{folder / "keys" / op / "public.jwk"}"\ntimeout = 10\n'
        f'options = {{ url = "{url}"{breaker} }}\n' for op, url in zip(OPERATORS, urls, strict=True))
    path = folder / "federator.toml"
    key = folder / "keys" / "federation" / "private.pem"
    path.write_text(f'[federation]\nid = "bench-soak"\nsigning_key = "{key}"\n'
                    f'deadline = {DEADLINE}\n\n[quorum]\nk = 2\nveto = true\nwait = "all"\ndistinct_operators = true\n'
                    f'\n[server]\nrole = "federator"\nport = 0\n' + entries)
    return path


# --------------------------------------------------------------------------- the run


@dataclass
class Answer:
    t: float  # scheduled time, seconds since the start of the measured run
    latency: float  # seconds from the scheduled time to the whole answer read
    lag: float  # seconds the request was sent after its scheduled time
    outcome: str  # "<code> <status>" or "error <type>"
    votes: dict[str, str]  # backend -> vote outcome (200 answers of a federator)
    in_flight: int  # requests of the client awaiting an answer when this one was sent (itself included)
    vote_ms: dict[str, float] = field(default_factory=dict)  # backend -> its vote's latency in the federator


@dataclass
class Run:
    rate: float
    duration: float
    scheduled: int = 0
    answers: list[Answer] = field(default_factory=list)
    wall: float = 0.0
    events: list[dict[str, Any]] = field(default_factory=list)
    restart_failed: str | None = None
    in_flight: int = 0
    samples: list[dict[str, Any]] = field(default_factory=list)  # CPU and load, one per sampler tick

    @property
    def statuses(self) -> Counter[str]:
        return Counter(a.outcome for a in self.answers)

    @property
    def answered(self) -> int:
        """Answers 200 with a status (whatever the status): every request must get one."""
        return sum(1 for a in self.answers
                   if a.outcome.startswith("200 ") and a.outcome not in ("200 not-json", "200 wrong-nonce"))

    @property
    def errors(self) -> int:
        return len(self.answers) - self.answered

    @property
    def lost(self) -> int:
        return self.scheduled - self.answered

    @property
    def degraded(self) -> int:
        return sum(1 for a in self.answers if any(v != "ok" for v in a.votes.values()))

    def pct(self, p: float, attr: str = "latency") -> float:
        """Nearest-rank percentile in ms."""
        values: list[float] = sorted(getattr(a, attr) for a in self.answers)
        if not values:
            return math.nan
        return 1000 * values[min(len(values) - 1, max(0, math.ceil(p / 100 * len(values)) - 1))]

    def votes(self) -> dict[str, Counter[str]]:
        out: dict[str, Counter[str]] = defaultdict(Counter)
        for a in self.answers:
            for name, outcome in a.votes.items():
                out[name][outcome] += 1
        return dict(out)

    def not_ok_window(self, backend: str) -> dict[str, Any] | None:
        """When *backend*'s votes were not ok: first and last scheduled time, how many, and how many
        ok votes it gave in answers to requests scheduled after that window (back in service)."""
        bad = [a.t for a in self.answers if a.votes.get(backend, "ok") != "ok"]
        if not bad:
            return None
        last = max(bad)
        ok_after = sum(1 for a in self.answers if a.t > last and a.votes.get(backend) == "ok")
        return {"first_s": round(min(bad), 3), "last_s": round(last, 3), "not_ok": len(bad), "ok_after": ok_after}


def classify(code: int, body: bytes, nonce: bytes) -> tuple[str, dict[str, str], dict[str, float]]:
    """``<code> <status>`` (or the problem's title), the votes by backend and their latencies; an
    answer that is not JSON or not for *nonce* is ``<code> not-json`` / ``200 wrong-nonce``
    (counted as errors)."""
    try:
        doc = json.loads(body)
    except ValueError:
        return f"{code} not-json", {}, {}
    if not isinstance(doc, dict):
        return f"{code} not-json", {}, {}
    if code != 200:
        return f"{code} {doc.get('title') or 'problem'}", {}, {}
    if doc.get("nonce") != nonce.hex():
        return "200 wrong-nonce", {}, {}
    votes = [v for v in doc.get("votes") or () if isinstance(v, dict)]
    outcomes = {str(v.get("name")): str(v.get("outcome")) for v in votes}
    latency = {str(v.get("name")): float(v["latency_ms"]) for v in votes
               if isinstance(v.get("latency_ms"), int | float)}
    status = doc.get("status")
    return (f"200 {status}" if isinstance(status, str) else "200 not-json"), outcomes, latency


async def open_loop(session: aiohttp.ClientSession, url: str, attester: Attester, rate: float, seconds: float,
                    run: Run | None, start: float | None = None) -> None:
    """Send ``rate`` requests per second for *seconds*, each at its scheduled time in its own task
    (the first at *start*, loop time; default now), then wait for every answer."""
    loop = asyncio.get_running_loop()
    headers = {"Content-Type": MEDIA_TYPE, "Accept": "application/json"}
    n = round(seconds * rate)
    origin = loop.time() if start is None else start
    tasks: set[asyncio.Task[None]] = set()

    async def one(due: float) -> None:
        lag = loop.time() - due
        votes: dict[str, str] = {}
        vote_ms: dict[str, float] = {}
        if run is not None:
            run.in_flight += 1
        in_flight = run.in_flight if run is not None else 0
        nonce = os.urandom(32)
        try:
            async with session.post(f"{url}?nonce={nonce.hex()}", data=attester.evidence(nonce),
                                    headers=headers) as resp:
                body = await resp.read()
            outcome, votes, vote_ms = classify(resp.status, body, nonce)
        except (aiohttp.ClientError, TimeoutError) as exc:
            outcome = f"error {type(exc).__name__}"
        if run is not None:
            run.in_flight -= 1
            run.answers.append(Answer(due - origin, loop.time() - due, lag, outcome, votes, in_flight, vote_ms))

    for i in range(n):
        due = origin + i / rate
        delay = due - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        task = loop.create_task(one(due))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
        if run is not None:
            run.scheduled += 1
    while tasks:
        await asyncio.gather(*list(tasks))


async def kill_restart(procs: Processes, name: str, at: float, after: float, start: float, run: Run) -> None:
    """SIGKILL *name* at *at* seconds after *start* (loop time); restart it on its port *after* s later."""
    loop = asyncio.get_running_loop()
    await asyncio.sleep(max(0.0, start + at - loop.time()))
    old = procs.servers[name]
    port, pid = old.port, old.proc.pid
    await loop.run_in_executor(None, procs.kill, name)
    run.events.append({"event": "killed", "process": name, "pid": pid, "port": port,
                       "t": round(loop.time() - start, 3)})
    await asyncio.sleep(after)
    for attempt in range(1, RESTART_ATTEMPTS + 1):
        new = await loop.run_in_executor(None, procs.spawn, name, old.config, port, old.generation + attempt)
        spawned = loop.time()
        try:
            while procs.listening(new) is None:
                if loop.time() - spawned > STARTUP_TIMEOUT:
                    raise RuntimeError(f"{name} did not print its URL within {STARTUP_TIMEOUT:g} s")
                await asyncio.sleep(0.05)
        except RuntimeError as exc:
            # Most likely the port was not free yet (e.g. held by a connection): retry the bind.
            run.events.append({"event": "restart-failed", "process": name, "attempt": attempt,
                               "t": round(loop.time() - start, 3), "why": str(exc)[-300:]})
            await loop.run_in_executor(None, new.proc.wait)
            procs.retired.append(new.proc)
            await asyncio.sleep(0.5)
            continue
        run.events.append({"event": "restarted", "process": name, "pid": new.proc.pid, "port": new.port,
                           "t": round(loop.time() - start, 3), "listening_after_s": round(loop.time() - spawned, 3),
                           "attempt": attempt})
        if new.port != port:
            run.restart_failed = f"{name} came back on port {new.port}, not {port}"
        return
    run.restart_failed = f"{name} could not be restarted on port {port}"


def sample_rss(procs: Processes, t: float) -> None:
    for s in procs.servers.values():
        values = rss_kib(s.proc.pid)
        if values is not None:
            s.history.append((round(t, 1), s.proc.pid, values[0]))
            s.rss_peak = max(s.rss_peak, values[0])


async def sampler(procs: Processes, start: float, every: float, run: Run) -> None:
    """Every *every* seconds: each server's RSS, and over the last interval the cores the whole
    machine was busy, the cores this run's processes used (servers + this client), the load."""
    loop = asyncio.get_running_loop()
    last: dict[int, float] = {}
    prev: tuple[float, float | None, float] | None = None
    while True:
        now = loop.time() - start
        sample_rss(procs, now)
        pids = [s.proc.pid for s in procs.servers.values()]
        cpu = {pid: cpu_seconds(pid) for pid in pids}
        ours = sum(c - last.get(pid, c) for pid, c in cpu.items() if c is not None)
        last = {pid: c for pid, c in cpu.items() if c is not None}
        client, machine = time.process_time(), machine_busy_seconds()
        if prev is not None and now > prev[0]:
            dt = now - prev[0]
            busy = None if machine is None or prev[1] is None else (machine - prev[1]) / dt
            mine = (ours + client - prev[2]) / dt
            run.samples.append({"t": round(now, 1), "machine_cores_busy": busy, "run_cores_busy": mine,
                                "others_cores_busy": None if busy is None else max(0.0, busy - mine),
                                "load1": os.getloadavg()[0] if hasattr(os, "getloadavg") else None})
        prev = (now, machine, client)
        await asyncio.sleep(every)


async def metrics_of(session: aiohttp.ClientSession, base: str) -> dict[str, float]:
    async with session.get(f"{base}/metrics") as resp:
        text = await resp.text()
    wanted = ("ratsfed_backend_outcomes_total", "ratsfed_rejected_requests_total", "ratsfed_appraisals_total",
              "ratsfed_quorum_failures_total")
    out: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith(wanted):
            name, _, value = line.rpartition(" ")
            out[name] = float(value)
    return out


async def soak(args: argparse.Namespace, procs: Processes, federator: Server, attester: Attester,
               report: dict[str, Any]) -> Run:
    url = f"{federator.url}/v1/appraise"
    run = Run(args.rate, args.duration)
    connector = aiohttp.TCPConnector(limit=MAX_CONNECTIONS)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=REQUEST_TIMEOUT)) \
            as session:
        nonce = os.urandom(32)
        async with session.post(f"{url}?nonce={nonce.hex()}", data=attester.evidence(nonce),
                                headers={"Content-Type": MEDIA_TYPE}) as resp:
            first = classify(resp.status, await resp.read(), nonce)[0]
        if first != "200 affirming":
            raise RuntimeError(f"the first appraisal was {first!r}, not 200 affirming")
        if args.warmup:
            await open_loop(session, url, attester, args.rate, args.warmup, None)
        loop = asyncio.get_running_loop()
        for s in procs.servers.values():
            values = rss_kib(s.proc.pid)
            s.rss_start = values[0] if values else None
            s.rss_peak = values[0] if values else 0
        origin = loop.time() + 0.05  # the first request's scheduled time: t = 0 of every figure
        helpers = [loop.create_task(sampler(procs, origin, args.sample, run))]
        if args.kill_restart:
            name, at = args.kill_restart
            helpers.append(loop.create_task(kill_restart(procs, name, at, args.restart_after, origin, run)))
        t0 = time.perf_counter()
        try:
            await open_loop(session, url, attester, args.rate, args.duration, run, origin)
            run.wall = time.perf_counter() - t0
            if len(helpers) > 1 and not helpers[1].done():
                await asyncio.wait_for(helpers[1], STARTUP_TIMEOUT)  # a kill scheduled late: let it finish
        finally:
            for h in helpers:
                h.cancel()
            await asyncio.gather(*helpers, return_exceptions=True)
        sample_rss(procs, loop.time() - origin)
        report["metrics"] = await metrics_of(session, federator.url)
    return run


# --------------------------------------------------------------------------- report


def rss_rows(procs: Processes, killed: str | None) -> list[dict[str, Any]]:
    rows = []
    for s in procs.servers.values():
        end = s.history[-1][2] if s.history else None
        restarted = s.name == killed
        growth = None
        if not restarted and s.rss_start and end is not None:
            growth = 100.0 * (end - s.rss_start) / s.rss_start
        rows.append({"process": s.name, "pid": s.proc.pid, "restarted": restarted, "rss_start_kib": s.rss_start,
                     "rss_end_kib": end, "rss_peak_kib": s.rss_peak or None, "growth_pct": growth,
                     "samples": s.history})
    return rows


def timeline(run: Run, procs: Processes, bucket: float) -> list[dict[str, Any]]:
    """Per *bucket* seconds of scheduled time: answers, errors, latency, the client's requests in
    flight, the CPU the machine and this run used, and the federator's RSS at the bucket's end."""
    rows = []
    fed = procs.servers.get("federator")
    for i in range(math.ceil(run.duration / bucket)):
        lo, hi = i * bucket, (i + 1) * bucket
        part = Run(run.rate, bucket, answers=[a for a in run.answers if lo <= a.t < hi])
        samples = [x for x in run.samples if lo < x["t"] <= hi + 1e-6]

        def mean(key: str, samples: list[dict[str, Any]] = samples) -> float | None:
            values = [x[key] for x in samples if x[key] is not None]
            return sum(values) / len(values) if values else None

        rss = [kib for t, _, kib in (fed.history if fed else []) if t <= hi + 1e-6]
        rows.append({"from_s": lo, "to_s": hi, "answers": len(part.answers), "errors": part.errors,
                     "affirming": part.statuses.get("200 affirming", 0), "degraded": part.degraded,
                     "p50_ms": part.pct(50), "p99_ms": part.pct(99), "max_ms": part.pct(100),
                     "max_in_flight": max((a.in_flight for a in part.answers), default=0),
                     "machine_cores_busy": mean("machine_cores_busy"), "run_cores_busy": mean("run_cores_busy"),
                     "others_cores_busy": mean("others_cores_busy"), "load1": mean("load1"),
                     "federator_rss_kib": rss[-1] if rss else None})
    return rows


def print_timeline(rows: list[dict[str, Any]]) -> None:
    def num(value: float | None, fmt: str) -> str:
        return "-" if value is None or (isinstance(value, float) and math.isnan(value)) else format(value, fmt)

    print("\n| scheduled s | answers | errors | affirming | degraded | p50 ms | p99 ms | max ms | max in flight "
          "| machine cores busy | this run's | others' | load | federator RSS MiB |\n|---|" + "---:|" * 14)
    for r in rows:
        rss = None if r["federator_rss_kib"] is None else r["federator_rss_kib"] / 1024
        print(f"| {r['from_s']:g}-{r['to_s']:g} | {r['answers']} | {r['errors']} | {r['affirming']} | {r['degraded']} "
              f"| {num(r['p50_ms'], '.1f')} | {num(r['p99_ms'], '.1f')} | {num(r['max_ms'], '.1f')} "
              f"| {r['max_in_flight']} | {num(r['machine_cores_busy'], '.2f')} | {num(r['run_cores_busy'], '.2f')} "
              f"| {num(r['others_cores_busy'], '.2f')} | {num(r['load1'], '.1f')} | {num(rss, '.1f')} |")


def print_report(run: Run, rows: list[dict[str, Any]], metrics: dict[str, float], killed: str | None) -> None:
    n = len(run.answers)
    print(f"\nscheduled {run.scheduled:,} requests at {run.rate:g}/s over {run.duration:g} s; "
          f"{n:,} finished in {run.wall:.1f} s ({n / run.wall if run.wall else 0:.2f}/s)")
    print(f"answered 200 with a status: {run.answered:,}; errors (transport, timeout, not 200): {run.errors}; "
          f"lost: {run.lost}")
    print("statuses: " + ", ".join(f"{k}: {v:,}" for k, v in run.statuses.most_common()))
    print(f"degraded (some vote not ok): {run.degraded:,}; votes by backend: " + "; ".join(
        f"{b}: " + ", ".join(f"{o} {c:,}" for o, c in sorted(cs.items())) for b, cs in sorted(run.votes().items())))
    print(f"latency ms: p50 {run.pct(50):.1f}, p99 {run.pct(99):.1f}, p99.9 {run.pct(99.9):.1f}, "
          f"max {run.pct(100):.1f}; send lag ms: p99 {run.pct(99, 'lag'):.1f}, max {run.pct(100, 'lag'):.1f}")
    for e in run.events:
        print("event: " + ", ".join(f"{k}={v}" for k, v in e.items()))
    if killed:
        window = run.not_ok_window(killed)
        if window:
            after = (f"ok in all {window['ok_after']:,} answers to requests scheduled after that"
                     if window["ok_after"] else "not back in service before the end of the run")
            print(f"{killed}'s votes not ok for requests scheduled from {window['first_s']:.1f} s to "
                  f"{window['last_s']:.1f} s ({window['not_ok']:,} answers); {after}")
    print("\n| process | pid | RSS start MiB | RSS end MiB | growth | peak MiB |\n|---|---:|---:|---:|---:|---:|")
    for r in rows:
        def mib(kib: int | None) -> str:
            return "-" if kib is None else f"{kib / 1024:.1f}"
        growth = "restarted" if r["restarted"] else ("-" if r["growth_pct"] is None else f"{r['growth_pct']:+.1f} %")
        print(f"| {r['process']} | {r['pid']} | {mib(r['rss_start_kib'])} | {mib(r['rss_end_kib'])} | {growth} "
              f"| {mib(r['rss_peak_kib'])} |")
    votes = {k: v for k, v in metrics.items() if k.startswith("ratsfed_backend_outcomes_total")}
    rejected = {k: v for k, v in metrics.items() if k.startswith("ratsfed_rejected_requests_total") and v}
    print("\nfederator /metrics (whole life, warm-up included): "
          + ", ".join(f"{k.split('{', 1)[1].rstrip('}')} {v:,.0f}" for k, v in sorted(votes.items()) if v)
          + f"; refused requests: {rejected or 'none'}")


def parse_kill(value: str) -> tuple[str, float]:
    name, sep, at = value.partition("@")
    name = name.removeprefix("verifier-")
    if not sep or name not in OPERATORS:
        raise argparse.ArgumentTypeError(f"expected NAME@SECONDS with NAME one of {', '.join(OPERATORS)}")
    try:
        t = float(at)
    except ValueError as exc:
        raise argparse.ArgumentTypeError("the time after @ must be seconds") from exc
    return name, t


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="Open-loop soak of a federator over three verifier processes.")
    p.add_argument("--quick", action="store_true", help="CI: 20 s measured after 3 s of warm-up")
    p.add_argument("--rate", type=float, default=20.0, help="requests per second (default 20)")
    p.add_argument("--duration", type=float, default=None, help="measured seconds (default 300, quick 20)")
    p.add_argument("--warmup", type=float, default=None, help="unrecorded seconds at the same rate first "
                                                              "(default 10, quick 3)")
    p.add_argument("--kill-restart", type=parse_kill, metavar="NAME@T",
                   help="SIGKILL verifier NAME T seconds into the measured run, then restart it on its port")
    p.add_argument("--restart-after", type=float, default=3.0, help="seconds between the kill and the restart")
    p.add_argument("--breaker-cooldown", type=float, default=None,
                   help="the federator's circuit-breaker cool-down per backend (default: as shipped, 30 s)")
    p.add_argument("--max-rss-growth", type=float, default=None,
                   help="fail when a server process that lived through the run grew by this %% or more "
                        "(default 10; with --quick not checked unless given; 0 = not checked)")
    p.add_argument("--sample", type=float, default=5.0, help="seconds between RSS and CPU samples")
    p.add_argument("--bucket", type=float, default=None, help="seconds per row of the timeline (default 30, quick 5)")
    p.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    p.add_argument("--vectors", type=Path, default=PSA, help="Veraison's PSA vectors folder")
    p.add_argument("--json", type=Path, help="also write every figure (and each RSS sample) to this file")
    p.add_argument("--answers", action="store_true", help="also write every answer to --json (scheduled time, "
                   "latency, outcome, votes and their latencies)")
    p.add_argument("--keep", action="store_true", help="keep the temporary folder (configs, keys, logs)")
    args = p.parse_args(argv)
    if args.duration is None:
        args.duration = 20.0 if args.quick else 300.0
    if args.warmup is None:
        args.warmup = 3.0 if args.quick else 10.0
    if args.bucket is None:
        args.bucket = 5.0 if args.quick else 30.0
    if args.max_rss_growth is None:
        args.max_rss_growth = 0.0 if args.quick else 10.0
    if not 0 < args.rate <= 1000 or not 0 < args.duration <= 86_400 or not 0 <= args.warmup <= 600:
        p.error("--rate must be in (0, 1000], --duration in (0, 86400] and --warmup in [0, 600]")
    if args.kill_restart and not 0 <= args.kill_restart[1] < args.duration:
        p.error("the kill time must fall within --duration")
    if not 0 < args.restart_after <= 60 or not 0.5 <= args.sample <= 600 or not 1 <= args.bucket <= 3600:
        p.error("--restart-after must be in (0, 60], --sample in [0.5, 600] and --bucket in [1, 3600]")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    attester = Attester(args.vectors)
    corim = (args.vectors / "endorsements" / "corim-psa-valid.cbor").resolve()
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _terminate)
    env = environment()
    folder = Path(tempfile.mkdtemp(prefix="ratsfed-soak-"))
    procs = Processes(folder, args.log_level)
    report: dict[str, Any] = {"benchmark": "bench/soak.py", "argv": list(sys.argv[1:]), "environment": env}
    killed = args.kill_restart[0] if args.kill_restart else None
    started = time.perf_counter()
    try:
        configs = write_configs(folder, corim)
        verifiers = [procs.spawn(op, cfg) for op, cfg in zip(OPERATORS, configs, strict=True)]
        procs.wait_ready(verifiers)
        federator = procs.spawn("federator", federator_config(folder, [v.url for v in verifiers],
                                                              args.breaker_cooldown))
        procs.wait_ready([federator])
        kill = f", kill -9 {killed} at {args.kill_restart[1]:g} s and restart after {args.restart_after:g} s" \
            if killed else ""
        print(f"rats-federation bench/soak.py: POST /v1/appraise (psa.good, a fresh nonce each) open loop at "
              f"{args.rate:g} req/s "
              f"for {args.duration:g} s after {args.warmup:g} s of warm-up{kill}; federator {federator.url} over "
              f"{', '.join(f'{v.name} {v.url}' for v in verifiers)}; Python {env['python']}, {env['cpus']} CPUs, "
              f"load {', '.join(f'{x:.2f}' for x in env['loadavg'] or ())}, {env['date_utc']}", flush=True)
        run = asyncio.run(soak(args, procs, federator, attester, report))
        rows = rss_rows(procs, killed)
        steps = timeline(run, procs, args.bucket)
    except KeyboardInterrupt:
        print(f"\ninterrupted; servers stopped: {', '.join(procs.stop_all())}", file=sys.stderr)
        return 130
    finally:
        exits = procs.stop_all()
        left = [pid for pid in procs.pids() if alive(pid)]
        if args.keep:
            print(f"kept {folder}")
        else:
            shutil.rmtree(folder, ignore_errors=True)
    env["loadavg_end"] = os.getloadavg() if hasattr(os, "getloadavg") else None
    print_timeline(steps)
    print_report(run, rows, report.get("metrics", {}), killed)
    problems = []
    if run.lost or run.errors:
        problems.append(f"{run.lost} lost and {run.errors} errors")
    if run.restart_failed:
        problems.append(run.restart_failed)
    if args.max_rss_growth > 0:
        grown = [f"{r['process']} {r['growth_pct']:+.1f} %" for r in rows
                 if r["growth_pct"] is not None and r["growth_pct"] >= args.max_rss_growth]
        if grown:
            problems.append(f"RSS grew by {args.max_rss_growth:g} % or more: {', '.join(grown)}")
    if left:
        problems.append(f"processes still alive: {left}")
    elapsed = time.perf_counter() - started
    print(f"servers stopped: {', '.join(exits)}; none left alive: {not left}; {elapsed:.1f} s wall; load at the end "
          f"{', '.join(f'{x:.2f}' for x in env['loadavg_end'] or ())}")
    if args.json is not None:
        latency = {k: run.pct(p) for k, p in (("p50_ms", 50), ("p99_ms", 99), ("p999_ms", 99.9), ("max_ms", 100))}
        report.update(
            settings={k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
            rate=run.rate, duration_s=run.duration, wall_s=run.wall, scheduled=run.scheduled,
            finished=len(run.answers), answered=run.answered, errors=run.errors, lost=run.lost,
            degraded=run.degraded, statuses=dict(run.statuses), votes={k: dict(v) for k, v in run.votes().items()},
            latency=latency, send_lag_ms={"p99": run.pct(99, "lag"), "max": run.pct(100, "lag")},
            events=run.events, killed=killed,
            killed_not_ok_window=run.not_ok_window(killed) if killed else None,
            processes=rows, timeline=steps, cpu_samples=run.samples, exits=exits, left_alive=left,
            elapsed_s=elapsed, problems=problems)
        if args.answers:
            report["answers"] = [{"t": round(a.t, 3), "ms": round(1000 * a.latency, 1), "outcome": a.outcome,
                                  "in_flight": a.in_flight, "votes": a.votes, "vote_ms": a.vote_ms}
                                 for a in run.answers]
        args.json.write_text(json.dumps(report, indent=1) + "\n")
    if problems:
        print("FAILED: " + "; ".join(problems))
        return 1
    print("PASSED: every request answered 200 with a status")
    return 0


if __name__ == "__main__":
    sys.exit(main())
