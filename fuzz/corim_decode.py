"""verifiers.local.corim: decode_corim, decode_signed_corim, and verify_corim under a fixed anchor."""

from __future__ import annotations

from functools import partial

from fuzz._harness import NOW, attempt, fixed_anchor, read_vectors
from verifiers.local.corim.cryptokeys import public_key
from verifiers.local.corim.decode import SignedCorim, decode, decode_corim, decode_signed_corim
from verifiers.local.corim.model import Comid
from verifiers.local.corim.signed import verify_corim


def seeds() -> list[bytes]:
    return read_vectors("veraison-corim/**/*.cbor", "veraison-services/psa/endorsements/*.cbor",
                        "veraison-services/legacy/*.cbor")


def _keys(data: bytes) -> None:
    """The key material of identity and attest-key triples, as the PSA/CCA/EAT schemes read it."""
    decoded = decode(data)
    for tag in (decoded.corim if isinstance(decoded, SignedCorim) else decoded).tags:
        if isinstance(tag, Comid):
            for triple in (*tag.triples.identity, *tag.triples.attest_key):
                attempt(*(partial(public_key, key) for key in triple.keys))


def TestOneInput(data: bytes) -> None:
    attempt(lambda: _keys(data),
            lambda: decode_corim(data),
            lambda: decode_signed_corim(data),
            lambda: verify_corim(data, [fixed_anchor()], NOW, trust_unsigned=True))
