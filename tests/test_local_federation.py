"""Three local appraisers (different keys, different operators, the same CoRIMs) as a federation,
on Veraison's PSA vectors; plus the demo and the CLI's one-appraiser mode."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_local_psa import MT, N32, NOW, PSA, token

from federation import Evidence, Federation, Member, QuorumPolicy, SigningKey, TrustAnchor, verify_result
from federation.cli.main import main
from federation.demo import PROVENANCE_LINK, run_demo
from verifiers.local.appraiser import LocalAppraiser
from verifiers.local.backend import LocalBackend
from verifiers.local.corim.store import load_paths
from verifiers.local.schemes import BUILTIN

EPOCH = int(NOW.timestamp())


def federation(fed_key: SigningKey) -> tuple[Federation, dict[str, TrustAnchor]]:
    members, anchors = [], {}
    for op in ("acme", "globex", "initech"):
        store = load_paths([PSA / "endorsements" / "corim-psa-valid.cbor"], [], NOW, trust_unsigned=True)
        backend = LocalBackend(f"{op}-local", op, LocalAppraiser(list(BUILTIN.values()), store), SigningKey.generate())
        members.append(Member(backend, backend.public_anchor))
        anchors[backend.name] = backend.public_anchor
    policy = QuorumPolicy(k=2, n=3, distinct_operators=True)
    return Federation(members, policy, fed_key, clock=lambda: float(EPOCH)), anchors


@pytest.mark.parametrize(
    ("evidence", "status"),
    [
        ((PSA / "evidence" / "psa.good.cose").read_bytes(), "affirming"),
        (token("psa.good.json", "ec.p256.alt.jwk"), "contraindicated"),
        (token("psa.badswcomp.json"), "warning"),
    ],
)
async def test_three_local_appraisers_agree(evidence: bytes, status: str) -> None:
    fed_key = SigningKey.generate()
    fed, anchors = federation(fed_key)
    async with fed:
        result = await fed.appraise(Evidence(MT, evidence), N32, now=EPOCH)
    assert result.status == status
    assert [v.outcome.value for v in result.votes] == ["ok", "ok", "ok"]
    assert len({v.key_thumbprint for v in result.votes}) == 3  # three different result keys
    checked = verify_result(result.token, TrustAnchor((fed_key.public,)), nonce=N32, reverify=True,
                            anchors=anchors, now=EPOCH)
    assert checked.status == status
    if status != "contraindicated":
        prov = checked.provenance
        assert prov is not None
        roles = {e["role"] for e in prov.endorsements}
        assert roles == {"attest-key", "reference-values"}


def test_demo_reaches_the_expected_verdicts_and_carries_build_provenance() -> None:
    cases, world = run_demo()
    assert [(c.result.status, c.verified_status, c.reverified) for c in cases] == [
        ("affirming", "affirming", True), ("warning", "warning", True),
        ("contraindicated", "contraindicated", True), ("contraindicated", "contraindicated", True)]
    claims = cases[0].result.claims
    endorsements = claims["ear.ratsfed.provenance"]["endorsements"]
    assert any(PROVENANCE_LINK in e.get("dependent_rims", []) and e["signer"] == "ACME Firmware Signing"
               for e in endorsements)
    assert world["policy"].startswith("2-of-3")


def test_cli_demo_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["status"] == "affirming"
    assert [c["status"] for c in doc["cases"]] == ["affirming", "warning", "contraindicated", "contraindicated"]


def test_cli_appraise_one_local_appraiser(capsys: pytest.CaptureFixture[str]) -> None:
    good = PSA / "evidence" / "psa.good.cose"
    corim = PSA / "endorsements" / "corim-psa-valid.cbor"
    code = main(["appraise", str(good), "--corim", str(corim), "--nonce", N32.hex(), "--at", str(EPOCH), "--json"])
    doc = json.loads(capsys.readouterr().out)
    assert (code, doc["status"]) == (0, "affirming")
    assert doc["votes"][0]["submods"]["PSA_IOT"]["trust_vector"]["executables"] == 2
    # media type sniffed; a wrong nonce is a freshness failure with Veraison's vector
    code = main(["appraise", str(good), "--corim", str(corim), "--nonce", "00" * 32, "--json"])
    doc = json.loads(capsys.readouterr().out)
    assert (code, doc["status"]) == (4, "contraindicated")
    assert "nonce" in doc["votes"][0]["submods"]["PSA_IOT"]["problem"]


def test_cli_appraise_with_a_config_of_local_appraisers(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    corim = PSA / "endorsements" / "corim-psa-valid.cbor"
    cfg = tmp_path / "fed.toml"
    cfg.write_text("[quorum]\nk = 2\n" + "".join(
        f'[[verifiers]]\nname = "v{i}"\nkind = "local"\noperator = "op{i}"\n'
        f'options = {{ corim = ["{corim}"], trust_unsigned = true }}\n' for i in range(3)))
    good = PSA / "evidence" / "psa.good.cose"
    code = main(["appraise", str(good), "--config", str(cfg), "--nonce", N32.hex(), "--at", str(EPOCH), "--json"])
    doc = json.loads(capsys.readouterr().out)
    assert (code, doc["status"]) == (0, "affirming")
    assert [v["outcome"] for v in doc["votes"]] == ["ok"] * 3
