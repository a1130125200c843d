"""verifiers.local.evidence.psa: decode_psa, verify_psa under a fixed key, the PSA sniffer, JSON claims."""

from __future__ import annotations

from federation import cbor, cose
from fuzz._harness import NOW, fixed_anchor, fixed_key, read_vectors, typed_errors_only
from verifiers.local.evidence import psa


def seeds() -> list[bytes]:
    out = read_vectors("veraison-services/psa/evidence/*.cose", "veraison-psatoken/**/*.bin")
    for doc in read_vectors("veraison-services/psa/claims/*.json"):
        out.append(b"j" + doc)
        try:
            out.append(cose.sign1(cbor.dumps(psa.json_to_cbor_claims(doc)), fixed_key()))
        except Exception:
            continue
    return out


def _run(data: bytes) -> None:
    if data[:1] == b"j":  # JSON claims, as `ratsfed` reads them for tests and templates
        psa.json_to_cbor_claims(data[1:])
        return
    psa.sniff(data)
    psa.verify_psa(data, fixed_anchor(), NOW)


TestOneInput = typed_errors_only(_run)
