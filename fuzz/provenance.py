"""federation.provenance and result: what a relying party reads from a combined EAR after its outer
signature verified: the provenance claim, then the re-verification of every embedded vote."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

from federation import cbor
from federation.ear.codec import from_cbor_claims, from_json_claims, to_cbor_claims, to_json_claims
from federation.ear.model import Spelling
from federation.ear.token import decode_json, encode_ear
from federation.provenance import CBOR_KEY, claim_name, find_provenance, parse_provenance
from federation.quorum import QuorumPolicy, decide
from federation.result import _reverify, build_combined
from federation.votes import Outcome, Vote
from fuzz._harness import NOW, attempt, fixed_anchor, fixed_key, read_vectors

T = int(NOW.timestamp())
NONCE = bytes(range(32))
NAMES = ("alpha", "beta", "gamma")
PROVENANCE_CLAIMS = tuple(claim_name(s) for s in Spelling)


def seeds() -> list[bytes]:
    out: list[bytes] = []
    key = fixed_key()
    for doc in read_vectors("veraison-ear/ear-claims.json", "veraison-ear/ear-claims-tv-ok.json"):
        try:
            ear = replace(from_json_claims(decode_json(doc)), iat=T, nonce=NONCE)
        except Exception:
            continue
        token = encode_ear(ear, key)
        votes = (*(Vote(n, f"op-{n}", "local", Outcome.OK, ear=ear, raw=token, key_thumbprint=key.public.thumbprint)
                   for n in NAMES[:2]), Vote(NAMES[2], "op-gamma", "remote", Outcome.TIMEOUT))
        policy = QuorumPolicy(k=2, n=3)
        for fmt, spelling in (("jwt", Spelling.VERAISON), ("jwt", Spelling.DRAFT03), ("cwt", Spelling.VERAISON)):
            _, combined = build_combined(
                federation_id="fuzz", decision=decide(policy, votes), votes=votes, nonce=NONCE, now=T, ttl=300,
                key=key, fmt=fmt, spelling=spelling, embed=True, evidence_media_type="application/x",  # type: ignore[arg-type]
                evidence=b"evidence")
            if fmt == "jwt":
                out.append(b"j" + json.dumps(to_json_claims(combined, spelling)).encode())
            else:
                out.append(b"c" + cbor.dumps(to_cbor_claims(combined, spelling)))
    return out


def _combined(data: bytes) -> None:
    ear = from_cbor_claims(cbor.loads(data[1:])) if data[:1] == b"c" else from_json_claims(decode_json(data[1:]))
    raw = find_provenance(ear)
    if raw is None:
        return
    prov = parse_provenance(raw)
    anchors = {v.name: fixed_anchor() for v in prov.votes}
    _reverify(prov, ear, anchors, 60)


def _bare(data: bytes) -> None:
    doc: Any = cbor.loads(data[1:]) if data[:1] == b"c" else decode_json(data[1:])
    if isinstance(doc, dict):  # the claim inside a claims-set, or a bare provenance map
        doc = next((doc[k] for k in (*PROVENANCE_CLAIMS, CBOR_KEY) if k in doc), doc)
    parse_provenance(doc)


def TestOneInput(data: bytes) -> None:
    attempt(lambda: _combined(data), lambda: _bare(data))
