"""Operational security (issue 6, item 5): keys, key rotation, bearer tokens, and what the logs say.

* A :class:`SigningKey`'s ``repr`` (and the repr of what holds one) never shows private material;
  a key read from ``env:NAME`` works, and a bad key is never echoed in the error.
* Bearer tokens are compared with :func:`hmac.compare_digest` against every configured token,
  on fixed-length digests, without stopping at a match.
* Rotation: a result signed with the previous key verifies against the JWKS the server publishes
  with ``previous_keys`` (found by its ``kid``), and no longer once that key is dropped.
* The structured logs of a federator over a remote verifier (both with bearer auth, at ``debug``,
  JSON and text) never contain a bearer token, a private key, the Evidence or a result token,
  while they do record every request and appraisal (with the Evidence's SHA-256 prefix).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import io
import json
import logging
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from server_helpers import GOOD, MT, N32, SESSION, local_backend, serve

from federation import Federation, Member, QuorumPolicy, SigningKey, TrustAnchor
from federation.config import ServerConfig
from federation.ear.token import verify_ear
from federation.errors import ConfigError, UntrustedKeyError
from federation.evidence import Evidence
from federation.keys import b64url_encode, load_signing_key, load_trust_anchor
from federation.server import FederatorRole, VerifierRole, create_app
from federation.server.auth import BearerAuth
from federation.server.keyset import KeySet
from federation.server.logs import configure
from federation.votes import Outcome
from verifiers.remote import VeraisonBackend

CR = "/challenge-response/v1"
ACCEPT = {"Accept": SESSION}


def private_material(key: SigningKey) -> list[str]:
    """Text forms of *key*'s private half that a leak would show: PEM body lines, and the
    private scalar (EC) in base64url, hex and decimal."""
    pem = key.private_pem().decode()
    out = [line for line in pem.splitlines() if line and not line.startswith("-----")]
    numbers = getattr(key.key, "private_numbers", None)
    if numbers is not None:
        n = numbers()
        value = getattr(n, "private_value", None) or getattr(n, "d", None)
        if isinstance(value, int):
            raw = value.to_bytes((value.bit_length() + 7) // 8, "big")
            out += [b64url_encode(raw), raw.hex(), str(value)]
    return out


def windows(text: str, size: int = 24, step: int = 48) -> list[str]:
    """Overlapping pieces of *text*: none of them may appear in a log (not even part of a secret)."""
    return [text[i:i + size] for i in range(0, max(1, len(text) - size), step)]


# --- keys ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("alg", ["ES256", "ES384", "EdDSA", "PS256"])
def test_a_signing_key_never_shows_its_private_half(alg: str) -> None:
    key = SigningKey.generate(alg)
    shown = repr(key) + str(key) + repr(KeySet(key)) + f"{key!r} {[key]} {({'k': key})}"
    assert key.kid in repr(key) and alg in repr(key)
    assert "key=" not in repr(key) and "PrivateKey" not in shown
    for secret in private_material(key):
        assert secret not in shown


def test_a_signing_key_from_the_environment_and_bad_keys_are_not_echoed(monkeypatch: pytest.MonkeyPatch,
                                                                         tmp_path: Path) -> None:
    key = SigningKey.generate()
    monkeypatch.setenv("RATSFED_TEST_KEY", key.private_pem().decode())
    loaded = load_signing_key("env:RATSFED_TEST_KEY")
    assert loaded.public.thumbprint == key.public.thumbprint and loaded.kid == key.kid

    # A key that does not parse: the error names the source, never the content.
    broken = key.private_pem().decode().replace("\n-----END", "xx\n-----END")
    monkeypatch.setenv("RATSFED_TEST_KEY", broken)
    with pytest.raises(ConfigError) as err:
        load_signing_key("env:RATSFED_TEST_KEY")
    assert "env:RATSFED_TEST_KEY" in str(err.value)
    path = tmp_path / "broken.pem"
    path.write_text(broken)
    path.chmod(0o600)
    with pytest.raises(ConfigError) as err2:
        load_signing_key(path)
    for secret in private_material(key):
        assert secret not in str(err.value) + str(err2.value)
    monkeypatch.delenv("RATSFED_TEST_KEY")
    with pytest.raises(ConfigError, match="RATSFED_TEST_KEY is not set"):
        load_signing_key("env:RATSFED_TEST_KEY")


def test_keys_generate_never_writes_a_key_into_a_readable_file(tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    """Over an existing private.pem that others may read, the new key still ends up mode 600
    (``O_CREAT``'s mode applies only to new files); the command prints the kid, not the key."""
    from federation.cli.main import main

    (tmp_path / "private.pem").write_text("old")
    (tmp_path / "private.pem").chmod(0o644)
    assert main(["keys", "generate", "--out", str(tmp_path)]) == 0
    assert (tmp_path / "private.pem").stat().st_mode & 0o777 == 0o600
    key = load_signing_key(tmp_path / "private.pem")
    out = capsys.readouterr()
    assert key.kid in out.out
    for secret in private_material(key):
        assert secret not in out.out + out.err


# --- bearer tokens ---------------------------------------------------------------------------------

def test_bearer_tokens_are_compared_in_constant_time_against_every_token(monkeypatch: pytest.MonkeyPatch) -> None:
    tokens = ["first-token-0123456789", "second-token-0123456789", "third-token-0123456789-longer"]
    auth = BearerAuth(tokens)
    calls: list[tuple[int, int]] = []
    real = hmac.compare_digest

    def counting(a: bytes, b: bytes) -> bool:
        calls.append((len(a), len(b)))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", counting)
    for presented, expected in [(tokens[0], True), (tokens[2], True), ("x" * 40, False), ("", False),
                                (tokens[0][:-1], False)]:
        calls.clear()
        assert auth.allows(presented) is expected
        assert calls == [(32, 32)] * len(tokens)  # every token, SHA-256 digests: no early exit, no length leak


# --- no outbound request to a URL from untrusted input -------------------------------------------------

async def test_a_remote_backend_follows_no_redirect_and_no_proxy_from_the_environment(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A verifier answering newSession with a redirect to another host gets an http-error vote and
    the other host sees nothing; ``HTTP_PROXY`` in the environment is not used either."""
    seen: list[str] = []

    async def anything(request: web.Request) -> web.Response:
        seen.append(f"{request.method} {request.path}")
        return web.Response(status=500)

    other_app = web.Application()
    other_app.router.add_route("*", "/{tail:.*}", anything)
    other = TestServer(other_app, host="127.0.0.1")
    await other.start_server()

    async def redirect(request: web.Request) -> web.Response:
        raise web.HTTPTemporaryRedirect(str(other.make_url("/challenge-response/v1/newSession")))

    liar_app = web.Application()
    liar_app.router.add_post("/challenge-response/v1/newSession", redirect)
    liar = TestServer(liar_app, host="127.0.0.1")
    await liar.start_server()
    for name in ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY"):
        monkeypatch.setenv(name, str(other.make_url("/")))
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    try:
        backend = VeraisonBackend("liar", "liar", str(liar.make_url("/")), poll_interval=0.02)
        fed = Federation([Member(backend, TrustAnchor((SigningKey.generate().public,)))], QuorumPolicy(k=1, n=1),
                         SigningKey.generate(), federation_id="redirect")
        async with fed:
            result = await fed.appraise(Evidence(MT, GOOD), N32)
        assert [v.outcome for v in result.votes] == [Outcome.HTTP_ERROR], result.votes
        assert "HTTP 307" in (result.votes[0].detail or "")
        assert result.status == "none"
        assert seen == []
    finally:
        await liar.close()
        await other.close()


# --- key rotation ----------------------------------------------------------------------------------

def federation_with(key: SigningKey) -> Federation:
    backend = local_backend()
    return Federation([Member(backend, backend.public_anchor)], QuorumPolicy(k=1, n=1), key, federation_id="rot")


async def appraise(client: Any) -> str:
    resp = await client.post(f"/v1/appraise?nonce={N32.hex()}", data=GOOD, headers={"Content-Type": MT})
    doc = await resp.json()
    assert doc["status"] == "affirming", doc
    token: str = doc["token"]
    return token


def kid_of(token: str) -> str:
    header = json.loads(base64.urlsafe_b64decode(token.split(".")[0] + "=="))
    kid: str = header["kid"]
    return kid


async def test_a_result_signed_with_the_previous_key_verifies_against_the_published_jwks(tmp_path: Path) -> None:
    old, new = SigningKey.generate(), SigningKey.generate()
    async with serve(create_app(FederatorRole(federation_with(old)), ServerConfig(role="federator"))) as client:
        old_token = await appraise(client)
    (tmp_path / "old.jwk").write_text(json.dumps(old.public.jwk()))
    rotated = ServerConfig(role="federator", previous_keys=(tmp_path / "old.jwk",))
    keys = KeySet.load(new, rotated.previous_keys)
    async with serve(create_app(FederatorRole(federation_with(new)), rotated, keys=keys)) as client:
        new_token = await appraise(client)
        jwks = await (await client.get("/.well-known/jwks.json")).json(content_type=None)
        current = (await (await client.get("/.well-known/veraison/verification")).json(content_type=None))
    assert [k["kid"] for k in jwks["keys"]] == [new.kid, old.kid]
    assert current["ear-verification-key"]["kid"] == new.kid  # discovery: the current key only
    assert (kid_of(old_token), kid_of(new_token)) == (old.kid, new.kid)

    # A relying party holding the published JWKS verifies both, each under the key its kid names.
    (tmp_path / "jwks.json").write_text(json.dumps(jwks))
    anchor = load_trust_anchor(tmp_path / "jwks.json")
    for token in (old_token, new_token):
        assert verify_ear(token, anchor, now=datetime.now(UTC), nonce=N32).ear.status.label == "affirming"

    # Once the old key is dropped from previous_keys, its results no longer verify.
    async with serve(create_app(FederatorRole(federation_with(new)), ServerConfig(role="federator"),
                                keys=KeySet(new))) as client:
        jwks = await (await client.get("/.well-known/jwks.json")).json(content_type=None)
    (tmp_path / "jwks.json").write_text(json.dumps(jwks))
    anchor = load_trust_anchor(tmp_path / "jwks.json")
    with pytest.raises(UntrustedKeyError):
        verify_ear(old_token, anchor, now=datetime.now(UTC), nonce=N32)
    assert verify_ear(new_token, anchor, now=datetime.now(UTC), nonce=N32).ear.status.label == "affirming"


# --- logs ------------------------------------------------------------------------------------------

@pytest.fixture
def server_logs(request: pytest.FixtureRequest) -> Iterator[tuple[str, io.StringIO]]:
    """``ratsfed serve``'s own logging (:func:`configure`) at debug into a buffer; restored after."""
    fmt: str = request.param
    names = ("ratsfed", "verifiers", "aiohttp")
    saved = {n: (list(logging.getLogger(n).handlers), logging.getLogger(n).level, logging.getLogger(n).propagate)
             for n in names}
    buffer = io.StringIO()
    stderr, sys.stderr = sys.stderr, buffer
    try:
        configure("debug", fmt)
    finally:
        sys.stderr = stderr
    try:
        yield fmt, buffer
    finally:
        for n, (handlers, level, propagate) in saved.items():
            logger = logging.getLogger(n)
            logger.handlers[:] = handlers
            logger.setLevel(level)
            logger.propagate = propagate


@pytest.mark.parametrize("server_logs", ["json", "text"], indirect=True)
async def test_logs_never_carry_evidence_tokens_or_keys(server_logs: tuple[str, io.StringIO]) -> None:
    fmt, buffer = server_logs
    fed_token, verifier_token, wrong = "federator-token-" + "f" * 24, "verifier-token-" + "v" * 24, "w" * 40
    verifier = local_backend("acme-local", "acme")
    verifier_app = create_app(VerifierRole(verifier), ServerConfig(role="verifier"),
                              auth=BearerAuth([verifier_token]))
    remote_server = TestServer(verifier_app, host="127.0.0.1")
    await remote_server.start_server()
    try:
        remote = VeraisonBackend("acme", "acme", str(remote_server.make_url("/")), token=verifier_token,
                                 poll_interval=0.02)
        local = local_backend("globex-local", "globex")
        fed_key = SigningKey.generate()
        fed = Federation([Member(remote, TrustAnchor((verifier.key.public,))), Member(local, local.public_anchor)],
                         QuorumPolicy(k=2, n=2, distinct_operators=True), fed_key, federation_id="logs")
        good = {"Authorization": f"Bearer {fed_token}"}
        results: list[str] = []
        async with serve(create_app(FederatorRole(fed), ServerConfig(role="federator"),
                                    auth=BearerAuth([fed_token]))) as client:
            url = f"/v1/appraise?nonce={N32.hex()}"
            assert (await client.post(url, data=GOOD, headers={"Content-Type": MT})).status == 401
            resp = await client.post(url, data=GOOD, headers={"Content-Type": MT, "Authorization": f"Bearer {wrong}"})
            assert resp.status == 401
            doc = await (await client.post(url, data=GOOD, headers={"Content-Type": MT, **good})).json()
            assert doc["status"] == "affirming", doc
            results.append(doc["token"])
            garbage = GOOD[:100] + bytes(reversed(GOOD[100:]))  # Evidence that fails: reported in the EAR
            other = f"/v1/appraise?nonce={bytes(range(32, 64)).hex()}"  # N32 is spent: one nonce, one appraisal
            doc = await (await client.post(other, data=garbage, headers={"Content-Type": MT, **good})).json()
            assert doc["status"] != "affirming"
            results.append(doc["token"])
            resp = await client.post(url, data=GOOD * 2000, headers={"Content-Type": MT, **good})
            assert resp.status == 413
            resp = await client.post(f"{CR}/newSession?nonceSize=32", headers={**ACCEPT, **good})
            session = f"{CR}/{resp.headers['Location']}"
            done = await (await client.post(session, data=GOOD, headers={**ACCEPT, **good, "Content-Type": MT})).json(
                content_type=None)
            assert done["status"] == "complete"
            results.append(done["result"])
            assert (await client.get(session, headers={**ACCEPT, **good})).status == 200
            assert (await client.delete(session, headers=good)).status == 204
        await fed.aclose()
    finally:
        await remote_server.close()

    text = buffer.getvalue()
    lines = text.splitlines()
    # The logs are there, and say what happened ...
    digest = hashlib.sha256(GOOD).hexdigest()[:16]
    assert digest in text and "appraisal" in text and "verifiers.remote" in text
    if fmt == "json":
        records = [json.loads(line) for line in lines if line.startswith("{")]
        assert len(records) == len([line for line in lines if line.strip() and not line.startswith(" ")])
        statuses = [r.get("status") for r in records if r["msg"] == "request"]
        assert statuses.count(401) >= 2 and 413 in statuses and 204 in statuses
        assert {r["evidence_sha256"] for r in records if r["msg"] == "appraisal"} >= {digest}
    # ... and carry no secret, no Evidence and no result.
    inner = [v["result"] for t in results for v in json.loads(base64.urlsafe_b64decode(
        t.split(".")[1] + "==")).get("ear.ratsfed.provenance", {}).get("votes", []) if v.get("result")]
    secrets = [fed_token, verifier_token, wrong, "Bearer "]
    for key in (fed_key, verifier.key, local.key):
        secrets += private_material(key)
    for encoding in (GOOD.hex(), base64.b64encode(GOOD).decode(), b64url_encode(GOOD)):
        secrets += windows(encoding)
    for token in results + inner:
        secrets += [token, token.split(".")[2], *windows(token.split(".")[1])]
    leaked = [s for s in secrets if s in text]
    assert not leaked, leaked[:3]
