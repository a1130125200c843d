"""The ``[server]`` config section (strict, every mistake named), the example configs as shipped
(keys made with ``ratsfed keys generate``), and TLS from config."""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import shutil
import ssl
from pathlib import Path

import aiohttp
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from fakes import register_fake_kind
from server_helpers import CORIM, GOOD, MT, N32, N32_B64, SESSION, serve, verify

from federation.cli.main import main
from federation.config import load_config
from federation.errors import ConfigError
from federation.server import build_app, start

REPO = Path(__file__).resolve().parents[1]
BASE = """
[federation]
id = "t"

[server]
role = "verifier"

[[verifiers]]
name = "v"
kind = "local"
operator = "op"
options = {{ corim = ["{corim}"], trust_unsigned = true }}
"""


@pytest.fixture(autouse=True)
def _fake_kind() -> None:
    register_fake_kind()


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "server.toml"
    p.write_text(text)
    return p


def test_defaults_and_every_setting(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, BASE.format(corim=CORIM)))
    s = cfg.server
    assert (s.role, s.verifier, s.host, s.port, s.session_ttl, s.max_body) == (
        "verifier", "v", "127.0.0.1", 8080, 150.0, 1 << 20)
    text = BASE.format(corim=CORIM).replace('role = "verifier"', """role = "verifier"
verifier = "v"
host = "0.0.0.0"
port = 0
max_body = 2048
max_concurrency = 4
session_ttl = 30
max_sessions = 5
max_session_bytes = 4096
auth_tokens_env = "MY_TOKENS"
tls_cert = "tls/c.pem"
tls_key = "tls/k.pem"
spelling = "draft-03"
previous_keys = ["old.jwk"]
unhealthy_after = 2""")
    s = load_config(write(tmp_path, text)).server
    assert (s.host, s.port, s.max_body, s.max_concurrency, s.session_ttl, s.max_sessions, s.max_session_bytes,
            s.auth_tokens_env, s.unhealthy_after) == ("0.0.0.0", 0, 2048, 4, 30.0, 5, 4096, "MY_TOKENS", 2)
    assert s.tls_cert == tmp_path / "tls/c.pem" and s.previous_keys == (tmp_path / "old.jwk",)
    assert s.spelling is not None and s.spelling.value == "draft-03"
    no_server = load_config(write(tmp_path, BASE.format(corim=CORIM).replace('[server]\nrole = "verifier"\n', "")))
    assert no_server.server.role == "federator"


@pytest.mark.parametrize(
    ("mutation", "key"),
    [
        ('role = "verifier"\nport_typo = 1', "server.port_typo"),
        ('role = "proxy"', "server.role"),
        ('role = "verifier"\nport = 70000', "server.port"),
        ('role = "verifier"\nport = "80"', "server.port"),
        ('role = "verifier"\nmax_body = 0', "server.max_body"),
        ('role = "verifier"\nmax_body = 99999999', "server.max_body"),
        ('role = "verifier"\nmax_concurrency = 0', "server.max_concurrency"),
        ('role = "verifier"\nsession_ttl = 0', "server.session_ttl"),
        ('role = "verifier"\nmax_sessions = true', "server.max_sessions"),
        ('role = "verifier"\ntls_cert = "c.pem"', "server.tls_cert"),
        ('role = "verifier"\nauth_tokens_env = "not a name"', "server.auth_tokens_env"),
        ('role = "verifier"\nspelling = "klingon"', "server.spelling"),
        ('role = "verifier"\nprevious_keys = [1]', "server.previous_keys"),
        ('role = "verifier"\nverifier = "nope"', "server.verifier"),
        ('role = "federator"\nverifier = "v"', "server.verifier"),
        ('role = "federator"\nsession_ttl = 301', "server.session_ttl"),
        ('role = "verifier"\nunhealthy_after = 0', "server.unhealthy_after"),
    ],
)
def test_each_mistake_names_its_key(tmp_path: Path, mutation: str, key: str) -> None:
    text = BASE.format(corim=CORIM).replace('role = "verifier"', mutation)
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, text))
    assert info.value.key == key
    assert str(tmp_path) in str(info.value)


def test_a_verifier_role_exposes_a_local_appraiser_named_when_there_are_several(tmp_path: Path) -> None:
    two = BASE.format(corim=CORIM) + '[[verifiers]]\nname = "w"\nkind = "fake"\noperator = "op2"\n'
    with pytest.raises(ConfigError, match="kind local: v") as info:
        load_config(write(tmp_path, two))
    assert info.value.key == "server.verifier"
    with pytest.raises(ConfigError, match="kind 'fake'"):
        load_config(write(tmp_path, two.replace('role = "verifier"', 'role = "verifier"\nverifier = "w"')))
    assert load_config(write(tmp_path, two.replace('role = "verifier"', 'role = "verifier"\nverifier = "v"'))
                       ).server.verifier == "v"


def test_missing_auth_tokens_fail_at_start(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, BASE.format(corim=CORIM).replace(
        'role = "verifier"', 'role = "verifier"\nauth_tokens_env = "RATSFED_TEST_TOKENS"')))
    with pytest.raises(ConfigError, match="RATSFED_TEST_TOKENS is not set") as info:
        build_app(cfg, environ={})
    assert info.value.key == "server.auth_tokens_env"
    assert build_app(cfg, environ={"RATSFED_TEST_TOKENS": "x" * 16}) is not None


def example(tmp_path: Path, name: str, keys: str) -> Path:
    """An example config as shipped, with its key made by ``ratsfed keys generate`` and the
    reference values it names put in place."""
    folder = tmp_path / "config"
    folder.mkdir(exist_ok=True)
    shutil.copy(REPO / "config" / name, folder / name)
    (folder / "corim").mkdir(exist_ok=True)
    shutil.copy(CORIM, folder / "corim" / "psa-reference-values.cbor")
    assert main(["keys", "generate", "--out", str(folder / "keys" / keys)]) == 0
    return folder / name


@pytest.mark.parametrize(("name", "keys", "role"), [("verifier.toml", "verifier", "verifier"),
                                                     ("federator.toml", "federation", "federator")])
async def test_example_configs_serve_the_psa_vectors(tmp_path: Path, name: str, keys: str, role: str) -> None:
    path = example(tmp_path, name, keys)
    cfg = load_config(path)
    assert cfg.server.role == role
    published = json.loads((path.parent / "keys" / keys / "public.jwk").read_text())
    async with serve(build_app(cfg)) as client:
        doc = await (await client.get("/.well-known/veraison/verification")).json(content_type=None)
        assert doc["ear-verification-key"] == published  # the key `ratsfed keys generate` wrote
        resp = await client.post(f"/challenge-response/v1/newSession?nonce={N32_B64}", headers={"Accept": SESSION})
        url = f"/challenge-response/v1/{resp.headers['Location']}"
        done = await (await client.post(url, data=GOOD, headers={"Content-Type": MT})).json(content_type=None)
        assert verify(done["result"], published, N32).ear.status.label == "affirming"


def self_signed(folder: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ratsfed test")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=1))
            .not_valid_after(now + dt.timedelta(hours=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = folder / "server.crt", folder / "server.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    key_path.chmod(0o600)
    return cert_path, key_path


async def test_tls_from_config(tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path)
    text = BASE.format(corim=CORIM).replace(
        'role = "verifier"', f'role = "verifier"\nport = 0\ntls_cert = "{cert.name}"\ntls_key = "{key.name}"')
    server = await start(load_config(write(tmp_path, text)))
    try:
        assert server.url.startswith("https://127.0.0.1:")
        trust = ssl.create_default_context(cafile=str(cert))
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{server.url}/healthz", ssl=trust) as resp:
                assert resp.status == 200
            async with http.post(f"{server.url}/v1/appraise?nonce={N32.hex()}", data=GOOD,
                                 headers={"Content-Type": MT}, ssl=trust) as resp:
                assert (await resp.json())["status"] == "affirming"
            with pytest.raises(aiohttp.ClientConnectorCertificateError):
                await http.get(f"{server.url}/healthz")  # not trusted by default
    finally:
        await server.aclose()
    broken = text.replace(f'tls_key = "{key.name}"', 'tls_key = "missing.key"')
    with pytest.raises(ConfigError, match="TLS") as info:
        await start(load_config(write(tmp_path, broken)))
    assert info.value.key == "server.tls_cert"


async def test_server_spelling_sets_the_result_claim_names(tmp_path: Path) -> None:
    text = BASE.format(corim=CORIM).replace('role = "verifier"', 'role = "verifier"\nspelling = "draft-03"')
    async with serve(build_app(load_config(write(tmp_path, text)))) as client:
        doc = await (await client.post(f"/v1/appraise?nonce={N32.hex()}", data=GOOD,
                                       headers={"Content-Type": MT})).json()
        key = (await (await client.get("/.well-known/jwks.json")).json())["keys"][0]
    verified = verify(doc["token"], key, N32)
    assert verified.ear.status.label == "affirming"
    assert verified.claims["ear_status"] == "affirming"  # draft-03 names (Veraison's have no top-level status)
    assert "ear_status" in verified.claims["submods"]["PSA_IOT"]
