"""Options of ``kind = "local"`` for the confidential-VM schemes (collateral, amd_roots,
intel_roots, allow_debug, report_data) and freshness: validated strictly (a wrong type or value
names the key and the file), and each one changes the verdict the way docs/local-appraiser.md says.
Freshness off: every scheme (PSA, CCA, EAT, SEV-SNP, TDX) is handed an empty nonce, says
"freshness not checked", and the EAR still echoes the session nonce."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from test_local_cca import platform_corim, realm_corim
from test_local_cca import store_of as cca_store_of
from test_local_cca import token as cca_token
from test_local_eat import claims as eat_claims
from test_local_eat import corim as eat_corim
from test_local_eat import store_of as eat_store_of
from test_local_psa import MT as PSA_MT
from test_local_psa import NOW as PSA_NOW
from test_local_psa import PSA

from federation import Evidence, Federation, SigningKey, TrustAnchor, verify_result
from federation.ear.model import Ear
from federation.errors import ConfigError
from verifiers.local.appraiser import FRESHNESS_NOT_CHECKED, LocalAppraiser
from verifiers.local.backend import OPTIONS, LocalBackend, cvm_schemes, intel_roots
from verifiers.local.collateral.folder import BUILTIN_VENDORS, handlers
from verifiers.local.corim.store import ReferenceValueStore, load_paths
from verifiers.local.evidence import cca, eat
from verifiers.local.evidence.eat import encode_eat
from verifiers.local.evidence.tdx import parse_quote
from verifiers.local.schemes import BUILTIN
from verifiers.local.schemes.sevsnp import SevSnpScheme
from verifiers.local.schemes.tdx import TdxScheme
from verifiers.registry import VerifierSpec, create

VECTORS = Path(__file__).resolve().parents[2] / "shared" / "vectors"
GSG = VECTORS / "sev-snp" / "go-sev-guest"
MILAN = GSG / "attestation.bin"
VCEK = GSG / "vcek.testcer"
MILAN_CHAIN = GSG / "trust" / "ask_ark_milan.pem"
GENOA_TSM = VECTORS / "sev-snp" / "veraison" / "sevsnp-tsm-report.cbor"
DCAP = VECTORS / "tdx" / "dcap-qvl"
INTEL_ROOT_PEM = VECTORS / "tdx" / "go-tdx-guest" / "trusted_root.pem"
INTEL_ROOT_DER = DCAP / "TrustedRootCA.der"
MILAN_AT, GENOA_AT, TDX_AT = "2024-01-01T00:00:00Z", "2026-01-01T00:00:00Z", "2025-07-01T00:00:00Z"
MILAN_RD = MILAN.read_bytes()[0x50:0x90]
GENOA_RD = b"MIDBNH28iioisjPyxxxxxxxxxxxxxxxx" * 2
OTHER = hashlib.sha256(b"another session").digest()


def epoch(iso: str) -> int:
    return int(datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp())


def toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return f'"{v}"'
    if isinstance(v, list):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{k} = {toml_value(x)}" for k, x in v.items()) + " }"
    return str(v)


def config(tmp: Path, options: Mapping[str, Any], k: int = 1, n: int = 1) -> Path:
    """A federation of *n* local verifiers with these options, in tmp/fed.toml."""
    cfg = tmp / "fed.toml"
    cfg.write_text(f"[quorum]\nk = {k}\n" + "".join(
        f'[[verifiers]]\nname = "v{i}"\nkind = "local"\noperator = "op{i}"\noptions = {toml_value(dict(options))}\n'
        for i in range(n)))
    return cfg


async def appraise(cfg: Path, evidence: Path, nonce: bytes | None, at: str) -> tuple[Any, Federation]:
    import verifiers.local.evidence  # noqa: F401 - sniffers

    fed = Federation.from_config(cfg)
    async with fed:
        result = await fed.appraise(Evidence.from_file(evidence), nonce, now=epoch(at))
    return result, fed


def only_submod(result: Any) -> tuple[str, Any]:
    [vote] = result.votes
    assert vote.outcome.value == "ok", vote.detail
    [(name, a)] = vote.ear.submods.items()
    return name, a


def claims(a: Any) -> dict[str, Any]:
    return dict(a.extensions.get("ear_veraison_policy_claims") or {})


def local_spec(options: Mapping[str, Any], base: Path = Path()) -> VerifierSpec:
    return VerifierSpec("v", "local", "op", dict(options), base, "fed.toml")


# -- the table and the glue --------------------------------------------------------------------------


def test_options_table_and_builtin_vendors() -> None:
    assert {"collateral", "amd_roots", "intel_roots", "allow_debug", "report_data", "freshness"} <= set(OPTIONS)
    assert BUILTIN_VENDORS == ("amd", "intel")
    assert {"amd", "intel"} <= {h.name for h in handlers()}


# -- validation: the key and the file are named ------------------------------------------------------


@pytest.mark.parametrize(("option", "value", "text"), [
    ("collateral", "folder", "wrong type str"),
    ("collateral", [1], "item 0 is int"),
    ("amd_roots", "ark.pem", "wrong type str"),
    ("amd_roots", ["ok.pem", True], "item 1 is bool"),
    ("intel_roots", {"a": 1}, "wrong type dict"),
    ("intel_roots", [1.5], "item 0 is float"),
    ("allow_debug", "yes", "wrong type str"),
    ("allow_debug", 1, "wrong type int"),
    ("report_data", 5, "wrong type int"),
    ("report_data", "md5", "must be one of raw, sha256, sha384, sha512"),
    ("freshness", "false", "wrong type str"),
    ("freshness", 0, "wrong type int"),
    ("schemes", ["SEVSNP", 7], "item 1 is int"),
    ("schemes", ["SEV-SNP"], "unknown scheme(s) SEV-SNP"),
    ("corim", [{}], "item 0 is dict"),
    ("colateral", [], "unknown option"),
])
def test_wrong_options_name_the_key(option: str, value: Any, text: str) -> None:
    with pytest.raises(ConfigError) as info:
        create(local_spec({option: value}))
    assert info.value.key == f"verifiers.v.{option}"
    assert text in str(info.value) and "fed.toml" in str(info.value)


def test_wrong_options_in_a_config_file_name_the_key_and_the_file(tmp_path: Path) -> None:
    cfg = config(tmp_path, {"allow_debug": "no"})
    with pytest.raises(ConfigError) as info:
        Federation.from_config(cfg)
    assert "verifiers.v0.allow_debug" in str(info.value) and "fed.toml" in str(info.value)


def test_unusable_files_name_the_key(tmp_path: Path) -> None:
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate")
    cases = {
        "collateral": ["missing-folder"],
        "amd_roots": [str(junk)],
        "intel_roots": [str(junk)],
    }
    for option, value in cases.items():
        with pytest.raises(ConfigError) as info:
            create(local_spec({option: value}, tmp_path))
        assert info.value.key == f"verifiers.v.{option}", option
    for option in ("amd_roots", "intel_roots"):
        with pytest.raises(ConfigError) as info:
            create(local_spec({option: ["missing.pem"]}, tmp_path))
        assert info.value.key == f"verifiers.v.{option}" and "missing.pem" in str(info.value)
    empty = tmp_path / "empty.pem"
    empty.write_text("")
    with pytest.raises(ConfigError, match="certificate"):
        intel_roots([empty])


def test_options_reach_the_schemes(tmp_path: Path) -> None:
    backend = create(local_spec({"allow_debug": True, "report_data": "sha384",
                                 "intel_roots": [str(INTEL_ROOT_PEM), str(INTEL_ROOT_DER)],
                                 "amd_roots": [str(MILAN_CHAIN)], "freshness": False}))
    assert isinstance(backend, LocalBackend) and backend.freshness is False
    schemes = {s.descriptor.name: s for s in backend.appraiser.schemes}
    assert set(schemes) == set(BUILTIN)
    snp, tdx = schemes["SEVSNP"], schemes["INTEL_TDX"]
    assert isinstance(snp, SevSnpScheme) and isinstance(tdx, TdxScheme)
    assert (snp.policy.allow_debug, snp.policy.report_data) == (True, "sha384")
    assert (tdx.allow_debug, tdx.report_data) == (True, "sha384")
    assert len(tdx.roots) == 2 and tdx.roots[0] == tdx.roots[1]  # the same root, PEM and DER
    assert len(snp.roots.certificates) == 2 and snp.roots.operator  # ASK and ARK from the file
    defaults = {s.descriptor.name: s for s in create(local_spec({})).appraiser.schemes}
    d_snp, d_tdx = defaults["SEVSNP"], defaults["INTEL_TDX"]
    assert isinstance(d_snp, SevSnpScheme) and isinstance(d_tdx, TdxScheme)
    assert (d_snp.policy.allow_debug, d_snp.policy.report_data, d_snp.roots.operator) == (False, "raw", frozenset())
    assert (d_tdx.allow_debug, d_tdx.report_data, d_tdx.roots) == (False, "raw", ())
    assert create(local_spec({})).freshness is True
    assert set(cvm_schemes(allow_debug=True)) == {"SEVSNP", "INTEL_TDX"}


# -- behaviour -------------------------------------------------------------------------------------


@pytest.mark.parametrize(("allow_debug", "status", "configuration"), [(False, "contraindicated", 96),
                                                                      (True, "warning", 2)])
async def test_collateral_folder_and_allow_debug(tmp_path: Path, allow_debug: bool, status: str,
                                                 configuration: int) -> None:
    amd = tmp_path / "amd" / "vcek" / "v1" / "Milan"  # relative to the config file: laid out as KDS serves it
    amd.mkdir(parents=True)
    (amd / "cert_chain").write_bytes(MILAN_CHAIN.read_bytes())
    (amd / "3ac3fe21.der").write_bytes(VCEK.read_bytes())
    cfg = config(tmp_path, {"collateral": ["amd"], "allow_debug": allow_debug, "at": MILAN_AT})
    result, _ = await appraise(cfg, MILAN, MILAN_RD, MILAN_AT)
    name, a = only_submod(result)
    assert (result.status, name) == (status, "SEVSNP")
    tv = a.trust_vector.as_dict()
    assert (tv["instance-identity"], tv["hardware"], tv["configuration"]) == (2, 2, configuration)


async def test_amd_roots_serve_as_the_ark_when_nothing_else_carries_one(tmp_path: Path) -> None:
    ask, ark = x509.load_pem_x509_certificates(MILAN_CHAIN.read_bytes())
    (tmp_path / "ask.pem").write_bytes(ask.public_bytes(Encoding.PEM))
    (tmp_path / "ark.der").write_bytes(ark.public_bytes(Encoding.DER))
    common = {"collateral": [str(VCEK), "ask.pem"], "allow_debug": True, "at": MILAN_AT}
    result, _ = await appraise(config(tmp_path, common), MILAN, MILAN_RD, MILAN_AT)
    assert result.status == "contraindicated"
    assert claims(only_submod(result)[1])["problem"] == ("no trust anchor for evidence: amd: no ARK certificate "
                                                        "for the ASK (issuer ARK-Milan)")
    result, _ = await appraise(config(tmp_path, {**common, "amd_roots": ["ark.der"]}), MILAN, MILAN_RD, MILAN_AT)
    _, a = only_submod(result)
    assert result.status == "warning" and a.trust_vector.as_dict()["instance-identity"] == 2


async def test_intel_collateral_file(tmp_path: Path) -> None:
    quote = DCAP / "tdx_quote"
    rd = parse_quote(quote.read_bytes()).body.report_data
    cfg = config(tmp_path, {"collateral": [str(DCAP / "tdx_quote_collateral.json")], "at": TDX_AT,
                            "intel_roots": [str(INTEL_ROOT_DER)]})
    result, _ = await appraise(cfg, quote, rd, TDX_AT)
    name, a = only_submod(result)
    assert (name, claims(a)["tcb_status"], a.trust_vector.as_dict()["hardware"]) == ("INTEL_TDX", "UpToDate", 2)


async def test_report_data_rule(tmp_path: Path) -> None:
    for rule, status in (("raw", "warning"), ("sha512", "contraindicated")):
        result, _ = await appraise(config(tmp_path, {"report_data": rule, "at": GENOA_AT}), GENOA_TSM, GENOA_RD,
                                   GENOA_AT)
        _, a = only_submod(result)
        assert result.status == status, rule
        if status == "contraindicated":
            assert "'sha512' rule" in claims(a)["problem"]


@pytest.mark.parametrize("evidence", ["snp", "tdx"])
async def test_freshness_false_accepts_evidence_bound_to_another_nonce_and_says_so(tmp_path: Path,
                                                                                  evidence: str) -> None:
    if evidence == "snp":
        path, at, extra = GENOA_TSM, GENOA_AT, {}
    else:
        path, at, extra = DCAP / "tdx_quote", TDX_AT, {"collateral": [str(DCAP / "tdx_quote_collateral.json")]}
    checked, _ = await appraise(config(tmp_path, {"at": at, **extra}), path, OTHER, at)
    assert checked.status == "contraindicated"  # freshness on (the default): another nonce fails
    assert "freshness" not in claims(only_submod(checked)[1])
    result, fed = await appraise(config(tmp_path, {"at": at, "freshness": False, **extra}, k=2, n=3), path, OTHER, at)
    assert result.status == "warning"  # no CoRIM: executables 33
    for vote in result.votes:
        assert vote.outcome.value == "ok"  # the federation checked each EAR's nonce: the session's
        assert all(claims(a)["freshness"] == FRESHNESS_NOT_CHECKED for a in vote.ear.submods.values())
    anchors = {m.backend.name: m.anchor for m in fed.members}
    verified = verify_result(result.token, TrustAnchor((fed.signing_key.public,)), nonce=OTHER, reverify=True,
                             anchors=anchors, now=epoch(at))
    assert verified.status == "warning"


# -- every scheme honours an empty nonce ---------------------------------------------------------------


def psa_case(tmp: Path) -> tuple[LocalAppraiser, Evidence, datetime]:
    store = load_paths([PSA / "endorsements" / "corim-psa-valid.cbor"], [], PSA_NOW, trust_unsigned=True)
    return LocalAppraiser(list(BUILTIN.values()), store), Evidence(PSA_MT, (PSA / "evidence" / "psa.good.cose")
                                                                   .read_bytes()), PSA_NOW


def cca_case(tmp: Path) -> tuple[LocalAppraiser, Evidence, datetime]:
    from test_local_cca import NOW

    iak, rak, endorser = SigningKey.generate("ES256"), SigningKey.generate("ES384"), SigningKey.generate("ES256")
    store: ReferenceValueStore = cca_store_of(tmp, endorser, platform_corim(iak), realm_corim())
    return LocalAppraiser(list(BUILTIN.values()), store), Evidence(cca.MEDIA_TYPE, cca_token(iak, rak)), NOW


def eat_case(tmp: Path) -> tuple[LocalAppraiser, Evidence, datetime]:
    from test_local_eat import NOW

    attester, endorser = SigningKey.generate("ES256"), SigningKey.generate("ES256")
    store = eat_store_of(tmp, endorser, eat_corim(attester))
    return (LocalAppraiser(list(BUILTIN.values()), store),
            Evidence(eat.CWT_MEDIA_TYPE, encode_eat(eat_claims(), attester, fmt="cwt")), NOW)


CASES = {"PSA_IOT": psa_case, "ARM_CCA": cca_case, "EAT": eat_case}


def verdict(ear: Ear) -> dict[str, tuple[str, dict[str, int] | None]]:
    return {n: (a.status.label, a.trust_vector.as_dict() if a.trust_vector else None) for n, a in ear.submods.items()}


@pytest.mark.parametrize("scheme", sorted(CASES))
def test_psa_cca_eat_honour_an_empty_nonce(tmp_path: Path, scheme: str) -> None:
    appraiser, evidence, now = CASES[scheme](tmp_path)
    wrong = appraiser.appraise(evidence, OTHER, now)
    assert {a.status.label for a in wrong.submods.values()} == {"contraindicated"}  # the nonce is checked
    assert all("freshness" not in claims(a) for a in wrong.submods.values())
    unchecked = appraiser.appraise(evidence, OTHER, now, freshness=False)
    empty = appraiser.appraise(evidence, b"", now)
    assert verdict(unchecked) == verdict(empty)
    assert {a.status.label for a in unchecked.submods.values()} == {"affirming"}
    for ear in (unchecked, empty):
        assert all(claims(a)["freshness"] == FRESHNESS_NOT_CHECKED for a in ear.submods.values())
    assert (unchecked.nonce, empty.nonce) == (OTHER, None)  # echoed when there is one
