"""The provenance claim of a combined result: who was asked, what each said, and on what policy.

Why it exists: a relying party should not have to trust the federator's arithmetic. The claim
records the policy, every backend's outcome, the SHA-256 of each raw result and the thumbprint of
the key that signed it, and (with ``embed_results``) the raw results themselves, so that
:func:`federation.result.verify_result` can re-verify every vote and recompute the decision.

The claim is a JSON-compatible map (text keys, digests and raw CWTs as base64url text) in both
JWT and CWT results, so one parser serves both. Claim name by spelling: ``ear.ratsfed.provenance``
(Veraison/dotted), ``ear_ratsfed_provenance`` (draft -03); CWT key -71000 (private range).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .binding import Binding, BindingStrength
from .ear.model import Ear, Spelling
from .errors import ConfigError, MalformedError
from .keys import b64url_decode, b64url_encode
from .quorum import Decision, QuorumPolicy
from .votes import Outcome, Vote

__all__ = [
    "CBOR_KEY",
    "ENDORSEMENTS_EXTENSION",
    "Provenance",
    "RecordedVote",
    "build_provenance",
    "claim_name",
    "digest",
    "find_provenance",
    "parse_provenance",
]

CBOR_KEY = -71000
VERSION = 1
ENDORSEMENTS_EXTENSION = "ear_ratsfed_endorsements"  # appraisal extension set by local appraisers
_NAMES = {Spelling.VERAISON: "ear.ratsfed.provenance", Spelling.DRAFT03: "ear_ratsfed_provenance"}
_MAX_VOTES = 256


def claim_name(spelling: Spelling) -> str:
    return _NAMES[spelling]


def digest(raw: bytes) -> str:
    return b64url_encode(hashlib.sha256(raw).digest())


def _raw_text(vote: Vote) -> str | None:
    if vote.raw is None:
        return None
    try:
        text = vote.raw.decode("ascii")
    except UnicodeDecodeError:
        return b64url_encode(vote.raw)
    return text if text.startswith("ey") else b64url_encode(vote.raw)


def _vote_entry(vote: Vote, embed: bool, rename: Mapping[str, str] | None = None,
                nonce_mode: str | None = None) -> dict[str, Any]:
    entry: dict[str, Any] = {"name": vote.backend, "operator": vote.operator, "kind": vote.kind,
                             "outcome": vote.outcome.value}
    if nonce_mode:
        entry["nonce"] = nonce_mode  # what the backend was sent instead of the session nonce
    if vote.binding:
        entry["binding"] = vote.binding
    if rename:
        entry["rename"] = dict(rename)  # backend submod name -> federation name, for re-verification
    if vote.detail:
        entry["detail"] = vote.detail[:300]
    if vote.ear is not None:
        entry["status"] = vote.ear.status.label
        entry["submods"] = {n: a.status.label for n, a in vote.ear.submods.items()}
        entry["iat"] = vote.ear.iat
    if vote.raw is not None:
        entry["result_sha256"] = digest(vote.raw)
        if vote.media_type:
            entry["media_type"] = vote.media_type
        if embed:
            entry["result"] = _raw_text(vote)
    if vote.key_thumbprint:
        entry["key_thumbprint"] = vote.key_thumbprint
    if vote.latency_ms is not None:
        entry["latency_ms"] = round(vote.latency_ms, 3)
    return entry


def _endorsements(votes: Sequence[Vote]) -> list[Any]:
    """Collect who endorsed the reference values the local appraisers matched (deduplicated)."""
    seen: list[Any] = []
    for v in votes:
        if v.ear is None:
            continue
        for a in v.ear.submods.values():
            for item in a.extensions.get(ENDORSEMENTS_EXTENSION) or ():
                if item not in seen:
                    seen.append(item)
    return seen


def build_provenance(*, federation_id: str, decision: Decision, votes: Sequence[Vote], embed: bool,
                     evidence_media_type: str, evidence_sha256: str,
                     renames: Mapping[str, Mapping[str, str]] | None = None, binding: Binding | None = None,
                     nonce_modes: Mapping[str, str] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "version": VERSION,
        "federation": federation_id,
        "policy": decision.policy.as_dict(),
        "decision": decision.explain(),
        "evidence": {"media_type": evidence_media_type, "sha256": evidence_sha256},
        "votes": [_vote_entry(v, embed, (renames or {}).get(v.backend), (nonce_modes or {}).get(v.backend))
                  for v in votes],
    }
    if binding is not None and (binding.challenges or binding.prefix or nonce_modes or any(
            v.binding not in (None, BindingStrength.EVIDENCE) for v in votes)):
        # What the Evidence had to commit to (federation.binding), so an RP can rebuild the rule.
        out["binding"] = {**binding.describe(),
                          "challenges": {n: b64url_encode(c) for n, c in sorted(binding.challenges.items())}}
    endorsements = _endorsements(votes)
    if endorsements:
        out["endorsements"] = endorsements
    return out


@dataclass(frozen=True, slots=True)
class RecordedVote:
    name: str
    operator: str
    kind: str
    outcome: Outcome
    status: str | None
    submods: Mapping[str, str]
    result_sha256: str | None
    result: bytes | None  # the embedded raw result, when present
    key_thumbprint: str | None
    media_type: str | None
    rename: Mapping[str, str] = field(default_factory=dict)  # the member's submod renaming, if any
    nonce_mode: str | None = None  # "report-data": the backend was sent the binding's REPORT_DATA
    binding: str | None = None  # BindingStrength of the vote


@dataclass(frozen=True, slots=True)
class Provenance:
    federation: str
    policy: QuorumPolicy
    decision: str
    votes: tuple[RecordedVote, ...]
    endorsements: tuple[Any, ...]
    raw: Mapping[str, Any]


def _str(m: Mapping[str, Any], key: str, optional: bool = False) -> Any:
    value = m.get(key)
    if value is None and optional:
        return None
    if not isinstance(value, str):
        raise MalformedError(f"provenance: {key!r} must be text")
    return value


def _result_bytes(text: str | None) -> bytes | None:
    if text is None:
        return None
    if not text.startswith("ey"):
        return b64url_decode(text)
    if not text.isascii():  # found by fuzzing (fuzz/provenance.py): a JWT is ASCII
        raise MalformedError("provenance: embedded result is not an ASCII JWT")
    return text.encode("ascii")


def parse_provenance(raw: Any) -> Provenance:
    """Parse (untrusted until the combined token verified) provenance into typed records."""
    if not isinstance(raw, Mapping) or raw.get("version") != VERSION:
        raise MalformedError("provenance: not a version-1 provenance map")
    pol = raw.get("policy")
    votes = raw.get("votes")
    if not isinstance(pol, Mapping) or not isinstance(votes, list) or len(votes) > _MAX_VOTES:
        raise MalformedError("provenance: policy and votes are required")
    try:
        policy = QuorumPolicy(k=pol["k"], n=pol["n"], veto=pol["veto"], wait=pol["wait"],
                              distinct_operators=pol["distinct_operators"], id=pol["id"],
                              weak_binding=pol.get("weak_binding", False))
    except (KeyError, TypeError, ValueError, ConfigError) as exc:
        raise MalformedError(f"provenance: bad policy: {exc}") from exc
    records = []
    for v in votes:
        if not isinstance(v, Mapping):
            raise MalformedError("provenance: vote must be a map")
        try:
            outcome = Outcome(str(v.get("outcome")))
        except ValueError as exc:
            raise MalformedError("provenance: unknown outcome") from exc
        submods = v.get("submods") or {}
        if not isinstance(submods, Mapping):
            raise MalformedError("provenance: submods must be a map")
        rename = v.get("rename") or {}
        if not isinstance(rename, Mapping) or not all(
                isinstance(a, str) and isinstance(b, str) for a, b in rename.items()):
            raise MalformedError("provenance: rename must be a map of text to text")
        records.append(RecordedVote(
            _str(v, "name"), _str(v, "operator"), _str(v, "kind"), outcome, _str(v, "status", True),
            dict(submods), _str(v, "result_sha256", True), _result_bytes(_str(v, "result", True)),
            _str(v, "key_thumbprint", True), _str(v, "media_type", True), dict(rename),
            _str(v, "nonce", True), _str(v, "binding", True),
        ))
    endorsements = raw.get("endorsements") or []
    return Provenance(_str(raw, "federation"), policy, _str(raw, "decision"), tuple(records),
                      tuple(endorsements) if isinstance(endorsements, list) else (), raw)


def find_provenance(ear: Ear) -> Any:
    """The provenance claim of a decoded EAR, under any of its names, or None."""
    for key in (*_NAMES.values(), CBOR_KEY):
        if key in ear.extra:
            return ear.extra[key]
    return None
