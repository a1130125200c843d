"""federation.config.parse_config on arbitrary documents (TOML or JSON), as ``ratsfed serve`` loads them.

A config is operator input, not attacker input, but a typo must be a ConfigError naming the key,
never a traceback; nothing here reads the files a config names.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from federation.config import parse_config
from federation.ear.token import decode_json
from fuzz._harness import REPO, typed_errors_only

PATH = Path("/nonexistent/ratsfed-fuzz/config.toml")


def seeds() -> list[bytes]:
    return [b"t" + p.read_bytes() for p in sorted((REPO / "config").glob("*.toml"))]


def _run(data: bytes) -> None:
    doc: Any
    if data[:1] == b"t":
        try:
            doc = tomllib.loads(data[1:].decode("utf-8"))
        except (UnicodeDecodeError, tomllib.TOMLDecodeError):
            return  # load_config reports these; the document never reaches parse_config
    else:
        doc = decode_json(data[1:])
        if not isinstance(doc, dict):
            return  # TOML documents are always tables
    parse_config(doc, PATH)


TestOneInput = typed_errors_only(_run)
