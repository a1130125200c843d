"""EAR claims-set <-> :class:`Ear`, for JSON (both name generations) and CBOR (integer keys).

The names are data (one table): draft -03 renamed every JSON claim (``ear.status`` ->
``ear_status``) while the CBOR keys stayed. We accept both spellings on input, ignore unknown
claims (EAR §4) but keep them in ``extra``, and emit one spelling chosen by the caller.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any, cast

from ..ar4si import Tier, TrustVector
from ..errors import MalformedError
from ..keys import b64url_decode, b64url_encode
from .model import Appraisal, Ear, Spelling, VerifierId

__all__ = [
    "EXTENSIONS",
    "from_cbor_claims",
    "from_json_claims",
    "nonce_matches",
    "nonce_text",
    "to_cbor_claims",
    "to_json_claims",
]

# field -> (draft-03 JSON name, dotted JSON name, CBOR key)
_TOP = {
    "verifier_id": ("ear_verifier_id", "ear.verifier-id", 1004),
    "raw_evidence": ("ear_raw_evidence", "ear.raw-evidence", 1002),
    "status": ("ear_status", "ear.status", 1000),
}
_APPRAISAL = {
    "status": ("ear_status", "ear.status", 1000),
    "trust_vector": ("ear_trustworthiness_vector", "ear.trustworthiness-vector", 1001),
    "policy_ids": ("ear_appraisal_policy_ids", "ear.appraisal-policy-id", 1003),
}
# Appraisal-level extensions we name (values are carried raw). Private CBOR keys < -65536.
EXTENSIONS: dict[str, tuple[str, int]] = {
    "ear_veraison_annotated_evidence": ("ear.veraison.annotated-evidence", -70000),
    "ear_veraison_policy_claims": ("ear.veraison.policy-claims", -70001),
    "ear_veraison_key_attestation": ("ear.veraison.key-attestation", -70002),
    "ear_teep_claims": ("ear.teep-claims", 65000),
    "ear_ratsfed_endorsements": ("ear.ratsfed.endorsements", -71001),
    "eat_profile": ("eat_profile", 265),
    "eat_nonce": ("eat_nonce", 10),
}
_EXT_BY_ANY: dict[Any, str] = {}
for _name, (_dotted, _key) in EXTENSIONS.items():
    _EXT_BY_ANY[_name] = _EXT_BY_ANY[_dotted] = _EXT_BY_ANY[_key] = _name

_STD_TOP = {"eat_profile": 265, "iat": 6, "exp": 4, "eat_nonce": 10, "submods": 266}
_MAX_SUBMODS = 64


def _pick(claims: Mapping[Any, Any], names: tuple[Any, ...], what: str) -> Any:
    present = [n for n in names if n in claims]
    if len(present) > 1:
        raise MalformedError(f"ear: {what} given under two names")
    return claims[present[0]] if present else None


def _policy_ids(raw: Any) -> tuple[str, ...]:
    if raw is None:
        return ()
    if isinstance(raw, str):
        return (raw,)
    if isinstance(raw, list) and raw and all(isinstance(x, str) for x in raw):
        return tuple(raw)
    raise MalformedError("ear: appraisal policy id(s) must be text or a non-empty array of text")


def _appraisal(raw: Any, index: int) -> Appraisal:
    if not isinstance(raw, Mapping):
        raise MalformedError("ear: each submod must be a map")
    d03, dotted, key = _APPRAISAL["status"]
    status = _pick(raw, (d03, dotted, key), "status")
    if status is None:
        raise MalformedError("ear: submod without status")
    d03, dotted, key = _APPRAISAL["trust_vector"]
    tv_raw = _pick(raw, (d03, dotted, key), "trust vector")
    d03, dotted, key = _APPRAISAL["policy_ids"]
    policy = _policy_ids(_pick(raw, (d03, dotted, key), "policy id"))
    ext = {_EXT_BY_ANY[k]: v for k, v in raw.items() if k in _EXT_BY_ANY}
    vector = TrustVector.parse(tv_raw) if tv_raw is not None else None
    return Appraisal.make(Tier.parse(status), vector, policy, ext)


def _decode(claims: Any, index: int) -> Ear:
    """Shared by JSON and CBOR: *index* 0 picks JSON names, 2 picks CBOR keys."""
    if not isinstance(claims, Mapping):
        raise MalformedError("ear: claims-set must be a map")

    def std(name: str) -> Any:
        return claims.get(name if index == 0 else _STD_TOP[name])

    def top(field: str) -> Any:
        d03, dotted, key = _TOP[field]
        return _pick(claims, (d03, dotted) if index == 0 else (key,), field)

    profile = std("eat_profile")
    if not isinstance(profile, str):
        raise MalformedError("ear: eat_profile missing or not text")
    iat = std("iat")
    if iat is None:
        raise MalformedError("ear: iat missing")
    vid = top("verifier_id")
    if not isinstance(vid, Mapping):
        raise MalformedError("ear: verifier id missing")
    developer, build = (vid.get("developer"), vid.get("build")) if index == 0 else (vid.get(0), vid.get(1))
    submods = std("submods")
    if not isinstance(submods, Mapping) or not 0 < len(submods) <= _MAX_SUBMODS:
        raise MalformedError(f"ear: submods must be a map of 1..{_MAX_SUBMODS} entries")
    if not all(isinstance(k, str) for k in submods):
        raise MalformedError("ear: submod names must be text")
    raw_ev = top("raw_evidence")
    if raw_ev is not None:
        if index == 0 and isinstance(raw_ev, str):
            raw_ev = b64url_decode(raw_ev)
        elif not isinstance(raw_ev, bytes):
            raise MalformedError("ear: raw evidence has the wrong type")
    nonce = std("eat_nonce")
    if nonce is not None and not isinstance(nonce, str if index == 0 else bytes):
        raise MalformedError("ear: eat_nonce has the wrong type")
    status = top("status")
    known = set(_STD_TOP if index == 0 else _STD_TOP.values())
    for names in _TOP.values():
        known.update((names[0], names[1]) if index == 0 else (names[2],))
    extra = {k: v for k, v in claims.items() if k not in known}
    return Ear(
        profile=profile,
        iat=iat,
        verifier_id=VerifierId(cast(str, developer), cast(str, build)),  # validated there
        submods={name: _appraisal(a, index) for name, a in submods.items()},
        exp=std("exp"),
        nonce=nonce,
        raw_evidence=raw_ev,
        reported_status=Tier.parse(status) if status is not None else None,
        extra=extra,
    )


def from_json_claims(claims: Any) -> Ear:
    """Decode a JSON claims-set (draft -03 or dotted names)."""
    return _decode(claims, 0)


def from_cbor_claims(claims: Any) -> Ear:
    """Decode a CBOR claims-set (integer keys; RFC 8392 claim keys are ints or text, so a tagged
    key that would shadow a claim is refused, not ignored)."""
    if isinstance(claims, Mapping) and not all(isinstance(k, int | str) and not isinstance(k, bool)
                                               for k in claims):
        raise MalformedError("ear: claim keys must be integers or text strings")
    return _decode(claims, 2)


def _ext_out(ext: Mapping[str, Any], index: int) -> dict[Any, Any]:
    out: dict[Any, Any] = {}
    for name, value in ext.items():
        dotted, key = EXTENSIONS[name]
        out[name if index == 0 else dotted if index == 1 else key] = value
    return out


def _jname(names: tuple[str, str, int], idx: int) -> str:
    return names[0] if idx == 0 else names[1]


def to_json_claims(ear: Ear, spelling: Spelling = Spelling.VERAISON) -> dict[str, Any]:
    """Encode for a JWT. Veraison spelling: dotted names, single policy id, no top ear_status."""
    idx = 0 if spelling is Spelling.DRAFT03 else 1
    submods: dict[str, Any] = {}
    for name, a in ear.submods.items():
        entry: dict[str, Any] = {_jname(_APPRAISAL["status"], idx): a.status.label}
        if a.trust_vector is not None:
            entry[_jname(_APPRAISAL["trust_vector"], idx)] = a.trust_vector.to_json()
        if a.policy_ids:
            entry[_jname(_APPRAISAL["policy_ids"], idx)] = list(a.policy_ids) if idx == 0 else a.policy_ids[0]
        entry.update(_ext_out(a.extensions, idx))
        submods[name] = entry
    out: dict[str, Any] = {
        "eat_profile": ear.profile,
        "iat": ear.iat,
        _jname(_TOP["verifier_id"], idx): {"developer": ear.verifier_id.developer, "build": ear.verifier_id.build},
        "submods": submods,
    }
    if ear.exp is not None:
        out["exp"] = ear.exp
    if ear.nonce is not None:
        out["eat_nonce"] = ear.nonce if isinstance(ear.nonce, str) else nonce_text(ear.nonce)
    if ear.raw_evidence is not None:
        out[_jname(_TOP["raw_evidence"], idx)] = b64url_encode(ear.raw_evidence)
    if idx == 0:
        out["ear_status"] = ear.status.label
    out.update({k: v for k, v in ear.extra.items() if isinstance(k, str)})
    return out


def to_cbor_claims(ear: Ear, spelling: Spelling = Spelling.VERAISON) -> dict[int, Any]:
    """Encode for a CWT (integer keys; policy ids as array for -03, text for the older form)."""
    submods: dict[str, Any] = {}
    for name, a in ear.submods.items():
        entry: dict[int, Any] = {1000: a.status.code}
        if a.trust_vector is not None:
            entry[1001] = a.trust_vector.to_cbor()
        if a.policy_ids:
            entry[1003] = list(a.policy_ids) if spelling is Spelling.DRAFT03 else a.policy_ids[0]
        entry.update(_ext_out(a.extensions, 2))
        submods[name] = entry
    out: dict[int, Any] = {
        265: ear.profile,
        6: ear.iat,
        1004: {0: ear.verifier_id.developer, 1: ear.verifier_id.build},
        266: submods,
    }
    if ear.exp is not None:
        out[4] = ear.exp
    if ear.nonce is not None:
        # A JSON nonce is the base64(url) text of the bytes (see nonce_matches): carry the bytes.
        out[10] = (ear.nonce if isinstance(ear.nonce, bytes)
                   else b64url_decode(ear.nonce.replace("+", "-").replace("/", "_")))
    if ear.raw_evidence is not None:
        out[1002] = ear.raw_evidence
    if spelling is Spelling.DRAFT03:
        out[1000] = ear.status.code
    out.update({k: v for k, v in ear.extra.items() if isinstance(k, int)})
    return out


def nonce_text(nonce: bytes) -> str:
    """How a JSON EAR carries a binary nonce: base64url with padding, as Veraison issues it."""
    return base64.urlsafe_b64encode(nonce).decode("ascii")


def nonce_matches(carried: bytes | str | None, expected: bytes) -> bool:
    """Does an EAR's ``eat_nonce`` echo *expected*? Accepts the encodings seen in the wild:
    CBOR bytes; JSON base64url or base64, padded or not (never a looser comparison)."""
    if carried is None:
        return False
    if isinstance(carried, bytes):
        return carried == expected
    text = carried.rstrip("=")
    return text in (
        base64.urlsafe_b64encode(expected).decode().rstrip("="),
        base64.standard_b64encode(expected).decode().rstrip("="),
    )

