"""Prometheus metrics, written by hand in the text exposition format (version 0.0.4).

Why not ``prometheus-client``: the set is small and fixed (counters, gauges, histograms with a
few labels), the format is a page of rules, and a per-application registry keeps two servers in
one process (tests, embedding) apart without the library's process-global default registry. No
new dependency for ~100 lines.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from typing import TypeVar

from ..quorum import Decision
from ..votes import Outcome, Vote

__all__ = ["CONTENT_TYPE", "Counter", "Gauge", "Histogram", "Registry", "ServerMetrics"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)  # seconds
STATUSES = ("affirming", "warning", "contraindicated", "none")

Labels = tuple[str, ...]


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(names: Sequence[str], values: Sequence[str], extra: str = "") -> str:
    parts = [f'{n}="{_escape(v)}"' for n, v in zip(names, values, strict=True)]
    if extra:
        parts.append(extra)
    return "{" + ",".join(parts) + "}" if parts else ""


def _number(value: float) -> str:
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return str(int(value)) if float(value).is_integer() else repr(float(value))


class _Metric:
    kind = ""

    def __init__(self, name: str, help_text: str, labels: Sequence[str] = ()) -> None:
        self.name = name
        self.help = help_text
        self.labelnames = tuple(labels)

    def _key(self, labels: Sequence[str]) -> Labels:
        if len(labels) != len(self.labelnames):
            raise ValueError(f"{self.name} takes labels {self.labelnames}")
        return tuple(str(v) for v in labels)

    def header(self) -> list[str]:
        return [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} {self.kind}"]

    def samples(self) -> list[str]:
        raise NotImplementedError


class Counter(_Metric):
    kind = "counter"

    def __init__(self, name: str, help_text: str, labels: Sequence[str] = ()) -> None:
        super().__init__(name, help_text, labels)
        self._values: dict[Labels, float] = {}
        if not self.labelnames:
            self._values[()] = 0

    def inc(self, *labels: str, amount: float = 1) -> None:
        if amount < 0:
            raise ValueError("a counter only goes up")
        key = self._key(labels)
        self._values[key] = self._values.get(key, 0) + amount

    def touch(self, *labels: str) -> None:
        """Make the series exist at 0 (so rates work from the first event)."""
        self._values.setdefault(self._key(labels), 0)

    def value(self, *labels: str) -> float:
        return self._values.get(self._key(labels), 0)

    def samples(self) -> list[str]:
        return [f"{self.name}{_labels(self.labelnames, k)} {_number(v)}" for k, v in sorted(self._values.items())]


class Gauge(_Metric):
    """A gauge read at scrape time from a callback returning ``{labels: value}``."""

    kind = "gauge"

    def __init__(self, name: str, help_text: str, read: Callable[[], dict[Labels, float]],
                 labels: Sequence[str] = ()) -> None:
        super().__init__(name, help_text, labels)
        self._read = read

    def samples(self) -> list[str]:
        return [f"{self.name}{_labels(self.labelnames, k)} {_number(v)}" for k, v in sorted(self._read().items())]


class Histogram(_Metric):
    kind = "histogram"

    def __init__(self, name: str, help_text: str, labels: Sequence[str] = (),
                 buckets: Sequence[float] = LATENCY_BUCKETS) -> None:
        super().__init__(name, help_text, labels)
        self.buckets = tuple(sorted(buckets))
        self._counts: dict[Labels, list[int]] = {}
        self._sums: dict[Labels, float] = {}

    def observe(self, value: float, *labels: str) -> None:
        key = self._key(labels)
        counts = self._counts.setdefault(key, [0] * (len(self.buckets) + 1))
        for i, bound in enumerate(self.buckets):
            if value <= bound:
                counts[i] += 1
        counts[-1] += 1
        self._sums[key] = self._sums.get(key, 0.0) + value

    def count(self, *labels: str) -> int:
        return self._counts.get(self._key(labels), [0])[-1]

    def samples(self) -> list[str]:
        out = []
        for key, counts in sorted(self._counts.items()):
            for bound, n in zip((*self.buckets, math.inf), counts, strict=True):
                le = 'le="' + _number(bound) + '"'
                out.append(f"{self.name}_bucket{_labels(self.labelnames, key, le)} {n}")
            out.append(f"{self.name}_sum{_labels(self.labelnames, key)} {_number(self._sums[key])}")
            out.append(f"{self.name}_count{_labels(self.labelnames, key)} {counts[-1]}")
        return out


_M = TypeVar("_M", bound=_Metric)


class Registry:
    def __init__(self) -> None:
        self._metrics: list[_Metric] = []

    def add(self, metric: _M) -> _M:
        self._metrics.append(metric)
        return metric

    def render(self) -> str:
        lines: list[str] = []
        for m in self._metrics:
            lines += m.header() + m.samples()
        return "\n".join(lines) + "\n"


class ServerMetrics:
    """The service's metrics; ``observe_*`` methods are called by the handlers."""

    def __init__(self, backends: Iterable[str], *, health: Callable[[], dict[str, bool]] | None = None,
                 in_flight: Callable[[], int] | None = None) -> None:
        self.registry = r = Registry()
        self.appraisals = r.add(Counter("ratsfed_appraisals_total", "Appraisals answered, by result status "
                                        "(error: no result could be produced).", ["status"]))
        self.appraisal_seconds = r.add(Histogram("ratsfed_appraisal_duration_seconds",
                                                 "Time to produce a result, whole appraisal."))
        self.quorum_failures = r.add(Counter("ratsfed_quorum_failures_total",
                                             "Combined results with status none (no tier reached k)."))
        self.outcomes = r.add(Counter("ratsfed_backend_outcomes_total", "Votes by backend and outcome.",
                                      ["backend", "outcome"]))
        self.latency = r.add(Histogram("ratsfed_backend_latency_seconds", "Backend answer latency.", ["backend"]))
        self.dissents = r.add(Counter("ratsfed_backend_dissents_total",
                                      "Appraisals in which a backend's ok vote differed from the combined status.",
                                      ["backend"]))
        self.rejected = r.add(Counter("ratsfed_rejected_requests_total",
                                      "Requests refused by a limit or by auth.", ["reason"]))
        self.requests = r.add(Counter("ratsfed_http_requests_total", "HTTP requests by route and status code.",
                                      ["method", "route", "code"]))
        self.sessions_created = r.add(Counter("ratsfed_sessions_created_total", "Sessions created."))
        self._sessions = 0
        r.add(Gauge("ratsfed_sessions", "Live challenge-response sessions.", lambda: {(): self._sessions}))
        if in_flight is not None:
            reader = in_flight
            r.add(Gauge("ratsfed_appraisals_in_flight", "Appraisals running now.", lambda: {(): reader()}))
        if health is not None:
            states = health
            r.add(Gauge("ratsfed_backend_healthy", "1 when the backend is not in a failure streak.",
                        lambda: {(n,): float(ok) for n, ok in states().items()}, ["backend"]))
        for s in STATUSES:
            self.appraisals.touch(s)
        for b in backends:
            self.dissents.touch(b)
            self.outcomes.touch(b, Outcome.OK.value)

    def observe_appraisal(self, status: str, seconds: float, votes: Sequence[Vote],
                          decision: Decision | None) -> None:
        self.appraisals.inc(status)
        self.appraisal_seconds.observe(seconds)
        for v in votes:
            self.outcomes.inc(v.backend, v.outcome.value)
            if v.latency_ms is not None:
                self.latency.observe(v.latency_ms / 1000, v.backend)
        if decision is not None:
            if status == "none":
                self.quorum_failures.inc()
            for name in decision.dissented:
                self.dissents.inc(name)

    def render(self, sessions: int) -> str:
        self._sessions = sessions
        return self.registry.render()
