"""CPU cost of one TDX appraisal, next to the bare P-256 verifications it cannot avoid.

Input: the real dcap-qvl v4 quote with its complete collateral (``../shared/vectors/tdx/dcap-qvl``,
UpToDate at 2025-07-01). Everything runs in one process, interleaved round by round, so every
figure comes from the same run under the same conditions:

* ``appraisal cold``: ``LocalAppraiser.appraise`` with the collateral document already resolved
  (as the backend hands it over): parse, PCK chain, quote/QE signatures, CRLs, TCB info, QE
  identity, TCB status, reference-value lookup (an empty store), EAR model; not the EAR signature
  (that is the backend's, the same for every scheme). *Cold*: the caches of parsed certificates,
  CRLs, collateral documents and verified signatures (``collateral.intel.clear_caches``) are
  emptied before each one, so everything is parsed and all 13 signatures are verified;
* ``appraisal warm``: the same appraisal repeated, as a verifier sees the quotes of a platform it
  has seen before: the PCK chain, CRLs and PCS documents are the same bytes, so their parsing and
  signature checks are cache hits; the quote signature and the QE report signature (2
  verifications) are done every time, and every validity window is checked at ``now`` every time;
* ``no collateral cold``: the quote's own checks only (5 verifications), caches emptied;
* the steps of a cold appraisal, timed alone with caches emptied: ``parse`` (quote and its PEM
  chain), ``chain`` (PCK chain to the pin, 3 verifications), ``quote sigs`` (quote, QE report,
  binding: 2 verifications), ``collateral`` (document, both CRLs, TCB info and QE identity with
  their chains: 8 verifications), ``tcb`` (TCB level matching);
* ``p256 verify``: one bare ``cryptography`` ECDSA P-256/SHA-256 verification of the quote
  signature over its 632 signed bytes (the unit the ratios are given in);
* ``dcap-qvl``: ``dcap_qvl.verify`` on the same quote and collateral (Rust, PyPI ``dcap-qvl``),
  when that package is installed: it is not a dependency of this project
  (``pip install dcap-qvl`` to include it). It also checks that both give the same status.

A full appraisal with collateral performs 13 ECDSA P-256 verifications (chain 3, quote 2, CRLs 2,
TCB info 3, QE identity 3); ``floor`` is 13 bare verifications. Figures are medians of per-round
CPU time (``time.process_time_ns``); ratios are of those medians.

Usage::

    .venv/bin/python bench/tdx.py              # 300 rounds
    .venv/bin/python bench/tdx.py --quick      # 20 rounds (smoke)
    .venv/bin/python bench/tdx.py --json out.json
"""

from __future__ import annotations

import argparse
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
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from federation.evidence import Evidence
from verifiers.local.appraiser import LocalAppraiser
from verifiers.local.collateral.base import Collateral, CollateralRequest
from verifiers.local.collateral.intel import (
    PCK_LEAF,
    QeIdentity,
    TcbInfo,
    accept_crl,
    clear_caches,
    evaluate_tcb,
    parse_collateral,
    parse_pck_info,
    validate_chain,
    verify_qe_identity,
    verify_tcb_info,
)
from verifiers.local.corim.store import ReferenceValueStore
from verifiers.local.evidence.tdx import MEDIA_TYPE, parse_quote, verify_quote
from verifiers.local.schemes.tdx import TdxScheme

VECTORS = Path(__file__).resolve().parents[2] / "shared" / "vectors" / "tdx" / "dcap-qvl"
NOW = datetime(2025, 7, 1, tzinfo=UTC)
VERIFICATIONS = 13


def _setup() -> dict[str, Any]:
    data = (VECTORS / "tdx_quote").read_bytes()
    doc = (VECTORS / "tdx_quote_collateral.json").read_bytes()
    quote = parse_quote(data)
    scheme = TdxScheme()
    (request,) = scheme.collateral_requests(Evidence(MEDIA_TYPE, data))
    return {"data": data, "doc": doc, "quote": quote, "scheme": scheme, "request": request,
            "nonce": quote.body.report_data}


WARM = frozenset({"appraisal warm", "p256 verify", "dcap-qvl"})  # the others run with empty caches


def _steps(s: dict[str, Any]) -> dict[str, Callable[[], object]]:
    data, doc_bytes, nonce = s["data"], s["doc"], s["nonce"]
    request: CollateralRequest = s["request"]
    app = LocalAppraiser([s["scheme"]], ReferenceValueStore())
    evidence = Evidence(MEDIA_TYPE, data)
    found = {request: Collateral(request, doc_bytes, "bench")}
    quote = s["quote"]
    chain = validate_chain(quote.pck_chain, NOW, leaf_name=PCK_LEAF)
    pck = parse_pck_info(chain.leaf)
    key = quote.attestation_public_key()
    der_sig = encode_dss_signature(int.from_bytes(quote.signature[:32], "big"),
                                   int.from_bytes(quote.signature[32:], "big"))
    algorithm = ec.ECDSA(hashes.SHA256())

    def collateral() -> tuple[TcbInfo, QeIdentity]:
        doc = parse_collateral(doc_bytes)
        assert doc.root_ca_crl and doc.pck_crl and doc.tcb_info and doc.tcb_info_signature
        assert doc.tcb_info_issuer_chain and doc.qe_identity and doc.qe_identity_signature
        assert doc.qe_identity_issuer_chain
        root_crl = accept_crl(doc.root_ca_crl, chain.certs[2], NOW)
        pck_crl = accept_crl(doc.pck_crl, chain.certs[1], NOW)
        root_crl.check(chain.certs[1])
        pck_crl.check(chain.leaf)
        info = verify_tcb_info(doc.tcb_info, doc.tcb_info_signature, doc.tcb_info_issuer_chain, NOW,
                               root_crl=root_crl)
        ident = verify_qe_identity(doc.qe_identity, doc.qe_identity_signature, doc.qe_identity_issuer_chain, NOW,
                                   root_crl=root_crl)
        return info, ident

    info, ident = collateral()
    steps: dict[str, Callable[[], object]] = {
        "appraisal cold": lambda: app.appraise(evidence, nonce, NOW, collateral=found),
        "appraisal warm": lambda: app.appraise(evidence, nonce, NOW, collateral=found),
        "no collateral cold": lambda: app.appraise(evidence, nonce, NOW),
        "parse": lambda: parse_quote(data),
        "chain": lambda: validate_chain(quote.pck_chain, NOW, leaf_name=PCK_LEAF),
        "quote sigs": lambda: verify_quote(quote, chain.leaf_key),
        "collateral": collateral,
        "tcb": lambda: evaluate_tcb(info, pck, quote.body, ident, quote.qe_report),
        "p256 verify": lambda: key.verify(der_sig, quote.signed, algorithm),
    }
    status = app.appraise(evidence, nonce, NOW, collateral=found).submods["INTEL_TDX"]
    ours = status.extensions["ear_veraison_policy_claims"]["tcb_status"]
    try:
        import dcap_qvl  # type: ignore[import-not-found]  # optional: not a project dependency
    except ImportError:
        s["dcap_qvl"] = None
    else:
        qvl_collateral = dcap_qvl.QuoteCollateralV3.from_json(doc_bytes.decode())
        now = int(NOW.timestamp())
        theirs = dcap_qvl.verify(data, qvl_collateral, now).status
        s["dcap_qvl"] = {"version": metadata.version("dcap-qvl"), "status": theirs, "agrees": theirs == ours}
        steps["dcap-qvl"] = lambda: dcap_qvl.verify(data, qvl_collateral, now)
    s["status"] = ours
    return steps


def run(rounds: int) -> dict[str, Any]:
    s = _setup()
    steps = _steps(s)
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
    unit = med["p256 verify"]
    return {
        "rounds": rounds, "tcb_status": s["status"], "dcap_qvl": s["dcap_qvl"],
        "median_us": med,
        "ratio_to_p256_verify": {name: m / unit for name, m in med.items()},
        "cold_over_floor": med["appraisal cold"] / (VERIFICATIONS * unit),
        "appraisals_per_second_one_core": {"cold": 1e6 / med["appraisal cold"], "warm": 1e6 / med["appraisal warm"]},
        "machine": {"python": sys.version.split()[0], "platform": platform.platform(),
                    "processor": platform.processor() or platform.machine(),
                    "cryptography": metadata.version("cryptography")},
    }


def report(r: dict[str, Any]) -> str:
    lines = [f"TDX appraisal, dcap-qvl v4 quote + complete collateral at {NOW:%Y-%m-%d} "
             f"({r['rounds']} rounds, medians of CPU time)", ""]
    lines.append(f"{'step':<20}{'µs':>10}{'x p256 verify':>16}")
    for name, us in r["median_us"].items():
        lines.append(f"{name:<20}{us:>10.1f}{r['ratio_to_p256_verify'][name]:>16.1f}")
    rate = r["appraisals_per_second_one_core"]
    lines += ["", f"floor: {VERIFICATIONS} x p256 verify = {VERIFICATIONS * r['median_us']['p256 verify']:.1f} µs; "
              f"cold appraisal / floor = {r['cold_over_floor']:.2f}",
              f"throughput on one core: {rate['cold']:.0f} appraisals/s cold, {rate['warm']:.0f} warm "
              f"(tcb_status {r['tcb_status']})"]
    q = r["dcap_qvl"]
    lines.append(f"dcap-qvl {q['version']}: status {q['status']}, agrees: {q['agrees']}" if q else
                 "dcap-qvl: not installed (pip install dcap-qvl to compare)")
    lines.append(f"machine: {r['machine']}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    p.add_argument("--rounds", "-n", type=int, default=300)
    p.add_argument("--quick", action="store_true", help="20 rounds (smoke)")
    p.add_argument("--json", help="also write the figures to this file")
    args = p.parse_args(argv)
    result = run(20 if args.quick else args.rounds)
    print(report(result))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1))
    if result["dcap_qvl"] is not None and not result["dcap_qvl"]["agrees"]:
        print("dcap-qvl disagrees", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
