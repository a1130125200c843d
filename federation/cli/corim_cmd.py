"""``ratsfed corim show | create | verify``: read, write and check CoRIMs (signed or not).

* ``show FILE`` decodes either form (nothing is verified) and checks the declared profile;
  ``--json`` prints ``{"corim": TEMPLATE, ...}`` where TEMPLATE is the CoRIM as a cocli-style
  JSON template (binary values base64url, digests ``[alg, base64url]``) that ``create`` reads back.
* ``create TEMPLATE.json`` builds a CoRIM from a template (:mod:`verifiers.local.corim.template`),
  checks it against its profile, and writes it unsigned (tag 501) or, with ``--key``, signed as a
  COSE_Sign1 whose protected header carries ``corim-meta`` (signer, signature validity) and,
  with ``--chain``, the ``x5chain``.
* ``verify FILE --anchors FILE`` verifies a signed CoRIM at ``--at`` (default now): signature
  under the anchors, signature validity, rim-validity, profile.

Exit codes: 0 success; 2 for any error (unreadable or invalid input, a failed check), with the
reason. These are not verdict commands, so the JSON has no ``status``.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import NameOID

from verifiers.local.corim.cryptokeys import public_key
from verifiers.local.corim.decode import SignedCorim, decode, decode_signed_corim, is_signed
from verifiers.local.corim.encode import encode_corim, sign_corim
from verifiers.local.corim.model import (
    HASH_ALGORITHMS,
    Comid,
    Corim,
    CorimMeta,
    Digest,
    Environment,
    Measurement,
    MeasurementValues,
    OpaqueTag,
    Tagged,
    Triples,
    Validity,
)
from verifiers.local.corim.profiles import validate_profile
from verifiers.local.corim.signed import VerifiedCorim, verify_signed_corim
from verifiers.local.corim.template import corim_to_template, load_template, validity_to_template

from ..errors import Error, UntrustedKeyError, UsageError
from ..keys import SigningKey, load_signing_key, load_trust_anchor, thumbprint
from .common import parse_time, read_input
from .output import EXIT_ERROR, print_json

__all__ = ["add_parser"]


def _error(exc: Error, *, as_json: bool, doc: dict[str, Any] | None = None) -> int:
    """Report a typed error (reason + detail) and return the error exit code."""
    if as_json:
        print_json({**(doc or {}), "error": {"reason": exc.reason, "detail": exc.detail}})
    else:
        print(f"ratsfed: {exc}", file=sys.stderr)
    return EXIT_ERROR


_COMID_ROLES = {0: "tagCreator", 1: "creator", 2: "maintainer"}
_CORIM_ROLES = {1: "manifestCreator", 2: "manifestSigner"}


def _entity(name: str, roles: tuple[int, ...], reg_id: str | None, names: dict[int, str]) -> str:
    shown = ", ".join(names.get(r, str(r)) for r in roles)
    return f"entity: {name} ({shown})" + (f" <{reg_id}>" if reg_id else "")


def _when(t: datetime | None) -> str:
    return t.astimezone(UTC).isoformat().replace("+00:00", "Z") if t is not None else "open"


def _validity_text(v: Validity | None) -> str:
    if v is None:
        return "none"
    return f"{_when(v.not_before)} .. {_when(v.not_after)}"


# --- human-readable rendering ---------------------------------------------------------------

def _alg(alg: int | str) -> str:
    return HASH_ALGORITHMS[alg][0] if isinstance(alg, int) and alg in HASH_ALGORITHMS else str(alg)


def _digest(d: Digest) -> str:
    return f"{_alg(d.alg)}:{d.value.hex()}"


def _printable(data: bytes) -> str:
    """A hint for binary ids that are really text (e.g. an implementation id)."""
    try:
        text = data.decode("ascii")
    except UnicodeDecodeError:
        return ""
    return f' ("{text}")' if text.isprintable() and len(text) >= 4 else ""


def _tagged(t: Tagged) -> str:
    if t.type in ("pkix-base64-key", "pkix-base64-cert", "pkix-base64-cert-path", "pkix-asn1der-cert", "cose-key"):
        try:
            return f"{t.type} (key thumbprint {thumbprint(public_key(t))})"
        except Error as exc:
            return f"{t.type} (unusable: {exc.detail})"
    if isinstance(t.value, Digest):
        return f"{t.type}:{_digest(t.value)}"
    shown = str(t)
    return shown + _printable(t.value) if isinstance(t.value, bytes) and t.type != "uuid" else shown


def _environment(e: Environment) -> str:
    parts: list[str] = []
    c = e.class_
    if c is not None:
        for name, value in (("class-id", _tagged(c.class_id) if c.class_id else None), ("vendor", c.vendor),
                            ("model", c.model), ("layer", c.layer), ("index", c.index)):
            if value is not None:
                parts.append(f"{name}={value}")
    if e.instance is not None:
        parts.append(f"instance={_tagged(e.instance)}")
    if e.group is not None:
        parts.append(f"group={_tagged(e.group)}")
    return " ".join(parts)


def _mval(m: MeasurementValues) -> str:
    parts: list[str] = []
    if m.version is not None:
        parts.append(f"version={m.version.version}" + (f" (scheme {m.version.scheme})" if m.version.scheme else ""))
    if m.svn is not None:
        parts.append(f"svn{'>=' if m.svn.minimum else '='}{m.svn.value}")
    if m.digests is not None:
        parts.append("digests=" + ",".join(map(_digest, m.digests)))
    if m.raw is not None:
        parts.append(f"raw-value={m.raw.value.hex()}" + (f" mask={m.raw.mask.hex()}" if m.raw.mask else ""))
    if m.int_range is not None:
        r = m.int_range
        parts.append(f"int-range=[{'-inf' if r.min is None else r.min}, {'+inf' if r.max is None else r.max}]")
    for name, raw in (("mac-addr", m.mac_addr), ("ip-addr", m.ip_addr), ("ueid", m.ueid), ("uuid", m.uuid)):
        if raw is not None:
            parts.append(f"{name}={raw.hex()}")
    for name, text in (("name", m.name), ("serial-number", m.serial_number)):
        if text is not None:
            parts.append(f"{name}={text}")
    if m.flags is not None:
        parts.append("flags={" + ", ".join(f"{k}: {str(v).lower()}" for k, v in m.flags.items()) + "}")
    if m.cryptokeys is not None:
        parts.append("cryptokeys=" + ",".join(map(_tagged, m.cryptokeys)))
    if m.integrity_registers is not None:
        parts.append("integrity-registers={" + "; ".join(
            f"{k}: {','.join(map(_digest, ds))}" for k, ds in m.integrity_registers.items()) + "}")
    if m.extensions:
        parts.append("extensions={" + ", ".join(f"{k}: {v!r}" for k, v in m.extensions.items()) + "}")
    return " ".join(parts)


def _measurement(m: Measurement) -> str:
    if m.mkey is None:
        key = "(no key)"
    elif m.mkey.type in ("string", "uint"):
        key = str(m.mkey.value)
    else:
        key = _tagged(m.mkey)
    auth = f" authorized-by={','.join(map(_tagged, m.authorized_by))}" if m.authorized_by else ""
    return f"measurement [{key}]: {_mval(m.mval)}{auth}"


def _triple_lines(t: Triples) -> Iterator[str]:
    """Each triple as indented lines, grouped by kind (the names are cocli's)."""
    groups: list[tuple[str, list[list[str]]]] = [
        ("reference-values", [[f"environment: {_environment(x.environment)}", *map(_measurement, x.measurements)]
                              for x in t.reference]),
        ("endorsed-values", [[f"environment: {_environment(x.environment)}", *map(_measurement, x.measurements)]
                             for x in t.endorsed]),
        ("attester-verification-keys", [[f"environment: {_environment(x.environment)}",
                                         *(f"key: {_tagged(k)}" for k in x.keys)] for x in t.attest_key]),
        ("dev-identity-keys", [[f"environment: {_environment(x.environment)}",
                                *(f"key: {_tagged(k)}" for k in x.keys)] for x in t.identity]),
        ("dependency-triples", [[f"domain: {_environment(x.domain)}",
                                 *(f"trustee: {_environment(m)}" for m in x.members)] for x in t.dependency]),
        ("membership-triples", [[f"domain: {_environment(x.domain)}",
                                 *(f"member: {_environment(m)}" for m in x.members)] for x in t.membership]),
        ("coswid-triples", [[f"environment: {_environment(x.environment)}",
                             *(f"coswid tag: {i.hex() if isinstance(i, bytes) else i}" for i in x.tag_ids)]
                            for x in t.coswid]),
        ("conditional-endorsement-series", [
            [f"condition: {_environment(x.environment)}", *map(_measurement, x.measurements),
             *(f"step {i}: if {' and '.join(map(_measurement, s.condition))} then add "
               f"{' and '.join(map(_measurement, s.addition))}" for i, s in enumerate(x.series))]
            for x in t.conditional_series]),
        ("conditional-endorsements", [
            [*(f"if {_environment(c.environment)}: {' and '.join(map(_measurement, c.measurements))}"
               for c in x.conditions),
             *(f"then {_environment(e.environment)}: {' and '.join(map(_measurement, e.measurements))}"
               for e in x.endorsements)]
            for x in t.conditional]),
    ]
    for name, items in groups:
        if items:
            yield f"    {name}:"
            for lines in items:
                yield f"      - {lines[0]}"
                yield from (f"        {line}" for line in lines[1:])
    if t.extensions:
        yield f"    triple extensions: {sorted(t.extensions)}"


def _comid_lines(c: Comid) -> Iterator[str]:
    lang = f", lang {c.language}" if c.language else ""
    yield f"  CoMID {c.tag_id_text} version {c.tag_version}{lang}"
    for e in c.entities:
        yield f"    {_entity(e.name, e.roles, e.reg_id, _COMID_ROLES)}"
    for lt in c.linked_tags:
        yield f"    linked tag: {'replaces' if lt.rel == 1 else 'supplements'} {lt.tag_id!r}"
    yield from _triple_lines(c.triples)


def _corim_lines(corim: Corim, problem: Error | None) -> Iterator[str]:
    if corim.profile is None:
        yield "  profile: none (base rules only)" + (" — broken, see below" if problem else "")
    else:
        yield f"  profile: {corim.profile} — " + ("its rules are broken, see below" if problem else "its rules are met")
    yield f"  rim-validity: {_validity_text(corim.rim_validity)}"
    if corim.dependent_rims:
        for loc in corim.dependent_rims:
            digests = f" ({', '.join(map(_digest, loc.thumbprints))})" if loc.thumbprints else ""
            yield f"  dependent-rim: {' | '.join(loc.href)}{digests}"
    else:
        yield "  dependent-rims: none"
    for e in corim.entities:
        yield f"  {_entity(e.name, e.roles, e.reg_id, _CORIM_ROLES)}"
    for tag in corim.tags:
        if isinstance(tag, OpaqueTag):
            yield f"  tag {tag.tag} ({'CoSWID' if tag.tag == 505 else 'CoTL'}), {len(tag.data)} bytes, not interpreted"
        else:
            yield from _comid_lines(tag)


# --- show -----------------------------------------------------------------------------------

def _meta_json(meta: CorimMeta) -> dict[str, Any]:
    signer = {"name": meta.signer_name, **({"uri": meta.signer_uri} if meta.signer_uri else {})}
    out: dict[str, Any] = {"signer": signer}
    if meta.signature_validity is not None:
        out["validity"] = validity_to_template(meta.signature_validity)
    return out


def _show(args: argparse.Namespace) -> int:
    try:
        data = read_input(args.file)
        decoded = decode(data)
    except Error as exc:
        return _error(exc, as_json=args.json)
    signed = decoded if isinstance(decoded, SignedCorim) else None
    corim = decoded.corim if isinstance(decoded, SignedCorim) else decoded
    problem: Error | None = None
    try:
        validate_profile(corim)
    except Error as exc:
        problem = exc
    doc: dict[str, Any] = {"corim": corim_to_template(corim), "signed": signed is not None, "size": len(data),
                           "sha256": hashlib.sha256(data).hexdigest()}
    if signed is not None:
        chain = signed.sign1.x5chain
        doc["signature"] = {"algorithm": signed.sign1.algorithm.name, "kid": signed.sign1.kid,
                            "x5chain": len(chain) if chain else 0, "verified": False}
        doc["meta"] = _meta_json(signed.meta)
    doc["profile_valid"] = problem is None
    if args.json:
        if problem is not None:
            return _error(problem, as_json=True, doc=doc)
        print_json(doc)
        return 0
    form = "unsigned (tag 501)"
    if signed is not None:
        kid = f", kid {signed.sign1.kid!r}" if signed.sign1.kid is not None else ""
        form = f"signed (COSE_Sign1, {signed.sign1.algorithm.name}{kid}, x5chain {doc['signature']['x5chain']})"
    print(f"CoRIM {corim.id_text}: {form}, {len(data)} bytes, sha256 {doc['sha256']}")
    if signed is not None:
        uri = f" <{signed.meta.signer_uri}>" if signed.meta.signer_uri else ""
        print(f"  signer: {signed.meta.signer_name}{uri}")
        print(f"  signature-validity: {_validity_text(signed.meta.signature_validity)}")
        print("  signature: not checked by show (use: ratsfed corim verify FILE --anchors FILE)")
    for line in _corim_lines(corim, problem):
        print(line)
    if problem is not None:
        return _error(problem, as_json=False)
    return 0


# --- create ---------------------------------------------------------------------------------

def _epoch(t: int | None) -> datetime | None:
    return datetime.fromtimestamp(t, UTC) if t is not None else None


def _chain(path: str, key: SigningKey) -> tuple[list[bytes], x509.Certificate]:
    """The PEM chain (leaf first) as DER, after checking the leaf certifies the signing key."""
    try:
        certs = x509.load_pem_x509_certificates(read_input(path))
    except ValueError as exc:
        raise UsageError(f"--chain {path}: not PEM certificates: {exc}") from exc
    spki = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    if certs[0].public_key().public_bytes(*spki) != key.key.public_key().public_bytes(*spki):
        raise UsageError(f"--chain {path}: the first certificate is not for the --key key")
    return [c.public_bytes(serialization.Encoding.DER) for c in certs], certs[0]


def _signer_name(args: argparse.Namespace, key: SigningKey, leaf: x509.Certificate | None) -> str:
    if args.signer_name:
        return str(args.signer_name)
    if leaf is not None:
        cn = leaf.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        if cn and isinstance(cn[0].value, str):
            return cn[0].value
    return key.kid


def _write(path: str, data: bytes) -> None:
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
    except OSError as exc:
        raise UsageError(f"--out {path}: {exc.strerror}") from exc


@dataclass(frozen=True, slots=True)
class _Built:
    data: bytes
    corim: Corim
    meta: CorimMeta | None = None
    key: SigningKey | None = None
    x5chain: int = 0

    def report(self, out: str) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "out": out, "corim_id": self.corim.id_text,
            "profile": str(self.corim.profile) if self.corim.profile is not None else None,
            "comids": [c.tag_id_text for c in self.corim.comids], "signed": self.key is not None,
            "size": len(self.data), "sha256": hashlib.sha256(self.data).hexdigest()}
        if self.key is not None and self.meta is not None:
            doc.update(algorithm=self.key.algorithm, key_thumbprint=self.key.public.thumbprint,
                       x5chain=self.x5chain, meta=_meta_json(self.meta))
        return doc


def _build(args: argparse.Namespace) -> _Built:
    corim = load_template(args.template, extra_comids=args.comid or ())
    validate_profile(corim)
    not_before, not_after = _epoch(args.not_before), _epoch(args.not_after)
    if args.key is None:
        given = [opt for opt, v in (("--chain", args.chain), ("--signer-name", args.signer_name),
                                    ("--signer-uri", args.signer_uri), ("--not-before", not_before),
                                    ("--not-after", not_after)) if v is not None]
        if given:
            raise UsageError(f"{', '.join(given)} only apply to a signed CoRIM (give --key)")
        return _Built(encode_corim(corim), corim)
    if not_before is not None and not_after is None:
        raise UsageError("--not-before needs --not-after (a signature validity always has an end)")
    if not_before is not None and not_after is not None and not_before > not_after:
        raise UsageError("--not-before is after --not-after")
    key = load_signing_key(args.key)
    x5chain, leaf = _chain(args.chain, key) if args.chain else (None, None)
    validity = Validity(not_before, not_after) if not_after is not None else None
    meta = CorimMeta(_signer_name(args, key, leaf), args.signer_uri, validity)
    return _Built(sign_corim(corim, key, meta, x5chain=x5chain), corim, meta, key, len(x5chain or ()))


def _create(args: argparse.Namespace) -> int:
    try:
        built = _build(args)
        _write(args.out, built.data)
    except Error as exc:
        return _error(exc, as_json=args.json)
    doc = built.report(args.out)
    if args.json:
        print_json(doc)
        return 0
    what = f"{len(built.corim.comids)} CoMIDs, profile {doc['profile'] or 'none'}"
    if built.key is None or built.meta is None:
        print(f"wrote {args.out}: unsigned CoRIM {doc['corim_id']} ({what})")
    else:
        print(f"wrote {args.out}: signed CoRIM {doc['corim_id']} ({what})")
        print(f"  signer: {built.meta.signer_name}, {built.key.algorithm} key {doc['key_thumbprint']}"
              + (f", x5chain of {built.x5chain}" if built.x5chain else ""))
        print(f"  signature-validity: {_validity_text(built.meta.signature_validity)}")
    return 0


# --- verify ---------------------------------------------------------------------------------

def _verify_report(v: VerifiedCorim, at: datetime) -> dict[str, Any]:
    corim = v.corim
    return {
        "verified": True,
        "corim_id": corim.id_text,
        "profile": str(corim.profile) if corim.profile is not None else None,
        "signer": {"name": v.signer_name, **({"uri": v.signer_uri} if v.signer_uri else {})},
        "key_thumbprint": v.key_thumbprint,
        "validity": validity_to_template(v.validity) if v.validity is not None else None,
        "at": _when(at),
        "comids": [c.tag_id_text for c in corim.comids],
        "sha256": v.sha256,
    }


def _verify(args: argparse.Namespace) -> int:
    at = datetime.fromtimestamp(args.at if args.at is not None else int(time.time()), UTC)
    data = b""
    try:
        data = read_input(args.file)
        if not is_signed(data):
            raise UntrustedKeyError("unsigned corim: there is no signature to verify (tag 501)")
        anchors = [load_trust_anchor(a) for a in args.anchors]
        verified = verify_signed_corim(data, anchors, at)
        validate_profile(verified.corim)
    except Error as exc:
        claimed = _claimed_signer(data)
        doc = {"verified": False, **({"claimed_signer": claimed} if claimed else {})}
        return _error(exc, as_json=args.json, doc=doc)
    doc = _verify_report(verified, at)
    if args.json:
        print_json(doc)
        return 0
    uri = f" <{verified.signer_uri}>" if verified.signer_uri else ""
    print(f"verified: CoRIM {doc['corim_id']} (profile {doc['profile'] or 'none'}), at {doc['at']}")
    print(f"  signer: {verified.signer_name}{uri}")
    print(f"  key thumbprint: {verified.key_thumbprint}")
    print(f"  validity: {_validity_text(verified.validity)}")
    return 0


def _claimed_signer(data: bytes) -> dict[str, Any] | None:
    """Who the CoRIM *claims* signed it (unverified), to help explain a failure."""
    try:
        meta = decode_signed_corim(data).meta
    except Error:
        return None
    signer: dict[str, Any] = _meta_json(meta)["signer"]
    return signer


# --- parser ---------------------------------------------------------------------------------

def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    corim = sub.add_parser("corim", help="show, create and verify CoRIMs (reference values, endorsements)")
    csub = corim.add_subparsers(dest="corim_command", required=True)

    show = csub.add_parser("show", help="decode a CoRIM (signed or unsigned) and summarise it; checks its profile")
    show.add_argument("file", help="CoRIM file, or - for standard input")
    show.add_argument("--json", action="store_true", help='one JSON object: {"corim": TEMPLATE, ...}')
    show.set_defaults(func=_show)

    create = csub.add_parser("create", help="build a CoRIM from a JSON template (Veraison cocli vocabulary)")
    create.add_argument("template", help="CoRIM template (JSON); its \"comids\" are inline or paths relative to it")
    create.add_argument("--comid", action="append", metavar="FILE",
                        help="a further CoMID: JSON template or CBOR (repeatable, as cocli's --comid)")
    create.add_argument("--key", help="sign with this private key (PEM or JWK, mode 600); unsigned without it")
    create.add_argument("--chain", metavar="CERTS.pem", help="x5chain: PEM certificates, the --key's first")
    create.add_argument("--signer-name", help="corim-meta signer name (default: the chain's CN, else the key id)")
    create.add_argument("--signer-uri", help="corim-meta signer URI")
    create.add_argument("--not-before", type=parse_time, help="signature validity start (epoch or ISO 8601)")
    create.add_argument("--not-after", type=parse_time, help="signature validity end (epoch or ISO 8601)")
    create.add_argument("--out", required=True, help="where to write the CoRIM")
    create.add_argument("--json", action="store_true", help="one JSON object on stdout")
    create.set_defaults(func=_create)

    verify = csub.add_parser("verify", help="verify a signed CoRIM against endorser trust anchors")
    verify.add_argument("file", help="signed CoRIM file, or - for standard input")
    verify.add_argument("--anchors", action="append", required=True, metavar="FILE",
                        help="JWK, JWKS, PEM key(s) or root certificate(s) of the endorser (repeatable)")
    verify.add_argument("--at", type=parse_time, help="verification time (epoch or ISO 8601; default now)")
    verify.add_argument("--json", action="store_true", help="one JSON object on stdout")
    verify.set_defaults(func=_verify)
