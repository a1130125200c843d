"""``ratsfed corim show | create | verify`` as a user runs them.

Veraison's own cocli templates (vectors/veraison-services/psa/endorsements/templates) are read
in place: ``corim create`` must turn them into the reference values and keys of Veraison's
``corim-psa-valid.cbor``, and a CoRIM signed with ``corim create --key`` must be accepted by the
local appraiser under the signer's anchor, and refused under any other.
"""

from __future__ import annotations

import base64
import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from federation.cli.main import main
from federation.errors import UntrustedKeyError
from federation.evidence import Evidence
from federation.keys import load_trust_anchor
from verifiers.local.appraiser import LocalAppraiser
from verifiers.local.corim.decode import decode, decode_corim, decode_signed_corim
from verifiers.local.corim.model import Corim
from verifiers.local.corim.store import load_paths
from verifiers.local.corim.template import TemplateError, corim_from_template, load_template
from verifiers.local.schemes import BUILTIN

VECTORS = Path(__file__).resolve().parents[2] / "shared" / "vectors"
PSA = VECTORS / "veraison-services" / "psa"
TEMPLATES = PSA / "endorsements" / "templates"
N32 = base64.urlsafe_b64decode("QUp8F0FBs9DpodKK8xUg8NQimf6sQAfe2J1ormzZLxk=")  # as tests/test_local_psa.py
NOW = datetime(2026, 6, 1, tzinfo=UTC)
MT = "application/psa-attestation-token"

# CoRIMs in the vectors that their SOURCES.md calls invalid (profile rules broken), with what
# the rejection must name; every other CoRIM there is valid.
INVALID = {
    "veraison-services/psa/endorsements/corim-psa-bad-class.cbor": "implementation-id must be of type 'bytes'",
    "veraison-services/psa/endorsements/corim-psa-bad-instance.cbor": "instance-id must be of type 'ueid'",
    "veraison-services/psa/endorsements/corim-psa-bad-ta-no-instance.cbor": "environment.instance (instance-id) is "
                                                                            "required",
    "veraison-services/psa/endorsements/corim-psa-bad-ta-cert.cbor": "verification-key must be of type "
                                                                     "'pkix-base64-key'",
    "veraison-services/psa/endorsements/corim-psa-bad-refval-mkey.cbor": "mkey must be of type 'string'",
    "veraison-corim/psa-profile/psa-invalid-impl-id.cbor": "implementation-id must be exactly 32 bytes",
    "veraison-corim/psa-profile/psa-invalid-attest-key.cbor": "verification-keys must contain exactly one entry",
}
VECTOR_CORIMS = sorted(
    str(p.relative_to(VECTORS))
    for folder in ("veraison-services", "veraison-corim") for p in (VECTORS / folder).rglob("*.cbor"))


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, Any, str]:
    """Exit code, stdout (parsed if JSON), stderr."""
    code = main(list(argv))
    captured = capsys.readouterr()
    out = captured.out
    return code, json.loads(out) if out.strip().startswith("{") else out, captured.err


@pytest.fixture
def keys(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> dict[str, Path]:
    """Two endorser keys made with ``ratsfed keys generate``: private.pem (0600) and public.jwk each."""
    out: dict[str, Path] = {}
    for name in ("endorser", "stranger"):
        assert main(["keys", "generate", "--out", str(tmp_path / name)]) == 0
        out[name] = tmp_path / name
    capsys.readouterr()
    return out


def psa_args(out: Path) -> list[str]:
    """``corim create`` over Veraison's PSA templates, unchanged (CoMIDs given as cocli's --comid)."""
    return ["corim", "create", str(TEMPLATES / "corim-psa.json"), "--comid", str(TEMPLATES / "comid-psa-refval.json"),
            "--comid", str(TEMPLATES / "comid-psa-ta.json"), "--out", str(out)]


def vector_corim() -> Corim:
    return decode_corim((PSA / "endorsements" / "corim-psa-valid.cbor").read_bytes())


def appraise(corim_file: Path, anchor: Path, *, skip_invalid: bool = False) -> dict[str, Any]:
    store = load_paths([corim_file], [load_trust_anchor(anchor)], NOW, skip_invalid=skip_invalid)
    ear = LocalAppraiser(list(BUILTIN.values()), store).appraise(
        Evidence(MT, (PSA / "evidence" / "psa.good.cose").read_bytes()), N32, NOW)
    sub = ear.submods["PSA_IOT"]
    return {"status": sub.status.label, "problem": (sub.extensions.get("ear_veraison_policy_claims") or {}).get(
        "problem"), "endorsements": sub.extensions.get("ear_ratsfed_endorsements")}


# --- create from Veraison's templates -------------------------------------------------------

def test_veraison_psa_templates_give_the_vector_triples(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "psa.cbor"
    code, text, _ = run(capsys, *psa_args(out))
    assert code == 0, text
    assert "unsigned CoRIM" in text
    made, vector = decode(out.read_bytes()), vector_corim()
    assert isinstance(made, Corim)
    assert out.read_bytes()[:3] == b"\xd9\x01\xf5"  # tag 501
    assert made.profile == vector.profile
    assert [c.triples for c in made.comids] == [c.triples for c in vector.comids]
    assert [(c.tag_id, c.tag_version, c.language) for c in made.comids] == [
        (c.tag_id, c.tag_version, c.language) for c in vector.comids]


def test_comids_named_in_the_template_relative_to_it(tmp_path: Path) -> None:
    """Our extension: ``"comids"`` lists CoMID templates (here by absolute path) or inline ones."""
    template = json.loads((TEMPLATES / "corim-psa.json").read_text())
    inline = json.loads((TEMPLATES / "comid-psa-ta.json").read_text())
    (tmp_path / "refval.json").write_text((TEMPLATES / "comid-psa-refval.json").read_text())
    (tmp_path / "corim.json").write_text(json.dumps({**template, "comids": ["refval.json", inline]}))
    made = load_template(tmp_path / "corim.json")
    assert [c.triples for c in made.comids] == [c.triples for c in vector_corim().comids]


# --- signed: accepted under its anchor, refused under any other -----------------------------

def test_signed_corim_from_create_is_accepted_by_the_appraiser(
        tmp_path: Path, keys: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "signed.cbor"
    code, text, err = run(capsys, *psa_args(out), "--key", str(keys["endorser"] / "private.pem"),
                          "--signer-name", "ACME endorser", "--signer-uri", "https://acme.example",
                          "--not-before", "2026-01-01T00:00:00Z", "--not-after", "2027-01-01T00:00:00Z")
    assert code == 0, err
    assert "signed CoRIM" in text
    signed = decode_signed_corim(out.read_bytes())
    assert (signed.meta.signer_name, signed.meta.signer_uri) == ("ACME endorser", "https://acme.example")
    assert signed.meta.signature_validity is not None
    assert signed.meta.signature_validity.not_after == datetime(2027, 1, 1, tzinfo=UTC)
    assert [c.triples for c in signed.corim.comids] == [c.triples for c in vector_corim().comids]

    verdict = appraise(out, keys["endorser"] / "public.jwk")
    assert (verdict["status"], verdict["problem"]) == ("affirming", None)
    assert {r["signer"] for r in verdict["endorsements"]} == {"ACME endorser"}
    assert {r["key_thumbprint"] for r in verdict["endorsements"]} == {
        load_trust_anchor(keys["endorser"] / "public.jwk").keys[0].thumbprint}


def test_same_content_signed_by_an_untrusted_key_is_not_accepted(
        tmp_path: Path, keys: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "stranger.cbor"
    assert run(capsys, *psa_args(out), "--key", str(keys["stranger"] / "private.pem"))[0] == 0
    with pytest.raises(UntrustedKeyError):
        load_paths([out], [load_trust_anchor(keys["endorser"] / "public.jwk")], NOW)
    verdict = appraise(out, keys["endorser"] / "public.jwk", skip_invalid=True)
    assert verdict["status"] == "contraindicated"
    assert verdict["problem"] == "no trust anchor for evidence"


# --- show -----------------------------------------------------------------------------------

RICH_COMID: dict[str, Any] = {
    "lang": "en-GB",
    "tag-identity": {"id": "my-ns:acme-roadrunner", "version": 3},
    "entities": [{"name": "ACME Ltd.", "regid": "https://acme.example", "roles": ["tagCreator", "creator"]}],
    "linked-tags": [{"target": "my-ns:acme-roadrunner-base", "rel": "supplements"}],
    "triples": {
        "reference-values": [{
            "environment": {"class": {"id": {"type": "oid", "value": "2.5.2.8192"}, "vendor": "ACME Ltd.",
                                      "model": "RoadRunner", "layer": 0, "index": 1},
                            "instance": {"type": "ueid", "value": "At6tvu/erQ=="},
                            "group": {"type": "uuid", "value": "31fb5abf-023e-4992-aa4e-95f9c1503bfa"}},
            "measurements": [
                {"key": {"type": "uuid", "value": "31fb5abf-023e-4992-aa4e-95f9c1503bfa"},
                 "value": {"version": {"value": "1.2.3", "scheme": "semver"},
                           "svn": {"type": "min-value", "value": 2},
                           "digests": ["sha-256;h0KPxSKAPTEGXnvOPPA_5HUJZjHl4Hu9eg_eYMTPJcc", [7, "A" * 64]],
                           "flags": {"is-secure": True, "is-debug": False},
                           "raw-value": {"type": "bytes", "value": "AQIDBA=="}, "raw-value-mask": "/////w==",
                           "mac-addr": "02:00:5e:10:00:00:00:01", "ip-addr": "2001:db8::68",
                           "serial-number": "C02X70VHJHD5", "ueid": "At6tvu/erQ==",
                           "uuid": "31fb5abf-023e-4992-aa4e-95f9c1503bfa", "name": "firmware"}},
                {"key": {"type": "string", "value": "config"},
                 "value": {"int-range": {"type": "rawIntRange", "value": {"min": 1}},
                           "integrity-registers": {"0": {"key-type": "uint", "value": [
                               [1, "h0KPxSKAPTEGXnvOPPA_5HUJZjHl4Hu9eg_eYMTPJcc"]]}},
                           "raw-value": {"type": "masked", "value": {"value": "qg==", "mask": "8A=="}}},
                 "authorized-by": [{"type": "thumbprint",
                                    "value": "sha-256;h0KPxSKAPTEGXnvOPPA_5HUJZjHl4Hu9eg_eYMTPJcc"}]},
            ],
        }],
        "endorsed-values": [{
            "environment": {"class": {"id": {"type": "uuid", "value": "31fb5abf-023e-4992-aa4e-95f9c1503bfa"}}},
            "measurements": [{"key": {"type": "uint", "value": 7}, "value": {"svn": 5}}]}],
        "dev-identity-keys": [{
            "environment": {"instance": {"type": "uuid", "value": "31fb5abf-023e-4992-aa4e-95f9c1503bfa"}},
            "verification-keys": [{"type": "bytes", "value": "AAEC"}],
            "conditions": {"mkey": {"type": "string", "value": "boot"}}}],
        "dependency-triples": [{"domain-id": {"instance": {"type": "ueid", "value": "At6tvu/erQ=="}},
                                "trustees": [{"class": {"vendor": "ACME Ltd."}}]}],
        "conditional-endorsement-series": [{
            "condition": {"environment": {"class": {"vendor": "ACME Ltd."}}, "measurements": []},
            "series": [{"selection": [{"value": {"svn": 1}}], "addition": [{"value": {"name": "fixed"}}]}]}],
    },
}


@pytest.fixture
def rich_template(tmp_path: Path) -> Path:
    """A CoRIM template using most of the vocabulary (no profile: only the base rules apply)."""
    (tmp_path / "comid.json").write_text(json.dumps(RICH_COMID))
    doc = {
        "corim-id": "5c57e8f4-46cd-421b-91c9-08cf93e13cfc",
        "dependent-rims": [{"href": "https://acme.example/slsa/provenance.json",
                            "thumbprint": [1, "h0KPxSKAPTEGXnvOPPA_5HUJZjHl4Hu9eg_eYMTPJcc"]}],
        "validity": {"not-before": "2026-01-01T00:00:00Z", "not-after": "2027-01-01T00:00:00Z"},
        "entities": [{"name": "ACME Ltd.", "roles": ["manifestCreator"]}],
        "comids": ["comid.json"],
    }
    path = tmp_path / "corim.json"
    path.write_text(json.dumps(doc))
    return path


def test_created_corim_round_trips_through_show_json(
        tmp_path: Path, rich_template: Path, keys: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "rich.cbor"
    code, _, err = run(capsys, "corim", "create", str(rich_template), "--key", str(keys["endorser"] / "private.pem"),
                       "--out", str(out))
    assert code == 0, err
    code, doc, err = run(capsys, "corim", "show", str(out), "--json")
    assert code == 0, err
    assert doc["signed"] is True and doc["profile_valid"] is True
    assert doc["signature"]["verified"] is False and doc["signature"]["algorithm"] == "ES256"
    assert doc["meta"]["signer"]["name"]  # default: the key id
    shown = doc["corim"]

    # the same CoRIM, whichever of the two templates it is built from
    assert corim_from_template(shown) == load_template(rich_template) == decode_signed_corim(out.read_bytes()).corim
    # and the values read as the template wrote them (binary ones in base64url)
    assert shown["corim-id"] == "5c57e8f4-46cd-421b-91c9-08cf93e13cfc"
    assert shown["validity"] == {"not-before": "2026-01-01T00:00:00Z", "not-after": "2027-01-01T00:00:00Z"}
    assert shown["dependent-rims"][0]["href"] == "https://acme.example/slsa/provenance.json"
    comid = shown["comids"][0]
    assert comid["tag-identity"] == RICH_COMID["tag-identity"]
    assert comid["entities"] == RICH_COMID["entities"]
    assert comid["linked-tags"] == RICH_COMID["linked-tags"]
    ref = comid["triples"]["reference-values"][0]
    want = RICH_COMID["triples"]["reference-values"][0]
    assert ref["environment"]["class"]["id"] == want["environment"]["class"]["id"]
    assert ref["environment"]["group"] == want["environment"]["group"]
    assert ref["environment"]["instance"] == {"type": "ueid", "value": "At6tvu_erQ"}
    first = ref["measurements"][0]["value"]
    assert first["digests"][0] == [1, "h0KPxSKAPTEGXnvOPPA_5HUJZjHl4Hu9eg_eYMTPJcc"]
    assert first["version"] == {"value": "1.2.3", "scheme": "semver"}
    assert first["svn"] == {"type": "min-value", "value": 2}
    assert first["raw-value"] == {"type": "masked", "value": {"value": "AQIDBA", "mask": "_____w"}}
    for name in ("flags", "mac-addr", "ip-addr", "serial-number", "uuid", "name"):
        assert first[name] == want["measurements"][0]["value"][name], name
    assert comid["triples"]["dev-identity-keys"][0]["conditions"] == {"mkey": {"type": "string", "value": "boot"}}


def test_show_human_summary_of_a_created_signed_corim(
        tmp_path: Path, keys: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "psa.cbor"
    run(capsys, *psa_args(out), "--key", str(keys["endorser"] / "private.pem"), "--signer-name", "ACME",
        "--not-after", "2027-01-01")
    code, text, _ = run(capsys, "corim", "show", str(out))
    assert code == 0
    assert "signed (COSE_Sign1, ES256" in text
    assert "signer: ACME" in text
    assert "signature-validity: open .. 2027-01-01T00:00:00Z" in text
    assert "tag:arm.com,2025:psa#1.0.0 — its rules are met" in text
    assert "CoMID 43bbe37f-2e61-4b33-aed3-53cff1428b16 version 0" in text
    assert "measurement [psa.software-component]: digests=sha-256:87428fc5" in text
    assert 'class-id=bytes:61636d65' in text and '("acme-implementation-id-000000001")' in text
    assert "instance=ueid:01ceebae" in text
    assert "key: pkix-base64-key (key thumbprint " in text


@pytest.mark.parametrize("name", VECTOR_CORIMS)
def test_show_every_vector_corim(name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    decoded = decode((VECTORS / name).read_bytes())
    corim = decoded if isinstance(decoded, Corim) else decoded.corim
    code, text, err = run(capsys, "corim", "show", str(VECTORS / name))
    if name in INVALID:
        assert code == 2
        assert INVALID[name] in err
        assert "its rules are broken" in text  # the content is still shown
    else:
        assert (code, err) == (0, "")
        assert text.startswith("CoRIM ")
    code, doc, _ = run(capsys, "corim", "show", str(VECTORS / name), "--json")
    assert code == (2 if name in INVALID else 0)
    assert doc["profile_valid"] is (name not in INVALID)
    assert "status" not in doc
    if name in INVALID:
        assert doc["error"]["reason"] == "malformed" and INVALID[name] in doc["error"]["detail"]

    # what show prints is a template create reads back to the same CoRIM (and refuses the invalid ones)
    assert corim_from_template(doc["corim"]) == corim
    (tmp_path / "shown.json").write_text(json.dumps(doc["corim"]))
    code, _, err = run(capsys, "corim", "create", str(tmp_path / "shown.json"), "--out", str(tmp_path / "again.cbor"))
    if name in INVALID:
        assert code == 2 and INVALID[name] in err
    else:
        assert code == 0, err
        assert decode_corim((tmp_path / "again.cbor").read_bytes()) == corim


def test_show_signed_vector_json_names_the_signer(capsys: pytest.CaptureFixture[str]) -> None:
    code, doc, _ = run(capsys, "corim", "show", str(VECTORS / "veraison-corim/corim/signed-good-corim.cbor"), "--json")
    assert code == 0
    assert doc["meta"] == {"signer": {"name": "ACME Ltd signing key", "uri": "https://acme.example"},
                           "validity": {"not-before": "2021-12-31T00:00:00Z", "not-after": "2025-12-31T00:00:00Z"}}
    assert doc["signature"] == {"algorithm": "ES256", "kid": "1", "x5chain": 0, "verified": False}


def test_show_garbage_is_an_error_with_a_reason(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    junk = tmp_path / "junk.cbor"
    junk.write_bytes(b"\xa0")
    code, doc, _ = run(capsys, "corim", "show", str(junk), "--json")
    assert code == 2
    assert doc["error"]["reason"] == "malformed"


# --- verify ---------------------------------------------------------------------------------

@pytest.fixture
def signed(tmp_path: Path, keys: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> Path:
    out = tmp_path / "signed.cbor"
    code, _, err = run(capsys, *psa_args(out), "--key", str(keys["endorser"] / "private.pem"),
                       "--signer-name", "ACME endorser", "--not-before", "2026-01-01", "--not-after", "2027-01-01")
    assert code == 0, err
    return out


def test_verify_with_the_right_anchor(signed: Path, keys: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    anchor = keys["endorser"] / "public.jwk"
    code, doc, _ = run(capsys, "corim", "verify", str(signed), "--anchors", str(anchor), "--at", "2026-06-01",
                       "--json")
    assert code == 0
    assert doc["verified"] is True and "status" not in doc
    assert doc["signer"] == {"name": "ACME endorser"}
    assert doc["key_thumbprint"] == load_trust_anchor(anchor).keys[0].thumbprint
    assert doc["validity"] == {"not-before": "2026-01-01T00:00:00Z", "not-after": "2027-01-01T00:00:00Z"}
    assert doc["profile"] == "tag:arm.com,2025:psa#1.0.0"
    code, text, _ = run(capsys, "corim", "verify", str(signed), "--anchors", str(anchor), "--at", "2026-06-01")
    assert code == 0
    assert "signer: ACME endorser" in text and doc["key_thumbprint"] in text
    assert "validity: 2026-01-01T00:00:00Z .. 2027-01-01T00:00:00Z" in text


def test_verify_with_the_wrong_anchor(signed: Path, keys: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    code, doc, _ = run(capsys, "corim", "verify", str(signed), "--anchors", str(keys["stranger"] / "public.jwk"),
                       "--at", "2026-06-01", "--json")
    assert code == 2
    assert doc["verified"] is False
    assert doc["error"]["reason"] in ("untrusted-key", "bad-signature")
    assert doc["claimed_signer"] == {"name": "ACME endorser"}
    code, _, err = run(capsys, "corim", "verify", str(signed), "--anchors", str(keys["stranger"] / "public.jwk"),
                       "--at", "2026-06-01")
    assert code == 2 and err.startswith("ratsfed: ")


@pytest.mark.parametrize(("at", "says"), [("2025-12-31T23:59:59Z", "not valid before"), ("2027-01-01T00:00:01Z",
                                                                                        "expired")])
def test_verify_outside_the_signature_validity(
        signed: Path, keys: dict[str, Path], at: str, says: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, doc, _ = run(capsys, "corim", "verify", str(signed), "--anchors", str(keys["endorser"] / "public.jwk"),
                       "--at", at, "--json")
    assert code == 2
    assert doc["error"]["reason"] == "stale" and says in doc["error"]["detail"]


def test_verify_a_flipped_signature_bit(
        signed: Path, keys: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    data = bytearray(signed.read_bytes())
    data[-5] ^= 0x01
    signed.write_bytes(bytes(data))
    code, doc, _ = run(capsys, "corim", "verify", str(signed), "--anchors", str(keys["endorser"] / "public.jwk"),
                       "--at", "2026-06-01", "--json")
    assert (code, doc["error"]["reason"]) == (2, "bad-signature")


def test_verify_veraison_signed_vector_in_and_after_its_validity(capsys: pytest.CaptureFixture[str]) -> None:
    vector = str(VECTORS / "veraison-corim/corim/signed-good-corim.cbor")
    iak = str(PSA / "keys" / "ec.p256.jwk")
    code, doc, _ = run(capsys, "corim", "verify", vector, "--anchors", iak, "--at", "2024-06-01", "--json")
    assert (code, doc["signer"]["name"]) == (0, "ACME Ltd signing key")
    code, doc, _ = run(capsys, "corim", "verify", vector, "--anchors", iak, "--json")  # now: after 2025-12-31
    assert (code, doc["error"]["reason"]) == (2, "stale")


def test_verify_an_unsigned_corim_is_an_error(capsys: pytest.CaptureFixture[str], keys: dict[str, Path]) -> None:
    code, doc, _ = run(capsys, "corim", "verify", str(PSA / "endorsements" / "corim-psa-valid.cbor"),
                       "--anchors", str(keys["endorser"] / "public.jwk"), "--json")
    assert code == 2
    assert "no signature" in doc["error"]["detail"]


def _cert(subject: str, key: ec.EllipticCurvePrivateKey, issuer: str, signer: ec.EllipticCurvePrivateKey, *,
          ca: bool) -> x509.Certificate:
    start = datetime(2025, 1, 1, tzinfo=UTC)
    return (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
            .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(start).not_valid_after(start + timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=not ca, content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False, key_cert_sign=ca,
                                         crl_sign=ca, encipher_only=False, decipher_only=False), critical=True)
            .sign(signer, hashes.SHA256()))


def test_signed_with_a_certificate_chain_verifies_to_the_root(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root_key, leaf_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    root = _cert("ACME Root", root_key, "ACME Root", root_key, ca=True)
    leaf = _cert("ACME CoRIM signer", leaf_key, "ACME Root", root_key, ca=False)
    key_file = tmp_path / "leaf.pem"
    fd = os.open(key_file, os.O_WRONLY | os.O_CREAT, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(leaf_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                        serialization.NoEncryption()))
    (tmp_path / "chain.pem").write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "root.pem").write_bytes(root.public_bytes(serialization.Encoding.PEM))
    out = tmp_path / "chained.cbor"
    code, _, err = run(capsys, *psa_args(out), "--key", str(key_file), "--chain", str(tmp_path / "chain.pem"))
    assert code == 0, err
    code, doc, _ = run(capsys, "corim", "verify", str(out), "--anchors", str(tmp_path / "root.pem"), "--json")
    assert code == 0
    assert doc["signer"]["name"] == "ACME CoRIM signer"  # default: the leaf's CN

    other = ec.generate_private_key(ec.SECP256R1())
    (tmp_path / "wrong.pem").write_bytes(_cert("Other", other, "Other", other, ca=False).public_bytes(
        serialization.Encoding.PEM))
    code, _, err = run(capsys, *psa_args(tmp_path / "x.cbor"), "--key", str(key_file), "--chain",
                       str(tmp_path / "wrong.pem"))
    assert code == 2 and "not for the --key key" in err


# --- create: what it refuses ----------------------------------------------------------------

def test_create_refuses_a_template_typo_naming_where(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    comid = json.loads((TEMPLATES / "comid-psa-refval.json").read_text())
    comid["triples"]["reference-values"][0]["measurements"][1]["value"]["digest"] = []
    (tmp_path / "comid.json").write_text(json.dumps(comid))
    code, doc, _ = run(capsys, "corim", "create", str(TEMPLATES / "corim-psa.json"), "--comid",
                       str(tmp_path / "comid.json"), "--out", str(tmp_path / "x.cbor"), "--json")
    assert code == 2
    assert doc["error"]["reason"] == "config"
    assert "triples.reference-values[0].measurements[1].value" in doc["error"]["detail"]
    assert "unknown member 'digest'" in doc["error"]["detail"]
    assert not (tmp_path / "x.cbor").exists()


def test_create_refuses_what_breaks_the_profile(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    comid = json.loads((TEMPLATES / "comid-psa-ta.json").read_text())
    del comid["triples"]["attester-verification-keys"][0]["environment"]["instance"]
    (tmp_path / "ta.json").write_text(json.dumps(comid))
    code, _, err = run(capsys, "corim", "create", str(TEMPLATES / "corim-psa.json"), "--comid",
                       str(tmp_path / "ta.json"), "--out", str(tmp_path / "x.cbor"))
    assert code == 2
    assert "environment.instance (instance-id) is required" in err


def test_create_signing_options_need_a_key(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, *psa_args(tmp_path / "x.cbor"), "--signer-name", "ACME")
    assert code == 2 and "--signer-name only apply to a signed CoRIM" in err


def test_create_refuses_a_key_readable_by_others(tmp_path: Path, keys: dict[str, Path],
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    private = keys["endorser"] / "private.pem"
    private.chmod(0o644)
    code, _, err = run(capsys, *psa_args(tmp_path / "x.cbor"), "--key", str(private))
    assert code == 2 and "chmod 600" in err


def test_template_errors_name_the_member() -> None:
    base = {"corim-id": "x", "comids": [{"tag-identity": {"id": "t"}, "triples": {
        "reference-values": [{"environment": {"class": {"id": {"type": "psa.impl-id", "value": "AAAA"}}},
                              "measurements": [{"value": {"name": "x"}}]}]}}]}
    with pytest.raises(TemplateError, match=r"comids\[0\]\.triples\.reference-values\[0\]\.environment\.class\.id"
                                            r"\.value: 3 bytes is not an allowed length \(32\)"):
        corim_from_template(base)
    with pytest.raises(TemplateError, match="a CoRIM needs at least one CoMID"):
        corim_from_template({"corim-id": "x"})
    with pytest.raises(TemplateError, match=r"digests\[0\]: a sha-256 digest is 32 bytes, got 3"):
        corim_from_template({**base, "comids": [{"tag-identity": {"id": "t"}, "triples": {"reference-values": [
            {"environment": {"class": {"vendor": "v"}}, "measurements": [{"value": {"digests": [[1, "AAAA"]]}}]}]}}]})
