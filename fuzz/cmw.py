"""verifiers.local.evidence.cmw: CMW records, tags and collections (CBOR and JSON), and their re-encoding."""

from __future__ import annotations

from fuzz._harness import read_vectors, typed_errors_only
from verifiers.local.evidence import cmw


def seeds() -> list[bytes]:
    return read_vectors("veraison-cmw/*.cbor", "veraison-cmw/*.json", "ietf-rats-msg-wrap/*.json",
                        "sev-snp/veraison/*.cbor")


def _run(data: bytes) -> None:
    cmw.sniff(data)
    item = cmw.decode(data)
    for _path, record in cmw.leaves(item):
        _ = record.media_type, record.content_format
    again = cmw.decode(cmw.encode_cbor(item))
    assert cmw.encode_cbor(again) == cmw.encode_cbor(item), "CBOR re-encoding is not stable"


TestOneInput = typed_errors_only(_run)
