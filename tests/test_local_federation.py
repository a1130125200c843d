"""Three local appraisers (different keys, different operators, the same CoRIMs) as a federation,
on Veraison's PSA vectors; the demo's material and simulated attester in process (its processes:
test_demo.py); and the CLI's one-appraiser mode."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from test_local_psa import MT, N32, NOW, PSA, token

from federation import Evidence, Federation, Member, QuorumPolicy, SigningKey, TrustAnchor, verify_result
from federation.cli.main import main
from federation.config import load_config
from federation.demo import OPERATORS, POLICY, PROVENANCE_LINK, Material, scenarios, write_material
from federation.demo_attester import report_data_for
from verifiers.local.appraiser import LocalAppraiser
from verifiers.local.backend import LocalBackend
from verifiers.local.collateral.amd import TrustedRoots
from verifiers.local.corim.signed import verify_corim
from verifiers.local.corim.store import ReferenceValueStore, load_paths
from verifiers.local.schemes import BUILTIN
from verifiers.local.schemes.sevsnp import SCHEME as SNP_SCHEME
from verifiers.local.schemes.sevsnp import SevSnpScheme
from verifiers.registry import create

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


@pytest.fixture(scope="module")
def demo_material() -> Material:
    return Material.generate(rsa_bits=2048)  # the demo uses AMD's 4096 bits; 2048 keeps this test fast


async def test_demo_material_and_attester_with_in_process_verifiers(demo_material: Material, tmp_path: Path) -> None:
    """The demo's files, configs and simulated attester, appraised by three local appraisers built
    from the demo's verifier configs, in this process (the real processes: tests/test_demo.py)."""
    m = demo_material
    write_material(tmp_path, m)
    members = []
    for op in OPERATORS:
        config = load_config(tmp_path / f"verifier-{op}.toml")
        assert config.server.role == "verifier" and config.server.port == 0
        backend = create(config.verifiers[0].spec)
        members.append(Member(backend, backend.public_anchor))
    assert {m.verifier_name(op): mb.anchor for op, mb in zip(OPERATORS, members, strict=True)} == m.anchors()
    fed_anchor = TrustAnchor((m.federation_key.public,))
    outcomes = []
    async with Federation(members, POLICY, m.federation_key, federation_id="ratsfed-demo") as fed:
        for sc in scenarios(m):
            session = await fed.challenge()
            result = await fed.appraise(sc.make(session.nonce), session=session)
            checked = verify_result(result.token, fed_anchor, nonce=session.nonce, reverify=True, anchors=m.anchors())
            assert [v.outcome.value for v in result.votes] == ["ok"] * 3
            outcomes.append((sc.evidence, checked.status, result.claims))
    assert [(e, s) for e, s, _ in outcomes] == [(sc.evidence, sc.expected) for sc in scenarios(m)]
    # the endorser's CoRIM (with its build-provenance link) backs both the CVM and the PSA verdicts
    for _, _, claims in outcomes[:2]:
        endorsements = claims["ear.ratsfed.provenance"]["endorsements"]
        assert any(PROVENANCE_LINK in e.get("dependent_rims", []) and e["signer"] == "ACME Firmware Signing"
                   for e in endorsements)


def test_the_demo_root_is_trusted_only_where_configured(demo_material: Material) -> None:
    """Production verifiers (the pinned AMD roots only) refuse the demo's SEV-SNP evidence."""
    m = demo_material
    nonce = bytes(range(32))
    evidence = m.chip.evidence(m.guest, nonce)
    store = ReferenceValueStore()
    store.add(verify_corim(m.corim, [TrustAnchor((m.endorser.public,))], m.now))
    pinned_only = LocalAppraiser([SNP_SCHEME], store).appraise(evidence, nonce, m.now, issued_at=int(m.now.timestamp()))
    snp = pinned_only.submods["SEVSNP"]
    assert snp.status.label == "contraindicated"
    assert "matches no pinned AMD root" in str(snp.extensions)
    demo_root = SevSnpScheme(SNP_SCHEME.policy, TrustedRoots.default().with_operator_roots([m.vendor.ark]))
    trusted = LocalAppraiser([demo_root], store).appraise(evidence, nonce, m.now, issued_at=int(m.now.timestamp()))
    annotated = trusted.submods["SEVSNP"].extensions["ear_veraison_annotated_evidence"]
    assert trusted.submods["SEVSNP"].status.label == "affirming"
    assert annotated["chain"]["ark_trusted_by"] == "operator"
    assert annotated["report"]["version"] == 5
    assert annotated["report_data"]["checked"] is True


def test_report_data_rules_of_the_demo_attester() -> None:
    nonce = b"\x01" * 32
    assert report_data_for(nonce) == nonce + bytes(32)
    assert report_data_for(nonce, "sha512") == hashlib.sha512(nonce).digest()
    assert report_data_for(nonce, "sha256") == hashlib.sha256(nonce).digest() + bytes(32)
    with pytest.raises(ValueError, match="64 bytes"):
        report_data_for(bytes(65))
    with pytest.raises(ValueError, match="unknown"):
        report_data_for(nonce, "nonce")


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
