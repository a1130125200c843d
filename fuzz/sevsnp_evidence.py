"""verifiers.local.evidence.sevsnp: decode_evidence in every form (report, TSM CBOR/JSON, CMW collection)."""

from __future__ import annotations

import base64
import json

from federation import cbor
from fuzz._harness import attempt, read_vectors
from verifiers.local.evidence import sevsnp

FORMS: tuple[sevsnp.Form, ...] = ("report", "tsm-cbor", "tsm-json", "cmw")


def seeds() -> list[bytes]:
    out: list[bytes] = []
    reports = read_vectors("sev-snp/go-sev-guest/attestation.bin")
    certs = read_vectors("sev-snp/go-sev-guest/vcek.testcer")
    for tsm in read_vectors("sev-snp/veraison/*.cbor"):
        out.append(tsm)
        try:
            doc = cbor.loads(tsm)
            out.append(json.dumps({k: base64.urlsafe_b64encode(v).decode() if isinstance(v, bytes) else v
                                   for k, v in doc.items()}).encode())
        except Exception:
            continue
    for report in reports:
        out.append(report)
        table = sevsnp.encode_cert_table({"vcek": certs[0]}) if certs else b""
        out.append(cbor.dumps({"provider": "sev_guest", "outblob": report, "auxblob": table}))
    return out


def TestOneInput(data: bytes) -> None:
    attempt(*[lambda form=form: sevsnp.decode_evidence(data, form) for form in FORMS],
            lambda: sevsnp.sniff(data))
