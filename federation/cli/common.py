"""Argument helpers shared by commands: reading inputs, times and nonces (all validated)."""

from __future__ import annotations

import argparse
import sys
from datetime import datetime
from pathlib import Path

from ..errors import UsageError

__all__ = ["parse_nonce", "parse_time", "read_input"]

_MAX_INPUT = 4 << 20  # bytes


def read_input(name: str) -> bytes:
    """A file's bytes, or standard input for ``-``; bounded."""
    if name == "-":
        data = sys.stdin.buffer.read(_MAX_INPUT + 1)
    else:
        try:
            with Path(name).open("rb") as fh:
                data = fh.read(_MAX_INPUT + 1)
        except OSError as exc:
            raise UsageError(f"{name}: {exc.strerror}") from exc
    if len(data) > _MAX_INPUT:
        raise UsageError(f"{name}: larger than {_MAX_INPUT} bytes")
    return data


def parse_time(value: str) -> int:
    """``--at``: seconds since the epoch, or an ISO 8601 time (UTC unless it says otherwise)."""
    if value.lstrip("-").isdigit():
        return int(value)
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not an epoch or ISO 8601 time: {value!r}") from exc
    if when.tzinfo is None:
        from datetime import UTC

        when = when.replace(tzinfo=UTC)
    return int(when.timestamp())


def parse_nonce(value: str) -> bytes:
    try:
        nonce = bytes.fromhex(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError("nonce must be hex") from exc
    if not 8 <= len(nonce) <= 64:
        raise argparse.ArgumentTypeError("nonce must be 8..64 bytes")
    return nonce
