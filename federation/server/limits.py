"""Admission limits: appraisals in flight (503 + Retry-After) and request body size (413).

The gate does not queue: a request over the limit is refused at once with ``Retry-After``, so
load beyond capacity shows up as fast 503s for the client (or a load balancer) to act on, not as
a growing queue of appraisals whose deadlines pass while they wait.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from aiohttp import web

from .problems import Problem

__all__ = ["Gate", "check_length"]


class Gate:
    def __init__(self, limit: int, *, retry_after: int = 1) -> None:
        if limit < 1:
            raise ValueError("limit must be >= 1")
        self.limit = limit
        self.retry_after = retry_after
        self.in_flight = 0

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """Hold one of the ``limit`` slots, or raise a 503 problem when none is free."""
        if self.in_flight >= self.limit:
            raise Problem(503, f"{self.limit} appraisals in progress; retry later",
                          headers={"Retry-After": str(self.retry_after)})
        self.in_flight += 1
        try:
            yield
        finally:
            self.in_flight -= 1


def check_length(request: web.Request, max_body: int) -> None:
    """Refuse a declared body over the limit before reading it (aiohttp enforces it while reading)."""
    length = request.content_length
    if length is not None and length > max_body:
        raise Problem(413, f"request body of {length} bytes exceeds the limit of {max_body} bytes")
