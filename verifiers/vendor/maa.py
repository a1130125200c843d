"""Microsoft Azure Attestation tokens: verify, bind, map to EAR.

MAA signs RS256 JWTs with per-instance keys (``/certs`` serves ``x5c``-only JWKs; the configured
anchor is that instance's key set). Three token shapes are read: ``/attest/SevSnpVm`` (SEV-SNP
claims at top level), ``/attest/TdxVm`` (EAT-profile ``tdx_*`` claims) and Azure CVM guest
attestation ``azurevm`` (outer vTPM/OS claims, the TEE's claims inside ``x-ms-isolation-tee``).
SEV-SNP tokens carry no TCB status: MAA folds its acceptance into ``x-ms-compliance-status``, and
its absence is never read as "up to date".

Draft policies: a token made under ``draftPolicyForAttestation`` is for testing only (Microsoft's
REST API documentation). The public documentation and SDKs consulted do not name the claim that
marks it; such tokens are refused when they carry ``x-ms-policy`` (the draft policy text, as the
project's emulator emits it) or ``x-ms-attestation-draft-policy``, at top level or inside
``x-ms-isolation-tee`` (:class:`PolicyError`). ``expect["policy_hash"]`` pins ``x-ms-policy-hash``.

Binding: with the session's :class:`~federation.binding.Binding`, the REPORT_DATA MAA verified
(``tdx_report_data`` / ``x-ms-sevsnpvm-reportdata``) must be the session's (strength
``report-data``). With only a nonce: that REPORT_DATA equal to the nonce (``report-data``), else
the ``nonce`` claim or ``x-ms-runtime.client-payload.nonce`` echoing it (``eat-nonce``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from federation.binding import Binding, BindingStrength
from federation.ear.model import Ear
from federation.ear.token import VerifiedEar
from federation.errors import MalformedError, NonceMismatchError, PolicyError
from federation.keys import TrustAnchor

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
    report_data_equal,
    require_session,
    verify_signed,
)
from .mapping import Absent, AllFalse, Always, AnyTrue, Contains, Equals, MappingTable, Naming, Present, Rule

__all__ = ["DRAFT_POLICY_CLAIMS", "SERVICE", "TABLE", "check", "map_claims", "verify_token"]

TYPE = "x-ms-attestation-type"
TEE = "x-ms-isolation-tee"
COMPLIANCE = "x-ms-compliance-status"
STATUS = "attester_tcb_status"
# Intel's status names that ask for a configuration change ("ConfigurationAndSWHardeningNeeded" does not
# contain the substring "ConfigurationNeeded", so it is named).
CONFIG_NEEDED = ("ConfigurationNeeded", "ConfigurationAndSWHardeningNeeded")
DEBUG = ("x-ms-sevsnpvm-is-debuggable", "tdx_td_attributes_debug")
AZUREVM_DEBUG = ("x-ms-azurevm-kerneldebug-enabled", "x-ms-azurevm-bootdebug-enabled",
                 "x-ms-azurevm-hypervisordebug-enabled", "x-ms-azurevm-testsigning-enabled")
NOT_UP_TO_DATE = ("SWHardeningNeeded", "ConfigurationNeeded", "ConfigurationAndSWHardeningNeeded", "OutOfDate",
                  "OutOfDateConfigurationNeeded")
DRAFT_POLICY_CLAIMS = ("x-ms-policy", "x-ms-attestation-draft-policy")

TABLE = MappingTable(
    service="maa",
    version=1,
    title="Microsoft Azure Attestation",
    views="SevSnpVm and TdxVm tokens: claims at top level; `azurevm` tokens: the claims inside "
          "`x-ms-isolation-tee` merged into the top level (the outer `x-ms-attestation-type` and `x-ms-runtime` "
          "stay the outer ones).",
    naming=(
        Naming(TYPE, ("sevsnpvm",), "sev-snp", "for `azurevm`, the type inside `x-ms-isolation-tee`"),
        Naming(TYPE, ("tdxvm",), "tdx", "for `azurevm`, the type inside `x-ms-isolation-tee`"),
    ),
    rules=(
        Rule(Always(), "instance-identity", 2, "MAA checked the VCEK/PCK chain (and, for `azurevm`, the vTPM AK)"),
        Rule(Equals(STATUS, ("Revoked",)), "hardware", 96, "the platform's TCB is revoked", tee="tdx"),
        Rule(Equals(STATUS, ("UpToDate",)), "hardware", 2, "genuine and up to date", tee="tdx"),
        Rule(Equals(STATUS, NOT_UP_TO_DATE), "hardware", 32, "genuine, with known vulnerabilities", tee="tdx"),
        Rule(Present(STATUS), "hardware", 32, "a status this table does not know is not read as up to date",
             tee="tdx"),
        Rule(Absent(STATUS), "hardware", 0, "no TCB status: never read as up to date", tee="tdx"),
        Rule(Equals(COMPLIANCE, ("azure-compliant-cvm",)), "hardware", 2, "MAA accepted the report against the "
             "Azure TCB baseline (SEV-SNP tokens carry no finer status; SVNs go to annotated evidence)",
             tee="sev-snp"),
        Rule(Always("absent, or any other value"), "hardware", 32, "genuine (the chain verified) but not accepted "
             "as compliant; never read as up to date", tee="sev-snp", label=f"`{COMPLIANCE}`"),
        Rule(AnyTrue(DEBUG), "configuration", 96, "a debuggable TEE lets the host read its memory"),
        Rule(Equals("dbgstat", ("enabled",)), "configuration", 96, "debug enabled"),
        Rule(AnyTrue(AZUREVM_DEBUG), "configuration", 32, "guest OS kernel/boot/hypervisor debugging or test "
             "signing on"),
        Rule(Contains(STATUS, CONFIG_NEEDED), "configuration", 32, "the TCB needs a configuration change",
             tee="tdx"),
        Rule(AllFalse(DEBUG), "configuration", 2, "not debuggable"),
        Rule(Always("otherwise"), "configuration", 0, "no debug state stated", label="debug flags"),
        Rule(Always("always"), "executables", 0, "no verdict in the token; the federation's reference values may "
             "judge `x-ms-sevsnpvm-launchmeasurement`/`tdx_mrtd`"),
        Rule(Always("always"), "file-system", 0, "nothing stated"),
        Rule(Always(), "runtime-opaque", 2, "SEV-SNP/TDX memory encryption"),
        Rule(Always("always"), "storage-opaque", 0, "2 only if the relying party relies on the vTPM-sealed key "
             "in `x-ms-runtime.keys`"),
        Rule(Always("always"), "sourced-data", 0, "nothing stated"),
    ),
)

SERVICE = Service(kind="maa", title="Microsoft Azure Attestation", developer="https://azure.microsoft.com/"
                  "products/azure-attestation", algorithms=("RS256",), max_token=256 << 10, table=TABLE,
                  checks="Tokens carrying `x-ms-policy` or `x-ms-attestation-draft-policy` (made under a draft "
                         "policy) are refused (policy); `expect.policy_hash` pins `x-ms-policy-hash`. Binding: "
                         "`tdx_report_data`/`x-ms-sevsnpvm-reportdata` must be the session's REPORT_DATA; with only "
                         "a nonce, that REPORT_DATA or the `nonce`/`x-ms-runtime.client-payload.nonce` echo "
                         "(strength `eat-nonce`).")

_ANNOTATED = (
    TYPE, COMPLIANCE, "x-ms-policy-hash", "x-ms-ver", STATUS, "attester_tcb_date", "dbgstat", "secureboot",
    "x-ms-azurevm-vmid", "x-ms-azurevm-attestation-protocol-ver", "x-ms-azurevm-attested-pcrs", *AZUREVM_DEBUG,
    "nonce", "iss", "jti",
)
_PREFIXES = ("x-ms-sevsnpvm-", "tdx_")


def _refuse_draft(claims: Mapping[str, Any]) -> None:
    inner = claims.get(TEE)
    for scope in (claims, inner if isinstance(inner, Mapping) else {}):
        for name in DRAFT_POLICY_CLAIMS:
            if name in scope:
                raise PolicyError(f"maa: token made under a draft policy ({name}): for testing only")


def _view(claims: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    """(submodule name, flat claims view): azurevm's isolation-TEE claims merged into the top level."""
    view = dict(claims)
    outer = claims.get(TYPE)
    inner = claims.get(TEE)
    if outer == "azurevm":
        if not isinstance(inner, Mapping):
            raise MalformedError("maa: azurevm token without x-ms-isolation-tee")
        for name, value in inner.items():
            view.setdefault(name, value)
        del view[TEE]
        tee = inner.get(TYPE)
    elif inner is not None:
        raise MalformedError(f"maa: x-ms-isolation-tee in a {outer!r:.20} token")
    else:
        tee = outer
    if not isinstance(tee, str):
        raise MalformedError("maa: x-ms-attestation-type missing or not text")
    return TABLE.submod(tee), view


def _client_nonce(claims: Mapping[str, Any]) -> Any:
    runtime = claims.get("x-ms-runtime")
    payload = runtime.get("client-payload") if isinstance(runtime, Mapping) else None
    return payload.get("nonce") if isinstance(payload, Mapping) else None


def _bind(submod: str, claims: Mapping[str, Any], view: Mapping[str, Any], binding: Binding | None,
          nonce: bytes | None) -> BindingStrength | None:
    echoed = view.get("tdx_report_data" if submod == "tdx" else "x-ms-sevsnpvm-reportdata")
    if binding is not None:
        if not report_data_equal(echoed, binding.report_data):
            raise NonceMismatchError("maa: the REPORT_DATA MAA verified is not this session's")
        return BindingStrength.REPORT_DATA
    if nonce is None:
        return None
    if report_data_equal(echoed, nonce):
        return BindingStrength.REPORT_DATA
    if nonce_echoed(claims.get("nonce"), nonce) or nonce_echoed(_client_nonce(claims), nonce):
        return BindingStrength.EAT_NONCE
    raise NonceMismatchError("maa: neither REPORT_DATA nor a nonce claim echoes this session's nonce")


def _map(claims: Mapping[str, Any], expect: Mapping[str, Any], iat: int, exp: int | None
         ) -> tuple[str, dict[str, Any], Ear, dict[str, int | None]]:
    _refuse_draft(claims)
    name, view = _view(claims)
    evidence = pick(view, _ANNOTATED, _PREFIXES)
    appraisal_, fired = appraisal(TABLE, name, view, expect, evidence)
    return name, evidence, make_ear(SERVICE, claims, {name: appraisal_}, iat, exp), fired


def verify_token(token: bytes | str, anchor: TrustAnchor, *, now: int, expect: Mapping[str, Any] = EMPTY,
                 binding: Binding | None = None, nonce: bytes | None = None, leeway: int = 60,
                 max_age: int | None = None) -> VendorView:
    """Verify an MAA token under *anchor* at *now*, check its binding, map it (raises typed errors)."""
    claims, key, alg, raw, iat, exp = verify_signed(SERVICE, token, anchor, now=now, expect=expect, leeway=leeway,
                                                    max_age=max_age)
    _refuse_draft(claims)
    if "policy_hash" in expect and claims.get("x-ms-policy-hash") != expect["policy_hash"]:
        raise PolicyError("maa: x-ms-policy-hash is not the expected attestation policy")
    submod, view = _view(claims)
    strength = _bind(submod, claims, view, binding, nonce)
    name, evidence, ear, fired = _map(claims, expect, iat, exp)
    return VendorView("maa", ear, key, alg, claims, strength, {name: evidence}, TABLE.id, {name: fired}, raw)


def map_claims(claims: Mapping[str, Any], *, expect: Mapping[str, Any] = EMPTY) -> VendorView:
    """Map a claims set *without verifying anything* (published claim samples, tests);
    instance-identity 2 presumes the caller verified the token."""
    check_depth(dict(claims))
    iat, exp = claims_time(claims, SERVICE.require_exp)
    name, evidence, ear, fired = _map(claims, expect, iat, exp)
    return VendorView("maa", ear, None, None, claims, None, {name: evidence}, TABLE.id, {name: fired})


def check(raw: RawResult, check: Check) -> VerifiedEar:
    """The federation's checker for kind ``maa`` (fails closed without a nonce or binding)."""
    require_session(check, "maa")
    return verify_token(raw.token, check.anchor, now=check.now, expect=check.expect, binding=check.binding,
                        nonce=check.nonce, leeway=check.leeway, max_age=check.max_age).verified_ear()


register_checker("maa", check)
