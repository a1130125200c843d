"""The vendor-service emulators behave as the real services do, per public clients, APIs and source.

Why test test code: the remote backends (verifiers/remote/) are tested against these emulators,
so an emulator that is laxer than the service (accepts an unbound quote, extra response fields,
a reused challenge) would let a backend bug through. Everything here talks HTTP to 127.0.0.1 and
checks token signatures with pyjwt/cryptography directly, the way a relying party pinning the
emulator's published keys would — not with the repo's normalizers.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
import re
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import jwt
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from emulators import GoogleEmulator, GoogleKeys, ItaEmulator, ItaKeys, MaaEmulator, TrusteeEmulator, running
from emulators.common import rsa_key
from emulators.ita import nonce_report_data
from emulators.maa import runtime_report_data
from emulators.trustee import structured_report_data
from tdx_fakes import FakeIntel, td_quote

# -- shared fixtures and helpers -------------------------------------------------------------------


@pytest.fixture(scope="module")
def intel() -> FakeIntel:
    return FakeIntel()


@pytest.fixture(scope="module")
def ita_keys() -> ItaKeys:
    return ItaKeys.generate()


@pytest.fixture(scope="module")
def maa_keys() -> list[rsa.RSAPrivateKey]:
    return [rsa_key(), rsa_key()]


@pytest.fixture(scope="module")
def google_keys() -> GoogleKeys:
    return GoogleKeys.generate()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


class Reply:
    def __init__(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.status, self.headers, self.body = status, headers, body

    def json(self) -> Any:
        return json.loads(self.body)


async def call(http: aiohttp.ClientSession, method: str, url: str, **kw: Any) -> Reply:
    async with http.request(method, url, **kw) as r:
        return Reply(r.status, dict(r.headers), await r.read())


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def header_of(token: str) -> dict[str, Any]:
    return jwt.get_unverified_header(token)


def cert_of(der_b64: str) -> x509.Certificate:
    return x509.load_der_x509_certificate(base64.b64decode(der_b64))


def check_chain(x5c: list[str]) -> list[x509.Certificate]:
    """Each certificate is signed by the next; the last is self-signed."""
    certs = [cert_of(c) for c in x5c]
    for child, parent in itertools.pairwise(certs):
        child.verify_directly_issued_by(parent)
    certs[-1].verify_directly_issued_by(certs[-1])
    return certs


def rsa_public(cert: x509.Certificate) -> rsa.RSAPublicKey:
    key = cert.public_key()
    assert isinstance(key, rsa.RSAPublicKey)
    return key


def cn(cert: x509.Certificate) -> str:
    return str(cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)[0].value)


# -- ITA ------------------------------------------------------------------------------------------

ITA_KEY = {"x-api-key": "ita-emulator-api-key"}


@pytest.fixture
async def ita(intel: FakeIntel, ita_keys: ItaKeys) -> AsyncIterator[tuple[ItaEmulator, str]]:
    emu = ItaEmulator(intel_roots=[intel.root], keys=ita_keys)
    async with running(emu.app()) as url:
        yield emu, url


async def ita_token(http: aiohttp.ClientSession, url: str, intel: FakeIntel, body: dict[str, Any] | None = None,
                    *, runtime: bytes = b"federation nonce", debug: bool = False, v2: bool = False) -> Reply:
    nonce = (await call(http, "GET", f"{url}/appraisal/v2/nonce", headers=ITA_KEY)).json()
    evidence = {"quote": b64(td_quote(intel, nonce_report_data(nonce, runtime), debug=debug)),
                "runtime_data": b64(runtime), "verifier_nonce": nonce}
    doc = {"tdx": evidence} if v2 else evidence
    return await call(http, "POST", f"{url}/appraisal/v2/attest", headers=ITA_KEY, json={**doc, **(body or {})})


async def test_ita_nonce_needs_the_api_key_and_has_exactly_the_documented_shape(
        http: aiohttp.ClientSession, ita: tuple[ItaEmulator, str]) -> None:
    emu, url = ita
    assert (await call(http, "GET", f"{url}/appraisal/v2/nonce")).status == 401
    assert (await call(http, "GET", f"{url}/appraisal/v2/nonce", headers={"x-api-key": "wrong"})).status == 401
    r = await call(http, "GET", f"{url}/appraisal/v2/nonce", headers={**ITA_KEY, "request-id": "req-1"})
    assert r.status == 200 and r.headers["request-id"] == "req-1" and r.headers["trace-id"]
    doc = r.json()
    assert set(doc) == {"val", "iat", "signature"}  # go-connector: DisallowUnknownFields
    val, iat, sig = (base64.b64decode(doc[k], validate=True) for k in ("val", "iat", "signature"))
    assert len(val) == 88 and val.isascii() and len(base64.b64decode(val)) == 64
    assert re.fullmatch(rb"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d \+0000 UTC", iat)
    assert len(sig) == 384
    emu.nonce_public_key().verify(sig, val + iat, padding.PSS(padding.MGF1(hashes.SHA384()), 48), hashes.SHA384())


async def test_ita_nonce_time_comes_from_the_clock(http: aiohttp.ClientSession, ita_keys: ItaKeys) -> None:
    emu = ItaEmulator(keys=ita_keys, now=lambda: 1701734950.0)  # the real TDX sample's nonce time
    async with running(emu.app()) as url:
        doc = (await call(http, "GET", f"{url}/appraisal/v1/nonce", headers=ITA_KEY)).json()
    assert base64.b64decode(doc["iat"]) == b"2023-12-05 00:09:10 +0000 UTC"


async def test_ita_bound_quote_gets_a_ps384_token_that_verifies_with_the_published_certs(
        http: aiohttp.ClientSession, ita: tuple[ItaEmulator, str], intel: FakeIntel) -> None:
    emu, url = ita
    r = await ita_token(http, url, intel, runtime=b"runtime")
    assert r.status == 200, r.body
    assert set(r.json()) == {"token"}
    token = r.json()["token"]
    header = header_of(token)
    assert header["alg"] == "PS384" and header["jku"] == f"{url}/certs" and header["typ"] == "JWT"
    assert re.fullmatch(r"[0-9a-f]{96}", header["kid"])

    certs = await call(http, "GET", f"{url}/certs")  # no API key needed
    jwks = certs.json()
    assert certs.status == 200 and jwks == emu.jwks()
    assert [k["alg"] for k in jwks["keys"]] == ["PS384", "RS256"]
    ps, rs = jwks["keys"]
    assert {k: v for k, v in ps.items() if k != "alg"} == {k: v for k, v in rs.items() if k != "alg"}
    chain = check_chain(ps["x5c"])
    assert cn(chain[1]).endswith("ATS Signing CA") and cn(chain[2]).endswith("Root CA")
    assert chain[2].public_bytes(serialization.Encoding.PEM) == emu.root_pem()
    assert rsa_public(chain[0]).public_numbers() == jwt.PyJWK(ps).key.public_numbers()

    claims = jwt.decode(token, jwt.PyJWK(ps).key, algorithms=["PS384"])
    nonce = claims["verifier_nonce"]
    assert claims["tdx_report_data"] == nonce_report_data(nonce, b"runtime").hex()
    assert claims["attester_held_data"] == b64(b"runtime")
    assert claims["exp"] - claims["iat"] == 300 and claims["iss"] == "Intel Trust Authority"
    assert claims["ver"] == "1.0.0" and claims["attester_type"] == "TDX"
    assert claims["attester_tcb_status"] == "UpToDate" and "attester_advisory_ids" not in claims
    assert claims["dbgstat"] == "disabled" and claims["tdx_td_attributes_debug"] is False
    assert claims["tdx_is_debuggable"] is False and claims["tdx_mrtd"] == "01" * 48
    assert claims["tdx_td_attributes"] == "0000001000000000" and claims["tdx_seamsvn"] == 0x0106
    assert len(claims["verifier_instance_ids"]) == 3 and "policy_ids_matched" not in claims


async def test_ita_v2_body_rs256_and_the_nested_layout(
        http: aiohttp.ClientSession, ita: tuple[ItaEmulator, str], intel: FakeIntel) -> None:
    emu, url = ita
    emu.layout = "v2"
    r = await ita_token(http, url, intel, {"token_signing_alg": "RS256"}, runtime=b'{"k":1}', v2=True)
    token = r.json()["token"]
    assert header_of(token)["alg"] == "RS256"
    claims = jwt.decode(token, jwt.PyJWK(emu.jwks()["keys"][1]).key, algorithms=["RS256"])
    assert claims["ver"] == "2.0.0" and "tdx_mrtd" not in claims and claims["tdx"]["tdx_mrtd"] == "01" * 48
    assert claims["tdx"]["attester_runtime_data"] == {"k": 1}
    bad = await ita_token(http, url, intel, {"token_signing_alg": "ES256"})
    assert bad.status == 400


async def test_ita_refuses_unbound_quotes_foreign_nonces_and_bad_quotes(
        http: aiohttp.ClientSession, ita: tuple[ItaEmulator, str], intel: FakeIntel) -> None:
    _, url = ita
    attest = f"{url}/appraisal/v2/attest"
    nonce = (await call(http, "GET", f"{url}/appraisal/v2/nonce", headers=ITA_KEY)).json()
    good = td_quote(intel, nonce_report_data(nonce, b"rt"))
    body = {"quote": b64(good), "runtime_data": b64(b"rt"), "verifier_nonce": nonce}
    assert (await call(http, "POST", attest, json=body)).status == 401
    assert (await call(http, "POST", attest, headers=ITA_KEY, json=body)).status == 200

    wrong_data = await call(http, "POST", attest, headers=ITA_KEY, json={**body, "runtime_data": b64(b"other")})
    assert wrong_data.status == 400 and b"REPORT_DATA" in wrong_data.body
    forged = {**nonce, "val": b64(b"A" * 88)}
    forged_quote = td_quote(intel, nonce_report_data(forged, b"rt"))
    r = await call(http, "POST", attest, headers=ITA_KEY,
                   json={**body, "quote": b64(forged_quote), "verifier_nonce": forged})
    assert r.status == 400 and b"not issued by this service" in r.body
    other = FakeIntel()  # same names, a root the emulator was not configured with
    r = await call(http, "POST", attest, headers=ITA_KEY,
                   json={**body, "quote": b64(td_quote(other, nonce_report_data(nonce, b"rt")))})
    assert r.status == 400 and b"quote verification failed" in r.body

    no_nonce = {"quote": b64(td_quote(intel, hashlib.sha512(b"rt").digest())), "runtime_data": b64(b"rt")}
    r = await call(http, "POST", attest, headers=ITA_KEY, json=no_nonce)
    assert r.status == 200
    assert "verifier_nonce" not in jwt.decode(r.json()["token"], options={"verify_signature": False})


async def test_ita_policies_verdicts_and_debug(
        http: aiohttp.ClientSession, ita: tuple[ItaEmulator, str], intel: FakeIntel) -> None:
    emu, url = ita
    emu.policy_verdicts = {"p-bad": False}
    emu.tcb_status = "OutOfDate"
    r = await ita_token(http, url, intel, {"policy_ids": ["p-good", "p-bad"]}, debug=True)
    claims = jwt.decode(r.json()["token"], options={"verify_signature": False})
    assert [p["id"] for p in claims["policy_ids_matched"]] == ["p-good"]
    assert [p["id"] for p in claims["policy_ids_unmatched"]] == ["p-bad"]  # issued although unmatched
    assert claims["attester_tcb_status"] == "OutOfDate" and claims["attester_advisory_ids"] == ["INTEL-SA-00837"]
    assert claims["dbgstat"] == "enabled" and claims["tdx_td_attributes_debug"] is True
    r = await ita_token(http, url, intel, {"policy_ids": ["p-bad"], "policy_must_match": True})
    assert r.status == 400


async def test_ita_rate_limit_outage_and_replay(
        http: aiohttp.ClientSession, ita: tuple[ItaEmulator, str], intel: FakeIntel) -> None:
    emu, url = ita
    emu.fail_next = [429, 503]
    emu.retry_after = "7"
    r = await call(http, "GET", f"{url}/appraisal/v2/nonce", headers=ITA_KEY)
    assert r.status == 429 and r.headers["Retry-After"] == "7" and r.headers["trace-id"]
    assert (await call(http, "GET", f"{url}/appraisal/v2/nonce", headers=ITA_KEY)).status == 503
    emu.fail_always = 503
    assert (await call(http, "GET", f"{url}/certs")).status == 200  # keys stay reachable
    emu.fail_always = None
    first = (await ita_token(http, url, intel)).json()["token"]
    emu.replay_token = first
    again = (await ita_token(http, url, intel, runtime=b"a different nonce")).json()["token"]
    assert again == first and emu.issued == [first]


# -- MAA ------------------------------------------------------------------------------------------

@pytest.fixture
async def maa(intel: FakeIntel, maa_keys: list[rsa.RSAPrivateKey]) -> AsyncIterator[tuple[MaaEmulator, str]]:
    emu = MaaEmulator(intel_roots=[intel.root], keys=maa_keys)
    async with running(emu.app()) as url:
        yield emu, url


def maa_body(intel: FakeIntel, data: bytes, *, data_type: str = "JSON", quote_for: bytes | None = None,
             **extra: Any) -> dict[str, Any]:
    quote = td_quote(intel, runtime_report_data(data if quote_for is None else quote_for))
    return {"quote": b64url(quote), "runtimeData": {"data": b64url(data), "dataType": data_type}, **extra}


async def test_maa_requires_api_version_and_answers_errors_as_json(
        http: aiohttp.ClientSession, maa: tuple[MaaEmulator, str], intel: FakeIntel) -> None:
    _, url = maa
    body = maa_body(intel, b'{"nonce":"n"}')
    for query in ("", "?api-version=1999-01-01"):
        r = await call(http, "POST", f"{url}/attest/TdxVm{query}", json=body)
        assert r.status == 400 and set(r.json()["error"]) == {"code", "message"}
    assert (await call(http, "POST", f"{url}/attest/TdxVm?api-version=2025-06-01", json=body)).status == 200
    snp = await call(http, "POST", f"{url}/attest/SevSnpVm?api-version=2022-08-01", json={"report": ""})
    assert snp.status == 400 and snp.json()["error"]["code"] == "NotSupportedByEmulator"


async def test_maa_token_verifies_with_the_x5c_only_certs(
        http: aiohttp.ClientSession, maa: tuple[MaaEmulator, str], intel: FakeIntel) -> None:
    _, url = maa
    data = json.dumps({"pubkey": "abc", "nonce": "fed-nonce"}).encode()
    r = await call(http, "POST", f"{url}/attest/TdxVm?api-version=2025-06-01",
                   json=maa_body(intel, data, nonce="request-nonce"))
    assert r.status == 200 and set(r.json()) == {"token"} and r.headers["x-ms-maa-service-version"]
    token = r.json()["token"]
    header = header_of(token)
    assert header["alg"] == "RS256" and header["jku"] == f"{url}/certs"
    assert len(base64.b64decode(header["kid"], validate=True)) == 32

    jwks = (await call(http, "GET", f"{url}/certs")).json()
    assert len(jwks["keys"]) >= 2
    assert all(set(k) == {"kid", "kty", "x5c"} for k in jwks["keys"])  # no n/e: the key is in the cert
    signer = next(k for k in jwks["keys"] if k["kid"] == header["kid"])
    cert = check_chain(signer["x5c"])[0]  # self-issued
    assert cn(cert) == "https://maaemulator.emu.attest.azure.net"
    claims = jwt.decode(token, rsa_public(cert), algorithms=["RS256"])
    assert claims["iss"] == url and claims["exp"] - claims["iat"] == 8 * 3600 and "aud" not in claims
    assert claims["x-ms-attestation-type"] == "tdxvm" and claims["x-ms-compliance-status"] == "azure-compliant-cvm"
    assert claims["x-ms-runtime"] == {"pubkey": "abc", "nonce": "fed-nonce"} and claims["nonce"] == "request-nonce"
    assert claims["tdx_report_data"] == runtime_report_data(data).hex()
    assert claims["attester_tcb_status"] == "UpToDate" and claims["dbgstat"] == "disabled"
    assert claims["tdx_td_attributes_debug"] is False and "tdx_is_debuggable" not in claims
    assert claims["eat_profile"] == "https://aka.ms/maa-eat-profile-tdxvm" and claims["x-ms-ver"] == "1.0"
    assert re.fullmatch(r"[A-Za-z0-9_-]{43}", claims["x-ms-policy-hash"])
    oidc = (await call(http, "GET", f"{url}/.well-known/openid-configuration")).json()
    assert oidc["jwks_uri"] == f"{url}/certs"


async def test_maa_runtime_data_must_hash_into_report_data(
        http: aiohttp.ClientSession, maa: tuple[MaaEmulator, str], intel: FakeIntel) -> None:
    emu, url = maa
    attest = f"{url}/attest/TdxVm?api-version=2025-06-01"
    r = await call(http, "POST", attest, json=maa_body(intel, b"sent", data_type="Binary", quote_for=b"other"))
    assert r.status == 400 and "runtime data" in r.json()["error"]["message"]
    r = await call(http, "POST", attest, json=maa_body(intel, b"\x00binary", data_type="Binary"))
    assert r.status == 200 and "x-ms-runtime" not in jwt.decode(r.json()["token"], options={"verify_signature": False})
    emu.compliance_status = None
    emu.signer = 1  # rotation: the other published key signs
    r = await call(http, "POST", attest, json=maa_body(intel, b"{}", quote_for=b"{}"))
    token = r.json()["token"]
    assert header_of(token)["kid"] == emu.jwks()["keys"][1]["kid"]
    assert "x-ms-compliance-status" not in jwt.decode(token, options={"verify_signature": False})


async def test_maa_draft_policy_tokens_are_unsecured(
        http: aiohttp.ClientSession, maa: tuple[MaaEmulator, str], intel: FakeIntel) -> None:
    _, url = maa
    draft = "version=1.0; authorizationrules{=> permit();}; issuancerules{};"
    r = await call(http, "POST", f"{url}/attest/TdxVm?api-version=2025-06-01",
                   json=maa_body(intel, b"{}", draftPolicyForAttestation=draft))
    token = r.json()["token"]
    assert header_of(token)["alg"] == "none" and token.endswith(".")
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["x-ms-policy-hash"] == b64url(hashlib.sha256(draft.encode()).digest())


async def test_maa_throttling_and_replay(
        http: aiohttp.ClientSession, maa: tuple[MaaEmulator, str], intel: FakeIntel) -> None:
    emu, url = maa
    attest = f"{url}/attest/TdxVm?api-version=2025-06-01"
    emu.fail_next = [429]
    r = await call(http, "POST", attest, json=maa_body(intel, b"{}"))
    assert r.status == 429 and r.headers["Retry-After"] == "1" and r.json()["error"]["code"] == "TooManyRequests"
    first = (await call(http, "POST", attest, json=maa_body(intel, b"{}"))).json()["token"]
    emu.replay_token = first
    assert (await call(http, "POST", attest, json=maa_body(intel, b"[1]"))).json()["token"] == first


# -- Google ---------------------------------------------------------------------------------------

BEARER = {"Authorization": "Bearer google-emulator-access-token"}


@pytest.fixture
async def google(intel: FakeIntel, google_keys: GoogleKeys) -> AsyncIterator[tuple[GoogleEmulator, str]]:
    emu = GoogleEmulator(intel_roots=[intel.root], keys=google_keys)
    async with running(emu.app()) as url:
        yield emu, url


async def challenge(http: aiohttp.ClientSession, url: str) -> dict[str, Any]:
    r = await call(http, "POST", f"{url}/v1/projects/p/locations/us-central1/challenges", headers=BEARER, json={})
    assert r.status == 200
    doc: dict[str, Any] = r.json()
    return doc


async def verify_cs(http: aiohttp.ClientSession, url: str, name: str, quote: bytes, options: dict[str, Any],
                    method: str = "verifyConfidentialSpace") -> Reply:
    key = "options" if method == "verifyConfidentialSpace" else "tokenOptions"
    return await call(http, "POST", f"{url}/v1/{name}:{method}", headers=BEARER,
                      json={"challenge": name, "tdCcel": {"tdQuote": b64(quote)}, key: options})


async def test_google_needs_a_bearer_token(http: aiohttp.ClientSession, google: tuple[GoogleEmulator, str]) -> None:
    _, url = google
    r = await call(http, "POST", f"{url}/v1/projects/p/locations/l/challenges", json={})
    assert r.status == 401 and r.json()["error"]["status"] == "UNAUTHENTICATED" and r.json()["error"]["code"] == 401


async def test_google_pki_token_chains_to_the_exported_root_and_challenges_are_single_use(
        http: aiohttp.ClientSession, google: tuple[GoogleEmulator, str], intel: FakeIntel) -> None:
    emu, url = google
    ch = await challenge(http, url)
    assert set(ch) == {"name", "createTime", "expireTime", "used", "tpmNonce"} and ch["used"] is False
    assert ch["name"].startswith("projects/p/locations/us-central1/challenges/") and ch["createTime"].endswith("Z")
    base64.b64decode(ch["tpmNonce"], validate=True)
    quote = td_quote(intel, bytes(64))  # tpmNonce is not required in REPORT_DATA (eat_nonce-only binding)
    opts = {"audience": "https://rp.example", "nonce": ["federation-nonce-0001"], "signatureType": "SIGNATURE_TYPE_PKI"}
    r = await verify_cs(http, url, ch["name"], quote, opts)
    assert r.status == 200 and r.json() == {"attestationToken": r.json()["attestationToken"], "partialErrors": []}
    token = r.json()["attestationToken"]
    header = header_of(token)
    assert header["alg"] == "RS256" and len(header["x5c"]) == 3 and header["kid"]
    chain = check_chain(header["x5c"])
    assert [cn(c) for c in chain] == ["Confidential Space Leaf Certificate", "Confidential Space Intermediate CA",
                                      "Confidential Space Root CA"]
    assert chain[2] == x509.load_pem_x509_certificate(emu.root_pem())
    claims = jwt.decode(token, rsa_public(chain[0]), algorithms=["RS256"], audience="https://rp.example")
    iat = claims["iat"]
    assert chain[0].not_valid_before_utc.timestamp() <= iat <= chain[0].not_valid_after_utc.timestamp()
    assert claims["eat_nonce"] == "federation-nonce-0001" and claims["exp"] - iat == 3600
    assert claims["iss"] == "https://confidentialcomputing.googleapis.com" and claims["hwmodel"] == "GCP_INTEL_TDX"
    assert claims["dbgstat"] == "disabled-since-boot" and claims["attester_tcb"] == ["INTEL"]
    assert claims["oemid"] == 11129 and claims["swname"] == "CONFIDENTIAL_SPACE"
    assert set(claims["submods"]) == {"confidential_space", "container", "gce"}
    assert claims["sub"].startswith("https://www.googleapis.com/compute/v1/projects/")

    again = await verify_cs(http, url, ch["name"], quote, opts)
    assert again.status == 400 and again.json()["error"]["status"] == "FAILED_PRECONDITION"


async def test_google_oidc_token_and_several_nonces(
        http: aiohttp.ClientSession, google: tuple[GoogleEmulator, str], intel: FakeIntel) -> None:
    emu, url = google
    ch = await challenge(http, url)
    r = await verify_cs(http, url, ch["name"], td_quote(intel, bytes(64), debug=True),
                        {"audience": "aud-x", "nonce": ["0123456789", "abcdefghijk"], "tokenType": "TOKEN_TYPE_OIDC"},
                        method="verifyAttestation")
    token = r.json()["oidcClaimsToken"]
    header = header_of(token)
    assert "x5c" not in header and header["kid"] == emu.oidc_kid
    oidc = (await call(http, "GET", f"{url}/.well-known/openid-configuration")).json()
    jwks = (await call(http, "GET", oidc["jwks_uri"])).json()
    claims = jwt.decode(token, jwt.PyJWK(jwks["keys"][0]).key, algorithms=["RS256"], audience="aud-x")
    assert claims["eat_nonce"] == ["0123456789", "abcdefghijk"] and claims["dbgstat"] == "enabled"


@pytest.mark.parametrize(("options", "reason"), [
    ({"audience": "a", "nonce": ["short"]}, "between 10 and 74"),
    ({"audience": "a", "nonce": ["x" * 75]}, "between 10 and 74"),
    ({"nonce": ["long enough nonce"]}, "audience is required"),
])
async def test_google_nonce_rules(http: aiohttp.ClientSession, google: tuple[GoogleEmulator, str],
                                  intel: FakeIntel, options: dict[str, Any], reason: str) -> None:
    _, url = google
    ch = await challenge(http, url)
    r = await verify_cs(http, url, ch["name"], td_quote(intel, bytes(64)), options)
    error = r.json()["error"]
    assert r.status == 400 and error["status"] == "INVALID_ARGUMENT" and reason in error["message"]


async def test_google_bad_quote_unknown_challenge_throttling_and_replay(
        http: aiohttp.ClientSession, google: tuple[GoogleEmulator, str], intel: FakeIntel) -> None:
    emu, url = google
    ch = await challenge(http, url)
    r = await verify_cs(http, url, ch["name"], td_quote(FakeIntel(), bytes(64)), {})
    assert r.status == 400 and "TD quote verification failed" in r.json()["error"]["message"]
    r = await verify_cs(http, url, ch["name"].rsplit("/", 1)[0] + "/nope", td_quote(intel, bytes(64)), {})
    assert r.status == 404 and r.json()["error"]["status"] == "NOT_FOUND"
    emu.fail_next = [429]
    r = await call(http, "POST", f"{url}/v1/projects/p/locations/l/challenges", headers=BEARER, json={})
    assert r.status == 429 and r.headers["Retry-After"] and r.json()["error"]["status"] == "RESOURCE_EXHAUSTED"
    first = (await verify_cs(http, url, (await challenge(http, url))["name"], td_quote(intel, bytes(64)), {})).json()
    emu.replay_token = first["attestationToken"]
    second = (await verify_cs(http, url, (await challenge(http, url))["name"], td_quote(intel, bytes(64)), {})).json()
    assert second["attestationToken"] == first["attestationToken"]


async def test_google_challenges_expire_on_the_emulator_clock(
        http: aiohttp.ClientSession, intel: FakeIntel, google_keys: GoogleKeys) -> None:
    t = {"now": 1_780_000_000.0}
    emu = GoogleEmulator(intel_roots=[intel.root], keys=google_keys, now=lambda: t["now"])
    async with running(emu.app()) as url:
        ch = await challenge(http, url)
        assert ch["createTime"] == "2026-05-28T20:26:40.000000Z" and ch["expireTime"] == "2026-05-28T21:26:40.000000Z"
        t["now"] += 3600
        r = await verify_cs(http, url, ch["name"], td_quote(intel, bytes(64)), {})
    assert r.status == 400 and r.json()["error"]["status"] == "FAILED_PRECONDITION" and "expired" in r.body.decode()


# -- Trustee --------------------------------------------------------------------------------------

@pytest.fixture
async def trustee(intel: FakeIntel) -> AsyncIterator[tuple[TrusteeEmulator, str]]:
    emu = TrusteeEmulator(intel_roots=[intel.root])
    async with running(emu.app()) as url:
        yield emu, url


def trustee_request(quote: bytes, runtime: dict[str, Any] | None, **extra: Any) -> dict[str, Any]:
    evidence = b64url(json.dumps({"quote": b64(quote), "cc_eventlog": None}).encode())
    req: dict[str, Any] = {"tee": "tdx", "evidence": evidence, **extra}  # extra may replace tee
    if runtime is not None:
        req["runtime_data"] = runtime
    return {"verification_requests": [req], "policy_ids": []}


async def trustee_claims(http: aiohttp.ClientSession, url: str, emu: TrusteeEmulator, quote: bytes,
                         runtime: dict[str, Any] | None = None) -> dict[str, Any]:
    r = await call(http, "POST", f"{url}/attestation", json=trustee_request(quote, runtime))
    assert r.status == 200, r.body
    jwks = (await call(http, "GET", f"{url}/.well-known/jwks.json")).json()
    claims: dict[str, Any] = jwt.decode(r.body.decode(), jwt.PyJWK(jwks["keys"][0]).key, algorithms=["ES256"])
    return claims


async def test_trustee_answers_a_bare_es256_ear_with_the_default_policy_vector(
        http: aiohttp.ClientSession, trustee: tuple[TrusteeEmulator, str], intel: FakeIntel) -> None:
    emu, url = trustee
    runtime = {"nonce": "fed-nonce", "tee-pubkey": {"kty": "EC", "crv": "P-256"}}
    quote = td_quote(intel, structured_report_data(runtime))
    r = await call(http, "POST", f"{url}/attestation", json=trustee_request(quote, {"structured": runtime}))
    assert r.status == 200 and r.body.count(b".") == 2 and not r.body.startswith(b"{")  # the JWT itself
    token = r.body.decode()
    header = header_of(token)
    jwks = (await call(http, "GET", f"{url}/.well-known/jwks.json")).json()
    assert jwks == emu.jwks() and "kid" not in jwks["keys"][0]
    assert header["alg"] == "ES256" and header["jwk"] == jwks["keys"][0] and "kid" not in header
    claims = jwt.decode(token, jwt.PyJWK(jwks["keys"][0]).key, algorithms=["ES256"])
    assert "eat_nonce" not in claims and claims["iss"] == "CoCo-Attestation-Service"
    assert claims["eat_profile"] == "tag:github.com,2024:confidential-containers/Trustee"
    assert claims["exp"] - claims["iat"] == 300 and claims["ear.verifier-id"]["build"]
    cpu0 = claims["submods"]["cpu0"]
    assert cpu0["ear.trustworthiness-vector"] == {"instance-identity": 0, "configuration": 36, "executables": 33,
                                                  "file-system": 0, "hardware": 97, "runtime-opaque": 0,
                                                  "storage-opaque": 0, "sourced-data": 0}
    assert cpu0["ear.status"] == "contraindicated" and cpu0["ear.appraisal-policy-id"] == "default"
    annotated = cpu0["ear.veraison.annotated-evidence"]
    assert annotated["report_data"] == structured_report_data(runtime).hex()
    assert annotated["runtime_data_claims"] == runtime and annotated["init_data"] == "00" * 48
    assert annotated["tdx"]["tcb_status"] == "UpToDate" and annotated["tdx"]["td_attributes"]["debug"] is False
    assert annotated["tdx"]["quote"]["header"]["tee_type"] == "81000000"


async def test_trustee_reference_values_raise_the_vector(
        http: aiohttp.ClientSession, trustee: tuple[TrusteeEmulator, str], intel: FakeIntel) -> None:
    emu, url = trustee
    quote = td_quote(intel, hashlib.sha384(b"{}").digest() + bytes(16))  # {"structured": {}}
    emu.reference_values = TrusteeEmulator.reference_values_of(quote)
    cpu0 = (await trustee_claims(http, url, emu, quote, {"structured": {}}))["submods"]["cpu0"]
    vector = cpu0["ear.trustworthiness-vector"]
    assert (vector["hardware"], vector["configuration"], vector["executables"]) == (2, 2, 4)
    assert cpu0["ear.status"] == "affirming"
    emu.tcb_status = "OutOfDate"
    emu.debug = True
    cpu0 = (await trustee_claims(http, url, emu, quote, {"structured": {}}))["submods"]["cpu0"]
    vector = cpu0["ear.trustworthiness-vector"]
    assert (vector["hardware"], vector["configuration"]) == (97, 36) and cpu0["ear.status"] == "contraindicated"
    emu.tcb_status, emu.debug = "UpToDate", None
    emu.vector_override = {"instance-identity": 2, "runtime-opaque": 2}
    vector = (await trustee_claims(http, url, emu, quote, {"structured": {}}))["submods"]["cpu0"][
        "ear.trustworthiness-vector"]
    assert vector["instance-identity"] == 2 and vector["runtime-opaque"] == 2


@pytest.mark.parametrize("algorithm", ["sha256", "sha384", "sha512"])
async def test_trustee_structured_runtime_data_is_hashed_with_sorted_keys(
        http: aiohttp.ClientSession, trustee: tuple[TrusteeEmulator, str], intel: FakeIntel, algorithm: str) -> None:
    _, url = trustee
    runtime = {"b": 1, "a": "test", "c": {"d": "e"}}
    digest = hashlib.new(algorithm, b'{"a":"test","b":1,"c":{"d":"e"}}').digest()
    quote = td_quote(intel, digest + bytes(64 - len(digest)))
    body = trustee_request(quote, {"structured": runtime}, runtime_data_hash_algorithm=algorithm)
    assert (await call(http, "POST", f"{url}/attestation", json=body)).status == 200


def test_trustee_sorted_key_digest_matches_trustees_own_unit_test() -> None:
    """attestation-service/src/lib.rs parse_runtimedata_json_binding: the SHA-384 of this object."""
    expected = bytes.fromhex("e71ce8e70d814ba6639c3612ebee0ff1f76f650f8dbb5e47157e0f3f525cd22c"
                             "4597480a186427c813ca941da78870c3")
    assert structured_report_data({"b": 1, "a": "test", "c": {"d": "e"}}) == expected + bytes(16)


async def test_trustee_raw_runtime_data_is_used_as_given(
        http: aiohttp.ClientSession, trustee: tuple[TrusteeEmulator, str], intel: FakeIntel) -> None:
    emu, url = trustee
    raw = b"federation nonce bytes"
    quote = td_quote(intel, raw + bytes(64 - len(raw)))
    assert (await call(http, "POST", f"{url}/attestation", json=trustee_request(quote, {"raw": b64url(raw)}))).status \
        == 200
    emu.hash_raw_runtime_data = True  # the reading of Trustee's docs/restful-as.md
    hashed = td_quote(intel, hashlib.sha384(raw).digest() + bytes(16))
    assert (await call(http, "POST", f"{url}/attestation", json=trustee_request(hashed, {"raw": b64url(raw)}))).status \
        == 200


async def test_trustee_failures_are_500_with_the_error_stack_as_text(
        http: aiohttp.ClientSession, trustee: tuple[TrusteeEmulator, str], intel: FakeIntel) -> None:
    _, url = trustee
    quote = td_quote(intel, structured_report_data({"n": 1}))
    r = await call(http, "POST", f"{url}/attestation", json=trustee_request(quote, {"structured": {"n": 2}}))
    assert r.status == 500 and r.headers["Content-Type"].startswith("text/plain")
    text = r.body.decode()
    assert text.startswith("An internal error occured: \n0: ")
    assert "REPORT_DATA is different from that in TDX Quote" in text.splitlines()[-1]
    padded = trustee_request(quote, None)
    padded["verification_requests"][0]["evidence"] += "=="
    r = await call(http, "POST", f"{url}/attestation", json=padded)
    assert r.status == 500 and "base64 decode evidence" in r.body.decode()
    r = await call(http, "POST", f"{url}/attestation", json=trustee_request(td_quote(FakeIntel(), bytes(64)), None))
    assert r.status == 500 and "Verifier evaluate failed" in r.body.decode()
    r = await call(http, "POST", f"{url}/attestation", json=trustee_request(quote, None, tee="snp"))
    assert r.status == 500 and "tdx only" in r.body.decode()


async def test_trustee_bodies_the_json_extractor_refuses_are_400(
        http: aiohttp.ClientSession, trustee: tuple[TrusteeEmulator, str], intel: FakeIntel) -> None:
    _, url = trustee
    quote = td_quote(intel, bytes(64))
    r = await call(http, "POST", f"{url}/attestation", data=b"not json", headers={"Content-Type": "application/json"})
    assert r.status == 400 and r.body.startswith(b"Json deserialize error")
    r = await call(http, "POST", f"{url}/attestation", data=json.dumps(trustee_request(quote, None)).encode(),
                   headers={"Content-Type": "text/plain"})
    assert r.status == 400 and r.body == b"Content type error"
    r = await call(http, "POST", f"{url}/attestation", json=trustee_request(quote, {"hex": "00"}))
    assert r.status == 400
    r = await call(http, "POST", f"{url}/attestation", json={"verification_requests": []})  # policy_ids is required
    assert r.status == 400


async def test_trustee_down_cert_and_replay(http: aiohttp.ClientSession, intel: FakeIntel) -> None:
    emu = TrusteeEmulator(intel_roots=[intel.root], with_cert=True)
    quote = td_quote(intel, bytes(64))
    async with running(emu.app()) as url:
        token = (await call(http, "POST", f"{url}/attestation", json=trustee_request(quote, None))).body.decode()
        jwk = header_of(token)["jwk"]
        assert cert_of(jwk["x5c"][0]).public_key() == emu.key.public_key()
        emu.replay_token = token
        again = await call(http, "POST", f"{url}/attestation",
                           json=trustee_request(td_quote(intel, b"\x01" * 64), {"raw": b64url(b"x")}))
        assert again.body.decode() == token
        emu.down = True
        assert (await call(http, "GET", f"{url}/healthz")).status == 503
        assert (await call(http, "POST", f"{url}/attestation", json=trustee_request(quote, None))).status == 503


async def test_the_clock_decides_token_times_and_certificate_windows(
        http: aiohttp.ClientSession, intel: FakeIntel) -> None:
    t = {"now": 1_780_000_000.0}  # 2026-05-28, inside the stand-in PCK chain's window
    emu = TrusteeEmulator(intel_roots=[intel.root], now=lambda: t["now"])
    async with running(emu.app()) as url:
        r = await call(http, "POST", f"{url}/attestation", json=trustee_request(td_quote(intel, bytes(64)), None))
        claims = jwt.decode(r.body.decode(), options={"verify_signature": False})
        assert claims["iat"] == 1_780_000_000
        t["now"] = 2_500_000_000.0  # 2049: the PCK certificates have expired
        r = await call(http, "POST", f"{url}/attestation", json=trustee_request(td_quote(intel, bytes(64)), None))
        assert r.status == 500 and "not valid" in r.body.decode()
