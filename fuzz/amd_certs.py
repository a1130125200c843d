"""verifiers.local.collateral.amd and sevsnp: the GHCB certificate table, the certificates and CRLs it
or a collateral folder carries (PEM or DER), their roles, VCEK/VLEK extensions, and chain building."""

from __future__ import annotations

from functools import partial

from cryptography import x509

from fuzz._harness import NOW, attempt, read_vectors
from verifiers.local.collateral import amd
from verifiers.local.evidence import sevsnp


def seeds() -> list[bytes]:
    vcek = read_vectors("sev-snp/go-sev-guest/vcek.testcer")
    chains = read_vectors("sev-snp/go-sev-guest/trust/*.pem")
    out = [*vcek, *chains]
    if vcek and chains:
        out.append(sevsnp.encode_cert_table({"vcek": vcek[0], "ask": chains[0], "ark": chains[0]}))
    return out


def _extensions(cert: x509.Certificate) -> None:
    amd.vek_extensions(cert).to_json()


def _certificates(blob: bytes) -> None:
    certs = amd.load_certificates(blob)
    roots = amd.TrustedRoots.default()
    for cert in certs:
        role = amd.cert_role(cert)
        attempt(partial(_extensions, cert))
        if role is not None and role[0] in ("vcek", "vlek"):
            attempt(partial(amd.verify_chain, cert, role[0], certs, roots, NOW))


def _table(data: bytes) -> None:
    table = sevsnp.parse_cert_table(data)
    for entry in table.entries:
        attempt(partial(_certificates, entry.data), partial(amd.load_crls, entry.data))


def TestOneInput(data: bytes) -> None:
    attempt(lambda: _table(data), lambda: _certificates(data), lambda: amd.load_crls(data))
