"""federation.cbor.loads: the strict, bounded CBOR decoder every CBOR format goes through."""

from __future__ import annotations

from federation import cbor
from fuzz._harness import read_vectors, typed_errors_only


def seeds() -> list[bytes]:
    raw = read_vectors("**/*.cbor", "**/*.cose", "veraison-psatoken/**/*.bin")
    return [*(b"\x00" + r for r in raw), *(b"\x01" + r for r in raw),
            b"\x00" + cbor.dumps({1: [b"x", "y", -3, 1.5, None, True, cbor.CBORTag(501, {"a": 0})]}),
            b"\x01\x9f\x01\xbf\x61a\x02\xff\x5f\x41a\xff\xff"]


def _run(data: bytes) -> None:
    # The first byte picks the options (indefinite lengths allowed or not, a small depth bound).
    options = data[:1]
    body = data[1:]
    allow = bool(options and options[0] & 1)
    depth = 4 if options and options[0] & 2 else cbor.DEFAULT_MAX_DEPTH
    value = cbor.loads(body, allow_indefinite=allow, max_depth=depth)
    cbor.dumps(value)  # whatever decodes can be re-encoded (or is refused with a typed error)


TestOneInput = typed_errors_only(_run)
