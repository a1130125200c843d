"""Fault-injection campaign (issue 6, item 1): randomized fault trials with the ground truth.

Every trial is one ``Federation.appraise`` over a random quorum configuration (k of n = 1..7,
veto or not, ``wait`` all or quorum, distinct operators or not, operators drawn from a pool so
that distinctness bites, a deadline, and per backend a timeout and 0-2 retries) whose backends
each suffer a random fault (``tests/faultproxy.py``: refuse, reset, latency + jitter, hang,
truncate, garbage, HTTP 5xx, 429 with ``Retry-After``, flapping, and the lying modes: a replayed
result, another session's result, an expired one, one signed by the rotated-out key, a tampered
one; in process also a backend that raises and one deaf to cancellation). Two kinds of trials:

* **proxy** (``--proxy-trials``): 1-4 ``kind = "veraison"`` backends reach real ``ratsfed serve``
  verifier-role processes (four, keys made by ``ratsfed keys generate``, one signing CWTs) through
  the fault-injecting proxy on 127.0.0.1, plus 0-2 in-process backends; the attester's Evidence is
  fresh for each trial (good, an unendorsed bootloader, a rogue key, or bound to another nonce).
  ``--lanes`` independent sets of proxies and backends run trials side by side; within a lane
  they run one after another and the backends keep their connection pools and circuit breakers
  (threshold 3, cool-down 1 s), as a long-running federator's do.
* **in-process** (``--trials``): every backend a ``FaultyVerifier`` (the real Backend protocol,
  real ES256 keys, JWT or CWT), ``--concurrency`` trials at a time in one event loop.

Each trial is checked (``tests/fault_trials.py``, ``judge``): answered (a result, no exception,
one vote per backend); answered by the deadline + ``MARGIN`` (250 ms); no vote counted ``ok``
unless its token is one the verifier genuinely issued for this nonce; the combined status, every
submodule's status and every trust-vector claim no better than ``decide()`` over the genuine ok
votes; the signed token passes ``verify_result(reverify=True)`` under the verifiers' own keys;
and each backend's outcome one its fault allows (else counted as *unexpected*, apart from safety).

The seed fixes every trial's configuration and faults (trial ``i`` of a kind is drawn from
``Random(f"{seed}:{kind}:{i}")``); keys and timing are of the run. ``--trial I --kind K`` re-runs
one trial and prints its votes. Exit status 1 when any check failed.

Usage::

    .venv/bin/python bench/faults.py --json faults.json            # full: 10,000 + 3,000 trials
    .venv/bin/python bench/faults.py --quick                       # CI size: 300 + 60 trials
    .venv/bin/python bench/faults.py --seed 7 --trials 20000 --proxy-trials 3000
    .venv/bin/python bench/faults.py --seed 7 --trial 1234 --kind proxy

All processes are started in their own process groups and stopped at the end (SIGTERM, then
SIGKILL after 10 s), also on Ctrl-C, SIGTERM or an error; the temporary folder is removed unless
``--keep``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import secrets
import shutil
import signal
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from types import FrameType
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from fault_trials import (  # noqa: E402
    MARGIN,
    SERVICES,
    KeyPool,
    ProxyLane,
    ServiceLane,
    Tally,
    TrialResult,
    random_trial,
    run_inprocess,
    run_proxy,
    run_service,
)
from faultproxy import VerifierCluster  # noqa: E402

from federation.votes import Outcome  # noqa: E402

OUTCOME_COLUMNS = [o.value for o in Outcome]
SHORT = {"unreachable": "unreach", "http-error": "http-err", "bad-signature": "bad-sig", "untrusted-key": "untrust",
         "nonce-mismatch": "nonce", "not-awaited": "not-await", "malformed": "malform"}


def _say(text: str) -> None:
    print(text, flush=True)


async def proxy_phase(cluster: VerifierCluster, seed: str, trials: int, lanes: int, tally: Tally,
                      injected: Counter[str]) -> None:
    done = 0
    start = time.monotonic()

    async def lane_run(j: int) -> None:
        nonlocal done
        async with ProxyLane(cluster, seed=f"{seed}:lane:{j}") as lane:
            for i in range(j, trials, lanes):
                tally.add(await run_proxy(random_trial(seed, i, "proxy", proxied_names=lane.names), lane))
                done += 1
                if done % 250 == 0:
                    _say(f"  proxy trials: {done}/{trials} ({time.monotonic() - start:.0f} s)")
        injected.update(lane.injected)

    await asyncio.gather(*(lane_run(j) for j in range(lanes)))


async def service_phase(cluster: VerifierCluster, seed: str, trials: int, tally: Tally,
                        injected: Counter[str]) -> None:
    done = 0
    start = time.monotonic()
    async with ServiceLane(cluster, seed=seed) as lane:
        _say(f"federators: {', '.join(lane.urls)}")

        async def federator(f: int) -> None:  # trial i goes to federator i % len(SERVICES)
            nonlocal done
            for i in range(f, trials, len(SERVICES)):
                tally.add(await run_service(random_trial(seed, i, "service", proxied_names=lane.names), lane))
                done += 1
                if done % 250 == 0:
                    _say(f"  service trials: {done}/{trials} ({time.monotonic() - start:.0f} s)")

        await asyncio.gather(*(federator(f) for f in range(len(SERVICES))))
    injected.update(lane.injected)


async def inprocess_phase(seed: str, trials: int, concurrency: int, tally: Tally) -> None:
    pool = KeyPool.make()
    indices = iter(range(trials))  # shared by the workers: each takes the next trial
    start = time.monotonic()
    done = 0

    async def worker() -> None:
        nonlocal done
        for i in indices:
            tally.add(await run_inprocess(random_trial(seed, i, "in-process"), pool))
            done += 1
            if done % 2000 == 0:
                _say(f"  in-process trials: {done}/{trials} ({time.monotonic() - start:.0f} s)")

    await asyncio.gather(*(worker() for _ in range(concurrency)))


def table(tally: Tally, injected: Counter[str]) -> list[str]:
    cols = [c for c in OUTCOME_COLUMNS if any(c in o for o in tally.outcomes.values())]
    head = f"{'fault mode':<14}{'backends':>9}{'injected':>9}" + "".join(f"{SHORT.get(c, c):>10}" for c in cols) \
        + f"{'unexpected':>11}"
    lines = [head, "-" * len(head)]
    for mode, counts in sorted(tally.outcomes.items(), key=lambda kv: (kv[0] != "pass", kv[0])):
        inj = str(injected[mode]) if mode in injected else "-"
        lines.append(f"{mode:<14}{sum(counts.values()):>9}{inj:>9}" + "".join(f"{counts.get(c, 0):>10}" for c in cols)
                     + f"{tally.unexpected_by_mode.get(mode, 0):>11}")
    return lines


def summary(tally: Tally, by_kind: dict[str, Tally], injected: Counter[str], seed: str, wall: float) -> list[str]:
    d = tally.as_dict()
    out = [
        f"fault campaign: seed {seed}; {tally.total:,} trials ({tally.trials['in-process']:,} in process, "
        f"{tally.trials['proxy']:,} through the proxy to ratsfed serve verifier processes, "
        f"{tally.trials['service']:,} as requests to {len(SERVICES)} ratsfed serve federator processes); {wall:.0f} s",
        "",
        "per backend, by injected fault (injected: faults the proxies actually delivered on the wire):",
        *table(tally, injected),
        "",
        "combined statuses: " + ", ".join(f"{k} {v:,}" for k, v in sorted(tally.statuses.items())),
        "configurations: " + ", ".join(f"{k}: {v:,}" for k, v in sorted(tally.configs.items())
                                       if not k.startswith("k=")),
        "k-of-n drawn: " + ", ".join(f"{k.replace('k=', '').replace(' n=', '/')}: {v}"
                                     for k, v in sorted(tally.configs.items()) if k.startswith("k=")),
        "",
        "checks (every trial):",
        f"  combined result better than the verified votes allow: {d['better_than_allowed']}"
        f"   (trials with any violation: {tally.violating_trials})",
        f"  unanswered requests (appraise raised or gave no result): {tally.unanswered}",
        f"  answered later than deadline + {MARGIN * 1000:.0f} ms: {tally.late}",
    ]
    for kind, t in sorted(by_kind.items()):
        if t.total:
            td = t.as_dict()
            out.append(f"  {kind}: max lateness {td['max_lateness_ms']:+.1f} ms past the deadline "
                       f"(answered after the deadline: {td['answered_after_deadline']:,} of {t.total:,}; "
                       f"p99 of those {td['p99_lateness_after_deadline_ms']} ms); longest appraisal "
                       f"{td['max_elapsed_ms']:.0f} ms")
    out.append(f"  outcomes off their fault's allowed set (not safety): {sum(tally.unexpected_by_mode.values())} "
               f"in {tally.unexpected_trials} trials")
    for v in tally.violations[:20]:
        out.append(f"  VIOLATION {v}")
    for u in tally.unexpected[:10]:
        out.append(f"  unexpected {u}")
    return out


async def one_trial(cluster: VerifierCluster | None, seed: str, index: int, kind: str) -> TrialResult:
    if kind == "proxy":
        assert cluster is not None
        async with ProxyLane(cluster, seed=f"{seed}:lane:0") as lane:
            return await run_proxy(random_trial(seed, index, "proxy", proxied_names=lane.names), lane)
    if kind == "service":
        assert cluster is not None
        async with ServiceLane(cluster, seed=seed) as svc:
            return await run_service(random_trial(seed, index, "service", proxied_names=svc.names), svc)
    return await run_inprocess(random_trial(seed, index, "in-process"), KeyPool.make())


def _terminate(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seed", help="campaign seed (default: a random one, printed and recorded)")
    ap.add_argument("--trials", type=int, default=10_000, help="in-process trials (default 10,000)")
    ap.add_argument("--proxy-trials", type=int, default=3_000, help="trials through the proxy (default 3,000)")
    ap.add_argument("--service-trials", type=int, default=1_000,
                    help="trials as POST /v1/appraise to ratsfed serve federator processes (default 1,000)")
    ap.add_argument("--quick", action="store_true", help="CI size: 300 in-process, 60 proxy and 40 service trials")
    ap.add_argument("--concurrency", type=int, default=4, help="in-process trials at a time (default 4)")
    ap.add_argument("--lanes", type=int, default=2, help="proxy lanes running side by side (default 2)")
    ap.add_argument("--json", type=Path, help="write the seed, the command and every count here")
    ap.add_argument("--keep", action="store_true", help="keep the temporary folder (configs, keys, server logs)")
    ap.add_argument("--trial", type=int, help="re-run this one trial (with --kind) and print it")
    ap.add_argument("--kind", choices=["in-process", "proxy", "service"], default="in-process")
    args = ap.parse_args(argv)
    if args.quick:
        args.trials, args.proxy_trials, args.service_trials = 300, 60, 40
    if min(args.trials, args.proxy_trials, args.service_trials) < 0 or args.concurrency < 1 or args.lanes < 1:
        ap.error("counts must be >= 0, --concurrency and --lanes >= 1")
    seed = args.seed or str(secrets.randbelow(10**9))
    command = " ".join([".venv/bin/python bench/faults.py", *(argv if argv is not None else sys.argv[1:])])
    if args.seed is None:
        command += f"  # seed {seed}"
    signal.signal(signal.SIGTERM, _terminate)
    folder = Path(tempfile.mkdtemp(prefix="ratsfed-faults-"))
    try:
        wanted = args.proxy_trials + args.service_trials > 0
        need_cluster = wanted if args.trial is None else args.kind != "in-process"
        if args.trial is not None:
            return _single(folder, seed, args.trial, args.kind, need_cluster)
        _say(f"seed {seed}: {args.trials:,} in-process, {args.proxy_trials:,} proxy and {args.service_trials:,} "
             f"service trials; temporary folder {folder}")
        tally, by_kind = Tally(), {"in-process": Tally(), "proxy": Tally(), "service": Tally()}
        injected: Counter[str] = Counter()
        phases: dict[str, float] = {}
        started = time.time()
        load_before = os.getloadavg()
        t0 = time.monotonic()
        if need_cluster:
            with VerifierCluster.running(folder / "cluster") as cluster:
                listed = ", ".join(f"{n} {v.url} ({v.result_format})" for n, v in cluster.verifiers.items())
                _say(f"verifiers: {listed}")
                t = time.monotonic()
                asyncio.run(proxy_phase(cluster, seed, args.proxy_trials, args.lanes, by_kind["proxy"], injected))
                phases["proxy_s"] = round(time.monotonic() - t, 1)
                if args.service_trials:
                    t = time.monotonic()
                    asyncio.run(service_phase(cluster, seed, args.service_trials, by_kind["service"], injected))
                    phases["service_s"] = round(time.monotonic() - t, 1)
        t = time.monotonic()
        asyncio.run(inprocess_phase(seed, args.trials, args.concurrency, by_kind["in-process"]))
        phases["in_process_s"] = round(time.monotonic() - t, 1)
        wall = time.monotonic() - t0
        load_after = os.getloadavg()
        for t_kind in by_kind.values():
            _merge(tally, t_kind)
        for line in summary(tally, by_kind, injected, seed, wall):
            _say(line)
        _say(f"load average (1/5/15 min) at start {_load(load_before)}, at the end {_load(load_after)} "
             f"on {os.cpu_count()} CPUs (other work on the machine delays timers: lateness includes it)")
        failed = bool(tally.violations or tally.unanswered or tally.late)
        if args.json is not None:
            record: dict[str, Any] = {
                "command": command, "seed": seed, "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
                "wall_s": round(wall, 1), "phases": phases, "machine": {
                    "python": platform.python_version(), "platform": platform.platform(), "cpus": os.cpu_count(),
                    "loadavg_start": load_before, "loadavg_end": load_after},
                "settings": {"trials": args.trials, "proxy_trials": args.proxy_trials,
                             "service_trials": args.service_trials, "concurrency": args.concurrency,
                             "lanes": args.lanes, "margin_ms": MARGIN * 1000},
                "passed": not failed, "all": tally.as_dict(),
                "by_kind": {k: v.as_dict() for k, v in by_kind.items()}, "injected_on_the_wire": dict(injected),
            }
            args.json.write_text(json.dumps(record, indent=2) + "\n")
            _say(f"wrote {args.json}")
        _say("PASS" if not failed else "FAIL")
        return 1 if failed else 0
    except KeyboardInterrupt:
        _say("interrupted: processes stopped")
        return 130
    finally:
        if args.keep:
            _say(f"kept {folder}")
        else:
            shutil.rmtree(folder, ignore_errors=True)


def _load(avg: tuple[float, float, float]) -> str:
    return "/".join(f"{x:.1f}" for x in avg)


def _merge(into: Tally, t: Tally) -> None:
    into.trials.update(t.trials)
    into.statuses.update(t.statuses)
    into.configs.update(t.configs)
    for mode, c in t.outcomes.items():
        into.outcomes.setdefault(mode, Counter()).update(c)
    into.unexpected_by_mode.update(t.unexpected_by_mode)
    into.violations += t.violations
    into.unexpected += t.unexpected
    into.unanswered += t.unanswered
    into.late += t.late
    into.max_lateness = max(into.max_lateness, t.max_lateness)
    into.max_elapsed = max(into.max_elapsed, t.max_elapsed)
    into.lateness_over_deadline += t.lateness_over_deadline
    into.violating_trials += t.violating_trials
    into.unexpected_trials += t.unexpected_trials


def _single(folder: Path, seed: str, index: int, kind: str, need_cluster: bool) -> int:
    if need_cluster:
        with VerifierCluster.running(folder / "cluster") as cluster:
            r = asyncio.run(one_trial(cluster, seed, index, kind))
    else:
        r = asyncio.run(one_trial(None, seed, index, kind))
    _say(r.spec.describe())
    _say(f"status {r.status} (bound {r.bound}); {r.elapsed * 1000:.0f} ms, deadline {r.spec.deadline * 1000:.0f} ms")
    for name, mode, outcome, fine in r.outcomes:
        _say(f"  {name}: {mode} -> {outcome}{'' if fine else '  (unexpected)'}")
    for v in r.violations:
        _say(f"  VIOLATION {v}")
    return 1 if r.violations else 0


if __name__ == "__main__":
    sys.exit(main())
