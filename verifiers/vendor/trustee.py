"""Confidential Containers Trustee attestation-service EARs.

Trustee already answers in EAR: ES256 JWTs whose submodules (``cpu0``, ``gpu0``, ...) carry a
trust vector its rego policy computed. The vector passes through unchanged (claim names of both
generations, ``ear.trustworthiness-vector`` and ``ear_trustworthiness_vector``, are read); each
submodule's status is recomputed from it and never better than what Trustee reported. ``iss``
is optional (Trustee's own example has none); ``expect["issuer"]`` makes it required, and
``expect["policy_ids"]`` requires every submodule's ``ear.appraisal-policy-id`` to be the first of
them (the one Trustee's broker uses).

Keys: Trustee puts its verification key in the token's own ``jwk`` header. That key is
self-asserted and never used: the anchor is the AS's ``/.well-known/jwks.json`` (or a pinned
certificate) as configured. The pre-EAR CoCo AS token (RS384, key in a ``jwk`` claim) is refused.

Binding: Trustee checks REPORT_DATA = hash(runtime_data), zero-padded to 64 bytes, itself, and
echoes it as ``ear.veraison.annotated-evidence.report_data``; every submodule that echoes one must
echo the session's REPORT_DATA (strength ``report-data``). Trustee EARs carry no ``eat_nonce``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from federation.ar4si import CLAIMS, TrustVector
from federation.binding import Binding, BindingStrength
from federation.ear.codec import from_json_claims
from federation.ear.model import Appraisal, Ear
from federation.ear.token import VerifiedEar
from federation.errors import MalformedError, NonceMismatchError, PolicyError
from federation.keys import TrustAnchor

from ..base import RawResult
from ..normalize import Check, register_checker
from .common import (
    ANNOTATED,
    EMPTY,
    POLICY_CLAIMS,
    Service,
    VendorView,
    check_depth,
    report_data_equal,
    require_session,
    status_of,
    verify_signed,
)
from .mapping import KEEP, PASS, Always, MappingTable, Naming, Rule

__all__ = ["SERVICE", "TABLE", "check", "map_claims", "verify_token"]

TABLE = MappingTable(
    service="trustee",
    version=1,
    title="Confidential Containers Trustee",
    views="each submodule's `ear.trustworthiness-vector` (or `ear_trustworthiness_vector`); its status is "
          "recomputed from the vector and never better than Trustee's `ear.status`.",
    naming=(Naming("submods", (), KEEP, "`cpu0`, `gpu0`, `dcu0`, ..."),),
    rules=tuple(
        Rule(Always("always"), claim, PASS, "Trustee's rego policy decided it (its default policy gives hardware "
             "97, executables 33, configuration 36 without reference values)" if claim == "hardware"
             else "passed through; absent stays absent", label="`ear.trustworthiness-vector`")
        for claim in CLAIMS
    ),
)

SERVICE = Service(kind="trustee", title="Confidential Containers Trustee", developer="https://confidentialcontainers"
                  ".org", algorithms=("ES256",), max_token=64 << 10, table=TABLE, require_exp=False,
                  checks="The key in the token's own `jwk` header is never used. With the member's "
                         "`expect.policy_ids`, every submodule's `ear.appraisal-policy-id` must be the first of them "
                         "(policy). Binding: every submodule's "
                         "`ear.veraison.annotated-evidence.report_data` that is present must be the session's "
                         "REPORT_DATA (zero-padded to 64 bytes).")


def _report_data(appraisal: Appraisal) -> Any:
    evidence = appraisal.extensions.get(ANNOTATED)
    return evidence.get("report_data") if isinstance(evidence, Mapping) else None


def _bind(ear: Ear, binding: Binding | None, nonce: bytes | None) -> BindingStrength | None:
    expected = binding.report_data if binding is not None else nonce
    if expected is None:
        return None
    echoes = [rd for a in ear.submods.values() if (rd := _report_data(a)) is not None]
    if not echoes:
        raise NonceMismatchError("trustee: no submodule echoes the REPORT_DATA Trustee verified")
    if not all(report_data_equal(rd, expected) for rd in echoes):
        raise NonceMismatchError("trustee: report_data is not this session's REPORT_DATA")
    return BindingStrength.REPORT_DATA


def _map(claims: Mapping[str, Any], expect: Mapping[str, Any]
         ) -> tuple[Ear, dict[str, dict[str, Any]], dict[str, dict[str, int | None]]]:
    ear = from_json_claims(claims)
    wanted = tuple(expect.get("policy_ids") or ())
    if wanted:  # Trustee's EAR broker appraises under the first policy id it was sent
        for name, a in ear.submods.items():
            if wanted[0] not in a.policy_ids:
                raise PolicyError(f"trustee: submodule {name!r:.20} was not appraised under policy {wanted[0]!r:.60}")
    submods: dict[str, Appraisal] = {}
    evidence: dict[str, dict[str, Any]] = {}
    fired: dict[str, dict[str, int | None]] = {}
    for name, a in ear.submods.items():
        given = a.trust_vector or TrustVector()
        vector, rows = TABLE.evaluate(name, {}, expect, given=given)
        reported = a.reported_status or a.status
        status = status_of(reported, vector)
        policy_claims = a.extensions.get(POLICY_CLAIMS)
        if policy_claims is not None and not isinstance(policy_claims, Mapping):
            raise MalformedError(f"trustee: submodule {name!r:.20}: ear.veraison.policy-claims is not an object")
        ext = {**a.extensions, POLICY_CLAIMS: {**(policy_claims or {}), "vendor-map": TABLE.id}}
        submods[name] = Appraisal(status, vector, (*a.policy_ids, TABLE.policy_id),
                                  reported if reported is not status else None, ext)
        annotated = a.extensions.get(ANNOTATED)
        evidence[name] = dict(annotated) if isinstance(annotated, Mapping) else {}
        fired[name] = rows
    out = Ear(ear.profile, ear.iat, ear.verifier_id, submods, exp=ear.exp, nonce=ear.nonce)
    return out, evidence, fired


def verify_token(token: bytes | str, anchor: TrustAnchor, *, now: int, expect: Mapping[str, Any] = EMPTY,
                 binding: Binding | None = None, nonce: bytes | None = None, leeway: int = 60,
                 max_age: int | None = None) -> VendorView:
    """Verify a Trustee EAR under *anchor* at *now*, check its REPORT_DATA echo, pass its vectors through."""
    claims, key, alg, raw, _, _ = verify_signed(SERVICE, token, anchor, now=now, expect=expect, leeway=leeway,
                                                max_age=max_age)
    ear, evidence, fired = _map(claims, expect)
    strength = _bind(ear, binding, nonce)
    return VendorView("trustee", ear, key, alg, claims, strength, evidence, TABLE.id, fired, raw)


def map_claims(claims: Mapping[str, Any], *, expect: Mapping[str, Any] = EMPTY) -> VendorView:
    """Map a claims set *without verifying anything* (Trustee's documented example, tests)."""
    check_depth(dict(claims))
    ear, evidence, fired = _map(claims, expect)
    return VendorView("trustee", ear, None, None, claims, None, evidence, TABLE.id, fired)


def check(raw: RawResult, check: Check) -> VerifiedEar:
    """The federation's checker for kind ``trustee`` (fails closed without a nonce or binding)."""
    require_session(check, "trustee")
    return verify_token(raw.token, check.anchor, now=check.now, expect=check.expect, binding=check.binding,
                        nonce=check.nonce, leeway=check.leeway, max_age=check.max_age).verified_ear()


register_checker("trustee", check)
