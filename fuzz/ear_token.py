"""federation.ear.token: peek_claims, and verify_ear (JWT and CWT) under a fixed anchor, nonce and time."""

from __future__ import annotations

from dataclasses import replace

from federation.ear.codec import from_json_claims
from federation.ear.model import Spelling
from federation.ear.token import Format, decode_json, encode_ear, peek_claims, verify_ear
from fuzz._harness import NOW, attempt, fixed_anchor, fixed_key, read_vectors

NONCE = bytes(range(32))
FORMATS: tuple[Format, ...] = ("jwt", "cwt")


def seeds() -> list[bytes]:
    out = read_vectors("**/*.jwt")
    key = fixed_key()
    for doc in read_vectors("veraison-ear/ear-claims*.json"):
        try:
            ear = from_json_claims(decode_json(doc))
        except Exception:
            continue
        ear = replace(ear, iat=int(NOW.timestamp()), nonce=NONCE)
        for fmt in FORMATS:
            for spelling in Spelling:
                out.append(encode_ear(ear, key, fmt=fmt, spelling=spelling))
    return out


def TestOneInput(data: bytes) -> None:
    attempt(lambda: peek_claims(data),
            lambda: verify_ear(data, fixed_anchor(), now=NOW, nonce=NONCE, max_age=3600))
