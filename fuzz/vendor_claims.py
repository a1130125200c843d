"""verifiers.vendor.map_claims (ita, maa, google, trustee) on arbitrary JSON-like claims sets.

Byte 0 picks the relying party's expectations (the backends' ``expect``), byte 1 how the claims
set is made:

* ``tree``: the rest is a compact tree encoding (:class:`Choices`, :func:`encode`): every byte
  string decodes to one bounded JSON-like value (objects with text keys, arrays, text, integers of
  any size, finite floats, booleans, null; nesting up to :data:`MAX_NEST`, past the mappers' own
  bound), and the claim names and values the services' tables read are one-byte references
  (:data:`VOCAB`), so a mutation swaps a claim or a value instead of breaking a syntax;
* ``edits``: a real-shaped claims set (the skeletons below, as tests/test_vendor_tokens.py builds
  them, and the vendor vectors' claims) changed by up to eight :func:`edit`.

Each claims set is mapped for every kind, and the EAR it maps to is encoded as the federation
encodes votes. :mod:`fuzz.vendor_tokens` reuses the encoding, the edits, the skeletons and the
session values.
"""

from __future__ import annotations

import base64
import json
import math
import struct
from collections.abc import Mapping, Sequence
from functools import cache
from types import MappingProxyType
from typing import Any, TypeVar

from federation import cbor
from federation.ar4si import CLAIMS
from federation.binding import Binding
from federation.ear.codec import EXTENSIONS, to_cbor_claims, to_json_claims
from federation.ear.token import decode_json
from fuzz._harness import NOW, attempt, read_vectors
from verifiers import vendor
from verifiers.vendor import google, ita, maa

T = TypeVar("T")
KINDS: tuple[str, ...] = vendor.KINDS
NOW_S = int(NOW.timestamp())
MAX_NEST = 40  # deeper than the mappers' MAX_DEPTH (32): that refusal must be reached
MAX_NODES = 4096
EMPTY: Mapping[str, Any] = MappingProxyType({})

# -- the session values tokens are bound to -------------------------------------------------------

NONCE = b"fuzz-session-nonce-0123456789abc"  # 32 bytes
VERIFIER_NONCE = {"val": base64.b64encode(b"V" * 88).decode(), "iat": base64.b64encode(
    b"2025-06-01 00:00:00 +0000 UTC").decode(), "signature": base64.b64encode(b"S" * 384).decode()}
ITA_CHALLENGE = json.dumps(VERIFIER_NONCE, sort_keys=True, separators=(",", ":")).encode()
ITA_BINDING = Binding(NONCE, {"ita": ITA_CHALLENGE}, prefix=base64.b64decode(VERIFIER_NONCE["val"])
                      + base64.b64decode(VERIFIER_NONCE["iat"]))
PLAIN_BINDING = Binding(NONCE)
BINDINGS: dict[str, Binding] = {"ita": ITA_BINDING, "maa": PLAIN_BINDING, "google": PLAIN_BINDING,
                                "trustee": PLAIN_BINDING}

ITA_ISSUER = "Intel Trust Authority"
MAA_ISSUER = "https://fuzz.weu.attest.azure.net"
TRUSTEE_ISSUER = "CoCo-Attestation-Service"
AUDIENCE = "https://rp.example"
DIGEST = "sha256:" + "cc" * 32

# The relying party's expectations, as the backends configure them (verifiers/remote/*.py).
EXPECTS: dict[str, tuple[Mapping[str, Any], ...]] = {
    "ita": (EMPTY,
            {"name": "ita", "issuer": ITA_ISSUER, "algorithms": ("PS384",), "policy_ids": ("p1",),
             "policy_must_match": False},
            {"name": "ita", "issuer": ITA_ISSUER, "algorithms": ("RS256",), "policy_ids": ("p1", "p2"),
             "policy_must_match": True},
            {"verifier_nonce": VERIFIER_NONCE}),
    "maa": (EMPTY, {"name": "maa", "issuer": MAA_ISSUER, "policy_hash": "hash"}),
    "google": (EMPTY,
               {"name": "google", "issuer": google.ISSUER, "audience": AUDIENCE, "signature_type": "PKI",
                "image_digests": (DIGEST,)},
               {"name": "google", "issuer": google.ISSUER, "audience": AUDIENCE, "image_digests": ()}),
    "trustee": (EMPTY, {"name": "trustee", "issuer": TRUSTEE_ISSUER, "policy_ids": ("default",)}),
}


def expectation(kind: str, selector: int) -> Mapping[str, Any]:
    options = EXPECTS[kind]
    return options[selector % len(options)]


# -- real-shaped claims (as tests/test_vendor_tokens.py builds them) ------------------------------


def _skeletons() -> dict[str, list[dict[str, Any]]]:
    tdx_ita = {
        "iss": ITA_ISSUER, "iat": NOW_S, "nbf": NOW_S, "exp": NOW_S + 300, "jti": "j", "ver": "1.0.0",
        "attester_type": "TDX", "attester_tcb_status": "UpToDate", "attester_tcb_date": "2025-01-01T00:00:00Z",
        "dbgstat": "disabled", "tdx_td_attributes_debug": False, "tdx_is_debuggable": False,
        "tdx_mrtd": "aa" * 48, "tdx_report_data": ITA_BINDING.report_data.hex(), "verifier_nonce": VERIFIER_NONCE,
        "attester_held_data": base64.b64encode(ITA_BINDING.runtime_data).decode(),
        "policy_ids_matched": [{"id": "p1", "version": "v1"}], "policy_ids_unmatched": None,
    }
    nested = {k: v for k, v in tdx_ita.items() if not k.startswith("tdx_") and k != "attester_type"}
    nested["tdx"] = {k: v for k, v in tdx_ita.items() if k.startswith("tdx_")}
    sgx_ita = {k: v for k, v in tdx_ita.items() if not k.startswith("tdx_")}
    sgx_ita.update({"attester_type": "SGX", "attester_tcb_status": "OutOfDate", "sgx_mrenclave": "83" * 32,
                    "sgx_mrsigner": "ab" * 32, "sgx_isvprodid": 0, "sgx_isvsvn": 1, "sgx_is_debuggable": False,
                    "sgx_report_data": NONCE.hex(), "policy_ids_unmatched": [{"id": "p2", "version": "v1"}]})
    snp_maa = {
        "iss": MAA_ISSUER, "iat": NOW_S, "nbf": NOW_S, "exp": NOW_S + 28800, "jti": "j",
        "x-ms-attestation-type": "sevsnpvm", "x-ms-compliance-status": "azure-compliant-cvm",
        "x-ms-sevsnpvm-is-debuggable": False, "x-ms-sevsnpvm-launchmeasurement": "bb" * 48,
        "x-ms-sevsnpvm-reportdata": PLAIN_BINDING.report_data.hex(), "x-ms-policy-hash": "hash", "x-ms-ver": "1.0",
        "nonce": base64.urlsafe_b64encode(NONCE).decode().rstrip("="),
    }
    tdx_maa = {
        "iss": MAA_ISSUER, "iat": NOW_S, "nbf": NOW_S, "exp": NOW_S + 28800, "jti": "j",
        "x-ms-attestation-type": "tdxvm", "attester_tcb_status": "UpToDate", "dbgstat": "disabled",
        "eat_profile": "https://aka.ms/maa-eat-profile-tdxvm", "tdx_mrtd": "dd" * 48,
        "tdx_report_data": PLAIN_BINDING.report_data.hex(), "tdx_td_attributes_debug": False,
        "x-ms-policy-hash": "hash", "x-ms-ver": "1.0",
        "x-ms-runtime": {"client-payload": {"nonce": base64.b64encode(NONCE).decode()}},
    }
    azurevm = {
        "iss": MAA_ISSUER, "iat": NOW_S, "nbf": NOW_S, "exp": NOW_S + 28800, "jti": "j",
        "x-ms-attestation-type": "azurevm", "secureboot": True, "x-ms-azurevm-vmid": "vm",
        "x-ms-azurevm-kerneldebug-enabled": False, "x-ms-azurevm-bootdebug-enabled": False,
        "x-ms-azurevm-attested-pcrs": [0, 1, 2], "x-ms-policy-hash": "hash",
        "x-ms-isolation-tee": {k: v for k, v in snp_maa.items() if k.startswith("x-ms-") and k != "x-ms-policy-hash"},
    }
    goog = {
        "iss": google.ISSUER, "aud": AUDIENCE, "iat": NOW_S, "nbf": NOW_S, "exp": NOW_S + 3600,
        "sub": "https://www.googleapis.com/compute/v1/projects/p/zones/z/instances/i",
        "eat_nonce": [base64.urlsafe_b64encode(NONCE).decode().rstrip("=")], "hwmodel": "GCP_INTEL_TDX",
        "swname": "CONFIDENTIAL_SPACE", "dbgstat": "disabled-since-boot", "attester_tcb": ["INTEL"],
        "submods": {"confidential_space": {"support_attributes": ["LATEST", "STABLE", "USABLE"]},
                    "container": {"image_digest": DIGEST, "restart_policy": "Never"},
                    "gce": {"project_id": "p", "zone": "z"}},
        "google_service_accounts": ["sa@p.iam.gserviceaccount.com"],
    }
    trustee = {
        "eat_profile": "tag:github.com,2024:confidential-containers/Trustee", "iat": NOW_S, "exp": NOW_S + 300,
        "iss": TRUSTEE_ISSUER,
        "ear.verifier-id": {"developer": "https://confidentialcontainers.org", "build": "attestation-service 0.1.0"},
        "submods": {"cpu0": {
            "ear.status": "affirming",
            "ear.trustworthiness-vector": {"instance-identity": 2, "configuration": 2, "executables": 3,
                                           "hardware": 2, "runtime-opaque": 2},
            "ear.appraisal-policy-id": "default",
            "ear.veraison.annotated-evidence": {
                "report_data": PLAIN_BINDING.report_data.hex(),
                "tdx": {"quote": {"body": {"mr_td": "dd" * 48}}, "tcb_status": "UpToDate"}},
        }},
    }
    two = json.loads(json.dumps(trustee))  # a CPU and a GPU, with Veraison's policy claims
    two["submods"]["cpu0"]["ear.veraison.policy-claims"] = {"rule": "default", "tcb": "UpToDate"}
    two["submods"]["gpu0"] = {"ear.status": "warning", "ear_trustworthiness_vector": {"hardware": 32},
                              "ear.appraisal-policy-id": "default"}
    return {"ita": [tdx_ita, nested, sgx_ita], "maa": [snp_maa, tdx_maa, azurevm], "google": [goog],
            "trustee": [trustee, two]}


SKELETONS: dict[str, list[dict[str, Any]]] = _skeletons()


def vector_claims() -> list[dict[str, Any]]:
    """The claims of the vendor vectors: published claim samples, and the payloads of real tokens."""
    out: list[dict[str, Any]] = []
    for doc in read_vectors("vendor-results/*/*claims*.json"):
        try:
            value = decode_json(doc)
        except Exception:
            continue
        if isinstance(value, dict):
            out.append(value)
    for token in read_vectors("vendor-results/*/*.jwt"):
        try:
            payload = token.strip().split(b".")[1]
            value = decode_json(base64.urlsafe_b64decode(payload + b"=" * (-len(payload) % 4)))
        except Exception:
            continue
        if isinstance(value, dict):
            out.append(value)
    return out


# -- the tree encoding ----------------------------------------------------------------------------

_STATIC_VOCAB: tuple[str, ...] = (
    "", " ", "x", ".", "a.b", "..", "\x00", "\ud800", "\u00e9", "\U0001f600", "\u00b2", "true", "null", "0", "-1",
    "iss", "aud", "sub", "iat", "nbf", "exp", "jti", "ver", "nonce", "eat_nonce", "eat_profile", "submods",
    "tdx", "sgx", "TDX", "SGX", "attester_type", "attester_tcb_status", "attester_tcb_date", "attester_advisory_ids",
    "UpToDate", "Revoked", "OutOfDate", "SWHardeningNeeded", "ConfigurationNeeded",
    "ConfigurationAndSWHardeningNeeded", "OutOfDateConfigurationNeeded", "OUT_OF_DATE",
    "dbgstat", "enabled", "disabled", "disabled-since-boot",
    "policy_ids_matched", "policy_ids_unmatched", "id", "version", "p1", "p2", "default", "hash",
    "verifier_nonce", "val", "signature", *VERIFIER_NONCE.values(),
    "tdx_report_data", "sgx_report_data", "tdx_td_attributes_debug", "tdx_is_debuggable", "sgx_is_debuggable",
    "x-ms-attestation-type", "x-ms-isolation-tee", "azurevm", "sevsnpvm", "tdxvm", "x-ms-compliance-status",
    "azure-compliant-cvm", "x-ms-sevsnpvm-reportdata", "x-ms-sevsnpvm-is-debuggable", "x-ms-runtime",
    "client-payload", "x-ms-policy", "x-ms-attestation-draft-policy", "x-ms-policy-hash",
    "hwmodel", "GCP_AMD_SEV", "GCP_INTEL_TDX", "GCP_SHIELDED_VM", "confidential_space", "support_attributes",
    "STABLE", "LATEST", "USABLE", "container", "image_digest", "submods.container.image_digest", DIGEST,
    "ear.status", "affirming", "warning", "contraindicated", "none", "ear.trustworthiness-vector",
    "ear_trustworthiness_vector", "ear.appraisal-policy-id", "ear.veraison.annotated-evidence",
    "ear.veraison.policy-claims", "ear_veraison_policy_claims", "report_data", "ear.verifier-id", "developer",
    "build", "cpu0", "gpu0", "ear.raw-evidence", "ear.veraison.key-attestation",
    "tag:github.com,2023:veraison/ear", "tag:github.com,2024:confidential-containers/Trustee",
    ITA_ISSUER, MAA_ISSUER, google.ISSUER, TRUSTEE_ISSUER, AUDIENCE,
    ITA_BINDING.report_data.hex(), PLAIN_BINDING.report_data.hex(), NONCE.hex(), "00" * 64, "00" * 65, "zz",
    base64.urlsafe_b64encode(NONCE).decode().rstrip("="), base64.b64encode(NONCE).decode(), NONCE.decode(),
    # JOSE header members and algorithms (fuzz/vendor_tokens.py mutates headers with the same encoding)
    "alg", "typ", "kid", "x5c", "crit", "b64", "jwk", "jku", "x5u", "JWT", "PS384", "RS256", "ES256", "PS256",
    "RS384", "ES384", "EdDSA", "HS256", "none", "fuzz-rsa", "fuzz-ec",
)


def _table_vocab() -> list[str]:
    names: set[str] = set(CLAIMS) | set(EXTENSIONS) | {d for d, _ in EXTENSIONS.values()}
    for table in vendor.TABLES.values():
        for naming in table.naming:
            names.add(naming.claim)
            names.update(naming.values)
        for rule in table.rules:
            names.update(rule.when.reads())
            for attr in ("values", "parts"):
                names.update(v for v in getattr(rule.when, attr, ()) if isinstance(v, str))
            item = getattr(rule.when, "item", None)
            if isinstance(item, str):
                names.add(item)
    for module in (ita, maa, google):
        names.update(getattr(module, "_ANNOTATED", ()))
    names.update(maa.DRAFT_POLICY_CLAIMS)
    return sorted(names - set(_STATIC_VOCAB))


VOCAB: tuple[str, ...] = tuple(dict.fromkeys((*_STATIC_VOCAB, *_table_vocab())))
_VOCAB_INDEX = {s: i for i, s in enumerate(VOCAB)}
_WIDE = len(VOCAB) > 256  # a vocabulary reference takes two bytes then

INTS: tuple[int, ...] = (
    0, 1, -1, 2, 3, 32, 33, 96, 97, 127, 128, 255, 256, 65535, 2**31 - 1, 2**31, 2**32, 2**53, 2**63 - 1, 2**63,
    2**64, -(2**63), -(2**63) - 1, 10**20, 10**400, -(10**400), NOW_S, NOW_S - 3600, NOW_S + 3600, NOW_S + 10**9,
    NOW_S - 10**9, 253402300800,
)
_INT_INDEX = {v: i for i, v in enumerate(INTS)}

(NULL, TRUE, FALSE, INT8, INT_REF, INT64, FLOAT, STR_REF, STR, LIST, DICT, NOW_REL, HEX, BIGINT) = range(14)
TAGS = 14


def _text(raw: bytes) -> str:
    try:
        return raw.decode("utf-8", "surrogatepass")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


class Choices:
    """FuzzedDataProvider-style reads from the front of the input; past its end every read is 0.

    :meth:`value` decodes one JSON-like tree (bounded depth and size); :func:`encode` is its inverse
    for seeds.
    """

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0
        self.nodes = 0

    @property
    def done(self) -> bool:
        """The input is used up, or the tree has :data:`MAX_NODES` nodes: containers stop growing."""
        return self.pos >= len(self.data) or self.nodes > MAX_NODES

    def byte(self) -> int:
        if self.pos >= len(self.data):
            return 0
        self.pos += 1
        return self.data[self.pos - 1]

    def take(self, n: int) -> bytes:
        chunk = self.data[self.pos : self.pos + n]
        self.pos += len(chunk)
        return chunk

    def rest(self) -> bytes:
        return self.take(len(self.data))

    def index(self, n: int) -> int:
        return (self.byte() << 8 | self.byte() if n > 256 else self.byte()) % n

    def pick(self, options: Sequence[T]) -> T:
        return options[self.index(len(options))]

    def length(self) -> int:
        n = self.byte()
        return self.byte() << 8 | self.byte() if n == 255 else n

    def text(self) -> str:
        return _text(self.take(self.length()))

    def key(self) -> str:
        return self.text() if self.byte() & 1 else self.pick(VOCAB)

    def value(self, depth: int = 0) -> Any:
        self.nodes += 1
        tag = self.byte() % TAGS
        if tag in (LIST, DICT) and depth >= MAX_NEST:
            return None
        if tag == NULL:
            return None
        if tag in (TRUE, FALSE):
            return tag == TRUE
        if tag == INT8:
            return int.from_bytes(self.take(1), "big", signed=True)
        if tag == INT_REF:
            return self.pick(INTS)
        if tag == INT64:
            return int.from_bytes(self.take(8), "big", signed=True)
        if tag == FLOAT:
            raw = self.take(8).ljust(8, b"\0")
            f: float = struct.unpack(">d", raw)[0]
            return f if math.isfinite(f) else 0.5  # JSON has no NaN or infinities (decode_json refuses them)
        if tag == STR_REF:
            return self.pick(VOCAB)
        if tag == STR:
            return self.text()
        if tag == LIST:
            items: list[Any] = []
            for _ in range(self.byte()):
                if self.done:
                    break
                items.append(self.value(depth + 1))
            return items
        if tag == DICT:
            out: dict[str, Any] = {}
            for _ in range(self.byte()):
                if self.done:
                    break
                key = self.key()
                out[key] = self.value(depth + 1)
            return out
        if tag == NOW_REL:
            return NOW_S + int.from_bytes(self.take(2), "big", signed=True)
        if tag == HEX:
            return self.take(self.byte() % 80).hex()
        return int.from_bytes(self.take(self.byte() % 64), "big", signed=True)  # BIGINT


def _length(n: int) -> bytes:
    return bytes([n]) if n < 255 else bytes([255, n >> 8 & 0xFF, n & 0xFF])


def _ref(index: int) -> bytes:
    return index.to_bytes(2 if _WIDE else 1, "big")


def encode_text(s: str) -> bytes:
    raw = s.encode("utf-8", "surrogatepass")[:0xFFFF]
    return _length(len(raw)) + raw


def encode_key(s: str) -> bytes:
    return b"\0" + _ref(_VOCAB_INDEX[s]) if s in _VOCAB_INDEX else b"\1" + encode_text(s)


def encode(value: Any) -> bytes:
    """The bytes :meth:`Choices.value` decodes to *value* (lists and objects cut to 255 members)."""
    if value is None:
        return bytes([NULL])
    if value is True or value is False:
        return bytes([TRUE if value else FALSE])
    if isinstance(value, int):
        if value in _INT_INDEX:
            return bytes([INT_REF, _INT_INDEX[value]])
        if -128 <= value < 128:
            return bytes([INT8]) + value.to_bytes(1, "big", signed=True)
        if -32768 <= value - NOW_S < 32768:
            return bytes([NOW_REL]) + (value - NOW_S).to_bytes(2, "big", signed=True)
        if -(2**63) <= value < 2**63:
            return bytes([INT64]) + value.to_bytes(8, "big", signed=True)
        size = min(63, (value.bit_length() + 8) // 8)
        return bytes([BIGINT, size]) + (value % (1 << (8 * size))).to_bytes(size, "big")
    if isinstance(value, float):
        return bytes([FLOAT]) + struct.pack(">d", value)
    if isinstance(value, str):
        return bytes([STR_REF]) + _ref(_VOCAB_INDEX[value]) if value in _VOCAB_INDEX else bytes([STR]) + encode_text(
            value)
    if isinstance(value, list | tuple):
        items = list(value)[:255]
        return bytes([LIST, len(items)]) + b"".join(encode(v) for v in items)
    if isinstance(value, Mapping):
        pairs = list(value.items())[:255]
        return bytes([DICT, len(pairs)]) + b"".join(encode_key(str(k)) + encode(v) for k, v in pairs)
    return encode(str(value))


# -- edits of a real-shaped claims set -----------------------------------------------------------

SET, SET_TOO, DELETE, COPY = range(4)  # the actions of an edit: half of them set a member
MAX_EDITS = 8
CONFUSERS: tuple[Any, ...] = (None, True, 0, -1, 10**400, 1.5, "", "x", [], [None], [[]], [{}], {}, {"": None})


def _child(c: Choices, node: Any) -> Any:
    k = c.byte()
    if isinstance(node, dict) and node:
        return node[sorted(node)[k % len(node)]]
    if isinstance(node, list) and node:
        return node[k % len(node)]
    return None


def edit(c: Choices, *docs: dict[str, Any]) -> None:
    """One edit of one of *docs*: the op byte picks the document (bit 7: the second), how far down
    to go (bits 2-3: that many members picked by position) and the action (bits 0-1: set a member to
    a decoded value, delete it, or copy another member onto it); the next byte picks the member by
    position (below 128) or else by a name decoded after it."""
    op = c.byte()
    node: Any = docs[-1] if op & 0x80 else docs[0]
    for _ in range(op >> 2 & 3):
        child = _child(c, node)
        if not isinstance(child, dict | list):
            break
        node = child
    action = op & 3
    k = c.byte()
    if isinstance(node, dict):
        keys = sorted(node)
        key = keys[k % len(keys)] if k < 128 and keys else c.key()
        if action == DELETE:
            node.pop(key, None)
        elif action == COPY and keys:
            node[key] = node[c.pick(keys)]
        else:
            node[key] = c.value()
    elif isinstance(node, list):
        if action == DELETE and node:
            del node[k % len(node)]
        elif node and k < 128:
            node[k % len(node)] = c.value()
        else:
            node.append(c.value())


def encode_edit(action: int, key: str, value: Any = None, *, second: bool = False) -> bytes:
    """The bytes of an :func:`edit` of a top-level member named *key* (set or delete)."""
    if action not in (SET, SET_TOO, DELETE):
        raise ValueError("only set and delete edits are encoded")
    out = bytes([(0x80 if second else 0) | action, 0xFF]) + encode_key(key)
    return out + (encode(value) if action != DELETE else b"")


def member_paths(doc: Any, limit: int = 4) -> list[tuple[int, ...]]:
    """Every member of *doc* down to *limit* levels, as positions (in sorted keys, or indexes)."""
    out: list[tuple[int, ...]] = []
    stack: list[tuple[Any, tuple[int, ...]]] = [(doc, ())]
    while stack:
        node, prefix = stack.pop()
        if len(prefix) >= limit:
            continue
        children = [node[k] for k in sorted(node)] if isinstance(node, dict) else node if isinstance(
            node, list) else []
        for i, child in enumerate(children[:128]):
            out.append((*prefix, i))
            stack.append((child, (*prefix, i)))
    return sorted(out)


def encode_path_edit(path: tuple[int, ...], value: Any, *, second: bool = False) -> bytes:
    """The bytes of an :func:`edit` setting the member at *path* (from :func:`member_paths`)."""
    return bytes([(0x80 if second else 0) | SET | (len(path) - 1) << 2, *path]) + encode(value)


@cache
def _bases() -> tuple[str, ...]:
    """Every real-shaped claims set, as JSON (a fresh copy per input is one json.loads)."""
    docs = [claims for kind in KINDS for claims in SKELETONS[kind]] + vector_claims()
    return tuple(json.dumps(d) for d in docs)


# -- the target -----------------------------------------------------------------------------------

MODES = ("tree", "edits")
SEED_EDITS = 40  # seeds per claims set, each one member set to a value of another type


def seeds() -> list[bytes]:
    out: list[bytes] = []
    for kind, skeletons in SKELETONS.items():
        for claims in skeletons:
            for selector in range(len(EXPECTS[kind])):
                out.append(bytes([selector, MODES.index("tree")]) + encode(claims))
    for claims in vector_claims():
        out.append(bytes([0, MODES.index("tree")]) + encode(claims))
    for index, base in enumerate(_bases()):
        out.append(bytes([0, MODES.index("edits"), index, 0]))
        for n, path in enumerate(member_paths(json.loads(base))[:SEED_EDITS]):  # a member of another type
            out.append(bytes([n, MODES.index("edits"), index, 1]) + encode_path_edit(
                path, CONFUSERS[n % len(CONFUSERS)]))
    return out


def claims_of(data: bytes) -> tuple[int, dict[str, Any]]:
    """(selector of the expectations, claims set) for an input."""
    c = Choices(data)
    selector = c.byte()
    if MODES[c.byte() % len(MODES)] == "edits":
        claims = json.loads(c.pick(_bases()))
        for _ in range(c.byte() % (MAX_EDITS + 1)):
            edit(c, claims)
        return selector, claims
    value = c.value()
    return selector, value if isinstance(value, dict) else {"iat": NOW_S, "value": value}


def encoded(view: vendor.VendorView) -> None:
    """What the federation does with a vote's EAR: encode it (JSON, CBOR) and report its status."""
    json.dumps(to_json_claims(view.ear))
    cbor.dumps(to_cbor_claims(view.ear))
    _ = view.status.label


def _map(kind: str, claims: Mapping[str, Any], expect: Mapping[str, Any]) -> None:
    encoded(vendor.map_claims(kind, claims, expect=expect))


def TestOneInput(data: bytes) -> None:
    selector, claims = claims_of(data)
    attempt(*(lambda kind=kind: _map(kind, claims, expectation(kind, selector)) for kind in KINDS))
