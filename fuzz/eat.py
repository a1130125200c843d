"""verifiers.local.evidence.eat: decode_eat and verify_eat (CWT and JWT) under a fixed key, the EAT sniffer."""

from __future__ import annotations

import hashlib

from fuzz._harness import NOW, fixed_anchor, fixed_key, read_vectors, typed_errors_only
from verifiers.local.evidence import eat
from verifiers.local.evidence.measured_component import MeasuredComponent, Version

T = int(NOW.timestamp())


def seeds() -> list[bytes]:
    components = (
        MeasuredComponent("bootloader", "sha-256", hashlib.sha256(b"bl").digest(), version=Version("1.2.3", 16384),
                          authorities=(hashlib.sha256(b"signer").digest(),), flags=bytes(7) + b"\x01"),
        MeasuredComponent("kernel", 7, hashlib.sha384(b"k").digest()),
        MeasuredComponent("config", raw=b"\x00\x01"),
    )
    claims = eat.EatClaims(nonces=(hashlib.sha256(b"n").digest(),), ueid=b"\x01" + bytes(32), oemid=4128,
                           hwmodel=b"board-7", swname="firmware", swversion=Version("2.0.1"),
                           measurements=components, iat=T - 60, exp=T + 300)
    minimal = eat.EatClaims(nonces=(bytes(8),))
    out = [eat.encode_eat(c, fixed_key(), fmt=f) for c in (claims, minimal) for f in ("cwt", "jwt")]
    return out + read_vectors("ietf-rats-msg-wrap/eat-example-1.json")


def _run(data: bytes) -> None:
    eat.sniff(data)
    eat.verify_eat(data, fixed_anchor(), NOW)


TestOneInput = typed_errors_only(_run)
