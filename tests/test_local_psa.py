"""The local appraiser on Veraison's PSA end-to-end set: exactly Veraison's verdicts.

Tokens come from the vectors (psa.good.cose) or are compiled from Veraison's claims files and
signed with Veraison's published test keys, as Veraison's integration tests do.
"""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from federation import cbor, cose
from federation.ear.codec import to_json_claims
from federation.ear.model import Ear
from federation.errors import MalformedError
from federation.evidence import Evidence
from federation.keys import SigningKey, jwk_to_private
from verifiers.local.appraiser import LocalAppraiser
from verifiers.local.corim.store import load_paths
from verifiers.local.evidence.psa import PsaClaims, encode_psa, json_to_cbor_claims
from verifiers.local.schemes import BUILTIN

PSA = Path(__file__).resolve().parents[2] / "shared" / "vectors" / "veraison-services" / "psa"
N32 = base64.urlsafe_b64decode("QUp8F0FBs9DpodKK8xUg8NQimf6sQAfe2J1ormzZLxk=")
NOW = datetime(2026, 6, 1, tzinfo=UTC)
MT = "application/psa-attestation-token"


def key(name: str) -> SigningKey:
    return SigningKey.of(jwk_to_private(json.loads((PSA / "keys" / name).read_text())), "ES256")


@pytest.fixture(scope="module")
def appraiser() -> LocalAppraiser:
    store = load_paths([PSA / "endorsements" / "corim-psa-valid.cbor"], [], NOW, trust_unsigned=True)
    return LocalAppraiser(list(BUILTIN.values()), store)


def token(claims_file: str, signer: str = "ec.p256.jwk") -> bytes:
    """Compile a claims file as evcli does (no validation: invalid ones must reach the verifier)."""
    claims = json_to_cbor_claims((PSA / "claims" / claims_file).read_text())
    return cose.sign1(cbor.dumps(claims), key(signer))


def expected(name: str) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((PSA / "expected" / name).read_text())["PSA_IOT"]
    return doc


def as_veraison(ear: Ear) -> dict[str, Any]:
    sub: dict[str, Any] = to_json_claims(ear)["submods"]["PSA_IOT"]
    return sub


CASES = [
    # (evidence, expected file, problem prefix)
    ("vector:psa.good.cose", "psa.good.json", None),
    ("psa.badswcomp.json", "psa.badswcomp.json", None),
    ("psa.badinstance.json", "psa.badinstance.json", "no trust anchor for evidence"),
    ("psa.missingclaims.json", "psa.noident.json", "could not establish identity from evidence"),
    ("psa.multinonce.json", "psa.noident.json", "could not establish identity from evidence"),
    ("alt-key:psa.good.json", "psa.badcrypto.json", "integrity validation failed: bad evidence"),
]


def evidence_for(source: str) -> bytes:
    if source.startswith("vector:"):
        return (PSA / "evidence" / source.split(":", 1)[1]).read_bytes()
    if source.startswith("alt-key:"):
        return token(source.split(":", 1)[1], "ec.p256.alt.jwk")
    return token(source)


@pytest.mark.parametrize(("source", "expected_file", "problem"), CASES)
def test_psa_end_to_end_matches_veraison(
    appraiser: LocalAppraiser, source: str, expected_file: str, problem: str | None
) -> None:
    ear = appraiser.appraise(Evidence(MT, evidence_for(source)), N32, NOW)
    got, want = as_veraison(ear), expected(expected_file)
    assert got["ear.status"] == want["ear.status"]
    assert got["ear.trustworthiness-vector"] == want["ear.trustworthiness-vector"]
    assert got["ear.appraisal-policy-id"] == want["ear.appraisal-policy-id"]
    if "ear.veraison.annotated-evidence" in want:
        assert got["ear.veraison.annotated-evidence"] == want["ear.veraison.annotated-evidence"]
    if problem is None:
        assert "ear.veraison.policy-claims" not in got
    else:
        assert got["ear.veraison.policy-claims"]["problem"].startswith(problem)


def test_any_other_session_nonce_is_a_freshness_failure(appraiser: LocalAppraiser) -> None:
    good = (PSA / "evidence" / "psa.good.cose").read_bytes()
    ear = appraiser.appraise(Evidence(MT, good), b"\x00" * 32, NOW)
    sub = as_veraison(ear)
    assert sub["ear.status"] == "contraindicated"
    assert set(sub["ear.trustworthiness-vector"].values()) == {99}


def test_every_one_bit_change_of_the_good_token_is_never_affirming(appraiser: LocalAppraiser) -> None:
    good = bytearray((PSA / "evidence" / "psa.good.cose").read_bytes())
    for i in range(len(good)):
        bad = bytearray(good)
        bad[i] ^= 0x01
        try:
            ear = appraiser.appraise(Evidence(MT, bytes(bad)), N32, NOW)
        except MalformedError:
            continue  # e.g. the COSE structure itself broke: no EAR at all, never affirming
        assert ear.status.label != "affirming", f"byte {i}"


def test_endorsement_provenance_names_who_endorsed_key_and_reference_values(appraiser: LocalAppraiser) -> None:
    ear = appraiser.appraise(Evidence(MT, (PSA / "evidence" / "psa.good.cose").read_bytes()), N32, NOW)
    records = ear.submods["PSA_IOT"].extensions["ear_ratsfed_endorsements"]
    assert {r["role"] for r in records} == {"attest-key", "reference-values"}
    assert all(r["corim_id"] and r["comid_id"] and r["profile"] == "tag:arm.com,2025:psa#1.0.0" for r in records)
    assert all(len(r["corim_sha256"]) == 64 for r in records)


def test_media_type_variants_veraison_accepts(appraiser: LocalAppraiser) -> None:
    good = (PSA / "evidence" / "psa.good.cose").read_bytes()
    for mt in (MT, 'application/eat+cwt; eat_profile="http://arm.com/psa/2.0.0"'):
        assert appraiser.appraise(Evidence(mt, good), N32, NOW).status.label == "affirming"
    with pytest.raises(MalformedError, match="unsupported evidence media type"):
        appraiser.appraise(Evidence("application/x-unknown", good), N32, NOW)


def test_compiled_good_claims_equal_the_vector_claims() -> None:
    ours = PsaClaims.from_json((PSA / "claims" / "psa.good.json").read_text())
    tok = encode_psa(ours, key("ec.p256.jwk"))
    vector = cose.decode_sign1((PSA / "evidence" / "psa.good.cose").read_bytes())
    assert cbor.loads(cose.decode_sign1(tok).payload or b"") == cbor.loads(vector.payload or b"")


def test_unsupported_algorithm_is_bad_evidence_not_a_crash(appraiser: LocalAppraiser) -> None:
    good = cose.decode_sign1((PSA / "evidence" / "psa.good.cose").read_bytes())
    weird = cbor.dumps(cbor.CBORTag(18, [cbor.dumps({1: -999}), {}, good.payload, good.signature]))
    sub = as_veraison(appraiser.appraise(Evidence(MT, weird), N32, NOW))
    assert sub["ear.status"] == "contraindicated"
    assert sub["ear.veraison.policy-claims"]["problem"].startswith("could not establish identity")
