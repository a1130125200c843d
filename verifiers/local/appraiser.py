"""The local appraiser: route Evidence to a scheme by media type, turn its verdict into an EAR.

Pure: Evidence, nonce, reference-value store and ``now`` in; an unsigned :class:`Ear` out.
Signing and the clock belong to the backend wrapper (:mod:`.backend`).

Freshness. The schemes compare the Evidence's nonce (REPORT_DATA, challenge, ``eat_nonce``) with
the session nonce in their context; an empty one there means freshness is not checked. The
appraiser hands the schemes an empty nonce when the session has none or when the caller turns
freshness off (``freshness=False``: an operator who appraises stored Evidence), and then writes
``"freshness": "not checked"`` into every submodule's ``ear.veraison.policy-claims``, whatever
the scheme, so no result can be read as fresh when it was not. The EAR still echoes the session
nonce (the federation binds every result to its session by it).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

from federation.ar4si import Tier, TrustVector
from federation.ear.model import Appraisal, Ear, Spelling, VerifierId
from federation.errors import MalformedError, UsageError
from federation.evidence import Evidence

from .collateral.base import Collateral, CollateralRequest
from .corim.store import ReferenceValueStore
from .scheme import BadEvidence, Context, NeedsCollateral, Scheme, normalize_media_type

__all__ = ["FRESHNESS_NOT_CHECKED", "LocalAppraiser"]

BUILD = "ratsfed-local 0.1.0"
CRYPTO_FAILED = 99
FRESHNESS_NOT_CHECKED = "not checked"
"""``ear.veraison.policy-claims`` ``freshness`` of a submodule appraised without a session nonce."""


class LocalAppraiser:
    def __init__(self, schemes: Sequence[Scheme], store: ReferenceValueStore, *,
                 developer: str = "rats-federation", build: str = BUILD, annotate: bool = True) -> None:
        if not schemes:
            raise UsageError("a local appraiser needs at least one scheme")
        self.schemes = tuple(schemes)
        self.store = store
        self.verifier_id = VerifierId(developer, build)
        self.annotate = annotate
        self._routes: dict[str, Scheme] = {}
        for scheme in self.schemes:
            for mt in scheme.descriptor.media_types:
                self._routes[mt] = scheme

    @property
    def media_types(self) -> list[str]:
        return sorted(self._routes)

    def route(self, media_type: str) -> Scheme:
        """The scheme for *media_type*: the exact type with parameters, else the bare type."""
        mt = normalize_media_type(media_type)
        scheme = self._routes.get(mt) or self._routes.get(mt.split(";", 1)[0])
        if scheme is None:
            raise MalformedError(f"unsupported evidence media type {media_type!r:.80}")
        return scheme

    def collateral_requests(self, evidence: Evidence) -> list[CollateralRequest]:
        """What collateral *evidence* needs (empty for schemes that need none)."""
        scheme = self.route(evidence.media_type)
        return scheme.collateral_requests(evidence) if isinstance(scheme, NeedsCollateral) else []

    def appraise(self, evidence: Evidence, nonce: bytes, now: datetime, *, issued_at: int | None = None,
                 collateral: Mapping[CollateralRequest, Collateral] | None = None, freshness: bool = True) -> Ear:
        """Appraise at *now* (every validity check); the EAR's ``iat`` is *issued_at* or *now*.

        The Evidence must be bound to *nonce* unless it is empty or *freshness* is false; the EAR
        echoes *nonce* either way.
        """
        scheme = self.route(evidence.media_type)
        name = scheme.descriptor.name
        checked = nonce if freshness else b""
        ctx = Context(checked, now, self.store, collateral or {})
        try:
            submods: Mapping[str, Appraisal] = scheme.appraise(evidence, ctx)
        except BadEvidence as exc:
            submods = {name: Appraisal.make(
                Tier.CONTRAINDICATED, TrustVector.uniform(CRYPTO_FAILED), (f"policy:{name}",),
                {"ear_veraison_policy_claims": {"problem": exc.problem}})}
        if not checked:
            submods = {n: _freshness_not_checked(a) for n, a in submods.items()}
        if not self.annotate:
            submods = {n: _without_annotation(a) for n, a in submods.items()}
        iat = issued_at if issued_at is not None else int(now.timestamp())
        return Ear(Spelling.VERAISON.profile, iat, self.verifier_id, submods, nonce=nonce or None)


def _freshness_not_checked(a: Appraisal) -> Appraisal:
    claims = {**(a.extensions.get("ear_veraison_policy_claims") or {}), "freshness": FRESHNESS_NOT_CHECKED}
    return Appraisal(a.status, a.trust_vector, a.policy_ids, a.reported_status,
                     {**a.extensions, "ear_veraison_policy_claims": claims})


def _without_annotation(a: Appraisal) -> Appraisal:
    ext = {k: v for k, v in a.extensions.items() if k != "ear_veraison_annotated_evidence"}
    return Appraisal(a.status, a.trust_vector, a.policy_ids, a.reported_status, ext)
