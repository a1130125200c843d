"""verifiers.local.evidence.sevsnp: parse_report (binary, hex, base64) and the report's derived views."""

from __future__ import annotations

from fuzz._harness import read_vectors, typed_errors_only
from verifiers.local.evidence import sevsnp


def seeds() -> list[bytes]:
    out = read_vectors("sev-snp/go-sev-guest/attestation.bin")
    return out + [r.hex().encode() for r in out] + [__import__("base64").b64encode(r) for r in out]


def _run(data: bytes) -> None:
    report = sevsnp.parse_report(sevsnp.normalize_report(data))
    _ = report.signed_bytes, report.product_from_cpuid, report.chip_id_turin_like
    report.to_json()
    product = report.product_from_cpuid
    report.to_json(product)
    sevsnp.sniff(data)


TestOneInput = typed_errors_only(_run)
