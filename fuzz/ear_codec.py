"""federation.ear.codec: from_json_claims and from_cbor_claims on decoded (unsigned) claim sets."""

from __future__ import annotations

from federation import cbor
from federation.ear.codec import from_cbor_claims, from_json_claims, to_cbor_claims, to_json_claims
from federation.ear.model import Spelling
from federation.ear.token import decode_json
from fuzz._harness import read_vectors, typed_errors_only


def seeds() -> list[bytes]:
    out: list[bytes] = []
    for doc in read_vectors("veraison-ear/ear-claims*.json", "vendor-results/trustee/ear-claims-example.json"):
        out.append(b"j" + doc)
        try:
            ear = from_json_claims(decode_json(doc))
        except Exception:
            continue
        for spelling in Spelling:
            out.append(b"c" + cbor.dumps(to_cbor_claims(ear, spelling)))
    return out


def _run(data: bytes) -> None:
    # The first byte picks the form: "c" CBOR claims, anything else JSON claims.
    if data[:1] == b"c":
        ear = from_cbor_claims(cbor.loads(data[1:]))
        cbor.dumps(to_cbor_claims(ear))
    else:
        ear = from_json_claims(decode_json(data[1:]))
        to_json_claims(ear)


TestOneInput = typed_errors_only(_run)
