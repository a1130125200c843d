"""What every vendor token goes through before and after its mapping table.

Order, each failure a typed error and never a verdict: size bound, ``alg`` in the service's
allow-list, narrowed by the member's ``expect["algorithms"]`` (:class:`AlgorithmError`), the
signature under the configured anchor only (:func:`federation.ear.token.verify_jwt`: a key in the
token's own ``jwk``/``jku``/``x5u`` header is never used, ``x5c`` only to configured roots at
``now``), claim nesting, ``iat``/``nbf``/``exp`` at ``now`` with leeway (:class:`StaleError`; a
missing ``exp`` is :class:`MalformedError` where the service always sets one), the issuer and
audience the relying party expects (:class:`PolicyError`: the token is well formed and genuine,
but its content contradicts the relying party's rule), then the service's nonce/REPORT_DATA
binding (:class:`NonceMismatchError`). Only then are the claims mapped.

Anchors: a configured key that names no algorithm (a JWK without ``alg`` and no ``algorithms``
in the config: Azure Attestation's ``/certs`` keys have none) verifies the service's
allow-listed algorithms that fit its type; a key that names algorithms keeps exactly those.

Pure: no I/O; the time is an argument.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from federation.algorithms import by_name, check_key, default_algorithms
from federation.ar4si import Tier, TrustVector
from federation.binding import BindingStrength
from federation.ear.codec import nonce_matches
from federation.ear.model import Appraisal, Ear, Spelling, VerifierId
from federation.ear.token import VerifiedEar, jwt_header, verify_jwt
from federation.errors import (
    AlgorithmError,
    MalformedError,
    NonceMismatchError,
    PolicyError,
    StaleError,
)
from federation.keys import TrustAnchor, VerificationKey

from ..normalize import Check
from .mapping import MISSING, MappingTable, lookup

__all__ = [
    "ANNOTATED",
    "EMPTY",
    "MAX_DEPTH",
    "POLICY_CLAIMS",
    "REPORT_DATA_SIZE",
    "AnchorHook",
    "Service",
    "VendorView",
    "appraisal",
    "check_audience",
    "check_depth",
    "check_issuer",
    "check_time",
    "claims_time",
    "make_ear",
    "nonce_echoed",
    "pick",
    "report_data_equal",
    "require_session",
    "scoped_anchor",
    "status_of",
    "verify_signed",
]

REPORT_DATA_SIZE = 64
EMPTY: Mapping[str, Any] = MappingProxyType({})  # "no expectations" (an immutable default argument)
MAX_DEPTH = 32  # nesting of the verified claims (the JSON decoder's own bound is the interpreter's)
ANNOTATED = "ear_veraison_annotated_evidence"
POLICY_CLAIMS = "ear_veraison_policy_claims"


@dataclass(frozen=True, slots=True)
class Service:
    """A vendor service's verification contract: what its tokens must satisfy before mapping."""

    kind: str
    title: str
    developer: str  # the EAR verifier-id developer naming the service
    algorithms: tuple[str, ...]
    max_token: int
    table: MappingTable
    issuer: str | None = None  # default expected ``iss`` (None: not checked unless configured)
    require_exp: bool = True
    checks: str = ""  # the service's own checks, for the documentation

    def verifier_id(self, issuer: Any) -> VerifierId:
        who = issuer if isinstance(issuer, str) and issuer else self.title
        return VerifierId(self.developer, f"{who[:200]} (mapped by rats-federation {self.table.id})")


@dataclass(frozen=True, slots=True)
class VendorView:
    """A verified vendor token as the federation reads it.

    ``ear``: the normalized EAR (``iat``/``exp`` from the token, one submodule per TEE);
    ``binding``: how it is tied to the session, ``None`` when no nonce or binding was checked
    (the CLI without ``--nonce``); ``evidence``: per submodule, the identifying claims carried
    as annotated evidence; ``fired``: per submodule and AR4SI claim, the table row that decided
    it; ``key``/``algorithm`` are ``None`` for a claims-only mapping (nothing was verified).
    """

    service: str
    ear: Ear
    key: VerificationKey | None
    algorithm: str | None
    claims: Mapping[str, Any]
    binding: BindingStrength | None
    evidence: Mapping[str, Mapping[str, Any]]
    mapping: str
    fired: Mapping[str, Mapping[str, int | None]] = field(default_factory=dict)
    raw: bytes = b""

    @property
    def status(self) -> Tier:
        return self.ear.status

    def verified_ear(self) -> VerifiedEar:
        """As the federation's normalizers return it (only for a verified token)."""
        if self.key is None or self.algorithm is None:
            raise MalformedError(f"{self.service}: a claims-only mapping is not a verified result")
        if self.binding is None:
            raise NonceMismatchError(f"{self.service}: the token was not checked against this session")
        return VerifiedEar(self.ear, "jwt", self.key, self.algorithm, self.raw, self.claims, binding=self.binding)


def scoped_anchor(anchor: TrustAnchor, allowed: Iterable[str]) -> TrustAnchor:
    """*anchor* with keys that name no algorithm limited to the service's algorithms for their type."""
    allowed = tuple(allowed)
    keys = []
    for k in anchor.keys:
        if k.algorithms == default_algorithms(k.key):
            fits = []
            for name in allowed:
                try:
                    check_key(by_name(name), k.key)
                except AlgorithmError:
                    continue
                fits.append(name)
            if fits:
                k = VerificationKey.of(k.key, kid=k.kid, algorithms=fits)
        keys.append(k)
    return TrustAnchor(tuple(keys), anchor.roots, anchor.chain_algorithms)


def check_depth(value: Any, limit: int = MAX_DEPTH) -> None:
    """Refuse claims nested deeper than *limit* (iteratively: no recursion on untrusted input)."""
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict | list):
            if depth >= limit:
                raise MalformedError(f"claims nested deeper than {limit}")
            children = node.values() if isinstance(node, dict) else node
            stack.extend((c, depth + 1) for c in children)


def _int_claim(claims: Mapping[str, Any], name: str, required: bool) -> int | None:
    value = claims.get(name)
    if value is None:
        if required:
            raise MalformedError(f"token has no {name!r}")
        return None
    if not isinstance(value, int) or isinstance(value, bool):
        raise MalformedError(f"{name!r} must be an integer NumericDate")
    return value


def check_time(claims: Mapping[str, Any], *, now: int, leeway: int, max_age: int | None,
               require_exp: bool) -> tuple[int, int | None]:
    """``iat``/``nbf``/``exp`` against *now* (as :func:`federation.ear.token.verify_ear` does)."""
    iat = _int_claim(claims, "iat", True)
    assert iat is not None
    exp = _int_claim(claims, "exp", require_exp)
    nbf = _int_claim(claims, "nbf", False)
    if iat > now + leeway:
        raise StaleError(f"issued in the future (iat {iat} > now {now})")
    if exp is not None and now >= exp + leeway:
        raise StaleError(f"expired at {exp} (now {now})")
    if nbf is not None and now + leeway < nbf:
        raise StaleError(f"not valid before {nbf} (now {now})")
    if max_age is not None and now - iat > max_age:
        raise StaleError(f"issued {now - iat}s ago, more than {max_age}s")
    return iat, exp


def check_issuer(claims: Mapping[str, Any], expected: str | None, service: str) -> None:
    if expected is not None and claims.get("iss") != expected:
        raise PolicyError(f"{service}: issuer {claims.get('iss')!r:.80} is not the expected {expected!r:.80}")


def check_audience(claims: Mapping[str, Any], expected: str | None, service: str) -> None:
    if expected is None:
        return
    aud = claims.get("aud")
    auds = [aud] if isinstance(aud, str) else aud if isinstance(aud, list) else []
    if expected not in auds:
        raise PolicyError(f"{service}: audience {aud!r:.80} does not include {expected!r:.80}")


AnchorHook = Callable[[Mapping[str, Any], TrustAnchor, int], TrustAnchor]


def verify_signed(service: Service, token: bytes | str, anchor: TrustAnchor, *, now: int,
                  expect: Mapping[str, Any], leeway: int, max_age: int | None, anchor_hook: AnchorHook | None = None
                  ) -> tuple[dict[str, Any], VerificationKey, str, bytes, int, int | None]:
    """Every check before the binding and the mapping; (claims, key, alg, raw, iat, exp).

    *anchor_hook* (header, anchor, now) may replace the anchor before the signature check: for a
    service whose certificate chains need a chain policy of their own (Google's PKI tokens).
    """
    raw = (token.encode("ascii", "replace") if isinstance(token, str) else bytes(token)).strip()
    if len(raw) > service.max_token:
        raise MalformedError(f"{service.kind}: token of {len(raw)} bytes exceeds {service.max_token}")
    header = jwt_header(raw)
    alg = header.get("alg")
    allowed = service.algorithms
    if expect.get("algorithms") is not None:  # the member asked the service for these (ITA token_signing_alg)
        allowed = tuple(a for a in allowed if a in tuple(expect["algorithms"]))
    if alg not in allowed:
        raise AlgorithmError(f"{service.kind}: algorithm {alg!r:.20} is not one of {', '.join(allowed) or '(none)'}")
    if anchor_hook is not None:
        anchor = anchor_hook(header, anchor, now)
    claims, key, used = verify_jwt(raw, scoped_anchor(anchor, allowed), now=now, max_size=service.max_token)
    check_depth(claims)
    iat, exp = check_time(claims, now=now, leeway=leeway, max_age=max_age, require_exp=service.require_exp)
    check_issuer(claims, expect.get("issuer", service.issuer), service.kind)
    check_audience(claims, expect.get("audience"), service.kind)
    return claims, key, used, raw, iat, exp


def require_session(check: Check, service: str) -> None:
    """The federation's checkers fail closed: a vote must be tied to *some* session value."""
    if check.binding is None and check.nonce is None:
        raise NonceMismatchError(f"{service}: no session nonce or binding to check the token against")


def _padded(data: bytes) -> bytes | None:
    return data + b"\0" * (REPORT_DATA_SIZE - len(data)) if len(data) <= REPORT_DATA_SIZE else None


def report_data_equal(echoed: Any, expected: bytes) -> bool:
    """Whether a hex REPORT_DATA echo equals *expected*, both right-padded with zeros to 64 bytes."""
    if not isinstance(echoed, str):
        return False
    try:
        got = bytes.fromhex(echoed)
    except ValueError:
        return False
    a, b = _padded(got), _padded(expected)
    return a is not None and a == b


def nonce_echoed(carried: Any, expected: bytes) -> bool:
    """Whether a text nonce echo is *expected*: base64url/base64 (padded or not) of the bytes, or
    the bytes themselves when they are text (services that take caller nonces as strings)."""
    if not isinstance(carried, str):
        return False
    if nonce_matches(carried, expected):
        return True
    try:
        return carried == expected.decode("utf-8")
    except UnicodeDecodeError:
        return False


def appraisal(table: MappingTable, submod: str, view: Mapping[str, Any], expect: Mapping[str, Any],
              evidence: Mapping[str, Any]) -> tuple[Appraisal, dict[str, int | None]]:
    """One submodule's appraisal: the table's vector, status = its worst tier (AR4SI precedence)."""
    vector, fired = table.evaluate(submod, view, expect)
    extensions = {ANNOTATED: dict(evidence),
                  POLICY_CLAIMS: {"vendor-map": table.id, "rows": {k: v for k, v in fired.items() if v}}}
    return Appraisal.make(vector.worst_tier(), vector, (table.policy_id,), extensions), fired


def status_of(reported: Tier, vector: TrustVector) -> Tier:
    """A passed-through submodule's status: no better than its vector's worst tier, nor than what
    the vendor reported; contraindicated on either side wins; a vector without claims gives none."""
    derived = vector.worst_tier()
    if Tier.CONTRAINDICATED in (reported, derived):
        return Tier.CONTRAINDICATED
    if Tier.NONE in (reported, derived):
        return Tier.NONE
    return reported if reported.severity >= derived.severity else derived


def make_ear(service: Service, claims: Mapping[str, Any], submods: Mapping[str, Appraisal], iat: int,
             exp: int | None) -> Ear:
    return Ear(Spelling.VERAISON.profile, iat, service.verifier_id(claims.get("iss")), dict(submods), exp=exp)


def pick(view: Mapping[str, Any], names: Iterable[str], prefixes: Iterable[str] = ()) -> dict[str, Any]:
    """The identifying claims of *view* to carry as annotated evidence (present ones, in order)."""
    out = {n: v for n in names if (v := lookup(view, n)) is not MISSING}
    prefixes = tuple(prefixes)
    if prefixes:
        out.update({k: v for k, v in view.items() if k.startswith(prefixes) and k not in out})
    return out


def claims_time(claims: Mapping[str, Any], require_exp: bool) -> tuple[int, int | None]:
    """``iat``/``exp`` of a claims set mapped without verification (types checked, time not)."""
    iat = _int_claim(claims, "iat", True)
    assert iat is not None
    return iat, _int_claim(claims, "exp", require_exp)
