"""verifiers.local.corim.template: CoRIM and CoMID templates (JSON), as ``ratsfed corim`` reads them."""

from __future__ import annotations

import json

from federation.ear.token import decode_json
from fuzz._harness import read_vectors, typed_errors_only
from verifiers.local.corim.encode import encode_corim
from verifiers.local.corim.template import (
    comid_from_template,
    comid_to_template,
    corim_from_template,
    corim_to_template,
)


def seeds() -> list[bytes]:
    comids = read_vectors("veraison-services/psa/endorsements/templates/comid-*.json")
    out = [b"m" + c for c in comids] + [b"l" + c for c in comids]
    for corim in read_vectors("veraison-services/psa/endorsements/templates/corim-*.json"):
        out.append(b"c" + corim)
        try:
            doc = json.loads(corim)
            doc["comids"] = [json.loads(c) for c in comids]
            out.append(b"c" + json.dumps(doc).encode())
        except ValueError:
            continue
    return out


def _run(data: bytes) -> None:
    # The first byte picks the document: "c" a CoRIM template, "l" a legacy CoMID, else a CoMID.
    doc = decode_json(data[1:])
    if data[:1] == b"c":
        corim = corim_from_template(doc)
        corim_to_template(corim)
        encode_corim(corim)
    else:
        comid_to_template(comid_from_template(doc, legacy=data[:1] == b"l"))


TestOneInput = typed_errors_only(_run)
