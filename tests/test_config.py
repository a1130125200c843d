"""Config is validated strictly: every mistake fails at load and names the key and the file."""

from __future__ import annotations

from pathlib import Path

import pytest
from fakes import register_fake_kind

from federation.config import load_config
from federation.errors import ConfigError

GOOD = """
[federation]
id = "test-fed"
result_format = "cwt"
spelling = "draft-03"
deadline = 2.5

[quorum]
k = 2
wait = "quorum"
distinct_operators = true

[[verifiers]]
name = "a"
kind = "fake"
operator = "acme"

[[verifiers]]
name = "b"
kind = "fake"
operator = "globex"
timeout = 1.5
rename = { PSA_IOT = "psa" }
options = { status = "warning" }
"""


@pytest.fixture(autouse=True)
def _fake_kind() -> None:
    register_fake_kind()


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "fed.toml"
    p.write_text(text)
    return p


def test_good_config_loads_every_setting(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, GOOD))
    assert cfg.federation_id == "test-fed"
    assert cfg.result_format == "cwt"
    assert cfg.spelling.value == "draft-03"
    assert cfg.deadline == 2.5
    assert (cfg.policy.k, cfg.policy.n, cfg.policy.wait, cfg.policy.distinct_operators) == (2, 2, "quorum", True)
    assert cfg.policy.veto is True  # the default is the safe one
    b = cfg.verifiers[1]
    assert (b.spec.name, b.spec.operator, b.timeout, dict(b.rename)) == ("b", "globex", 1.5, {"PSA_IOT": "psa"})
    fed = cfg.build()
    assert [m.backend.name for m in fed.members] == ["a", "b"]


@pytest.mark.parametrize(
    ("mutation", "key"),
    [
        (("[quorum]\nk = 2", "[quorum]\nk = 2\nquorom_typo = 1"), "quorum.quorom_typo"),
        (("k = 2", "k = 3"), "quorum.k"),
        (("k = 2", "k = 0"), "quorum.k"),
        (('wait = "quorum"', 'wait = "some"'), "quorum.wait"),
        (('result_format = "cwt"', 'result_format = "xml"'), "federation.result_format"),
        (("deadline = 2.5", 'deadline = "soon"'), "federation.deadline"),
        (("deadline = 2.5", "deadline = -1"), "federation.deadline"),
        (('kind = "fake"\noperator = "acme"', 'kind = "nope"\noperator = "acme"'), "verifiers.a.kind"),
        (('options = { status = "warning" }', 'options = { colour = "red" }'), "verifiers.b.colour"),
        (("timeout = 1.5", "timeout = true"), "verifiers[1].timeout"),
        (('name = "b"', 'name = "a"'), "verifiers.name"),
        (('operator = "globex"', 'operator = ""'), "verifiers[1].operator"),
        (('rename = { PSA_IOT = "psa" }', 'rename = { A = "x", B = "x" }'), "verifiers.b.rename"),
    ],
)
def test_each_mistake_names_its_key_and_file(tmp_path: Path, mutation: tuple[str, str], key: str) -> None:
    old, new = mutation
    assert old in GOOD
    path = write(tmp_path, GOOD.replace(old, new, 1))
    with pytest.raises(ConfigError) as info:
        load_config(path).build()
    assert info.value.key == key
    assert str(path) in str(info.value)


def test_distinct_operators_must_be_reachable(tmp_path: Path) -> None:
    text = GOOD.replace('operator = "globex"', 'operator = "acme"')
    with pytest.raises(ConfigError, match="distinct operators"):
        load_config(write(tmp_path, text)).build()


def test_unreadable_and_invalid_toml(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "missing.toml")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(write(tmp_path, "[federation\n"))


def test_signing_key_file_must_be_private(tmp_path: Path) -> None:
    from federation.keys import SigningKey

    key = tmp_path / "fed.pem"
    key.write_bytes(SigningKey.generate().private_pem())
    key.chmod(0o644)
    text = GOOD.replace('[federation]\n', '[federation]\nsigning_key = "fed.pem"\n')
    with pytest.raises(ConfigError, match="chmod 600"):
        load_config(write(tmp_path, text)).build()
    key.chmod(0o600)
    fed = load_config(write(tmp_path, text)).build()
    assert fed.signing_key.public.jwk()["kty"] == "EC"
