"""federation.cose: decode_sign1, and verify_sign1 under a fixed anchor (bad signatures are typed)."""

from __future__ import annotations

from federation import cose
from fuzz._harness import NOW, fixed_anchor, fixed_key, read_vectors, typed_errors_only


def seeds() -> list[bytes]:
    key = fixed_key()
    return [*read_vectors("veraison-services/psa/evidence/*.cose", "veraison-psatoken/**/*.bin",
                          "veraison-corim/corim/signed-*.cbor"),
            cose.sign1(b"payload", key), cose.sign1(b"", key, tagged=False),
            cose.sign1(b"\xa1\x01\x02", key, content_type="application/cbor", external_aad=b"aad")]


def _run(data: bytes) -> None:
    msg = cose.decode_sign1(data)
    _ = msg.kid, msg.x5chain
    cose.verify_sign1(data, fixed_anchor(), NOW)
    cose.verify_sign1(data, fixed_anchor(), NOW, external_aad=b"aad", detached_payload=None)


TestOneInput = typed_errors_only(_run)
