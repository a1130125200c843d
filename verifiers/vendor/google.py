"""Google Cloud Attestation / Confidential Space tokens.

RS256 JWTs from ``https://confidentialcomputing.googleapis.com``. OIDC tokens name their key by
``kid`` (anchor: Google's JWKS); PKI tokens carry an ``x5c`` chain that must validate to the
configured Confidential Space root at the verification time (leaves live ~2 months, so
re-verifying an old token needs its time; :func:`_pki_anchor` has the chain profile). Google
exposes no TCB status or measurements: its verdict is the token, so hardware 2 means "genuine
per Google", not "up to date".

Binding: Google cannot bind a caller's nonce into the hardware evidence; it only echoes the caller's
nonces (``options.nonce`` in ``service.proto``) in ``eat_nonce`` (a string or a list). The token
must echo this session's nonce (base64url without padding, as the federation sends it; base64 or the
literal text are accepted too) and the vote is bound at ``eat-nonce`` strength only.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.verification import Criticality, ExtensionPolicy, PolicyBuilder, Store, VerificationError

from federation.binding import Binding, BindingStrength
from federation.ear.model import Ear
from federation.ear.token import VerifiedEar
from federation.errors import MalformedError, NonceMismatchError, UntrustedKeyError
from federation.keys import TrustAnchor, VerificationKey

from ..base import RawResult
from ..normalize import Check, register_checker
from .common import (
    EMPTY,
    Service,
    VendorView,
    appraisal,
    check_depth,
    claims_time,
    make_ear,
    nonce_echoed,
    pick,
    require_session,
    verify_signed,
)
from .mapping import Always, Equals, ExpectedMatch, Lacks, MappingTable, Naming, NoExpectation, Rule

__all__ = ["ISSUER", "SERVICE", "TABLE", "check", "map_claims", "verify_token"]

ISSUER = "https://confidentialcomputing.googleapis.com"
TEE_MODELS = ("GCP_AMD_SEV", "GCP_INTEL_TDX")
IMAGE_DIGEST = "submods.container.image_digest"
SUPPORT = "submods.confidential_space.support_attributes"

TABLE = MappingTable(
    service="google",
    version=1,
    title="Google Cloud Attestation (Confidential Space)",
    views="claims as issued; a dotted name descends into objects (`submods.container.image_digest`). "
          "Reference image digests come from the member's `expect.image_digests`.",
    naming=(
        Naming("hwmodel", ("GCP_AMD_SEV",), "sev", "AMD SEV confidential VM"),
        Naming("hwmodel", ("GCP_INTEL_TDX",), "tdx", "Intel TDX confidential VM"),
        Naming("hwmodel", (), "gce", "the VM itself"),
    ),
    rules=(
        Rule(Always(), "instance-identity", 2, "Google checked the vTPM AK / TD quote before issuing"),
        Rule(Equals("hwmodel", TEE_MODELS), "hardware", 2, "genuine per Google (no TCB status is exposed)"),
        Rule(Equals("hwmodel", ("GCP_SHIELDED_VM",)), "hardware", 32, "a VM without a confidential TEE (value "
             "seen in third-party code, not in Google's samples)"),
        Rule(Always("any other value, or absent"), "hardware", 0, "unknown model: nothing stated",
             label="`hwmodel`"),
        Rule(Equals("dbgstat", ("enabled",)), "configuration", 96, "debug image: the operator can reach the "
             "workload"),
        Rule(Lacks(SUPPORT, "STABLE"), "configuration", 32, "the image is not (or no longer) a supported stable "
             "release"),
        Rule(Equals("dbgstat", ("disabled-since-boot",)), "configuration", 2, "production image"),
        Rule(Always("any other value, or absent"), "configuration", 0, "no debug state stated", label="`dbgstat`"),
        Rule(ExpectedMatch(IMAGE_DIGEST, "image_digests"), "executables", 2, "the workload is a reference image"),
        Rule(ExpectedMatch(IMAGE_DIGEST, "image_digests", negate=True), "executables", 33, "an image the relying "
             "party does not recognize"),
        Rule(NoExpectation("image_digests"), "executables", 0, "nothing to judge the image by",
             label=f"`{IMAGE_DIGEST}`"),
        Rule(Always("always"), "file-system", 0, "nothing stated"),
        Rule(Equals("hwmodel", TEE_MODELS), "runtime-opaque", 2, "SEV/TDX memory encryption"),
        Rule(Always("any other value, or absent"), "runtime-opaque", 0, "no memory encryption stated",
             label="`hwmodel`"),
        Rule(Always("always"), "storage-opaque", 0, "nothing stated"),
        Rule(Always("always"), "sourced-data", 0, "nothing stated"),
    ),
)

SERVICE = Service(kind="google", title="Google Cloud Attestation", developer="https://cloud.google.com/"
                  "confidential-computing", algorithms=("RS256",), max_token=64 << 10, table=TABLE, issuer=ISSUER,
                  checks="`aud` must include the member's `expect.audience` when one is set. PKI tokens: the `x5c` "
                         "chain must validate to a configured root at the appraisal time (a CA's extended key usage "
                         "is not constrained: Google's intermediate carries the TCG EK OID). Binding: `eat_nonce` "
                         "must echo the session nonce (strength `eat-nonce` only).")

_ANNOTATED = (
    "hwmodel", "swname", "swversion", "dbgstat", "secboot", "oemid", "attester_tcb", "sub", "aud",
    IMAGE_DIGEST, "submods.container.image_reference", "submods.container.image_id",
    "submods.container.restart_policy", SUPPORT, "submods.gce.project_id", "submods.gce.project_number",
    "submods.gce.zone", "submods.gce.instance_name", "submods.gce.instance_id", "google_service_accounts", "iss",
)


_MAX_CHAIN = 5


def _pki_anchor(header: Mapping[str, Any], anchor: TrustAnchor, now: int) -> TrustAnchor:
    """A PKI token's signer: its ``x5c`` chain validated to a configured root at *now*.

    Google's intermediate CA carries the TCG EKU 2.23.133.8.1 and no serverAuth/clientAuth, which
    the generic web-PKI CA profile (:meth:`TrustAnchor.candidates`) refuses; here a CA's EKU is
    not constrained, everything else is (signatures, validity at *now*, CA basic constraints and
    key usage, depth). Without roots, or without ``x5c``, the anchor's keys are used as they are.
    """
    x5c = header.get("x5c")
    if x5c is None or not anchor.roots:
        return anchor
    if not isinstance(x5c, list) or not 0 < len(x5c) <= _MAX_CHAIN or not all(isinstance(c, str) for c in x5c):
        raise MalformedError(f"google: x5c must be a list of 1..{_MAX_CHAIN} base64 certificates")
    try:
        certs = [x509.load_der_x509_certificate(base64.b64decode(c, validate=True)) for c in x5c]
    except ValueError as exc:
        raise MalformedError(f"google: x5c: bad certificate: {exc}") from exc
    ca_policy = ExtensionPolicy.webpki_defaults_ca().may_be_present(x509.ExtendedKeyUsage, Criticality.AGNOSTIC, None)
    builder = (
        PolicyBuilder()
        .store(Store(list(anchor.roots)))
        .time(datetime.fromtimestamp(now, UTC).replace(tzinfo=None))
        .max_chain_depth(_MAX_CHAIN)
        .extension_policies(ca_policy=ca_policy, ee_policy=ExtensionPolicy.permit_all())
    )
    try:
        builder.build_client_verifier().verify(certs[0], certs[1:])
    except VerificationError as exc:
        raise UntrustedKeyError(f"google: x5c chain does not validate to a configured root: {exc}") from exc
    key = certs[0].public_key()
    if not isinstance(key, rsa.RSAPublicKey):
        raise UntrustedKeyError("google: x5c leaf key is not RSA")
    kid = header.get("kid")
    return TrustAnchor((VerificationKey.of(key, kid=kid if isinstance(kid, str) else None,
                                           algorithms=SERVICE.algorithms),))


def _nonces(claims: Mapping[str, Any]) -> list[str]:
    raw = claims.get("eat_nonce")
    if raw is None:
        return []
    items = [raw] if isinstance(raw, str) else raw
    if not isinstance(items, list) or not all(isinstance(n, str) for n in items):
        raise MalformedError("google: eat_nonce must be a string or a list of strings")
    return items


def _bind(claims: Mapping[str, Any], binding: Binding | None, nonce: bytes | None) -> BindingStrength | None:
    nonces = _nonces(claims)
    expected = nonce if nonce is not None else binding.nonce if binding is not None else None
    if expected is None:
        return None
    if not any(nonce_echoed(n, expected) for n in nonces):
        raise NonceMismatchError("google: eat_nonce does not echo this session's nonce")
    return BindingStrength.EAT_NONCE


def _map(claims: Mapping[str, Any], expect: Mapping[str, Any], iat: int, exp: int | None
         ) -> tuple[str, dict[str, Any], Ear, dict[str, int | None]]:
    model = claims.get("hwmodel")
    if model is not None and not isinstance(model, str):
        raise MalformedError("google: hwmodel must be text")
    name = TABLE.submod(model)
    evidence = pick(claims, _ANNOTATED)
    appraisal_, fired = appraisal(TABLE, name, claims, expect, evidence)
    return name, evidence, make_ear(SERVICE, claims, {name: appraisal_}, iat, exp), fired


def verify_token(token: bytes | str, anchor: TrustAnchor, *, now: int, expect: Mapping[str, Any] = EMPTY,
                 binding: Binding | None = None, nonce: bytes | None = None, leeway: int = 60,
                 max_age: int | None = None) -> VendorView:
    """Verify a Google token under *anchor* at *now*, check its nonce echo, map it (raises typed errors)."""
    claims, key, alg, raw, iat, exp = verify_signed(SERVICE, token, anchor, now=now, expect=expect, leeway=leeway,
                                                    max_age=max_age, anchor_hook=_pki_anchor)
    strength = _bind(claims, binding, nonce)
    name, evidence, ear, fired = _map(claims, expect, iat, exp)
    return VendorView("google", ear, key, alg, claims, strength, {name: evidence}, TABLE.id, {name: fired}, raw)


def map_claims(claims: Mapping[str, Any], *, expect: Mapping[str, Any] = EMPTY) -> VendorView:
    """Map a claims set *without verifying anything*; instance-identity 2 presumes the caller verified it."""
    check_depth(dict(claims))
    iat, exp = claims_time(claims, SERVICE.require_exp)
    name, evidence, ear, fired = _map(claims, expect, iat, exp)
    return VendorView("google", ear, None, None, claims, None, {name: evidence}, TABLE.id, {name: fired})


def check(raw: RawResult, check: Check) -> VerifiedEar:
    """The federation's checker for kind ``google`` (fails closed without a nonce or binding)."""
    require_session(check, "google")
    return verify_token(raw.token, check.anchor, now=check.now, expect=check.expect, binding=check.binding,
                        nonce=check.nonce, leeway=check.leeway, max_age=check.max_age).verified_ear()


register_checker("google", check)
