"""Structured logs: one JSON object per line (or ``key=value`` text), fields under ``ratsfed``.

Callers pass fields as ``extra={"ratsfed": {...}}``. What is logged about a request: method,
route, status, duration, a request id; about an appraisal: the session id, evidence media type,
size and SHA-256 prefix, the status and the decision line. Never logged: evidence bytes, tokens
(results or bearer), keys, the ``Authorization`` header.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any

__all__ = ["JsonFormatter", "TextFormatter", "configure"]


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    extra = getattr(record, "ratsfed", None)
    return dict(extra) if isinstance(extra, dict) else {}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
            **_fields(record),
        }
        if record.exc_info:
            doc["exc"] = self.formatException(record.exc_info)
        return json.dumps(doc, default=str, separators=(",", ":"))


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = f"{record.levelname.lower()} {record.name}: {record.getMessage()}"
        fields = " ".join(f"{k}={v}" for k, v in _fields(record).items())
        out = f"{line} {fields}".rstrip()
        if record.exc_info:
            out += "\n" + self.formatException(record.exc_info)
        return out


def configure(level: str = "info", fmt: str = "json") -> None:
    """Route ``ratsfed.*`` and ``verifiers.*`` logs (the remote backends' clients: trust on first
    use, session clean-up) to stderr in *fmt* at *level* (aiohttp's own loggers at warning)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    for name in ("ratsfed", "verifiers"):
        root = logging.getLogger(name)
        root.handlers[:] = [handler]
        root.setLevel(level.upper())
        root.propagate = False
    aio = logging.getLogger("aiohttp")
    aio.handlers[:] = [handler]
    aio.setLevel(logging.WARNING)
    aio.propagate = False
