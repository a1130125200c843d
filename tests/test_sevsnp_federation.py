"""Three local appraisers (different keys and operators, one signed CoRIM, one offline AMD
collateral folder each) as a 2-of-3 federation over the real SEV-SNP vectors: affirming when the
CoRIM names the report's launch measurement (Milan with debug allowed; Genoa under the default
policy), not affirming when it names another, and the CoRIM's signer in the combined result."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from test_sevsnp_amd import TRUST, VCEK_MILAN
from test_sevsnp_scheme import (
    GENOA_EV,
    GENOA_MEASUREMENT,
    GENOA_RD,
    MILAN_EV,
    MILAN_MEASUREMENT,
    MILAN_RD,
    refs,
)

from federation import Evidence, Federation, Member, QuorumPolicy, SigningKey, TrustAnchor, verify_result
from verifiers.local.appraiser import LocalAppraiser
from verifiers.local.backend import LocalBackend
from verifiers.local.collateral.folder import FolderStore
from verifiers.local.corim.encode import sign_corim
from verifiers.local.corim.model import Comid, Corim, CorimMeta, Triples, Validity
from verifiers.local.corim.signed import verify_corim
from verifiers.local.corim.store import ReferenceValueStore
from verifiers.local.schemes.sevsnp import SCHEME, SevSnpScheme

MILAN_AT = int(datetime(2024, 1, 1, tzinfo=UTC).timestamp())
GENOA_AT = int(datetime(2026, 1, 1, tzinfo=UTC).timestamp())
SIGNER = "Cloud Firmware Signing"


def signed_store(measurements: Sequence[bytes], endorser: SigningKey, at: int) -> ReferenceValueStore:
    when = datetime.fromtimestamp(at, UTC)
    comid = Comid("snp-launch-measurements", Triples(reference=tuple(refs(*measurements))))
    corim = Corim("cvm-firmware-2026", (comid,))
    meta = CorimMeta(SIGNER, signature_validity=Validity(when - timedelta(days=1), when + timedelta(days=30)))
    store = ReferenceValueStore()
    store.add(verify_corim(sign_corim(corim, endorser, meta), [TrustAnchor((endorser.public,))], when))
    return store


def federation(scheme: SevSnpScheme, measurements: Sequence[bytes], at: int, collateral: Sequence[Path],
               fed_key: SigningKey) -> tuple[Federation, dict[str, TrustAnchor]]:
    endorser = SigningKey.generate("ES256")
    members, anchors = [], {}
    for op in ("acme", "globex", "initech"):
        appraiser = LocalAppraiser([scheme], signed_store(measurements, endorser, at))
        backend = LocalBackend(f"{op}-snp", op, appraiser, SigningKey.generate(),
                               collateral=FolderStore(list(collateral)))
        members.append(Member(backend, backend.public_anchor))
        anchors[backend.name] = backend.public_anchor
    fed = Federation(members, QuorumPolicy(k=2, n=3, distinct_operators=True), fed_key, clock=lambda: float(at))
    return fed, anchors


CASES = {
    "milan-debug-allowed": (SCHEME.with_policy(allow_debug=True), MILAN_EV, MILAN_RD, MILAN_AT),
    "genoa": (SCHEME, GENOA_EV, GENOA_RD, GENOA_AT),
}
MILAN_FILES = [VCEK_MILAN, TRUST / "ask_ark_milan.pem"]


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize(("listed", "status"), [(True, "affirming"), (False, "warning")])
async def test_three_local_snp_appraisers(case: str, listed: bool, status: str) -> None:
    scheme, evidence, nonce, at = CASES[case]
    measurements = [MILAN_MEASUREMENT, GENOA_MEASUREMENT] if listed else [b"\x5a" * 48]
    fed_key = SigningKey.generate()
    fed, anchors = federation(scheme, measurements, at, MILAN_FILES, fed_key)
    async with fed:
        result = await fed.appraise(evidence, nonce, now=at)
    assert result.status == status
    assert [v.outcome.value for v in result.votes] == ["ok", "ok", "ok"]
    checked = verify_result(result.token, TrustAnchor((fed_key.public,)), nonce=nonce, reverify=True,
                            anchors=anchors, now=at)
    assert checked.status == status
    vote = result.votes[0]
    assert vote.ear is not None
    tv = vote.ear.submods["SEVSNP"].trust_vector
    assert tv is not None and tv.get("executables") == (2 if listed else 33)
    if listed:
        assert checked.provenance is not None
        assert {e["signer"] for e in checked.provenance.endorsements} == {SIGNER}
        assert {e["corim_id"] for e in checked.provenance.endorsements} == {"cvm-firmware-2026"}


async def test_the_default_policy_contraindicates_the_debug_milan_report() -> None:
    fed, _ = federation(SCHEME, [MILAN_MEASUREMENT], MILAN_AT, MILAN_FILES, SigningKey.generate())
    async with fed:
        result = await fed.appraise(MILAN_EV, MILAN_RD, now=MILAN_AT)
    assert result.status == "contraindicated"


async def test_without_collateral_the_bare_milan_report_has_no_trust_anchor() -> None:
    fed, _ = federation(SCHEME.with_policy(allow_debug=True), [MILAN_MEASUREMENT], MILAN_AT, [], SigningKey.generate())
    async with fed:
        result = await fed.appraise(Evidence(MILAN_EV.media_type, MILAN_EV.data), MILAN_RD, now=MILAN_AT)
    assert result.status == "contraindicated"
    vote = result.votes[0]
    assert vote.ear is not None
    assert "no trust anchor" in vote.ear.submods["SEVSNP"].extensions["ear_veraison_policy_claims"]["problem"]
