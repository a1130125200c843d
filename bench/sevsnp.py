"""CPU cost of one SEV-SNP appraisal, next to the bare signature checks it cannot avoid.

Inputs (``../shared/vectors/sev-snp``, read in place): the veraison Genoa v3 TSM report whose
auxblob carries VCEK, ASK and ARK (at 2026-01-01), and the go-sev-guest Milan v2 bare report with
its VCEK and ASK/ARK from an offline collateral folder (at 2024-01-01, debug allowed). Everything
runs in one process, interleaved round by round, so every figure comes from the same run:

* ``genoa cold`` / ``milan cold``: ``LocalAppraiser.appraise`` (collateral already resolved, as
  the backend hands it over): envelope and report parsing, certificate parsing, the chain
  ARK -> ASK -> VCEK (3 RSA-4096 RSASSA-PSS verifications: ARK self-signature, ASK, VCEK), the
  report's ECDSA P-384 verification, TCB/hwID checks, policy, reference-value lookup (an empty
  store) and the EAR model; not the EAR signature (the backend's, the same for every scheme).
  *Cold*: the memoised certificate parses and signature checks
  (``collateral.amd.clear_caches``) are emptied before each one;
* ``genoa warm`` / ``milan warm``: the same appraisal repeated, as a verifier sees reports from
  chips it has seen before: the certificates are the same bytes, so their parsing and the three
  RSA checks are cache hits; the report signature (1 P-384 verification) is checked every time,
  and every certificate's validity at ``now`` is checked every time;
* ``chain cold``: ``verify_chain`` alone (3 RSA-PSS verifications, caches emptied);
* ``p384 verify``: one bare ``cryptography`` ECDSA P-384/SHA-384 verification of the Genoa report
  over its 672 signed bytes: the unit the ratios are given in;
* ``rsa-pss verify``: one bare RSA-4096 RSASSA-PSS (SHA-384, salt 48) verification, the VCEK
  certificate's signature under the ASK key.

``floor`` = 1 P-384 + 3 RSA-PSS bare verifications: what a cold appraisal must do at least.
Figures are medians of per-round CPU time (``time.process_time_ns``); ratios are of those medians.

Usage::

    .venv/bin/python bench/sevsnp.py              # 300 rounds
    .venv/bin/python bench/sevsnp.py --quick      # 20 rounds (smoke)
    .venv/bin/python bench/sevsnp.py --json out.json
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import platform
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from federation.evidence import Evidence
from verifiers.local.appraiser import LocalAppraiser
from verifiers.local.collateral.amd import TrustedRoots, clear_caches, load_certificates, verify_chain
from verifiers.local.collateral.base import resolve
from verifiers.local.collateral.folder import FolderStore
from verifiers.local.corim.store import ReferenceValueStore
from verifiers.local.evidence.sevsnp import MEDIA_TYPE_REPORT, MEDIA_TYPE_TSM_CBOR, decode_evidence
from verifiers.local.schemes.sevsnp import NAME, SevSnpScheme, SnpPolicy

VECTORS = Path(__file__).resolve().parents[2] / "shared" / "vectors" / "sev-snp"
GENOA_AT = datetime(2026, 1, 1, tzinfo=UTC)
MILAN_AT = datetime(2024, 1, 1, tzinfo=UTC)
RSA_PER_CHAIN = 3
WARM = frozenset({"genoa warm", "milan warm", "p384 verify", "rsa-pss verify"})  # the others: empty caches


def _steps() -> tuple[dict[str, Callable[[], object]], dict[str, str]]:
    genoa_data = (VECTORS / "veraison" / "sevsnp-tsm-report.cbor").read_bytes()
    genoa = Evidence(MEDIA_TYPE_TSM_CBOR, genoa_data)
    milan = Evidence(MEDIA_TYPE_REPORT, (VECTORS / "go-sev-guest" / "attestation.bin").read_bytes())
    scheme = SevSnpScheme()
    debug_ok = SevSnpScheme(SnpPolicy(allow_debug=True))
    trust = VECTORS / "go-sev-guest"
    folder = FolderStore([trust / "vcek.testcer", trust / "trust" / "ask_ark_milan.pem"])
    found = asyncio.run(resolve(folder, debug_ok.collateral_requests(milan)))
    genoa_app = LocalAppraiser([scheme], ReferenceValueStore())
    milan_app = LocalAppraiser([debug_ok], ReferenceValueStore())
    ev = decode_evidence(genoa_data, "tsm-cbor")
    report = ev.report
    certs = [c for blob in ev.blobs for c in load_certificates(blob.data)]
    vcek = next(c for c in certs if "SEV-VCEK" in c.subject.rfc4514_string())
    ask = next(c for c in certs if "CN=SEV-Genoa" in c.subject.rfc4514_string())
    key = vcek.public_key()
    ask_key = ask.public_key()
    assert isinstance(key, ec.EllipticCurvePublicKey) and isinstance(ask_key, rsa.RSAPublicKey)
    der = encode_dss_signature(report.signature_r, report.signature_s)
    pss = padding.PSS(mgf=padding.MGF1(hashes.SHA384()), salt_length=48)
    roots = TrustedRoots.default()
    steps: dict[str, Callable[[], object]] = {
        "genoa cold": lambda: genoa_app.appraise(genoa, report.report_data, GENOA_AT),
        "genoa warm": lambda: genoa_app.appraise(genoa, report.report_data, GENOA_AT),
        "milan cold": lambda: milan_app.appraise(milan, milan.data[0x50:0x90], MILAN_AT, collateral=found),
        "milan warm": lambda: milan_app.appraise(milan, milan.data[0x50:0x90], MILAN_AT, collateral=found),
        "chain cold": lambda: verify_chain(vcek, "vcek", certs, roots, GENOA_AT),
        "p384 verify": lambda: key.verify(der, report.signed_bytes, ec.ECDSA(hashes.SHA384())),
        "rsa-pss verify": lambda: ask_key.verify(vcek.signature, vcek.tbs_certificate_bytes, pss, hashes.SHA384()),
    }
    milan_ear = milan_app.appraise(milan, milan.data[0x50:0x90], MILAN_AT, collateral=found)
    statuses = {
        "genoa": genoa_app.appraise(genoa, report.report_data, GENOA_AT).submods[NAME].status.label,
        "milan": milan_ear.submods[NAME].status.label,
    }
    return steps, statuses


def run(rounds: int) -> dict[str, Any]:
    steps, statuses = _steps()
    for fn in steps.values():  # warm up
        for _ in range(5):
            fn()
    samples: dict[str, list[int]] = {name: [] for name in steps}
    gc.disable()
    try:
        for _ in range(rounds):
            for name, fn in steps.items():
                if name not in WARM:
                    clear_caches()
                t0 = time.process_time_ns()
                fn()
                samples[name].append(time.process_time_ns() - t0)
    finally:
        gc.enable()
    med = {name: statistics.median(v) / 1000 for name, v in samples.items()}  # microseconds
    unit = med["p384 verify"]
    floor = unit + RSA_PER_CHAIN * med["rsa-pss verify"]
    return {
        "rounds": rounds, "statuses": statuses,
        "median_us": med,
        "ratio_to_p384_verify": {name: m / unit for name, m in med.items()},
        "floor_us": floor,
        "cold_over_floor": {"genoa": med["genoa cold"] / floor, "milan": med["milan cold"] / floor},
        "appraisals_per_second_one_core": {
            "genoa cold": 1e6 / med["genoa cold"], "genoa warm": 1e6 / med["genoa warm"],
            "milan cold": 1e6 / med["milan cold"], "milan warm": 1e6 / med["milan warm"]},
        "machine": {"python": sys.version.split()[0], "platform": platform.platform(),
                    "processor": platform.processor() or platform.machine(),
                    "cryptography": metadata.version("cryptography")},
    }


def report(r: dict[str, Any]) -> str:
    lines = [f"SEV-SNP appraisal, veraison Genoa TSM report and go-sev-guest Milan report "
             f"({r['rounds']} rounds, medians of CPU time)", ""]
    lines.append(f"{'step':<18}{'µs':>10}{'x p384 verify':>16}")
    for name, us in r["median_us"].items():
        lines.append(f"{name:<18}{us:>10.1f}{r['ratio_to_p384_verify'][name]:>16.2f}")
    rate = r["appraisals_per_second_one_core"]
    cof = r["cold_over_floor"]
    lines += ["", f"floor: 1 x p384 verify + {RSA_PER_CHAIN} x rsa-pss verify = {r['floor_us']:.1f} µs; "
              f"cold appraisal / floor = {cof['genoa']:.2f} (genoa), {cof['milan']:.2f} (milan)",
              "throughput on one core (appraisals/s): " + ", ".join(f"{k} {v:.0f}" for k, v in rate.items()),
              f"statuses: {r['statuses']} (genoa: warning = no CoRIM names its measurement; milan: debug allowed)",
              f"machine: {r['machine']}"]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0] if __doc__ else None)
    p.add_argument("--rounds", type=int, default=300)
    p.add_argument("--quick", action="store_true", help="20 rounds")
    p.add_argument("--json", help="also write the figures as JSON here")
    args = p.parse_args(argv)
    r = run(20 if args.quick else args.rounds)
    print(report(r))
    if args.json:
        Path(args.json).write_text(json.dumps(r, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
