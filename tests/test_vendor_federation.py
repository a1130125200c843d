"""One Evidence, six verifiers, one freshness: the end-to-end check of docs/binding.md over loopback.

The local appraiser (in process), a ``ratsfed serve`` verifier reached through the Veraison API,
and emulators of Intel Trust Authority, Azure Attestation, Google and Trustee (tests/emulators)
appraise one TDX quote from the stand-in Intel PKI in one ``appraise()``. Every emulator and
server listens on 127.0.0.1 only. What a relying party depends on:

* every ``ok`` vote is bound to this session's nonce by the rule of federation/binding.py;
* a quote whose REPORT_DATA does not commit to the session gets no ``ok`` vote from anyone;
* a vendor token from an earlier session, replayed by a misbehaving service, is ``nonce-mismatch``;
* k = 3 with distinct operators affirms on the emulators' default verdicts and the combined
  status follows the quorum rule when one service reports OutOfDate, one a debug TD, one is down;
* the RP's re-verification (``verify_result(reverify=True)``) accepts the combined result.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from emulators import GoogleEmulator, GoogleKeys, ItaEmulator, ItaKeys, MaaEmulator, TrusteeEmulator, running
from emulators.common import rsa_key
from tdx_fakes import FakeIntel, td_quote

from federation.binding import Binding
from federation.config import ServerConfig
from federation.engine import Federation, Member, Session
from federation.evidence import Evidence
from federation.keys import SigningKey, TrustAnchor, b64url_decode, load_trust_anchor
from federation.quorum import QuorumPolicy
from federation.result import AppraisalResult, verify_result
from federation.server import VerifierRole, create_app
from federation.votes import Outcome
from verifiers.local.appraiser import LocalAppraiser
from verifiers.local.backend import LocalBackend
from verifiers.local.collateral.base import Collateral, CollateralRequest
from verifiers.local.collateral.intel import COLLATERAL_KIND
from verifiers.local.corim.encode import sign_corim
from verifiers.local.corim.model import (
    ClassMap,
    Comid,
    Corim,
    CorimMeta,
    Digest,
    Environment,
    Measurement,
    MeasurementValues,
    RawValue,
    ReferenceTriple,
    Tagged,
    Triples,
    Validity,
)
from verifiers.local.corim.store import ReferenceValueStore, load_paths
from verifiers.local.evidence.tdx import MEDIA_TYPE
from verifiers.local.schemes.tdx import TdxScheme
from verifiers.remote.google import GoogleBackend
from verifiers.remote.ita import ItaBackend
from verifiers.remote.maa import MaaBackend
from verifiers.remote.trustee import TrusteeBackend
from verifiers.remote.veraison import VeraisonBackend

API_KEY = "ita-api-key-for-tests"
BEARER = "google-bearer-for-tests"
AUDIENCE = "https://relying-party.test"
FED_KEY = SigningKey.generate("ES256")
ENDORSER = SigningKey.generate("ES256")
TDX_ENV = Environment(ClassMap(vendor="Intel Corporation", model="TDX"))


class MemoryCollateral:
    """The platform's Intel collateral, as a collateral store would serve it."""

    def __init__(self, data: bytes) -> None:
        self.data = data

    async def get(self, request: CollateralRequest) -> Collateral | None:
        return Collateral(request, self.data, "test") if request.kind == COLLATERAL_KIND else None


def _ref(name: str, value: bytes, *, digest: bool = True, mask: bytes | None = None) -> Measurement:
    mval = (MeasurementValues(digests=(Digest(7, value),)) if digest
            else MeasurementValues(raw=RawValue(value, mask)))
    return Measurement(mval, Tagged("string", name))


def reference_values(tmp: Path, quote: bytes, now: datetime) -> ReferenceValueStore:
    """A signed CoRIM with the TD's firmware measurements (the reference-value provider's job)."""
    from verifiers.local.evidence.tdx import parse_quote

    b = parse_quote(quote).body
    refs = (_ref("tdx.mrtd", b.mr_td), _ref("tdx.rtmr0", b.rtmrs[0]), _ref("tdx.mrseam", b.mr_seam, digest=False),
            _ref("tdx.td-attributes", bytes(8), digest=False, mask=b"\x01" + bytes(7)),  # not a debug TD
            _ref("tdx.xfam", b.xfam, digest=False))
    corim = Corim("tdx-firmware", (Comid("tdx-refs", Triples(reference=(ReferenceTriple(TDX_ENV, refs),))),))
    path = tmp / "tdx-firmware.cbor"
    validity = Validity(now - timedelta(days=1), now + timedelta(days=30))
    path.write_bytes(sign_corim(corim, ENDORSER, CorimMeta("TDX Firmware Vendor", None, validity)))
    return load_paths([path], [TrustAnchor((ENDORSER.public,))], now)


@dataclass
class World:
    """The six verifiers, their anchors, and the attester's PKI."""

    intel: FakeIntel
    tmp: Path
    ita: ItaEmulator
    maa: MaaEmulator
    google: GoogleEmulator
    trustee: TrusteeEmulator
    urls: dict[str, str] = field(default_factory=dict)
    local_key: SigningKey = field(default_factory=lambda: SigningKey.generate("ES256"))
    veraison_key: SigningKey = field(default_factory=lambda: SigningKey.generate("ES256"))

    def local(self, name: str, key: SigningKey) -> LocalBackend:
        now = datetime.now(UTC)
        sample = td_quote(self.intel, bytes(64))
        appraiser = LocalAppraiser([TdxScheme(roots=(self.intel.root,), report_data="raw")],
                                   reference_values(self.tmp, sample, now))
        collateral = MemoryCollateral(self.intel.collateral(issued=now - timedelta(days=1)))
        return LocalBackend(name, "acme", appraiser, key, collateral=collateral)

    def anchor(self, file: str, doc: Any) -> TrustAnchor:
        """Anchors come from files, as an operator configures them (MAA's is x5c-only JWKS)."""
        path = self.tmp / file
        path.write_bytes(doc if isinstance(doc, bytes) else json.dumps(doc).encode())
        return load_trust_anchor(path)

    def members(self, *, google_timeout: float = 5.0) -> list[Member]:
        """The vendors name the TDX submodule after the TEE (``tdx``; Trustee ``cpu0``): each is
        renamed to the local appraiser's ``INTEL_TDX``, since the quorum is counted per submodule."""
        u = self.urls
        tdx = {"tdx": "INTEL_TDX"}
        return [
            Member(self.local("local", self.local_key), TrustAnchor((self.local_key.public,)), timeout=5.0,
                   nonce="report-data"),
            Member(VeraisonBackend("veraison", "veraison-project", u["veraison"]),
                   TrustAnchor((self.veraison_key.public,)), timeout=5.0, nonce="report-data"),
            Member(ItaBackend("ita", "intel", u["ita"], api_key=API_KEY), self.anchor("ita.json", self.ita.jwks()),
                   timeout=5.0, rename=tdx),
            Member(MaaBackend("maa", "microsoft", u["maa"]), self.anchor("maa.json", self.maa.jwks()), timeout=5.0,
                   rename=tdx),
            Member(GoogleBackend("google", "google", u["google"], project="p1", location="us-central1",
                                 bearer_token=BEARER, audience=AUDIENCE),
                   self.anchor("google.pem", self.google.root_pem()), timeout=google_timeout, rename=tdx),
            Member(TrusteeBackend("trustee", "coco", u["trustee"]), self.anchor("trustee.json", self.trustee.jwks()),
                   timeout=5.0, rename={"cpu0": "INTEL_TDX"}),
        ]

    def federation(self, k: int = 3, *, members: list[Member] | None = None, **policy: Any) -> Federation:
        ms = members if members is not None else self.members()
        return Federation(ms, QuorumPolicy(k=k, n=len(ms), distinct_operators=True, **policy), FED_KEY,
                          deadline=10.0)

    def quote(self, binding: Binding, **kw: Any) -> Evidence:
        return Evidence(MEDIA_TYPE, td_quote(self.intel, binding.report_data, **kw))


@pytest.fixture(scope="module")
def keys() -> dict[str, Any]:
    return {"ita": ItaKeys.generate(), "google": GoogleKeys.generate(), "maa": [rsa_key(), rsa_key()]}


@asynccontextmanager
async def world(tmp: Path, keys: dict[str, Any]) -> AsyncIterator[World]:
    intel = FakeIntel()
    roots = [intel.root]
    sample = td_quote(intel, bytes(64))
    w = World(intel, tmp,
              ItaEmulator(intel_roots=roots, keys=keys["ita"], api_key=API_KEY),
              MaaEmulator(intel_roots=roots, keys=keys["maa"]),
              GoogleEmulator(intel_roots=roots, keys=keys["google"], access_token=BEARER),
              TrusteeEmulator(intel_roots=roots, reference_values=TrusteeEmulator.reference_values_of(sample)))
    verifier = create_app(VerifierRole(w.local("veraison", w.veraison_key)), ServerConfig(role="verifier"))
    async with AsyncExitStack() as stack:
        for name, app in (("ita", w.ita.app()), ("maa", w.maa.app()), ("google", w.google.app()),
                          ("trustee", w.trustee.app()), ("veraison", verifier)):
            w.urls[name] = await stack.enter_async_context(running(app))
        yield w


async def appraise(fed: Federation, w: World, *, bind: bool = True, **quote: Any
                   ) -> tuple[Session, AppraisalResult]:
    session = await fed.challenge()
    assert session.binding is not None
    binding = session.binding if bind else Binding(b"another session's nonce!", dict(session.challenges),
                                                   session.binding.prefix)
    return session, await fed.appraise(w.quote(binding, **quote), session=session)


def outcomes(r: AppraisalResult) -> dict[str, str]:
    return {v.backend: v.outcome.value for v in r.votes}


async def test_six_verifiers_one_quote_every_vote_bound_to_the_session(tmp_path: Path, keys: dict[str, Any]) -> None:
    async with world(tmp_path, keys) as w, w.federation() as fed:
        session, r = await appraise(fed, w)
    binding = session.binding
    assert binding is not None and set(session.challenges) == {"ita", "google"}
    assert outcomes(r) == {"local": "ok", "veraison": "ok", "ita": "ok", "maa": "ok", "google": "weak-binding",
                           "trustee": "ok"}, [(v.backend, v.detail) for v in r.votes]
    assert {v.backend: v.binding for v in r.votes} == {
        "local": "evidence", "veraison": "evidence", "ita": "evidence", "maa": "report-data", "google": "eat-nonce",
        "trustee": "report-data"}
    assert r.status == "affirming"
    # Each service signed the REPORT_DATA of *this* session (or, for Google, its nonce).
    assert w.ita.issued and w.maa.issued and w.trustee.issued and w.google.issued
    prov = r.claims["ear.ratsfed.provenance"]
    assert prov["binding"]["report_data"] == binding.report_data.hex()
    assert prov["policy"]["distinct_operators"] is True and prov["policy"]["k"] == 3
    # The relying party re-verifies every counted vote (vendor tokens through their kind's
    # checker) under its own anchors, and the verdict follows from them.
    anchors = {m.backend.name: m.anchor for m in fed.members}
    checked = verify_result(r.token, TrustAnchor((FED_KEY.public,)), reverify=True, anchors=anchors,
                            nonce=session.nonce)
    assert checked.status == "affirming"


async def test_google_counts_only_when_the_policy_accepts_nonce_echo_binding(tmp_path: Path,
                                                                            keys: dict[str, Any]) -> None:
    async with world(tmp_path, keys) as w, w.federation(weak_binding=True) as fed:
        _, r = await appraise(fed, w)
    google = next(v for v in r.votes if v.backend == "google")
    assert (google.outcome, google.binding) == (Outcome.OK, "eat-nonce")
    # Google's verdict on a production TD: hardware and runtime-opaque 2, nothing said on executables.
    assert google.ear is not None and google.ear.status.label == "affirming"


async def test_a_quote_not_bound_to_the_session_gets_no_ok_vote(tmp_path: Path, keys: dict[str, Any]) -> None:
    async with world(tmp_path, keys) as w, w.federation(weak_binding=True) as fed:
        _, r = await appraise(fed, w, bind=False)
    got = outcomes(r)
    # Intel and Trustee refuse the quote; Azure's echo does not match this session.
    assert got["ita"] == "http-error" and got["trustee"] == "http-error"
    assert got["maa"] == "nonce-mismatch"
    # The local appraiser and the Veraison verifier check REPORT_DATA themselves: they answer with a
    # signed EAR that says so (Veraison's semantics: evidence problems live inside the result), a
    # contraindicated vote that supports nothing and, with the veto, sinks the result.
    for name in ("local", "veraison"):
        vote = next(v for v in r.votes if v.backend == name)
        assert vote.ear is not None and vote.ear.status.label == "contraindicated"
        assert vote.ear.submods["INTEL_TDX"].trust_vector is not None
    assert r.status == "contraindicated"
    # Google's vote is the known weak spot: it only echoes the nonce, so even this quote gets a vote
    # from it when the policy counts such votes (docs/binding.md); alone it never makes k = 3.
    assert got["google"] == "ok"


async def test_a_replayed_vendor_token_from_an_earlier_session_is_a_nonce_mismatch(tmp_path: Path,
                                                                                  keys: dict[str, Any]) -> None:
    async with world(tmp_path, keys) as w, w.federation() as fed:
        await appraise(fed, w)
        w.maa.replay_token = w.maa.issued[-1]
        w.trustee.replay_token = w.trustee.issued[-1]
        w.ita.replay_token = w.ita.issued[-1]
        _, r = await appraise(fed, w)
    got = outcomes(r)
    assert (got["maa"], got["trustee"], got["ita"]) == ("nonce-mismatch",) * 3, [(v.backend, v.detail)
                                                                                 for v in r.votes]
    # Only the local appraiser and the Veraison verifier still count (Google's nonce echo does not):
    # two of the three required, so the quorum is not reached.
    assert r.status == "none"


@pytest.mark.parametrize(("change", "trio", "six"), [
    ("default", "affirming", "affirming"),
    ("ita-out-of-date", "warning", "affirming"),
    ("maa-debug", "contraindicated", "contraindicated"),
    ("trustee-down", "none", "affirming"),
])
async def test_k3_with_distinct_operators_follows_the_quorum_rule(tmp_path: Path, keys: dict[str, Any], change: str,
                                                                  trio: str, six: str) -> None:
    """With the three vendor services as the whole federation (k = 3 of 3) one bad verdict drops the
    result; with all six verifiers (k = 3 of 6) only the veto does, as the quorum rule says."""
    async with world(tmp_path, keys) as w:
        if change == "ita-out-of-date":
            w.ita.tcb_status = "OutOfDate"
        elif change == "maa-debug":
            w.maa.report_debug = True
        elif change == "trustee-down":
            w.trustee.down = True
        members = w.members()
        trio_members = [m for m in members if m.backend.name in ("ita", "maa", "trustee")]
        async with w.federation(members=trio_members) as fed:
            _, r3 = await appraise(fed, w)
        async with w.federation(members=w.members()) as fed:
            _, r6 = await appraise(fed, w)
    assert (r3.status, r6.status) == (trio, six), [(v.backend, v.outcome.value, v.detail) for v in r3.votes]
    votes = {v.backend: v for v in r6.votes}
    if change == "ita-out-of-date":
        assert votes["ita"].ear is not None and votes["ita"].ear.status.label == "warning"
    if change == "maa-debug":
        assert votes["maa"].ear is not None and votes["maa"].ear.status.label == "contraindicated"
    if change == "trustee-down":
        assert votes["trustee"].outcome is not Outcome.OK


EXAMPLE = (Path(__file__).resolve().parents[1] / "config" / "vendors.toml").read_text()


def write_example(root: Path, w: World) -> Path:
    """config/vendors.toml pointed at the emulators instead of the services (URLs and anchors
    swapped, the stand-in Intel root added), with every file it names."""
    from cryptography.hazmat.primitives.serialization import Encoding

    u = w.urls
    text = (EXAMPLE
            .replace('url = "https://veraison.example:8443/"', f'url = "{u["veraison"]}/"')
            .replace('url = "https://api.trustauthority.intel.com"', f'url = "{u["ita"]}"')
            .replace('url = "https://sharedeus2.eus2.attest.azure.net"', f'url = "{u["maa"]}"')
            .replace('options = { project = "my-project"', f'options = {{ url = "{u["google"]}", project = "p1"')
            .replace('url = "https://trustee.example:8080"', f'url = "{u["trustee"]}"')
            .replace('report_data = "raw" }', 'report_data = "raw", intel_roots = ["anchors/intel-root.pem"] }'))
    assert text.count("127.0.0.1") == 5
    for sub in ("keys/federation", "anchors", "corim", "collateral"):
        (root / sub).mkdir(parents=True)
    (root / "vendors.toml").write_text(text)
    (root / "keys/federation/private.pem").write_bytes(FED_KEY.private_pem())
    (root / "keys/federation/private.pem").chmod(0o600)
    now = datetime.now(UTC)
    reference_values(root / "corim", td_quote(w.intel, bytes(64)), now)
    (root / "anchors/firmware-vendor.jwk").write_text(json.dumps(ENDORSER.public.jwk()))
    (root / "collateral/tdx.json").write_bytes(w.intel.collateral(issued=now - timedelta(days=1)))
    (root / "anchors/intel-root.pem").write_bytes(w.intel.root.public_bytes(Encoding.PEM))
    (root / "anchors/veraison.jwk").write_text(json.dumps(w.veraison_key.public.jwk()))
    (root / "anchors/ita-certs.json").write_text(json.dumps(w.ita.jwks()))
    (root / "anchors/maa-certs.json").write_text(json.dumps(w.maa.jwks()))
    (root / "anchors/confidential-space-root.pem").write_bytes(w.google.root_pem())
    (root / "anchors/trustee-as.jwks.json").write_text(json.dumps(w.trustee.jwks()))
    return root / "vendors.toml"


async def test_the_example_config_federates_all_six(tmp_path: Path, keys: dict[str, Any],
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """The example config builds a federation of all six that affirms one bound quote."""
    from federation.config import load_config

    monkeypatch.setenv("ITA_API_KEY", API_KEY)
    monkeypatch.setenv("GOOGLE_ACCESS_TOKEN", BEARER)
    async with world(tmp_path, keys) as w:
        config = write_example(tmp_path / "cfg", w)
        async with load_config(config).build() as fed:
            _, r = await appraise(fed, w)
    assert r.status == "affirming", [(v.backend, v.outcome.value, v.detail) for v in r.votes]
    assert {v.backend for v in r.votes if v.ok} == {"local", "veraison", "intel-ta", "azure", "trustee"}
    assert next(v for v in r.votes if v.backend == "google").outcome is Outcome.WEAK_BINDING


async def test_a_federator_service_tells_the_attester_its_report_data(tmp_path: Path, keys: dict[str, Any]) -> None:
    """Through ``ratsfed serve`` (federator role): the session document carries the challenges and
    the REPORT_DATA rule; a quote carrying that REPORT_DATA is affirmed by the six verifiers."""
    import aiohttp

    from federation.server import FederatorRole

    accept = {"Accept": "application/vnd.veraison.challenge-response-session+json"}
    async with world(tmp_path, keys) as w, w.federation() as fed:
        app = create_app(FederatorRole(fed), ServerConfig(role="federator"))
        async with running(app) as url, aiohttp.ClientSession() as http:
            resp = await http.post(f"{url}/challenge-response/v1/newSession", headers=accept)
            assert resp.status == 201
            doc = await resp.json(content_type=None)
            assert set(doc["challenges"]) == {"ita", "google"}
            binding = doc["binding"]
            report_data = bytes.fromhex(binding["report_data"])
            nonce = b64url_decode(doc["nonce"])
            challenges = {n: b64url_decode(c) for n, c in doc["challenges"].items()}
            assert report_data == fed.binding(nonce, challenges).report_data
            session_url = f"{url}/challenge-response/v1/{resp.headers['Location']}"
            quote = td_quote(w.intel, report_data)
            done = await (await http.post(session_url, data=quote, headers={**accept, "Content-Type": MEDIA_TYPE})
                          ).json(content_type=None)
    assert done["status"] == "complete"
    checked = verify_result(done["result"], TrustAnchor((FED_KEY.public,)), nonce=nonce)
    assert checked.status == "affirming"
