"""Regression tests for the crashes fuzzing found (bench/fuzz.py, fuzz/): one test per crash,
named after the target and the exception, on a minimal hand-made input (never vector bytes).

Each was an untyped exception escaping a parser of untrusted input; each must now be a typed
:class:`federation.errors.MalformedError`.
"""

from __future__ import annotations

import json

import pytest

from federation.errors import MalformedError
from federation.keys import b64url_decode, jwk_to_public
from federation.provenance import parse_provenance

POLICY = {"k": 1, "n": 1, "veto": True, "wait": "all", "distinct_operators": False, "id": "ratsfed:quorum/v1"}


def provenance(**vote: object) -> dict[str, object]:
    return {"version": 1, "federation": "f", "policy": POLICY, "decision": "d",
            "votes": [{"name": "a", "operator": "o", "kind": "local", "outcome": "ok", **vote}]}


def test_provenance_unicode_encode_error_in_embedded_jwt_result() -> None:
    """fuzz/provenance.py, UnicodeEncodeError@provenance.py:154: an embedded ``result`` that starts
    like a JWT ("ey") but holds non-ASCII text was encoded as ASCII unguarded."""
    with pytest.raises(MalformedError, match="not an ASCII JWT"):
        parse_provenance(provenance(result="eyJ\u023d.x.y"))
    assert parse_provenance(provenance(result="eyJh.e30.c2ln")).votes[0].result == b"eyJh.e30.c2ln"


def test_provenance_unicode_encode_error_in_b64url_decode() -> None:
    """fuzz/provenance.py, UnicodeEncodeError@keys.py:57: ``b64url_decode`` of non-ASCII text (a
    text ``eat_nonce`` of a combined result, an embedded CWT result, a JWK member) raised
    UnicodeEncodeError instead of a typed error."""
    with pytest.raises(MalformedError, match="base64url"):
        b64url_decode("AAAA\u04b8")
    with pytest.raises(MalformedError):
        parse_provenance(provenance(result="\u04b8AAA"))
    with pytest.raises(MalformedError):
        jwk_to_public({"kty": "OKP", "crv": "Ed25519", "x": "\u00e9" * 43})
    assert b64url_decode("AQID") == b"\x01\x02\x03"


def test_provenance_non_ascii_nonce_of_a_combined_result_is_typed() -> None:
    """The same crash through ``verify_result(reverify=True)``: a JSON combined result whose text
    ``eat_nonce`` is not ASCII (found by fuzz/provenance.py via federation.result._reverify)."""
    from federation.ear.codec import from_json_claims
    from federation.result import _nonce_bytes

    ear = from_json_claims({
        "eat_profile": "tag:github.com,2023:veraison/ear", "iat": 1, "eat_nonce": "\u04b8" * 12,
        "ear.verifier-id": {"developer": "d", "build": "b"},
        "submods": {"s": {"ear.status": "affirming"}},
    })
    with pytest.raises(MalformedError):
        _nonce_bytes(ear)


def _duplicate_extension_pem() -> bytes:
    """A self-signed certificate whose KeyUsage OID is patched into a second BasicConstraints (the
    DER stays well formed; only reading ``extensions`` fails)."""
    from datetime import UTC, datetime, timedelta

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "dup")])
    now = datetime.now(UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(7).not_valid_before(now - timedelta(days=1)).not_valid_after(now + timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(True, False, False, False, False, True, True, False, False), critical=True)
            .sign(key, hashes.SHA256()))
    der = cert.public_bytes(serialization.Encoding.DER)
    key_usage, basic_constraints = b"\x06\x03\x55\x1d\x0f", b"\x06\x03\x55\x1d\x13"
    assert der.count(key_usage) == 1
    der = der.replace(key_usage, basic_constraints)
    with pytest.raises(x509.DuplicateExtension):
        _ = x509.load_der_x509_certificate(der).extensions
    return x509.load_der_x509_certificate(der).public_bytes(serialization.Encoding.PEM)


def test_tdx_quote_duplicate_extension_in_pck_chain() -> None:
    """fuzz/tdx_quote.py and fuzz/intel_collateral.py, DuplicateExtension@tdx.py:269: a PCK chain
    (in a quote's certification data, or in collateral) with a certificate that names one
    extension twice raised cryptography's DuplicateExtension, not a typed error."""
    from verifiers.local.collateral.intel import parse_collateral
    from verifiers.local.evidence.tdx import QuoteFormatError, _parse_pem_chain

    pem = _duplicate_extension_pem()
    with pytest.raises(QuoteFormatError, match="does not parse"):
        _parse_pem_chain(pem)
    with pytest.raises(MalformedError):
        parse_collateral(json.dumps({"pck_crl_issuer_chain": pem.decode()}).encode())


def test_intel_collateral_value_error_for_an_impossible_time() -> None:
    """fuzz/intel_collateral.py, ValueError@intel.py:595: a TCB info / QE identity time of the
    right shape but impossible ("07:60:59") raised ValueError from datetime, not a typed error."""
    from verifiers.local.collateral.intel import CollateralError, parse_qe_identity, parse_tcb_info

    with pytest.raises(CollateralError, match="issueDate"):
        parse_qe_identity(json.dumps({"id": "TD_QE", "version": 2, "issueDate": "2023-06-08T07:60:59Z"}).encode())
    with pytest.raises(CollateralError, match="issueDate"):
        parse_tcb_info(json.dumps({"id": "TDX", "version": 3, "tcbLevels": [],
                                   "issueDate": "2023-02-30T00:00:00Z"}).encode())


def test_corim_cryptokeys_unsupported_algorithm_in_a_certificate() -> None:
    """Found while triaging the DuplicateExtension finding (same class: an exception cryptography
    raises outside ValueError), then fuzzed by fuzz/corim_decode.py: a CoRIM key (pkix-base64-cert,
    pkix-asn1der-cert) whose certificate names an unknown key algorithm raised UnsupportedAlgorithm
    from ``public_key()`` while a scheme looked up an attestation key."""
    from datetime import UTC, datetime, timedelta

    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519
    from cryptography.x509.oid import NameOID

    from verifiers.local.corim.cryptokeys import public_key
    from verifiers.local.corim.model import Tagged

    key = ed25519.Ed25519PrivateKey.generate()
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "k")])
    now = datetime.now(UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(1).not_valid_before(now).not_valid_after(now + timedelta(days=1)).sign(key, None))
    der = cert.public_bytes(serialization.Encoding.DER)
    spki = b"\x30\x2a\x30\x05\x06\x03\x2b\x65\x70"  # SubjectPublicKeyInfo, algorithm id-Ed25519 (1.3.101.112)
    assert der.count(spki) == 1
    der = der.replace(spki, spki[:-1] + b"\x79")  # 1.3.101.121: no such key algorithm
    pem = x509.load_der_x509_certificate(der).public_bytes(serialization.Encoding.PEM).decode()
    for tagged in (Tagged("pkix-asn1der-cert", der, 557), Tagged("pkix-base64-cert", pem, 555)):
        with pytest.raises(MalformedError, match="does not parse"):
            public_key(tagged)


def test_intel_collateral_invalid_version_of_a_crl() -> None:
    """fuzz/intel_collateral.py (atheris), InvalidVersion@intel.py:425: a DER CRL whose version is
    not v1/v2 raised cryptography's InvalidVersion from ``load_crl``, not a typed error."""
    from datetime import UTC, datetime, timedelta

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    from verifiers.local.collateral.intel import CollateralError, load_crl

    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.now(UTC)
    crl = (x509.CertificateRevocationListBuilder()
           .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ca")]))
           .last_update(now).next_update(now + timedelta(days=1)).sign(key, hashes.SHA256()))
    der = crl.public_bytes(serialization.Encoding.DER)
    version = b"\x02\x01\x01"  # TBSCertList.version v2, its first member
    assert der.count(version) == 1
    der = der.replace(version, b"\x02\x01\x11")  # 17
    assert load_crl(crl.public_bytes(serialization.Encoding.DER)).issuer == crl.issuer
    with pytest.raises(CollateralError, match="CRL does not parse"):
        load_crl(der)


def test_vendor_tokens_type_error_for_an_unhashable_ita_policy_id() -> None:
    """fuzz/vendor_tokens.py, TypeError@ita.py:186: an ITA token (signed by the configured key)
    whose ``policy_ids_matched``/``_unmatched`` object has an ``id`` that is not text (a list, an
    object) raised TypeError (unhashable type) while the ids were collected into a set."""
    import jwt as pyjwt
    from cryptography.hazmat.primitives.asymmetric import rsa

    from federation.keys import TrustAnchor, VerificationKey
    from verifiers import vendor
    from verifiers.vendor import ita

    for bad in ([], {"a": 1}):
        with pytest.raises(MalformedError, match="policy_ids_matched"):
            ita._policies({"policy_ids_matched": [{"id": bad}]}, {})
    ita._policies({"policy_ids_matched": [{"id": "p1"}], "policy_ids_unmatched": [{"version": "v1"}]},
                  {"policy_ids": ("p1",)})

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    now = 1_750_000_000
    claims = {"iss": "Intel Trust Authority", "iat": now, "exp": now + 300, "attester_type": "TDX",
              "attester_tcb_status": "UpToDate", "policy_ids_matched": [{"id": ["p1"], "version": "v1"}]}
    token = pyjwt.encode(claims, key, algorithm="PS384", headers={"kid": "k"}).encode()
    anchor = TrustAnchor((VerificationKey.of(key.public_key(), kid="k"),))
    with pytest.raises(MalformedError, match="policy_ids_matched"):
        vendor.verify_token("ita", token, anchor, now=now)


def test_vendor_claims_type_error_for_trustee_policy_claims_that_are_not_an_object() -> None:
    """fuzz/vendor_claims.py (and fuzz/vendor_tokens.py), TypeError@trustee.py:108: a Trustee
    submodule whose ``ear.veraison.policy-claims`` is not an object (a list, text, a number) raised
    TypeError ('... is not a mapping') while the vendor-map was added to it."""
    from verifiers import vendor

    def claims(policy_claims: object) -> dict[str, object]:
        return {"eat_profile": "tag:github.com,2024:confidential-containers/Trustee", "iat": 1,
                "ear.verifier-id": {"developer": "d", "build": "b"},
                "submods": {"cpu0": {"ear.status": "affirming", "ear.trustworthiness-vector": {"hardware": 2},
                                     "ear.veraison.policy-claims": policy_claims}}}

    for bad in ([1], "x", 7, True):
        with pytest.raises(MalformedError, match="policy-claims"):
            vendor.map_claims("trustee", claims(bad))
    view = vendor.map_claims("trustee", claims({"rule": "r"}))
    extensions = view.ear.submods["cpu0"].extensions["ear_veraison_policy_claims"]
    assert extensions == {"rule": "r", "vendor-map": "trustee@1"}


@pytest.mark.parametrize("value", ["\u00b2", "9" * 400, "9" * 5000])
def test_vendor_responses_value_and_overflow_errors_for_a_retry_after(value: str) -> None:
    """fuzz/vendor_responses.py, ValueError@http.py:140 and OverflowError@http.py:140: a vendor's
    error response whose ``Retry-After`` is digits to ``str.isdigit`` but not to ``int`` (``²``),
    longer than ``int()`` reads (over 4300 digits), or larger than a float raised from
    ``vendor_error`` (every vendor backend's non-success path) and from ``status_error`` (the
    ``veraison`` backend's). Such a header now reads as absent, in ``parse_retry_after`` itself."""
    from multidict import CIMultiDict
    from yarl import URL

    from federation.errors import BackendHTTPError
    from verifiers.remote._vendor import vendor_error
    from verifiers.remote.http import Response, RetryAfterError, parse_retry_after, status_error

    resp = Response(503, CIMultiDict({"Retry-After": value}), b"", URL("https://vendor.example/"))
    err = vendor_error(resp, "attest")
    assert type(err) is BackendHTTPError and err.status == 503
    assert parse_retry_after(value) is None
    assert type(status_error(resp, "session")) is BackendHTTPError
    ok = vendor_error(Response(503, CIMultiDict({"Retry-After": "7"}), b"", URL("https://vendor.example/")), "attest")
    assert isinstance(ok, RetryAfterError) and ok.retry_after == 7.0
