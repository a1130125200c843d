"""The combined result: building the signed EAR, and verifying one as a relying party would.

``verify_result(..., reverify=True)`` is the RP's independent check: it re-verifies every
embedded backend result under the RP's own anchors for those backends, recomputes the digests
and the quorum decision, and refuses a token whose verdict does not follow from its votes.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from verifiers.base import RawResult
from verifiers.normalize import Check, checker_for, normalize

from .binding import Binding, BindingStrength
from .ear.model import Appraisal, Ear, Spelling, VerifierId
from .ear.token import Format, VerifiedEar, encode_ear, verify_ear
from .errors import BadSignatureError, Error, MalformedError, PolicyError, UntrustedKeyError
from .keys import SigningKey, TrustAnchor, b64url_decode, load_trust_anchor
from .provenance import (
    CBOR_KEY,
    Provenance,
    build_provenance,
    claim_name,
    digest,
    find_provenance,
    parse_provenance,
)
from .quorum import Decision, QuorumPolicy, decide
from .votes import Outcome, Vote

__all__ = ["AppraisalResult", "VerifiedResult", "build_combined", "verify_result"]

DEVELOPER = "rats-federation"
BUILD = "ratsfed 0.1.0"


@dataclass(frozen=True, slots=True)
class AppraisalResult:
    """What :meth:`federation.Federation.appraise` returns."""

    token: bytes
    ear: Ear
    decision: Decision
    votes: tuple[Vote, ...]
    nonce: bytes
    format: Format

    @property
    def status(self) -> str:
        return self.decision.status.label

    @property
    def claims(self) -> dict[str, Any]:
        """The combined claims-set in JSON form (as a JWT carries it)."""
        from .ear.codec import to_json_claims

        return to_json_claims(self.ear)


def build_combined(
    *,
    federation_id: str,
    decision: Decision,
    votes: tuple[Vote, ...],
    nonce: bytes,
    now: int,
    ttl: int,
    key: SigningKey,
    fmt: Format,
    spelling: Spelling,
    embed: bool,
    evidence_media_type: str,
    evidence: bytes,
    renames: Mapping[str, Mapping[str, str]] | None = None,
    binding: Binding | None = None,
    nonce_modes: Mapping[str, str] | None = None,
) -> tuple[bytes, Ear]:
    provenance = build_provenance(
        federation_id=federation_id, decision=decision, votes=votes, embed=embed,
        evidence_media_type=evidence_media_type, evidence_sha256=digest(evidence), renames=renames,
        binding=binding, nonce_modes=nonce_modes,
    )
    submods = {
        name: Appraisal(d.status, d.trust_vector, (decision.policy.id,))
        for name, d in decision.submods.items()
    }
    extra: dict[Any, Any] = {claim_name(spelling): provenance} if fmt == "jwt" else {CBOR_KEY: provenance}
    ear = Ear(spelling.profile, now, VerifierId(DEVELOPER, f"{BUILD} ({federation_id})"), submods,
              exp=now + ttl, nonce=nonce, extra=extra)
    return encode_ear(ear, key, fmt=fmt, spelling=spelling), ear


@dataclass(frozen=True, slots=True)
class VerifiedResult:
    """A combined result that verified; ``decision`` is set when the votes were re-verified."""

    verified: VerifiedEar
    provenance: Provenance | None
    decision: Decision | None

    @property
    def ear(self) -> Ear:
        return self.verified.ear

    @property
    def status(self) -> str:
        return self.verified.ear.status.label


def _anchor(keys: TrustAnchor | str | Path) -> TrustAnchor:
    return keys if isinstance(keys, TrustAnchor) else load_trust_anchor(keys)


def _nonce_bytes(ear: Ear) -> bytes | None:
    if ear.nonce is None or isinstance(ear.nonce, bytes):
        return ear.nonce
    return b64url_decode(ear.nonce.replace("+", "-").replace("/", "_"))


def _reverify(prov: Provenance, ear: Ear, anchors: Mapping[str, TrustAnchor], leeway: int) -> Decision:
    if len(prov.votes) != prov.policy.n:
        raise PolicyError(f"provenance lists {len(prov.votes)} votes for n={prov.policy.n}")
    if len({v.name for v in prov.votes}) != len(prov.votes):
        raise PolicyError("provenance lists a backend twice")
    nonce = _nonce_bytes(ear)
    binding = _binding(prov, nonce)
    votes: list[Vote] = []
    for rec in prov.votes:
        if rec.outcome is not Outcome.OK:
            # A recorded failure can only lower the verdict, so it needs no proof.
            votes.append(Vote(rec.name, rec.operator, rec.kind, rec.outcome))
            continue
        if rec.result is None:
            raise MalformedError(f"vote {rec.name!r}: result not embedded (embed_results is off)")
        if rec.result_sha256 != digest(rec.result):
            raise BadSignatureError(f"vote {rec.name!r}: embedded result does not match its digest")
        anchor = anchors.get(rec.name)
        if anchor is None:
            raise UntrustedKeyError(f"no trust anchor given for backend {rec.name!r}")
        sent = nonce
        if rec.nonce_mode == "report-data":
            if binding is None:
                raise MalformedError(f"vote {rec.name!r}: was sent REPORT_DATA but provenance has no binding")
            sent = binding.report_data
        if checker_for(rec.kind) is not None:  # a vendor token: its kind's checker, as the federation ran it
            check = Check(anchor, sent, ear.iat, None, leeway, binding)
            backend = normalize(RawResult(rec.result, rec.media_type or "application/jwt"), check, kind=rec.kind)
        else:
            backend = verify_ear(rec.result, anchor, now=ear.iat, nonce=sent, leeway=leeway)
        if backend.binding is BindingStrength.EAT_NONCE and not prov.policy.weak_binding:
            raise PolicyError(f"vote {rec.name!r}: counted, but bound only by an echoed nonce")
        if rec.key_thumbprint != backend.key.thumbprint:
            raise PolicyError(f"vote {rec.name!r}: recorded key thumbprint differs from the signer")
        if rec.status != backend.ear.status.label:
            raise PolicyError(f"vote {rec.name!r}: recorded status differs from its result")
        renamed = {rec.rename.get(n, n): a for n, a in backend.ear.submods.items()}
        if len(renamed) != len(backend.ear.submods):
            raise PolicyError(f"vote {rec.name!r}: its rename table merges submods")
        votes.append(Vote(rec.name, rec.operator, rec.kind, Outcome.OK, ear=replace(backend.ear, submods=renamed),
                          raw=rec.result, key_thumbprint=backend.key.thumbprint))
    decision = decide(prov.policy, votes)
    for name, d in decision.submods.items():
        claimed = ear.submods.get(name)
        if claimed is None or claimed.status is not d.status or claimed.trust_vector != d.trust_vector:
            raise PolicyError(f"submod {name!r}: combined verdict does not follow from the embedded votes")
    if set(ear.submods) != set(decision.submods):
        raise PolicyError("combined result names submods its votes do not support")
    return decision


def _binding(prov: Provenance, nonce: bytes | None) -> Binding | None:
    """Rebuild the session's REPORT_DATA rule from provenance; it must reproduce the recorded bytes."""
    raw = prov.raw.get("binding")
    if raw is None or nonce is None:
        return None
    try:
        challenges = {str(n): b64url_decode(c) for n, c in dict(raw.get("challenges") or {}).items()}
        prefix = b64url_decode(raw["prefix"]) if raw.get("prefix") else b""
        binding = Binding(nonce, challenges, prefix)
    except (AttributeError, KeyError, TypeError, ValueError, Error) as exc:
        raise MalformedError(f"provenance: bad binding: {exc}") from exc
    if raw.get("report_data") != binding.report_data.hex():
        raise PolicyError("provenance: the recorded REPORT_DATA does not follow from the nonce and challenges")
    return binding


def verify_result(
    token: bytes | str,
    keys: TrustAnchor | str | Path,
    *,
    nonce: bytes | None = None,
    reverify: bool = False,
    anchors: Mapping[str, TrustAnchor] | None = None,
    now: datetime | int | None = None,
    max_age: int | None = None,
    expect_policy: QuorumPolicy | None = None,
    leeway: int = 60,
) -> VerifiedResult:
    """Verify a combined (or any) EAR under *keys*; raise a typed error on any failure.

    With ``reverify`` every ``ok`` vote's embedded result must verify under ``anchors[name]``
    and the decision recomputed from the votes must equal the token's submods. With
    ``expect_policy`` the token's policy must be at least as strict (k, veto, distinctness).
    """
    when = int(time.time()) if now is None else now
    verified = verify_ear(token, _anchor(keys), now=when, nonce=nonce, max_age=max_age, leeway=leeway)
    raw = find_provenance(verified.ear)
    prov = parse_provenance(raw) if raw is not None else None
    if expect_policy is not None:
        if prov is None:
            raise PolicyError("not a combined result: no provenance claim")
        p = prov.policy
        if p.k < expect_policy.k or (expect_policy.veto and not p.veto) or (
                expect_policy.distinct_operators and not p.distinct_operators) or (
                p.weak_binding and not expect_policy.weak_binding):
            raise PolicyError(f"policy {p.describe()} is weaker than required {expect_policy.describe()}")
    decision = None
    if reverify:
        if prov is None:
            raise PolicyError("not a combined result: no provenance claim to re-verify")
        decision = _reverify(prov, verified.ear, anchors or {}, leeway)
    return VerifiedResult(verified, prov, decision)

