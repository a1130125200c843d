"""Intel Trust Authority tokens: verify, bind, map to EAR.

ITA signs PS384 (RS256 on request) JWTs with ``iss`` "Intel Trust Authority"; v1 tokens carry flat
``tdx_*``/``sgx_*`` claims, v2 tokens nest them under ``"tdx"`` (both are read). ITA issues a
token even when an appraisal policy did not match, so ``policy_ids_unmatched`` lowers the
executables claim. Binding: ITA itself checks REPORT_DATA = SHA-512(nonce.val ‖ nonce.iat ‖
runtime_data) for TDX; the federation makes that the session's REPORT_DATA
(:mod:`federation.binding`) and compares the token's ``tdx_report_data`` with it; when ITA also
echoes the very ``verifier_nonce`` it issued for this session (``expect["verifier_nonce"]``, or the
challenge recorded in ``binding.challenges[expect["name"]]``), the vote is bound at evidence
strength. ``expect["policy_ids"]``/``["policy_must_match"]`` (the member's request) are checked
against ``policy_ids_matched``/``_unmatched`` (:class:`PolicyError`). SGX tokens (SHA-256 rule,
32 bytes) cannot carry the session's REPORT_DATA: they verify without a binding (the CLI) or
against a REPORT_DATA given as the nonce, never against a binding.
"""

from __future__ import annotations

import base64
import json
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
    pick,
    report_data_equal,
    require_session,
    verify_signed,
)
from .mapping import Absent, AllFalse, Always, AnyTrue, Contains, Equals, MappingTable, Naming, NonEmpty, Present, Rule

__all__ = ["SERVICE", "TABLE", "check", "map_claims", "verify_token"]

ISSUER = "Intel Trust Authority"
STATUS = "attester_tcb_status"
# Intel's status names that ask for a configuration change ("ConfigurationAndSWHardeningNeeded" does not
# contain the substring "ConfigurationNeeded", so it is named).
CONFIG_NEEDED = ("ConfigurationNeeded", "ConfigurationAndSWHardeningNeeded")
DEBUG = ("tdx_td_attributes_debug", "tdx_is_debuggable", "sgx_is_debuggable")
NOT_UP_TO_DATE = ("SWHardeningNeeded", "ConfigurationNeeded", "ConfigurationAndSWHardeningNeeded", "OutOfDate",
                  "OutOfDateConfigurationNeeded")

TABLE = MappingTable(
    service="ita",
    version=1,
    title="Intel Trust Authority",
    views="v1 tokens: claims at top level; v2 tokens: the `tdx` (or `sgx`) object's claims merged into the top "
          "level (a claim given at both levels with different values is malformed).",
    naming=(
        Naming("attester_type", ("TDX",), "tdx", "also a v2 `tdx` object, or `tdx_*` claims without `attester_type`"),
        Naming("attester_type", ("SGX",), "sgx", "also `sgx_*` claims without `attester_type`"),
    ),
    rules=(
        Rule(Always(), "instance-identity", 2, "ITA verified the quote's PCK certificate chain before issuing"),
        Rule(Equals(STATUS, ("Revoked",)), "hardware", 96, "the platform's TCB is revoked"),
        Rule(Equals(STATUS, ("UpToDate",)), "hardware", 2, "genuine and up to date"),
        Rule(Equals(STATUS, NOT_UP_TO_DATE), "hardware", 32, "genuine, with known vulnerabilities or missing "
             "configuration (AR4SI 32)"),
        Rule(Present(STATUS), "hardware", 32, "a status this table does not know (e.g. Amber's `OUT_OF_DATE`) is "
             "not read as up to date"),
        Rule(Absent(STATUS), "hardware", 0, "no TCB status: never read as up to date"),
        Rule(AnyTrue(DEBUG), "configuration", 96, "a debuggable TEE lets the host read its memory"),
        Rule(Equals("dbgstat", ("enabled",)), "configuration", 96, "debug enabled"),
        Rule(Contains(STATUS, CONFIG_NEEDED), "configuration", 32, "the TCB needs a configuration change"),
        Rule(AllFalse(DEBUG), "configuration", 2, "not debuggable"),
        Rule(Always("otherwise"), "configuration", 0, "no debug state stated", label="`dbgstat`, debug flags"),
        Rule(NonEmpty("policy_ids_unmatched"), "executables", 33, "ITA issues tokens when a policy fails: "
             "an unmatched policy is an unrecognized runtime"),
        Rule(NonEmpty("policy_ids_matched"), "executables", 2, "every appraisal policy matched"),
        Rule(Always("otherwise"), "executables", 0, "no policy in the token; the federation's reference values "
             "may judge `tdx_mrtd`/RTMRs"),
        Rule(Always("always"), "file-system", 0, "nothing stated"),
        Rule(Always(), "runtime-opaque", 2, "TDX/SGX memory encryption"),
        Rule(Always("always"), "storage-opaque", 0, "nothing stated"),
        Rule(Always("always"), "sourced-data", 0, "nothing stated"),
    ),
)

SERVICE = Service(kind="ita", title="Intel Trust Authority", developer="https://trustauthority.intel.com",
                  algorithms=("PS384", "RS256"), max_token=64 << 10, table=TABLE, issuer=ISSUER,
                  checks="Every policy in the member's `expect.policy_ids` must be listed as matched or "
                         "unmatched, and none unmatched under `expect.policy_must_match` (policy). Binding: "
                         "`tdx_report_data` must be the session's REPORT_DATA (SGX tokens cannot carry it); when "
                         "the session holds the nonce ITA issued (`expect.verifier_nonce`, or the challenge the "
                         "session recorded for this member) the token's `verifier_nonce` must equal it and the vote "
                         "is bound at `evidence` strength, else `report-data`.")

_ANNOTATED = (
    "ver", "attester_type", STATUS, "attester_tcb_date", "attester_advisory_ids", "dbgstat",
    "policy_ids_matched", "policy_ids_unmatched", "verifier_instance_ids", "attester_held_data",
    "tdx_mrtd", "tdx_rtmr0", "tdx_rtmr1", "tdx_rtmr2", "tdx_rtmr3", "tdx_mrseam", "tdx_mrsignerseam",
    "tdx_mrconfigid", "tdx_mrowner", "tdx_mrownerconfig", "tdx_report_data", "tdx_tee_tcb_svn", "tdx_seamsvn",
    "tdx_td_attributes", "tdx_xfam", "tdx_td_attributes_debug", "tdx_is_debuggable",
    "sgx_mrenclave", "sgx_mrsigner", "sgx_isvprodid", "sgx_isvsvn", "sgx_report_data", "sgx_is_debuggable",
    "iss", "jti",
)
_NONCE_FIELDS = ("val", "iat", "signature")


def _view(claims: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    """(attester type, flat claims view): v2's nested TEE object merged into the top level."""
    view = dict(claims)
    nested = [k for k in ("tdx", "sgx") if isinstance(claims.get(k), dict)]
    if len(nested) > 1:
        raise MalformedError("ita: token nests both tdx and sgx claims")
    for key in nested:
        for name, value in claims[key].items():
            if name in view and view[name] != value:
                raise MalformedError(f"ita: claim {name!r:.40} given twice with different values")
            view[name] = value
        del view[key]
    inferred = {t for t, prefix in (("TDX", "tdx_"), ("SGX", "sgx_")) if any(k.startswith(prefix) for k in view)}
    if nested:
        inferred.add(nested[0].upper())
    stated = view.get("attester_type")
    if stated is not None and not isinstance(stated, str):
        raise MalformedError("ita: attester_type must be text")
    if len(inferred) > 1 or (stated is not None and inferred and stated not in inferred):
        raise MalformedError("ita: attester_type and the TEE claims disagree")
    tee = stated if stated is not None else next(iter(inferred), None)
    if tee not in ("TDX", "SGX"):
        raise MalformedError(f"ita: attester type {tee!r:.20} is not supported (TDX or SGX)")
    return tee, view


def _nonce_field(carried: Any, expected: Any) -> bool:
    if not isinstance(carried, str):
        return False
    if isinstance(expected, bytes):
        try:
            return base64.b64decode(carried, validate=True) == expected
        except ValueError:
            return False
    return isinstance(expected, str) and carried == expected


def _verifier_nonce(view: Mapping[str, Any], expected: Any) -> None:
    """The token must echo the ``verifier_nonce`` ITA issued for this session (val, iat, signature)."""
    if not isinstance(expected, Mapping) or not {"val", "iat"} <= set(expected):
        raise MalformedError("ita: expect['verifier_nonce'] must hold at least val and iat")
    carried = view.get("verifier_nonce")
    if not isinstance(carried, Mapping) or not all(
            _nonce_field(carried.get(f), expected[f]) for f in _NONCE_FIELDS if f in expected):
        raise NonceMismatchError("ita: verifier_nonce is not the nonce ITA issued for this session")


def _session_nonce(expect: Mapping[str, Any], binding: Binding | None) -> Any:
    """The ``verifier_nonce`` ITA issued for this session, if known: the member's
    ``expect["verifier_nonce"]``, else the challenge the engine recorded for this backend
    (``binding.challenges[expect["name"]]``, the nonce object as JSON); None when there is none."""
    if "verifier_nonce" in expect:
        return expect["verifier_nonce"]
    name = expect.get("name")
    if binding is None or not isinstance(name, str) or name not in binding.challenges:
        return None
    try:
        return json.loads(binding.challenges[name])
    except ValueError as exc:
        raise MalformedError("ita: the session's ITA challenge is not a nonce object") from exc


def _policies(view: Mapping[str, Any], expect: Mapping[str, Any]) -> None:
    """The token was appraised under the member's policies: each configured id is matched or
    unmatched (ITA lists both), and none is unmatched when the member asked ITA to insist."""
    lists = [view.get(k) or [] for k in ("policy_ids_matched", "policy_ids_unmatched")]
    if not all(isinstance(x, list) and all(isinstance(p, Mapping) and isinstance(p.get("id"), str | None)
                                           for p in x) for x in lists):
        raise MalformedError("ita: policy_ids_matched/unmatched must be lists of objects with text ids")
    matched, unmatched = lists
    if expect.get("policy_must_match") and unmatched:
        raise PolicyError("ita: a policy did not match although policy_must_match was asked for")
    seen = {p.get("id") for p in (*matched, *unmatched)}
    missing = [p for p in expect.get("policy_ids") or () if p not in seen]
    if missing:
        raise PolicyError(f"ita: the token was not appraised under policy {missing[0]!r:.60}")


def _bind(tee: str, view: Mapping[str, Any], expect: Mapping[str, Any], binding: Binding | None,
          nonce: bytes | None) -> BindingStrength | None:
    issued = _session_nonce(expect, binding)
    if binding is None and nonce is None:
        if issued is not None:
            _verifier_nonce(view, issued)
        return None
    if binding is not None:
        if tee != "TDX":
            raise NonceMismatchError("ita: only TDX tokens can carry the session's REPORT_DATA")
        if not report_data_equal(view.get("tdx_report_data"), binding.report_data):
            raise NonceMismatchError("ita: tdx_report_data is not this session's REPORT_DATA")
    else:
        assert nonce is not None
        echoed = view.get("tdx_report_data" if tee == "TDX" else "sgx_report_data")
        if not report_data_equal(echoed, nonce):
            raise NonceMismatchError("ita: the token's REPORT_DATA is not the expected one")
    if issued is not None:
        _verifier_nonce(view, issued)
        return BindingStrength.EVIDENCE  # ITA checked REPORT_DATA against this nonce itself
    return BindingStrength.REPORT_DATA


def _map(claims: Mapping[str, Any], expect: Mapping[str, Any], iat: int, exp: int | None
         ) -> tuple[str, dict[str, Any], Ear, dict[str, int | None]]:
    tee, view = _view(claims)
    name = TABLE.submod(tee)
    evidence = pick(view, _ANNOTATED)
    appraisal_, fired = appraisal(TABLE, name, view, expect, evidence)
    ear = make_ear(SERVICE, claims, {name: appraisal_}, iat, exp)
    return name, evidence, ear, fired


def verify_token(token: bytes | str, anchor: TrustAnchor, *, now: int, expect: Mapping[str, Any] = EMPTY,
                 binding: Binding | None = None, nonce: bytes | None = None, leeway: int = 60,
                 max_age: int | None = None) -> VendorView:
    """Verify an ITA token under *anchor* at *now*, check its binding, map it (raises typed errors)."""
    claims, key, alg, raw, iat, exp = verify_signed(SERVICE, token, anchor, now=now, expect=expect, leeway=leeway,
                                                    max_age=max_age)
    tee, view = _view(claims)
    _policies(view, expect)
    strength = _bind(tee, view, expect, binding, nonce)
    name, evidence, ear, fired = _map(claims, expect, iat, exp)
    return VendorView("ita", ear, key, alg, claims, strength, {name: evidence}, TABLE.id, {name: fired}, raw)


def map_claims(claims: Mapping[str, Any], *, expect: Mapping[str, Any] = EMPTY) -> VendorView:
    """Map a claims set *without verifying anything* (for tokens whose key is unknown, and tests);
    instance-identity 2 presumes the caller verified the token."""
    check_depth(dict(claims))
    iat, exp = claims_time(claims, SERVICE.require_exp)
    name, evidence, ear, fired = _map(claims, expect, iat, exp)
    return VendorView("ita", ear, None, None, claims, None, {name: evidence}, TABLE.id, {name: fired})


def check(raw: RawResult, check: Check) -> VerifiedEar:
    """The federation's checker for kind ``ita`` (fails closed without a nonce or binding)."""
    require_session(check, "ita")
    return verify_token(raw.token, check.anchor, now=check.now, expect=check.expect, binding=check.binding,
                        nonce=check.nonce, leeway=check.leeway, max_age=check.max_age).verified_ear()


register_checker("ita", check)
