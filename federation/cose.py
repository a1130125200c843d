"""COSE_Sign1 (RFC 9052 §4.2) on our bounded CBOR decoder and ``cryptography``.

Why not pycose on this path: its ES* algorithms run on pure-Python ``ecdsa`` (about 25x slower,
and not side-channel safe when signing: CVE-2024-23342) and it cannot decode tagged messages with
cbor2 >= 6 (pycose issue #141). pycose stays in the tests as an independent implementation.

Rules enforced here: the algorithm is taken from the *protected* header only and must be allowed
for the key; ``crit`` is refused (we understand no critical extension); detached payloads need
the caller to supply the payload; headers naming keys by value (COSE_Key) or by URL (``x5u``) are
ignored; header labels are integers or text and ``kid`` a byte (or text) string, as RFC 9052
says, so a tagged or odd label cannot shadow a real one. Attacks and their tests:
``docs/attacks.md``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from . import cbor
from .algorithms import Algorithm, by_cose_id, by_name, raw_sign, raw_verify
from .errors import BadSignatureError, MalformedError, VerificationError
from .keys import SigningKey, TrustAnchor, VerificationKey

__all__ = ["COSE_SIGN1_TAG", "Sign1", "decode_sign1", "sign1", "verify_sign1"]

COSE_SIGN1_TAG = 18
H_ALG, H_CRIT, H_CTY, H_KID, H_X5CHAIN = 1, 2, 3, 4, 33
_MAX_HEADER = 1 << 16  # bytes of protected header


@dataclass(frozen=True, slots=True)
class Sign1:
    """A decoded (not yet verified) COSE_Sign1."""

    protected_raw: bytes
    protected: Mapping[Any, Any]
    unprotected: Mapping[Any, Any]
    payload: bytes | None
    signature: bytes
    algorithm: Algorithm

    @property
    def kid(self) -> str | None:
        kid = self.protected.get(H_KID, self.unprotected.get(H_KID))  # bstr or tstr (decode_sign1)
        if isinstance(kid, bytes):
            return kid.decode("utf-8", "replace")
        return kid if isinstance(kid, str) else None

    @property
    def x5chain(self) -> list[bytes] | None:
        chain = self.protected.get(H_X5CHAIN, self.unprotected.get(H_X5CHAIN))
        if chain is None:
            return None
        if isinstance(chain, bytes):
            return [chain]
        if isinstance(chain, list) and all(isinstance(c, bytes) for c in chain):
            return chain
        raise MalformedError("cose: x5chain must be a bstr or an array of bstr")

    def to_be_signed(self, external_aad: bytes = b"", payload: bytes | None = None) -> bytes:
        body = payload if payload is not None else self.payload
        if body is None:
            raise MalformedError("cose: detached payload not supplied")
        return cbor.dumps(["Signature1", self.protected_raw, external_aad, body])


def decode_sign1(data: bytes | Any, *, max_size: int = cbor.DEFAULT_MAX_SIZE, require_tag: bool = False
                 ) -> Sign1:
    """Parse a COSE_Sign1 (tagged or not) from bytes or an already-decoded CBOR item."""
    item = cbor.loads(bytes(data), max_size=max_size) if isinstance(data, bytes | bytearray) else data
    if isinstance(item, cbor.CBORTag):
        if item.tag != COSE_SIGN1_TAG:
            raise MalformedError(f"cose: tag {item.tag} is not COSE_Sign1")
        item = item.value
    elif require_tag:
        raise MalformedError("cose: COSE_Sign1 tag (18) required")
    if not isinstance(item, list | tuple) or len(item) != 4:
        raise MalformedError("cose: COSE_Sign1 must be an array of 4")
    protected_raw, unprotected, payload, signature = item
    if not isinstance(protected_raw, bytes) or not isinstance(unprotected, Mapping):
        raise MalformedError("cose: bad header types")
    if not isinstance(signature, bytes) or not (payload is None or isinstance(payload, bytes)):
        raise MalformedError("cose: bad payload or signature type")
    protected = cbor.loads(protected_raw, max_size=_MAX_HEADER, max_depth=4) if protected_raw else {}
    if not isinstance(protected, Mapping):
        raise MalformedError("cose: protected header is not a map")
    if not all(_is_label(k) for k in protected) or not all(_is_label(k) for k in unprotected):
        raise MalformedError("cose: header labels must be integers or text strings")
    if H_CRIT in protected or H_CRIT in unprotected:
        raise VerificationError("cose: critical header parameters are not supported")
    if H_ALG not in protected:
        raise MalformedError("cose: algorithm must be in the protected header")
    if H_ALG in unprotected:
        raise MalformedError("cose: algorithm must not be repeated in the unprotected header")
    overlap = set(protected) & set(unprotected)
    if overlap:
        raise MalformedError("cose: a header label is both protected and unprotected")
    if not isinstance(protected.get(H_KID, unprotected.get(H_KID, b"")), bytes | str):
        raise MalformedError("cose: kid must be a byte string")
    return Sign1(protected_raw, protected, unprotected, payload, signature, by_cose_id(protected[H_ALG]))


def _is_label(key: Any) -> bool:
    """RFC 9052 §1.5: ``label = int / tstr``."""
    return isinstance(key, int | str) and not isinstance(key, bool)


def verify_sign1(
    data: bytes | Any,
    anchor: TrustAnchor,
    now: datetime,
    *,
    external_aad: bytes = b"",
    detached_payload: bytes | None = None,
    max_size: int = cbor.DEFAULT_MAX_SIZE,
) -> tuple[Sign1, VerificationKey]:
    """Verify a COSE_Sign1 under *anchor*; return the message and the key that verified it."""
    msg = decode_sign1(data, max_size=max_size)
    if msg.payload is not None and detached_payload is not None:
        raise MalformedError("cose: payload is attached; a detached payload was also given")
    tbs = msg.to_be_signed(external_aad, detached_payload)
    candidates = anchor.candidates(msg.algorithm.name, msg.kid, msg.x5chain, now)
    for key in candidates:
        try:
            raw_verify(msg.algorithm, key.key, tbs, msg.signature)
        except BadSignatureError:
            continue
        return msg, key
    raise BadSignatureError("cose: signature does not verify under the configured key(s)")


def sign1(
    payload: bytes,
    key: SigningKey,
    *,
    tagged: bool = True,
    content_type: str | int | None = None,
    external_aad: bytes = b"",
    extra_protected: Mapping[int, Any] | None = None,
) -> bytes:
    """Sign *payload* as a COSE_Sign1; alg and kid go in the protected header."""
    alg = by_name(key.algorithm)
    protected: dict[int, Any] = {H_ALG: alg.cose_id, H_KID: key.kid.encode()}
    if content_type is not None:
        protected[H_CTY] = content_type
    if extra_protected:
        protected.update(extra_protected)
    protected_raw = cbor.dumps(protected)
    tbs = cbor.dumps(["Signature1", protected_raw, external_aad, payload])
    msg: Any = [protected_raw, {}, payload, raw_sign(alg, key.key, tbs)]
    return cbor.dumps(cbor.CBORTag(COSE_SIGN1_TAG, msg) if tagged else msg)
