"""How commands report: exit codes by status (DESIGN "Public surfaces") and JSON-safe output."""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from typing import Any

from ..ar4si import Tier
from ..errors import Error
from ..keys import b64url_encode

__all__ = ["EXIT_ERROR", "exit_code", "fail", "jsonable", "print_json"]

EXIT_ERROR = 2
_EXIT = {Tier.AFFIRMING: 0, Tier.WARNING: 3, Tier.CONTRAINDICATED: 4, Tier.NONE: 5}


def exit_code(status: Tier) -> int:
    return _EXIT[status]


def jsonable(value: Any) -> Any:
    """CBOR-decoded values made printable: bytes as base64url, tags as {"tag", "value"}."""
    if isinstance(value, bytes):
        return b64url_encode(value)
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if hasattr(value, "tag") and hasattr(value, "value"):
        return {"tag": value.tag, "value": jsonable(value.value)}
    return value


def print_json(doc: Mapping[str, Any]) -> None:
    json.dump(jsonable(doc), sys.stdout, indent=2, sort_keys=False)
    sys.stdout.write("\n")


def fail(exc: Error, *, as_json: bool) -> int:
    """Report a typed error (reason + detail) and return the error exit code."""
    if as_json:
        print_json({"status": "none", "verified": False, "error": {"reason": exc.reason, "detail": exc.detail}})
    else:
        print(f"ratsfed: {exc}", file=sys.stderr)
    return EXIT_ERROR
