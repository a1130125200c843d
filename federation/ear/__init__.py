"""EAR (draft-ietf-rats-ear): the typed model, claim codecs and signed-token codecs."""

from .codec import from_cbor_claims, from_json_claims, nonce_matches, nonce_text, to_cbor_claims, to_json_claims
from .model import PROFILES, Appraisal, Ear, Spelling, VerifierId
from .token import VerifiedEar, decode_json, detect_format, encode_ear, peek_claims, verify_ear

__all__ = [
    "PROFILES",
    "Appraisal",
    "Ear",
    "Spelling",
    "VerifiedEar",
    "VerifierId",
    "decode_json",
    "detect_format",
    "encode_ear",
    "from_cbor_claims",
    "from_json_claims",
    "nonce_matches",
    "nonce_text",
    "peek_claims",
    "to_cbor_claims",
    "to_json_claims",
    "verify_ear",
]
