"""``ratsfed serve`` in the verifier role: Veraison's challenge-response API over a real server on
127.0.0.1, every endpoint and every error path, the EAR checked with the published key."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from server_helpers import GOOD, MT, N32, N32_B64, SESSION, local_backend, serve, verify

from federation.config import ServerConfig
from federation.keys import SigningKey, b64url_encode
from federation.server import MemorySessionStore, VerifierRole, create_app
from federation.server.auth import BearerAuth
from federation.server.keyset import KeySet
from verifiers.local.evidence import cmw

CR = "/challenge-response/v1"
ACCEPT = {"Accept": SESSION}


def app(**settings: Any) -> Any:
    clock = settings.pop("clock", None)
    store = settings.pop("store", None)
    extra = {k: settings.pop(k) for k in ("auth", "keys") if k in settings}
    kw: dict[str, Any] = {"clock": clock} if clock else {}
    return create_app(VerifierRole(local_backend()), ServerConfig(role="verifier", **settings), store=store,
                      **extra, **kw)


def assert_problem(doc: dict[str, Any], status: int) -> None:
    assert doc["status"] == status
    assert doc["type"] == "about:blank"
    assert doc["title"] and doc["detail"]


async def problem(resp: Any, status: int) -> dict[str, Any]:
    assert resp.status == status, await resp.text()
    assert resp.headers["Content-Type"] == "application/problem+json"
    doc: dict[str, Any] = await resp.json(content_type=None)
    assert_problem(doc, status)
    return doc


async def new_session(client: Any, query: str = f"?nonce={N32_B64}") -> tuple[str, dict[str, Any]]:
    resp = await client.post(f"{CR}/newSession{query}", headers=ACCEPT)
    assert resp.status == 201, await resp.text()
    assert resp.headers["Content-Type"] == SESSION
    location = resp.headers["Location"]
    assert location.startswith("session/")  # relative, as Veraison: resolved against the request URL
    return f"{CR}/{location}", await resp.json(content_type=None)


async def discovery_key(client: Any) -> dict[str, Any]:
    resp = await client.get("/.well-known/veraison/verification")
    key: dict[str, Any] = (await resp.json(content_type=None))["ear-verification-key"]
    return key


async def test_session_lifecycle_returns_an_ear_bound_to_the_session_nonce() -> None:
    async with serve(app()) as client:
        url, session = await new_session(client)
        assert session["status"] == "waiting"
        assert session["nonce"] == b64url_encode(N32)  # base64url without padding
        assert MT in session["accept"]
        expiry = datetime.fromisoformat(session["expiry"].replace("Z", "+00:00"))
        assert 140 < (expiry - datetime.now(UTC)).total_seconds() <= 150
        assert "result" not in session and "evidence" not in session

        resp = await client.post(url, data=GOOD, headers={**ACCEPT, "Content-Type": MT})
        assert resp.status == 200 and resp.headers["Content-Type"] == SESSION
        done = await resp.json(content_type=None)
        assert done["status"] == "complete"
        assert done["evidence"] == {"type": MT, "value": base64.b64encode(GOOD).decode()}
        verified = verify(done["result"], await discovery_key(client), nonce=N32)
        assert verified.ear.status.label == "affirming"
        claims = json.loads(base64.urlsafe_b64decode(done["result"].split(".")[1] + "=="))
        assert base64.urlsafe_b64decode(claims["eat_nonce"] + "==") == N32  # eat_nonce is the session nonce

        again = await client.get(url, headers=ACCEPT)
        assert again.status == 200 and (await again.json(content_type=None)) == done

        assert (await client.delete(url)).status == 204
        await problem(await client.get(url, headers=ACCEPT), 404)
        assert (await client.delete(url)).status == 204  # as Veraison: deleting twice is not an error
        await problem(await client.post(url, data=GOOD, headers={"Content-Type": MT}), 404)


async def test_nonce_requests_follow_veraison() -> None:
    async with serve(app()) as client:
        _, s = await new_session(client, "?nonceSize=16")
        assert len(base64.urlsafe_b64decode(s["nonce"] + "==")) == 16
        _, s = await new_session(client, "")
        assert len(base64.urlsafe_b64decode(s["nonce"] + "==")) == 32
        _, s = await new_session(client, f"?nonce={N32_B64.rstrip('=')}")  # unpadded accepted too
        assert s["nonce"] == b64url_encode(N32)
        for bad in (f"?nonce={N32_B64}&nonceSize=32", "?nonceSize=7", "?nonceSize=65", "?nonceSize=x",
                    "?nonce=AAAA", "?nonce=" + "A" * 100, "?nonce=not*base64"):
            await problem(await client.post(f"{CR}/newSession{bad}", headers=ACCEPT), 400)


async def test_406_unless_accept_allows_the_session_media_type() -> None:
    async with serve(app()) as client:
        url, _ = await new_session(client)
        for accept in ("text/html", "application/json", f"{SESSION};q=0"):
            await problem(await client.post(f"{CR}/newSession", headers={"Accept": accept}), 406)
            await problem(await client.get(url, headers={"Accept": accept}), 406)
            await problem(await client.post(url, data=GOOD, headers={"Accept": accept, "Content-Type": MT}), 406)
        for accept in ("*/*", "application/*", f"text/html, {SESSION};q=0.5"):
            assert (await client.get(url, headers={"Accept": accept})).status == 200


async def test_415_lists_the_supported_media_types_in_accept() -> None:
    async with serve(app()) as client:
        url, _ = await new_session(client)
        for content_type in ("application/x-unknown", "text/plain", ""):
            resp = await client.post(url, data=GOOD, headers={**ACCEPT, "Content-Type": content_type})
            doc = await problem(resp, 415)
            accepted = [t.strip() for t in resp.headers["Accept"].split(",")]
            assert MT in accepted and "supported" in doc["detail"]
        session = await (await client.get(url, headers=ACCEPT)).json(content_type=None)
        assert session["status"] == "waiting"  # refused submissions leave the session usable


async def test_400_for_empty_body_bad_session_id_and_bad_cmw() -> None:
    async with serve(app()) as client:
        url, _ = await new_session(client)
        await problem(await client.post(url, data=b"", headers={**ACCEPT, "Content-Type": MT}), 400)
        await problem(await client.post(f"{CR}/session/not-a-uuid", data=GOOD,
                                        headers={**ACCEPT, "Content-Type": MT}), 400)
        await problem(await client.get(f"{CR}/session/not-a-uuid", headers=ACCEPT), 400)
        await problem(await client.delete(f"{CR}/session/not-a-uuid"), 400)
        doc = await problem(await client.post(url, data=b"\x83\x01", headers={
            **ACCEPT, "Content-Type": "application/vnd.veraison.cmw+cbor"}), 400)
        assert "CMW" in doc["detail"]
        unknown = "/challenge-response/v1/session/00000000-0000-4000-8000-000000000000"
        await problem(await client.get(unknown, headers=ACCEPT), 404)


async def test_a_record_cmw_is_unwrapped_to_its_inner_evidence() -> None:
    for wrapped, media_type in ((cmw.encode_cbor(cmw.Record(MT, GOOD)), "application/vnd.veraison.cmw+cbor"),
                                (cmw.encode_json(cmw.Record(MT, GOOD)), "application/cmw+json")):
        async with serve(app()) as client:  # a server per wrapping: GOOD's nonce is appraised once per server
            url, _ = await new_session(client)
            resp = await client.post(url, data=wrapped, headers={**ACCEPT, "Content-Type": media_type})
            done = await resp.json(content_type=None)
            assert done["evidence"]["type"] == MT
            assert verify(done["result"], await discovery_key(client), N32).ear.status.label == "affirming"


async def test_evidence_problems_are_reported_inside_the_ear() -> None:
    async with serve(app()) as client:
        key = await discovery_key(client)
        url, _ = await new_session(client)
        resp = await client.post(url, data=b"\xd2garbage", headers={**ACCEPT, "Content-Type": MT})
        done = await resp.json(content_type=None)
        assert resp.status == 200 and done["status"] == "complete"
        ear = verify(done["result"], key, N32).ear
        assert ear.status.label == "contraindicated"
        assert ear.submods["PSA_IOT"].trust_vector is not None
        assert "problem" in ear.submods["PSA_IOT"].extensions["ear_veraison_policy_claims"]
        # The same good token under another session's nonce: a freshness failure, in the EAR.
        url, session = await new_session(client, "?nonceSize=32")
        done = await (await client.post(url, data=GOOD, headers={**ACCEPT, "Content-Type": MT})).json(
            content_type=None)
        nonce = base64.urlsafe_b64decode(session["nonce"] + "==")
        assert verify(done["result"], key, nonce).ear.status.label == "contraindicated"


async def test_one_nonce_takes_one_evidence() -> None:
    async with serve(app()) as client:
        url, _ = await new_session(client)
        assert (await client.post(url, data=GOOD, headers={**ACCEPT, "Content-Type": MT})).status == 200
        await problem(await client.post(url, data=GOOD, headers={**ACCEPT, "Content-Type": MT}), 409)


async def test_sessions_expire() -> None:
    now = [1_800_000_000.0]
    store = MemorySessionStore(clock=lambda: now[0])
    async with serve(app(clock=lambda: now[0], store=store, session_ttl=10)) as client:
        url, session = await new_session(client)
        assert session["expiry"] == "2027-01-15T08:00:10.000000Z"
        now[0] += 9.9
        assert (await client.get(url, headers=ACCEPT)).status == 200
        now[0] += 0.2
        await problem(await client.get(url, headers=ACCEPT), 404)
        await problem(await client.post(url, data=GOOD, headers={**ACCEPT, "Content-Type": MT}), 404)
        assert await store.count() == 0


async def test_413_for_bodies_over_max_body() -> None:
    async with serve(app(max_body=1024)) as client:
        url, _ = await new_session(client)
        big = GOOD + b"\x00" * 2048
        await problem(await client.post(url, data=big, headers={**ACCEPT, "Content-Type": MT}), 413)
        await problem(await client.post("/v1/appraise", data=big, headers={"Content-Type": MT}), 413)

        async def chunks() -> Any:  # no Content-Length: aiohttp's limit applies while reading
            for _ in range(4):
                yield b"\x00" * 512

        await problem(await client.post(url, data=chunks(), headers={**ACCEPT, "Content-Type": MT}), 413)
        session = await (await client.get(url, headers=ACCEPT)).json(content_type=None)
        assert session["status"] == "waiting"


async def test_503_when_the_session_store_is_full() -> None:
    async with serve(app(max_sessions=2)) as client:
        await new_session(client)
        await new_session(client)
        resp = await client.post(f"{CR}/newSession", headers=ACCEPT)
        await problem(resp, 503)
        assert resp.headers["Retry-After"]


async def test_bearer_auth_guards_the_api_but_not_discovery_or_health() -> None:
    token = "s3cret-token-0123456789"
    async with serve(app(auth=BearerAuth([token, "another-token-abcdefgh"]))) as client:
        resp = await client.post(f"{CR}/newSession", headers=ACCEPT)
        await problem(resp, 401)
        assert resp.headers["WWW-Authenticate"].startswith("Bearer")
        resp = await client.post(f"{CR}/newSession", headers={**ACCEPT, "Authorization": "Bearer wrong-token-xxxxxxxx"})
        await problem(resp, 401)
        assert 'error="invalid_token"' in resp.headers["WWW-Authenticate"]
        await problem(await client.post("/v1/appraise", data=GOOD, headers={"Content-Type": MT}), 401)
        await problem(await client.get("/metrics"), 401)
        good = {**ACCEPT, "Authorization": f"Bearer {token}"}
        resp = await client.post(f"{CR}/newSession?nonce={N32_B64}", headers=good)
        assert resp.status == 201
        url = f"{CR}/{resp.headers['Location']}"
        resp = await client.post(url, data=GOOD, headers={**good, "Content-Type": MT})
        assert (await resp.json(content_type=None))["status"] == "complete"
        for path in ("/healthz", "/readyz", "/.well-known/veraison/verification", "/.well-known/jwks.json"):
            assert (await client.get(path)).status == 200, path
        assert (await client.get("/metrics", headers={"Authorization": "bearer another-token-abcdefgh"})).status == 200


def test_bearer_tokens_must_be_long_and_present() -> None:
    from federation.errors import ConfigError

    with pytest.raises(ConfigError, match="16 characters"):
        BearerAuth(["short"])
    with pytest.raises(ConfigError, match="RATSFED_TOKENS is not set"):
        BearerAuth.from_env("RATSFED_TOKENS", {})
    auth = BearerAuth.from_env("T", {"T": " one-token-0123456789 , two-token-0123456789 "})
    assert auth.allows("two-token-0123456789") and not auth.allows("two-token-012345678")


async def test_discovery_document_and_jwks_with_a_previous_key(tmp_path: Path) -> None:
    old = SigningKey.generate()
    (tmp_path / "old.jwk").write_text(json.dumps(old.public.jwk()))
    backend = local_backend()
    keys = KeySet.load(backend.key, [tmp_path / "old.jwk"])
    async with serve(create_app(VerifierRole(backend), ServerConfig(role="verifier"), keys=keys)) as client:
        resp = await client.get("/.well-known/veraison/verification")
        assert resp.headers["Content-Type"] == "application/vnd.veraison.discovery+json"
        assert resp.headers["Cache-Control"] == "max-age=60"
        doc = await resp.json(content_type=None)
        assert doc["ear-verification-key"] == {**backend.key.public.jwk()}
        assert doc["ear-verification-key"]["kid"] == backend.key.kid and doc["ear-verification-key"]["alg"] == "ES256"
        assert MT in doc["media-types"]
        assert (doc["service-state"], doc["version"], doc["role"]) == ("READY", "0.1.0", "verifier")
        assert doc["api-endpoints"]["newChallengeResponseSession"] == "/challenge-response/v1/newSession"
        as_json = await client.get("/.well-known/veraison/verification", headers={"Accept": "application/json"})
        assert as_json.headers["Content-Type"] == "application/json"
        await problem(await client.get("/.well-known/veraison/verification", headers={"Accept": "text/html"}), 406)

        jwks = await (await client.get("/.well-known/jwks.json")).json(content_type=None)
        assert [k["kid"] for k in jwks["keys"]] == [backend.key.kid, old.kid]
        assert all(k["use"] == "sig" for k in jwks["keys"])
        # The result names its key by kid, and that kid is in the JWKS.
        url, _ = await new_session(client)
        done = await (await client.post(url, data=GOOD, headers={**ACCEPT, "Content-Type": MT})).json(
            content_type=None)
        header = json.loads(base64.urlsafe_b64decode(done["result"].split(".")[0] + "=="))
        by_kid = {k["kid"]: k for k in jwks["keys"]}
        assert verify(done["result"], by_kid[header["kid"]], N32).ear.status.label == "affirming"


async def test_direct_appraise_with_hex_and_base64url_nonces() -> None:
    for nonce in (N32.hex(), N32_B64, N32_B64.rstrip("=")):
        async with serve(app()) as client:  # a server per spelling: GOOD's nonce is appraised once per server
            key = await discovery_key(client)
            resp = await client.post(f"/v1/appraise?nonce={nonce}", data=GOOD, headers={"Content-Type": MT})
            assert resp.status == 200 and resp.headers["Content-Type"] == "application/json"
            doc = await resp.json()
            assert (doc["status"], doc["nonce"], doc["format"]) == ("affirming", N32.hex(), "jwt")
            assert doc["submods"]["PSA_IOT"]["status"] == "affirming"
            assert doc["verifier"]["name"] == "acme-local"
            assert verify(doc["token"], key, N32).ear.status.label == "affirming"
    async with serve(app()) as client:
        doc = await (await client.post("/v1/appraise", data=GOOD, headers={"Content-Type": MT})).json()
        assert doc["status"] == "contraindicated"  # a fresh nonce the token cannot be bound to
        assert "nonce" in doc["submods"]["PSA_IOT"]["problem"]
        await problem(await client.post("/v1/appraise?nonce=00", data=GOOD, headers={"Content-Type": MT}), 400)
        await problem(await client.post("/v1/appraise", data=GOOD, headers={"Content-Type": "x/y"}), 415)
        await problem(await client.post("/v1/appraise", data=GOOD, headers={"Content-Type": MT, "Accept": SESSION}),
                      406)


async def test_health_readiness_and_metrics_after_appraisals() -> None:
    async with serve(app()) as client:
        assert await (await client.get("/healthz")).json() == {"status": "ok"}
        ready = await client.get("/readyz")
        doc = await ready.json()
        assert ready.status == 200 and doc["ready"] is True and doc["role"] == "verifier"
        for data, query in ((GOOD, f"?nonce={N32_B64}"), (b"\xd2garbage", "?nonceSize=32")):
            url, _ = await new_session(client, query)
            await client.post(url, data=data, headers={**ACCEPT, "Content-Type": MT})
        await client.post(f"{CR}/newSession", headers={"Accept": "text/html"})  # a 406, counted by route
        resp = await client.get("/metrics")
        assert resp.headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
        text = await resp.text()
        for line in ('ratsfed_appraisals_total{status="affirming"} 1',
                     'ratsfed_appraisals_total{status="contraindicated"} 1',
                     'ratsfed_backend_outcomes_total{backend="acme-local",outcome="ok"} 2',
                     'ratsfed_backend_latency_seconds_count{backend="acme-local"} 2',
                     'ratsfed_backend_latency_seconds_bucket{backend="acme-local",le="+Inf"} 2',
                     "ratsfed_sessions 2", "ratsfed_sessions_created_total 2", "ratsfed_quorum_failures_total 0",
                     'ratsfed_http_requests_total{method="POST",route="/challenge-response/v1/newSession",'
                     'code="406"} 1',
                     "# TYPE ratsfed_backend_latency_seconds histogram"):
            assert line in text, line


async def test_a_malfunction_fails_the_session_with_500(monkeypatch: pytest.MonkeyPatch) -> None:
    backend = local_backend()

    async def broken(*args: object) -> object:
        raise RuntimeError("disk on fire: /secret/path")

    monkeypatch.setattr(backend, "appraise", broken)
    async with serve(create_app(VerifierRole(backend), ServerConfig(role="verifier"))) as client:
        url, _ = await new_session(client)
        doc = await problem(await client.post(url, data=GOOD, headers={**ACCEPT, "Content-Type": MT}), 500)
        assert "/secret/path" not in doc["detail"] and "RuntimeError" in doc["detail"]
        session = await (await client.get(url, headers=ACCEPT)).json(content_type=None)
        assert session["status"] == "failed"
        text = await (await client.get("/metrics")).text()
        assert 'ratsfed_appraisals_total{status="error"} 1' in text
        assert 'ratsfed_backend_outcomes_total{backend="acme-local",outcome="error"} 1' in text


async def test_unknown_routes_and_methods_are_problem_documents() -> None:
    async with serve(app()) as client:
        await problem(await client.get("/nope"), 404)
        resp = await client.put(f"{CR}/newSession")
        await problem(resp, 405)
        assert "POST" in resp.headers["Allow"]
        assert resp.headers["X-Request-Id"]
