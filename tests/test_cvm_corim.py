"""The CVM firmware CoRIM profile (docs/cvm-corim.md) and its example, end to end.

The example in docs/examples/cvm-firmware is built exactly as the documentation says
(``ratsfed corim create docs/examples/cvm-firmware/corim.json --key ... --signer-name ... --out
...``) and appraised, through the local appraiser and the offline collateral store, with the real
vectors at the times their SOURCES.md names: the go-sev-guest Milan report (debug allowed, at
2024-01-01, its chain from trust/*.pem and vcek.testcer) and the dcap-qvl TDX quote (its
collateral JSON, at 2025-07-01); each session nonce is the Evidence's own REPORT_DATA. Then: a
variant listing other measurements, the short-lived endorsed values ("firmware SVN n is current")
while valid, when they raise the bar, and after they expire, and the profile's rules.
"""

from __future__ import annotations

import asyncio
import copy
import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from federation.cli.main import main
from federation.ear.model import Appraisal
from federation.errors import StaleError
from federation.evidence import Evidence
from federation.keys import TrustAnchor, load_trust_anchor
from verifiers.local.appraiser import LocalAppraiser
from verifiers.local.collateral.base import resolve
from verifiers.local.collateral.folder import FolderStore
from verifiers.local.corim.decode import decode_signed_corim
from verifiers.local.corim.profiles import CVM_FIRMWARE_ID, ProfileError, validate_profile
from verifiers.local.corim.store import ReferenceValueStore, load_paths
from verifiers.local.corim.template import corim_from_template
from verifiers.local.evidence import sevsnp as snp
from verifiers.local.evidence.tdx import MEDIA_TYPE as TDX_MEDIA_TYPE
from verifiers.local.evidence.tdx import parse_quote
from verifiers.local.scheme import Scheme
from verifiers.local.schemes.sevsnp import SCHEME as SEVSNP
from verifiers.local.schemes.tdx import SCHEME as TDX

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "docs" / "examples" / "cvm-firmware"
VECTORS = Path(__file__).resolve().parents[2] / "shared" / "vectors"
SNP_DIR = VECTORS / "sev-snp" / "go-sev-guest"
TDX_DIR = VECTORS / "tdx" / "dcap-qvl"
SIGNER = "Example Cloud Firmware Signing"
MILAN_AT = datetime(2024, 1, 1, tzinfo=UTC)
GENOA_AT = datetime(2026, 1, 1, tzinfo=UTC)
TDX_AT = datetime(2025, 7, 1, tzinfo=UTC)
MILAN = SNP_DIR / "attestation.bin"
GENOA = VECTORS / "sev-snp" / "veraison" / "sevsnp-tsm-report.cbor"
QUOTE = TDX_DIR / "tdx_quote"
MILAN_TCB = 4901323769462652930  # Milan bl 2, tee 0, snp 5, ucode 68 (the report's REPORTED_TCB)
MILAN_TCB_SNP6 = int.from_bytes(bytes([2, 0, 0, 0, 0, 0, 6, 68]), "little")  # SNP firmware SVN 6
SEAM_SVN = 262  # the dcap-qvl quote's TEE_TCB_SVN[1] = 1 (module major), [0] = 6 (SVN)
OTHER = "K7JgX1w5CTPBzFddfi7i6Z6ipOD7NU8PVvzFcuqP4HOYktJNSvzWZtiPkBgON8D3"  # SHA-384("another firmware build")


# -- building CoRIMs with the CLI, as the documentation does --------------------------------------------

def template(name: str = "corim.json") -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((EXAMPLE / name).read_text())
    return doc


class Endorser:
    """A key made with ``ratsfed keys generate``; CoRIMs made with ``ratsfed corim create``."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        assert main(["keys", "generate", "--out", str(folder / "endorser")]) == 0
        self.key = folder / "endorser" / "private.pem"
        self.anchor: TrustAnchor = load_trust_anchor(str(folder / "endorser" / "public.jwk"))

    def create(self, source: Path | dict[str, Any], out: str) -> Path:
        """``ratsfed corim create SOURCE --key KEY --signer-name SIGNER --out OUT`` (a dict: written first)."""
        if isinstance(source, dict):
            path = self.folder / f"{out}.json"
            path.write_text(json.dumps(source))
            source = path
        target = self.folder / out
        assert main(["corim", "create", str(source), "--key", str(self.key), "--signer-name", SIGNER,
                     "--out", str(target)]) == 0
        return target

    def store(self, paths: list[Path], at: datetime) -> ReferenceValueStore:
        return load_paths(paths, [self.anchor], at)


@pytest.fixture
def endorser(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Endorser:
    e = Endorser(tmp_path)
    capsys.readouterr()
    return e


# -- appraising the vectors -----------------------------------------------------------------------------

def appraise(scheme: Scheme, evidence: Evidence, nonce: bytes, at: datetime, store: ReferenceValueStore,
             collateral: list[Path]) -> Appraisal:
    appraiser = LocalAppraiser([scheme], store)
    found = asyncio.run(resolve(FolderStore(collateral), appraiser.collateral_requests(evidence)))
    ear = appraiser.appraise(evidence, nonce, at, collateral=found)
    (submod,) = ear.submods.values()
    return submod


def milan(store: ReferenceValueStore, at: datetime = MILAN_AT) -> Appraisal:
    data = MILAN.read_bytes()
    return appraise(SEVSNP.with_policy(allow_debug=True), Evidence(snp.MEDIA_TYPE_REPORT, data), data[0x50:0x90],
                    at, store, [SNP_DIR / "vcek.testcer", *sorted((SNP_DIR / "trust").glob("*.pem"))])


def genoa(store: ReferenceValueStore) -> Appraisal:
    return appraise(SEVSNP, Evidence(snp.MEDIA_TYPE_TSM_CBOR, GENOA.read_bytes()),
                    b"MIDBNH28iioisjPyxxxxxxxxxxxxxxxx" * 2, GENOA_AT, store, [])


def tdx(store: ReferenceValueStore, at: datetime = TDX_AT) -> Appraisal:
    data = QUOTE.read_bytes()
    return appraise(TDX, Evidence(TDX_MEDIA_TYPE, data), parse_quote(data).body.report_data, at, store,
                    [TDX_DIR / "tdx_quote_collateral.json"])


def tv(a: Appraisal) -> dict[str, int]:
    assert a.trust_vector is not None
    return a.trust_vector.as_dict()


def records(a: Appraisal) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = a.extensions["ear_ratsfed_endorsements"]
    return out


def cvm(a: Appraisal) -> dict[str, Any]:
    out: dict[str, Any] = a.extensions["ear_veraison_annotated_evidence"]["cvm"]
    return out


# -- the example ------------------------------------------------------------------------------------------

def test_the_example_builds_one_comid_for_both_platforms(endorser: Endorser) -> None:
    built = endorser.create(EXAMPLE / "corim.json", "cvm.corim")
    corim = decode_signed_corim(built.read_bytes()).corim
    assert corim.profile is not None and corim.profile.value == CVM_FIRMWARE_ID
    (comid,) = corim.comids
    classes = [t.environment.class_ for t in comid.triples.reference]
    assert sum(c is not None and c.model == "TDX" for c in classes) == 2  # two TDX states (two vCPU counts)
    assert sum(c is not None and c.class_id is not None for c in classes) == 3  # two Milan, one Genoa
    assert endorser.create(EXAMPLE / "endorsed.json", "endorsed.corim").is_file()


def test_the_example_affirms_the_milan_report_and_the_dcap_qvl_quote(endorser: Endorser) -> None:
    store = endorser.store([endorser.create(EXAMPLE / "corim.json", "cvm.corim")], MILAN_AT)
    kid = endorser.anchor.keys[0].thumbprint
    for a, platform in ((milan(store), "amd-sev-snp"), (tdx(store), "intel-tdx")):
        assert a.status.label == "affirming", a.extensions
        assert (tv(a)["executables"], tv(a)["hardware"], tv(a)["instance-identity"]) == (2, 2, 2)
        (record,) = records(a)  # the CoRIM and the signer that authorized the match
        assert record["role"] == "reference-values"
        assert (record["corim_id"], record["comid_id"], record["signer"], record["key_thumbprint"]) == (
            "example-cloud-cvm-firmware-2025.06", "cvm-firmware-2025.06", SIGNER, kid)
        assert record["profile"] == CVM_FIRMWARE_ID
        assert record["dependent_rims"] == ["https://firmware.example.com/cvm/2025.06/provenance.intoto.jsonl"]
        c = cvm(a)
        assert c["platform"] == platform
        (match,) = c["matched"]
        assert (match["corim_id"], match["signer"], match["key_thumbprint"]) == (
            "example-cloud-cvm-firmware-2025.06", SIGNER, kid)
        (bound,) = c["tcb_bounds"]
        assert bound["met"] is True and bound["role"] == "reference-values"
    a = milan(store)
    c = cvm(a)
    assert c["measurements"]["0"] == MILAN.read_bytes()[0x90:0xC0].hex()
    assert c["matched"][0]["mkeys"] == [0]
    assert c["tcb_bounds"][0]["mkey"] == 7
    assert c["tcb_bounds"][0]["minimum"]["snp"] == c["tcb"]["reported"]["snp"] == 5
    assert c["debug"] == {"debug": True, "allowed": True} and c["product"] == "Milan"
    a = tdx(store)
    c = cvm(a)
    assert c["matched"][0]["mkeys"] == ["tdx.mrtd", "tdx.rtmr0", "tdx.td-attributes"]
    assert c["tcb"]["seam_svn"] == SEAM_SVN and c["tcb"]["status"] == "UpToDate"
    assert c["tcb_bounds"][0]["minimum"] == c["tcb_bounds"][0]["actual"] == SEAM_SVN
    assert c["debug"] == {"debug": False, "allowed": False}


def test_the_genoa_report_matches_its_product_triple(endorser: Endorser) -> None:
    """The Genoa triple names group 'Genoa': its TCB bound is read in Genoa's layout, Milan's never."""
    a = genoa(endorser.store([endorser.create(EXAMPLE / "corim.json", "cvm.corim")], GENOA_AT))
    assert a.status.label == "affirming"
    (bound,) = cvm(a)["tcb_bounds"]
    assert bound["met"] is True and bound["minimum"]["snp"] == 23


def _replace_digests(doc: dict[str, Any], old: str, new: str) -> dict[str, Any]:
    text = json.dumps(doc)
    assert old in text
    out: dict[str, Any] = json.loads(text.replace(old, new))
    return out


def test_a_corim_listing_other_measurements_is_not_affirming(endorser: Endorser) -> None:
    doc = template()
    doc = _replace_digests(doc, "sHr5Yg87g5tHmWQi3exgWDOJUdmE4xIRUTHqgnBer1tr34qezjGlpgjrDPLkhysB", OTHER)  # Milan
    doc = _replace_digests(doc, "kesrRNFB1Ozgnwx1wsU9JHo8aO3X-v6KNSDJQqYEpAfeA65txfh_J0KLJTiHMRi3", OTHER)  # MRTD
    store = endorser.store([endorser.create(doc, "other.corim")], MILAN_AT)
    for a in (milan(store), tdx(store)):
        assert a.status.label == "warning"
        assert tv(a)["executables"] == 33
        assert records(a) == [] and cvm(a)["matched"] == []


def _endorsed(not_before: str, not_after: str, *, milan_tcb: int = MILAN_TCB, seam: int = SEAM_SVN
              ) -> dict[str, Any]:
    """The example endorsed values with another window and other minimums."""
    doc = template("endorsed.json")
    doc["validity"] = {"not-before": not_before, "not-after": not_after}
    triples = doc["comids"][0]["triples"]["endorsed-values"]
    triples[0]["measurements"][0]["value"]["svn"]["value"] = milan_tcb
    triples[2]["measurements"][0]["value"]["svn"]["value"] = seam
    return doc


def test_current_endorsed_values_are_recorded(endorser: Endorser) -> None:
    """The example's endorsed values are valid 2025-06-20..07-20: at 2025-07-01 they name the quote's
    SEAM SVN as current, and the EAR names them next to the reference values."""
    paths = [endorser.create(EXAMPLE / "corim.json", "cvm.corim"), endorser.create(EXAMPLE / "endorsed.json", "e")]
    a = tdx(endorser.store(paths, TDX_AT))
    assert a.status.label == "affirming"
    assert [(r["role"], r["corim_id"], r["signer"]) for r in records(a)] == [
        ("reference-values", "example-cloud-cvm-firmware-2025.06", SIGNER),
        ("endorsed-values", "example-cloud-cvm-firmware-current-2025-07", SIGNER)]
    endorsed = [b for b in cvm(a)["tcb_bounds"] if b["role"] == "endorsed-values"]
    assert endorsed == [{"role": "endorsed-values", "mkey": "tdx.seam-svn", "minimum": SEAM_SVN, "actual": SEAM_SVN,
                         "met": True, "corim_id": "example-cloud-cvm-firmware-current-2025-07",
                         "comid_id": "cvm-firmware-current", "profile": CVM_FIRMWARE_ID, "signer": SIGNER,
                         "key_thumbprint": endorser.anchor.keys[0].thumbprint,
                         "valid_until": "2025-07-20T00:00:00Z"}]


@pytest.mark.parametrize("platform", ["snp", "tdx"])
def test_newer_current_firmware_makes_the_platform_out_of_date_until_the_endorsement_expires(
        endorser: Endorser, platform: str) -> None:
    """'Firmware SVN n+1 is current' grades the hardware 32 while valid; once expired it contributes nothing."""
    appraised: Callable[[ReferenceValueStore, datetime], Appraisal] = milan if platform == "snp" else tdx
    at = MILAN_AT if platform == "snp" else TDX_AT
    window = ("2023-12-15T00:00:00Z", "2024-01-14T00:00:00Z") if platform == "snp" else (
        "2025-06-20T00:00:00Z", "2025-07-20T00:00:00Z")
    reference = endorser.create(EXAMPLE / "corim.json", "cvm.corim")
    newer = endorser.create(_endorsed(*window, milan_tcb=MILAN_TCB_SNP6, seam=SEAM_SVN + 1), "newer.corim")
    a = appraised(endorser.store([reference, newer], at), at)
    assert (a.status.label, tv(a)["hardware"], tv(a)["executables"]) == ("warning", 32, 2)
    (bound,) = [b for b in cvm(a)["tcb_bounds"] if b["role"] == "endorsed-values"]
    assert bound["met"] is False
    assert [r["role"] for r in records(a)] == ["reference-values", "endorsed-values"]

    # the same statement, issued for an earlier month: loaded while valid, appraised after it expired
    expired_window = ("2023-11-01T00:00:00Z", "2023-11-30T00:00:00Z") if platform == "snp" else (
        "2025-05-01T00:00:00Z", "2025-05-31T00:00:00Z")
    expired = endorser.create(_endorsed(*expired_window, milan_tcb=MILAN_TCB_SNP6, seam=SEAM_SVN + 1), "old.corim")
    loaded_at = datetime.fromisoformat(expired_window[0].replace("Z", "+00:00"))
    a = appraised(endorser.store([reference, expired], loaded_at), at)
    assert (a.status.label, tv(a)["hardware"]) == ("affirming", 2)
    assert [r["role"] for r in records(a)] == ["reference-values"]
    assert [b["role"] for b in cvm(a)["tcb_bounds"]] == ["reference-values"]
    with pytest.raises(StaleError, match="rim-validity"):  # and a store loaded now refuses it outright
        endorser.store([expired], at)


def test_a_reference_seam_svn_bound_that_fails_grades_hardware(endorser: Endorser) -> None:
    doc = json.loads(json.dumps(template()).replace('"value": 262', f'"value": {SEAM_SVN + 1}'))
    a = tdx(endorser.store([endorser.create(doc, "seam.corim")], TDX_AT))
    assert (a.status.label, tv(a)["executables"], tv(a)["hardware"]) == ("warning", 2, 32)


def test_corims_without_a_profile_still_count(endorser: Endorser) -> None:
    doc = template()
    del doc["profile"]
    a = milan(endorser.store([endorser.create(doc, "base.corim")], MILAN_AT))
    assert a.status.label == "affirming"
    assert "profile" not in records(a)[0]


# -- the profile's rules ----------------------------------------------------------------------------------

def _reference(doc: dict[str, Any], i: int) -> dict[str, Any]:
    out: dict[str, Any] = doc["comids"][0]["triples"]["reference-values"][i]
    return out


def _no_milan_group(doc: dict[str, Any]) -> None:
    del _reference(doc, 0)["environment"]["group"]


def _exact_tcb(doc: dict[str, Any]) -> None:
    _reference(doc, 0)["measurements"][1]["value"]["svn"] = MILAN_TCB


def _sha256_launch(doc: dict[str, Any]) -> None:
    _reference(doc, 0)["measurements"][0]["value"]["digests"] = [[1, "A" * 43]]


def _uint_mkey_for_tdx(doc: dict[str, Any]) -> None:
    _reference(doc, 3)["measurements"][3]["key"] = {"type": "uint", "value": 7}


def _tdx_instance(doc: dict[str, Any]) -> None:
    _reference(doc, 3)["environment"]["instance"] = {"type": "bytes", "value": "AAAA"}


def _unknown_class(doc: dict[str, Any]) -> None:
    _reference(doc, 3)["environment"]["class"] = {"vendor": "Intel", "model": "TDX"}


def _unknown_mkey(doc: dict[str, Any]) -> None:
    _reference(doc, 3)["measurements"][0]["key"]["value"] = "tdx.mrtd2"


def _twice(doc: dict[str, Any]) -> None:
    ms = _reference(doc, 3)["measurements"]
    ms.append(copy.deepcopy(ms[0]))


def _short_register(doc: dict[str, Any]) -> None:
    _reference(doc, 3)["measurements"][1]["value"] = {"raw-value": {"type": "bytes", "value": "AAAA"}}


def _bad_product(doc: dict[str, Any]) -> None:
    _reference(doc, 0)["environment"]["group"] = {"type": "bytes", "value": "Um9tZQ"}  # "Rome"


RULES: dict[str, tuple[Callable[[dict[str, Any]], None], str]] = {
    "tcb bound without product": (_no_milan_group, "needs the product line as the environment's group"),
    "exact TCB svn": (_exact_tcb, 'svn must be "min-svn", got "exact svn"'),
    "sha-256 launch digest": (_sha256_launch, "digest must be exactly 48 bytes"),
    "uint mkey in a TDX triple": (_uint_mkey_for_tdx, r"a TDX environment the text mkeys tdx\.\*"),
    "TDX instance": (_tdx_instance, "a TDX environment is the class alone"),
    "unknown class": (_unknown_class, 'environment.class must be .* got "class with vendor=Intel, model=TDX"'),
    "unknown mkey": (_unknown_mkey, r'invalid mkey "tdx\.mrtd2"'),
    "an mkey twice": (_twice, r'reference value at index 3: 0 to 1 "tdx\.mrtd" measurement'),
    "short register": (_short_register, "raw-value must be exactly 48 bytes"),
    "unknown product": (_bad_product, "product group must be"),
}


@pytest.mark.parametrize("rule", sorted(RULES))
def test_reference_rules(rule: str) -> None:
    change, message = RULES[rule]
    doc = template()
    validate_profile(corim_from_template(doc))  # the example follows them
    change(doc)
    with pytest.raises(ProfileError, match=message) as info:
        validate_profile(corim_from_template(doc))
    assert info.value.profile == CVM_FIRMWARE_ID


def test_endorsed_values_must_be_short_lived() -> None:
    validate_profile(corim_from_template(template("endorsed.json")))
    doc = template("endorsed.json")
    del doc["validity"]
    with pytest.raises(ProfileError, match="needs a rim-validity with not-before and not-after"):
        validate_profile(corim_from_template(doc))
    doc = _endorsed("2025-06-01T00:00:00Z", "2025-08-01T00:00:00Z")
    with pytest.raises(ProfileError, match="at most 31 days"):
        validate_profile(corim_from_template(doc))
    doc = template("endorsed.json")
    doc["comids"][0]["triples"]["endorsed-values"][2]["measurements"][0]["key"]["value"] = "tdx.mrtd"
    with pytest.raises(ProfileError, match=r'invalid mkey "tdx\.mrtd"'):  # endorsed values are SVN bounds only
        validate_profile(corim_from_template(doc))


def test_a_reference_corim_may_live_long() -> None:
    doc = template()
    doc["validity"] = {"not-after": "2027-01-01T00:00:00Z"}
    validate_profile(corim_from_template(doc))


def test_ratsfed_corim_create_refuses_a_broken_template(endorser: Endorser, capsys: pytest.CaptureFixture[str]
                                                        ) -> None:
    doc = template()
    _no_milan_group(doc)
    path = endorser.folder / "broken.json"
    path.write_text(json.dumps(doc))
    assert main(["corim", "create", str(path), "--out", str(endorser.folder / "broken.corim")]) != 0
    assert "needs the product line" in capsys.readouterr().err
