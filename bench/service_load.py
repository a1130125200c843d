"""Load on the HTTP service: requests/s and latency of ``POST /v1/appraise`` over loopback.

Issue 5, "must show". Every server is a real ``ratsfed serve`` process (``.venv/bin/ratsfed``),
bound to 127.0.0.1 on a free port (``--port 0``; the bound URL is read from its first stdout line),
with keys made by ``ratsfed keys generate`` and configs written to a temporary folder:

* ``floor``: a loopback baseline, measured in the same run: a
  trivial aiohttp handler in its own process (this script with ``--floor-server``) that reads the
  request body and answers a JSON document of 1,024 bytes serialized per request
  (``{"status": "affirming", ...}``, so the client treats it exactly like an appraisal).
* ``engine``: no HTTP, no server: the local federator's config loaded in this process
  (``Federation.from_config``) and C tasks calling ``Federation.appraise``, each call with a fresh
  nonce and Evidence bound to it. What the ``local`` server adds on top of it is the HTTP service.
* ``local``: one federator process whose three backends are in-process local PSA appraisers
  (``kind = "local"``, three operators, each with its own result-signing key) over Veraison's
  ``corim-psa-valid.cbor``.
* ``remote``: three verifier-role processes (the same three appraisers, one per process) and a
  federator process whose three backends are ``kind = "veraison"`` clients of them, each pinned to
  its verifier's ``public.jwk``. One appraisal is then 3 x (newSession, Evidence POST, DELETE in
  the background) over loopback, plus the verification of three results.

Both federators: k = 2 of 3, veto, ``wait = "all"``, distinct operators (``config/federator.toml``),
combined result signed with the federation's key, default ``[server]`` limits
(``max_concurrency = 64``). The servers log at ``--log-level`` (default ``info``, as shipped: one
JSON line per request and per appraisal) to files in the temporary folder.

The client (this process, one aiohttp session, keep-alive) drives
``POST /v1/appraise?nonce=<hex>`` from C concurrent connections, C workers each sending its next
request as soon as the previous answer is read, for ``--duration`` seconds per phase after
``--warmup`` seconds that are not recorded. Every request carries a fresh 32-byte nonce and
Evidence bound to it (:class:`Attester`: Veraison's ``psa.good`` claims with that nonce, signed with
its ES256 test key: the size of ``psa.good.cose``, ``Content-Type:
application/psa-attestation-token``): a federator consumes each nonce (one nonce, one appraisal,
``federation.replay``) and answers 409 to a nonce used again. The Evidence is made before the
request's clock starts; its signing (about 0.1 ms) is in the client's CPU. Phases are interleaved:
for each C, floor, engine, local, remote. Per phase:

* ``req/s``: requests completed / wall time of the phase;
* ``p50``/``p99``/``p99.9``/``max``: latency from sending the request to having read the whole
  answer (nearest rank; with fewer than 1,000 samples p99.9 is the maximum);
* ``errors``: transport errors (refused, reset, timeout), answers other than 200 and 200 answers
  that do not echo the request's nonce (``200 wrong-nonce``);
  ``not affirming``: 200 answers whose ``status`` is not ``affirming``; every answer is counted by
  ``<HTTP code> <status>`` in the statuses line, and the run exits 1 unless all were
  ``200 affirming``;
* CPU per request, from ``time.process_time()`` (client; for ``engine`` the whole appraisal) and
  ``/proc/<pid>/stat`` (the target's server processes, summed): on a 2-core machine client and
  servers share the cores;
* ``cores busy``: (client + server CPU) / wall time of the phase. On a 2-core machine shared with
  other work, a phase whose CPU per request is unchanged but whose cores busy is low was starved:
  its req/s and latencies then say more about the neighbours than about the service;
* ``÷ floor``: the floor's req/s divided by the target's (how many floor requests one appraisal
  costs) and the target's p50 divided by the floor's p50, at the same C.

After the phases the federators' ``/metrics`` are read: every backend vote must be ``ok`` and no
request may have been refused (``ratsfed_rejected_requests_total``).

Every process is started in its own process group and stopped at the end (SIGTERM to the group,
SIGKILL after 10 s), also on Ctrl-C, SIGTERM or an exception; the temporary folder is removed
(``--keep`` keeps it, with the configs and the servers' logs).

Usage::

    .venv/bin/python bench/service_load.py                 # full: C = 1, 8, 32; 10 s per phase (~2.5 min)
    .venv/bin/python bench/service_load.py --quick         # CI smoke: C = 1, 8; 2 s per phase (~30 s)
    .venv/bin/python bench/service_load.py --json out.json # also write every figure
    .venv/bin/python bench/service_load.py --from a.json b.json c.json   # re-print: medians of whole runs

Figures are only comparable within one run (see ``docs/performance.md`` for the machine).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from types import FrameType
from typing import Any

import aiohttp

REPO = Path(__file__).resolve().parents[1]
PSA = REPO.parent / "shared" / "vectors" / "veraison-services" / "psa"
MEDIA_TYPE = "application/psa-attestation-token"
OPERATORS = ("acme", "globex", "initech")
STARTUP_TIMEOUT = 60.0  # seconds for a server to print its URL
STOP_TIMEOUT = 10.0  # seconds for the servers to exit after SIGTERM before SIGKILL
REQUEST_TIMEOUT = 30.0  # seconds for one request (the federators' deadline is 15 s)
MAX_REQUESTS_PER_WORKER = 1_000_000  # bound on every loop, whatever the duration
FLOOR_BYTES = 1024
TARGETS = ("floor", "engine", "local", "remote")
CLK_TCK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


# --------------------------------------------------------------------------- the attester


class Attester:
    """Veraison's ``psa.good`` claims, bound to the nonce asked for and signed by its test key (the
    key ``corim-psa-valid.cbor`` endorses): affirming Evidence for any nonce."""

    NONCE = 10  # the PSA (P2) nonce claim

    def __init__(self, vectors: Path) -> None:
        from federation.keys import SigningKey, jwk_to_private
        from verifiers.local.evidence.psa import json_to_cbor_claims

        self.claims = json_to_cbor_claims((vectors / "claims" / "psa.good.json").read_text())
        jwk = json.loads((vectors / "keys" / "ec.p256.jwk").read_text())
        self.key = SigningKey.of(jwk_to_private(jwk), "ES256")

    def evidence(self, nonce: bytes) -> bytes:
        from federation import cbor, cose

        return cose.sign1(cbor.dumps({**self.claims, self.NONCE: nonce}), self.key)

    def fresh(self) -> tuple[bytes, bytes]:
        """A fresh 32-byte nonce and Evidence bound to it."""
        nonce = os.urandom(32)
        return nonce, self.evidence(nonce)


# --------------------------------------------------------------------------- the floor server


def floor_document(nonce: str) -> bytes:
    """A 1,024-byte JSON answer, serialized per request like the service's summaries."""
    doc: dict[str, Any] = {"status": "affirming", "nonce": nonce, "pad": ""}
    base = len(json.dumps(doc).encode())
    doc["pad"] = "x" * (FLOOR_BYTES - base)
    return json.dumps(doc).encode()


async def floor_server(host: str) -> None:
    from aiohttp import web

    async def handle(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(body=floor_document(request.query.get("nonce", "")), content_type="application/json")

    app = web.Application(client_max_size=4 << 20)
    app.router.add_post("/v1/appraise", handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    print(f"floor listening on http://{host}:{port}", flush=True)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()


# --------------------------------------------------------------------------- processes


def spawn_logged(folder: Path, tag: str, argv: list[str]) -> tuple[subprocess.Popen[bytes], Path, Path]:
    """Start *argv* in its own process group (so it can be stopped whole), stdout and stderr to files."""
    out, err = folder / f"{tag}.stdout", folder / f"{tag}.log"
    with out.open("wb") as o, err.open("wb") as e:
        proc = subprocess.Popen(argv, stdout=o, stderr=e, stdin=subprocess.DEVNULL, start_new_session=True,
                                cwd=folder, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    return proc, out, err


def listening_url(stdout: Path) -> str | None:
    """The URL a ``ratsfed serve`` printed on its first stdout line, once it has."""
    match = re.search(r"listening on (\S+)", stdout.read_text(errors="replace"))
    return match.group(1).rstrip("/") if match else None


def stop_groups(procs: Sequence[tuple[str, subprocess.Popen[bytes]]]) -> list[str]:
    """SIGTERM every process group, SIGKILL what is left after STOP_TIMEOUT (and anything a group
    left behind); the exit codes as ``name=code``."""
    for _, proc in procs:
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT
    exits = []
    for name, proc in procs:
        try:
            proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=STOP_TIMEOUT)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)  # anything its group left behind
        exits.append(f"{name}={proc.returncode}")
    return exits


@dataclass
class Server:
    name: str
    proc: subprocess.Popen[bytes]
    stdout: Path
    stderr: Path
    url: str = ""

    def cpu_seconds(self) -> float | None:
        """user + system CPU of the process so far, from /proc (None where there is no /proc)."""
        try:
            stat = Path(f"/proc/{self.proc.pid}/stat").read_text()
        except OSError:
            return None
        fields = stat.rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime, stime (fields 14 and 15)


class Processes:
    """Every process this bench starts, each in its own process group; :meth:`stop_all` ends them."""

    def __init__(self, folder: Path, log_level: str) -> None:
        self.folder = folder
        self.log_level = log_level
        self.servers: list[Server] = []

    def _spawn(self, name: str, argv: list[str]) -> Server:
        server = Server(name, *spawn_logged(self.folder, name, argv))
        self.servers.append(server)
        return server

    def serve(self, name: str, config: Path) -> Server:
        return self._spawn(name, [*ratsfed(), "serve", "--config", str(config), "--host", "127.0.0.1",
                                  "--port", "0", "--log-level", self.log_level])

    def floor(self) -> Server:
        return self._spawn("floor", [sys.executable, str(Path(__file__).resolve()), "--floor-server"])

    def wait_ready(self, servers: Sequence[Server]) -> None:
        """Read each server's bound URL from its first stdout line (they start in parallel)."""
        deadline = time.monotonic() + STARTUP_TIMEOUT
        for s in servers:
            while not s.url:
                url = listening_url(s.stdout)
                if url:
                    s.url = url
                    break
                if s.proc.poll() is not None or time.monotonic() > deadline:
                    tail = s.stderr.read_text(errors="replace")[-2000:]
                    raise RuntimeError(f"{s.name} did not start (exit {s.proc.returncode}): {tail}")
                time.sleep(0.05)

    def stop_all(self) -> list[str]:
        """Stop every process group (:func:`stop_groups`); return the exits."""
        return stop_groups([(s.name, s.proc) for s in self.servers])


def ratsfed() -> list[str]:
    """The ``ratsfed`` next to this interpreter (the venv's), else ``python -m federation``."""
    script = Path(sys.executable).parent / "ratsfed"
    return [str(script)] if script.exists() else [sys.executable, "-m", "federation"]


def generate_key(folder: Path) -> None:
    subprocess.run([*ratsfed(), "keys", "generate", "--out", str(folder)], check=True, capture_output=True,
                   timeout=60)


# --------------------------------------------------------------------------- configs


FEDERATION = """[federation]
id = "bench-{name}"
signing_key = "{key}"
deadline = 15

[quorum]
k = 2
veto = true
wait = "all"
distinct_operators = true

[server]
role = "federator"
port = 0
"""


def local_entry(name: str, operator: str, corim: Path, key: Path) -> str:
    return (f'\n[[verifiers]]\nname = "{name}"\nkind = "local"\noperator = "{operator}"\n'
            f'options = {{ corim = ["{corim}"], trust_unsigned = true, signing_key = "{key}" }}\n')


def write_configs(folder: Path, corim: Path) -> tuple[Path, list[Path], Path]:
    """Keys (``ratsfed keys generate``) and the configs: local federator, verifiers; the remote
    federator's config is written once the verifiers' URLs are known (:func:`remote_config`)."""
    for name in ("federation", *OPERATORS):
        generate_key(folder / "keys" / name)
    fed_key = folder / "keys" / "federation" / "private.pem"
    local = folder / "federator-local.toml"
    local.write_text(FEDERATION.format(name="local", key=fed_key) + "".join(
        local_entry(f"{op}-local", op, corim, folder / "keys" / op / "private.pem") for op in OPERATORS))
    verifiers = []
    for op in OPERATORS:
        path = folder / f"verifier-{op}.toml"
        path.write_text(f'[federation]\nid = "{op}-verifier"\n\n[server]\nrole = "verifier"\nport = 0\n'
                        + local_entry(f"{op}-local", op, corim, folder / "keys" / op / "private.pem"))
        verifiers.append(path)
    return local, verifiers, folder / "federator-remote.toml"


def remote_config(path: Path, folder: Path, urls: Sequence[str]) -> None:
    entries = [f'\n[[verifiers]]\nname = "{op}"\nkind = "veraison"\noperator = "{op}"\n'
               f'trust_anchor = "{folder / "keys" / op / "public.jwk"}"\ntimeout = 10\n'
               f'options = {{ url = "{url}" }}\n' for op, url in zip(OPERATORS, urls, strict=True)]
    path.write_text(FEDERATION.format(name="remote", key=folder / "keys" / "federation" / "private.pem")
                    + "".join(entries))


# --------------------------------------------------------------------------- the client


@dataclass
class Phase:
    target: str
    connections: int
    duration: float = 0.0
    latencies: list[float] = field(default_factory=list)
    statuses: Counter[str] = field(default_factory=Counter)
    client_cpu: float = 0.0
    server_cpu: float | None = None
    server_cpu_by: dict[str, float] = field(default_factory=dict)

    @property
    def requests(self) -> int:
        return sum(self.statuses.values())

    @property
    def errors(self) -> int:
        return sum(n for k, n in self.statuses.items() if not k.startswith("200 "))

    @property
    def not_affirming(self) -> int:
        return sum(n for k, n in self.statuses.items() if k.startswith("200 ") and k != "200 affirming")

    @property
    def rps(self) -> float:
        return self.requests / self.duration if self.duration else 0.0

    def pct(self, p: float) -> float:
        """Nearest-rank percentile of the latencies, in ms."""
        if not self.latencies:
            return math.nan
        ordered = sorted(self.latencies)
        return 1000 * ordered[min(len(ordered) - 1, max(0, math.ceil(p / 100 * len(ordered)) - 1))]

    def as_json(self) -> dict[str, Any]:
        n = self.requests or 1
        return {"target": self.target, "connections": self.connections, "duration_s": self.duration,
                "requests": self.requests, "rps": self.rps, "p50_ms": self.pct(50), "p99_ms": self.pct(99),
                "p999_ms": self.pct(99.9), "max_ms": self.pct(100), "errors": self.errors,
                "not_affirming": self.not_affirming, "statuses": dict(self.statuses),
                "client_cpu_s": self.client_cpu, "server_cpu_s": self.server_cpu,
                "client_cpu_us_per_req": 1e6 * self.client_cpu / n,
                "server_cpu_us_per_req": None if self.server_cpu is None else 1e6 * self.server_cpu / n,
                "server_cpu_us_per_req_by_process": {k: 1e6 * v / n for k, v in self.server_cpu_by.items()}}


def classify(code: int, body: bytes, nonce: bytes | None = None) -> str:
    """``<code> <status>`` of an answer; ``200 wrong-nonce`` when it does not echo *nonce*."""
    try:
        doc = json.loads(body)
    except ValueError:
        return f"{code} not-json"
    if code == 200:
        if not isinstance(doc, dict):
            return "200 not-an-object"
        if nonce is not None and doc.get("nonce") != nonce.hex():
            return "200 wrong-nonce"
        return f"200 {doc.get('status')}"
    title = doc.get("title") if isinstance(doc, dict) else None
    return f"{code} {title or 'problem'}"


def appraise_url(base: str, nonce: bytes) -> str:
    return f"{base}/v1/appraise?nonce={nonce.hex()}"


async def workers(call: Callable[[bytes, bytes], Awaitable[str]], attester: Attester, connections: int,
                  seconds: float, phase: Phase | None) -> None:
    """C workers, each starting its next request as soon as the previous one is answered, until
    *seconds* have passed; every request with a fresh nonce and Evidence bound to it (made before
    its clock starts). *call* returns the outcome label; *phase*, when given, records it."""
    end = time.perf_counter() + seconds

    async def worker() -> None:
        for _ in range(MAX_REQUESTS_PER_WORKER):
            nonce, evidence = attester.fresh()
            t0 = time.perf_counter()
            if t0 >= end:
                return
            outcome = await call(nonce, evidence)
            if phase is not None:
                phase.latencies.append(time.perf_counter() - t0)
                phase.statuses[outcome] += 1

    await asyncio.gather(*(worker() for _ in range(connections)))


async def drive(session: aiohttp.ClientSession, base: str, attester: Attester, connections: int, seconds: float,
                phase: Phase | None) -> None:
    """:func:`workers` POSTing to the service."""
    headers = {"Content-Type": MEDIA_TYPE, "Accept": "application/json"}

    async def post(nonce: bytes, evidence: bytes) -> str:
        try:
            async with session.post(appraise_url(base, nonce), data=evidence, headers=headers) as resp:
                return classify(resp.status, await resp.read(), nonce)
        except (aiohttp.ClientError, TimeoutError) as exc:
            return f"error {type(exc).__name__}"

    await workers(post, attester, connections, seconds, phase)


def cpu_of(servers: Sequence[Server]) -> dict[str, float] | None:
    values = {s.name: s.cpu_seconds() for s in servers}
    return None if any(v is None for v in values.values()) else {k: v or 0.0 for k, v in values.items()}


async def measure(target: str, base: str, servers: Sequence[Server], attester: Attester, connections: int,
                  args: argparse.Namespace) -> Phase:
    phase = Phase(target, connections)
    connector = aiohttp.TCPConnector(limit=connections, limit_per_host=connections)
    timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        await drive(session, base, attester, connections, args.warmup, None)
        cpu0, server0, t0 = time.process_time(), cpu_of(servers), time.perf_counter()
        await drive(session, base, attester, connections, args.duration, phase)
        phase.duration = time.perf_counter() - t0
        phase.client_cpu = time.process_time() - cpu0
        server1 = cpu_of(servers)
        if server0 is not None and server1 is not None:
            phase.server_cpu_by = {k: server1[k] - server0[k] for k in server1}
            phase.server_cpu = sum(phase.server_cpu_by.values())
    return phase


async def measure_engine(config: Path, attester: Attester, connections: int, args: argparse.Namespace) -> Phase:
    """The local federator's Federation in this process, no HTTP: C tasks calling ``appraise``,
    each with a fresh nonce and Evidence bound to it."""
    from federation.engine import Federation
    from federation.evidence import Evidence

    phase = Phase("engine", connections)
    async with Federation.from_config(config) as fed:

        async def appraise(nonce: bytes, evidence: bytes) -> str:
            try:
                result = await fed.appraise(Evidence(MEDIA_TYPE, evidence), nonce)
            except Exception as exc:
                return f"error {type(exc).__name__}"
            return f"200 {result.status}" if result.nonce == nonce else "200 wrong-nonce"

        await workers(appraise, attester, connections, args.warmup, None)
        cpu0, t0 = time.process_time(), time.perf_counter()
        await workers(appraise, attester, connections, args.duration, phase)
        phase.duration = time.perf_counter() - t0
        phase.client_cpu = time.process_time() - cpu0
    return phase


async def check_once(base: str, attester: Attester) -> None:
    """One appraisal before any phase: it must be 200 and affirming, or nothing is worth measuring."""
    nonce, evidence = attester.fresh()
    url = appraise_url(base, nonce)
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=REQUEST_TIMEOUT)) as session, \
            session.post(url, data=evidence, headers={"Content-Type": MEDIA_TYPE}) as resp:
        body = await resp.read()
    if classify(resp.status, body, nonce) != "200 affirming":
        raise RuntimeError(f"{url}: {resp.status} {body[:600]!r}")


async def metrics_of(base: str) -> dict[str, float]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=REQUEST_TIMEOUT)) as session, \
            session.get(f"{base}/metrics") as resp:
        text = await resp.text()
    wanted = ("ratsfed_backend_outcomes_total", "ratsfed_rejected_requests_total", "ratsfed_appraisals_total",
              "ratsfed_quorum_failures_total")
    out: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith(wanted):
            name, _, value = line.rpartition(" ")
            out[name] = float(value)
    return out


async def run_phases(args: argparse.Namespace, attester: Attester, targets: dict[str, tuple[str, list[Server]]],
                     local_config: Path, report: dict[str, Any]) -> list[Phase]:
    for base, _ in targets.values():
        await check_once(base, attester)
    phases = []
    for c in args.connections:
        for name in args.targets:
            if name == "engine":
                phase = await measure_engine(local_config, attester, c, args)
            else:
                base, servers = targets[name]
                phase = await measure(name, base, servers, attester, c, args)
            phases.append(phase)
            print(f"  {name:<6} C={c:<3} {phase.requests:>7} requests  {phase.rps:>8.1f} req/s  "
                  f"p50 {phase.pct(50):7.2f} ms  p99 {phase.pct(99):7.2f} ms  errors {phase.errors}  "
                  f"not affirming {phase.not_affirming}", flush=True)
    report["metrics"] = {name: await metrics_of(targets[name][0]) for name in ("local", "remote")
                         if name in args.targets}
    return phases


# --------------------------------------------------------------------------- report


def table(phases: Sequence[Phase]) -> str:
    floor = {p.connections: p for p in phases if p.target == "floor"}
    head = ("| target | C | requests | req/s | p50 ms | p99 ms | p99.9 ms | max ms | errors | not affirming "
            "| client CPU µs/req | server CPU µs/req | cores busy | floor req/s ÷ req/s | p50 ÷ floor p50 |")
    rows = [head, "|---|---:|" + "---:|" * 13]
    for p in phases:
        n = p.requests or 1
        base = floor.get(p.connections)
        ratio = f"{base.rps / p.rps:.1f}" if base is not None and p.rps and p.target != "floor" else "-"
        lat = f"{p.pct(50) / base.pct(50):.1f}" if base is not None and p.target != "floor" else "-"
        server = "-" if p.server_cpu is None else f"{1e6 * p.server_cpu / n:,.0f}"
        busy = (p.client_cpu + (p.server_cpu or 0.0)) / p.duration if p.duration else math.nan
        rows.append(f"| {p.target} | {p.connections} | {p.requests:,} | {p.rps:,.1f} | {p.pct(50):.2f} | "
                    f"{p.pct(99):.2f} | {p.pct(99.9):.2f} | {p.pct(100):.2f} | {p.errors} | {p.not_affirming} | "
                    f"{1e6 * p.client_cpu / n:,.0f} | {server} | {busy:.2f} | {ratio} | {lat} |")
    return "\n".join(rows)


def _per_run(doc: dict[str, Any]) -> dict[tuple[str, int], dict[str, float]]:
    """One run's figures by (target, C), with its ratios to the floor of the same run."""
    out: dict[tuple[str, int], dict[str, float]] = {}
    floor = {p["connections"]: p for p in doc["phases"] if p["target"] == "floor"}
    for p in doc["phases"]:
        row = {k: float(p[k]) for k in ("rps", "p50_ms", "p99_ms", "p999_ms", "errors", "not_affirming",
                                        "client_cpu_us_per_req")}
        row["server_cpu_us_per_req"] = math.nan if p["server_cpu_us_per_req"] is None else p["server_cpu_us_per_req"]
        row["busy"] = (p["client_cpu_s"] + (p["server_cpu_s"] or 0.0)) / p["duration_s"]
        base = floor.get(p["connections"])
        if base is not None and p["target"] != "floor" and p["rps"]:
            row["rps_ratio"], row["p50_ratio"] = base["rps"] / p["rps"], p["p50_ms"] / base["p50_ms"]
        out[(p["target"], p["connections"])] = row
    return out


def merged_table(docs: Sequence[dict[str, Any]]) -> str:
    """Medians over whole runs (ranges in parentheses); ratios are taken within each run first."""
    runs = [_per_run(d) for d in docs]
    keys = list(dict.fromkeys(k for r in runs for k in r))

    def cell(key: tuple[str, int], name: str, fmt: str, spread: bool = False) -> str:
        values = [r[key][name] for r in runs if key in r and name in r[key] and not math.isnan(r[key][name])]
        if not values:
            return "-"
        text = format(statistics.median(values), fmt)
        return f"{text} ({format(min(values), fmt)}-{format(max(values), fmt)})" if spread and len(values) > 1 \
            else text

    rows = ["| target | C | req/s | p50 ms | p99 ms | p99.9 ms | errors + not affirming | client CPU µs/req "
            "| server CPU µs/req | cores busy | floor req/s ÷ req/s | p50 ÷ floor p50 |",
            "|---|---:|" + "---:|" * 10]
    for key in sorted(keys, key=lambda k: (k[1], TARGETS.index(k[0]))):
        bad = sum(int(r[key]["errors"] + r[key]["not_affirming"]) for r in runs if key in r)
        cells = [cell(key, "rps", ",.0f", True), cell(key, "p50_ms", ".1f", True), cell(key, "p99_ms", ".0f", True),
                 cell(key, "p999_ms", ".0f"), str(bad), cell(key, "client_cpu_us_per_req", ",.0f"),
                 cell(key, "server_cpu_us_per_req", ",.0f", True), cell(key, "busy", ".2f"),
                 cell(key, "rps_ratio", ".1f", True), cell(key, "p50_ratio", ".1f", True)]
        rows.append(f"| {key[0]} | {key[1]} | " + " | ".join(cells) + " |")
    return "\n".join(rows)


def git(*argv: str) -> str | None:
    try:
        return subprocess.run(["git", *argv], cwd=REPO, capture_output=True, text=True, timeout=10,
                              check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None


def environment() -> dict[str, Any]:
    versions: dict[str, str | None] = {}
    for dist in ("rats-federation", "aiohttp", "cryptography", "pyjwt"):
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            versions[dist] = None
    return {
        "date_utc": datetime.now(UTC).isoformat(timespec="seconds"),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "loadavg": os.getloadavg() if hasattr(os, "getloadavg") else None,
        "versions": versions,
        "git_head": git("rev-parse", "HEAD"),
        "git_modified": (git("status", "--porcelain", "--", "federation", "verifiers") or "").splitlines(),
    }


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="POST /v1/appraise under load: local and remote federators vs the "
                                            "loopback floor.")
    p.add_argument("--quick", action="store_true", help="CI smoke: 2 s per phase, C = 1 and 8")
    p.add_argument("--duration", type=float, default=None, help="seconds per phase (default 10, quick 2)")
    p.add_argument("--warmup", type=float, default=None, help="unrecorded seconds before each phase "
                                                              "(default 1, quick 0.5)")
    p.add_argument("--connections", type=int, nargs="+", default=None,
                   help="client connections per phase (default 1 8 32, quick 1 8)")
    p.add_argument("--targets", nargs="+", choices=TARGETS, default=list(TARGETS))
    p.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"],
                   help="the servers' log level (default info, as shipped)")
    p.add_argument("--vectors", type=Path, default=PSA, help="Veraison's PSA vectors folder")
    p.add_argument("--json", type=Path, help="also write every figure to this file")
    p.add_argument("--from", dest="from_json", type=Path, nargs="+", metavar="JSON",
                   help="re-print the figures of --json files (several: medians of the runs) and exit")
    p.add_argument("--keep", action="store_true", help="keep the temporary folder (configs, keys, server logs)")
    p.add_argument("--floor-server", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.duration is None:
        args.duration = 2.0 if args.quick else 10.0
    if args.warmup is None:
        args.warmup = 0.5 if args.quick else 1.0
    if args.connections is None:
        args.connections = [1, 8] if args.quick else [1, 8, 32]
    if not 0 < args.duration <= 600 or not 0 <= args.warmup <= 60:
        p.error("--duration must be in (0, 600] and --warmup in [0, 60] seconds")
    if any(not 1 <= c <= 256 for c in args.connections):
        p.error("--connections must be 1..256")
    return args


def _terminate(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.floor_server:
        asyncio.run(floor_server("127.0.0.1"))
        return 0
    if args.from_json:
        docs = [json.loads(f.read_text()) for f in args.from_json]
        for f, d in zip(args.from_json, docs, strict=True):
            e = d["environment"]
            load = ", ".join(f"{x:.2f}" for x in e["loadavg"] or ())
            end = ", ".join(f"{x:.2f}" for x in e.get("loadavg_end") or ())
            print(f"{f}: {e['date_utc']}, git {str(e['git_head'])[:12]}, load {load} -> {end}")
        print(f"\nmedian of {len(docs)} run(s), range in parentheses\n" if len(docs) > 1 else "")
        print(merged_table(docs))
        return 0
    attester = Attester(args.vectors)
    size = len(attester.fresh()[1])
    corim = (args.vectors / "endorsements" / "corim-psa-valid.cbor").resolve()
    # Ctrl-C and SIGTERM raise KeyboardInterrupt (even where a shell started this with SIGINT
    # ignored), so that the finally below stops every server.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _terminate)
    env = environment()
    folder = Path(tempfile.mkdtemp(prefix="ratsfed-bench-"))
    procs = Processes(folder, args.log_level)
    report: dict[str, Any] = {"benchmark": "bench/service_load.py", "argv": list(sys.argv[1:]), "environment": env}
    started = time.perf_counter()
    try:
        local_cfg, verifier_cfgs, remote_cfg = write_configs(folder, corim)
        floor = procs.floor() if "floor" in args.targets else None
        local = procs.serve("federator-local", local_cfg) if "local" in args.targets else None
        targets: dict[str, tuple[str, list[Server]]] = {}
        if "remote" in args.targets:
            verifiers = [procs.serve(f"verifier-{op}", cfg) for op, cfg in zip(OPERATORS, verifier_cfgs, strict=True)]
            procs.wait_ready(verifiers)
            remote_config(remote_cfg, folder, [v.url for v in verifiers])
            remote = procs.serve("federator-remote", remote_cfg)
            procs.wait_ready([remote])
            targets["remote"] = (remote.url, [remote, *verifiers])
        for name, server in (("floor", floor), ("local", local)):
            if server is not None:
                procs.wait_ready([server])
                targets[name] = (server.url, [server])
        load = ", ".join(f"{x:.2f}" for x in env["loadavg"] or ())
        print(f"rats-federation bench/service_load.py: POST /v1/appraise (psa.good claims, {size} bytes, a fresh "
              f"nonce and Evidence per request), "
              f"{args.duration:g} s per phase (+{args.warmup:g} s warm-up), C = "
              f"{', '.join(map(str, args.connections))} client connections, servers log at {args.log_level}; "
              f"Python {env['python']}, {env['cpus']} CPUs, load {load}, {env['date_utc']}", flush=True)
        phases = asyncio.run(run_phases(args, attester, targets, local_cfg, report))
    except KeyboardInterrupt:
        print(f"\ninterrupted; servers stopped: {', '.join(procs.stop_all())}", file=sys.stderr)
        return 130
    finally:
        exits = procs.stop_all()
        if args.keep:
            print(f"kept {folder}")
        else:
            shutil.rmtree(folder, ignore_errors=True)
    env["loadavg_end"] = os.getloadavg() if hasattr(os, "getloadavg") else None
    elapsed = time.perf_counter() - started
    print()
    print(table(phases))
    bad = sum(p.errors + p.not_affirming for p in phases)
    statuses: Counter[str] = Counter()
    for p in phases:
        statuses.update(p.statuses)
    for p in phases:
        if len(p.server_cpu_by) > 1:
            n = p.requests or 1
            print(f"server CPU µs/req of {p.target} at C={p.connections}: "
                  + ", ".join(f"{k} {1e6 * v / n:,.0f}" for k, v in p.server_cpu_by.items()))
    print(f"\nstatuses of all {sum(statuses.values()):,} recorded answers: "
          + ", ".join(f"{k}: {n:,}" for k, n in statuses.most_common()))
    problems = []
    for name, metrics in report.get("metrics", {}).items():
        votes = {k: v for k, v in metrics.items() if k.startswith("ratsfed_backend_outcomes_total")}
        not_ok = {k: v for k, v in votes.items() if 'outcome="ok"' not in k and v}
        rejected = {k: v for k, v in metrics.items() if k.startswith("ratsfed_rejected_requests_total") and v}
        print(f"{name} federator /metrics: {sum(votes.values()):,.0f} backend votes, not ok: {not_ok or 'none'}; "
              f"rejected requests: {rejected or 'none'}")
        if not_ok or rejected:
            problems.append(name)
    print(f"servers stopped: {', '.join(exits)}; {elapsed:.1f} s wall; load at the end "
          f"{', '.join(f'{x:.2f}' for x in env['loadavg_end'] or ())}")
    if args.json is not None:
        report.update(settings={k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
                      elapsed_s=elapsed, exits=exits, phases=[p.as_json() for p in phases])
        args.json.write_text(json.dumps(report, indent=1) + "\n")
    if bad or problems:
        print(f"FAILED: {bad} answers were not 200 affirming; metrics problems: {problems or 'none'}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
